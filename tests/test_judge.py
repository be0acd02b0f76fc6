"""The deterministic judge: each statistical rule, each pod rule, the verdict overrides, rendering."""

from __future__ import annotations

import json
import math
import random

import pytest
from pydantic import ValidationError

from tools.judge import (
    JudgeConfig,
    JudgeResult,
    MetricInput,
    PodHealth,
    classify_metric,
    judge,
)

STABLE = [PodHealth(name="app-stable-1", role="stable"), PodHealth(name="app-stable-2", role="stable")]
CANARY = [PodHealth(name="app-canary-1", role="canary")]


def errors(stable: tuple[int, int], canary: tuple[int, int], source: str = "logs", **kw) -> MetricInput:
    return MetricInput.from_counts("error_ratio", source, stable, canary, **kw)


def latencies(n: int, scale: float = 1.0, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-2.0, 0.3) * scale for _ in range(n)]


def latency(stable: list[float], canary: list[float], source: str = "logs", name: str = "latency", **kw):
    return MetricInput.from_samples(name, source, stable, canary, unit="s", **kw)


HEALTHY_LATENCY = latency(latencies(400, seed=1), latencies(150, seed=2))


# --- proportions ------------------------------------------------------------------------------


def test_error_ratio_regression_is_high_and_aborts_on_its_own():
    result = judge([errors((2, 1000), (40, 300)), HEALTHY_LATENCY], STABLE, CANARY)
    row = result.rows[0]
    assert row.classification == "high" and row.failed and row.critical
    assert row.test == "fisher_exact" and row.p_value < 1e-10
    assert row.stable_value == pytest.approx(0.002) and row.canary_value == pytest.approx(40 / 300)
    assert result.verdict == "abort" and result.score == 0
    assert "error_ratio" in result.summary and "critical" in result.summary
    assert result.failed_metrics == ["error_ratio"]


def test_error_ratio_from_zero_in_stable():
    row = classify_metric(errors((0, 500), (6, 120)))
    assert row.classification == "high"
    assert row.effect is None and "from zero" in row.reason


def test_small_absolute_increase_is_within_allowed_effect_even_when_significant():
    # 0.1 % -> 0.3 % over millions of requests: p is tiny, the ratio is 3x, but +0.2 pp < 1 pp.
    row = classify_metric(errors((1_000, 1_000_000), (3_000, 1_000_000)))
    assert row.p_value < 1e-10
    assert row.classification == "pass" and not row.failed
    assert "within the allowed effect" in row.reason


def test_small_relative_increase_is_within_allowed_effect_even_when_significant():
    # 20 % -> 21.5 %: +1.5 pp exceeds 1 pp, but 1.075x stays under 1.5x.
    row = classify_metric(errors((200_000, 1_000_000), (215_000, 1_000_000)))
    assert row.p_value < 1e-10
    assert row.classification == "pass"


def test_increase_below_significance_passes():
    row = classify_metric(errors((1, 100), (2, 60)))
    assert row.classification == "pass"
    assert "no significant difference" in row.reason


def test_lower_canary_error_ratio_is_low_but_not_a_failure():
    result = judge([errors((60, 1000), (0, 400)), HEALTHY_LATENCY], STABLE, CANARY)
    row = result.rows[0]
    assert row.classification == "low" and not row.failed
    assert "improvement" in row.reason
    assert result.verdict == "promote" and result.score == 100


def test_decrease_direction_fails_low_and_passes_high():
    success = MetricInput.from_counts("success_ratio", "logs", (950, 1000), (700, 1000), direction="decrease")
    row = classify_metric(success)
    assert row.classification == "low" and row.failed
    better = MetricInput.from_counts("success_ratio", "logs", (400, 1000), (900, 1000), direction="decrease")
    row = classify_metric(better)
    assert row.classification == "high" and not row.failed


def test_either_direction_fails_both_ways():
    up = classify_metric(MetricInput.from_counts("share", "logs", (100, 1000), (300, 1000), direction="either"))
    down = classify_metric(MetricInput.from_counts("share", "logs", (300, 1000), (100, 1000), direction="either"))
    assert (up.classification, up.failed) == ("high", True)
    assert (down.classification, down.failed) == ("low", True)


