"""`Status` error objects shaped like the real apiserver's, raised as `ApiError`."""

from __future__ import annotations

from typing import Any

# The service account the product runs as in deploy/ (its RBAC never grants secrets or writes).
SERVICE_ACCOUNT = "system:serviceaccount:selfheal:rollout-doctor"

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
    422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An API failure; `body()` is the JSON Status the server sends."""

    def __init__(self, code: int, message: str, reason: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details:
            status["details"] = self.details
        status["code"] = self.code
        return status


def qualified(resource: str, group: str) -> str:
    """`pods` for core, `rollouts.argoproj.io` for a group (how messages name resources)."""
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, f'{qualified(resource, group)} "{name}" not found', "NotFound",
                    _details(resource, group, name))


def no_such_path() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound", {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def invalid(kind: str, name: str, field_errors: list[str]) -> ApiError:
    return ApiError(422, f'{kind} "{name}" is invalid: ' + ", ".join(field_errors), "Invalid",
                    {"name": name, "kind": kind,
                     "causes": [{"reason": "FieldValueInvalid", "message": err.split(": ", 1)[-1],
                                 "field": err.split(": ", 1)[0]} for err in field_errors]})


def forbidden(verb: str, resource: str, group: str, namespace: str | None, name: str | None = None,
              user: str = SERVICE_ACCOUNT) -> ApiError:
    """A 403 worded like RBAC's denial."""
    subject = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
               f'in API group "{group}" {scope}')
    return ApiError(403, message, "Forbidden", _details(resource, group, name))


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    return ApiError(405, message, "MethodNotAllowed", {})
