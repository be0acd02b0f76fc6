"""Kubernetes read tools over the official `kubernetes` client.

Every public tool is a plain typed function whose docstring is written for the model. Tools only
read the cluster, return JSON-serialisable dicts, redact secrets, and never raise: failures come back
as `tools.errors.error_result(kind, message, hint)`.

Responses are read as raw JSON (`_preload_content=False`) so the tools see exactly what the API
server sent, with the API's own camelCase field names.

`fetch_container_log` is not a tool: it gives the evidence collector the (redacted) text of a
container log, bounded by `Settings.log_tail_lines` instead of the model-sized caps.
"""

import codecs
import functools
import json
import os
import re
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from collections.abc import Iterator
from typing import Any, Callable

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.utils import parse_quantity
from pydantic import BaseModel

from selfheal.config import Settings, get_settings
from tools.errors import ToolError, error_result
from tools.names import NAMESPACE_RE, OBJECT_NAME_RE, label_selector_problem
from tools.redaction import redact, redact_data

# Caps that keep a tool result small enough for a model's context.
MAX_LOG_TAIL_LINES = 10_000
MAX_LOG_BYTES = 20_000
MAX_LOG_LINE_CHARS = 1_000
MAX_ITEMS = 100
MAX_EVENTS = 200
MAX_ANALYSIS_RUNS = 5
MAX_MEASUREMENTS = 3
# Safety valve for the evidence collector's raw log reads (the API keeps the FIRST bytes, so this
# must stay above what Settings.log_tail_lines lines can weigh).
MAX_RAW_LOG_BYTES = 128 * 1024 * 1024

ROLLOUT_HASH_LABEL = "rollouts-pod-template-hash"
DEPLOYMENT_HASH_LABEL = "pod-template-hash"
ROLLOUT_REVISION_ANNOTATION = "rollout.argoproj.io/revision"
DEPLOYMENT_REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
ARGO_GROUP, ARGO_VERSION = "argoproj.io", "v1alpha1"
METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"

# Containers that are never the application: service-mesh proxies, secret agents, log/trace shippers.
SIDECAR_NAMES = frozenset(
    {
        "istio-proxy", "istio-init", "istio-validation", "linkerd-proxy", "linkerd-init",
        "linkerd-network-validator", "envoy", "envoy-sidecar", "consul-connect-envoy-sidecar",
        "consul-dataplane", "vault-agent", "vault-agent-init", "cloud-sql-proxy", "cloudsql-proxy",
        "oauth2-proxy", "kube-rbac-proxy", "config-reloader", "daprd", "aws-otel-collector",
        "datadog-agent", "filebeat", "promtail", "vector", "nginx-exporter", "jaeger-agent",
    }
)
_SIDECAR_PATTERN = re.compile(
    r"^(istio|linkerd|envoy|vault-agent|cloud-?sql-proxy|otel|opentelemetry|fluent|datadog|jaeger)"
    r"|sidecar|-proxy$|-exporter$"
)

_NAME = OBJECT_NAME_RE
_NAMESPACE = NAMESPACE_RE
_CONTAINER = NAMESPACE_RE  # container names are DNS labels too


# --------------------------------------------------------------------------------------------
# Client factory
# --------------------------------------------------------------------------------------------

_clients: dict[tuple[str | None, str | None], k8s_client.ApiClient] = {}
_clients_lock = threading.Lock()


