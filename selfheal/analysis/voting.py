"""Combining model verdicts with the judge into the plugin's answer.

Rules (each one protects a rollout):
- failed models are excluded from the vote and reported with `error`;
- votes are weighted by confidence; promote wins only with strictly more weight (a tie aborts);
- fewer valid votes than the quorum: with a single required voter (the default) the judge decides,
  under the failure policy; when several voters are required (SELFHEAL_QUORUM > 1), never a promote;
- the judge gate applies last: a failing or inconclusive judge is never turned into a promote.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfheal.analysis.agent_run import AgentRunResult
from selfheal.contract import AnalyzeResponse, ModelResult
from selfheal.guardrails import gate_verdict
from tools.evidence import judge_confidence


@dataclass
class JudgeView:
    """What the vote needs from the judge."""

    verdict: str  # promote | abort | inconclusive
    score: int
    summary: str
    root_cause: str
    remediation: str


def judge_answer(judge: JudgeView, reason: str, inconclusive_policy: str) -> AnalyzeResponse:
    """The answer from the judge alone (no usable model verdict)."""
    promote = judge.verdict == "promote" or (judge.verdict == "inconclusive" and inconclusive_policy == "promote")
    policy_note = ""
    if judge.verdict == "inconclusive":
        policy_note = f" The judge was inconclusive; policy '{inconclusive_policy}' applies."
    return AnalyzeResponse(
        analysis=f"{reason} Verdict from the deterministic judge ({judge.verdict}, score {judge.score}).{policy_note} {judge.summary}".strip(),
        rootCause=judge.root_cause,
        remediation=judge.remediation,
        promote=promote,
        confidence=judge_confidence(judge.verdict, judge.score),
    )


def _model_result(run: AgentRunResult) -> ModelResult:
    if run.verdict is None:
        return ModelResult(modelName=run.model, executionTimeMs=run.duration_ms, error=run.error or "no verdict")
    return ModelResult(
        modelName=run.model,
        analysis=run.verdict.analysis,
        rootCause=run.verdict.rootCause,
        remediation=run.verdict.remediation,
        promote=run.verdict.promote,
        confidence=run.verdict.confidence,
        executionTimeMs=run.duration_ms,
    )


def combine(
    runs: list[AgentRunResult], judge: JudgeView, quorum: int, inconclusive_policy: str
) -> AnalyzeResponse:
    """The plugin answer from all model runs and the judge."""
    results = [_model_result(run) for run in runs]
    valid = [(run, result) for run, result in zip(runs, results) if result.error is None]
    failed = [result for result in results if result.error is not None]
    failed_note = (
        " Excluded (failed): " + "; ".join(f"{r.modelName}: {r.error}" for r in failed) + "." if failed else ""
    )

    if len(valid) < quorum:
        reason = f"Only {len(valid)} of {len(runs)} models answered (quorum {quorum}).{failed_note}"
        answer = judge_answer(judge, reason, inconclusive_policy)
        answer.modelResults = results
        if quorum > 1 and answer.promote:
            # Several voters were required and too few answered: that is never a promote.
            answer.promote = False
            answer.analysis = f"Not promoted: the voting quorum was missed. {answer.analysis}"
            answer.votingRationale = reason + " A missed quorum is not a promote, whatever the judge says."
        else:
            answer.votingRationale = reason + " The judge decided."
        return answer

    promote_weight = sum(result.confidence for _, result in valid if result.promote)
    abort_weight = sum(result.confidence for _, result in valid if not result.promote)
    promote = promote_weight > abort_weight
    side = [result for _, result in valid if result.promote == promote]
    if side:
        # The winning side's own reasoning, from its most confident model.
        lead = max(side, key=lambda result: result.confidence)
        confidence = round(sum(result.confidence for result in side) / len(side))
    else:
        # Only promote votes, all with confidence 0: a 0-0 tie, which is not a promote.
        lead = max((result for _, result in valid), key=lambda result: result.confidence)
        confidence = 0
    rationale = (
        f"{len(valid)} valid vote(s): promote weight {promote_weight}, abort weight {abort_weight}"
        f" -> {'promote' if promote else 'abort'}"
        + (" (tie: not promoted)" if promote_weight == abort_weight and valid else "")
        + "."
        + failed_note
    )
    verdict = {
        "promote": promote,
        "confidence": confidence,
        "analysis": lead.analysis,
        "rootCause": lead.rootCause,
        "remediation": lead.remediation,
    }
    gated = gate_verdict(verdict, {"verdict": judge.verdict, "score": judge.score})
    if gated["promote"] != promote:
        rationale += f" Judge gate: the judge said {judge.verdict}, so the canary is not promoted."
        gated["confidence"] = judge_confidence(judge.verdict, judge.score)
        # The promoting models found no fault; the failure is the one the judge measured.
        gated["rootCause"], gated["remediation"] = judge.root_cause, judge.remediation
    return AnalyzeResponse(
        analysis=gated["analysis"],
        rootCause=gated["rootCause"] or judge.root_cause,
        remediation=gated["remediation"] or judge.remediation,
        promote=gated["promote"],
        confidence=gated["confidence"],
        modelResults=results,
        votingRationale=rationale,
    )