def test_too_few_requests_is_nodata_with_a_readable_reason_and_inconclusive():
    result = judge([errors((3, 800), (1, 12)), HEALTHY_LATENCY], STABLE, CANARY)
    row = result.rows[0]
    assert row.classification == "nodata"
    assert row.reason == "12 canary requests < 50 required"
    assert result.verdict == "inconclusive" and result.score == 0
    assert "error_ratio" in result.summary


def test_zero_requests_in_both_roles():
    row = classify_metric(errors((0, 0), (0, 0)))
    assert row.classification == "nodata"
    assert row.reason == "0 stable requests < 50 required; 0 canary requests < 50 required"
    assert row.stable_value is None and row.canary_value is None
    result = judge([errors((0, 0), (0, 0))], STABLE, CANARY)
    assert result.verdict == "inconclusive"


def test_all_requests_erroring_in_both_roles_is_no_regression_but_never_promoted():
    result = judge([errors((500, 500), (200, 200)), HEALTHY_LATENCY], STABLE, CANARY)
    row = result.rows[0]
    assert row.classification == "pass" and not row.failed and row.p_value == pytest.approx(1.0)
    assert result.verdict == "inconclusive"
    assert "not healthy" in result.reasons[0]


def test_unhealthy_ratio_is_configurable():
    metrics = [errors((300, 500), (130, 200)), HEALTHY_LATENCY]
    assert judge(metrics, STABLE, CANARY).verdict == "inconclusive"
    assert judge(metrics, STABLE, CANARY, JudgeConfig(unhealthy_ratio=0.9)).verdict == "promote"


def test_missing_counts_are_nodata_with_the_producer_note():
    row = classify_metric(errors(None, None, source="prometheus", note="Prometheus is not configured"))
    assert row.classification == "nodata"
    assert "Prometheus is not configured" in row.reason


def test_events_above_total_are_rejected():
    with pytest.raises(ValidationError):
        errors((5, 4), (0, 100))


# --- samples ----------------------------------------------------------------------------------


def test_slow_canary_latency_is_high():
    row = classify_metric(latency(latencies(300, seed=3), latencies(100, scale=1.5, seed=4)))
    assert row.classification == "high" and row.failed
    assert row.test == "mann_whitney_u" and row.p_value < 0.02
    assert row.effect == pytest.approx(1.5, rel=0.1)
    assert "ms" in row.reason


def test_small_latency_shift_is_within_allowed_effect():
    base = latencies(50_000, seed=5)
    row = classify_metric(latency(base, [x * 1.05 for x in latencies(50_000, seed=6)]))
    assert row.p_value < 1e-10
    assert row.classification == "pass" and "within the allowed effect" in row.reason


def test_faster_canary_is_low_improvement():
    row = classify_metric(latency(latencies(200, seed=7), latencies(200, scale=0.5, seed=8)))
    assert row.classification == "low" and not row.failed


def test_identical_samples_pass_without_crashing():
    row = classify_metric(latency([0.1] * 20, [0.1] * 20))
    assert row.classification == "pass" and row.p_value == 1.0 and row.effect == 1.0
    same = latencies(100, seed=9)
    row = classify_metric(latency(same, list(same)))
    assert row.classification == "pass"


def test_ties_and_constant_but_different_series():
    ties = classify_metric(latency([0.1, 0.2] * 10, [0.1, 0.2] * 10))
    assert ties.classification == "pass"
    constant = classify_metric(latency([0.1] * 20, [0.3] * 20))
    assert constant.classification == "high" and constant.effect == pytest.approx(3.0)


def test_nan_and_inf_are_removed():
    stable = latencies(40, seed=10) + [math.nan, math.inf, None]
    canary = latencies(40, seed=11) + [-math.inf, math.nan]
    row = classify_metric(latency(stable, canary))
    assert row.stable_count == 40 and row.canary_count == 40
    assert row.classification == "pass"
    assert "5 NaN/infinite/empty values removed" in row.reason
    assert all(math.isfinite(v) for v in (row.stable_value, row.canary_value, row.p_value))


