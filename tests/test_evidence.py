"""The evidence path on every bundled scenario: the judge's verdict, the byte budget, what the
report keeps, and that nothing secret leaves it."""

from __future__ import annotations

import json

import pytest

from conftest import bundled_scenario_dirs
from selfheal.simulator.scenario import load_expectation, read_info
from tools.evidence import collect_evidence, explain_evidence, get_canary_evidence, render_report, summarize_evidence

SCENARIOS = [path.name for path in bundled_scenario_dirs()]


@pytest.fixture(scope="module")
def collected(simulator):
    """Evidence for every scenario, collected once (large-logs reads 440k lines)."""
    import os

    from selfheal.config import get_settings
    from tools import k8s

    saved = {key: os.environ.get(key) for key in simulator.environment()}
    os.environ.update(simulator.environment())
    get_settings.cache_clear()
    k8s.reset_clients()
    try:
        result = {}
        for path in bundled_scenario_dirs():
            info = read_info(path)
            result[path.name] = (
                collect_evidence(info.rollout.namespace, info.rollout.name, info.selectors.stable, info.selectors.canary),
                load_expectation(path),
            )
        yield result
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        k8s.reset_clients()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_judge_gives_the_expected_verdict(collected, scenario: str) -> None:
    evidence, expect = collected[scenario]
    assert evidence.collection_errors == []
    assert evidence.judge.verdict == expect.model_extra["verdict"], evidence.judge.table()
    words = explain_evidence(summarize_evidence(evidence, 12_000))
    assert words["promote"] is expect.promote
    # The judge-only answer already names what is true of the scenario.
    text = (words["rootCause"] + " " + words["analysis"]).lower()
    missing = [facts for facts in expect.facts if not any(alt.lower() in text for alt in facts)]
    assert missing == [], f"{scenario}: {words['rootCause']!r} lacks {missing}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_what_the_model_reads_stays_within_the_budget(collected, scenario: str) -> None:
    evidence, _ = collected[scenario]
    for budget in (12_000, 6_000):
        summary = summarize_evidence(evidence, budget)
        assert len(json.dumps(summary).encode()) <= budget
        assert summary["report"].startswith(f"# Canary evidence: {evidence.namespace}/{evidence.rollout}")


def test_new_canary_signatures_survive_a_tight_budget(collected) -> None:
    evidence, _ = collected["large-logs"]
    new = evidence.signatures.new
    assert any("payment gateway timeout" in change.template for change in new)
    report = render_report(evidence, 4_000)
    assert len(report.encode()) <= 4_000
    for change in new[:5]:
        assert change.template[:200] in report, f"new signature dropped: {change.template}"
    assert "lower-priority lines left out" in report


def test_no_planted_secret_leaves_the_evidence(collected) -> None:
    evidence, expect = collected["injection-canary"]
    secrets = expect.model_extra["planted_secrets"]
    summary = json.dumps(summarize_evidence(evidence, 12_000))
    leaked = [secret for secret in secrets if secret in summary]
    assert leaked == []
    assert "[REDACTED:" in summary or "<*>" in summary


def test_tool_errors_are_structured(product_env) -> None:
    missing = get_canary_evidence("demo-nowhere", "ghost")
    assert missing["error"]["kind"] in ("not_found", "unreachable")
    assert "hint" in missing["error"]
    empty = get_canary_evidence("", "x")
    assert empty["error"]["kind"] == "invalid_argument"


def test_collection_stops_at_its_deadline(product_env) -> None:
    import time

    started = time.perf_counter()
    evidence = collect_evidence("demo-large", "canary-demo", deadline=started + 0.3)
    elapsed = time.perf_counter() - started
    # large-logs takes seconds to read; past the deadline the reads stop and the gap is named.
    assert elapsed < 3.0
    assert any("deadline" in error for error in evidence.collection_errors)
    assert evidence.judge.verdict != "promote"
