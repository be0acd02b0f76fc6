"""Shared fixtures: the simulated cluster and the real kubectl against it.

- `simulator` (session): `SimulatedCluster` over every bundled scenario in evals/scenarios
  (or over tests/fixtures/scenarios while none exist), with Prometheus when installed.
- `simulator_faults`: the same cluster for one test; faults injected through it are cleared after.
- `kubectl` (session): `Kubectl` bound to `simulator`; `kubectl("get", "pods", "-A")` returns
  the CompletedProcess (text). `make_kubectl(cluster)` binds one to another cluster.
- `fixture_simulator` (session): the hand-made scenarios in tests/fixtures/scenarios, whose
  content the simulator's own tests assert on.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from selfheal.simulator import SimulatedCluster, bundled_scenarios_dir

FIXTURE_SCENARIOS = Path(__file__).parent / "fixtures" / "scenarios"
KUBECTL = shutil.which("kubectl")


def _scenario_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")) and (p / "scenario.yaml").is_file())


def bundled_scenario_dirs() -> list[Path]:
    return _scenario_dirs(bundled_scenarios_dir())


class Kubectl:
    """The real kubectl against one simulated cluster, with a discovery cache of its own."""

    def __init__(self, cluster: SimulatedCluster, cache_dir: Path) -> None:
        if KUBECTL is None:
            pytest.fail("kubectl is not installed (it comes with google-cloud-cli or the 'kubectl' package)")
        self.cluster = cluster
        self.cache_dir = cache_dir

    def __call__(self, *args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [KUBECTL, "--kubeconfig", str(self.cluster.kubeconfig), "--cache-dir", str(self.cache_dir), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result


@pytest.fixture(scope="session")
def fixture_simulator() -> Iterator[SimulatedCluster]:
    # tiny-canary first: the kubeconfig's namespace is the first scenario's (sim-tiny).
    folders = sorted(_scenario_dirs(FIXTURE_SCENARIOS), key=lambda p: (p.name != "tiny-canary", p.name))
    with SimulatedCluster(folders) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def simulator(request: pytest.FixtureRequest) -> Iterator[SimulatedCluster]:
    folders = bundled_scenario_dirs()
    if not folders:
        yield request.getfixturevalue("fixture_simulator")
        return
    with SimulatedCluster(folders) as cluster:
        yield cluster


@pytest.fixture
def simulator_faults(simulator: SimulatedCluster) -> Iterator[SimulatedCluster]:
    simulator.clear_faults()
    yield simulator
    simulator.clear_faults()


@pytest.fixture(scope="session")
def make_kubectl(tmp_path_factory: pytest.TempPathFactory) -> Callable[[SimulatedCluster], Kubectl]:
    def make(cluster: SimulatedCluster) -> Kubectl:
        return Kubectl(cluster, tmp_path_factory.mktemp("kubectl-cache"))

    return make


@pytest.fixture(scope="session")
def kubectl(simulator: SimulatedCluster, make_kubectl: Callable[[SimulatedCluster], Kubectl]) -> Kubectl:
    return make_kubectl(simulator)


@pytest.fixture
def product_env(simulator, monkeypatch, tmp_path):
    """Point the product (tools, agents, settings) at `simulator`, with fresh state in tmp_path.

    The runbook model unless a test sets SELFHEAL_MODEL; no model or GitHub credentials leak in.
    """
    from selfheal.config import get_settings
    from tools import k8s

    for key, value in simulator.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SELFHEAL_MODEL", "runbook")
    monkeypatch.setenv("SELFHEAL_STATE_DIR", str(tmp_path / "state"))
    for name in ("GITHUB_TOKEN", "SELFHEAL_GITHUB_TOKEN", "GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    k8s.reset_clients()
    yield tmp_path
    get_settings.cache_clear()
    k8s.reset_clients()
