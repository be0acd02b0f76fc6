"""`SimulatedCluster`: scenarios served as a Kubernetes API server (plus Prometheus).

    with SimulatedCluster(["evals/scenarios/bad-canary"]) as cluster:
        kubernetes.config.load_kube_config(str(cluster.kubeconfig))
        ...   # cluster.prometheus_url is a backfilled Prometheus, or None

The API server runs in a background thread of this process; Prometheus is a child process.
Both are stopped, and the temporary directory removed, by stop() (also at interpreter exit).
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from .api import ApiApp
from .faults import Fault, FaultSet
from .httpserver import ApiServer
from .metrics import shift_metrics
from .prometheus import PrometheusServer, missing_binaries
from .scenario import Scenario, load_scenario, resolve_scenario
from .store import ClusterState

CONTEXT = "selfheal-sim"


class SimulatorError(RuntimeError):
    """The simulator could not start (port in use, Prometheus failed)."""


def write_kubeconfig(path: Path, server: str, namespace: str) -> None:
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": {"token": "simulated"}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)


class SimulatedCluster:
    """Scenario folders (or bundled scenario names) served on 127.0.0.1.

    After start(): `apiserver` (URL), `kubeconfig` (Path; its context's namespace is the first
    scenario's rollout namespace), `prometheus_url` (URL or None), `started_at` (the instant
    every scenario's `now` was moved to), `shift` (that move for the first scenario) and
    `shifts` (per scenario name).
    """

    def __init__(self, paths: list[Path | str], port: int = 0, prometheus: bool = True) -> None:
        if not paths:
            raise ValueError("SimulatedCluster needs at least one scenario folder")
        self.scenarios: list[Scenario] = [load_scenario(resolve_scenario(p)) for p in paths]
        self.port = port
        self.want_prometheus = prometheus
        self.apiserver: str | None = None
        self.kubeconfig: Path | None = None
        self.prometheus_url: str | None = None
        self.prometheus_note: str | None = None  # why there is no Prometheus, when there is none
        self.started_at: datetime | None = None
        self.shift: timedelta | None = None
        self.shifts: dict[str, timedelta] = {}
        self.tempdir: Path | None = None
        self.state: ClusterState | None = None
        self._faults = FaultSet()
        self._server: ApiServer | None = None
        self._prometheus: PrometheusServer | None = None
        self._lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "SimulatedCluster":
        with self._lock:
            if self._server is not None:
                return self
            startup = datetime.now(timezone.utc).replace(microsecond=0)
            state = ClusterState(self.scenarios, startup)
            self.tempdir = Path(tempfile.mkdtemp(prefix="selfheal-sim-"))
            atexit.register(self.stop)
            try:
                self._start_prometheus(state)
                try:
                    server = ApiServer(self.port)
                except OSError as exc:
                    raise SimulatorError(f"cannot listen on 127.0.0.1:{self.port}: {exc.strerror or exc}") from None
                server.start(ApiApp(state, self._faults, f"127.0.0.1:{server.server_address[1]}"))
                self._server = server
                self.apiserver = server.url
                self.kubeconfig = self.tempdir / "kubeconfig"
                write_kubeconfig(self.kubeconfig, server.url, self.scenarios[0].rollout.namespace)
            except BaseException:
                self._stop_locked()
                raise
            self.state = state
            self.started_at = startup
            self.shifts = {name: shift.delta for name, shift in state.shifts.items()}
            self.shift = self.shifts[self.scenarios[0].name]
            return self

    def _start_prometheus(self, state: ClusterState) -> None:
        if not self.want_prometheus:
            self.prometheus_note = "Prometheus disabled"
            return
        has_metrics = any(s.metrics for s in self.scenarios)
        reason = missing_binaries() if has_metrics else "no scenario has metrics/*.om files; serving without Prometheus"
        if reason:
            self.prometheus_note = reason
            print(f"selfheal sim: {reason}", file=sys.stderr, flush=True)
            return
        assert self.tempdir is not None
        workdir = self.tempdir / "prometheus"
        workdir.mkdir()
        self._prometheus = PrometheusServer(workdir)
        self._prometheus.backfill([(m.source, shift_metrics(m.text, state.shifts[s.name].seconds))
                                   for s in self.scenarios for m in s.metrics])
        try:
            self.prometheus_url = self._prometheus.start()
        except RuntimeError as exc:
            raise SimulatorError(str(exc)) from None

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        prometheus, self._prometheus = self._prometheus, None
        if prometheus is not None:
            prometheus.stop()
        if self.tempdir is not None:
            shutil.rmtree(self.tempdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> "SimulatedCluster":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # --- fault injection --------------------------------------------------------------------------

    def inject_fault(self, path_regex: str, status: int | None = None, delay_seconds: float = 0.0,
                     message: str | None = None) -> None:
        """Answer requests whose path (plus `?query`) matches `path_regex` with a Kubernetes Status
        of `status` (403 is worded like an RBAC denial), after sleeping `delay_seconds`."""
        self._faults.add(Fault(path_regex=path_regex, status=status, delay_seconds=delay_seconds,
                               message=message))

    def clear_faults(self) -> None:
        self._faults.clear()

    # --- convenience ------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """Environment variables that point the product (and kubectl) at this cluster."""
        env = {"KUBECONFIG": str(self.kubeconfig), "SELFHEAL_KUBECONFIG": str(self.kubeconfig)}
        if self.prometheus_url:
            env["SELFHEAL_PROMETHEUS_URL"] = self.prometheus_url
        return env
