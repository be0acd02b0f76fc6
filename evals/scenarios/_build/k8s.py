"""Kubernetes and Argo Rollouts objects, built from small plans instead of copied manifests.

A scenario describes its ReplicaSets (`RSPlan`) and pods (`PodPlan`, with one `ContainerPlan` per
container and one `Run` per container instance); the functions here turn them into the objects a
real cluster would return at the scenario's `now`: Pod (with full status), ReplicaSet, Rollout,
AnalysisTemplate, AnalysisRun, Service, Event, PodMetrics.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from selfheal.simulator.defaults import qualified_image

from .common import hexid, name_suffix, rfc3339, rng, uid

APP = "canary-demo"
ROLLOUT = "canary-demo"
AGENT_URL = "http://selfheal-rollouts.argo-rollouts.svc.cluster.local:8080"
ISTIO_IMAGE = "docker.io/istio/proxyv2:1.24.2"


# --------------------------------------------------------------------------------------------- images

# The fully qualified image name the kubelet reports (`docker.io/argoproj/rollouts-demo:blue`): the
# simulator fills it in the same way when a manifest leaves it out.
status_image = qualified_image


def image_id(image: str) -> str:
    """A stable (fake) content digest for an image reference."""
    full = status_image(image)
    repo = full.rsplit(":", 1)[0] if ":" in full.rsplit("/", 1)[-1] else full
    return f"{repo}@sha256:{hexid(64, 'image', full)}"


# ---------------------------------------------------------------------------------------------- plans

@dataclass
class Run:
    """One container instance: started, and (if it ended) when and how."""

    started: int
    finished: int | None = None
    exit_code: int | None = None
    reason: str | None = None  # OOMKilled, Error, Completed

    @property
    def running(self) -> bool:
        return self.finished is None


@dataclass
class ContainerPlan:
    name: str
    image: str
    spec: dict[str, Any] = field(default_factory=dict)  # ports, env, resources, probes, args...
    runs: list[Run] = field(default_factory=list)
    waiting: tuple[str, str] | None = None  # (reason, message) when not running now
    ready_after: int = 2  # seconds from start until the readiness probe passes
    init: bool = False

    @property
    def current(self) -> Run | None:
        return self.runs[-1] if self.runs and self.runs[-1].running else None

    @property
    def ready(self) -> bool:
        return self.current is not None and not self.init


@dataclass
class RSPlan:
    hash: str
    revision: int
    role: str  # stable, canary, old
    containers: list[dict[str, Any]]  # the pod template's containers
    replicas: int
    created: int
    ready: int = 0
    available: int = 0
    template_annotations: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{ROLLOUT}-{self.hash}"


@dataclass
class PodPlan:
    name: str
    role: str
    rs: RSPlan
    node: str
    ip: str | None
    host_ip: str
    created: int
    containers: list[ContainerPlan]
    init_containers: list[ContainerPlan] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    extra_labels: dict[str, str] = field(default_factory=dict)

    def container(self, name: str) -> ContainerPlan:
        return next(c for c in self.containers if c.name == name)

    @property
    def app_container(self) -> ContainerPlan:
        return next(c for c in self.containers if c.name != "istio-proxy")


def pod_name(rs: RSPlan, seed: str) -> str:
    return f"{rs.name}-{name_suffix(rng('pod-name', seed, rs.hash))}"


# ---------------------------------------------------------------------------------------- primitives

def owner(api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid(namespace, kind, name),
            "controller": True, "blockOwnerDeletion": True}


def meta(kind: str, name: str, namespace: str | None, created: int, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name}
    if namespace:
        m["namespace"] = namespace
    m["uid"] = uid(namespace, kind, name)
    m["resourceVersion"] = str(100000 + int(hexid(6, "rv", namespace, kind, name), 16) % 900000)
    m["creationTimestamp"] = rfc3339(created)
    for key in ("generateName", "generation", "labels", "annotations", "ownerReferences"):
        if extra.get(key) is not None:
            m[key] = extra[key]
    return m


def condition(type_: str, status: bool, at: int, reason: str | None = None,
              message: str | None = None, probe: bool = True) -> dict[str, Any]:
    c: dict[str, Any] = {"type": type_, "status": "True" if status else "False"}
    if probe:
        c["lastProbeTime"] = None
    c["lastTransitionTime"] = rfc3339(at)
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


# ----------------------------------------------------------------------------------------- containers

def demo_container(image: str, name: str = APP, env: list[dict[str, Any]] | None = None,
                   memory_limit: str | None = None, port: int = 8080) -> dict[str, Any]:
    """The pod-template container of an HTTP service on port 8080 (the rollouts-demo shape)."""
    c: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent"}
    if env:
        c["env"] = env
    c["ports"] = [{"containerPort": port, "name": "http", "protocol": "TCP"}]
    resources: dict[str, Any] = {"requests": {"cpu": "5m", "memory": "32Mi"}}
    if memory_limit:
        resources["limits"] = {"memory": memory_limit}
    c["resources"] = resources
    c["readinessProbe"] = {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
                           "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1,
                           "failureThreshold": 3}
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    return c


def istio_proxy_spec(namespace: str) -> dict[str, Any]:
    return {
        "name": "istio-proxy", "image": ISTIO_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error",
                 "--log_output_level=default:info"],
        "env": [{"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
                {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
                {"name": "ISTIO_META_APP_CONTAINERS", "value": APP},
                {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
                {"name": "ISTIO_META_MESH_ID", "value": "cluster.local"}],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
                           "periodSeconds": 15, "timeoutSeconds": 3, "successThreshold": 1,
                           "failureThreshold": 4},
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "privileged": False, "readOnlyRootFilesystem": True, "runAsGroup": 1337,
                            "runAsNonRoot": True, "runAsUser": 1337},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    }


def istio_init_spec() -> dict[str, Any]:
    return {
        "name": "istio-init", "image": ISTIO_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*",
                 "-x", "", "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"],
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                            "privileged": False, "readOnlyRootFilesystem": False, "runAsGroup": 0,
                            "runAsNonRoot": False, "runAsUser": 0},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    }


def istio_annotations(app_container: str = APP) -> dict[str, str]:
    return {
        "kubectl.kubernetes.io/default-container": app_container,
        "kubectl.kubernetes.io/default-logs-container": app_container,
        "prometheus.io/path": "/stats/prometheus",
        "prometheus.io/port": "15020",
        "prometheus.io/scrape": "true",
        "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
        "sidecar.istio.io/status": ('{"initContainers":["istio-init"],"containers":["istio-proxy"],'
                                    '"volumes":["workload-socket","credential-socket","workload-certs",'
                                    '"istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],'
                                    '"imagePullSecrets":null,"revision":"default"}'),
    }


# ------------------------------------------------------------------------------------------------ pod

def _container_status(c: ContainerPlan, namespace: str, pod: str) -> dict[str, Any]:
    s: dict[str, Any] = {}
    runs = c.runs
    def cid(index: int) -> str:
        return "containerd://" + hexid(64, "container", namespace, pod, c.name, index)
    if runs:
        s["containerID"] = cid(len(runs) - 1)
    s["image"] = status_image(c.image) if runs else c.image
    s["imageID"] = image_id(c.image) if runs else ""
    last: dict[str, Any] = {}
    previous = runs[-2] if len(runs) >= 2 and runs[-1].running else (runs[-1] if runs and c.waiting else None)
    if previous is not None and not c.init:
        index = runs.index(previous)
        last = {"terminated": {"containerID": cid(index), "exitCode": previous.exit_code,
                               "finishedAt": rfc3339(previous.finished), "reason": previous.reason,
                               "startedAt": rfc3339(previous.started)}}
    s["lastState"] = last
    s["name"] = c.name
    s["ready"] = c.ready
    s["restartCount"] = max(0, len(runs) - 1) if not c.init else 0
    s["started"] = c.current is not None
    if c.current is not None:
        s["state"] = {"running": {"startedAt": rfc3339(c.current.started)}}
    elif c.waiting is not None:
        s["state"] = {"waiting": {"message": c.waiting[1], "reason": c.waiting[0]}}
    else:  # finished (init containers)
        r = runs[-1]
        s["state"] = {"terminated": {"containerID": cid(len(runs) - 1), "exitCode": r.exit_code,
                                     "finishedAt": rfc3339(r.finished), "reason": r.reason,
                                     "startedAt": rfc3339(r.started)}}
    return s


def pod_object(p: PodPlan, namespace: str, now: int) -> dict[str, Any]:
    labels = {"app": APP, "role": p.role, "rollouts-pod-template-hash": p.rs.hash, **p.extra_labels}
    token = name_suffix(rng("kube-api-access", namespace, p.name))
    volume_mount = {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "name": f"kube-api-access-{token}", "readOnly": True}

    def spec_of(c: ContainerPlan) -> dict[str, Any]:
        body = copy.deepcopy(c.spec)
        body.setdefault("name", c.name)
        body.setdefault("image", c.image)
        body["volumeMounts"] = body.get("volumeMounts", []) + [dict(volume_mount)]
        return body

    spec: dict[str, Any] = {"containers": [spec_of(c) for c in p.containers]}
    spec["dnsPolicy"] = "ClusterFirst"
    spec["enableServiceLinks"] = True
    if p.init_containers:
        spec["initContainers"] = [spec_of(c) for c in p.init_containers]
    spec.update({
        "nodeName": p.node, "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
        "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {},
        "serviceAccount": "default", "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}],
        "volumes": [{"name": f"kube-api-access-{token}", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                        "path": "namespace"}]}}]}}],
    })

    scheduled = p.created
    any_started = any(c.runs for c in p.containers)
    init_done = all(c.runs and not c.current for c in p.init_containers)
    init_at = max((c.runs[-1].finished for c in p.init_containers), default=scheduled + 1) if p.init_containers else scheduled + 1
    not_ready = [c.name for c in p.containers if not c.ready]
    if not_ready:
        # Became unready when the last container instance ended, or never was ready.
        ends = [c.runs[-1].finished for c in p.containers if c.runs and c.runs[-1].finished]
        ready_at = max(ends) if ends else scheduled + 1
    else:
        ready_at = max(c.current.started + c.ready_after for c in p.containers if c.current)
    msg = f"containers with unready status: [{' '.join(not_ready)}]"
    conditions = [
        condition("PodReadyToStartContainers", True, scheduled + 1),
        condition("Initialized", init_done, init_at),
        condition("Ready", not not_ready, ready_at, None if not not_ready else "ContainersNotReady",
                  None if not not_ready else msg),
        condition("ContainersReady", not not_ready, ready_at, None if not not_ready else "ContainersNotReady",
                  None if not not_ready else msg),
        condition("PodScheduled", True, scheduled),
    ]
    status: dict[str, Any] = {"conditions": conditions}
    status["containerStatuses"] = [_container_status(c, namespace, p.name) for c in p.containers]
    status["hostIP"] = p.host_ip
    status["hostIPs"] = [{"ip": p.host_ip}]
    if p.init_containers:
        status["initContainerStatuses"] = [_container_status(c, namespace, p.name) for c in p.init_containers]
    status["phase"] = "Running" if any_started else "Pending"
    if p.ip:
        status["podIP"] = p.ip
        status["podIPs"] = [{"ip": p.ip}]
    status["qosClass"] = "Burstable"
    status["startTime"] = rfc3339(scheduled)

    annotations = dict(p.annotations) or None
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": meta("Pod", p.name, namespace, p.created, generateName=f"{p.rs.name}-",
                             labels=labels, annotations=annotations,
                             ownerReferences=[owner("apps/v1", "ReplicaSet", p.rs.name, namespace)]),
            "spec": spec, "status": status}


# -------------------------------------------------------------------------------------- replica sets

def replicaset_object(rs: RSPlan, namespace: str, replicas_total: int) -> dict[str, Any]:
    labels = {"app": APP, "rollouts-pod-template-hash": rs.hash}
    template_labels = dict(labels)
    if rs.role in ("stable", "canary"):
        template_labels["role"] = rs.role
    template: dict[str, Any] = {"metadata": {"labels": template_labels}}
    if rs.template_annotations:
        template["metadata"]["annotations"] = dict(rs.template_annotations)
    template["spec"] = {"containers": copy.deepcopy(rs.containers), "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always", "schedulerName": "default-scheduler",
                        "securityContext": {}, "terminationGracePeriodSeconds": 30}
    status: dict[str, Any] = {"observedGeneration": 2 if rs.role != "old" else 4, "replicas": rs.replicas}
    if rs.replicas:
        status["fullyLabeledReplicas"] = rs.replicas
    if rs.ready:
        status["readyReplicas"] = rs.ready
    if rs.available:
        status["availableReplicas"] = rs.available
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": meta("ReplicaSet", rs.name, namespace, rs.created,
                         generation=status["observedGeneration"], labels=labels,
                         annotations={"rollout.argoproj.io/desired-replicas": str(replicas_total),
                                      "rollout.argoproj.io/revision": str(rs.revision)},
                         ownerReferences=[owner("argoproj.io/v1alpha1", "Rollout", ROLLOUT, namespace)]),
        "spec": {"replicas": rs.replicas,
                 "selector": {"matchLabels": labels},
                 "template": template},
        "status": status,
    }


# ------------------------------------------------------------------------------------ argo rollouts

ANALYSIS_TEMPLATE = "ai-analysis"


def analysis_metric(github_url: str) -> dict[str, Any]:
    return {"name": "ai-analysis", "count": 1, "failureLimit": 0,
            "provider": {"plugin": {"argoproj-labs/metric-ai": {
                "agentUrl": AGENT_URL, "stableLabel": "role=stable", "canaryLabel": "role=canary",
                "githubUrl": github_url, "baseBranch": "main"}}}}


def analysis_template(namespace: str, created: int, github_url: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": meta("AnalysisTemplate", ANALYSIS_TEMPLATE, namespace, created, generation=1),
            "spec": {"metrics": [analysis_metric(github_url)]}}


def canary_steps(weight: int) -> list[dict[str, Any]]:
    """setWeight -> pause 19m -> AI analysis -> 60% -> pause -> (full promotion after the last step)."""
    return [{"setWeight": weight}, {"pause": {"duration": "19m"}},
            {"analysis": {"templates": [{"templateName": ANALYSIS_TEMPLATE}]}},
            {"setWeight": 60}, {"pause": {"duration": "10m"}}]


def analysis_run(namespace: str, rs: RSPlan, step_index: int, github_url: str, started: int,
                 finished: int | None, phase: str, value: str | None = None,
                 metadata: dict[str, str] | None = None) -> dict[str, Any]:
    name = f"{ROLLOUT}-{rs.hash}-{rs.revision}-{step_index}"
    measurement: dict[str, Any] = {"phase": phase, "startedAt": rfc3339(started)}
    if finished is not None:
        measurement["finishedAt"] = rfc3339(finished)
    if value is not None:
        measurement["value"] = value
    if metadata:
        measurement["metadata"] = metadata
    result: dict[str, Any] = {"name": "ai-analysis", "phase": phase, "measurements": [measurement]}
    summary: dict[str, Any] = {"count": 1}
    if phase == "Successful":
        result.update({"count": 1, "successful": 1})
        summary["successful"] = 1
    status: dict[str, Any] = {"dryRunSummary": {}, "metricResults": [result], "phase": phase,
                              "runSummary": summary, "startedAt": rfc3339(started)}
    if finished is not None:
        status["completedAt"] = rfc3339(finished)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": meta("AnalysisRun", name, namespace, started, generation=2 if finished else 1,
                             labels={"rollout-type": "Step", "rollouts-pod-template-hash": rs.hash,
                                     "step-index": str(step_index)},
                             annotations={"rollout.argoproj.io/revision": str(rs.revision)},
                             ownerReferences=[owner("argoproj.io/v1alpha1", "Rollout", ROLLOUT, namespace)]),
            "spec": {"metrics": [analysis_metric(github_url)]},
            "status": status}


def rollout_condition(type_: str, status: bool, reason: str, message: str, at: int, updated: int) -> dict[str, Any]:
    return {"lastTransitionTime": rfc3339(at), "lastUpdateTime": rfc3339(updated), "message": message,
            "reason": reason, "status": "True" if status else "False", "type": type_}


def rollout_object(namespace: str, replicas: int, stable: RSPlan, canary: RSPlan, steps: list[dict[str, Any]],
                   status: dict[str, Any], created: int, template_annotations: dict[str, str] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"metadata": {"labels": {"app": APP}}}
    if template_annotations:
        template["metadata"]["annotations"] = dict(template_annotations)
    template["spec"] = {"containers": copy.deepcopy(canary.containers)}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": meta("Rollout", ROLLOUT, namespace, created, generation=7,
                         labels={"app": APP},
                         annotations={"rollout.argoproj.io/revision": str(canary.revision)}),
        "spec": {
            "replicas": replicas, "revisionHistoryLimit": 2, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": APP}},
            "template": template,
            "strategy": {"canary": {"canaryMetadata": {"labels": {"role": "canary"}},
                                    "stableMetadata": {"labels": {"role": "stable"}},
                                    "steps": steps}},
        },
        "status": status,
    }


# ---------------------------------------------------------------------------------------- the rest

def namespace_object(namespace: str, created: int, istio: bool) -> dict[str, Any]:
    labels = {"kubernetes.io/metadata.name": namespace}
    if istio:
        labels["istio-injection"] = "enabled"
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": meta("Namespace", namespace, None, created, labels=labels),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def service_object(namespace: str, created: int) -> dict[str, Any]:
    octets = digest_octets(namespace)
    ip = f"10.96.{octets[0]}.{octets[1]}"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": meta("Service", APP, namespace, created, labels={"app": APP}),
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster",
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
                     "selector": {"app": APP}, "sessionAffinity": "None", "type": "ClusterIP"},
            "status": {"loadBalancer": {}}}


def digest_octets(*parts: object) -> tuple[int, int]:
    h = hexid(4, "ip", *parts)
    return int(h[:2], 16) % 250 + 1, int(h[2:], 16) % 250 + 2


@dataclass
class EventSpec:
    kind: str
    name: str
    reason: str
    message: str
    first: int
    last: int
    count: int = 1
    type: str = "Normal"
    component: str = "kubelet"
    host: str | None = None
    field_path: str | None = None
    api_version: str = "v1"


def event_object(e: EventSpec, namespace: str) -> dict[str, Any]:
    involved: dict[str, Any] = {"apiVersion": e.api_version, "kind": e.kind, "name": e.name,
                                "namespace": namespace, "uid": uid(namespace, e.kind, e.name)}
    if e.field_path:
        involved["fieldPath"] = e.field_path
    name = f"{e.name}.{(e.first * 1_000_000_000 + int(hexid(8, 'ev', e.name, e.reason, e.message), 16) % 999_999_999):x}"
    source: dict[str, Any] = {"component": e.component}
    if e.host:
        source["host"] = e.host
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": meta("Event", name, namespace, e.first),
            "involvedObject": involved, "reason": e.reason, "message": e.message, "source": source,
            "firstTimestamp": rfc3339(e.first), "lastTimestamp": rfc3339(e.last), "count": e.count,
            "type": e.type, "eventTime": None, "reportingComponent": e.component,
            "reportingInstance": e.host or ""}


def pod_metrics_object(p: PodPlan, namespace: str, now: int, usage: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": p.name, "namespace": namespace, "creationTimestamp": rfc3339(now),
                         "labels": {"app": APP, "role": p.role, "rollouts-pod-template-hash": p.rs.hash}},
            "timestamp": rfc3339(now - 9), "window": "15.011s",
            "containers": [{"name": name, "usage": {"cpu": cpu, "memory": mem}} for name, (cpu, mem) in usage.items()]}
