"""Prometheus tools against a real Prometheus (Debian 2.42), backfilled with promtool.

The module fixture writes OpenMetrics (seconds, `# EOF`) ending now, in the scenario convention
(`namespace`/`pod`/`code` labels, `http_requests_total`, `http_request_duration_seconds`):
namespace `shop` with two stable pods and three canaries (healthy, 5xx-heavy, slow) exposing a
histogram, namespace `legacy` exposing a summary. Stable pods run for 40 minutes, canaries for 20.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import socket
import subprocess
import time
from types import SimpleNamespace

import httpx
import pytest

from selfheal.config import get_settings
from selfheal.simulator import free_port
from tools.judge import ERROR_RATIO, PodHealth, judge
from tools.prometheus import (
    QueryTemplates,
    compare_canary_metrics,
    discover_metrics,
    parse_duration,
    parse_time,
    pod_regex,
    query_prometheus,
    query_prometheus_range,
)

STEP = 15
BUCKETS = ["0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
STABLE = ["shop-stable-7d9f-a", "shop-stable-7d9f-b"]
CANARY_GOOD, CANARY_ERRORS, CANARY_SLOW = "shop-canary-6c4b-good", "shop-canary-6c4b-errors", "shop-canary-6c4b-slow"
SHOP = {  # pod: (minutes before now it started, 5xx share, latency factor)
    STABLE[0]: (40, 0.005, 1.0),
    STABLE[1]: (40, 0.005, 1.0),
    CANARY_GOOD: (20, 0.005, 1.0),
    CANARY_ERRORS: (20, 0.30, 1.0),
    CANARY_SLOW: (20, 0.005, 3.0),
}
LEGACY = {"legacy-stable-a": (40, 0.0, 1.0), "legacy-canary-b": (20, 0.0, 2.0)}

# Prometheus is a required real part (scripts/test.sh installs Debian's package): fail, never skip.
if not (shutil.which("prometheus") and shutil.which("promtool")):
    raise RuntimeError("the Prometheus tests need Debian's prometheus package (prometheus and promtool on PATH); "
                       "scripts/test.sh installs it")


def _simulate(pods: dict, end: int, seed: int) -> dict:
    """Cumulative counters per pod and timestamp: requests by code, buckets, sum, count, quantiles."""
    rng = random.Random(seed)
    out = {}
    for pod, (minutes, error_share, factor) in pods.items():
        ok = err = total = 0
        latency_sum = 0.0
        buckets = [0] * len(BUCKETS)
        rows = []
        for ts in range(end - minutes * 60, end + 1, STEP):
            window = []
            for _ in range(rng.randint(50, 70)):
                latency = rng.lognormvariate(math.log(0.05), 0.4) * factor
                window.append(latency)
                latency_sum += latency
                total += 1
                if rng.random() < error_share:
                    err += 1
                else:
                    ok += 1
                for i, le in enumerate(BUCKETS):
                    if latency <= float(le):
                        buckets[i] += 1
            window.sort()
            quantiles = {q: window[min(len(window) - 1, int(float(q) * len(window)))] for q in ("0.5", "0.95", "0.99")}
            rows.append((ts, ok, err, list(buckets), latency_sum, total, quantiles))
        out[pod] = rows
    return out


def _openmetrics(namespace: str, data: dict, kind: str) -> str:
    lines = ["# HELP http_requests Requests served.", "# TYPE http_requests counter"]
    for pod, rows in data.items():
        labels = f'namespace="{namespace}",pod="{pod}"'
        for code, index in (("200", 1), ("500", 2)):
            lines += [f'http_requests_total{{{labels},code="{code}"}} {row[index]} {row[0]}' for row in rows]
    lines += ["# HELP http_request_duration_seconds Request latency.", f"# TYPE http_request_duration_seconds {kind}"]
    for pod, rows in data.items():
        labels = f'namespace="{namespace}",pod="{pod}"'
        if kind == "histogram":
            for i, le in enumerate(BUCKETS):
                lines += [f'http_request_duration_seconds_bucket{{{labels},le="{le}"}} {r[3][i]} {r[0]}' for r in rows]
        else:
            for q in ("0.5", "0.95", "0.99"):
                series = f'http_request_duration_seconds{{{labels},quantile="{q}"}}'
                lines += [f"{series} {r[6][q]:.6f} {r[0]}" for r in rows]
        lines += [f"http_request_duration_seconds_sum{{{labels}}} {r[4]:.6f} {r[0]}" for r in rows]
        lines += [f"http_request_duration_seconds_count{{{labels}}} {r[5]} {r[0]}" for r in rows]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    root = tmp_path_factory.mktemp("prometheus")
    end = int(time.time()) // STEP * STEP
    data_dir = root / "data"
    for name, namespace, pods, kind, seed in (
        ("shop.om", "shop", SHOP, "histogram", 1),
        ("legacy.om", "legacy", LEGACY, "summary", 2),
    ):
        path = root / name
        path.write_text(_openmetrics(namespace, _simulate(pods, end, seed), kind))
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(path), str(data_dir)],
            check=True,
            capture_output=True,
        )
    config = root / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    port = free_port()
    log = (root / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=10y",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or process.poll() is not None:
                raise RuntimeError(f"prometheus did not start: {(root / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield SimpleNamespace(url=url, end=end, canary_start=end - 20 * 60)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def env(monkeypatch):
    """Set environment variables for Settings and re-read them."""

    def apply(**values):
        for key, value in values.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, str(value))
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


def _window(prometheus) -> int:
    return int(time.time() - prometheus.canary_start)


# --- argument parsing -------------------------------------------------------------------------


def test_durations_and_times():
    assert parse_duration("90") == 90 and parse_duration("1h30m") == 5400 and parse_duration(15) == 15
    assert parse_duration("500ms") == 0.5
    for bad in ("", "5x", "m5", "-5m", "0"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    now = 1_800_000_000.0
    assert parse_time(None, now) == now and parse_time("now", now) == now
    assert parse_time("now-30m", now) == now - 1800 and parse_time("-1h", now) == now - 3600
    assert parse_time("2026-01-01T12:00:00Z", now) == 1767268800.0
    assert parse_time("1767268800.5", now) == 1767268800.5
    with pytest.raises(ValueError):
        parse_time("yesterday", now)


def test_pod_regex_escapes_for_promql():
    assert pod_regex(["b.x", "a-1"]) == "a-1|b\\\\.x"


# --- queries ------------------------------------------------------------------------------------


def test_instant_query(prometheus):
    result = query_prometheus(
        'sum by (code) (increase(http_requests_total{namespace="shop"}[5m]))', prometheus_url=prometheus.url
    )
    assert result["result_type"] == "vector" and result["series_count"] == 2
    by_code = {series["labels"]["code"]: series["value"] for series in result["series"]}
    assert by_code["200"] > 1000 and 0 < by_code["500"] < by_code["200"]
    assert result["truncated"] is False and "message" not in result


def test_instant_query_at_an_explicit_time(prometheus):
    query = f'count(http_requests_total{{namespace="shop",pod="{CANARY_GOOD}"}})'
    before_canary = query_prometheus(query, time=str(prometheus.canary_start - 600), prometheus_url=prometheus.url)
    assert before_canary["series"] == []
    at_end = query_prometheus(query, time="now-10m", prometheus_url=prometheus.url)
    assert at_end["series"][0]["value"] == 2.0
    scalar = query_prometheus("scalar(vector(3))", prometheus_url=prometheus.url)
    assert scalar == {
        "query": "scalar(vector(3))",
        "time": scalar["time"],
        "result_type": "scalar",
        "value": 3.0,
        "warnings": [],
    }


def test_range_query(prometheus):
    query = f'sum(rate(http_requests_total{{namespace="shop",pod="{STABLE[0]}"}}[1m]))'
    result = query_prometheus_range(query, start="now-20m", end="now", step="1m", prometheus_url=prometheus.url)
    assert result["result_type"] == "matrix" and result["step_seconds"] == 60
    series = result["series"][0]
    assert 18 <= len(series["points"]) <= 21
    assert 3.0 < series["summary"]["mean"] < 5.0  # 50-70 requests per 15 s
    assert all(isinstance(ts, float) for ts, _ in series["points"])


def test_series_cap_tells_how_to_narrow(prometheus, env):
    env(SELFHEAL_PROMETHEUS_MAX_SERIES=3)
    result = query_prometheus('http_requests_total{namespace="shop"}', prometheus_url=prometheus.url)
    assert result["series_count"] == 10 and len(result["series"]) == 3 and result["truncated"]
    assert "Showing 3 of 10 series" in result["message"]
    assert "label matchers" in result["message"] and "sum by" in result["message"]


def test_points_cap_tells_how_to_narrow(prometheus, env):
    env(SELFHEAL_PROMETHEUS_MAX_POINTS=40)
    query = f'rate(http_requests_total{{namespace="shop",pod="{STABLE[0]}"}}[1m])'
    result = query_prometheus_range(query, start="now-30m", end="now", step="15s", prometheus_url=prometheus.url)
    assert result["truncated"] and [len(s["points"]) for s in result["series"]] == [20, 20]
    assert "Raise the step (step=90s fits)" in result["message"]
    last = result["series"][0]["points"][-1][0]
    assert abs(last - time.time()) < 60  # the most recent points are kept


def test_too_many_points_per_series_is_refused_before_asking(prometheus):
    result = query_prometheus_range("up", start="now-7d", end="now", step="15s", prometheus_url=prometheus.url)
    assert result["error"]["kind"] == "invalid_argument"
    assert "Raise the step to at least 55s" in result["error"]["hint"]


def test_promql_error_carries_prometheus_message(prometheus):
    result = query_prometheus("sum(rate(http_requests_total[5m])", prometheus_url=prometheus.url)
    assert result["error"]["kind"] == "invalid_argument"
    assert "parse error" in result["error"]["message"]
    result = query_prometheus_range("rate(http_requests_total)", prometheus_url=prometheus.url)
    assert result["error"]["kind"] == "invalid_argument"
    assert "range vector" in result["error"]["message"]


def test_bad_arguments(prometheus):
    assert query_prometheus("  ", prometheus_url=prometheus.url)["error"]["kind"] == "invalid_argument"
    assert query_prometheus("up", time="soon", prometheus_url=prometheus.url)["error"]["kind"] == "invalid_argument"
    result = query_prometheus_range("up", start="now", end="now-1h", prometheus_url=prometheus.url)
    assert "before start" in result["error"]["message"]


def test_unreachable():
    result = query_prometheus("up", prometheus_url=f"http://127.0.0.1:{free_port()}")
    assert result["error"]["kind"] == "unreachable"
    assert "PROMETHEUS_URL" in result["error"]["hint"]


def test_not_a_prometheus(prometheus):
    result = query_prometheus("up", prometheus_url=prometheus.url + "/nothing-here")
    assert result["error"]["kind"] == "not_found"


def test_credentials_in_the_url_stay_out_of_messages():
    result = query_prometheus("up", prometheus_url=f"http://admin:s3cret@127.0.0.1:{free_port()}")
    assert "s3cret" not in str(result)


def test_timeout(env):
    env(SELFHEAL_PROMETHEUS_TIMEOUT_SECONDS=0.3)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        started = time.time()
        result = query_prometheus("up", prometheus_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
    assert result["error"]["kind"] == "timeout"
    assert time.time() - started < 5


def test_not_configured(env):
    env(PROMETHEUS_URL=None, SELFHEAL_PROMETHEUS_URL=None)
    for result in (query_prometheus("up"), query_prometheus_range("up"), discover_metrics("shop", [])):
        assert result["error"]["kind"] == "not_configured"
        assert "PROMETHEUS_URL" in result["error"]["hint"]


def test_url_from_settings(prometheus, env):
    env(PROMETHEUS_URL=prometheus.url)
    assert query_prometheus("vector(1)")["series"][0]["value"] == 1.0


# --- discovery ----------------------------------------------------------------------------------


def test_discover_metrics_for_pods(prometheus):
    result = discover_metrics("shop", [CANARY_GOOD, STABLE[0], "shop-canary-gone"], prometheus_url=prometheus.url)
    names = {metric["name"]: metric for metric in result["metrics"]}
    assert set(names) == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
    }
    assert names["http_requests_total"]["kind"] == "counter" and names["http_requests_total"]["labels"] == ["code"]
    assert names["http_requests_total"]["pods"] == sorted([CANARY_GOOD, STABLE[0]])
    assert names["http_request_duration_seconds_bucket"]["kind"] == "histogram"
    assert result["pods_without_series"] == ["shop-canary-gone"]


def test_discover_metrics_summary_and_empty(prometheus):
    result = discover_metrics("legacy", [], prometheus_url=prometheus.url)
    kinds = {metric["name"]: metric["kind"] for metric in result["metrics"]}
    assert kinds["http_request_duration_seconds"] == "summary"
    empty = discover_metrics("nowhere", ["x"], prometheus_url=prometheus.url)
    assert empty["metrics"] == [] and "No series" in empty["message"]


# --- canary comparison --------------------------------------------------------------------------


def _by_name(comparison):
    return {metric.name: metric for metric in comparison.metrics}


def _judge(comparison):
    stable = [PodHealth(name=pod, role="stable") for pod in comparison.stable_pods]
    canary = [PodHealth(name=pod, role="canary") for pod in comparison.canary_pods]
    return judge(comparison.metrics, stable, canary)


def test_healthy_canary_passes(prometheus):
    comparison = compare_canary_metrics(
        "shop", STABLE, [CANARY_GOOD], _window(prometheus), prometheus_url=prometheus.url
    )
    assert comparison.available and comparison.error is None and comparison.latency_source == "histogram"
    metrics = _by_name(comparison)
    assert set(metrics) == {"error_ratio", "request_rate", "latency_p50", "latency_p95", "latency_p99"}
    errors = metrics[ERROR_RATIO]
    assert errors.kind == "proportion" and errors.source == "prometheus"
    assert 2 * 60 * 80 * 0.8 < errors.stable_total < 2 * 60 * 80 * 1.2  # two pods, 80 steps, ~60 requests
    assert 60 * 80 * 0.8 < errors.canary_total < 60 * 80 * 1.2
    assert len(metrics["latency_p95"].canary_samples) >= 8
    result = _judge(comparison)
    assert result.verdict == "promote", result.to_markdown()
    assert all(row.classification == "pass" for row in result.rows), result.table()


def test_error_heavy_canary_has_high_error_ratio(prometheus):
    comparison = compare_canary_metrics(
        "shop", STABLE, [CANARY_ERRORS], _window(prometheus), prometheus_url=prometheus.url
    )
    errors = _by_name(comparison)[ERROR_RATIO]
    assert 0.25 < errors.canary_events / errors.canary_total < 0.35
    result = _judge(comparison)
    row = next(row for row in result.rows if row.metric == ERROR_RATIO)
    assert row.classification == "high" and row.critical
    assert result.verdict == "abort" and result.score == 0


def test_slow_canary_has_high_latency(prometheus):
    comparison = compare_canary_metrics(
        "shop", STABLE, [CANARY_SLOW], _window(prometheus), prometheus_url=prometheus.url
    )
    result = _judge(comparison)
    rows = {row.metric: row for row in result.rows}
    assert rows[ERROR_RATIO].classification == "pass"
    assert {rows[name].classification for name in ("latency_p50", "latency_p95", "latency_p99")} == {"high"}
    assert result.verdict == "abort", result.to_markdown()


def test_summary_latency_is_used_without_buckets(prometheus):
    comparison = compare_canary_metrics(
        "legacy", ["legacy-stable-a"], ["legacy-canary-b"], _window(prometheus), prometheus_url=prometheus.url
    )
    assert comparison.latency_source == "summary"
    rows = {row.metric: row for row in _judge(comparison).rows}
    assert rows["latency_p50"].classification == "high"
    assert rows["latency_p50"].effect == pytest.approx(2.0, rel=0.25)


def test_mean_latency_from_sum_and_count_with_custom_templates(prometheus):
    templates = QueryTemplates(quantiles=[])
    comparison = compare_canary_metrics(
        "shop", STABLE, [CANARY_SLOW], _window(prometheus), templates=templates, prometheus_url=prometheus.url
    )
    assert comparison.latency_source == "mean"
    row = next(row for row in _judge(comparison).rows if row.metric == "latency_mean")
    assert row.classification == "high" and row.effect == pytest.approx(3.0, rel=0.2)


def test_window_is_capped_and_sets_the_step(prometheus):
    comparison = compare_canary_metrics(
        "shop", STABLE, [CANARY_GOOD], 10 * 86400, prometheus_url=prometheus.url, max_window_seconds=7200
    )
    assert comparison.window_seconds == 7200 and comparison.step_seconds == 240
    assert "adjusted to 7200 s" in comparison.notes[0]
    assert all("[7200s]" in query for query in comparison.queries[:4])


def test_canary_without_series_is_nodata_not_an_exception(prometheus):
    comparison = compare_canary_metrics(
        "shop", STABLE, ["shop-canary-never-scraped"], _window(prometheus), prometheus_url=prometheus.url
    )
    errors = _by_name(comparison)[ERROR_RATIO]
    assert errors.canary_total is None and "no http requests for the canary pods" in errors.note
    result = _judge(comparison)
    assert result.verdict == "inconclusive"
    assert "shop-canary-never-scraped" in result.rows[0].reason


def test_comparison_without_prometheus_says_so(env):
    env(PROMETHEUS_URL=None, SELFHEAL_PROMETHEUS_URL=None)
    comparison = compare_canary_metrics("shop", STABLE, [CANARY_GOOD], 1200)
    assert not comparison.available and comparison.error["kind"] == "not_configured"
    assert all(metric.note for metric in comparison.metrics)
    unreachable = compare_canary_metrics(
        "shop", STABLE, [CANARY_GOOD], 1200, prometheus_url=f"http://127.0.0.1:{free_port()}"
    )
    assert not unreachable.available and unreachable.error["kind"] == "unreachable"
    assert len(unreachable.queries) == 2  # gave up after the first query failed
    assert _judge(unreachable).verdict == "inconclusive"


def test_comparison_with_a_broken_template_reports_the_query_error(prometheus):
    templates = QueryTemplates(errors="sum(increase(http_requests_total{namespace=\"{namespace}\"}[{window}])")
    comparison = compare_canary_metrics(
        "shop", STABLE, [CANARY_GOOD], _window(prometheus), templates=templates, prometheus_url=prometheus.url
    )
    assert comparison.error["kind"] == "invalid_argument"
    assert any("a query failed" in note for note in comparison.notes)
    assert comparison.model_dump_json()  # serialisable for the evidence report


def test_range_selector_in_an_instant_query_gives_points(prometheus):
    query = f'http_requests_total{{namespace="shop",pod="{STABLE[0]}",code="200"}}[1m]'
    result = query_prometheus(query, time=str(prometheus.end), prometheus_url=prometheus.url)
    assert result["result_type"] == "matrix"
    assert len(result["series"][0]["points"]) == 5  # 15 s samples, both ends of [1m] included (Prometheus 2)


def test_secrets_in_results_are_redacted(prometheus):
    query = 'label_replace(vector(1), "authorization", "Bearer abcdefghijklmnop1234", "", "")'
    result = query_prometheus(query, prometheus_url=prometheus.url)
    assert "abcdefghijklmnop1234" not in str(result)
    assert "REDACTED" in result["series"][0]["labels"]["authorization"]


def test_no_latency_family_at_all_makes_no_latency_input(prometheus):
    templates = QueryTemplates(quantiles=[], latency_mean='sum(rate(absent_seconds_sum{pod=~"{pods}"}[1m]))')
    comparison = compare_canary_metrics(
        "shop", STABLE, [CANARY_GOOD], _window(prometheus), templates=templates, prometheus_url=prometheus.url
    )
    assert comparison.latency_source == "none"
    assert [metric.name for metric in comparison.metrics] == ["error_ratio", "request_rate"]
    assert "latency is not compared from Prometheus" in comparison.notes[-1]
    assert _judge(comparison).verdict == "promote"


# --- the real scenarios, through the shared simulator ---------------------------------------------

SCENARIO_EXPECTATIONS = {  # scenario: (error_ratio classification, latency classifications)
    "healthy-canary": ("pass", {"pass"}),
    "bad-canary": ("high", None),
    "slow-canary": ("pass", {"high"}),
}


@pytest.fixture(scope="module")
def scenario_cluster(request):
    """The shared `simulator` (tests/conftest.py) with a Kubernetes client, once the scenarios exist."""
    from selfheal.simulator import bundled_scenarios_dir

    missing = [name for name in SCENARIO_EXPECTATIONS if not (bundled_scenarios_dir() / name / "metrics").is_dir()]
    assert not missing, f"bundled scenarios without metrics: {missing}"
    from kubernetes import client, config

    cluster = request.getfixturevalue("simulator")
    assert cluster.prometheus_url, f"the simulator serves no Prometheus: {cluster.prometheus_note}"
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    return SimpleNamespace(cluster=cluster, api=api, scenarios={s.name: s for s in cluster.scenarios})


@pytest.mark.parametrize("name", sorted(SCENARIO_EXPECTATIONS))
def test_scenario_comparison_against_the_simulator(scenario_cluster, name):
    """The comparison as the evidence step runs it: pods by the scenario's selectors, the window
    from the canary pods' start time, evaluated now."""
    scenario = scenario_cluster.scenarios[name]
    namespace = scenario.rollout.namespace

    def pods(selector: str) -> list[dict]:
        raw = scenario_cluster.api.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False)
        return json.loads(raw.data)["items"]

    stable, canary = pods(scenario.selectors.stable), pods(scenario.selectors.canary)
    started = min(
        parse_time(pod["status"].get("startTime") or pod["metadata"]["creationTimestamp"], 0.0) for pod in canary
    )
    comparison = compare_canary_metrics(
        namespace,
        [pod["metadata"]["name"] for pod in stable],
        [pod["metadata"]["name"] for pod in canary],
        int(time.time() - started),
        prometheus_url=scenario_cluster.cluster.prometheus_url,
    )
    result = _judge(comparison)
    rows = {row.metric: row for row in result.rows}
    expected_errors, expected_latency = SCENARIO_EXPECTATIONS[name]
    assert rows[ERROR_RATIO].classification == expected_errors, result.to_markdown()
    if expected_latency is not None:
        latency = {row.classification for metric, row in rows.items() if metric.startswith("latency")}
        assert latency and latency <= expected_latency | {"pass"} and expected_latency <= latency, result.to_markdown()
    assert result.verdict == ("promote" if name == "healthy-canary" else "abort"), result.to_markdown()
