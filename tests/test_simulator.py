"""The cluster simulator: scenario loading, the Kubernetes REST API it serves, time shifting,
fault injection, the official `kubernetes` client, Prometheus backfill and `selfheal sim`."""

from __future__ import annotations

import math

import gzip
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from selfheal.simulator import (ScenarioError, SimulatedCluster, list_scenarios, load_expectation,
                                load_scenario, resolve_scenario)
from selfheal.simulator.metrics import shift_metrics
from selfheal.simulator.scenario import bundled_scenarios_dir
from selfheal.simulator.selectors import SelectorError, parse_field_selector, parse_label_selector
from selfheal.simulator.defaults import stable_uid
from selfheal.simulator.tables import human_duration, pod_status_reason
from selfheal.simulator.timeshift import TimeShift, parse_rfc3339

FIXTURE_SCENARIOS = Path(__file__).parent / "fixtures" / "scenarios"
TINY = FIXTURE_SCENARIOS / "tiny-canary"
SECOND = FIXTURE_SCENARIOS / "second-team"
NS = "sim-tiny"
CANARY = "web-7b8f9c5d4-klmno"
STABLE = "web-6d4cf56db6-abcde"
STABLE_GZ = "web-6d4cf56db6-fghij"
TINY_NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
SELFHEAL = Path(sys.executable).parent / "selfheal"


@pytest.fixture(scope="session")
def api(fixture_simulator: SimulatedCluster) -> Iterator[Callable[..., httpx.Response]]:
    """GET against the fixture cluster: api(path, accept=..., **params)."""
    client = httpx.Client(base_url=fixture_simulator.apiserver, trust_env=False, timeout=30)

    def get(path: str, accept: str = "application/json", **params: Any) -> httpx.Response:
        return client.get(path, params=params, headers={"Accept": accept})

    yield get
    client.close()


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["metadata"]["name"] for item in response.json()["items"]]


def status_of(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == code and body["metadata"] == {}
    return body


# =============================================================================================
# Loading scenarios
# =============================================================================================


def test_fixture_scenarios_load() -> None:
    scenario = load_scenario(TINY)
    assert scenario.name == "tiny-canary"
    assert scenario.now == TINY_NOW
    assert scenario.rollout.namespace == NS and scenario.rollout.name == "web"
    assert scenario.selectors.canary == "role=canary"
    kinds = sorted({m.kind for m in scenario.manifests})
    assert kinds == ["AnalysisRun", "ConfigMap", "Event", "Pod", "PodMetrics", "ReplicaSet", "Rollout",
                     "Secret", "Service"]
    logs = {(log.pod, log.container, log.previous): log for log in scenario.logs}
    assert set(logs) == {(STABLE, "app", False), (STABLE_GZ, "app", False), (CANARY, "app", False),
                         (CANARY, "app", True), (CANARY, "istio-proxy", False)}
    assert len(logs[(STABLE_GZ, "app", False)].lines) == 300  # read from app.log.gz
    assert logs[(CANARY, "app", True)].lines[-1].endswith("fatal error: runtime: out of memory")
    assert [m.samples for m in scenario.metrics] == [969]
    # `kind: List` documents are expanded.
    second = load_scenario(SECOND)
    assert {m.kind for m in second.manifests} >= {"Rollout", "Node", "VirtualService"}


def test_expectation_is_only_read_on_request() -> None:
    expectation = load_expectation(TINY)
    assert expectation.promote is False
    assert expectation.facts == [["OOMKilled", "out of memory"], ["crash"]]
    with pytest.raises(ScenarioError, match="expect.yaml: missing"):
        load_expectation(SECOND)


def _copy(tmp_path: Path, source: Path = TINY, name: str | None = None) -> Path:
    target = tmp_path / (name or source.name)
    shutil.copytree(source, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _break_yaml(root: Path) -> None:
    (root / "cluster" / "pods.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata:\n\tname: tabbed\n")


def _drop_rollout(root: Path) -> None:
    _edit(root / "scenario.yaml", "rollout: {namespace: sim-tiny, name: web}\n", "")


def _no_kind(root: Path) -> None:
    _edit(root / "cluster" / "other.yaml", "kind: ConfigMap\n", "")


def _no_name(root: Path) -> None:
    _edit(root / "cluster" / "other.yaml", "metadata: {name: web-config, ", "metadata: {")


def _unknown_pod(root: Path) -> None:
    (root / "logs" / "ghost-pod").mkdir()
    (root / "logs" / "ghost-pod" / "app.log").write_text("hello\n")


def _unknown_container(root: Path) -> None:
    (root / "logs" / STABLE / "sidecar.log").write_text("hello\n")


def _no_eof(root: Path) -> None:
    path = root / "metrics" / "http.om"
    path.write_text(path.read_text().replace("# EOF\n", ""))


def _milliseconds(root: Path) -> None:
    path = root / "metrics" / "http.om"
    lines = path.read_text().splitlines()
    lines[2] = lines[2] + "000"
    path.write_text("\n".join(lines) + "\n")


def _no_timestamp(root: Path) -> None:
    path = root / "metrics" / "http.om"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]
    path.write_text("\n".join(lines) + "\n")


def _missing_rollout_object(root: Path) -> None:
    _edit(root / "scenario.yaml", "name: web}", "name: nope}")


def _bad_selector(root: Path) -> None:
    _edit(root / "scenario.yaml", "canary: role=canary", "canary: 'role in canary'")


def _naive_now(root: Path) -> None:
    _edit(root / "scenario.yaml", '"2026-01-01T12:00:00Z"', '"2026-01-01T12:00:00"')


def _corrupt_gzip(root: Path) -> None:
    (root / "logs" / STABLE_GZ / "app.log.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")


def _odd_log_name(root: Path) -> None:
    (root / "logs" / STABLE / "app.txt").write_text("hello\n")


def _labels_not_strings(root: Path) -> None:
    _edit(root / "cluster" / "other.yaml", "metadata: {name: web-config, ",
          "metadata: {name: web-config, labels: {replicas: 3}, ")


MALFORMED = {
    "bad YAML names file and line": (_break_yaml, r"cluster/pods\.yaml:4: invalid YAML"),
    "missing field": (_drop_rollout, r"scenario\.yaml: missing field 'rollout'"),
    "object without kind": (_no_kind, r"cluster/other\.yaml:\d+: object without kind"),
    "object without name": (_no_name, r"cluster/other\.yaml:\d+: ConfigMap without metadata\.name"),
    "log dir for unknown pod": (_unknown_pod, r"logs/ghost-pod: log folder for an unknown pod"),
    "log for unknown container": (_unknown_container, r"sidecar\.log: pod '.*' has no container 'sidecar'"),
    "metrics without EOF": (_no_eof, r"metrics/http\.om: the file must end with '# EOF'"),
    "metrics in milliseconds": (_milliseconds, r"metrics/http\.om:3: timestamp \d+ looks like milliseconds"),
    "metrics without timestamp": (_no_timestamp, r"metrics/http\.om:4: sample without a timestamp"),
    "rollout not in manifests": (_missing_rollout_object, r"scenario\.yaml: rollout sim-tiny/nope is not defined"),
    "bad selector": (_bad_selector, r"scenario\.yaml: selectors\.canary: .*not a label selector"),
    "naive now": (_naive_now, r"scenario\.yaml: now: .*timezone"),
    "corrupt gzip": (_corrupt_gzip, r"app\.log\.gz: cannot read log"),
    "unexpected log file": (_odd_log_name, r"app\.txt: unexpected file"),
    "labels not strings": (_labels_not_strings, r"other\.yaml:\d+: ConfigMap web-config: metadata\.labels"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_scenario_names_file_and_problem(tmp_path: Path, case: str) -> None:
    breaker, message = MALFORMED[case]
    root = _copy(tmp_path)
    breaker(root)
    with pytest.raises(ScenarioError, match=message) as info:
        load_scenario(root)
    assert str(tmp_path) in str(info.value)


def test_missing_scenario_yaml_and_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenarioError, match=r"empty/scenario\.yaml: missing"):
        load_scenario(tmp_path / "empty")
    with pytest.raises(ScenarioError, match="no such directory"):
        load_scenario(tmp_path / "absent")


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root / "scenario.yaml", "name: tiny-canary\n", "name: tiny-canary\ncolour: blue\n")
    with pytest.raises(ScenarioError, match="unknown field 'colour'"):
        load_scenario(root)


def test_same_object_in_two_files_names_both(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    shutil.copy(root / "cluster" / "other.yaml", root / "cluster" / "zz-copy.yaml")
    with pytest.raises(ScenarioError, match=r"other\.yaml:1 and .*zz-copy\.yaml:1 both define Service sim-tiny/web"):
        SimulatedCluster([root], prometheus=False).start()


def test_same_object_in_two_scenarios_names_both(tmp_path: Path) -> None:
    first = _copy(tmp_path, name="one")
    second = _copy(tmp_path, name="two")
    _edit(second / "scenario.yaml", "name: tiny-canary", "name: tiny-canary-two")
    with pytest.raises(ScenarioError, match=r"one/cluster/.* and .*two/cluster/.* both define"):
        SimulatedCluster([first, second], prometheus=False).start()


def test_resolve_and_list_bundled_scenarios(tmp_path: Path) -> None:
    assert resolve_scenario(TINY) == TINY
    assert resolve_scenario(str(TINY)) == TINY
    with pytest.raises(ScenarioError, match=r"no-such-scenario: no such scenario folder.*bundled: ") as info:
        resolve_scenario("no-such-scenario")
    bundled = [info.name for info in list_scenarios()]
    for name in bundled:
        assert name  # every bundled scenario.yaml parses
        assert not name.startswith(("_", "."))
    for folder in bundled_scenario_dirs():
        assert resolve_scenario(folder.name) == bundled_scenarios_dir() / folder.name
        assert folder.name in str(info.value)
    assert bundled_scenarios_dir().name == "scenarios" and bundled_scenarios_dir().parent.name == "evals"


# =============================================================================================
# Every bundled scenario loads and is served
# =============================================================================================

def bundled_scenario_dirs() -> list[Path]:
    root = bundled_scenarios_dir()
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))) \
        if root.is_dir() else []


