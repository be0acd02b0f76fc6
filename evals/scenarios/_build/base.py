"""The shape every scenario shares: a namespace with one Argo Rollout (`canary-demo`) whose stable
ReplicaSet runs `n_stable` pods and whose canary ReplicaSet runs `n_canary` pods, the canary pods
created 20 minutes before `now`; plus how a scenario is written to disk.
"""

from __future__ import annotations

import gzip
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from . import k8s
from .common import NS, epoch, hexid, pod_template_hash, rfc3339, rng
from .k8s import APP, ContainerPlan, EventSpec, PodPlan, RSPlan, Run

NOW = epoch("2026-01-01T12:00:00Z")
CANARY_AGE = 1200  # the canary pods were created 20 minutes before `now`
NODES = ("gke-prod-pool-1-5f2c9a1e-7kxq", "gke-prod-pool-1-5f2c9a1e-c2mw", "gke-prod-pool-1-5f2c9a1e-tq8d")
HOST_IPS = ("10.128.0.11", "10.128.0.12", "10.128.0.13")


# ------------------------------------------------------------------------------------------ writing

class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # never emit &anchors / *aliases
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(docs: list[Any]) -> str:
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True, width=4096, explicit_start=len(docs) > 1)


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no file name, mtime 0)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as f:
        f.write(data)
    return buffer.getvalue()


@dataclass
class Scenario:
    name: str
    namespace: str
    description: str
    expect: dict[str, Any]
    now: int = NOW
    cluster: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # file name -> objects
    logs: dict[tuple[str, str, bool], list[str]] = field(default_factory=dict)  # (pod, container, previous)
    gzip_logs: bool = False
    metrics: dict[str, str] = field(default_factory=dict)  # file name -> OpenMetrics text

    def files(self) -> dict[str, bytes]:
        """Relative path -> content of every file of the scenario folder."""
        out: dict[str, bytes] = {}
        spec = {"name": self.name, "description": self.description, "now": rfc3339(self.now),
                "rollout": {"namespace": self.namespace, "name": k8s.ROLLOUT},
                "selectors": {"stable": "role=stable", "canary": "role=canary"}}
        out["scenario.yaml"] = dump_yaml([spec]).encode()
        out["expect.yaml"] = dump_yaml([self.expect]).encode()
        for file_name, docs in self.cluster.items():
            out[f"cluster/{file_name}"] = dump_yaml(docs).encode()
        for (pod, container, previous), lines in self.logs.items():
            name = f"logs/{pod}/{container}{'.previous' if previous else ''}.log"
            data = ("\n".join(lines) + "\n").encode() if lines else b""
            if self.gzip_logs:
                out[name + ".gz"] = gzip_bytes(data)
            else:
                out[name] = data
        for file_name, text in self.metrics.items():
            out[f"metrics/{file_name}"] = text.encode()
        return out

    def write(self, root: Path) -> None:
        folder = root / self.name
        if folder.exists():
            shutil.rmtree(folder)
        for rel, data in sorted(self.files().items()):
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


# ------------------------------------------------------------------------------------------ cluster

Template = Callable[[str], list[dict[str, Any]]]


