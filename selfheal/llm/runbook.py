"""The offline `runbook` model: a deterministic ADK `BaseLlm` that follows the investigation runbook.

It drives the same agents, tools and transfers a real model would, with no key and no network. It
decides only from what the tools return in the conversation (it never reads scenario files), and
it says plainly what it cannot do without a real model. Select it with `SELFHEAL_MODEL=runbook`;
it is also chosen automatically when no model credentials exist.
"""

from __future__ import annotations

import json
from typing import Any, AsyncGenerator

from google.adk.models import BaseLlm, LlmRequest, LlmResponse
from google.adk.models.base_llm import LlmCapabilities
from google.genai import types

from selfheal.llm.conversation import Conversation
from selfheal.llm import intents
from tools.evidence import explain_evidence

# Tool names the runbook knows how to use (defined in tools/ and wired in agents/rollout_doctor).
EVIDENCE = "get_canary_evidence"
FIND = "find_rollouts"
ROLLOUT = "get_rollout"
LOGS = "get_pod_logs"
DESCRIBE = "describe_pod"
FILE_ISSUE = "file_rollout_issue"
REMEDIATION_STATUS = "get_remediation_status"
TRANSFER = "transfer_to_agent"
RESPOND = "set_model_response"

MAX_CALLS_PER_TURN = 8
# What the remediation agent answers: filing, its status, and yes/no to a held-back write.
REMEDIATION_INTENTS = ("remediate", "confirm", "decline", "remediation_status")


class RunbookLlm(BaseLlm):
    """Deterministic model that runs the SRE runbook over real tool results."""

    model: str = "runbook"

    @classmethod
    def supported_models(cls) -> list[str]:
        return [r"runbook(-[\w.-]+)?"]

    @property
    def capabilities(self) -> LlmCapabilities:
        # Structured verdicts go through ADK's set_model_response tool, like a model without
        # native schema+tools support.
        return LlmCapabilities(output_schema_and_tools=False)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        convo = Conversation.from_request(llm_request)
        part = _next_step(convo, llm_request)
        yield LlmResponse(
            content=types.Content(role="model", parts=[part]),
            usage_metadata=_usage(llm_request, part),
            turn_complete=True,
            model_version=self.model,
        )


def _next_step(convo: Conversation, request: LlmRequest) -> types.Part:
    if EVIDENCE in convo.tools:
        return _diagnosis_step(convo)
    if FILE_ISSUE in convo.tools:
        return _remediation_step(convo, request)
    return _orchestrator_step(convo)


# --- orchestrator ---------------------------------------------------------------------------


def _orchestrator_step(convo: Conversation) -> types.Part:
    intent = intents.classify(convo.question)
    if TRANSFER in convo.tools and not convo.called(TRANSFER):
        if intent in REMEDIATION_INTENTS:
            return _call(TRANSFER, agent_name="remediation")
        if intent == "diagnose":
            return _call(TRANSFER, agent_name="diagnosis")
    return _text(intents.HELP_TEXT)


# --- diagnosis ------------------------------------------------------------------------------


def _diagnosis_step(convo: Conversation) -> types.Part:
    intent = intents.classify(convo.question)
    if intent in REMEDIATION_INTENTS and TRANSFER in convo.tools and not convo.turn_calls:
        return _call(TRANSFER, agent_name="remediation")
    if len(convo.turn_calls) >= MAX_CALLS_PER_TURN:
        return _finish(convo, _verdict_without_evidence("The investigation used its tool-call budget."))

    target = intents.resolve_target(convo)
    if not target.rollout or not target.namespace:
        found = convo.last_result(FIND)
        if found is None and FIND in convo.tools:
            return _call(FIND, name=target.rollout or "", namespace=target.namespace or "")
        match = intents.single_rollout(found, target)
        if match is None:
            return _finish(convo, _verdict_without_evidence(intents.ambiguity_message(found, target)))
        target.namespace, target.rollout = match

    if ROLLOUT in convo.tools and not convo.called(ROLLOUT):
        return _call(ROLLOUT, namespace=target.namespace, name=target.rollout)
    if not convo.called(EVIDENCE):
        return _call(
            EVIDENCE,
            namespace=target.namespace,
            rollout=target.rollout,
            stable_selector=target.stable,
            canary_selector=target.canary,
        )
    evidence = convo.last_result(EVIDENCE)
    if not isinstance(evidence, dict) or "error" in evidence:
        message = (evidence or {}).get("error", {}).get("message", "no result") if isinstance(evidence, dict) else "no result"
        return _finish(convo, _verdict_without_evidence(f"The evidence could not be collected: {message}."))

    # A careful SRE reads the crashed container's previous log and the pod's description.
    crashed = intents.crashed_canary_pod(evidence)
    if crashed and LOGS in convo.tools and not convo.called(LOGS):
        return _call(LOGS, namespace=target.namespace, pod=crashed, previous=True, tail_lines=50)
    stuck = intents.stuck_canary_pod(evidence)
    if stuck and DESCRIBE in convo.tools and not convo.called(DESCRIBE):
        return _call(DESCRIBE, namespace=target.namespace, name=stuck)

    verdict = explain_evidence(evidence)
    previous_log = convo.last_result(LOGS)
    if isinstance(previous_log, dict) and crashed:
        last_error = intents.last_error_line(previous_log)
        if last_error:
            verdict["evidence"].append({"fact": f"Previous log of {crashed} ends with: {last_error}", "source": "logs"})
    return _finish(convo, verdict)


