"""tools/k8s.py: every tool against the simulator, error paths included, plus its pure helpers."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from selfheal.config import Settings, get_settings
from selfheal.simulator import SimulatedCluster, free_port
from tools import k8s
from tools.errors import is_error

FIXTURE = Path(__file__).parent / "fixtures" / "k8s_tools" / "sidecars-and-crash"
NS = "k8s-tools"
STABLE_POD = "web-6d4b8f9c7-abcde"
STABLE_POD_RESTARTED = "web-6d4b8f9c7-fghij"
CANARY_POD = "web-7f9c5d8b4-klmno"


def _write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "test-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


@pytest.fixture
def use_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point get_settings() (and so every tool) at a kubeconfig; cached settings and clients are
    dropped before and after, so no other test sees this cluster."""

    def point(kubeconfig: str | Path | None, **env: str) -> None:
        monkeypatch.delenv("KUBECONFIG", raising=False)
        if kubeconfig is None:
            monkeypatch.delenv("SELFHEAL_KUBECONFIG", raising=False)
        else:
            monkeypatch.setenv("SELFHEAL_KUBECONFIG", str(kubeconfig))
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        k8s.reset_clients()

    yield point
    monkeypatch.undo()
    get_settings.cache_clear()
    k8s.reset_clients()


def _error(result: dict) -> dict:
    assert is_error(result), result
    json.dumps(result)
    return result["error"]


# --------------------------------------------------------------------------------------------
# Pure helpers (no cluster)
# --------------------------------------------------------------------------------------------


def _pod(containers: list[str], labels: dict | None = None, annotations: dict | None = None) -> dict:
    return {
        "metadata": {"name": "p", "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"containers": [{"name": name, "image": f"{name}:1"} for name in containers]},
    }


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (_pod(["istio-proxy", "web"]), "web"),
        (_pod(["linkerd-proxy", "vault-agent", "otel-collector", "api"]), "api"),
        (_pod(["istio-proxy", "helper", "shop"], labels={"app": "shop"}), "shop"),
        (_pod(["cloud-sql-proxy", "worker", "shop"], labels={"app.kubernetes.io/name": "shop"}), "shop"),
        (_pod(["istio-proxy", "a", "b"], annotations={k8s.DEFAULT_CONTAINER_ANNOTATION: "b"}), "b"),
        (_pod(["envoy", "fluent-bit"]), "envoy"),
        (_pod([]), None),
    ],
)
def test_choose_app_container(pod: dict, expected: str | None) -> None:
    assert k8s.choose_app_container(pod) == expected


@pytest.mark.parametrize(
    ("name", "sidecar"),
    [
        ("istio-proxy", True),
        ("istio-init", True),
        ("linkerd-proxy", True),
        ("envoy", True),
        ("vault-agent", True),
        ("cloud-sql-proxy", True),
        ("otel-collector", True),
        ("fluent-bit", True),
        ("log-shipper-sidecar", True),
        ("web", False),
        ("rollouts-demo", False),
        ("api-server", False),
    ],
)
def test_is_sidecar(name: str, sidecar: bool) -> None:
    assert k8s.is_sidecar(name) is sidecar


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m"), (192, "3m12s"), (3600, "1h"), (7500, "2h5m"), (86400, "1d"), (273600, "3d4h")],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert k8s.human_duration(seconds) == text


def test_cap_log_keeps_newest_lines_and_shortens_long_ones() -> None:
    text = "\n".join(f"line {i:03d}" for i in range(100)) + "\n" + "y" * 50
    kept, dropped, cut = k8s._cap_log(text, max_bytes=100, max_line_chars=20)
    assert kept[-1].startswith("y" * 20) and "30 chars cut" in kept[-1]
    assert kept[-2] == "line 099"
    assert dropped == 101 - len(kept) and cut == 1
    assert sum(len(line.encode()) + 1 for line in kept) <= 100


def test_set_weight_follows_argo() -> None:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1m"}}]
    rollout = {"status": {"currentStepIndex": 1}}
    assert k8s._set_weight(rollout, steps) == 20
    assert k8s._set_weight({"status": {"currentStepIndex": 3}}, steps) == 50
    assert k8s._set_weight({"status": {"currentStepIndex": 4}}, steps) == 100
    assert k8s._set_weight({"status": {"currentStepIndex": 2, "abort": True}}, steps) == 0


