"""The Kubernetes REST API over a `ClusterState`: routing, content negotiation, errors.

Independent of the HTTP plumbing (see httpserver.py): `ApiApp.handle` turns a method, a
path and an Accept header into a `Response`, so it can be exercised without sockets.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from . import discovery
from .faults import Fault, FaultSet
from .podlogs import LogOptions
from .resources import ResourceType
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .status import (REASONS, SERVICE_ACCOUNT, ApiError, bad_request, forbidden, invalid,
                     method_not_allowed, no_such_path, not_found)
from .store import ClusterState, StoredObject
from .tables import render_table

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_HEALTH = {"/healthz", "/livez", "/readyz"}
# What the kubelet says when a container has not started, by waiting reason.
_WAITING_MESSAGES = {"ErrImagePull": "trying and failing to pull image",
                     "ImagePullBackOff": "trying and failing to pull image",
                     "InvalidImageName": "image can't be pulled"}
_DEFAULT_MESSAGES = {
    401: "Unauthorized",
    409: "Operation cannot be fulfilled: the object has been modified; please apply your changes to the "
         "latest version and try again",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
    504: "Timeout: request did not complete within requested timeout - context deadline exceeded",
}


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class ResourceRequest:
    """A request for a resource: what RBAC and error messages are phrased in."""

    rtype: ResourceType
    verb: str
    namespace: str | None
    name: str | None
    subresource: str | None


def _json(status: int, payload: Any) -> Response:
    return Response(status, JSON, json.dumps(payload, separators=(",", ":")).encode())


def error_response(exc: ApiError) -> Response:
    return _json(exc.code, exc.body())


def _media_choice(accept: str) -> tuple[str, str]:
    """(`Table`|`PartialObjectMetadataList`|`PartialObjectMetadata`|`json`, meta version) for an Accept."""
    for clause in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in clause.split(";")[1:] if "=" in p)
        media = clause.split(";")[0].strip()
        if media not in (JSON, "*/*", "application/*"):
            continue
        kind = params.get("as")
        if kind is None:
            return "json", "v1"
        if params.get("g") == "meta.k8s.io" and kind in ("Table", "PartialObjectMetadataList",
                                                          "PartialObjectMetadata"):
            return kind, params.get("v", "v1")
    return "json", "v1"


class ApiApp:
    """Answers Kubernetes API requests from the cluster state."""

    def __init__(self, state: ClusterState, faults: FaultSet, server_address: str,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.state = state
        self.faults = faults
        self.server_address = server_address
        self.clock = clock
        self.sleep = sleep

    def handle(self, method: str, raw_path: str, accept: str = JSON) -> Response:
        url = urlsplit(raw_path)
        path = url.path.rstrip("/") or "/"
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        unknown: ApiError | None = None
        try:
            request = self._resource_request(method, path, query)
        except ApiError as exc:
            request, unknown = None, exc
        fault = self.faults.match(path + (f"?{url.query}" if url.query else ""))
        if fault is not None:
            if fault.delay_seconds:
                self.sleep(fault.delay_seconds)
            if fault.status is not None:
                return error_response(self._fault_error(fault, request, method, path))
        if unknown is not None:
            return error_response(unknown)
        try:
            if request is None:
                return self._non_resource(method, path)
            return self._serve(request, query, accept)
        except ApiError as exc:
            return error_response(exc)

    # --- routing ----------------------------------------------------------------------------------

    def _resource_request(self, method: str, path: str, query: dict[str, str]) -> ResourceRequest | None:
        """Parse a resource path; None for non-resource paths; ApiError for unknown resources."""
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise no_such_path()
        rtype = self.state.registry.lookup(group, version, rest[0])
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise no_such_path()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if method in ("GET", "HEAD"):
            verb = "get" if name else ("watch" if query.get("watch") in ("1", "true") else "list")
        else:
            verb = _WRITE_VERBS.get(method, method.lower())
            if verb == "delete" and not name:
                verb = "deletecollection"
        return ResourceRequest(rtype, verb, namespace, name, subresource)

    def _non_resource(self, method: str, path: str) -> Response:
        if method not in ("GET", "HEAD"):
            raise method_not_allowed()
        registry = self.state.registry
        if path == "/version":
            return _json(200, discovery.VERSION)
        if path in _HEALTH:
            return Response(200, TEXT, b"ok")
        if path == "/api":
            return _json(200, discovery.api_versions(self.server_address))
        if path == "/apis":
            return _json(200, discovery.api_group_list(registry))
        parts = path.strip("/").split("/")
        document = None
        if parts[0] == "api" and len(parts) == 2:
            document = discovery.api_resource_list(registry, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            document = discovery.api_group(registry, parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            document = discovery.api_resource_list(registry, parts[1], parts[2])
        if document is None:
            raise no_such_path()
        return _json(200, document)

    def _fault_error(self, fault: Fault, request: ResourceRequest | None, method: str, path: str) -> ApiError:
        code = fault.status or 500
        if fault.message:
            return ApiError(code, fault.message, REASONS.get(code))
        if code == 403:
            if request is not None:
                return forbidden(request.verb, request.rtype.plural, request.rtype.group,
                                 request.namespace, request.name)
            return ApiError(403, f'forbidden: User "{SERVICE_ACCOUNT}" cannot {method.lower()} path "{path}"',
                            "Forbidden", {})
        if code == 404:
            if request is not None and request.name:
                return not_found(request.rtype.plural, request.rtype.group, request.name)
            return no_such_path()
        return ApiError(code, _DEFAULT_MESSAGES.get(code, f"injected fault ({code})"), REASONS.get(code))

    # --- resources -------------------------------------------------------------------------------

    def _serve(self, request: ResourceRequest, query: dict[str, str], accept: str) -> Response:
        rtype = request.rtype
        if rtype.forbidden or request.verb not in ("get", "list", "watch"):
            # The product's service account may only read, and never secrets.
            raise forbidden(request.verb, rtype.plural, rtype.group, request.namespace, request.name)
        if request.verb == "watch":
            raise method_not_allowed("watch is not supported by the simulated cluster")
        if request.name is None:
            return self._list(request, query, accept)
        obj = self.state.get(rtype, request.namespace, request.name)
        if obj is None:
            raise not_found(rtype.plural, rtype.group, request.name)
        if request.subresource == "log" and "log" in rtype.subresources:
            return self._log(obj, query)
        if request.subresource not in (None, "status"):
            raise no_such_path()
        return self._one(obj, query, accept)

    def _one(self, obj: StoredObject, query: dict[str, str], accept: str) -> Response:
        choice, meta_version = _media_choice(accept)
        if choice == "Table":
            return _json(200, self._table(obj.rtype, [obj], query.get("includeObject"), meta_version))
        if choice == "PartialObjectMetadata":
            return _json(200, {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{meta_version}",
                               "metadata": obj.body["metadata"]})
        return Response(200, JSON, obj.json)

    def _list(self, request: ResourceRequest, query: dict[str, str], accept: str) -> Response:
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"))
        except SelectorError as exc:
            raise bad_request(str(exc)) from None
        items = self.state.list(request.rtype, request.namespace, labels, fields)
        choice, meta_version = _media_choice(accept)
        rv = self.state.resource_version
        if choice == "Table":
            return _json(200, self._table(request.rtype, items, query.get("includeObject"), meta_version))
        if choice == "PartialObjectMetadataList":
            return _json(200, {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{meta_version}",
                               "metadata": {"resourceVersion": rv},
                               "items": [{"kind": "PartialObjectMetadata",
                                          "apiVersion": f"meta.k8s.io/{meta_version}",
                                          "metadata": o.body["metadata"]} for o in items]})
        rtype = request.rtype
        head = json.dumps({"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version,
                           "metadata": {"resourceVersion": rv}}, separators=(",", ":"))
        body = head[:-1].encode() + b',"items":[' + b",".join(o.json for o in items) + b"]}"
        return Response(200, JSON, body)

    def _table(self, rtype: ResourceType, items: list[StoredObject], query_include: str | None,
               meta_version: str) -> dict[str, Any]:
        include = query_include if query_include in ("None", "Object", "Metadata") else "Metadata"
        return render_table(rtype.group, rtype.kind, [o.body for o in items], self.clock(), include,
                            meta_version, self.state.resource_version)

    # --- pods/{name}/log --------------------------------------------------------------------------

    def _log(self, pod: StoredObject, query: dict[str, str]) -> Response:
        try:
            opts = LogOptions.from_query(query)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        problems = opts.problems()
        if problems:
            raise invalid("PodLogOptions", pod.name, problems)
        spec = pod.body.get("spec") or {}
        containers = [c.get("name") for c in spec.get("containers") or []]
        init = [c.get("name") for c in spec.get("initContainers") or []]
        ephemeral = [c.get("name") for c in spec.get("ephemeralContainers") or []]
        container = opts.container
        if not container:
            if len(containers) == 1:
                container = containers[0]
            elif not containers:
                raise bad_request(f"a container name must be specified for pod {pod.name}")
            else:
                message = (f"a container name must be specified for pod {pod.name}, "
                           f"choose one of: [{' '.join(containers)}]")
                if init:
                    message += f" or one of the init containers: [{' '.join(init)}]"
                raise bad_request(message)
        elif container not in containers + init + ephemeral:
            raise bad_request(f"container {container} is not valid for pod {pod.name}")
        log = self.state.log(pod.namespace or "", pod.name, container, opts.previous)
        if log is None:
            if opts.previous:
                raise bad_request(f'previous terminated container "{container}" in pod "{pod.name}" not found')
            waiting = self._waiting_reason(pod, container)
            if waiting:
                raise bad_request(f'container "{container}" in pod "{pod.name}" is waiting to start: '
                                  f"{_WAITING_MESSAGES.get(waiting, waiting)}")
            return Response(200, TEXT, b"")
        return Response(200, TEXT, log.render(opts, self.clock()))

    @staticmethod
    def _waiting_reason(pod: StoredObject, container: str) -> str | None:
        status = pod.body.get("status") or {}
        for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
            for cstatus in status.get(key) or []:
                if cstatus.get("name") == container:
                    waiting = (cstatus.get("state") or {}).get("waiting")
                    # A crash-looping container still serves the last run's log.
                    if waiting and waiting.get("reason") != "CrashLoopBackOff":
                        return waiting.get("reason") or "ContainerCreating"
                    return None
        return None
