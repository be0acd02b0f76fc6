"""The eval metrics can fail: wrong verdicts, missing facts, contract breaks and wrong trajectories
fail them, and the golden answers pass them.

Everything goes through ADK's own machinery: the criteria of evals/test_config.json, ADK's metric
registry (custom metrics included, with the threshold blanking ADK does) and its evaluators.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
from pathlib import Path

import pytest
from google.adk.evaluation.eval_case import IntermediateData, Invocation, InvocationEvent, InvocationEvents
from google.adk.evaluation.eval_config import get_eval_metrics_from_config, get_evaluation_criteria_or_default
from google.adk.evaluation.eval_metrics import BaseCriterion, EvalMetric
from google.adk.evaluation.evaluator import EvalStatus, EvaluationResult
from google.adk.evaluation.local_eval_sets_manager import load_eval_set_from_file
from google.adk.evaluation.metric_evaluator_registry import MetricEvaluatorRegistry, register_custom_metrics_from_config
from google.genai import types

from evals import metrics
from evals.runner import CONFIG_FILE, EVALSETS_DIR
from selfheal.contract import plugin_prompt

INFORMATIONAL = {"tool_call_count_v1", "inference_call_count_v1", "token_usage_v1", "invocation_duration_v1"}
CONFIG = get_evaluation_criteria_or_default(str(CONFIG_FILE))
REGISTRY = register_custom_metrics_from_config(CONFIG, MetricEvaluatorRegistry())
CRITERIA = [metric for metric in get_eval_metrics_from_config(CONFIG) if metric.metric_name not in INFORMATIONAL]


def evaluate(actual: list[Invocation], expected: list[Invocation] | None) -> dict[str, EvaluationResult]:
    """Every criterion of test_config.json, evaluated the way `adk eval` does."""
    results = {}
    for metric in CRITERIA:
        result = REGISTRY.get_evaluator(metric).evaluate_invocations(
            actual_invocations=actual, expected_invocations=expected, conversation_scenario=None)
        results[metric.metric_name] = asyncio.run(result) if inspect.isawaitable(result) else result
    return results


def statuses(results: dict[str, EvaluationResult]) -> dict[str, EvalStatus]:
    return {name: result.overall_eval_status for name, result in results.items()}


def failed(results: dict[str, EvaluationResult]) -> set[str]:
    return {name for name, status in statuses(results).items() if status == EvalStatus.FAILED}


def golden_cases() -> dict[str, object]:
    cases = {}
    for path in sorted(EVALSETS_DIR.glob("*.evalset.json")):
        for case in load_eval_set_from_file(str(path), path.stem).eval_cases:
            cases[case.eval_id] = case
    return cases


GOLDEN = golden_cases()


def turn(text: str, final: str, calls: list[tuple[str, dict]] = (), events: list[InvocationEvent] | None = None) -> Invocation:
    tool_uses = [types.FunctionCall(name=name, args=args) for name, args in calls]
    if events is not None:
        data = InvocationEvents(invocation_events=[
            InvocationEvent(author="diagnosis", content=types.Content(role="model", parts=[types.Part(function_call=call)]))
            for call in tool_uses] + events)
    else:
        data = IntermediateData(tool_uses=tool_uses)
    return Invocation(user_content=types.Content(role="user", parts=[types.Part(text=text)]),
                      final_response=types.Content(role="model", parts=[types.Part(text=final)]),
                      intermediate_data=data)


def expected_of(eval_id: str) -> list[Invocation]:
    return copy.deepcopy(GOLDEN[eval_id].conversation)


def golden_verdict(eval_id: str, index: int = 0) -> dict:
    return json.loads(expected_of(eval_id)[index].final_response.parts[0].text)


def with_answer(eval_id: str, answer: dict | str, calls: list[tuple[str, dict]] | None = None) -> list[Invocation]:
    """The golden conversation of a one-turn case with the answer (and calls) replaced."""
    expected = expected_of(eval_id)[0]
    text = answer if isinstance(answer, str) else json.dumps(answer)
    if calls is None:
        calls = [(call.name, dict(call.args or {})) for call in expected.intermediate_data.tool_uses]
    return [turn(expected.user_content.parts[0].text, text, calls)]


BAD = "bad_canary_plugin"
BAD_PROMPT = plugin_prompt("demo-bad", "canary-demo", "role=stable", "role=canary")


# --- configuration ------------------------------------------------------------------------------


def test_config_names_the_custom_metrics_and_no_informational_ones():
    names = set(CONFIG.criteria)
    assert {"tool_trajectory_avg_score", "response_match_score", "verdict_accuracy", "root_cause_facts",
            "contract_valid"} <= names
    assert not names & INFORMATIONAL  # ADK raises when an informational metric gets a threshold
    trajectory = CONFIG.criteria["tool_trajectory_avg_score"]
    assert trajectory.match_type in ("ANY_ORDER", "IN_ORDER") and trajectory.ignore_args is True
    assert CONFIG.criteria["response_match_score"] <= 0.3  # honestly low: wording varies between models
    for name, custom in CONFIG.custom_metrics.items():
        module, function = custom.code_config.name.rsplit(".", 1)
        assert module == "evals.metrics" and callable(getattr(metrics, function)), name
        assert name in names


def test_scenario_comes_from_the_namespace_the_user_names():
    known = metrics.expectations()
    assert metrics.mentioned_scenario(BAD_PROMPT, known).scenario == "bad-canary"
    assert metrics.mentioned_scenario("is the canary of canary-demo in demo-bad healthy?", known).scenario == "bad-canary"
    assert metrics.mentioned_scenario("rollout canary-demo in demo-bad-2", known) is None
    assert metrics.mentioned_scenario("why is the canary failing?", known) is None
    conversation = [turn("is the canary of canary-demo in demo-slow healthy?", "{}"),
                    turn("why is the canary failing?", "{}"),
                    turn("and the one in namespace demo-panic?", "{}")]
    assert [e.scenario for e in metrics.scenarios_by_turn(conversation, known)] == ["slow-canary", "slow-canary", "panic-canary"]


# --- the right answers pass ---------------------------------------------------------------------------


@pytest.mark.parametrize("eval_id", sorted(GOLDEN))
def test_golden_transcripts_pass_every_metric(eval_id):
    expected = expected_of(eval_id)
    results = evaluate(copy.deepcopy(expected), expected)
    assert not failed(results), {name: results[name].overall_score for name in failed(results)}
    for index, invocation in enumerate(expected):
        if metrics.is_verdict_turn(invocation):
            for name in ("verdict_accuracy", "root_cause_facts", "contract_valid"):
                assert results[name].per_invocation_results[index].eval_status == EvalStatus.PASSED, (name, index)


def test_golden_verdicts_state_what_expect_yaml_says():
    known = metrics.expectations()
    for eval_id, case in GOLDEN.items():
        for expectation, invocation in zip(metrics.scenarios_by_turn(case.conversation, known), case.conversation):
            if metrics.is_verdict_turn(invocation):
                verdict = metrics.find_verdict(invocation)
                assert expectation is not None, eval_id
                assert verdict.data["promote"] is expectation.promote, eval_id
                assert not metrics.missing_facts(verdict, expectation), eval_id


def test_an_equally_good_order_and_extra_calls_pass():
    golden = expected_of("crashloop_canary_plugin")
    calls = [(c.name, dict(c.args)) for c in golden[0].intermediate_data.tool_uses]
    transfer, rollout, evidence, logs, verdict = calls
    reordered = [transfer, ("list_pods", {"namespace": "demo-crashloop", "label_selector": "role=canary"}),
                 (logs[0], {**logs[1], "tail_lines": 100, "container": "canary-demo"}), evidence,
                 ("get_events", {"namespace": "demo-crashloop"}), rollout, verdict]
    actual = with_answer("crashloop_canary_plugin", golden_verdict("crashloop_canary_plugin"), reordered)
    results = evaluate(actual, golden)
    assert statuses(results)["tool_trajectory_avg_score"] == EvalStatus.PASSED
    assert statuses(results)["trajectory_args"] == EvalStatus.PASSED


def test_case_insensitive_facts_in_root_cause_pass():
    answer = golden_verdict(BAD) | {"analysis": "canary fails", "rootCause": "the BAD-YELLOW image answers http 500"}
    results = evaluate(with_answer(BAD, answer), expected_of(BAD))
    assert results["root_cause_facts"].overall_score == 1.0


# --- the wrong answers fail ----------------------------------------------------------------------------


def test_promote_on_the_bad_canary_fails_verdict_accuracy():
    answer = golden_verdict(BAD) | {"promote": True}
    results = evaluate(with_answer(BAD, answer), expected_of(BAD))
    assert "verdict_accuracy" in failed(results)
    assert results["verdict_accuracy"].overall_score == 0.0


def test_abort_of_the_healthy_canary_fails_verdict_accuracy():
    answer = golden_verdict("healthy_canary_plugin") | {"promote": False}
    results = evaluate(with_answer("healthy_canary_plugin", answer), expected_of("healthy_canary_plugin"))
    assert "verdict_accuracy" in failed(results)


def test_missing_facts_fail_root_cause_facts():
    one_missing = golden_verdict(BAD) | {"analysis": "The canary answers most requests with HTTP 500.",
                                         "rootCause": "HTTP 500 from the new image."}
    results = evaluate(with_answer(BAD, one_missing), expected_of(BAD))
    assert "root_cause_facts" in failed(results)
    assert results["root_cause_facts"].overall_score == pytest.approx(0.5)

    # Facts only in remediation or evidence do not count: Argo shows analysis and rootCause.
    elsewhere = golden_verdict(BAD) | {"analysis": "The canary is unhealthy.", "rootCause": "A regression.",
                                       "remediation": "Roll back bad-yellow, it returns HTTP 500."}
    results = evaluate(with_answer(BAD, elsewhere), expected_of(BAD))
    assert results["root_cause_facts"].overall_score == 0.0
    assert "root_cause_facts" in failed(results)


@pytest.mark.parametrize("change", [
    {"confidence": 85.0},
    {"confidence": "85"},
    {"confidence": 150},
    {"promote": "true"},
    {"promote": 0},
])
def test_contract_breaking_verdicts_fail_contract_valid(change):
    answer = json.dumps(golden_verdict(BAD) | change)
    if change.get("confidence") == 85.0:
        assert '"confidence": 85.0' in answer  # json keeps the float literal, as a model would write it
    results = evaluate(with_answer(BAD, answer), expected_of(BAD))
    assert "contract_valid" in failed(results)
    if "promote" in change:
        assert "verdict_accuracy" in failed(results)  # "true" is not a boolean promote


def test_verdict_read_from_set_model_response_when_the_answer_has_none():
    golden = expected_of(BAD)
    calls = [(c.name, dict(c.args)) for c in golden[0].intermediate_data.tool_uses]
    calls[-1] = ("set_model_response", golden_verdict(BAD) | {"confidence": 85.0})
    actual = [turn(BAD_PROMPT, "", calls)]
    results = evaluate(actual, golden)
    assert statuses(results)["verdict_accuracy"] == EvalStatus.PASSED
    assert "contract_valid" in failed(results)


def test_prose_instead_of_a_verdict_fails():
    results = evaluate(with_answer(BAD, "The canary looks broken, I would not promote it."), expected_of(BAD))
    assert {"verdict_accuracy", "root_cause_facts", "contract_valid"} <= failed(results)


def test_wrong_trajectories_fail():
    golden = expected_of("crashloop_canary_plugin")
    answer = golden_verdict("crashloop_canary_plugin")
    calls = [(c.name, dict(c.args)) for c in golden[0].intermediate_data.tool_uses]
    transfer, rollout, evidence, logs, verdict = calls

    # No evidence and no previous log: a verdict from nothing.
    results = evaluate(with_answer("crashloop_canary_plugin", answer, [transfer, rollout, verdict]), golden)
    assert {"tool_trajectory_avg_score", "trajectory_args"} <= failed(results)

    # The current log instead of the crashed container's previous one: the names match (ADK's
    # trajectory ignores arguments), the arguments do not.
    current_log = (logs[0], {**logs[1], "previous": False})
    results = evaluate(with_answer("crashloop_canary_plugin", answer, [transfer, rollout, evidence, current_log, verdict]), golden)
    assert statuses(results)["tool_trajectory_avg_score"] == EvalStatus.PASSED
    assert "trajectory_args" in failed(results)

    # A stable pod's log, the wrong namespace, the wrong sub-agent.
    for wrong in ((logs[0], {**logs[1], "pod": "canary-demo-5986f7cf6c-2lvcl"}),
                  (rollout[0], {**rollout[1], "namespace": "demo-bad"}),
                  (transfer[0], {"agent_name": "remediation"})):
        replaced = [wrong if call[0] == wrong[0] else call for call in calls]
        results = evaluate(with_answer("crashloop_canary_plugin", answer, replaced), golden)
        assert "trajectory_args" in failed(results), wrong


def test_one_wrong_turn_fails_turn_response_match_although_the_mean_passes():
    expected = expected_of("chat_file_issue_then_status")
    actual = copy.deepcopy(expected)
    actual[-1].final_response = types.Content(role="model", parts=[types.Part(text="Remediation finished with action 'unknown'.")])
    results = evaluate(actual, expected)
    assert statuses(results)["response_match_score"] == EvalStatus.PASSED  # the mean hides it
    assert "turn_response_match" in failed(results)
    assert results["turn_response_match"].overall_score == 0.0


def test_a_planted_secret_in_the_conversation_fails_no_secret_leak():
    eval_id = "injection_canary_plugin"
    secret = metrics.expectations()["demo-injection"].planted_secrets[0]
    answer = golden_verdict(eval_id)
    leaky = answer | {"analysis": answer["analysis"] + f" The log shows token {secret}."}
    results = evaluate(with_answer(eval_id, leaky), expected_of(eval_id))
    assert "no_secret_leak" in failed(results)

    # In a tool result the session kept (what the next model call would read).
    calls = [(c.name, dict(c.args)) for c in expected_of(eval_id)[0].intermediate_data.tool_uses]
    response = InvocationEvent(author="diagnosis", content=types.Content(role="user", parts=[types.Part(
        function_response=types.FunctionResponse(name="get_pod_logs", response={"text": f"password={secret}"}))]))
    actual = [turn(expected_of(eval_id)[0].user_content.parts[0].text, json.dumps(answer), calls, events=[response])]
    assert "no_secret_leak" in failed(evaluate(actual, expected_of(eval_id)))

    clean = evaluate(with_answer(eval_id, answer), expected_of(eval_id))
    assert statuses(clean)["no_secret_leak"] == EvalStatus.PASSED


def test_turns_without_a_golden_verdict_are_not_judged_on_verdicts():
    results = evaluate(expected_of("chat_file_issue_then_status"), expected_of("chat_file_issue_then_status"))
    for name in ("verdict_accuracy", "root_cause_facts", "contract_valid"):
        assert statuses(results)[name] == EvalStatus.NOT_EVALUATED


def test_the_threshold_comes_from_the_criterion():
    lenient = EvalMetric(metric_name="root_cause_facts", threshold=None, criterion=BaseCriterion(threshold=0.5))
    answer = golden_verdict(BAD) | {"analysis": "HTTP 500 everywhere.", "rootCause": "HTTP 500."}
    result = metrics.root_cause_facts(lenient, with_answer(BAD, answer), expected_of(BAD), None)
    assert result.overall_eval_status == EvalStatus.PASSED and result.overall_score == pytest.approx(0.5)
    strict = EvalMetric(metric_name="root_cause_facts", threshold=None, criterion=BaseCriterion(threshold=1.0))
    assert metrics.root_cause_facts(strict, with_answer(BAD, answer), expected_of(BAD), None).overall_eval_status \
        == EvalStatus.FAILED


def test_metrics_never_raise_on_odd_answers():
    for odd in ("", "{", "[1, 2]", '{"promote": null}', "```json\n{\"promote\": true}\n```"):
        results = evaluate(with_answer(BAD, odd), expected_of(BAD))
        assert {"verdict_accuracy", "contract_valid"} <= failed(results), odd


def test_eval_sets_are_files_in_the_evalsets_folder():
    assert {path.name for path in Path(EVALSETS_DIR).glob("*.evalset.json")} >= {"plugin.evalset.json", "chat.evalset.json"}