def test_too_few_samples_after_cleaning_is_nodata():
    row = classify_metric(latency(latencies(20), [0.1, 0.2, math.nan, 0.3]))
    assert row.classification == "nodata"
    assert row.reason.startswith("3 canary values < 8 required")


def test_zero_mean_stable_samples():
    row = classify_metric(MetricInput.from_samples("restarts_per_min", "prometheus", [0.0] * 10, [1.0] * 10))
    assert row.classification == "high" and row.effect is None


def test_per_metric_effect_override():
    metric = latency(latencies(300, seed=12), latencies(300, scale=1.3, seed=13), allowed_increase=1.5)
    assert classify_metric(metric).classification == "pass"


def test_huge_samples_are_fast_enough():
    base = latencies(200_000, seed=14)
    row = classify_metric(latency(base, latencies(200_000, scale=2.0, seed=15)))
    assert row.classification == "high"


# --- pods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "words"),
    [
        (
            PodHealth(
                name="c",
                role="canary",
                ready=False,
                restarts=5,
                waiting_reason="CrashLoopBackOff",
                last_termination_reason="Error",
                last_exit_code=1,
            ),
            ["CrashLoopBackOff", "5 restart", "exit code 1"],
        ),
        (
            PodHealth(name="c", role="canary", restarts=2, last_termination_reason="OOMKilled", last_exit_code=137),
            ["OOMKilled", "137"],
        ),
        (
            PodHealth(name="c", role="canary", restarts=1, last_termination_reason="Error", last_exit_code=2),
            ["restarted 1 time", "Error"],
        ),
        (
            PodHealth(
                name="c",
                role="canary",
                phase="Pending",
                ready=False,
                waiting_reason="ImagePullBackOff",
                waiting_message='Back-off pulling image "demo:bad"',
            ),
            ["cannot pull its image", "ImagePullBackOff", "demo:bad"],
        ),
        (PodHealth(name="c", role="canary", ready=False, waiting_reason="ErrImagePull"), ["ErrImagePull"]),
        (PodHealth(name="c", role="canary", ready=False, waiting_reason="InvalidImageName"), ["InvalidImageName"]),
        (
            PodHealth(
                name="c",
                role="canary",
                ready=False,
                waiting_reason="CreateContainerConfigError",
                waiting_message='secret "db" not found',
            ),
            ["CreateContainerConfigError", 'secret "db" not found'],
        ),
        (PodHealth(name="c", role="canary", ready=False, not_ready_seconds=600), ["not been Ready for 600 s"]),
        (PodHealth(name="c", role="canary", ready=False), ["is not Ready while stable pods are Ready"]),
        (PodHealth(name="c", role="canary", phase="Failed", ready=False, terminated_reason="Error"), ["phase Failed"]),
    ],
)
def test_unhealthy_canary_pods_fail_the_canary_directly(pod, words):
    result = judge([errors((1, 1000), (0, 400)), HEALTHY_LATENCY], STABLE, [pod, *CANARY])
    assert result.verdict == "abort" and result.score == 0
    finding = result.pod_findings[0]
    assert finding.startswith("canary pod c ")
    for word in words:
        assert word in finding
    assert finding in result.summary


def test_not_ready_within_grace_does_not_fail():
    pod = PodHealth(name="c", role="canary", ready=False, not_ready_seconds=30)
    result = judge([errors((1, 1000), (0, 400)), HEALTHY_LATENCY], STABLE, [pod])
    assert result.verdict == "promote"
    assert "within the 120 s grace" in result.pod_findings[0]


def test_restart_without_known_termination_is_not_a_crash():
    pod = PodHealth(name="c", role="canary", restarts=1)
    assert judge([errors((1, 1000), (0, 400)), HEALTHY_LATENCY], STABLE, [pod]).verdict == "promote"


def test_stable_problems_are_reported_but_do_not_fail_a_healthy_canary():
    stable = [
        PodHealth(name="s1", role="stable", restarts=3, last_termination_reason="OOMKilled", last_exit_code=137),
        PodHealth(name="s2", role="stable"),
    ]
    result = judge([errors((1, 1000), (0, 400)), HEALTHY_LATENCY], stable, CANARY)
    assert result.verdict == "promote"
    assert any("stable pod s1 was OOMKilled" in f and "not new" in f for f in result.pod_findings)