def test_actual_weight() -> None:
    stable = {"pod_template_hash": "a", "available": 3}
    canary = {"pod_template_hash": "b", "available": 1}
    routed = {"canary": {"weights": {"canary": {"weight": 10, "podTemplateHash": "b"}}}}
    assert k8s._actual_weight(routed, stable, canary) == 10  # the traffic router's weight wins
    assert k8s._actual_weight({}, stable, canary) == 25  # else the share of available pods
    assert k8s._actual_weight({}, stable, {**stable}) == 100  # fully promoted
    assert k8s._actual_weight({}, {**stable, "available": 0}, {**canary, "available": 0}) is None


def test_tools_have_model_facing_signatures() -> None:
    """The model sees only namespace/names/selectors: no kubeconfig or settings parameter."""
    from google.adk.tools import FunctionTool

    from agents.rollout_doctor.agent import DIAGNOSIS_TOOLS

    k8s_tools = [tool for tool in DIAGNOSIS_TOOLS if tool.__module__ == k8s.__name__]
    assert {tool.__name__ for tool in k8s_tools} >= {"list_pods", "get_pod_logs", "get_rollout", "find_rollouts"}
    for tool in k8s_tools:
        declaration = FunctionTool(tool)._get_declaration()
        schema = declaration.parameters_json_schema or {}
        assert "namespace" in schema["properties"], tool.__name__
        assert not {"kubeconfig", "settings"} & set(schema["properties"]), tool.__name__
        assert len(declaration.description) > 200, tool.__name__


# --------------------------------------------------------------------------------------------
# Configuration and transport failures
# --------------------------------------------------------------------------------------------


def test_unreachable_api_is_an_error_not_an_exception(use_cluster: Callable[..., None], tmp_path: Path) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    use_cluster(kubeconfig)
    for call in (
        lambda: k8s.list_pods(NS),
        lambda: k8s.describe_pod(NS, STABLE_POD),
        lambda: k8s.get_pod_logs(NS, STABLE_POD),
        lambda: k8s.get_events(NS),
        lambda: k8s.get_rollout(NS, "web"),
        lambda: k8s.get_pod_metrics(NS),
        lambda: k8s.list_related_resources(NS),
    ):
        error = _error(call())
        assert error["kind"] == "unreachable", error
        assert "127.0.0.1" in error["message"]
    log = k8s.fetch_container_log(NS, STABLE_POD, container="web")
    assert log.error is not None and log.error.kind == "unreachable" and log.text == ""


