"""Server-side `Table` rendering, so `kubectl get` prints the columns a real cluster shows.

Column sets follow the apiserver's printers (and Argo's CRD printer columns). Cells of all
columns are always sent, as the apiserver does; kubectl hides priority-1 columns unless -o wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .timeshift import parse_rfc3339

Cell = Callable[[dict[str, Any], float], Any]


def human_duration(seconds: float) -> str:
    """Kubernetes' short age format (`45s`, `3m12s`, `5h10m`, `2d3h`, `400d`, `3y20d`)."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: float) -> str:
    moment = parse_rfc3339(value) if isinstance(value, str) else None
    return "<unknown>" if moment is None else human_duration(now - moment.timestamp())


def dig(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def _age(obj: dict[str, Any], now: float) -> str:
    return since(dig(obj, "metadata", "creationTimestamp"), now)


@dataclass(frozen=True)
class Column:
    name: str
    cell: Cell
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


NAME = Column("Name", lambda o, now: o["metadata"]["name"], format="name",
              description="Name must be unique within a namespace.")
AGE = Column("Age", _age, description="CreationTimestamp is a timestamp representing the server time "
                                      "when this object was created.")


# --- pods -------------------------------------------------------------------------------------

def pod_status_reason(pod: dict[str, Any]) -> str:
    """The STATUS column: a waiting/terminated reason such as CrashLoopBackOff, else the phase."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    init_specs = dig(pod, "spec", "initContainers", default=[]) or []
    initializing = False
    for index, cstatus in enumerate(status.get("initContainerStatuses") or []):
        state = cstatus.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode", 0) == 0:
            continue
        initializing = True
        if terminated:
            reason = "Init:" + (terminated.get("reason") or (
                f"Signal:{terminated['signal']}" if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"))
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        break
    if not initializing:
        has_running = False
        for cstatus in reversed(status.get("containerStatuses") or []):
            state = cstatus.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode', 0)}")
            elif cstatus.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions") or [])
            reason = "Running" if ready else "NotReady"
    if dig(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def _pod_ready(pod: dict[str, Any], now: float) -> str:
    statuses = dig(pod, "status", "containerStatuses", default=[]) or []
    ready = sum(1 for c in statuses if c.get("ready") and (c.get("state") or {}).get("running") is not None)
    return f"{ready}/{len(dig(pod, 'spec', 'containers', default=[]) or [])}"


def _pod_restarts(pod: dict[str, Any], now: float) -> str:
    restarts, last = 0, None
    for cstatus in (dig(pod, "status", "initContainerStatuses", default=[]) or []) + \
            (dig(pod, "status", "containerStatuses", default=[]) or []):
        restarts += int(cstatus.get("restartCount") or 0)
        finished = dig(cstatus, "lastState", "terminated", "finishedAt")
        moment = parse_rfc3339(finished) if isinstance(finished, str) else None
        if moment and (last is None or moment.timestamp() > last):
            last = moment.timestamp()
    if restarts and last is not None:
        return f"{restarts} ({human_duration(now - last)} ago)"
    return str(restarts)


def _none(value: Any) -> Any:
    return "<none>" if value in (None, "", []) else value


def _readiness_gates(pod: dict[str, Any], now: float) -> str:
    gates = dig(pod, "spec", "readinessGates", default=[]) or []
    if not gates:
        return "<none>"
    conditions = {c.get("type"): c.get("status") for c in dig(pod, "status", "conditions", default=[]) or []}
    passed = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{passed}/{len(gates)}"


POD = [
    NAME,
    Column("Ready", _pod_ready, description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", lambda o, now: pod_status_reason(o),
           description="The aggregate status of the containers in this pod."),
    Column("Restarts", _pod_restarts, description="The number of times the containers in this pod have been "
                                                  "restarted and when the last container in this pod has restarted."),
    AGE,
    Column("IP", lambda o, now: _none(dig(o, "status", "podIP")), priority=1,
           description="IP address allocated to the pod. Routable at least within the cluster."),
    Column("Node", lambda o, now: _none(dig(o, "spec", "nodeName")), priority=1,
           description="Name of the Node this pod is scheduled on."),
    Column("Nominated Node", lambda o, now: _none(dig(o, "status", "nominatedNodeName")), priority=1,
           description="Name of the node nominated by the scheduler, if any."),
    Column("Readiness Gates", _readiness_gates, priority=1, description="Pod readiness gates."),
]


# --- events -----------------------------------------------------------------------------------

def _event_times(event: dict[str, Any], now: float) -> tuple[str, str, int]:
    first_raw = event.get("firstTimestamp") or event.get("eventTime")
    first = since(first_raw, now)
    last = since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = int(event.get("count") or 0)
    series = event.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1
    return first, last, count


def _event_object(event: dict[str, Any], now: float) -> str:
    ref = event.get("involvedObject") or {}
    kind = str(ref.get("kind") or "").lower()
    return f"{kind}/{ref['name']}" if ref.get("name") else kind


def _event_source(event: dict[str, Any], now: float) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


EVENT = [
    Column("Last Seen", lambda o, now: _event_times(o, now)[1]),
    Column("Type", lambda o, now: o.get("type", "")),
    Column("Reason", lambda o, now: o.get("reason", "")),
    Column("Object", _event_object),
    Column("Subobject", lambda o, now: dig(o, "involvedObject", "fieldPath", default=""), priority=1),
    Column("Source", _event_source, priority=1),
    Column("Message", lambda o, now: str(o.get("message") or "").strip()),
    Column("First Seen", lambda o, now: _event_times(o, now)[0], priority=1),
    Column("Count", lambda o, now: _event_times(o, now)[2], type="integer", priority=1),
    Column("Name", lambda o, now: o["metadata"]["name"], priority=1),
]


# --- workloads and services -------------------------------------------------------------------

def format_label_selector(selector: Any) -> str:
    if not isinstance(selector, dict):
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator", ""), expr.get("key", ""), expr.get("values") or []
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or "<none>"


def _containers(o: dict[str, Any]) -> list[dict[str, Any]]:
    return dig(o, "spec", "template", "spec", "containers", default=[]) or []


def _int(*path: str) -> Cell:
    return lambda o, now: int(dig(o, *path, default=0) or 0)


CONTAINERS = Column("Containers", lambda o, now: ",".join(c.get("name", "") for c in _containers(o)), priority=1)
IMAGES = Column("Images", lambda o, now: ",".join(c.get("image", "") for c in _containers(o)), priority=1)
SELECTOR = Column("Selector", lambda o, now: format_label_selector(dig(o, "spec", "selector")), priority=1)

REPLICASET = [NAME, Column("Desired", _int("spec", "replicas"), type="integer"),
              Column("Current", _int("status", "replicas"), type="integer"),
              Column("Ready", _int("status", "readyReplicas"), type="integer"),
              AGE, CONTAINERS, IMAGES, SELECTOR]

DEPLOYMENT = [NAME,
              Column("Ready", lambda o, now: f"{int(dig(o, 'status', 'readyReplicas', default=0) or 0)}/"
                                             f"{int(dig(o, 'spec', 'replicas', default=1) or 0)}"),
              Column("Up-to-date", _int("status", "updatedReplicas"), type="integer"),
              Column("Available", _int("status", "availableReplicas"), type="integer"),
              AGE, CONTAINERS, IMAGES, SELECTOR]


def _service_ports(o: dict[str, Any], now: float) -> str:
    ports = []
    for port in dig(o, "spec", "ports", default=[]) or []:
        node = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port')}{node}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _external_ip(o: dict[str, Any], now: float) -> str:
    kind = dig(o, "spec", "type", default="ClusterIP")
    external = list(dig(o, "spec", "externalIPs", default=[]) or [])
    if kind == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") for i in dig(o, "status", "loadBalancer", "ingress",
                                                                   default=[]) or []]
        external += [i for i in ingress if i]
        return ",".join(external) or "<pending>"
    if kind == "ExternalName":
        return dig(o, "spec", "externalName", default="<none>")
    return ",".join(external) or "<none>"


SERVICE = [NAME, Column("Type", lambda o, now: dig(o, "spec", "type", default="ClusterIP")),
           Column("Cluster-IP", lambda o, now: _none(dig(o, "spec", "clusterIP"))),
           Column("External-IP", _external_ip), Column("Port(s)", _service_ports), AGE,
           Column("Selector", lambda o, now: ",".join(f"{k}={v}" for k, v in sorted(
               (dig(o, "spec", "selector", default={}) or {}).items())) or "<none>", priority=1)]

NAMESPACE = [NAME, Column("Status", lambda o, now: dig(o, "status", "phase", default="Active")), AGE]

CONFIGMAP = [NAME, Column("Data", lambda o, now: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                          type="integer"), AGE]


def _crd_value(*path: str) -> Cell:
    # CRD printer columns: a missing field is an empty cell, not zero.
    return lambda o, now: dig(o, *path)


# Argo Rollouts' CRD additionalPrinterColumns.
ROLLOUT = [NAME,
           Column("Desired", _crd_value("spec", "replicas"), type="integer", description="Number of desired pods"),
           Column("Current", _crd_value("status", "replicas"), type="integer",
                  description="Total number of non-terminated pods targeted by this rollout"),
           Column("Up-to-date", _crd_value("status", "updatedReplicas"), type="integer",
                  description="Total number of non-terminated pods targeted by this rollout that have the "
                              "desired template spec"),
           Column("Available", _crd_value("status", "availableReplicas"), type="integer",
                  description="Total number of available pods (ready for at least minReadySeconds) targeted "
                              "by this rollout"),
           Column("Age", _age, type="date", description="Time since resource was created")]
PHASED = [NAME, Column("Status", _crd_value("status", "phase"), description="status"),
          Column("Age", _age, type="date", description="Time since resource was created")]

COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "Pod"): POD, ("", "Event"): EVENT, ("", "Service"): SERVICE, ("", "Namespace"): NAMESPACE,
    ("", "ConfigMap"): CONFIGMAP, ("apps", "ReplicaSet"): REPLICASET, ("apps", "Deployment"): DEPLOYMENT,
    ("argoproj.io", "Rollout"): ROLLOUT, ("argoproj.io", "AnalysisRun"): PHASED,
    ("argoproj.io", "Experiment"): PHASED,
}
GENERIC = [NAME, AGE]


def _row_object(body: dict[str, Any], include: str, meta_version: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return body
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{meta_version}",
            "metadata": body["metadata"]}


def render_table(group: str, kind: str, bodies: list[dict[str, Any]], now: float, include: str,
                 meta_version: str, resource_version: str) -> dict[str, Any]:
    """A meta.k8s.io Table of these objects; `include` is the includeObject parameter."""
    columns = COLUMNS.get((group, kind), GENERIC)
    rows = []
    for body in bodies:
        row: dict[str, Any] = {"cells": [column.cell(body, now) for column in columns]}
        obj = _row_object(body, include, meta_version)
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{meta_version}",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": [column.definition() for column in columns], "rows": rows}