def test_no_ready_stable_pod_makes_canary_readiness_incomparable():
    stable = [PodHealth(name="s1", role="stable", ready=False)]
    canary = [PodHealth(name="c", role="canary", ready=False, not_ready_seconds=900)]
    result = judge([errors((1, 1000), (0, 400)), HEALTHY_LATENCY], stable, canary)
    assert result.verdict == "inconclusive"


def test_no_canary_pods_is_inconclusive_never_promote():
    result = judge([errors((1, 1000), (0, 400)), HEALTHY_LATENCY], STABLE, [])
    assert result.verdict == "inconclusive" and result.score == 0
    assert "no canary pods" in result.summary


# --- combining rows ---------------------------------------------------------------------------


def test_healthy_canary_promotes_with_full_score():
    result = judge([errors((3, 1000), (1, 400)), HEALTHY_LATENCY], STABLE, CANARY)
    assert result.verdict == "promote" and result.score == 100
    assert result.reasons == [] and result.pod_findings == []


def test_non_critical_failure_below_marginal_aborts():
    slow = latency(latencies(300, seed=3), latencies(100, scale=2.0, seed=4))
    result = judge([errors((3, 1000), (1, 400)), slow], STABLE, CANARY)
    assert result.score == 50 and result.verdict == "abort"
    assert result.failed_metrics == ["latency"]
    assert any("latency (logs) is high" in reason for reason in result.reasons)


def test_marginal_score_is_inconclusive_and_a_failure_blocks_promote():
    ok = [latency(latencies(50, seed=i), latencies(50, seed=100 + i), name=f"m{i}") for i in range(7)]
    slow = latency(latencies(100, seed=3), latencies(100, scale=2.0, seed=4), name="slow")
    result = judge([errors((3, 1000), (1, 400)), *ok, slow], STABLE, CANARY)
    assert result.score == 88 and result.verdict == "inconclusive"
    more_ok = [latency(latencies(50, seed=i), latencies(50, seed=200 + i), name=f"n{i}") for i in range(1)]
    result = judge([errors((3, 1000), (1, 400)), *ok, *more_ok, slow], STABLE, CANARY)
    assert result.score == 90 and result.verdict == "inconclusive"
    assert "slow" in result.summary


def test_half_the_metrics_without_data_is_inconclusive():
    metrics = [
        errors((3, 1000), (1, 400)),
        latency(latencies(300), latencies(4), name="latency_p50"),
        latency(latencies(300), latencies(3), name="latency_p95"),
        HEALTHY_LATENCY,
    ]
    result = judge(metrics, STABLE, CANARY)
    assert result.nodata_fraction == 0.5
    assert result.verdict == "inconclusive" and result.score == 0
    assert "50% of the metrics have no data" in result.summary
    result = judge(metrics, STABLE, CANARY, JudgeConfig(nodata_inconclusive_fraction=0.6))
    assert result.verdict == "promote"
    assert any("no data for latency_p50 (logs), latency_p95 (logs)" in r for r in result.reasons)


def test_a_source_without_any_data_falls_back_to_the_other():
    metrics = [
        errors(None, None, source="prometheus", note="Prometheus is not configured"),
        MetricInput.from_samples("latency_p95", "prometheus", [], [], note="Prometheus is not configured"),
        errors((3, 1000), (1, 400)),
        HEALTHY_LATENCY,
    ]
    result = judge(metrics, STABLE, CANARY)
    assert result.verdict == "promote"
    assert "no prometheus data for any metric; judged on the other sources only" in result.reasons
    assert [row.source for row in result.rows] == ["prometheus", "prometheus", "logs", "logs"]


def test_both_sources_are_classified_and_either_failing_fails():
    metrics = [errors((3, 1000), (1, 400), source="prometheus"), errors((3, 1000), (80, 400)), HEALTHY_LATENCY]
    result = judge(metrics, STABLE, CANARY)
    assert [(r.source, r.classification) for r in result.rows[:2]] == [("prometheus", "pass"), ("logs", "high")]
    assert result.verdict == "abort"