def _finish(convo: Conversation, verdict: dict[str, Any]) -> types.Part:
    if RESPOND in convo.tools:
        return _call(RESPOND, **verdict)
    return _text(json.dumps(verdict))


def _verdict_without_evidence(reason: str) -> dict[str, Any]:
    return {
        "promote": False,
        "confidence": 0,
        "analysis": f"{reason} Without evidence the canary is not promoted.",
        "rootCause": "unknown: no evidence was collected",
        "remediation": "Name the rollout and namespace (for example 'rollout canary-demo in namespace demo'), "
        "or check that the Kubernetes API is reachable.",
        "evidence": [],
    }


# --- remediation ----------------------------------------------------------------------------


def _remediation_step(convo: Conversation, request: LlmRequest) -> types.Part:
    intent = intents.classify(convo.question)
    if intent == "diagnose" and TRANSFER in convo.tools and not convo.turn_calls:
        return _call(TRANSFER, agent_name="diagnosis")

    filed = convo.last_result(FILE_ISSUE)
    if filed is not None:
        return _text(intents.describe_remediation(filed))
    status = convo.last_result(REMEDIATION_STATUS)
    if status is not None:
        return _text(intents.describe_remediation(status))

    # Yes or no to the write held back in the previous turn; the guardrail accepts a confirmation
    # only in the very next message, so an older request is not waiting any more.
    waiting = intents.awaiting_confirmation(request, FILE_ISSUE)
    if intent == "confirm":
        if waiting is None:
            return _text("There is nothing waiting for confirmation. Ask me to file an issue for a rollout first.")
        return _call(FILE_ISSUE, **waiting)
    if intent == "decline":
        if waiting is None:
            return _text("Nothing was waiting for confirmation, and nothing was written.")
        return _text(
            f"Cancelled: I did not file the issue for {waiting.get('namespace')}/{waiting.get('rollout')}; "
            "nothing was written. Ask again whenever you want it filed."
        )

    target = intents.resolve_target(convo)
    if intent == "other" and not intents.resolve_target(Conversation(user_messages=[convo.question])).repo_url:
        # Not a filing request (and not the repository I asked for): never file on an unrelated reply.
        return _text(
            "I file the fix for a failed canary (a GitHub issue for Jules) and report what was filed. "
            "Tell me the rollout, namespace and repository, for example: file an issue for rollout "
            "canary-demo in namespace demo, repo https://github.com/org/app."
        )
    if not target.rollout or not target.namespace:
        return _text(
            "Which rollout should the fix be filed for? Tell me the rollout and namespace, "
            "for example: file an issue for rollout canary-demo in namespace demo, repo https://github.com/org/app."
        )
    if intent == "remediation_status" and REMEDIATION_STATUS in convo.tools:
        return _call(REMEDIATION_STATUS, namespace=target.namespace, rollout=target.rollout)
    if not target.repo_url:
        return _text(
            f"Which GitHub repository holds the code of {target.namespace}/{target.rollout}? "
            "Give me its URL (for example https://github.com/org/app) and I will prepare the issue."
        )
    args: dict[str, Any] = {
        "namespace": target.namespace,
        "rollout": target.rollout,
        "repo_url": target.repo_url,
        "stable_selector": target.stable,
        "canary_selector": target.canary,
    }
    if target.base_branch:
        args["base_branch"] = target.base_branch
    return _call(FILE_ISSUE, **args)


# --- helpers --------------------------------------------------------------------------------


def _call(tool: str, /, **args: Any) -> types.Part:
    return types.Part(function_call=types.FunctionCall(name=tool, args=args))


def _text(text: str) -> types.Part:
    return types.Part(text=text)


def _usage(request: LlmRequest, part: types.Part) -> types.GenerateContentResponseUsageMetadata:
    # Rough token counts (4 characters per token) so cost metrics and evals have real numbers.
    prompt_chars = sum(len(str(p.to_json_dict())) for c in request.contents or [] for p in c.parts or [])
    output_chars = len(str(part.to_json_dict()))
    prompt, output = max(1, prompt_chars // 4), max(1, output_chars // 4)
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt, candidates_token_count=output, total_token_count=prompt + output
    )
