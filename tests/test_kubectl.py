"""The real kubectl (google-cloud-cli's dispatcher, client v1.32) against the simulator."""

from __future__ import annotations

import json
import math
import re
import subprocess
from datetime import datetime, timezone
from typing import Callable

import pytest

from selfheal.simulator import SimulatedCluster, load_scenario

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]
CANARY = "web-7b8f9c5d4-klmno"
STABLE = "web-6d4cf56db6-abcde"


@pytest.fixture(scope="module")
def k(fixture_simulator: SimulatedCluster, make_kubectl: Callable[[SimulatedCluster], Kubectl]) -> Kubectl:
    """kubectl against the hand-made fixture scenarios; the context namespace is sim-tiny."""
    return make_kubectl(fixture_simulator)


def rows(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def test_get_pods_by_label_shows_status_column(k: Kubectl) -> None:
    result = k("get", "pods", "-l", "role=canary", check=True)
    table = rows(result.stdout)
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(table) == 2
    name, ready, status, restarts, age = table[1]
    assert (name, ready, status) == (CANARY, "1/2", "CrashLoopBackOff")
    # Ages grow while the session-wide cluster runs: 20 minutes at start-up, more later.
    running = (datetime.now(timezone.utc) - k.cluster.started_at).total_seconds()
    assert re.fullmatch(r"4 \((\d+m)?\d+s ago\)", restarts)
    assert age.endswith("m") and 20 <= int(age[:-1]) <= 20 + math.ceil(running / 60)
    wide = rows(k("get", "pods", "-o", "wide", check=True).stdout)
    assert wide[0][:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert [r[2] for r in wide[1:]] == ["Running", "Running", "CrashLoopBackOff"]


def test_get_rollouts_uses_argo_printer_columns(k: Kubectl) -> None:
    table = rows(k("get", "rollouts", check=True).stdout)
    assert table[0] == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1][:5] == ["web", "3", "3", "1", "2"]
    assert rows(k("get", "ro", "web", check=True).stdout)[1][0] == "web"  # short name through discovery
    runs = rows(k("get", "analysisruns", check=True).stdout)
    assert runs[0] == ["NAME", "STATUS", "AGE"] and runs[1][:2] == ["web-7b8f9c5d4-2-2", "Running"]


def test_describe_pod(k: Kubectl) -> None:
    out = k("describe", "pod", CANARY, check=True).stdout
    assert re.search(r"^Namespace:\s+sim-tiny$", out, re.M)
    assert re.search(r"^Controlled By:\s+ReplicaSet/web-7b8f9c5d4$", out, re.M)
    assert re.search(r"State:\s+Waiting\n\s+Reason:\s+CrashLoopBackOff", out)
    assert re.search(r"Last State:\s+Terminated\n\s+Reason:\s+OOMKilled\n\s+Exit Code:\s+137", out)
    assert re.search(r"Restart Count:\s+4", out)
    events = out.split("Events:", 1)[1]
    assert re.search(r"Warning\s+BackOff\s+\S+ \(x17 over 18m\)\s+kubelet\s+Back-off restarting failed container", events)
    assert "Pulled" in events and "Started" not in events  # only this pod's events (matched by uid)


def test_get_events_by_involved_object(k: Kubectl) -> None:
    result = k("get", "events", "--field-selector", f"involvedObject.name={CANARY}", check=True)
    table = rows(result.stdout)
    assert table[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert sorted(r[2] for r in table[1:]) == ["BackOff", "Pulled"]
    assert {r[3] for r in table[1:]} == {f"pod/{CANARY}"}
    everything = rows(k("get", "events", "-A", check=True).stdout)
    assert everything[0][0] == "NAMESPACE" and len(everything) == 5


def test_logs(k: Kubectl) -> None:
    result = k("logs", CANARY, check=True)
    assert 'Defaulted container "app" out of: app, istio-proxy' in result.stderr
    assert result.stdout.splitlines()[-5:] == ["fatal error: runtime: out of memory", "", "goroutine 1 [running]:",
                                               "main.leak(...)", "\t/go/src/app/main.go:42 +0x1d"]
    previous = k("logs", CANARY, "--previous", "--tail", "2", check=True).stdout.splitlines()
    assert len(previous) == 2 and previous[-1] == "fatal error: runtime: out of memory"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d 500 - yellow", previous[0])
    tail = k("logs", STABLE, "--tail", "3", "--timestamps", check=True).stdout.splitlines()
    assert len(tail) == 3 and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.123456789Z \d{4}/", line) for line in tail)
    proxy = k("logs", CANARY, "-c", "istio-proxy", "--tail", "1", check=True).stdout
    assert '"GET /color HTTP/1.1" 503' in proxy
    assert len(k("logs", STABLE, "--since", "30s", check=True).stdout.splitlines()) <= 11


def test_error_paths_read_like_a_real_cluster(k: Kubectl, fixture_simulator: SimulatedCluster) -> None:
    missing = k("get", "pod", "missing")
    assert missing.returncode == 1
    assert 'Error from server (NotFound): pods "missing" not found' in missing.stderr
    no_previous = k("logs", CANARY, "-c", "istio-proxy", "--previous")
    assert no_previous.returncode == 1
    assert f'previous terminated container "istio-proxy" in pod "{CANARY}" not found' in no_previous.stderr
    secrets = k("get", "secrets")
    assert secrets.returncode == 1 and "Error from server (Forbidden): secrets is forbidden" in secrets.stderr
    bad = k("get", "pods", "-l", "role in")
    assert bad.returncode == 1 and "unable to parse requirement" in bad.stderr
    waiting = k("logs", "-n", "sim-second", "api-84f7d9c6b5-vwxyz")
    assert waiting.returncode == 1 and "is waiting to start: trying and failing to pull image" in waiting.stderr
    try:
        fixture_simulator.inject_fault(r"/namespaces/sim-tiny/pods\b", status=403)
        denied = k("get", "pods")
        assert denied.returncode == 1
        assert 'pods is forbidden: User "system:serviceaccount:selfheal:rollout-doctor" cannot list' in denied.stderr
    finally:
        fixture_simulator.clear_faults()


def test_other_outputs(k: Kubectl) -> None:
    pods = json.loads(k("get", "pods", "-o", "json", check=True).stdout)
    assert pods["kind"] == "List" or pods["kind"] == "PodList"
    assert [p["metadata"]["name"] for p in pods["items"]] == [STABLE, "web-6d4cf56db6-fghij", CANARY]
    names = k("get", "pods", "-A", "-o", "jsonpath={.items[*].metadata.name}", check=True).stdout.split()
    assert len(names) == 5
    everything = k("get", "all", check=True).stdout
    assert "pod/" + CANARY in everything and "service/web" in everything and "replicaset.apps/web-7b8f9c5d4" in everything
    namespaces = [r[0] for r in rows(k("get", "namespaces", check=True).stdout)[1:]]
    assert {"default", "sim-tiny", "sim-second"} <= set(namespaces)
    top = rows(k("top", "pod", check=True).stdout)
    assert top[0][:3] == ["NAME", "CPU(cores)", "MEMORY(bytes)"] and CANARY in [r[0] for r in top[1:]]
    generic = rows(k("get", "virtualservices", "-n", "sim-second", check=True).stdout)
    assert generic[0] == ["NAME", "AGE"] and generic[1][0] == "api"


def test_kubectl_against_bundled_scenarios(simulator: SimulatedCluster, kubectl: Kubectl) -> None:
    rollouts = rows(kubectl("get", "rollouts", "-A", check=True).stdout)
    served = {(r[0], r[1]) for r in rollouts[1:]}
    for scenario in simulator.scenarios:
        assert (scenario.rollout.namespace, scenario.rollout.name) in served
        canary = kubectl("get", "pods", "-n", scenario.rollout.namespace, "-l", scenario.selectors.canary, check=True)
        assert rows(canary.stdout)[0][:3] == ["NAME", "READY", "STATUS"] and len(rows(canary.stdout)) > 1
        pod = rows(canary.stdout)[1][0]
        described = kubectl("describe", "pod", pod, "-n", scenario.rollout.namespace, check=True).stdout
        assert re.search(rf"^Name:\s+{re.escape(pod)}$", described, re.M)
        logs = [log for log in load_scenario(scenario.path).logs if log.pod == pod and not log.previous]
        if logs:
            out = kubectl("logs", pod, "-n", scenario.rollout.namespace, "-c", logs[0].container, "--tail", "5",
                          check=True).stdout
            assert len(out.splitlines()) == min(5, len(logs[0].lines))