BUNDLED = [folder.name for folder in bundled_scenario_dirs()]


@pytest.mark.parametrize("name", BUNDLED or [pytest.param("none", marks=pytest.mark.skip(
    reason="evals/scenarios has no scenarios yet"))])
def test_bundled_scenario_loads_and_serves(name: str, simulator: SimulatedCluster) -> None:
    scenario = load_scenario(resolve_scenario(name))
    assert scenario.name in simulator.shifts
    with httpx.Client(base_url=simulator.apiserver, trust_env=False, timeout=30) as client:
        ns, rollout = scenario.rollout.namespace, scenario.rollout.name
        got = client.get(f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts/{rollout}")
        assert got.status_code == 200, got.text
        for selector in (scenario.selectors.stable, scenario.selectors.canary):
            pods = client.get(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": selector}).json()
            assert pods["items"], f"{name}: no pod matches {selector}"
        for log in scenario.logs:
            params = {"container": log.container, "previous": str(log.previous).lower(), "timestamps": "true"}
            body = client.get(f"/api/v1/namespaces/{log.namespace}/pods/{log.pod}/log", params=params)
            assert body.status_code == 200, body.text
            assert body.text.count("\n") == len(log.lines)
    if scenario.metrics and simulator.prometheus_url:
        with httpx.Client(base_url=simulator.prometheus_url, trust_env=False, timeout=30) as prom:
            query = f'count({{namespace="{scenario.rollout.namespace}"}})'
            at = simulator.started_at.timestamp()
            result = prom.get("/api/v1/query", params={"query": query, "time": at}).json()["data"]["result"]
            assert result and float(result[0]["value"][1]) > 0, f"{name}: no backfilled series"


# =============================================================================================
# Discovery, list and get
# =============================================================================================


def test_discovery(api: Callable[..., httpx.Response]) -> None:
    assert api("/version").json()["minor"] == "32"
    assert api("/healthz").text == "ok" and api("/readyz").text == "ok" and api("/livez").text == "ok"
    assert api("/api").json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in api("/apis").json()["groups"]}
    assert {"apps", "argoproj.io", "metrics.k8s.io", "networking.istio.io"} <= set(groups)
    assert groups["argoproj.io"]["preferredVersion"]["groupVersion"] == "argoproj.io/v1alpha1"
    core = {r["name"]: r for r in api("/api/v1").json()["resources"]}
    assert core["pods"]["kind"] == "Pod" and core["pods"]["shortNames"] == ["po"]
    assert core["pods/log"]["verbs"] == ["get"]
    assert core["namespaces"]["namespaced"] is False and "secrets" in core
    argo = api("/apis/argoproj.io/v1alpha1").json()
    assert argo["groupVersion"] == "argoproj.io/v1alpha1"
    assert {r["name"] for r in argo["resources"]} >= {"rollouts", "analysisruns", "analysistemplates"}
    assert api("/apis/apps").json()["kind"] == "APIGroup"
    status_of(api("/apis/nope.example.com/v1"), 404)


def test_list_is_a_valid_sorted_list(api: Callable[..., httpx.Response]) -> None:
    body = api(f"/api/v1/namespaces/{NS}/pods", limit="500").json()
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"].isdigit()
    assert [i["metadata"]["name"] for i in body["items"]] == [STABLE, STABLE_GZ, CANARY]
    rollouts = api(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts").json()
    assert rollouts["kind"] == "RolloutList" and rollouts["apiVersion"] == "argoproj.io/v1alpha1"
    everywhere = names(api("/api/v1/pods"))
    assert CANARY in everywhere and "api-5c9d8f7b6-qrstu" in everywhere


def test_get_and_not_found_status(api: Callable[..., httpx.Response]) -> None:
    pod = api(f"/api/v1/namespaces/{NS}/pods/{CANARY}").json()
    assert pod["kind"] == "Pod" and pod["metadata"]["namespace"] == NS
    assert api(f"/api/v1/namespaces/{NS}/pods/missing").json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "missing" not found', "reason": "NotFound",
        "details": {"name": "missing", "kind": "pods"}, "code": 404}
    body = status_of(api(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/missing"), 404)
    assert body["message"] == 'rollouts.argoproj.io "missing" not found'
    assert body["details"] == {"name": "missing", "group": "argoproj.io", "kind": "rollouts"}
    # Another scenario's namespace does not see this pod.
    status_of(api(f"/api/v1/namespaces/sim-second/pods/{CANARY}"), 404)
    unknown = status_of(api("/api/v1/namespaces/x/widgets"), 404)
    assert unknown["message"] == "the server could not find the requested resource"
    status_of(api("/no/such/path"), 404)


def test_cluster_scoped_and_implied_objects(api: Callable[..., httpx.Response]) -> None:
    assert api("/api/v1/nodes/node-second").json()["kind"] == "Node"
    namespaces = names(api("/api/v1/namespaces"))
    assert {"default", NS, "sim-second"} <= set(namespaces)
    ns = api(f"/api/v1/namespaces/{NS}").json()
    assert ns["status"]["phase"] == "Active"
    status_of(api("/api/v1/namespaces/x/nodes"), 404)  # nodes are not namespaced
    vs = api("/apis/networking.istio.io/v1beta1/namespaces/sim-second/virtualservices/api").json()
    assert vs["spec"]["hosts"] == ["api"]  # a kind the simulator has never heard of
    metrics = api(f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods").json()
    assert metrics["kind"] == "PodMetricsList" and CANARY in [i["metadata"]["name"] for i in metrics["items"]]


def test_generated_uids_and_references(api: Callable[..., httpx.Response]) -> None:
    pod = api(f"/api/v1/namespaces/{NS}/pods/{CANARY}").json()
    assert pod["metadata"]["uid"] == stable_uid("Pod", NS, CANARY)
    assert pod["metadata"]["resourceVersion"].isdigit()
    rs = api(f"/apis/apps/v1/namespaces/{NS}/replicasets/web-7b8f9c5d4").json()
    assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    events = api(f"/api/v1/namespaces/{NS}/events",
                 fieldSelector=f"involvedObject.name={CANARY}").json()["items"]
    assert {e["involvedObject"]["uid"] for e in events} == {pod["metadata"]["uid"]}
    assert {e["involvedObject"]["namespace"] for e in events} == {NS}


LABEL_CASES = {
    "role=canary": [CANARY],
    "role==canary": [CANARY],
    "role!=canary": [STABLE, STABLE_GZ],
    "role in (stable, canary)": [STABLE, STABLE_GZ, CANARY],
    "role notin (canary)": [STABLE, STABLE_GZ],
    "role": [STABLE, STABLE_GZ, CANARY],
    "!role": [],
    "app=web,role=stable": [STABLE, STABLE_GZ],
    "rollouts-pod-template-hash in (7b8f9c5d4),app": [CANARY],
    "missing!=x": [STABLE, STABLE_GZ, CANARY],
}


@pytest.mark.parametrize("selector", list(LABEL_CASES))
def test_label_selectors(api: Callable[..., httpx.Response], selector: str) -> None:
    assert names(api(f"/api/v1/namespaces/{NS}/pods", labelSelector=selector)) == LABEL_CASES[selector]


def test_label_selectors_in_other_namespace(api: Callable[..., httpx.Response]) -> None:
    assert names(api("/api/v1/namespaces/sim-second/pods", labelSelector="tier")) == ["api-5c9d8f7b6-qrstu"]
    assert names(api("/api/v1/namespaces/sim-second/pods", labelSelector="!tier")) == ["api-84f7d9c6b5-vwxyz"]


@pytest.mark.parametrize("selector, message", [
    ("role in", "unable to parse requirement: found '' expected: '('"),
    ("role=canary,", "found '', expected: identifier after ','"),
    ("=canary", "found '=', expected: !, identifier, or 'end of string'"),
    ("role=ca nary", "found 'nary', expected: ',' or 'end of string'"),
    ("role=-bad-", 'values[0][role]: Invalid value: "-bad-"'),
])
def test_bad_label_selector_is_400(api: Callable[..., httpx.Response], selector: str, message: str) -> None:
    body = status_of(api(f"/api/v1/namespaces/{NS}/pods", labelSelector=selector), 400)
    assert body["reason"] == "BadRequest"
    assert message in body["message"]


FIELD_CASES = {
    f"metadata.name={CANARY}": [CANARY],
    f"metadata.namespace={NS}": [STABLE, STABLE_GZ, CANARY],
    "status.phase=Running": [STABLE, STABLE_GZ, CANARY],
    "status.phase!=Running": [],
    "spec.nodeName==node-a,status.podIP!=10.0.0.11": [CANARY],
    "status.nominatedNodeName=": [STABLE, STABLE_GZ, CANARY],  # missing fields compare as ""
}


@pytest.mark.parametrize("selector", list(FIELD_CASES))
def test_field_selectors(api: Callable[..., httpx.Response], selector: str) -> None:
    assert names(api(f"/api/v1/namespaces/{NS}/pods", fieldSelector=selector)) == FIELD_CASES[selector]


def test_describe_style_event_field_selector(api: Callable[..., httpx.Response]) -> None:
    pod = api(f"/api/v1/namespaces/{NS}/pods/{CANARY}").json()
    selector = (f"involvedObject.name={CANARY},involvedObject.namespace={NS},"
                f"involvedObject.kind=Pod,involvedObject.uid={pod['metadata']['uid']}")
    reasons = sorted(e["reason"] for e in api(f"/api/v1/namespaces/{NS}/events", fieldSelector=selector).json()["items"])
    assert reasons == ["BackOff", "Pulled"]
    assert names(api("/api/v1/events", fieldSelector="involvedObject.kind=Rollout")) == ["web.181a0004"]
    assert names(api("/api/v1/namespaces/sim-second/pods", fieldSelector="status.phase!=Running")) == \
        ["api-84f7d9c6b5-vwxyz"]


def test_bad_field_selector_is_400(api: Callable[..., httpx.Response]) -> None:
    body = status_of(api(f"/api/v1/namespaces/{NS}/pods", fieldSelector="status.phase"), 400)
    assert body["message"] == "invalid selector: 'status.phase'; can't understand 'status.phase'"


def test_selector_parsers() -> None:
    assert [r.operator for r in parse_label_selector("a, !b, c in (x), d notin (y), e=1, f!=2, g>3")] == \
        ["exists", "!", "in", "notin", "=", "!=", ">"]
    assert parse_label_selector("x in (in)")[0].values == ("in",)
    assert parse_label_selector("") == []
    with pytest.raises(SelectorError):
        parse_label_selector("!a=b")
    terms = parse_field_selector(r"a.b=x\,y,c!=z")
    assert [(t.path, t.negated, t.value) for t in terms] == [("a.b", False, "x,y"), ("c", True, "z")]


def test_secrets_are_refused_like_rbac(api: Callable[..., httpx.Response]) -> None:
    body = status_of(api(f"/api/v1/namespaces/{NS}/secrets"), 403)
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('secrets is forbidden: User "system:serviceaccount:selfheal:rollout-doctor" '
                               f'cannot list resource "secrets" in API group "" in the namespace "{NS}"')
    one = status_of(api(f"/api/v1/namespaces/{NS}/secrets/web-token"), 403)
    assert one["message"].startswith('secrets "web-token" is forbidden')
    assert "at the cluster scope" in status_of(api("/api/v1/secrets"), 403)["message"]
    for path in ("/api/v1/configmaps", f"/api/v1/namespaces/{NS}/events", "/api/v1/pods"):
        assert "do-not-serve-this-value" not in api(path).text


def test_writes_and_watches_are_refused(fixture_simulator: SimulatedCluster) -> None:
    with httpx.Client(base_url=fixture_simulator.apiserver, trust_env=False) as client:
        deleted = client.delete(f"/api/v1/namespaces/{NS}/pods/{CANARY}")
        assert deleted.status_code == 403 and "cannot delete resource" in deleted.json()["message"]
        patched = client.patch(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/web", json={"spec": {}})
        assert patched.status_code == 403
        assert 'cannot patch resource "rollouts" in API group "argoproj.io"' in patched.json()["message"]
        watch = client.get(f"/api/v1/namespaces/{NS}/pods", params={"watch": "true"})
        assert watch.status_code == 405 and watch.json()["reason"] == "MethodNotAllowed"
        assert client.head(f"/api/v1/namespaces/{NS}/pods").status_code == 200


# =============================================================================================
# Logs
# =============================================================================================


def log(api: Callable[..., httpx.Response], pod: str, **params: Any) -> httpx.Response:
    return api(f"/api/v1/namespaces/{NS}/pods/{pod}/log", **params)


def test_log_of_single_container_pod(api: Callable[..., httpx.Response]) -> None:
    response = log(api, STABLE)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert len(lines) == 300
    assert lines[0].endswith(" 200 - blue") and lines[0][4] == "/"  # the RFC3339 prefix is stripped
    # The gzip copy holds the same lines.
    assert log(api, STABLE_GZ).text == response.text


def test_log_container_choice_errors(api: Callable[..., httpx.Response]) -> None:
    body = status_of(log(api, CANARY), 400)
    assert body["message"] == f"a container name must be specified for pod {CANARY}, choose one of: [app istio-proxy]"
    assert body["reason"] == "BadRequest"
    assert status_of(log(api, CANARY, container="nope"), 400)["message"] == \
        f"container nope is not valid for pod {CANARY}"
    status_of(api(f"/api/v1/namespaces/{NS}/pods/missing/log"), 404)


def test_log_previous(api: Callable[..., httpx.Response]) -> None:
    previous = log(api, CANARY, container="app", previous="true").text.splitlines()
    assert len(previous) == 91 and previous[-1] == "fatal error: runtime: out of memory"
    body = status_of(log(api, CANARY, container="istio-proxy", previous="true"), 400)
    assert body["message"] == f'previous terminated container "istio-proxy" in pod "{CANARY}" not found'
    body = status_of(log(api, STABLE, previous="true"), 400)
    assert body["message"] == f'previous terminated container "app" in pod "{STABLE}" not found'


def test_log_tail_and_limit(api: Callable[..., httpx.Response]) -> None:
    tail = log(api, CANARY, container="app", tailLines="3").text
    assert tail == "goroutine 1 [running]:\nmain.leak(...)\n\t/go/src/app/main.go:42 +0x1d\n"
    assert log(api, CANARY, container="app", tailLines="0").text == ""
    assert len(log(api, CANARY, container="app", tailLines="1000").text.splitlines()) == 95
    limited = log(api, STABLE, limitBytes="10")
    assert len(limited.content) == 10 and log(api, STABLE).content.startswith(limited.content)


def test_log_timestamps(api: Callable[..., httpx.Response], fixture_simulator: SimulatedCluster) -> None:
    stamped = log(api, STABLE, timestamps="true", tailLines="1").text.rstrip("\n")
    token, rest = stamped.split(" ", 1)
    moment = parse_rfc3339(token)
    assert moment is not None and token.endswith(".123456789Z")  # fraction kept from the file
    assert moment.replace(microsecond=0) == fixture_simulator.started_at - timedelta(seconds=3)
    # Go's log prefix inside the line is shifted by the same amount.
    assert rest.startswith(moment.strftime("%Y/%m/%d %H:%M:%S "))
    # Lines without a stamp (a stack trace) inherit the previous line's time.
    trace = log(api, CANARY, container="app", timestamps="true", tailLines="2").text.splitlines()
    crash = log(api, CANARY, container="app", timestamps="true", tailLines="5").text.splitlines()[0]
    assert all(line.split(" ", 1)[0][:19] == crash.split(" ", 1)[0][:19] for line in trace)
    assert trace[1].endswith("\t/go/src/app/main.go:42 +0x1d")


def test_log_since(api: Callable[..., httpx.Response], fixture_simulator: SimulatedCluster) -> None:
    started = fixture_simulator.started_at
    since = (started - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = log(api, STABLE, sinceTime=since).text.splitlines()
    assert len(lines) == 20  # one line every 3 s, the last 3 s before `now`
    # The session-wide cluster may have started minutes ago: ask for the 30 s before its start.
    window = math.ceil((datetime.now(timezone.utc) - started).total_seconds()) + 30
    recent = log(api, STABLE, sinceSeconds=str(window), timestamps="true").text.splitlines()
    now = datetime.now(timezone.utc)
    assert 5 <= len(recent) <= 11
    assert all(now - parse_rfc3339(line.split(" ", 1)[0]) <= timedelta(seconds=window + 1) for line in recent)
    assert log(api, STABLE, sinceTime="2099-01-01T00:00:00Z").text == ""


@pytest.mark.parametrize("params, code, message", [
    ({"tailLines": "-1"}, 422, "tailLines: Invalid value: -1: must be greater than or equal to 0"),
    ({"limitBytes": "0"}, 422, "limitBytes: Invalid value: 0: must be greater than 0"),
    ({"sinceSeconds": "10", "sinceTime": "2026-01-01T00:00:00Z"}, 422, "at most one of `sinceTime` or `sinceSeconds`"),
    ({"tailLines": "abc"}, 400, "tailLines"),
    ({"sinceTime": "yesterday"}, 400, "sinceTime"),
])
def test_log_bad_parameters(api: Callable[..., httpx.Response], params: dict[str, str], code: int,
                            message: str) -> None:
    body = status_of(log(api, STABLE, **params), code)
    assert message in body["message"]


def test_log_of_container_waiting_to_start(api: Callable[..., httpx.Response]) -> None:
    body = status_of(api("/api/v1/namespaces/sim-second/pods/api-84f7d9c6b5-vwxyz/log"), 400)
    assert body["message"] == ('container "api" in pod "api-84f7d9c6b5-vwxyz" is waiting to start: '
                               "trying and failing to pull image")


# =============================================================================================
# Time shift
# =============================================================================================


def test_time_shift_of_objects(api: Callable[..., httpx.Response], fixture_simulator: SimulatedCluster) -> None:
    started = fixture_simulator.started_at
    assert started is not None and started.microsecond == 0
    assert fixture_simulator.shifts["tiny-canary"] == started - TINY_NOW
    assert fixture_simulator.shifts["second-team"] == started - datetime(2025, 6, 15, 8, tzinfo=timezone.utc)
    pod = api(f"/api/v1/namespaces/{NS}/pods/{CANARY}").json()
    assert parse_rfc3339(pod["metadata"]["creationTimestamp"]) == started - timedelta(minutes=20)
    terminated = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert parse_rfc3339(terminated["finishedAt"]) == started - timedelta(seconds=80)
    event = api(f"/api/v1/namespaces/{NS}/events/{CANARY}.181a0001").json()
    assert parse_rfc3339(event["lastTimestamp"]) == started - timedelta(minutes=1)
    rollout = api(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/web").json()
    assert parse_rfc3339(rollout["status"]["conditions"][0]["lastTransitionTime"]) == started - timedelta(minutes=20)
    # The second scenario has its own `now`, moved to the same instant.
    node = api("/api/v1/nodes/node-second").json()
    assert parse_rfc3339(node["status"]["conditions"][0]["lastHeartbeatTime"]) == started - timedelta(seconds=10)


def test_time_shift_inside_log_lines(api: Callable[..., httpx.Response], fixture_simulator: SimulatedCluster) -> None:
    line = log(api, CANARY, container="istio-proxy", tailLines="1", timestamps="true").text.strip()
    prefix, rest = line.split(" ", 1)
    assert parse_rfc3339(prefix) == fixture_simulator.started_at - timedelta(seconds=1) + timedelta(milliseconds=117)
    assert rest.startswith(f"[{prefix[:23]}Z]")  # Envoy's own RFC3339 time moved too
    python_log = api("/api/v1/namespaces/sim-second/pods/api-5c9d8f7b6-qrstu/log").text.splitlines()
    expected = (fixture_simulator.started_at - timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    assert python_log[0].startswith(expected + ",120 INFO")


def test_timeshift_formats() -> None:
    shift = TimeShift(3600 * 24 + 61)
    assert shift.text("2026-01-01T12:00:00Z x") == "2026-01-02T12:01:01Z x"
    assert shift.text("2026/01/01 23:59:59 200 - blue") == "2026/01/03 00:01:00 200 - blue"
    assert shift.text('1.2.3.4 - - [31/Dec/2025:23:59:00 +0000] "GET /"') == '1.2.3.4 - - [02/Jan/2026:00:00:01 +0000] "GET /"'
    assert shift.text("2026-01-01 12:00:00,123 INFO") == "2026-01-02 12:01:01,123 INFO"
    assert shift.text("t=2026-01-01T12:00:00.123456789+02:00") == "t=2026-01-02T12:01:01.123456789+02:00"
    assert shift.text("2026-02-30T12:00:00Z") == "2026-02-30T12:00:00Z"  # not a date: untouched
    assert shift.text("build 12026-01-01T12:00:00Z") == "build 12026-01-01T12:00:00Z"
    assert shift.value("2026-01-01T12:00:00Z") == "2026-01-02T12:01:01Z"
    assert shift.value("created 2026-01-01T12:00:00Z") == "created 2026-01-01T12:00:00Z"
    tree = shift.tree({"a": ["2026-01-01T12:00:00Z", 5, {"b": "2026-01-01T12:00:00.000000Z"}]})
    assert tree == {"a": ["2026-01-02T12:01:01Z", 5, {"b": "2026-01-02T12:01:01.000000Z"}]}


def test_metrics_shift() -> None:
    text = ('# TYPE x counter\nx_total{pod="a b",le="}"} 1.5 1767268800\n'
            'y 2 1767268800.250\nz{a="1"} 3 1767268800 # {trace_id="t"} 1 1767268800\n# EOF\n')
    shifted = shift_metrics(text, 100)
    assert shifted == ('# TYPE x counter\nx_total{pod="a b",le="}"} 1.5 1767268900\n'
                       'y 2 1767268900.25\nz{a="1"} 3 1767268900 # {trace_id="t"} 1 1767268800\n# EOF\n')


# =============================================================================================
# Server-side tables
# =============================================================================================


def test_pod_table(api: Callable[..., httpx.Response], fixture_simulator: SimulatedCluster) -> None:
    table = api(f"/api/v1/namespaces/{NS}/pods", accept=TABLE).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    rows = {row["cells"][0]: row for row in table["rows"]}
    canary = rows[CANARY]["cells"]
    assert canary[1:3] == ["1/2", "CrashLoopBackOff"]
    assert canary[3] == "4 (80s ago)" or canary[3].startswith("4 (")
    # 20 minutes old at start-up; the session-wide cluster may have been running for a while since.
    running = (datetime.now(timezone.utc) - fixture_simulator.started_at).total_seconds()
    assert canary[4].endswith("m") and 20 <= int(canary[4][:-1]) <= 20 + math.ceil(running / 60)
    assert rows[STABLE]["cells"][1:4] == ["1/1", "Running", "0"]
    assert rows[STABLE]["object"]["kind"] == "PartialObjectMetadata"
    assert rows[STABLE]["object"]["metadata"]["namespace"] == NS
    full = api(f"/api/v1/namespaces/{NS}/pods", accept=TABLE, includeObject="Object").json()
    assert full["rows"][0]["object"]["kind"] == "Pod"
    bare = api(f"/api/v1/namespaces/{NS}/pods", accept=TABLE, includeObject="None").json()
    assert "object" not in bare["rows"][0]
    one = api(f"/api/v1/namespaces/{NS}/pods/{CANARY}", accept=TABLE).json()
    assert len(one["rows"]) == 1 and one["rows"][0]["cells"][2] == "CrashLoopBackOff"
    old = api(f"/api/v1/namespaces/{NS}/pods", accept="application/json;as=Table;v=v1beta1;g=meta.k8s.io").json()
    assert old["apiVersion"] == "meta.k8s.io/v1beta1"
    other = api("/api/v1/namespaces/sim-second/pods", accept=TABLE).json()
    assert [r["cells"][2] for r in other["rows"]] == ["Running", "ImagePullBackOff"]


def test_other_tables(api: Callable[..., httpx.Response]) -> None:
    rollouts = api(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts", accept=TABLE).json()
    assert [c["name"] for c in rollouts["columnDefinitions"]] == \
        ["Name", "Desired", "Current", "Up-to-date", "Available", "Age"]
    assert rollouts["rows"][0]["cells"][:5] == ["web", 3, 3, 1, 2]
    events = api(f"/api/v1/namespaces/{NS}/events", accept=TABLE,
                 fieldSelector=f"involvedObject.name={CANARY}").json()
    assert [c["name"] for c in events["columnDefinitions"] if c["priority"] == 0] == \
        ["Last Seen", "Type", "Reason", "Object", "Message"]
    backoff = next(r["cells"] for r in events["rows"] if r["cells"][2] == "BackOff")
    assert backoff[:4] == ["60s", "Warning", "BackOff", f"pod/{CANARY}"] or backoff[1:4] == ["Warning", "BackOff", f"pod/{CANARY}"]
    assert backoff[8] == 17
    rs = api(f"/apis/apps/v1/namespaces/{NS}/replicasets", accept=TABLE).json()
    assert [r["cells"][:4] for r in rs["rows"]] == [["web-6d4cf56db6", 2, 2, 2], ["web-7b8f9c5d4", 1, 1, 0]]
    svc = api(f"/api/v1/namespaces/{NS}/services", accept=TABLE).json()
    assert svc["rows"][0]["cells"][:5] == ["web", "ClusterIP", "10.96.0.42", "<none>", "80/TCP"]
    generic = api("/apis/networking.istio.io/v1beta1/namespaces/sim-second/virtualservices", accept=TABLE).json()
    assert [c["name"] for c in generic["columnDefinitions"]] == ["Name", "Age"]
    empty = api("/api/v1/namespaces/nowhere/pods", accept=TABLE).json()
    assert empty["rows"] == [] and [c["name"] for c in empty["columnDefinitions"]][:3] == ["Name", "Ready", "Status"]
    partial = api(f"/api/v1/namespaces/{NS}/pods",
                  accept="application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io").json()
    assert partial["kind"] == "PartialObjectMetadataList" and len(partial["items"]) == 3


@pytest.mark.parametrize("seconds, text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (185, "3m5s"), (600, "10m"),
    (179 * 60, "179m"), (3 * 3600 + 60, "3h1m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (50 * 3600, "2d2h"),
    (8 * 86400, "8d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize("status, spec, expected", [
    ({"phase": "Running", "containerStatuses": [{"ready": True, "state": {"running": {}}}]}, {}, "Running"),
    ({"phase": "Running", "containerStatuses": [{"state": {"terminated": {"reason": "OOMKilled"}}}]}, {}, "OOMKilled"),
    ({"phase": "Running", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]}, {}, "ExitCode:3"),
    ({"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull"}}}]}, {}, "ErrImagePull"),
    ({"phase": "Pending", "initContainerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}]},
     {"initContainers": [{"name": "i"}]}, "Init:0/1"),
    ({"phase": "Pending", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
     {"initContainers": [{"name": "i"}]}, "Init:Error"),
    ({"phase": "Failed", "reason": "Evicted"}, {}, "Evicted"),
])
def test_pod_status_column(status: dict[str, Any], spec: dict[str, Any], expected: str) -> None:
    assert pod_status_reason({"metadata": {}, "spec": spec, "status": status}) == expected


# =============================================================================================
# Fault injection and concurrency
# =============================================================================================


def test_fault_injection(fixture_simulator: SimulatedCluster, api: Callable[..., httpx.Response]) -> None:
    try:
        fixture_simulator.inject_fault(r"/namespaces/sim-tiny/pods$", status=403)
        body = status_of(api(f"/api/v1/namespaces/{NS}/pods"), 403)
        assert body["message"] == ('pods is forbidden: User "system:serviceaccount:selfheal:rollout-doctor" '
                                   f'cannot list resource "pods" in API group "" in the namespace "{NS}"')
        assert api(f"/api/v1/namespaces/{NS}/pods/{CANARY}").status_code == 200  # other paths unaffected
        fixture_simulator.inject_fault(r"/log\?.*previous=true", status=500, message="kubelet unreachable")
        body = status_of(log(api, CANARY, container="app", previous="true"), 500)
        assert body["message"] == "kubelet unreachable" and body["reason"] == "InternalError"
        fixture_simulator.inject_fault(r"^/apis$", status=503)
        assert status_of(api("/apis"), 503)["reason"] == "ServiceUnavailable"
        fixture_simulator.inject_fault(r"/rollouts/web$", delay_seconds=0.4)
        started = time.monotonic()
        assert api(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/web").status_code == 200
        assert time.monotonic() - started >= 0.4
    finally:
        fixture_simulator.clear_faults()
    assert api(f"/api/v1/namespaces/{NS}/pods").status_code == 200
    with pytest.raises(ValueError):
        fixture_simulator.inject_fault("(", status=500)


def test_concurrent_requests_are_served_in_parallel(fixture_simulator: SimulatedCluster) -> None:
    fixture_simulator.inject_fault(r"/rollouts/web$", delay_seconds=1.5)
    try:
        slow_done = threading.Event()

        def slow() -> None:
            with httpx.Client(base_url=fixture_simulator.apiserver, trust_env=False) as client:
                client.get(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/web")
            slow_done.set()

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.1)
        results: list[int] = []

        def fast() -> None:
            with httpx.Client(base_url=fixture_simulator.apiserver, trust_env=False) as client:
                for _ in range(5):
                    results.append(client.get(f"/api/v1/namespaces/{NS}/pods").status_code)

        workers = [threading.Thread(target=fast) for _ in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert results == [200] * 40
        assert not slow_done.is_set()  # all that happened while the slow request was still waiting
        thread.join()
    finally:
        fixture_simulator.clear_faults()


# =============================================================================================
# The official kubernetes client
# =============================================================================================


def test_official_kubernetes_client(fixture_simulator: SimulatedCluster) -> None:
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api_client = config.new_client_from_config(config_file=str(fixture_simulator.kubeconfig))
    try:
        core = client.CoreV1Api(api_client)
        pods = core.list_namespaced_pod(NS, label_selector="role=canary")
        assert [p.metadata.name for p in pods.items] == [CANARY]
        pod = pods.items[0]
        assert pod.status.container_statuses[0].last_state.terminated.reason == "OOMKilled"
        assert pod.metadata.creation_timestamp.tzinfo is not None
        text = core.read_namespaced_pod_log(CANARY, NS, container="app", tail_lines=2, previous=True)
        assert text.splitlines()[-1] == "fatal error: runtime: out of memory"
        events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={CANARY}")
        assert {e.reason for e in events.items} == {"BackOff", "Pulled"}
        assert len(core.list_pod_for_all_namespaces().items) == 5
        with pytest.raises(ApiException) as missing:
            core.read_namespaced_pod("missing", NS)
        assert missing.value.status == 404 and json.loads(missing.value.body)["reason"] == "NotFound"
        with pytest.raises(ApiException) as secret:
            core.list_namespaced_secret(NS)
        assert secret.value.status == 403
        apps = client.AppsV1Api(api_client)
        assert len(apps.list_namespaced_replica_set(NS).items) == 2
        custom = client.CustomObjectsApi(api_client)
        rollout = custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "rollouts", "web")
        assert rollout["status"]["currentPodHash"] == "7b8f9c5d4"
        runs = custom.list_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "analysisruns")
        assert runs["items"][0]["status"]["phase"] == "Running"
        assert client.VersionApi(api_client).get_code().git_version == "v1.32.4"
    finally:
        api_client.close()


@pytest.mark.parametrize("which", ["fixture_simulator", "simulator"])
def test_every_object_deserializes_with_the_official_client(request: pytest.FixtureRequest, which: str) -> None:
    """kubernetes>=37 validates typed models strictly; every served object must pass."""
    from kubernetes import client, config

    cluster: SimulatedCluster = request.getfixturevalue(which)
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
        listings = [core.list_pod_for_all_namespaces, core.list_event_for_all_namespaces,
                    core.list_service_for_all_namespaces, core.list_config_map_for_all_namespaces,
                    core.list_namespace, core.list_node, apps.list_replica_set_for_all_namespaces,
                    apps.list_deployment_for_all_namespaces]
        served = {listing.__name__: len(listing().items) for listing in listings}
        assert served["list_pod_for_all_namespaces"] > 0 and served["list_namespace"] > 0
    finally:
        api_client.close()


# =============================================================================================
# Prometheus backfill
# =============================================================================================


def test_prometheus_backfill(fixture_simulator: SimulatedCluster) -> None:
    assert shutil.which("prometheus") and shutil.which("promtool"), \
        "the prometheus and promtool binaries are not installed (Debian package 'prometheus'; scripts/test.sh installs it)"
    assert fixture_simulator.prometheus_url, fixture_simulator.prometheus_note
    at = fixture_simulator.started_at.timestamp()
    with httpx.Client(base_url=fixture_simulator.prometheus_url, trust_env=False, timeout=30) as prom:
        query = 'sum by (pod, code) (rate(http_requests_total{namespace="sim-tiny"}[5m]))'
        result = prom.get("/api/v1/query", params={"query": query, "time": at}).json()
        assert result["status"] == "success"
        rates = {(r["metric"]["pod"], r["metric"]["code"]): float(r["value"][1]) for r in result["data"]["result"]}
        assert rates[(CANARY, "500")] == pytest.approx(8.5)
        assert rates[(STABLE, "200")] == pytest.approx(10.0)
        # The data ends at startup: samples were moved by the same shift as everything else.
        last = prom.get("/api/v1/query", params={"query": f'timestamp(http_requests_total{{pod="{CANARY}",code="500"}})',
                                                  "time": at}).json()["data"]["result"]
        assert float(last[0]["value"][1]) == pytest.approx(at)
        span = prom.get("/api/v1/query_range", params={
            "query": f'container_memory_working_set_bytes{{pod="{CANARY}"}}',
            "start": at - 1200, "end": at, "step": 60}).json()["data"]["result"]
        assert len(span[0]["values"]) == 21


def test_prometheus_absent_or_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capfd: pytest.CaptureFixture[str]) -> None:
    with SimulatedCluster([SECOND]) as cluster:  # no metrics files
        assert cluster.prometheus_url is None
    assert "no scenario has metrics" in capfd.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))
    with SimulatedCluster([TINY]) as cluster:
        assert cluster.prometheus_url is None
        assert cluster.apiserver
    err = capfd.readouterr().err
    assert "prometheus and promtool not found on PATH" in err and len(err.strip().splitlines()) == 1
    with SimulatedCluster([TINY], prometheus=False) as cluster:
        assert cluster.prometheus_url is None and cluster.prometheus_note == "Prometheus disabled"


# =============================================================================================
# Lifecycle and `selfheal sim`
# =============================================================================================


def test_context_manager_cleans_up() -> None:
    cluster = SimulatedCluster([str(TINY)])
    with cluster:
        tempdir, url = cluster.tempdir, cluster.apiserver
        assert tempdir is not None and cluster.kubeconfig is not None and cluster.kubeconfig.is_file()
        assert "namespace: sim-tiny" in cluster.kubeconfig.read_text()
        assert cluster.environment()["KUBECONFIG"] == str(cluster.kubeconfig)
    assert not tempdir.exists() and not cluster.running
    with httpx.Client(trust_env=False) as client, pytest.raises(httpx.TransportError):
        client.get(f"{url}/version", timeout=2)
    cluster.stop()  # idempotent


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _start_sim(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([str(SELFHEAL), "sim", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        process.kill()
        raise AssertionError(f"no ready line; stderr: {process.stderr.read() if process.stderr else ''}")
    return process, json.loads(line)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_selfheal_sim_subprocess(sig: signal.Signals) -> None:
    process, ready = _start_sim(str(TINY), str(SECOND))
    try:
        assert set(ready) == {"apiserver", "kubeconfig", "prometheus"}
        kubeconfig = Path(ready["kubeconfig"])
        assert kubeconfig.is_file()
        with httpx.Client(trust_env=False, timeout=10) as client:
            pods = client.get(f"{ready['apiserver']}/api/v1/namespaces/{NS}/pods").json()
            assert len(pods["items"]) == 3
            if shutil.which("prometheus"):
                assert client.get(f"{ready['prometheus']}/-/ready").status_code == 200
        tempdir = str(kubeconfig.parent)
        if ready["prometheus"]:
            assert _processes_mentioning(tempdir)  # the prometheus child runs from the temp dir
        process.send_signal(sig)
        assert process.wait(timeout=20) == 0
        assert not kubeconfig.parent.exists()
        assert _processes_mentioning(tempdir) == []
        stderr = process.stderr.read() if process.stderr else ""
        assert "Traceback" not in stderr and "stopped" in stderr
        assert process.stdout is not None and process.stdout.read() == ""  # exactly one stdout line
    finally:
        if process.poll() is None:
            process.kill()


def test_selfheal_sim_bad_scenario(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _no_eof(root)
    result = subprocess.run([str(SELFHEAL), "sim", str(root)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert f"{root}/metrics/http.om: the file must end with '# EOF'" in result.stderr
    unknown = subprocess.run([str(SELFHEAL), "sim", "no-such-scenario"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "no-such-scenario: no such scenario folder" in unknown.stderr


def test_selfheal_sim_bundled_name() -> None:
    assert BUNDLED, "evals/scenarios has no scenarios"
    process, ready = _start_sim(BUNDLED[0], "--port", "0")
    try:
        with httpx.Client(trust_env=False, timeout=10) as client:
            assert client.get(f"{ready['apiserver']}/api/v1/pods").status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_selfheal_sim_port_in_use(fixture_simulator: SimulatedCluster) -> None:
    port = fixture_simulator.apiserver.rsplit(":", 1)[1]
    result = subprocess.run([str(SELFHEAL), "sim", str(SECOND), "--port", port], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


# =============================================================================================
# Performance with a large scenario
# =============================================================================================


def _write_big_log(path: Path, lines: int) -> None:
    base = int(TINY_NOW.timestamp()) - 7200
    stamps = {}
    out = []
    for i in range(lines):
        second = base + i * 7200 // lines
        stamp = stamps.get(second)
        if stamp is None:
            stamp = stamps[second] = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
                                      time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(second)))
        out.append(f"{stamp[0]}.{i % 1000:03d}000000Z {stamp[1]} {500 if i % 9 == 0 else 200} - blue")
    path.write_bytes(gzip.compress(("\n".join(out) + "\n").encode(), compresslevel=1, mtime=0))


def test_large_scenario_loads_and_serves_fast(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    for pod in (STABLE, STABLE_GZ):
        for file in (root / "logs" / pod).iterdir():
            file.unlink()
        _write_big_log(root / "logs" / pod / "app.log.gz", 200_000)
    started = time.monotonic()
    with SimulatedCluster([root], prometheus=False) as cluster:
        load_time = time.monotonic() - started
        with httpx.Client(base_url=cluster.apiserver, trust_env=False, timeout=60) as client:
            path = f"/api/v1/namespaces/{NS}/pods/{STABLE}/log"
            started = time.monotonic()
            tail = client.get(path, params={"tailLines": "100"})
            tail_time = time.monotonic() - started
            started = time.monotonic()
            big_tail = client.get(path, params={"tailLines": "20000", "timestamps": "true"})
            big_tail_time = time.monotonic() - started
            since = client.get(path, params={"sinceSeconds": "600"})
    assert len(tail.text.splitlines()) == 100 and len(big_tail.text.splitlines()) == 20000
    assert 16_000 <= len(since.text.splitlines()) <= 17_000  # 10 of the 120 minutes
    # Generous bounds for a shared 2-core machine; typical values are 4x lower.
    assert load_time < 4.0, load_time
    assert tail_time < 0.5, tail_time
    assert big_tail_time < 1.5, big_tail_time