def test_missing_configuration_is_not_configured(
    use_cluster: Callable[..., None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    use_cluster(None)
    error = _error(k8s.list_pods(NS))
    assert error["kind"] == "not_configured"
    assert "KUBECONFIG" in error["hint"]


def test_argument_validation(use_cluster: Callable[..., None], tmp_path: Path) -> None:
    # Arguments are checked before any request, so no cluster is needed.
    kubeconfig = _write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    use_cluster(kubeconfig)
    cases = [
        (k8s.list_pods("Not_A_Namespace"), "namespace"),
        (k8s.list_pods(""), "namespace"),
        (k8s.describe_pod(NS, "../etc"), "pod name"),
        (k8s.get_pod_logs(NS, STABLE_POD, tail_lines=0), "tail_lines"),
        (k8s.get_pod_logs(NS, STABLE_POD, tail_lines=10_001), "tail_lines"),
        (k8s.get_pod_logs(NS, STABLE_POD, tail_lines="many"), "tail_lines"),
        (k8s.get_pod_logs(NS, STABLE_POD, since_seconds=-5), "since_seconds"),
        (k8s.get_pod_logs(NS, STABLE_POD, previous="maybe"), "previous"),
        (k8s.get_pod_logs(NS, STABLE_POD, container="Bad Name"), "container"),
        (k8s.get_events(NS, limit=0), "limit"),
        (k8s.get_events(NS, object_names=["UPPER"]), "object name"),
        (k8s.get_events(NS, kinds=[3]), "kinds"),
        (k8s.get_rollout(NS, ""), "rollout name"),
    ]
    for result, mentioned in cases:
        error = _error(result)
        assert error["kind"] == "invalid_argument", (mentioned, error)
        assert mentioned in error["message"], (mentioned, error)
    log = k8s.fetch_container_log(NS, STABLE_POD, tail_lines=10**9)
    assert log.error is not None and log.error.kind == "invalid_argument"


# --------------------------------------------------------------------------------------------
# Every tool against the simulator (the fixture scenario in tests/fixtures/k8s_tools)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools_cluster() -> Iterator[SimulatedCluster]:
    with SimulatedCluster([FIXTURE], prometheus=False) as cluster:
        yield cluster


@pytest.fixture
def cluster(tools_cluster: SimulatedCluster, use_cluster: Callable[..., None]) -> Iterator[SimulatedCluster]:
    """The fixture cluster with every tool pointed at it; faults are cleared after each test."""
    tools_cluster.clear_faults()
    use_cluster(tools_cluster.kubeconfig)
    yield tools_cluster
    tools_cluster.clear_faults()


def _everything(cluster: SimulatedCluster) -> list[dict]:
    return [
        k8s.find_rollouts(),
        k8s.list_pods(NS),
        k8s.describe_pod(NS, STABLE_POD),
        k8s.get_pod_logs(NS, STABLE_POD, tail_lines=10_000),
        k8s.get_pod_logs(NS, CANARY_POD),
        k8s.get_events(NS),
        k8s.get_rollout(NS, "web"),
        k8s.get_pod_metrics(NS),
        k8s.list_related_resources(NS),
    ]


def test_list_pods_reports_health_and_identity(cluster: SimulatedCluster) -> None:
    result = k8s.list_pods(NS)
    assert result["count"] == 3 and result["omitted"] == 0
    pods = {pod["name"]: pod for pod in result["pods"]}
    canary = pods[CANARY_POD]
    assert canary["status"] == "CrashLoopBackOff" and canary["waiting_reason"] == "CrashLoopBackOff"
    assert canary["ready"] is False and canary["ready_containers"] == "1/2"
    assert canary["restarts"] == 4
    assert canary["last_termination"] == {
        "container": "web",
        "reason": "OOMKilled",
        "exit_code": 137,
        "finished_at": canary["last_termination"]["finished_at"],
    }
    assert canary["app_container"] == "web" and canary["image"] == "argoproj/rollouts-demo:yellow"
    assert canary["pod_template_hash"] == "7f9c5d8b4" and canary["role"] == "canary"
    assert canary["node"] == "node-a" and canary["start_time"]
    # The simulator moves the scenario's `now` to its start: the canary is 20 minutes old.
    assert 1200 <= canary["age_seconds"] < 1200 + 3600 and canary["age"].startswith("2")

    stable = pods[STABLE_POD]
    assert stable["app_container"] == "web"  # istio-proxy is listed first and skipped
    assert stable["image"] == "argoproj/rollouts-demo:blue"
    assert stable["ready"] is True and stable["ready_containers"] == "2/2" and stable["status"] == "Running"
    assert stable["last_termination"] is None and stable["role"] == "stable"
    assert pods[STABLE_POD_RESTARTED]["last_termination"]["reason"] == "Error"

    selected = k8s.list_pods(NS, "role in (stable),app=web")
    assert {pod["name"] for pod in selected["pods"]} == {STABLE_POD, STABLE_POD_RESTARTED}
    assert k8s.list_pods("no-such-namespace")["count"] == 0


def test_bad_selector_is_invalid_argument(cluster: SimulatedCluster) -> None:
    for result in (k8s.list_pods(NS, "app: web"), k8s.get_pod_metrics(NS, "role in stable"),
                   k8s.list_related_resources(NS, "=web")):
        error = _error(result)
        assert error["kind"] == "invalid_argument"
        assert "role in (stable,canary)" in error["hint"]


def test_forbidden_names_the_missing_permission(cluster: SimulatedCluster) -> None:
    cluster.inject_fault(rf"/namespaces/{NS}/pods(\?|$)", status=403)
    error = _error(k8s.list_pods(NS))
    assert error["kind"] == "forbidden"
    assert "'list'" in error["hint"] and "'pods'" in error["hint"] and NS in error["hint"]
    cluster.clear_faults()

    cluster.inject_fault(r"/log(\?|$)", status=403)
    error = _error(k8s.get_pod_logs(NS, CANARY_POD))
    assert error["kind"] == "forbidden" and "'get'" in error["hint"] and "'pods/log'" in error["hint"]
    log = k8s.fetch_container_log(NS, CANARY_POD, container="web")
    assert log.error is not None and log.error.kind == "forbidden"
    cluster.clear_faults()

    # A tool that reads several kinds keeps what it could read and says what it could not.
    cluster.inject_fault(r"/events(\?|$)", status=403)
    described = k8s.describe_pod(NS, CANARY_POD)
    assert described["containers"] and described["events"] == []
    assert described["events_error"]["kind"] == "forbidden"
    cluster.inject_fault(r"/analysisruns(\?|$)", status=403)
    rollout = k8s.get_rollout(NS, "web")
    assert rollout["canary"]["revision"] == "2" and rollout["analysis_runs"] == []
    assert rollout["partial_errors"]["analysis_runs"]["kind"] == "forbidden"
    assert "'argoproj.io'" in rollout["partial_errors"]["analysis_runs"]["hint"]
    cluster.inject_fault(r"/configmaps(\?|$)", status=403)
    related = k8s.list_related_resources(NS)
    assert related["services"] and related["configmaps"] == []
    assert related["partial_errors"]["configmaps"]["kind"] == "forbidden"
    cluster.clear_faults()

    cluster.inject_fault(rf"/namespaces/{NS}/", status=403)
    assert _error(k8s.list_related_resources(NS))["kind"] == "forbidden"


def test_missing_objects_are_not_found_with_a_way_forward(cluster: SimulatedCluster) -> None:
    for result in (k8s.describe_pod(NS, "web-gone-12345"), k8s.get_pod_logs(NS, "web-gone-12345")):
        error = _error(result)
        assert error["kind"] == "not_found" and "web-gone-12345" in error["message"]
        assert "list_pods" in error["hint"]
    error = _error(k8s.get_rollout(NS, "canary-demo"))
    assert error["kind"] == "not_found" and "['web']" in error["hint"]
    error = _error(k8s.get_rollout("empty-namespace", "web"))
    assert error["kind"] == "not_found" and "no Argo Rollouts" in error["hint"]


def test_slow_api_times_out_within_the_configured_timeout(
    cluster: SimulatedCluster, use_cluster: Callable[..., None]
) -> None:
    use_cluster(cluster.kubeconfig, SELFHEAL_KUBE_TIMEOUT_SECONDS="0.5")
    cluster.inject_fault(r"/pods", delay_seconds=3)
    started = time.monotonic()
    error = _error(k8s.list_pods(NS))
    assert error["kind"] == "timeout" and "0.5s" in error["message"]
    assert time.monotonic() - started < 2.5  # a slow answer is not retried
    log = k8s.fetch_container_log(NS, CANARY_POD, container="web")
    assert log.error is not None and log.error.kind == "timeout"


def test_describe_pod(cluster: SimulatedCluster) -> None:
    result = k8s.describe_pod(NS, CANARY_POD)
    assert result["status"] == "CrashLoopBackOff" and result["owner"] == "ReplicaSet/web-7f9c5d8b4"
    assert result["app_container"] == "web" and result["pod_template_hash"] == "7f9c5d8b4"
    ready = next(c for c in result["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    proxy, web = result["containers"]
    assert proxy["name"] == "linkerd-proxy" and proxy["sidecar"] is True and proxy["ready"] is True
    assert web["sidecar"] is False and web["ready"] is False and web["restarts"] == 4
    assert web["state"]["state"] == "waiting" and web["state"]["reason"] == "CrashLoopBackOff"
    assert web["last_state"]["reason"] == "OOMKilled" and web["last_state"]["exit_code"] == 137
    assert web["requests"] == {"cpu": "100m", "memory": "64Mi"} and web["limits"] == {"memory": "128Mi"}
    # Events: only this pod's, newest first, the two BackOff records merged (12 + 3).
    events = result["events"]
    assert {event["object"] for event in events} == {f"Pod/{CANARY_POD}"}
    assert events[0]["reason"] == "BackOff" and events[0]["count"] == 15
    assert [event["last_seen"] for event in events] == sorted((e["last_seen"] for e in events), reverse=True)

    stable = k8s.describe_pod(NS, STABLE_POD)
    (init,) = stable["init_containers"]
    assert init["name"] == "istio-init" and init["state"]["reason"] == "Completed"


def test_get_pod_logs_picks_the_app_container_and_reports_the_others(cluster: SimulatedCluster) -> None:
    result = k8s.get_pod_logs(NS, STABLE_POD, tail_lines=20)
    assert result["container"] == "web"
    assert set(result["other_containers"]) == {"istio-proxy", "istio-init"}
    assert set(result["sidecars_skipped"]) == {"istio-proxy", "istio-init"}
    lines = result["text"].splitlines()
    assert result["lines"] == len(lines) == 20
    assert all(line.endswith("- blue") for line in lines), lines  # the app's lines, not Envoy's
    assert not any(re.match(r"\d{4}-\d\d-\d\dT", line) for line in lines)  # no kubelet timestamps
    assert result["more_lines_available"] is True and result["truncated"] is False

    proxy = k8s.get_pod_logs(NS, STABLE_POD, container="istio-proxy", tail_lines=5)
    assert proxy["container"] == "istio-proxy" and "HTTP/1.1" in proxy["text"] and proxy["sidecars_skipped"] == []

    error = _error(k8s.get_pod_logs(NS, STABLE_POD, container="worker"))
    assert error["kind"] == "invalid_argument" and "istio-proxy" in error["hint"] and "web" in error["hint"]

    canary = k8s.get_pod_logs(NS, CANARY_POD)
    assert canary["container"] == "web" and canary["sidecars_skipped"] == ["linkerd-proxy"]
    assert "previous=True" in canary["note"]  # the model is told how to read the crashed instance


def test_previous_log_after_a_crash(cluster: SimulatedCluster) -> None:
    result = k8s.get_pod_logs(NS, CANARY_POD, previous=True, tail_lines=2)
    assert result["previous"] is True and result["container"] == "web"
    assert result["text"].splitlines()[-1].endswith("fatal error: runtime: out of memory")

    for pod in (STABLE_POD, STABLE_POD_RESTARTED):  # never restarted / old log already gone
        error = _error(k8s.get_pod_logs(NS, pod, previous=True))
        assert error["kind"] == "not_found" and "previous" in error["message"]
        assert "previous=False" in error["hint"]


def test_since_seconds_limits_the_window(cluster: SimulatedCluster) -> None:
    result = k8s.get_pod_logs(NS, STABLE_POD, since_seconds=60, tail_lines=500)
    # One line every 4 seconds, up to the scenario's `now` (= simulator start, a moment ago).
    assert 3 <= result["lines"] <= 16, result["lines"]
    assert result["more_lines_available"] is False


def test_log_output_is_capped_and_says_so(cluster: SimulatedCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    full = k8s.get_pod_logs(NS, STABLE_POD, tail_lines=10_000)
    assert full["lines"] == 601 and full["truncated"] is False and full["more_lines_available"] is False
    assert len(full["text"].encode()) <= k8s.MAX_LOG_BYTES

    monkeypatch.setattr(k8s, "MAX_LOG_BYTES", 2_000)
    capped = k8s.get_pod_logs(NS, STABLE_POD, tail_lines=10_000)
    assert capped["truncated"] is True
    assert capped["lines"] + capped["lines_dropped"] == 601
    assert len(capped["text"].encode()) <= 2_000
    assert full["text"].endswith(capped["text"])  # the newest lines are the ones kept
    assert f"{capped['lines_dropped']} older lines dropped" in capped["note"]

    canary = k8s.get_pod_logs(NS, CANARY_POD, tail_lines=5)
    long_line = next(line for line in canary["text"].splitlines() if "debug payload" in line)
    assert canary["long_lines_cut"] == 1 and canary["truncated"] is True
    assert len(long_line) < 1_100 and "chars cut]" in long_line


def test_secrets_never_leave_the_tools(cluster: SimulatedCluster) -> None:
    stable = k8s.get_pod_logs(NS, STABLE_POD, tail_lines=10_000)
    planted = next(line for line in stable["text"].splitlines() if "connecting to db" in line)
    assert "hunter2" not in planted and "[REDACTED:" in planted
    canary = k8s.get_pod_logs(NS, CANARY_POD, tail_lines=5)
    token_line = canary["text"].splitlines()[-1]
    assert "abcdefghijklmnop" not in token_line and "Bearer [REDACTED:" in token_line
    raw = k8s.fetch_container_log(NS, STABLE_POD)
    assert "hunter2" not in raw.text and "[REDACTED:" in raw.text

    dumped = json.dumps(_everything(cluster))
    for secret in ("hunter2", "never-read-this-secret", "configmap-password-123", "db-credentials",
                   "abcdefghijklmnopqrstuvwxyz"):
        assert secret not in dumped, secret


def test_fetch_container_log_for_the_evidence_collector(cluster: SimulatedCluster) -> None:
    log = k8s.fetch_container_log(NS, STABLE_POD)
    assert isinstance(log, k8s.ContainerLog) and log.error is None
    assert log.container == "web" and log.lines == 601 == len(log.text.splitlines())  # not capped at 200

    crashed = k8s.fetch_container_log(NS, CANARY_POD, container="web", previous=True)
    assert crashed.previous is True and crashed.text.rstrip().endswith("out of memory")
    stamped = k8s.fetch_container_log(NS, CANARY_POD, container="web", previous=True, timestamps=True)
    assert stamped.text.startswith(str(cluster.started_at.year)) and "T" in stamped.text[:11]

    bounded = k8s.fetch_container_log(NS, STABLE_POD, settings=Settings(kubeconfig=str(cluster.kubeconfig),
                                                                        log_tail_lines=100))
    assert bounded.lines == 100
    too_many = k8s.fetch_container_log(NS, STABLE_POD, tail_lines=101, settings=Settings(
        kubeconfig=str(cluster.kubeconfig), log_tail_lines=100))
    assert too_many.error is not None and too_many.error.kind == "invalid_argument"

    missing = k8s.fetch_container_log(NS, STABLE_POD, previous=True)
    assert missing.text == "" and missing.error is not None and missing.error.kind == "not_found"
    gone = k8s.fetch_container_log(NS, "web-gone-12345")
    assert gone.error is not None and gone.error.kind == "not_found"


def test_get_events_merges_and_orders(cluster: SimulatedCluster) -> None:
    result = k8s.get_events(NS, [CANARY_POD, "web"])
    events = result["events"]
    assert result["count"] == len(events) == 5 and result["omitted"] == 0
    assert [e["last_seen"] for e in events] == sorted((e["last_seen"] for e in events), reverse=True)
    backoff = [e for e in events if e["reason"] == "BackOff"]
    assert len(backoff) == 1 and backoff[0]["count"] == 15 and backoff[0]["type"] == "Warning"
    assert backoff[0]["first_seen"] < backoff[0]["last_seen"] and backoff[0]["last_seen_ago"]
    # An event with only eventTime (events.k8s.io style) still gets a time.
    scheduled = next(e for e in events if e["reason"] == "Scheduled")
    assert scheduled["last_seen"] and scheduled["count"] == 1

    rollout_only = k8s.get_events(NS, kinds=["rollout"])
    assert {e["object"] for e in rollout_only["events"]} == {"Rollout/web"}
    assert rollout_only["events"][0]["reason"] == "AnalysisRunFailed"

    limited = k8s.get_events(NS, limit=2)
    assert limited["count"] == 2 and limited["omitted"] == 4  # 6 merged events in the namespace

    # More than ten names: one namespace-wide list, filtered here.
    many = k8s.get_events(NS, [f"pod-{i}" for i in range(12)] + [STABLE_POD])
    assert [e["object"] for e in many["events"]] == [f"Pod/{STABLE_POD}"]
    assert k8s.get_events(NS, ["nothing-here"])["events"] == []


def test_get_rollout(cluster: SimulatedCluster) -> None:
    result = k8s.get_rollout(NS, "web")
    assert result["phase"] == "Paused" and result["paused"] is True and result["aborted"] is False
    assert result["pause_reasons"] == ["CanaryPauseStep"] and result["strategy"] == "canary"
    assert result["current_step"] == {"index": 1, "total": 5, "description": "pause (until promoted)",
                                      "step": {"pause": {}}}
    assert result["steps"][3] == "analysis ai-analysis"
    assert result["set_weight"] == 20 and result["actual_weight"] == 0
    assert result["replicas"] == {"desired": 3, "current": 3, "updated": 1, "ready": 2, "available": 2}
    assert result["fully_promoted"] is False
    stable, canary = result["stable"], result["canary"]
    assert (stable["revision"], stable["pod_template_hash"], stable["app_image"]) == (
        "1", "6d4b8f9c7", "argoproj/rollouts-demo:blue")
    assert (canary["revision"], canary["pod_template_hash"], canary["app_image"]) == (
        "2", "7f9c5d8b4", "argoproj/rollouts-demo:yellow")
    assert canary["replicaset"] == "web-7f9c5d8b4" and "cr.l5d.io/linkerd/proxy:stable-2.14.10" in canary["images"]
    assert [rs["name"] for rs in result["replicasets"]] == ["web-7f9c5d8b4", "web-6d4b8f9c7"]  # not redis
    assert result["current_step_analysis_run"] == "web-7f9c5d8b4-2-1"
    assert {c["type"] for c in result["conditions"]} == {"Available", "Paused"}

    latest, older = result["analysis_runs"]
    assert latest["name"] == "web-7f9c5d8b4-2-1" and latest["phase"] == "Failed"
    assert latest["revision"] == "2" and latest["pod_template_hash"] == "7f9c5d8b4" and latest["type"] == "Step"
    (metric,) = latest["metrics"]
    assert metric["provider"] == "plugin argoproj-labs/metric-ai"
    assert (metric["count"], metric["successful"], metric["failed"]) == (3, 1, 2)
    newest = metric["latest_measurements"][0]
    assert newest["phase"] == "Failed" and newest["value"] == "0" and newest["message"] == "canary in CrashLoopBackOff"
    assert newest["started_at"] and older["phase"] == "Successful"
    assert "partial_errors" not in result


def test_get_pod_metrics(cluster: SimulatedCluster) -> None:
    result = k8s.get_pod_metrics(NS)
    pods = {pod["name"]: pod for pod in result["pods"]}
    assert set(pods) == {STABLE_POD, CANARY_POD}
    canary = pods[CANARY_POD]
    assert canary["cpu_millicores"] == 1002.0 and canary["memory_mib"] == 137.0
    assert {c["name"]: (c["cpu_millicores"], c["memory_mib"]) for c in canary["containers"]} == {
        "linkerd-proxy": (2.0, 10.0), "web": (1000.0, 127.0)}
    stable_proxy = pods[STABLE_POD]["containers"][0]
    assert stable_proxy == {"name": "istio-proxy", "cpu_millicores": 4.5, "memory_mib": 41.0}  # 4512345n, 41984Ki
    assert [pod["name"] for pod in k8s.get_pod_metrics(NS, "role=canary")["pods"]] == [CANARY_POD]

    cluster.inject_fault(r"/apis/metrics\.k8s\.io/", status=404)
    error = _error(k8s.get_pod_metrics(NS))
    assert error["kind"] == "not_found" and "metrics.k8s.io" in error["message"] and "Prometheus" in error["hint"]
    cluster.clear_faults()
    cluster.inject_fault(r"/apis/metrics\.k8s\.io/", status=503)
    error = _error(k8s.get_pod_metrics(NS))
    assert error["kind"] == "upstream_error" and "unavailable" in error["message"]


def test_list_related_resources(cluster: SimulatedCluster) -> None:
    result = k8s.list_related_resources(NS)
    services = {service["name"]: service for service in result["services"]}
    assert services["web"]["selector"] == {"app": "web"} and services["web"]["type"] == "ClusterIP"
    assert services["web"]["ports"] == [{"name": "http", "port": 80, "target_port": 8080, "protocol": "TCP",
                                         "node_port": None}]
    replicasets = {rs["name"]: rs for rs in result["replicasets"]}
    assert replicasets["web-7f9c5d8b4"]["revision"] == "2" and replicasets["web-7f9c5d8b4"]["owner"] == "Rollout/web"
    assert replicasets["redis-5c8d7b6f4"]["revision"] == "3"  # deployment.kubernetes.io/revision
    assert result["deployments"] == [{"name": "redis", "replicas": 1, "ready": 1, "updated": 1, "available": 1,
                                      "images": ["redis:7.2"]}]
    assert result["rollouts"] == [{"name": "web", "phase": "Paused"}]
    assert result["configmaps"] == ["web-config"]  # names only
    assert "secrets" not in result and "partial_errors" not in result

    narrowed = k8s.list_related_resources(NS, "app=redis")
    assert [rs["name"] for rs in narrowed["replicasets"]] == ["redis-5c8d7b6f4"] and narrowed["services"] == []


def test_client_cache_per_kubeconfig(cluster: SimulatedCluster, tmp_path: Path) -> None:
    first = k8s.api_client()
    assert k8s.api_client() is first
    other = _write_kubeconfig(tmp_path / "other", "http://127.0.0.1:9")
    explicit = k8s.api_client(kubeconfig=str(other))
    assert explicit is not first and explicit.configuration.host == "http://127.0.0.1:9"
    k8s.reset_clients()
    assert k8s.api_client() is not first


def test_find_rollouts(cluster: SimulatedCluster) -> None:
    everywhere = k8s.find_rollouts()
    assert everywhere["count"] == 1
    (found,) = everywhere["rollouts"]
    assert (found["namespace"], found["name"], found["phase"]) == (NS, "web", "Paused")
    assert found["image"] == "argoproj/rollouts-demo:yellow" and found["canary_pod_template_hash"] == "7f9c5d8b4"
    assert found["stable_pod_template_hash"] == "6d4b8f9c7" and found["paused"] is True
    assert k8s.find_rollouts("WE", NS)["count"] == 1  # part of the name, any case
    assert k8s.find_rollouts("canary-demo")["rollouts"] == []
    assert k8s.find_rollouts(namespace="elsewhere")["count"] == 0
    assert _error(k8s.find_rollouts(namespace="Bad_NS"))["kind"] == "invalid_argument"

    cluster.inject_fault(r"^/apis/argoproj\.io/v1alpha1/rollouts", status=403)
    error = _error(k8s.find_rollouts())
    assert error["kind"] == "forbidden" and "ClusterRole" in error["hint"]
    assert k8s.find_rollouts(namespace=NS)["count"] == 1  # the namespaced read is still allowed


def test_rollout_revision_and_check_api(cluster: SimulatedCluster, tmp_path: Path) -> None:
    assert k8s.rollout_revision(NS, "web") == "7f9c5d8b4"
    assert k8s.rollout_revision(NS, "missing") is None
    assert k8s.check_api() is None
    dead = Settings(kubeconfig=str(_write_kubeconfig(tmp_path / "dead", f"http://127.0.0.1:{free_port()}")))
    assert k8s.check_api(dead).startswith("unreachable:")
    assert k8s.rollout_revision(NS, "web", settings=dead) is None


def test_every_result_is_json(cluster: SimulatedCluster) -> None:
    for result in _everything(cluster):
        assert not is_error(result), result
        assert json.loads(json.dumps(result)) == result


# --------------------------------------------------------------------------------------------
# The bundled scenarios (evals/scenarios), through the shared simulator
# --------------------------------------------------------------------------------------------


def test_bundled_scenarios(request: pytest.FixtureRequest, use_cluster: Callable[..., None]) -> None:
    simulator: SimulatedCluster = request.getfixturevalue("simulator")
    use_cluster(simulator.kubeconfig)
    for scenario in simulator.scenarios:
        namespace, name = scenario.rollout.namespace, scenario.rollout.name
        rollout = k8s.get_rollout(namespace, name)
        assert not is_error(rollout), (scenario.name, rollout)
        assert rollout["stable"]["pod_template_hash"] and rollout["canary"]["app_image"], scenario.name
        assert rollout["analysis_runs"], scenario.name
        for selector in (scenario.selectors.stable, scenario.selectors.canary):
            pods = k8s.list_pods(namespace, selector)
            assert pods["count"] >= 1, (scenario.name, selector)
            first = pods["pods"][0]
            log = k8s.get_pod_logs(namespace, first["name"])
            if first["waiting_reason"] and not first["restarts"]:  # never started: no log, and it says why
                assert _error(log)["kind"] == "not_found" and "describe_pod" in log["error"]["hint"], log
            else:
                assert not is_error(log) and log["container"] == first["app_container"], (scenario.name, log)
            assert k8s.get_events(namespace, [p["name"] for p in pods["pods"]])["count"] >= 0
        for log_file in scenario.logs:
            if log_file.previous:
                previous = k8s.get_pod_logs(namespace, log_file.pod, container=log_file.container, previous=True)
                assert not is_error(previous) and previous["lines"] > 0, (scenario.name, previous)
        related = k8s.list_related_resources(namespace)
        assert related["services"] and related["replicasets"], scenario.name
