"""The cluster simulator: scenario folders served as a Kubernetes API server and a Prometheus.

Public entry points: `SimulatedCluster` (cluster.py), the scenario loader (scenario.py:
`load_scenario`, `load_expectation`, `list_scenarios`, `resolve_scenario`,
`bundled_scenarios_dir`, `ScenarioError`), `free_port` (a free loopback port, for every server
the project starts) and `selfheal sim` (cli.py).
"""

from .cluster import SimulatedCluster, SimulatorError
from .prometheus import free_port
from .scenario import (Expectation, Scenario, ScenarioError, ScenarioInfo, bundled_scenarios_dir,
                       list_scenarios, load_expectation, load_scenario, resolve_scenario)

__all__ = [
    "Expectation", "Scenario", "ScenarioError", "ScenarioInfo", "SimulatedCluster", "SimulatorError",
    "bundled_scenarios_dir", "free_port", "list_scenarios", "load_expectation", "load_scenario", "resolve_scenario",
]