class Cluster:
    """One namespace's Rollout, ReplicaSets and pods; scenario code adjusts the plans, then renders."""

    def __init__(self, name: str, namespace: str, *, stable_image: str, canary_image: str, old_image: str,
                 template: Template, canary_template: Template | None = None,
                 n_stable: int = 4, n_canary: int = 1, weight: int = 20, istio: bool = False,
                 stable_age: int = 26 * 3600 + 1234, github_url: str = "https://github.com/acme/rollouts-demo",
                 now: int = NOW) -> None:
        self.name, self.namespace, self.now = name, namespace, now
        self.istio, self.weight, self.github_url = istio, weight, github_url
        self.t0 = now - CANARY_AGE
        self.replicas = n_stable + n_canary
        self.rollout_created = now - 8 * 86400 - 4321
        canary_template = canary_template or template
        self.old = RSPlan(k8s_hash(namespace, old_image), 1, "old", template(old_image), 0,
                          self.rollout_created)
        stable_created = now - stable_age
        self.stable = RSPlan(k8s_hash(namespace, stable_image), 2, "stable", template(stable_image), n_stable,
                             stable_created, ready=n_stable, available=n_stable)
        self.canary = RSPlan(k8s_hash(namespace, canary_image), 3, "canary", canary_template(canary_image),
                             n_canary, self.t0 - 1)
        self.events: list[EventSpec] = []
        self.extra_docs: dict[str, list[dict[str, Any]]] = {}
        self.pods: list[PodPlan] = []
        r = rng(namespace, "placement")
        ip_next = {i: 10 + r.randint(0, 40) for i in range(len(NODES))}

        def place() -> tuple[str, str, str]:
            i = r.randrange(len(NODES))
            ip_next[i] += r.randint(1, 9)
            return NODES[i], HOST_IPS[i], f"10.244.{i + 3}.{ip_next[i]}"

        # Revision 2 went through the same steps: one pod at 20 %, more once its analysis passed
        # (60 %), the rest after the last pause.
        at_60 = max(1, -(-self.replicas * 60 // 100))
        for i in range(n_stable):
            stage = 0 if i == 0 else (1186 if i < at_60 else 1787)
            created = stable_created + 1 + stage + i + r.randint(0, 3)
            self.pods.append(self._pod("stable", self.stable, f"{namespace}-stable-{i}", created, place()))
        for i in range(n_canary):
            created = self.t0 + i * 2
            self.pods.append(self._pod("canary", self.canary, f"{namespace}-canary-{i}", created, place()))
        # The stable pod that the canary replaced (scaled 5 -> 4 once the canary was available).
        self.replaced_pod = k8s.pod_name(self.stable, f"{namespace}-stable-replaced")

    def _pod(self, role: str, rs: RSPlan, seed: str, created: int, where: tuple[str, str, str]) -> PodPlan:
        node, host_ip, ip = where
        app_start = created + (4 if self.istio else 3)
        app = ContainerPlan(rs.containers[0]["name"], rs.containers[0]["image"], rs.containers[0],
                            runs=[Run(app_start)])
        pod = PodPlan(k8s.pod_name(rs, seed), role, rs, node, ip, host_ip, created, [app])
        if self.istio:
            pod.init_containers = [ContainerPlan("istio-init", k8s.ISTIO_IMAGE, k8s.istio_init_spec(),
                                                 runs=[Run(created + 2, created + 2, 0, "Completed")], init=True)]
            proxy = ContainerPlan("istio-proxy", k8s.ISTIO_IMAGE, k8s.istio_proxy_spec(self.namespace),
                                  runs=[Run(created + 3)])
            pod.containers = [proxy, app]  # holdApplicationUntilProxyStarts puts the proxy first
            pod.annotations = k8s.istio_annotations(app.name)
            pod.extra_labels = {"security.istio.io/tlsMode": "istio",
                                "service.istio.io/canonical-name": APP,
                                "service.istio.io/canonical-revision": "latest"}
        return pod

    # ----------------------------------------------------------------------------------- accessors

    @property
    def stable_pods(self) -> list[PodPlan]:
        return [p for p in self.pods if p.role == "stable"]

    @property
    def canary_pods(self) -> list[PodPlan]:
        return [p for p in self.pods if p.role == "canary"]

    def app_start(self, pod: PodPlan) -> int:
        return pod.app_container.runs[0].started

    # ------------------------------------------------------------------------------------- events

    def canary_start_events(self, pod: PodPlan, pulled: bool = True) -> None:
        """Scheduler and kubelet events of a canary pod's first start."""
        app = pod.app_container
        self.events.append(EventSpec("Pod", pod.name, "Scheduled",
                                     f"Successfully assigned {self.namespace}/{pod.name} to {pod.node}",
                                     pod.created, pod.created, component="default-scheduler"))
        if self.istio:
            for c, at in (("istio-init", pod.created + 1), ("istio-proxy", pod.created + 2)):
                fp = f"spec.initContainers{{{c}}}" if c == "istio-init" else f"spec.containers{{{c}}}"
                self.events += [
                    EventSpec("Pod", pod.name, "Pulled", f'Container image "{k8s.ISTIO_IMAGE}" already present on machine',
                              at, at, host=pod.node, field_path=fp),
                    EventSpec("Pod", pod.name, "Created", f"Created container: {c}", at, at, host=pod.node, field_path=fp),
                    EventSpec("Pod", pod.name, "Started", f"Started container {c}", at + 1, at + 1, host=pod.node,
                              field_path=fp)]
        if not pulled:
            return
        fp = f"spec.containers{{{app.name}}}"
        start = app.runs[0].started
        r = rng(self.namespace, pod.name, "pull")
        secs = r.uniform(0.9, 2.2)
        size = r.randint(9_000_000, 48_000_000)
        starts = len(app.runs)
        last = app.runs[-1].started
        self.events += [
            EventSpec("Pod", pod.name, "Pulling", f'Pulling image "{app.image}"', start - 2, start - 2,
                      host=pod.node, field_path=fp),
            EventSpec("Pod", pod.name, "Pulled", f'Successfully pulled image "{app.image}" in {secs:.3f}s '
                      f"({secs:.3f}s including waiting). Image size: {size} bytes.", start - 1, start - 1,
                      host=pod.node, field_path=fp),
            EventSpec("Pod", pod.name, "Created", f"Created container: {app.name}", start, last, count=starts,
                      host=pod.node, field_path=fp),
            EventSpec("Pod", pod.name, "Started", f"Started container {app.name}", start, last, count=starts,
                      host=pod.node, field_path=fp)]
        if starts > 1:
            self.events.append(EventSpec("Pod", pod.name, "Pulled", f'Container image "{app.image}" already '
                                         "present on machine", app.runs[1].started, last, count=starts - 1,
                                         host=pod.node, field_path=fp))

    def rollout_events(self, state: str) -> None:
        rs, t0 = self.canary, self.t0
        stable = self.stable

        def ev(reason: str, message: str, at: int, kind: str = "Rollout", name: str = k8s.ROLLOUT,
               type_: str = "Normal", api: str = "argoproj.io/v1alpha1", comp: str = "rollouts-controller") -> EventSpec:
            return EventSpec(kind, name, reason, message, at, at, type=type_, component=comp, api_version=api)

        self.events += [
            ev("RolloutUpdated", f"Rollout updated to revision {rs.revision}", t0 - 1),
            ev("NewReplicaSetCreated", f"Created ReplicaSet {rs.name} (revision {rs.revision})", t0 - 1),
            ev("ScalingReplicaSet", f"Scaled up ReplicaSet {rs.name} (revision {rs.revision}) from 0 to {rs.replicas}", t0 - 1),
            ev("RolloutNotCompleted", f"Rollout not completed, started update to revision {rs.revision} ({rs.hash})", t0 - 1),
        ]
        for pod in self.canary_pods:
            self.events.append(ev("SuccessfulCreate", f"Created pod: {pod.name}", pod.created, "ReplicaSet",
                                  rs.name, api="apps/v1", comp="replicaset-controller"))
        if state == "analysis":
            ready = t0 + 6
            ar = self.analysis_run_name
            self.events += [
                ev("ScalingReplicaSet", f"Scaled down ReplicaSet {stable.name} (revision {stable.revision}) from "
                   f"{self.replicas} to {stable.replicas}", ready),
                ev("SuccessfulDelete", f"Deleted pod: {self.replaced_pod}", ready, "ReplicaSet", stable.name,
                   api="apps/v1", comp="replicaset-controller"),
                ev("RolloutStepCompleted", f"Rollout step 1/5 completed (setWeight: {self.weight})", ready),
                ev("RolloutPaused", "Rollout is paused (CanaryPauseStep)", ready),
                ev("RolloutResumed", "Rollout is resumed", self.analysis_start),
                ev("RolloutStepCompleted", "Rollout step 2/5 completed (pause: 19m)", self.analysis_start),
                ev("AnalysisRunRunning", f"Step Analysis Run '{ar}' Status New: 'Running' Previous: ''",
                   self.analysis_start),
            ]
        else:
            self.events += [
                ev("ScalingReplicaSet", f"Scaled down ReplicaSet {stable.name} (revision {stable.revision}) from "
                   f"{self.replicas} to {stable.replicas}", t0 + 1),
                ev("SuccessfulDelete", f"Deleted pod: {self.replaced_pod}", t0 + 1, "ReplicaSet", stable.name,
                   api="apps/v1", comp="replicaset-controller"),
                ev("ProgressDeadlineExceeded", f'ReplicaSet "{rs.name}" has timed out progressing.', t0 + 601, type_="Warning"),
            ]

    # ------------------------------------------------------------------------------------ rendering

    @property
    def analysis_start(self) -> int:
        return self.now - 54

    @property
    def analysis_run_name(self) -> str:
        return f"{k8s.ROLLOUT}-{self.canary.hash}-{self.canary.revision}-2"

    def render(self, state: str, pod_usage: Callable[[PodPlan], dict[str, tuple[str, str]] | None] | None = None
               ) -> dict[str, list[dict[str, Any]]]:
        """All objects, by cluster file. `state`: "analysis" (step 2, AnalysisRun running) or
        "degraded" (canary never became available; progress deadline exceeded at step 0)."""
        ns, now = self.namespace, self.now
        canary_ready = sum(1 for p in self.canary_pods if all(c.ready for c in p.containers))
        self.canary.ready = self.canary.available = canary_ready
        self.rollout_events(state)
        steps = k8s.canary_steps(self.weight)
        available = self.stable.available + canary_ready
        status: dict[str, Any] = {"HPAReplicas": self.replicas, "availableReplicas": available, "blueGreen": {}}
        canary_status: dict[str, Any] = {}
        cond = k8s.rollout_condition
        conditions = [cond("Available", True, "AvailableReason", "Rollout has minimum availability",
                           self.rollout_created + 9, self.rollout_created + 9),
                      cond("Completed", False, "RolloutCompleted",
                           f"Rollout not completed, started update to revision {self.canary.revision}",
                           self.t0 - 1, self.t0 - 1),
                      cond("Healthy", False, "RolloutHealthy", "Rollout is not healthy", self.t0 - 1, self.t0 - 1)]
        if state == "analysis":
            canary_status["currentStepAnalysisRunStatus"] = {"message": "", "name": self.analysis_run_name,
                                                             "status": "Running"}
            weight = self.weight
            conditions.append(cond("Progressing", True, "ReplicaSetUpdated",
                                   f'ReplicaSet "{self.canary.name}" is progressing.', self.t0 - 1,
                                   self.analysis_start))
            step, phase, message = 2, "Progressing", "more replicas need to be updated"
        else:
            weight = 0
            conditions.append(cond("Progressing", False, "ProgressDeadlineExceeded",
                                   f'ReplicaSet "{self.canary.name}" has timed out progressing.',
                                   self.t0 + 601, self.t0 + 601))
            step, phase = 0, "Degraded"
            message = f'ProgressDeadlineExceeded: ReplicaSet "{self.canary.name}" has timed out progressing.'
        canary_status["weights"] = {"canary": {"podTemplateHash": self.canary.hash, "weight": weight},
                                    "stable": {"podTemplateHash": self.stable.hash, "weight": 100 - weight}}
        status.update({
            "canary": canary_status, "conditions": conditions, "currentPodHash": self.canary.hash,
            "currentStepHash": k8s_hash(ns, "steps", str(steps)), "currentStepIndex": step,
            "message": message, "observedGeneration": "7", "phase": phase, "readyReplicas": available,
            "replicas": self.replicas, "selector": f"app={APP}", "stableRS": self.stable.hash,
            "updatedReplicas": self.canary.replicas})

        docs: dict[str, list[dict[str, Any]]] = {}
        docs["namespace.yaml"] = [k8s.namespace_object(ns, self.rollout_created - 600, self.istio)]
        docs["rollout.yaml"] = [
            k8s.rollout_object(ns, self.replicas, self.stable, self.canary, steps, status, self.rollout_created),
            k8s.analysis_template(ns, self.rollout_created - 60, self.github_url),
            k8s.service_object(ns, self.rollout_created - 60)]
        docs["replicasets.yaml"] = [k8s.replicaset_object(rs, ns, self.replicas)
                                    for rs in (self.stable, self.canary, self.old)]
        docs["pods.yaml"] = [k8s.pod_object(p, ns, now) for p in self.pods]
        runs = [k8s.analysis_run(ns, self.stable, 2, self.github_url, self.stable.created + 1146,
                                 self.stable.created + 1146 + 38, "Successful", "0.91",
                                 {"promote": "true", "confidence": "91"})]
        if state == "analysis":
            runs.append(k8s.analysis_run(ns, self.canary, 2, self.github_url, self.analysis_start, None, "Running"))
        docs["analysisruns.yaml"] = runs
        events = sorted(self.events, key=lambda e: (e.last, e.first, e.name, e.reason))
        docs["events.yaml"] = [k8s.event_object(e, ns) for e in events]
        metrics = []
        for p in self.pods:
            usage = pod_usage(p) if pod_usage else default_usage(p)
            if usage:
                metrics.append(k8s.pod_metrics_object(p, ns, now, usage))
        docs["podmetrics.yaml"] = metrics
        for file_name, extra in self.extra_docs.items():
            docs[file_name] = extra
        return docs


def k8s_hash(*parts: object) -> str:
    return pod_template_hash(*parts)


def default_usage(p: PodPlan) -> dict[str, tuple[str, str]] | None:
    """metrics-server usage for the running containers of a pod (None when nothing runs)."""
    r = rng("usage", p.name)
    usage: dict[str, tuple[str, str]] = {}
    for c in p.containers:
        if c.current is None:
            continue
        if c.name == "istio-proxy":
            usage[c.name] = (f"{r.randint(2_500_000, 6_000_000)}n", f"{r.randint(41_000, 47_000)}Ki")
        else:
            usage[c.name] = (f"{r.randint(600_000, 2_400_000)}n", f"{r.randint(8_600, 12_400)}Ki")
    return usage or None


def lines_from(timed: list[tuple[int, str]]) -> list[str]:
    """Sort (time, already-stamped line) pairs by time and keep the lines."""
    timed.sort(key=lambda item: item[0])
    return [line for _, line in timed]


__all__ = ["CANARY_AGE", "Cluster", "NOW", "NS", "Scenario", "dump_yaml", "gzip_bytes", "hexid", "lines_from"]