def test_critical_metric_counts_as_present_when_one_source_has_data():
    metrics = [errors((3, 1000), (1, 400), source="prometheus"), errors((0, 10), (0, 5)), HEALTHY_LATENCY]
    result = judge(metrics, STABLE, CANARY)
    assert result.verdict == "promote"
    assert any("no data for error_ratio (logs)" in reason for reason in result.reasons)


def test_critical_metric_not_measured_is_inconclusive():
    result = judge([HEALTHY_LATENCY], STABLE, CANARY)
    assert result.verdict == "inconclusive"
    assert "error_ratio (not measured)" in result.reasons[0]


def test_no_metrics_at_all_is_inconclusive():
    assert judge([], STABLE, CANARY).verdict == "inconclusive"


def test_muted_metrics_are_shown_but_not_scored():
    traffic = MetricInput.from_samples("request_rate", "prometheus", [10.0] * 20, [2.0] * 20, unit="req/s")
    result = judge([errors((3, 1000), (1, 400)), HEALTHY_LATENCY, traffic], STABLE, CANARY)
    row = result.rows[2]
    assert row.muted and row.classification == "low"
    assert result.verdict == "promote" and result.score == 100


def test_critical_flag_on_the_input_overrides_the_config():
    slow = latency(latencies(300, seed=3), latencies(100, scale=2.0, seed=4), critical=True)
    result = judge([errors((3, 1000), (1, 400)), slow], STABLE, CANARY)
    assert result.verdict == "abort" and result.score == 0
    assert result.summary.startswith("abort: critical metric latency is high")


def test_config_validation():
    with pytest.raises(ValidationError):
        JudgeConfig(pass_score=70, marginal_score=80)
    with pytest.raises(ValidationError):
        JudgeConfig(confidence_level=1.0)


def test_stricter_confidence_level_turns_a_weak_signal_into_a_pass():
    metric = errors((0, 200), (4, 100))
    assert classify_metric(metric, JudgeConfig(confidence_level=0.95)).classification == "high"
    assert classify_metric(metric, JudgeConfig(confidence_level=0.999)).classification == "pass"


# --- output -------------------------------------------------------------------------------------


def _mixed_result() -> JudgeResult:
    metrics = [
        errors((2, 1000), (40, 300)),
        latency(latencies(300, seed=3), latencies(100, scale=2.0, seed=4)),
        errors(None, None, source="prometheus", note="no series | for canary pods"),
    ]
    crash = PodHealth(name="app-canary-2", role="canary", restarts=1, last_termination_reason="Error")
    return judge(metrics, STABLE, [*CANARY, crash])


def test_table_is_readable_markdown():
    result = _mixed_result()
    lines = result.table().splitlines()
    assert lines[0] == "| metric | source | stable | canary | test | p-value | effect | result | reason |"
    assert len(lines) == 2 + 3
    assert all(line.count(" | ") == 8 for line in lines if not line.startswith("|---"))  # pipes escaped
    assert "| error_ratio | logs | 0.20% (n=1000) | 13.33% (n=300) | fisher_exact |" in lines[2]
    assert "HIGH (critical)" in lines[2]
    assert "no series \\| for canary pods" in lines[4]
    markdown = result.to_markdown()
    assert markdown.startswith("**Judge verdict: ABORT** — score 0/100")
    assert "Pod findings:\n- canary pod app-canary-2 restarted 1 time(s)" in markdown
    assert result.table() in markdown and "Reasons:" in markdown


def test_empty_table():
    assert "(no metrics)" in judge([], STABLE, CANARY).table()


def test_deterministic_and_json_serialisable():
    first, second = _mixed_result(), _mixed_result()
    assert first.model_dump() == second.model_dump()
    text = json.dumps(first.model_dump(), allow_nan=False)
    assert json.loads(text)["verdict"] == "abort"


def test_samples_without_any_values_show_the_producer_note_alone():
    row = classify_metric(MetricInput.from_samples("latency_p95", "prometheus", [], [], note="no series at all"))
    assert row.classification == "nodata" and row.reason == "no series at all"