def _load_configuration(kubeconfig: str | None, context: str | None) -> k8s_client.Configuration:
    configuration = k8s_client.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(
            config_file=os.path.expanduser("~/.kube/config"),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    # One quick retry when the connection cannot be made; a slow answer is never retried, so a
    # tool call costs at most about one request timeout.
    configuration.retries = urllib3.Retry(connect=1, read=0, status=0, other=0, redirect=2, backoff_factor=0.2)
    return configuration


def api_client(settings: Settings | None = None, kubeconfig: str | None = None) -> k8s_client.ApiClient:
    """The shared ApiClient for (kubeconfig, context), built on first use.

    The kubeconfig comes from `kubeconfig`, else `Settings.kubeconfig` (SELFHEAL_KUBECONFIG or
    KUBECONFIG); without one, the in-cluster service account is used, then `~/.kube/config`.
    Raises `ConfigException` when no configuration can be loaded.
    """
    settings = settings or get_settings()
    key = (kubeconfig or settings.kubeconfig, settings.kube_context)
    with _clients_lock:
        existing = _clients.get(key)
        if existing is None:
            existing = k8s_client.ApiClient(_load_configuration(*key))
            _clients[key] = existing
        return existing


def reset_clients() -> None:
    """Close and forget every cached ApiClient (tests switch clusters with this)."""
    with _clients_lock:
        cached = list(_clients.values())
        _clients.clear()
    for cached_client in cached:
        try:
            cached_client.close()
        except Exception:  # noqa: BLE001 - closing a dead pool must not fail a reset
            pass


# --------------------------------------------------------------------------------------------
# Calling the API and turning failures into tool errors
# --------------------------------------------------------------------------------------------


class _Failure(Exception):
    """Carries a ready tool error out of nested helpers up to the `_tool` wrapper."""

    def __init__(self, result: dict, status: int | None = None, detail: str | None = None) -> None:
        super().__init__(result["error"]["message"])
        self.result = result
        self.status = status  # HTTP status when the API server answered
        self.detail = detail  # the API server's own message


@dataclass(frozen=True)
class _Op:
    """What a request does, in RBAC terms, so errors can name the missing permission."""

    verb: str  # get | list
    resource: str  # pods, pods/log, rollouts, ...
    namespace: str
    name: str | None = None
    group: str = ""


@dataclass(frozen=True)
class _Kube:
    api: k8s_client.ApiClient
    timeout: float

    @property
    def core(self) -> k8s_client.CoreV1Api:
        return k8s_client.CoreV1Api(self.api)

    @property
    def apps(self) -> k8s_client.AppsV1Api:
        return k8s_client.AppsV1Api(self.api)

    @property
    def custom(self) -> k8s_client.CustomObjectsApi:
        return k8s_client.CustomObjectsApi(self.api)

    def raw(self, op: _Op, method: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
        """Call a client method and return the response body; raise `_Failure` on any error."""
        kwargs = {key: value for key, value in kwargs.items() if value is not None}
        try:
            response = method(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            try:
                return response.data
            finally:
                response.release_conn()
        except ApiException as exc:
            raise _Failure(_api_error(exc, op), exc.status, _status_message(exc)) from None
        except Exception as exc:  # noqa: BLE001 - transport errors come in many types
            raise _Failure(_transport_error(exc, self)) from None

    def stream(self, op: _Op, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[bytes]:
        """Like `raw`, but yields the body in chunks as it arrives (large logs never sit in memory)."""
        kwargs = {key: value for key, value in kwargs.items() if value is not None}
        try:
            response = method(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            raise _Failure(_api_error(exc, op), exc.status, _status_message(exc)) from None
        except Exception as exc:  # noqa: BLE001 - transport errors come in many types
            raise _Failure(_transport_error(exc, self)) from None
        try:
            yield from response.stream(1 << 16, decode_content=True)
        except Exception as exc:  # noqa: BLE001 - a connection cut mid-body
            raise _Failure(_transport_error(exc, self)) from None
        finally:
            response.release_conn()

    def json(self, op: _Op, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict:
        body = self.raw(op, method, *args, **kwargs)
        try:
            return json.loads(body)
        except ValueError:
            raise _Failure(
                error_result("upstream_error", f"the API server sent a non-JSON answer to {op.verb} {op.resource}")
            ) from None


def _kube(settings: Settings | None = None) -> _Kube:
    settings = settings or get_settings()
    try:
        return _Kube(api_client(settings), settings.kube_timeout_seconds)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise _Failure(
            error_result(
                "not_configured",
                f"no usable Kubernetes configuration: {exc}",
                "Set KUBECONFIG (or SELFHEAL_KUBECONFIG) to a kubeconfig file, or run inside the cluster "
                "with a service account. The tool cannot continue until then.",
            )
        ) from None


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except (TypeError, ValueError):
        pass
    return str(exc.body or exc.reason or "no message").strip()[:500]


def _api_error(exc: ApiException, op: _Op) -> dict:
    message = _status_message(exc)
    status = exc.status or 0
    group = f"'{op.group}'" if op.group else "'' (core)"
    target = f"{op.resource}/{op.name}" if op.name else op.resource
    if status == 0:
        return error_result(
            "unreachable", f"cannot talk to the Kubernetes API: {message}", "Check the API server address and TLS."
        )
    if status == 401:
        return error_result(
            "unauthorized",
            f"the API server rejected the credentials ({message})",
            "The kubeconfig token or certificate is missing or expired; it must be renewed outside this tool.",
        )
    if status == 403:
        where = f"namespace '{op.namespace}' (Role + RoleBinding)" if op.namespace else (
            "all namespaces (ClusterRole + ClusterRoleBinding); or name the namespace"
        )
        return error_result(
            "forbidden",
            f"RBAC denies {op.verb} {target}: {message}",
            f"The agent's service account needs verb '{op.verb}' on resource '{op.resource}' "
            f"(API group {group}) in {where}. "
            "Retrying will not help; continue with the other tools and report the missing permission.",
        )
    if status == 404:
        return error_result("not_found", f"{message} (namespace {op.namespace!r})" if op.namespace else message)
    if status in (400, 422):
        hint = (
            "Label selectors look like 'app=web,role=canary', 'role!=stable', 'role in (stable,canary)' or 'app'."
            if op.verb == "list"
            else None
        )
        return error_result("invalid_argument", f"the API server refused the request: {message}", hint)
    if status == 429:
        return error_result(
            "rate_limited", f"the API server is throttling requests: {message}", "Wait, then retry once."
        )
    if status == 504:
        return error_result("timeout", f"the API server timed out: {message}", "Retry once with a narrower query.")
    return error_result(
        "upstream_error",
        f"the API server answered HTTP {status} to {op.verb} {target}: {message}",
        "A server-side problem; retry once, then continue without this data.",
    )


def _transport_error(exc: BaseException, kube: _Kube) -> dict:
    host = kube.api.configuration.host
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
    if isinstance(reason, urllib3.exceptions.NewConnectionError) or isinstance(reason, ConnectionError):
        return error_result(
            "unreachable",
            f"cannot connect to the Kubernetes API at {host}: {reason}",
            "The API server is down or the address is wrong; retrying now will not help.",
        )
    if isinstance(reason, (urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)):
        return error_result(
            "timeout",
            f"the Kubernetes API at {host} did not answer within {kube.timeout:g}s",
            "Retry once with a narrower query (a label selector, fewer lines); the API may be overloaded.",
        )
    if isinstance(reason, (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError, OSError)):
        return error_result("unreachable", f"connection to the Kubernetes API at {host} failed: {reason}")
    return error_result(
        "upstream_error", f"unexpected error talking to the Kubernetes API: {type(reason).__name__}: {reason}"
    )


def _tool(function: Callable[..., dict]) -> Callable[..., dict]:
    """Make a tool total: redact its result and turn every exception into an error result."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> dict:
        try:
            return redact_data(function(*args, **kwargs))
        except _Failure as failure:
            return redact_data(failure.result)
        except Exception as exc:  # noqa: BLE001 - a tool never raises
            return redact_data(
                error_result(
                    "upstream_error",
                    f"{function.__name__} failed unexpectedly: {type(exc).__name__}: {exc}",
                    "Continue with the other tools.",
                )
            )

    return wrapper


def _invalid(message: str, hint: str | None = None) -> _Failure:
    return _Failure(error_result("invalid_argument", message, hint))


def _check_namespace(namespace: str) -> None:
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise _invalid(
            f"namespace must be a Kubernetes namespace name (lowercase letters, digits, '-'), got {namespace!r}",
            "Pass the namespace of the rollout, e.g. 'default'.",
        )


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise _invalid(
            f"{what} must be a Kubernetes object name, got {name!r}", f"Use the exact {what} as listed."
        )


def _check_selector(label_selector: str) -> str:
    problem = label_selector_problem(label_selector)
    if problem:
        raise _invalid(problem, "For example: 'role=canary' or 'app=web,role in (stable,canary)'.")
    return label_selector.strip()


# --------------------------------------------------------------------------------------------
# Small shared helpers
# --------------------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def human_duration(seconds: float) -> str:
    """kubectl-style short duration: 45s, 3m12s, 2h5m, 3d4h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(seconds // 3600, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def _age(value: Any) -> tuple[int | None, str | None]:
    moment = _parse_time(value)
    if moment is None:
        return None, None
    seconds = int((datetime.now(timezone.utc) - moment).total_seconds())
    return seconds, human_duration(seconds)


def _cap(items: list, limit: int) -> tuple[list, int]:
    return items[:limit], max(0, len(items) - limit)


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _owned_by(obj: dict, kind: str, name: str) -> bool:
    owners = _meta(obj).get("ownerReferences") or []
    return any(ref.get("kind") == kind and ref.get("name") == name for ref in owners)


def _pod_hash(labels: dict) -> str | None:
    return labels.get(ROLLOUT_HASH_LABEL) or labels.get(DEPLOYMENT_HASH_LABEL)


def _images(pod_spec: dict) -> list[str]:
    return [container.get("image", "") for container in pod_spec.get("containers") or []]


def is_sidecar(container_name: str) -> bool:
    """True for mesh proxies, secret agents and telemetry shippers (never the application)."""
    name = container_name.lower()
    return name in SIDECAR_NAMES or bool(_SIDECAR_PATTERN.search(name))


def choose_app_container(pod: dict) -> str | None:
    """The application container of a pod (raw API dict), the way `kubectl logs` users expect.

    Order: the `kubectl.kubernetes.io/default-container` annotation; a container named like the
    pod's `app.kubernetes.io/name` / `app` label; the first container that is not a sidecar; the first.
    """
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    if not containers:
        return None
    meta = _meta(pod)
    default = (meta.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if default in containers:
        return default
    labels = meta.get("labels") or {}
    for app in (labels.get("app.kubernetes.io/name"), labels.get("app")):
        if app and app in containers:
            return app
    return next((name for name in containers if not is_sidecar(name)), containers[0])


def _app_image(pod_like: dict) -> str | None:
    """The image of the application container of a pod or a pod template."""
    app = choose_app_container(pod_like)
    containers = (pod_like.get("spec") or {}).get("containers") or []
    return next((c.get("image") for c in containers if c.get("name") == app), None)


def _state(state: dict | None) -> dict | None:
    """Flatten a container state {running|waiting|terminated: {...}} into one dict."""
    if not state:
        return None
    for key in ("terminated", "waiting", "running"):
        if key in state and state[key] is not None:
            detail = state[key] or {}
            flat = {"state": key}
            for field, out in (
                ("reason", "reason"),
                ("message", "message"),
                ("exitCode", "exit_code"),
                ("signal", "signal"),
                ("startedAt", "started_at"),
                ("finishedAt", "finished_at"),
            ):
                if detail.get(field) is not None:
                    flat[out] = detail[field]
            return flat
    return None


def _pod_status_text(pod: dict) -> str:
    """The STATUS column of `kubectl get pods`."""
    status = pod.get("status") or {}
    if _meta(pod).get("deletionTimestamp"):
        return "Terminating"
    for init in status.get("initContainerStatuses") or []:
        state = init.get("state") or {}
        if (state.get("waiting") or {}).get("reason") not in (None, "PodInitializing"):
            return f"Init:{state['waiting']['reason']}"
        if state.get("terminated") and state["terminated"].get("exitCode", 0) != 0:
            return f"Init:{state['terminated'].get('reason') or 'Error'}"
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for container in reversed(status.get("containerStatuses") or []):  # the first container wins
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            terminated = state["terminated"]
            reason = terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}"
    return reason


# --------------------------------------------------------------------------------------------
# Result shapes
# --------------------------------------------------------------------------------------------


class Termination(BaseModel):
    container: str
    reason: str | None = None
    exit_code: int | None = None
    finished_at: str | None = None


class PodSummary(BaseModel):
    name: str
    phase: str | None
    status: str
    ready: bool
    ready_containers: str
    restarts: int
    app_container: str | None
    image: str | None
    images: list[str]
    waiting_reason: str | None = None
    waiting_message: str | None = None
    last_termination: Termination | None = None
    node: str | None = None
    age_seconds: int | None = None
    age: str | None = None
    start_time: str | None = None
    pod_template_hash: str | None = None
    role: str | None = None


class EventSummary(BaseModel):
    type: str | None
    reason: str | None
    object: str
    message: str
    count: int
    first_seen: str | None
    last_seen: str | None
    last_seen_ago: str | None


class ContainerLog(BaseModel):
    """Raw container log for the evidence collector; `error` is set instead of `text` on failure."""

    pod: str
    container: str | None = None
    previous: bool = False
    text: str = ""
    lines: int = 0
    error: ToolError | None = None


def _summarise_pod(pod: dict) -> PodSummary:
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    labels = meta.get("labels") or {}
    statuses = {c.get("name"): c for c in status.get("containerStatuses") or []}
    app = choose_app_container(pod)
    ordered = sorted(statuses.values(), key=lambda c: c.get("name") != app)  # app container first

    waiting = next((c["state"]["waiting"] for c in ordered if (c.get("state") or {}).get("waiting")), None)
    terminations = [
        (c.get("name"), (c.get("state") or {}).get("terminated") or (c.get("lastState") or {}).get("terminated"))
        for c in ordered
    ]
    terminations = [(name, term) for name, term in terminations if term]
    last_termination = None
    if terminations:
        name, term = max(terminations, key=lambda item: item[1].get("finishedAt") or "")
        last_termination = Termination(
            container=name,
            reason=term.get("reason"),
            exit_code=term.get("exitCode"),
            finished_at=term.get("finishedAt"),
        )
    ready_count = sum(1 for c in statuses.values() if c.get("ready"))
    total = len(spec.get("containers") or []) or len(statuses)
    age_seconds, age = _age(meta.get("creationTimestamp"))
    return PodSummary(
        name=meta.get("name", ""),
        phase=status.get("phase"),
        status=_pod_status_text(pod),
        ready=total > 0 and ready_count == total,
        ready_containers=f"{ready_count}/{total}",
        restarts=sum(int(c.get("restartCount") or 0) for c in statuses.values()),
        app_container=app,
        image=_app_image(pod) or (statuses.get(app) or {}).get("image"),
        images=_images(spec),
        waiting_reason=(waiting or {}).get("reason"),
        waiting_message=(waiting or {}).get("message"),
        last_termination=last_termination,
        node=spec.get("nodeName"),
        age_seconds=age_seconds,
        age=age,
        start_time=status.get("startTime"),
        pod_template_hash=_pod_hash(labels),
        role=labels.get("role"),
    )


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------


def _list_pods_raw(kube: _Kube, namespace: str, label_selector: str) -> list[dict]:
    body = kube.json(
        _Op("list", "pods", namespace),
        kube.core.list_namespaced_pod,
        namespace,
        label_selector=label_selector or None,
    )
    return body.get("items") or []


@_tool
def list_pods(namespace: str, label_selector: str = "") -> dict:
    """List the pods of a namespace, optionally filtered by a label selector, with their health.

    Use it first to see which stable and canary pods exist and whether they are healthy, and to get
    exact pod names for describe_pod, get_pod_logs and get_events.

    Args:
        namespace: the Kubernetes namespace, e.g. "demo".
        label_selector: Kubernetes label selector such as "role=canary" or "app=web,role in (stable,canary)";
            empty lists every pod in the namespace.

    Returns:
        {"namespace", "label_selector", "count", "pods": [...], "omitted"} where each pod has name, phase,
        status (the kubectl STATUS column, e.g. Running, CrashLoopBackOff, OOMKilled), ready (bool),
        ready_containers ("1/2"), restarts, app_container, image (of the app container), images (all
        containers), waiting_reason/waiting_message, last_termination {container, reason, exit_code,
        finished_at}, node, age_seconds, age ("5m12s"), start_time, pod_template_hash and role.
        On failure: {"error": {"kind", "message", "hint"}}.
    """
    _check_namespace(namespace)
    selector = _check_selector(label_selector)
    pods = _list_pods_raw(_kube(), namespace, selector)
    summaries = sorted((_summarise_pod(pod) for pod in pods), key=lambda pod: (pod.role or "", pod.name))
    shown, omitted = _cap(summaries, MAX_ITEMS)
    return {
        "namespace": namespace,
        "label_selector": selector,
        "count": len(summaries),
        "pods": [pod.model_dump(mode="json") for pod in shown],
        "omitted": omitted,
    }


def _event_time(event: dict) -> datetime | None:
    return (
        _parse_time(event.get("lastTimestamp"))
        or _parse_time(event.get("eventTime"))
        or _parse_time((event.get("series") or {}).get("lastObservedTime"))
        or _parse_time(event.get("firstTimestamp"))
        or _parse_time(_meta(event).get("creationTimestamp"))
    )


def _collect_events(
    kube: _Kube, namespace: str, object_names: list[str] | None, kinds: list[str] | None, limit: int
) -> tuple[list[EventSummary], int]:
    op = _Op("list", "events", namespace)
    raw: list[dict] = []
    names = list(dict.fromkeys(object_names or []))
    if names and len(names) <= 10:
        for name in names:
            body = kube.json(
                op, kube.core.list_namespaced_event, namespace, field_selector=f"involvedObject.name={name}"
            )
            raw.extend(body.get("items") or [])
    else:
        raw = kube.json(op, kube.core.list_namespaced_event, namespace).get("items") or []
        if names:
            wanted = set(names)
            raw = [event for event in raw if (event.get("involvedObject") or {}).get("name") in wanted]
    if kinds:
        wanted_kinds = {kind.lower() for kind in kinds}
        raw = [e for e in raw if (e.get("involvedObject") or {}).get("kind", "").lower() in wanted_kinds]

    merged: dict[tuple[str, str, str], dict] = {}
    for event in raw:
        involved = event.get("involvedObject") or {}
        obj = f"{involved.get('kind', '?')}/{involved.get('name', '?')}"
        key = (obj, event.get("reason") or "", event.get("message") or event.get("note") or "")
        count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
        last = _event_time(event)
        first = _parse_time(event.get("firstTimestamp")) or _parse_time(event.get("eventTime")) or last
        entry = merged.get(key)
        if entry is None:
            merged[key] = {"type": event.get("type"), "count": count, "first": first, "last": last}
            continue
        entry["count"] += count
        if last and (entry["last"] is None or last > entry["last"]):
            entry["last"], entry["type"] = last, event.get("type")
        if first and (entry["first"] is None or first < entry["first"]):
            entry["first"] = first

    oldest = datetime.min.replace(tzinfo=timezone.utc)
    ordered = sorted(merged.items(), key=lambda item: item[1]["last"] or oldest, reverse=True)
    now = datetime.now(timezone.utc)
    summaries = [
        EventSummary(
            type=entry["type"],
            reason=reason or None,
            object=obj,
            message=message,
            count=entry["count"],
            first_seen=_iso(entry["first"]),
            last_seen=_iso(entry["last"]),
            last_seen_ago=human_duration((now - entry["last"]).total_seconds()) if entry["last"] else None,
        )
        for (obj, reason, message), entry in ordered
    ]
    shown, omitted = _cap(summaries, limit)
    return shown, omitted


@_tool
def get_events(
    namespace: str, object_names: list[str] | None = None, kinds: list[str] | None = None, limit: int = 50
) -> dict:
    """Kubernetes events (scheduling, image pulls, probe failures, OOM kills, back-offs), newest first.

    Use it to learn why a pod is unhealthy or why a rollout step failed. Pass the pod, ReplicaSet or
    Rollout names you care about; identical events are merged with their counts summed.

    Args:
        namespace: the Kubernetes namespace.
        object_names: names of the involved objects (pods, replicasets, the rollout); empty or omitted
            returns the events of the whole namespace.
        kinds: optional kinds to keep, e.g. ["Pod", "Rollout"].
        limit: maximum number of merged events to return (1..200, default 50).

    Returns:
        {"namespace", "count", "events": [{"type" (Normal/Warning), "reason", "object" ("Pod/name"),
        "message", "count", "first_seen", "last_seen", "last_seen_ago"}], "omitted"}.
        On failure: {"error": {"kind", "message", "hint"}}.
    """
    _check_namespace(namespace)
    if isinstance(object_names, str):
        object_names = [object_names]
    if isinstance(kinds, str):
        kinds = [kinds]
    for name in object_names or []:
        _check_name(name, "object name")
    if any(not isinstance(kind, str) for kind in kinds or []):
        raise _invalid(f"kinds must be a list of kind names such as ['Pod', 'Rollout'], got {kinds!r}")
    limit = _int_arg(limit, "limit", 1, MAX_EVENTS) or 50
    events, omitted = _collect_events(_kube(), namespace, object_names, kinds, limit)
    return {
        "namespace": namespace,
        "count": len(events),
        "events": [event.model_dump(mode="json") for event in events],
        "omitted": omitted,
    }


def _get_pod(kube: _Kube, namespace: str, name: str) -> dict:
    try:
        return kube.json(_Op("get", "pods", namespace, name), kube.core.read_namespaced_pod, name, namespace)
    except _Failure as failure:
        if failure.result["error"]["kind"] == "not_found":
            failure.result["error"]["hint"] = (
                f"No pod named {name!r} in namespace {namespace!r}. Pods are replaced during rollouts and "
                "restarts; call list_pods for the current names."
            )
        raise


def _container_detail(spec: dict, status: dict | None) -> dict:
    status = status or {}
    resources = spec.get("resources") or {}
    detail = {
        "name": spec.get("name"),
        "image": spec.get("image"),
        "sidecar": is_sidecar(spec.get("name", "")),
        "ready": bool(status.get("ready")),
        "started": status.get("started"),
        "restarts": int(status.get("restartCount") or 0),
        "state": _state(status.get("state")),
        "last_state": _state(status.get("lastState")),
        "requests": resources.get("requests") or {},
        "limits": resources.get("limits") or {},
    }
    if spec.get("restartPolicy") == "Always":
        detail["native_sidecar"] = True
    return detail


@_tool
def describe_pod(namespace: str, name: str) -> dict:
    """Everything `kubectl describe pod` shows that matters for diagnosis.

    Use it on a pod that list_pods shows as unhealthy (not ready, restarting, waiting) to see why:
    container states and last states (OOMKilled, exit codes), resource requests/limits, conditions and
    the pod's recent events.

    Args:
        namespace: the Kubernetes namespace.
        name: the exact pod name (from list_pods).

    Returns:
        {"name", "namespace", "phase", "status", "node", "start_time", "age", "labels", "owner",
        "pod_template_hash", "role", "app_container", "conditions": [{"type", "status", "reason",
        "message", "last_transition_time"}], "containers": [{"name", "image", "sidecar", "ready",
        "started", "restarts", "state", "last_state", "requests", "limits"}], "init_containers": [...],
        "events": [newest first, merged, as get_events], "events_error" (only when events could not be read)}.
        On failure: {"error": {"kind", "message", "hint"}}.
    """
    _check_namespace(namespace)
    _check_name(name, "pod name")
    kube = _kube()
    pod = _get_pod(kube, namespace, name)
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    statuses = {c.get("name"): c for c in status.get("containerStatuses") or []}
    init_statuses = {c.get("name"): c for c in status.get("initContainerStatuses") or []}
    owners = meta.get("ownerReferences") or []
    _, age = _age(meta.get("creationTimestamp"))
    result: dict[str, Any] = {
        "name": meta.get("name"),
        "namespace": namespace,
        "phase": status.get("phase"),
        "status": _pod_status_text(pod),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "node": spec.get("nodeName"),
        "start_time": status.get("startTime"),
        "age": age,
        "labels": meta.get("labels") or {},
        "owner": f"{owners[0].get('kind')}/{owners[0].get('name')}" if owners else None,
        "pod_template_hash": _pod_hash(meta.get("labels") or {}),
        "role": (meta.get("labels") or {}).get("role"),
        "app_container": choose_app_container(pod),
        "conditions": [
            {
                "type": c.get("type"),
                "status": c.get("status"),
                "reason": c.get("reason"),
                "message": c.get("message"),
                "last_transition_time": c.get("lastTransitionTime"),
            }
            for c in status.get("conditions") or []
        ],
        "containers": [_container_detail(c, statuses.get(c.get("name"))) for c in spec.get("containers") or []],
        "init_containers": [
            _container_detail(c, init_statuses.get(c.get("name"))) for c in spec.get("initContainers") or []
        ],
    }
    try:
        events, _ = _collect_events(kube, namespace, [name], None, 20)
        result["events"] = [event.model_dump(mode="json") for event in events]
    except _Failure as failure:
        result["events"] = []
        result["events_error"] = failure.result["error"]
    return result


def _log_request(namespace: str, pod: str, container: str, tail_lines: int | None, since_seconds: int | None,
                 previous: bool, timestamps: bool) -> dict[str, Any]:
    return {"container": container, "tail_lines": tail_lines, "since_seconds": since_seconds,
            "previous": previous or None, "timestamps": timestamps or None, "limit_bytes": MAX_RAW_LOG_BYTES}


def _log_failure(failure: _Failure, pod: str, container: str, previous: bool) -> _Failure:
    """A missing previous log, or the log of a container that never started, is `not_found`."""
    if previous and failure.status in (400, 404):
        return _Failure(
            error_result(
                "not_found",
                f"container {container!r} of pod {pod!r} has no previous (crashed) log ({failure.detail})",
                "The container has not restarted (or the old log was already removed); "
                "read the current log with previous=False, and check restarts with list_pods.",
            )
        )
    if failure.status == 400:
        return _Failure(
            error_result(
                "not_found",
                f"container {container!r} of pod {pod!r} has no log ({failure.detail})",
                "A container that never started (image pull failure, bad config, pending pod) has no log: "
                "its waiting reason in list_pods or describe_pod, and get_events, explain why.",
            )
        )
    return failure


def _read_log(
    kube: _Kube,
    namespace: str,
    pod: str,
    container: str,
    tail_lines: int | None,
    since_seconds: int | None,
    previous: bool,
    timestamps: bool = False,
) -> str:
    try:
        body = kube.raw(
            _Op("get", "pods/log", namespace, pod), kube.core.read_namespaced_pod_log, pod, namespace,
            **_log_request(namespace, pod, container, tail_lines, since_seconds, previous, timestamps),
        )
    except _Failure as failure:
        raise _log_failure(failure, pod, container, previous) from None
    return body.decode("utf-8", errors="replace")


def _int_arg(value: Any, name: str, low: int, high: int, hint: str | None = None) -> int | None:
    """Accept an integer (models sometimes send 200.0 or "200"); None stays None."""
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}, got {value!r}", hint)
    return number


def _bool_arg(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid(f"{name} must be true or false, got {value!r}")


def _log_args(
    container: Any, tail_lines: Any, since_seconds: Any, previous: Any, max_tail: int
) -> tuple[str | None, int | None, int | None, bool]:
    if container in ("", None):
        container = None
    elif not isinstance(container, str) or not _CONTAINER.match(container):
        raise _invalid(f"container must be a container name or omitted, got {container!r}")
    tail = _int_arg(
        tail_lines,
        "tail_lines",
        1,
        max_tail,
        "Ask for the last few hundred lines; use since_seconds for a time window.",
    )
    since = _int_arg(
        since_seconds,
        "since_seconds",
        1,
        30 * 86400,
        "Use the canary's age in seconds (age_seconds from list_pods) to align stable and canary windows.",
    )
    return container, tail, since, _bool_arg(previous, "previous")


def _pick_container(pod: dict, container: str | None) -> tuple[str, list[str], list[str]]:
    """The container to read, the other containers, and which of those are sidecars."""
    spec = pod.get("spec") or {}
    names = [c.get("name", "") for c in spec.get("containers") or []]
    init_names = [c.get("name", "") for c in spec.get("initContainers") or []]
    if container is None:
        chosen = choose_app_container(pod)
        if chosen is None:
            raise _Failure(error_result("not_found", f"pod {_meta(pod).get('name')!r} has no containers"))
    elif container in names or container in init_names:
        chosen = container
    else:
        raise _invalid(
            f"pod {_meta(pod).get('name')!r} has no container {container!r}",
            f"Containers: {names}; init containers: {init_names}. Omit container to get the application's.",
        )
    others = [name for name in names + init_names if name != chosen]
    return chosen, others, [name for name in others if is_sidecar(name)]


def _cap_log(text: str, max_bytes: int, max_line_chars: int) -> tuple[list[str], int, int]:
    """Keep the newest lines that fit in `max_bytes`; returns (lines, lines dropped, long lines cut)."""
    lines = text.splitlines()
    cut_long = 0
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if len(line) > max_line_chars:
            line = f"{line[:max_line_chars]}…[{len(line) - max_line_chars} chars cut]"
            cut_long += 1
        line_bytes = len(line.encode("utf-8")) + 1
        if size + line_bytes > max_bytes and kept:
            break
        kept.append(line)
        size += line_bytes
    kept.reverse()
    return kept, len(lines) - len(kept), cut_long


@_tool
def get_pod_logs(
    namespace: str,
    pod: str,
    container: str | None = None,
    tail_lines: int = 200,
    since_seconds: int | None = None,
    previous: bool = False,
) -> dict:
    """The last lines of a pod's application log (secrets redacted).

    Use it to see what the application says: errors, stack traces, HTTP status codes. Compare a canary
    pod with a stable pod. After a crash (restarts > 0, CrashLoopBackOff, OOMKilled) call it with
    previous=True to read the log of the container that died. The application container is chosen
    automatically (mesh and telemetry sidecars such as istio-proxy are skipped).

    Args:
        namespace: the Kubernetes namespace.
        pod: the exact pod name (from list_pods).
        container: a container name; omit it to get the application container.
        tail_lines: how many of the newest lines to read (1..10000, default 200).
        since_seconds: only lines from the last N seconds (e.g. the canary's age_seconds).
        previous: true reads the previous, crashed instance of the container.

    Returns:
        {"namespace", "pod", "container" (the one read), "other_containers", "sidecars_skipped",
        "previous", "lines" (number returned), "text" (the log lines, newest last), "truncated" (bool),
        "lines_dropped" (lines removed to fit the size cap), "long_lines_cut", "more_lines_available"
        (older lines exist beyond tail_lines), "note" (why it was cut)}.
        On failure: {"error": {"kind", "message", "hint"}}; kind "not_found" when there is no previous log
        or the container never started (then its waiting reason, e.g. ImagePullBackOff, is the finding).
    """
    _check_namespace(namespace)
    _check_name(pod, "pod name")
    container, tail_lines, since_seconds, previous = _log_args(
        container, tail_lines, since_seconds, previous, MAX_LOG_TAIL_LINES
    )
    tail_lines = tail_lines or 200
    kube = _kube()
    pod_object = _get_pod(kube, namespace, pod)
    chosen, others, sidecars = _pick_container(pod_object, container)
    # One extra line tells whether older lines exist beyond the requested tail.
    text = _read_log(kube, namespace, pod, chosen, tail_lines + 1, since_seconds, previous)
    all_lines = text.splitlines()
    more_available = len(all_lines) > tail_lines
    tail = all_lines[-tail_lines:]
    kept, dropped, cut_long = _cap_log(redact("\n".join(tail)), MAX_LOG_BYTES, MAX_LOG_LINE_CHARS)
    notes = []
    if dropped:
        notes.append(f"{dropped} older lines dropped to stay under {MAX_LOG_BYTES} bytes")
    if cut_long:
        notes.append(f"{cut_long} lines longer than {MAX_LOG_LINE_CHARS} characters were shortened")
    if more_available:
        notes.append(f"the log has more than {tail_lines} lines; only the newest were read")
    restarts = next(
        (int(c.get("restartCount") or 0) for c in (pod_object.get("status") or {}).get("containerStatuses") or []
         if c.get("name") == chosen),
        0,
    )
    if restarts and not previous:
        notes.append(f"the container restarted {restarts} times; previous=True reads the crashed instance's log")
    return {
        "namespace": namespace,
        "pod": pod,
        "container": chosen,
        "other_containers": others,
        "sidecars_skipped": sidecars if container is None else [],
        "previous": previous,
        "lines": len(kept),
        "text": "\n".join(kept),
        "truncated": bool(dropped or cut_long),
        "lines_dropped": dropped,
        "long_lines_cut": cut_long,
        "more_lines_available": more_available,
        "note": "; ".join(notes) or None,
    }


def fetch_container_log(
    namespace: str,
    pod: str,
    container: str | None = None,
    tail_lines: int | None = None,
    since_seconds: int | None = None,
    previous: bool = False,
    timestamps: bool = False,
    settings: Settings | None = None,
    redacted: bool = True,
) -> ContainerLog:
    """The text of one container log, for the evidence collector (not a model tool).

    Redacted unless `redacted=False`: the evidence collector parses the raw text and redacts what it
    emits (signature examples, report lines), which is far cheaper than redacting megabytes of logs.

    Not capped for a model: up to `tail_lines` lines, bounded by `Settings.log_tail_lines` (the default).
    When `container` is given the pod is not fetched (pass `app_container` from list_pods to save a
    request); otherwise the application container is chosen as in get_pod_logs. Never raises: a
    failure (including a missing previous log) is reported in `error`.
    """
    settings = settings or get_settings()
    limit = settings.log_tail_lines
    try:
        _check_namespace(namespace)
        _check_name(pod, "pod name")
        container, tail_lines, since_seconds, previous = _log_args(
            container, tail_lines, since_seconds, previous, limit
        )
        kube = _kube(settings)
        chosen = container or _pick_container(_get_pod(kube, namespace, pod), None)[0]
        raw = _read_log(kube, namespace, pod, chosen, tail_lines or limit, since_seconds, previous, timestamps)
        text = redact(raw) if redacted else raw
        return ContainerLog(pod=pod, container=chosen, previous=previous, text=text, lines=text.count("\n"))
    except _Failure as failure:
        error = ToolError(**redact_data(failure.result["error"]))
    except Exception as exc:  # noqa: BLE001 - the collector must get a result for every pod
        error = ToolError(kind="upstream_error", message=redact(f"{type(exc).__name__}: {exc}"))
    return ContainerLog(pod=pod, container=container, previous=previous, error=error)


class LogUnavailable(Exception):
    """A container log could not be read; `error` says why, as a tool would."""

    def __init__(self, error: ToolError) -> None:
        super().__init__(error.message)
        self.error = error


def stream_container_log_lines(
    namespace: str,
    pod: str,
    container: str | None = None,
    tail_lines: int | None = None,
    since_seconds: int | None = None,
    settings: Settings | None = None,
) -> Iterator[str]:
    """The lines of one current container log as they arrive (no trailing newlines), unredacted.

    For the evidence collector, which parses while reading so even a huge log never sits in memory,
    and redacts what it emits. Bounded by `Settings.log_tail_lines`. Raises `LogUnavailable`.
    """
    settings = settings or get_settings()
    try:
        _check_namespace(namespace)
        _check_name(pod, "pod name")
        container, tail_lines, since_seconds, _ = _log_args(
            container, tail_lines, since_seconds, False, settings.log_tail_lines)
        kube = _kube(settings)
        chosen = container or _pick_container(_get_pod(kube, namespace, pod), None)[0]
        chunks = kube.stream(
            _Op("get", "pods/log", namespace, pod), kube.core.read_namespaced_pod_log, pod, namespace,
            **_log_request(namespace, pod, chosen, tail_lines or settings.log_tail_lines, since_seconds, False, False),
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        rest = ""
        for chunk in chunks:
            lines = (rest + decoder.decode(chunk)).split("\n")
            rest = lines.pop()
            yield from lines
        rest += decoder.decode(b"", final=True)
        if rest:
            yield rest
    except _Failure as failure:
        failure = _log_failure(failure, pod, container or "", False)
        raise LogUnavailable(ToolError(**redact_data(failure.result["error"]))) from None


# --------------------------------------------------------------------------------------------
# Argo Rollouts
# --------------------------------------------------------------------------------------------


def _describe_step(step: dict) -> str:
    if "setWeight" in step:
        return f"setWeight {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration else "pause (until promoted)"
    if "analysis" in step:
        templates = step["analysis"].get("templates") or []
        templates = [t.get("templateName") or t.get("clusterTemplateName") for t in templates]
        return f"analysis {', '.join(filter(None, templates))}".strip()
    return ", ".join(step) or "empty step"


def _set_weight(rollout: dict, steps: list[dict]) -> int:
    """The weight the current step asks for, as Argo computes it (GetCurrentSetWeight)."""
    status = rollout.get("status") or {}
    if status.get("abort"):
        return 0
    index = status.get("currentStepIndex")
    if index is None or index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if "setWeight" in step:
            return int(step["setWeight"])
    return 0


def _current_step(steps: list[dict], index: int | None) -> dict | None:
    if not steps or index is None:
        return None
    step = steps[index] if index < len(steps) else None
    return {
        "index": index,
        "total": len(steps),
        "description": _describe_step(step) if step else "all steps completed",
        "step": step,
    }


def _actual_weight(status: dict, stable: dict, canary: dict) -> int | None:
    """Traffic weight the canary really gets: from the traffic router when there is one, else its
    share of available pods (what `kubectl argo rollouts get` shows)."""
    weights = (status.get("canary") or {}).get("weights") or {}
    if (weights.get("canary") or {}).get("weight") is not None:
        return int(weights["canary"]["weight"])
    if stable["pod_template_hash"] and stable["pod_template_hash"] == canary["pod_template_hash"]:
        return 100
    total = (stable.get("available") or 0) + (canary.get("available") or 0)
    return round(100 * (canary.get("available") or 0) / total) if total else None


def _replicaset_info(replicaset: dict) -> dict:
    meta, spec, status = _meta(replicaset), replicaset.get("spec") or {}, replicaset.get("status") or {}
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    owners = meta.get("ownerReferences") or []
    template = spec.get("template") or {}
    return {
        "name": meta.get("name"),
        "revision": annotations.get(ROLLOUT_REVISION_ANNOTATION)
        or annotations.get(DEPLOYMENT_REVISION_ANNOTATION),
        "pod_template_hash": _pod_hash(labels),
        "app_image": _app_image(template),
        "images": _images(template.get("spec") or {}),
        "replicas": spec.get("replicas"),
        "ready": status.get("readyReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "owner": f"{owners[0].get('kind')}/{owners[0].get('name')}" if owners else None,
    }


def _provider_name(provider: dict) -> str | None:
    """'prometheus', 'job', or for plugins the plugin's name, e.g. 'plugin argoproj-labs/metric-ai'."""
    names = []
    for kind, config in provider.items():
        plugins = list(config) if kind == "plugin" and isinstance(config, dict) else []
        names.append(f"{kind} {', '.join(plugins)}" if plugins else kind)
    return ", ".join(names) or None


def _analysis_run_info(run: dict) -> dict:
    meta, spec, status = _meta(run), run.get("spec") or {}, run.get("status") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    providers = {m.get("name"): _provider_name(m.get("provider") or {}) for m in spec.get("metrics") or []}
    metrics = []
    for result in status.get("metricResults") or []:
        measurements = result.get("measurements") or []
        metrics.append(
            {
                "name": result.get("name"),
                "provider": providers.get(result.get("name")) or None,
                "phase": result.get("phase"),
                "message": result.get("message"),
                "count": result.get("count", len(measurements)),
                "successful": result.get("successful", 0),
                "failed": result.get("failed", 0),
                "inconclusive": result.get("inconclusive", 0),
                "error": result.get("error", 0),
                "latest_measurements": [
                    {
                        "phase": m.get("phase"),
                        "value": m.get("value"),
                        "message": m.get("message"),
                        "started_at": m.get("startedAt"),
                        "finished_at": m.get("finishedAt"),
                    }
                    for m in measurements[-MAX_MEASUREMENTS:][::-1]
                ],
            }
        )
    return {
        "name": meta.get("name"),
        "phase": status.get("phase"),
        "message": status.get("message"),
        "type": labels.get("rollout-type"),
        "revision": annotations.get(ROLLOUT_REVISION_ANNOTATION),
        "pod_template_hash": labels.get(ROLLOUT_HASH_LABEL),
        "created": meta.get("creationTimestamp"),
        "started_at": status.get("startedAt"),
        "metrics": metrics,
    }


def _list_argo(kube: _Kube, namespace: str, plural: str, label_selector: str | None = None) -> list[dict]:
    """Items of an argoproj.io/v1alpha1 kind (rollouts, analysisruns) in a namespace."""
    listed = kube.json(
        _Op("list", plural, namespace, group=ARGO_GROUP),
        kube.custom.list_namespaced_custom_object,
        ARGO_GROUP,
        ARGO_VERSION,
        namespace,
        plural,
        label_selector=label_selector,
    )
    return listed.get("items") or []


def _get_rollout_object(kube: _Kube, namespace: str, name: str) -> dict:
    return kube.json(
        _Op("get", "rollouts", namespace, name, ARGO_GROUP),
        kube.custom.get_namespaced_custom_object,
        ARGO_GROUP,
        ARGO_VERSION,
        namespace,
        "rollouts",
        name,
    )


def _rollout_not_found(kube: _Kube, namespace: str, name: str, failure: _Failure) -> _Failure:
    try:
        names = [_meta(item).get("name") for item in _list_argo(kube, namespace, "rollouts")]
        hint = (
            f"Rollouts in namespace {namespace!r}: {names}."
            if names
            else f"There are no Argo Rollouts in namespace {namespace!r}; check the namespace."
        )
    except _Failure:
        hint = "Check the rollout name and namespace; the Argo Rollouts CRDs may not be installed."
    failure.result["error"]["hint"] = hint
    return failure


@_tool
def get_rollout(namespace: str, name: str) -> dict:
    """The Argo Rollout: where the canary is, what stable and canary run, and what its analysis says.

    Use it to learn the canary step and weight, the stable and canary revisions, images and
    pod-template hashes (pods carry the hash in the rollouts-pod-template-hash label), the rollout's
    conditions, and the AnalysisRuns with their latest measurements.

    Args:
        namespace: the Kubernetes namespace of the rollout.
        name: the Rollout name.

    Returns:
        {"name", "namespace", "phase", "message", "paused", "pause_reasons", "aborted", "strategy",
        "current_step": {"index", "total", "description", "step"}, "set_weight", "actual_weight",
        "replicas": {"desired", "current", "updated", "ready", "available"}, "fully_promoted",
        "stable" and "canary": {"revision", "pod_template_hash", "app_image" (the application container's
        image), "images" (all containers), "replicaset", "ready", "available"}, "steps" (all, described),
        "replicasets": [...], "conditions": [{"type", "status", "reason", "message"}],
        "analysis_runs": [newest first: {"name", "phase", "message", "type", "revision",
        "pod_template_hash", "metrics": [{"name", "phase", "count", "successful", "failed",
        "latest_measurements": [{"phase", "value", "message", "started_at"}]}]}]}.
        Parts that could not be read are reported under "partial_errors".
        On failure: {"error": {"kind", "message", "hint"}}.
    """
    _check_namespace(namespace)
    _check_name(name, "rollout name")
    kube = _kube()
    try:
        rollout = _get_rollout_object(kube, namespace, name)
    except _Failure as failure:
        if failure.result["error"]["kind"] == "not_found":
            raise _rollout_not_found(kube, namespace, name, failure) from None
        raise
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    strategy = next(iter(spec.get("strategy") or {}), None)  # "canary" or "blueGreen"
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    partial: dict[str, dict] = {}

    replicasets: list[dict] = []
    try:
        listed = kube.json(
            _Op("list", "replicasets", namespace, group="apps"), kube.apps.list_namespaced_replica_set, namespace
        )
        replicasets = [
            _replicaset_info(rs) for rs in listed.get("items") or [] if _owned_by(rs, "Rollout", name)
        ]
    except _Failure as failure:
        partial["replicasets"] = failure.result["error"]
    replicasets.sort(key=lambda rs: int(rs["revision"]) if str(rs["revision"]).isdigit() else -1, reverse=True)
    by_hash = {rs["pod_template_hash"]: rs for rs in replicasets if rs["pod_template_hash"]}

    def side(pod_hash: str | None, fallback: dict) -> dict:
        rs = by_hash.get(pod_hash or "", {})
        return {
            "revision": rs.get("revision"),
            "pod_template_hash": pod_hash,
            "app_image": rs.get("app_image") or fallback.get("app_image"),
            "images": rs.get("images") or fallback.get("images") or [],
            "replicaset": rs.get("name"),
            "ready": rs.get("ready"),
            "available": rs.get("available"),
        }

    stable_hash, canary_hash = status.get("stableRS"), status.get("currentPodHash")
    # Without its ReplicaSet, the canary still runs what the rollout's pod template says.
    from_template = _replicaset_info({"spec": {"template": spec.get("template") or {}}})
    stable, canary = side(stable_hash, {}), side(canary_hash, from_template)

    analysis_runs: list[dict] = []
    try:
        runs = [run for run in _list_argo(kube, namespace, "analysisruns") if _owned_by(run, "Rollout", name)]
        runs.sort(key=lambda run: _meta(run).get("creationTimestamp") or "", reverse=True)
        analysis_runs = [_analysis_run_info(run) for run in runs[:MAX_ANALYSIS_RUNS]]
    except _Failure as failure:
        partial["analysis_runs"] = failure.result["error"]

    canary_status = status.get("canary") or {}
    result: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "phase": status.get("phase"),
        "message": status.get("message"),
        "paused": bool(spec.get("paused") or status.get("pauseConditions") or status.get("controllerPause")),
        "pause_reasons": [p.get("reason") for p in status.get("pauseConditions") or []],
        "aborted": bool(status.get("abort")),
        "strategy": strategy,
        "current_step": _current_step(steps, status.get("currentStepIndex")),
        "steps": [_describe_step(step) for step in steps],
        "set_weight": _set_weight(rollout, steps) if strategy == "canary" else None,
        "actual_weight": _actual_weight(status, stable, canary),
        "replicas": {
            "desired": spec.get("replicas"),
            "current": status.get("replicas"),
            "updated": status.get("updatedReplicas"),
            "ready": status.get("readyReplicas"),
            "available": status.get("availableReplicas"),
        },
        "fully_promoted": bool(stable_hash) and stable_hash == canary_hash,
        "stable": stable,
        "canary": canary,
        "replicasets": replicasets[:10],
        "current_step_analysis_run": (canary_status.get("currentStepAnalysisRunStatus") or {}).get("name"),
        "background_analysis_run": (canary_status.get("currentBackgroundAnalysisRunStatus") or {}).get("name"),
        "conditions": [
            {key: c.get(key) for key in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
        ],
        "analysis_runs": analysis_runs,
    }
    if partial:
        result["partial_errors"] = partial
    return result


# --------------------------------------------------------------------------------------------
# Metrics and related resources
# --------------------------------------------------------------------------------------------


def _millicores(quantity: Any) -> float | None:
    try:
        return round(float(parse_quantity(quantity) * 1000), 1)
    except (ValueError, TypeError, ArithmeticError):
        return None


def _mebibytes(quantity: Any) -> float | None:
    try:
        return round(float(parse_quantity(quantity) / Decimal(1024 * 1024)), 1)
    except (ValueError, TypeError, ArithmeticError):
        return None


@_tool
def get_pod_metrics(namespace: str, label_selector: str = "") -> dict:
    """Current CPU and memory use of pods, from the metrics.k8s.io API (metrics-server).

    Use it to spot a canary that uses far more CPU or memory than stable (leaks, hot loops, OOM risk).
    It is a point-in-time snapshot; use the Prometheus tools for history.

    Args:
        namespace: the Kubernetes namespace.
        label_selector: label selector such as "role=canary"; empty means every pod.

    Returns:
        {"namespace", "label_selector", "count", "pods": [{"name", "timestamp", "window",
        "cpu_millicores", "memory_mib", "containers": [{"name", "cpu_millicores", "memory_mib"}]}], "omitted"}.
        On failure: {"error": {"kind", "message", "hint"}}; kind "not_found" when the metrics API is
        not installed.
    """
    _check_namespace(namespace)
    selector = _check_selector(label_selector)
    kube = _kube()
    try:
        body = kube.json(
            _Op("list", "pods", namespace, group=METRICS_GROUP),
            kube.custom.list_namespaced_custom_object,
            METRICS_GROUP,
            METRICS_VERSION,
            namespace,
            "pods",
            label_selector=selector or None,
        )
    except _Failure as failure:
        error = failure.result["error"]
        if error["kind"] == "not_found":
            raise _Failure(
                error_result(
                    "not_found",
                    "the metrics.k8s.io API is not available in this cluster (metrics-server is not installed)",
                    "Use the Prometheus tools for CPU and memory, or skip resource usage.",
                )
            ) from None
        if failure.status == 503:
            error["message"] = f"the metrics.k8s.io API is unavailable right now: {error['message']}"
            error["hint"] = "metrics-server is not ready; use the Prometheus tools instead."
        raise
    pods = []
    for item in body.get("items") or []:
        containers = [
            {
                "name": c.get("name"),
                "cpu_millicores": _millicores((c.get("usage") or {}).get("cpu", "0")),
                "memory_mib": _mebibytes((c.get("usage") or {}).get("memory", "0")),
            }
            for c in item.get("containers") or []
        ]
        pods.append(
            {
                "name": _meta(item).get("name"),
                "timestamp": item.get("timestamp"),
                "window": item.get("window"),
                "cpu_millicores": round(sum(c["cpu_millicores"] or 0 for c in containers), 1),
                "memory_mib": round(sum(c["memory_mib"] or 0 for c in containers), 1),
                "containers": containers,
            }
        )
    pods.sort(key=lambda pod: pod["name"] or "")
    shown, omitted = _cap(pods, MAX_ITEMS)
    return {
        "namespace": namespace,
        "label_selector": selector,
        "count": len(pods),
        "pods": shown,
        "omitted": omitted,
    }


def _service_info(service: dict) -> dict:
    spec = service.get("spec") or {}
    return {
        "name": _meta(service).get("name"),
        "type": spec.get("type", "ClusterIP"),
        "selector": spec.get("selector") or {},
        "ports": [
            {
                "name": p.get("name"),
                "port": p.get("port"),
                "target_port": p.get("targetPort"),
                "protocol": p.get("protocol", "TCP"),
                "node_port": p.get("nodePort"),
            }
            for p in spec.get("ports") or []
        ],
    }


def _deployment_info(deployment: dict) -> dict:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return {
        "name": _meta(deployment).get("name"),
        "replicas": spec.get("replicas"),
        "ready": status.get("readyReplicas", 0),
        "updated": status.get("updatedReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "images": _images((spec.get("template") or {}).get("spec") or {}),
    }


@_tool
def list_related_resources(namespace: str, label_selector: str = "") -> dict:
    """Services, ReplicaSets, Deployments, Argo Rollouts and ConfigMap names in a namespace.

    Use it to see how traffic reaches the pods (service selectors and ports), which ReplicaSet
    revisions exist with which images, and which ConfigMaps the app may depend on. Secrets are never
    read, and ConfigMap contents are never shown (names only).

    Args:
        namespace: the Kubernetes namespace.
        label_selector: label selector applied to every kind by its own labels (e.g. "app=web");
            empty lists everything. Note services are often not labelled like their pods.

    Returns:
        {"namespace", "label_selector", "services": [{"name", "type", "selector", "ports": [{"name",
        "port", "target_port", "protocol", "node_port"}]}], "replicasets": [{"name", "revision",
        "pod_template_hash", "app_image", "images", "replicas", "ready", "available", "owner"}], "deployments":
        [{"name", "replicas", "ready", "updated", "available", "images"}], "rollouts": [{"name",
        "phase"}], "configmaps": [names], "omitted": {kind: count}, "partial_errors": {kind: error}}.
        On failure of every kind: {"error": {"kind", "message", "hint"}}.
    """
    _check_namespace(namespace)
    selector = _check_selector(label_selector) or None
    kube = _kube()

    def typed(resource: str, group: str, method: Callable[..., Any]) -> Callable[[], list[dict]]:
        op = _Op("list", resource, namespace, group=group)
        return lambda: kube.json(op, method, namespace, label_selector=selector).get("items") or []

    sections: dict[str, tuple[Callable[[], list[dict]], Callable[[dict], Any]]] = {
        "services": (typed("services", "", kube.core.list_namespaced_service), _service_info),
        "replicasets": (typed("replicasets", "apps", kube.apps.list_namespaced_replica_set), _replicaset_info),
        "deployments": (typed("deployments", "apps", kube.apps.list_namespaced_deployment), _deployment_info),
        "rollouts": (
            lambda: _list_argo(kube, namespace, "rollouts", selector),
            lambda item: {"name": _meta(item).get("name"), "phase": (item.get("status") or {}).get("phase")},
        ),
        # Names only: ConfigMap data can hold credentials and is never shown.
        "configmaps": (
            typed("configmaps", "", kube.core.list_namespaced_config_map),
            lambda item: _meta(item).get("name"),
        ),
    }
    result: dict[str, Any] = {"namespace": namespace, "label_selector": selector or ""}
    omitted: dict[str, int] = {}
    errors: dict[str, dict] = {}
    first_failure: _Failure | None = None
    for kind, (fetch, shape) in sections.items():
        try:
            items = [shape(item) for item in fetch()]
        except _Failure as failure:
            if failure.result["error"]["kind"] in ("unreachable", "timeout", "not_configured", "unauthorized"):
                raise  # the cluster itself is unusable; the other kinds would fail the same way
            first_failure = first_failure or failure
            errors[kind] = failure.result["error"]
            items = []
        if kind == "rollouts" and errors.get(kind, {}).get("kind") == "not_found":
            errors.pop(kind)  # no Argo Rollouts CRDs: simply nothing to list
        items.sort(key=lambda item: item if isinstance(item, str) else item["name"] or "")
        result[kind], omitted[kind] = _cap(items, MAX_ITEMS)
    if first_failure is not None and len(errors) == len(sections):
        raise first_failure
    result["omitted"] = {kind: count for kind, count in omitted.items() if count}
    if errors:
        result["partial_errors"] = errors
    return result


def _rollout_summary(rollout: dict) -> dict:
    meta, spec, status = _meta(rollout), rollout.get("spec") or {}, rollout.get("status") or {}
    _, age = _age(meta.get("creationTimestamp"))
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "phase": status.get("phase"),
        "message": status.get("message"),
        "paused": bool(spec.get("paused") or status.get("pauseConditions")),
        "current_step_index": status.get("currentStepIndex"),
        "image": _app_image(spec.get("template") or {}),
        "stable_pod_template_hash": status.get("stableRS"),
        "canary_pod_template_hash": status.get("currentPodHash"),
        "age": age,
    }


@_tool
def find_rollouts(name: str = "", namespace: str = "") -> dict:
    """Find Argo Rollouts when the rollout or its namespace is not known exactly.

    Use it before get_rollout when the request names no namespace, or the name may be partial.

    Args:
        name: part of the rollout name to look for (case-insensitive); empty matches every rollout.
        namespace: the namespace to search; empty searches all namespaces (needs cluster-wide read).

    Returns:
        {"namespace" (searched, "" for all), "name", "count", "rollouts": [{"namespace", "name", "phase",
        "message", "paused", "current_step_index", "image" (the desired app image), "stable_pod_template_hash",
        "canary_pod_template_hash", "age"}], "omitted"}. Ask the user when several match.
        On failure: {"error": {"kind", "message", "hint"}}.
    """
    if not isinstance(name, str) or not isinstance(namespace, str):
        raise _invalid("name and namespace must be strings (empty for any)")
    if namespace:
        _check_namespace(namespace)
    kube = _kube()
    if namespace:
        items = _list_argo(kube, namespace, "rollouts")
    else:
        items = kube.json(
            _Op("list", "rollouts", "", group=ARGO_GROUP),
            kube.custom.list_cluster_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            "rollouts",
        ).get("items") or []
    wanted = name.strip().lower()
    found = [_rollout_summary(item) for item in items if wanted in (_meta(item).get("name") or "").lower()]
    found.sort(key=lambda item: (item["name"] != name, item["namespace"] or "", item["name"] or ""))
    shown, omitted = _cap(found, MAX_ITEMS)
    return {"namespace": namespace, "name": name, "count": len(found), "rollouts": shown, "omitted": omitted}


def rollout_revision(namespace: str, rollout: str, settings: Settings | None = None) -> str | None:
    """The canary's pod-template hash (status.currentPodHash): it changes with every new canary
    revision, so verdicts can be cached per (rollout, hash). None when the rollout cannot be read."""
    try:
        body = _get_rollout_object(_kube(settings), namespace, rollout)
    except Exception:  # noqa: BLE001 - no hash simply means no cache
        return None
    return (body.get("status") or {}).get("currentPodHash") or None


def check_api(settings: Settings | None = None) -> str | None:
    """Readiness probe: None when the Kubernetes API answers `/version`, else a one-line reason."""
    try:
        kube = _kube(settings)
        kube.json(_Op("get", "version", ""), k8s_client.VersionApi(kube.api).get_code)
    except _Failure as failure:
        error = failure.result["error"]
        return redact(f"{error['kind']}: {error['message']}")
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        return redact(f"{type(exc).__name__}: {exc}")
    return None
