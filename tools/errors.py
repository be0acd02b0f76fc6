"""The one shape every tool uses to report a failure to the model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

ErrorKind = Literal[
    "invalid_argument",  # the caller (model, user) passed something unusable
    "not_found",
    "forbidden",  # RBAC or credentials refuse the call
    "unauthorized",
    "timeout",
    "unreachable",  # API server / Prometheus / GitHub cannot be reached
    "rate_limited",
    "not_configured",  # a credential or URL the tool needs is missing
    "upstream_error",  # the remote answered with an unexpected error
    "refused",  # a guardrail or the allow-list refused the action
]


class ToolError(BaseModel):
    kind: ErrorKind
    message: str
    hint: str | None = None


def error_result(kind: ErrorKind, message: str, hint: str | None = None, **extra: object) -> dict:
    """A tool result that tells the model what went wrong and what to try instead."""
    result: dict = {"error": ToolError(kind=kind, message=message, hint=hint).model_dump(exclude_none=True)}
    result.update(extra)
    return result


def is_error(result: object) -> bool:
    return isinstance(result, dict) and isinstance(result.get("error"), dict)
