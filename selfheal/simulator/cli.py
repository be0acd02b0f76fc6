"""`selfheal sim`: serve scenarios until SIGTERM/SIGINT.

stdout carries exactly one JSON line once everything is ready, so scripts can read it and go;
everything else goes to stderr. Exit codes: 0 after a signal, 2 for a bad scenario, 1 when
the simulator cannot start.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

from .cluster import SimulatedCluster, SimulatorError
from .scenario import ScenarioError


def _say(message: str) -> None:
    print(f"selfheal sim: {message}", file=sys.stderr, flush=True)


def run_simulator(scenarios: list[str], port: int) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="selfheal sim: %(message)s")
    stop = threading.Event()
    # Installed before starting so a signal during startup still leads to a clean exit.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            cluster = SimulatedCluster(scenarios, port=port)
            cluster.start()
        except ScenarioError as exc:
            _say(f"error: {exc}")
            return 2
        except SimulatorError as exc:
            _say(f"error: {exc}")
            return 1
        try:
            ready = {"apiserver": cluster.apiserver, "kubeconfig": str(cluster.kubeconfig),
                     "prometheus": cluster.prometheus_url}
            try:
                print(json.dumps(ready), flush=True)
            except BrokenPipeError:
                pass  # nobody reads stdout; keep serving
            assert cluster.state is not None
            names = ", ".join(s.name for s in cluster.scenarios)
            _say(f"serving {names} on {cluster.apiserver} (namespaces: "
                 f"{', '.join(cluster.state.namespaces())}); kubectl --kubeconfig {cluster.kubeconfig} get pods")
            while not stop.wait(0.5):
                pass
        finally:
            cluster.stop()
        _say("stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
