"""combine(): model votes + the judge -> the plugin's answer (selfheal.analysis.voting).

Rules under test: failed models are excluded and reported with `error`; votes are weighted by
confidence; a tie is not a promote; a failed single model leaves the decision to the judge
(inconclusive -> the failure policy), and a missed quorum of several voters is never a promote;
the judge gate means no vote turns a failing or inconclusive judge into a promote. Every answer must decode under the Go client's rules.
"""

from __future__ import annotations

import json

import pytest

from selfheal.analysis.agent_run import AgentRunResult
from selfheal.analysis.voting import JudgeView, combine, judge_answer
from selfheal.contract import go_decode_error
from selfheal.verdict import Verdict

PASSING = JudgeView("promote", 96, "all metrics pass", "none", "Promote the canary.")
FAILING = JudgeView("abort", 8, "error rate high", "HTTP 500 from the canary", "Roll back and fix the handler.")
UNSURE = JudgeView("inconclusive", 50, "too little traffic", "unknown: too little traffic", "Wait for traffic.")


def vote(model: str, promote: bool, confidence: int, *, ms: int = 1200, cause: str = "") -> AgentRunResult:
    verdict = Verdict(
        promote=promote,
        confidence=confidence,
        analysis=f"{model} says {'promote' if promote else 'abort'}",
        rootCause=cause or ("none" if promote else f"{model}: canary errors"),
        remediation="promote" if promote else f"{model}: roll back",
    )
    return AgentRunResult(model=model, verdict=verdict, duration_ms=ms, model_calls=3)


def failed(model: str, error: str = "RuntimeError: backend exploded", ms: int = 40) -> AgentRunResult:
    return AgentRunResult(model=model, error=error, duration_ms=ms)


def decodes(answer) -> dict:
    wire = answer.wire()
    assert go_decode_error(json.dumps(wire)) is None, wire
    assert isinstance(wire["promote"], bool) and type(wire["confidence"]) is int
    for result in wire.get("modelResults", []):
        assert type(result["executionTimeMs"]) is int and type(result["confidence"]) is int
    return wire


def test_single_model_agreeing_with_judge_promotes() -> None:
    answer = combine([vote("m1", True, 88)], PASSING, quorum=1, inconclusive_policy="abort")
    wire = decodes(answer)
    assert wire["promote"] is True and wire["confidence"] == 88
    assert wire["analysis"] == "m1 says promote"
    assert wire["modelResults"] == [{
        "modelName": "m1", "analysis": "m1 says promote", "rootCause": "none", "remediation": "promote",
        "promote": True, "confidence": 88, "executionTimeMs": 1200,
    }]  # fmt: skip
    assert "1 valid vote(s): promote weight 88, abort weight 0 -> promote." in wire["votingRationale"]


def test_confidence_weighted_majority_beats_head_count() -> None:
    # Two weak promotes (30 + 30) lose to one confident abort (90).
    runs = [vote("a", True, 30), vote("b", True, 30), vote("c", False, 90)]
    wire = decodes(combine(runs, PASSING, quorum=1, inconclusive_policy="abort"))
    assert wire["promote"] is False
    assert wire["confidence"] == 90  # the winning side's confidence, not a mix of both sides
    assert wire["rootCause"] == "c: canary errors"
    assert "promote weight 60, abort weight 90 -> abort" in wire["votingRationale"]


def test_winning_side_confidence_is_its_own_average_and_lead_is_most_confident() -> None:
    runs = [vote("a", True, 70), vote("b", True, 90), vote("c", False, 40)]
    wire = decodes(combine(runs, PASSING, quorum=1, inconclusive_policy="abort"))
    assert wire["promote"] is True
    assert wire["confidence"] == 80
    assert wire["analysis"] == "b says promote"


@pytest.mark.parametrize("judge", [PASSING, FAILING, UNSURE])
def test_tie_is_not_a_promote(judge: JudgeView) -> None:
    runs = [vote("a", True, 80), vote("b", False, 80)]
    wire = decodes(combine(runs, judge, quorum=2, inconclusive_policy="promote"))
    assert wire["promote"] is False
    assert "tie: not promoted" in wire["votingRationale"]


def test_zero_weight_promotes_are_a_tie_not_a_crash() -> None:
    runs = [vote("a", True, 0), vote("b", True, 0)]
    wire = decodes(combine(runs, PASSING, quorum=1, inconclusive_policy="abort"))
    assert wire["promote"] is False and wire["confidence"] == 0
    assert "promote weight 0, abort weight 0 -> abort (tie: not promoted)" in wire["votingRationale"]


def test_failed_models_are_excluded_and_reported_with_error() -> None:
    runs = [vote("good", True, 90), failed("broken"), failed("slow", "timed out after 118s (analysis deadline)", 118000)]
    wire = decodes(combine(runs, PASSING, quorum=1, inconclusive_policy="abort"))
    assert wire["promote"] is True and wire["confidence"] == 90  # failures weigh nothing, in either direction
    by_name = {result["modelName"]: result for result in wire["modelResults"]}
    assert list(by_name) == ["good", "broken", "slow"]
    assert "error" not in by_name["good"]
    assert by_name["broken"]["error"] == "RuntimeError: backend exploded"
    assert by_name["broken"]["promote"] is False and by_name["broken"]["confidence"] == 0
    assert by_name["slow"]["executionTimeMs"] == 118000
    assert "Excluded (failed): broken: RuntimeError: backend exploded; slow: timed out" in wire["votingRationale"]


def test_a_run_without_verdict_and_without_error_text_still_reports_an_error() -> None:
    wire = decodes(combine([AgentRunResult(model="mute", duration_ms=5)], FAILING, quorum=1,
                           inconclusive_policy="abort"))
    assert wire["modelResults"][0]["error"] == "no verdict"


@pytest.mark.parametrize(
    ("judge", "policy", "promote"),
    [
        (PASSING, "abort", True),  # the only model failed: the judge's own verdict stands
        (FAILING, "promote", False),  # a failing judge is never promoted, whatever the policy
        (UNSURE, "abort", False),  # inconclusive + failed model: the policy (default: do not promote)
        (UNSURE, "promote", True),
    ],
)
def test_a_failed_single_model_falls_back_to_the_judge_under_the_policy(
    judge: JudgeView, policy: str, promote: bool
) -> None:
    wire = decodes(combine([failed("only")], judge, quorum=1, inconclusive_policy=policy))
    assert wire["promote"] is promote
    assert wire["analysis"].startswith("Only 0 of 1 models answered (quorum 1). Excluded (failed): only: RuntimeError")
    assert f"Verdict from the deterministic judge ({judge.verdict}, score {judge.score})" in wire["analysis"]
    assert wire["rootCause"] == judge.root_cause
    assert wire["votingRationale"].endswith("The judge decided.")


@pytest.mark.parametrize(("judge", "policy"), [(PASSING, "abort"), (UNSURE, "promote"), (FAILING, "promote")])
def test_a_missed_quorum_of_several_voters_is_never_a_promote(judge: JudgeView, policy: str) -> None:
    runs = [vote("a", True, 95), failed("b")]
    wire = decodes(combine(runs, judge, quorum=2, inconclusive_policy=policy))
    assert wire["promote"] is False
    assert "Only 1 of 2 models answered (quorum 2)" in wire["analysis"]
    assert wire["rootCause"] == judge.root_cause
    assert len(wire["modelResults"]) == 2
    if judge is not FAILING:
        assert wire["votingRationale"].endswith("A missed quorum is not a promote, whatever the judge says.")


def test_all_models_failed_is_a_judge_answer_with_the_reason() -> None:
    wire = decodes(combine([failed("m1", "timed out after 3s (analysis deadline)")], FAILING, quorum=1,
                           inconclusive_policy="abort"))
    assert wire["promote"] is False
    assert wire["confidence"] == 92  # judge_confidence("abort", 8)
    assert "Only 0 of 1 models answered (quorum 1). Excluded (failed): m1: timed out after 3s" in wire["analysis"]


@pytest.mark.parametrize("judge", [FAILING, UNSURE])
def test_judge_gate_never_turns_a_failing_judge_into_a_promote(judge: JudgeView) -> None:
    runs = [vote("a", True, 99), vote("b", True, 97)]
    wire = decodes(combine(runs, judge, quorum=1, inconclusive_policy="promote"))
    assert wire["promote"] is False
    assert wire["analysis"].startswith("Guardrail: the model proposed promote")
    assert f"Judge gate: the judge said {judge.verdict}" in wire["votingRationale"]
    # The promoting models saw no fault, so the root cause and the fix are the judge's.
    assert wire["rootCause"] == judge.root_cause and wire["remediation"] == judge.remediation
    assert wire["confidence"] == (92 if judge is FAILING else 50)
    # The raw votes stay visible for the operator.
    assert [result["promote"] for result in wire["modelResults"]] == [True, True]


def test_models_may_turn_a_passing_judge_into_an_abort() -> None:
    wire = decodes(combine([vote("a", False, 75, cause="new panic in checkout")], PASSING, quorum=1,
                           inconclusive_policy="abort"))
    assert wire["promote"] is False and wire["rootCause"] == "new panic in checkout"
    assert "Judge gate" not in wire["votingRationale"]


@pytest.mark.parametrize(
    ("judge", "policy", "promote", "confidence"),
    [
        (PASSING, "abort", True, 96),
        (FAILING, "abort", False, 92),
        (FAILING, "promote", False, 92),
        (UNSURE, "abort", False, 50),
        (UNSURE, "promote", True, 50),
    ],
)
def test_judge_answer(judge: JudgeView, policy: str, promote: bool, confidence: int) -> None:
    wire = decodes(judge_answer(judge, "The model timed out.", policy))
    assert wire["promote"] is promote and wire["confidence"] == confidence
    assert wire["analysis"].startswith("The model timed out. Verdict from the deterministic judge")
    if judge is UNSURE:
        assert f"The judge was inconclusive; policy '{policy}' applies." in wire["analysis"]
    else:
        assert "policy" not in wire["analysis"]
    assert "modelResults" not in wire and "prLink" not in wire
