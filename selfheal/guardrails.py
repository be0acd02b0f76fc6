"""The app-wide ADK plugin that enforces the guardrails for every agent.

- Redaction: every text and tool result in a model request is redacted, and tool results are
  redacted before they are stored in the session or shown in chat.
- Judge gate: a verdict may only say promote when the deterministic judge said promote for that
  rollout; the model may turn a passing judge into an abort, never the reverse.
- Budget: a cap on model calls per invocation (turn).
- Confirmation: write actions (GitHub, Jules) run only after the user confirms in the next message,
  unless the caller is the automated plugin path, which sets `selfheal:auto_approve_writes`.

Plugins (not agent callbacks) are used because the active agent changes after a transfer.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from google.adk.models import LlmRequest, LlmResponse
from google.adk.plugins.base_plugin import BasePlugin
from google.genai import types

from selfheal.verdict import parse_verdict
from tools.redaction import redact, redact_data

log = logging.getLogger(__name__)

JUDGE_STATE = "selfheal:judge"  # {"namespace", "rollout", "verdict", "score"} of the last evidence
PENDING_WRITE_STATE = "selfheal:pending_write"
AUTO_APPROVE_STATE = "selfheal:auto_approve_writes"
REMEDIATION_STATE = "selfheal:remediation"  # the last remediation tool result (real URLs only)
MODEL_CALLS_STATE = "temp:selfheal_model_calls"

EVIDENCE_TOOL = "get_canary_evidence"
VERDICT_TOOL = "set_model_response"
WRITE_TOOLS = frozenset({"file_rollout_issue", "open_pull_request"})

_AFFIRMATIVE = re.compile(r"^\s*(yes|y|yep|yeah|confirm(ed)?|go ahead|do it|proceed|ok(ay)?|sure|approve[d]?)\b", re.I)


def gate_verdict(verdict: dict[str, Any], judge: dict[str, Any] | None) -> dict[str, Any]:
    """Return the verdict, with promote forced to false unless the judge said promote."""
    if not verdict.get("promote"):
        return verdict
    judge_verdict = (judge or {}).get("verdict")
    if judge_verdict == "promote":
        return verdict
    reason = (
        f"the deterministic judge said '{judge_verdict}' (score {judge.get('score')})"
        if judge_verdict
        else "no judge verdict was collected for this rollout"
    )
    gated = dict(verdict)
    gated["promote"] = False
    gated["analysis"] = f"Guardrail: the model proposed promote, but {reason}; the canary is not promoted. " + str(
        verdict.get("analysis", "")
    )
    return gated


class GuardrailPlugin(BasePlugin):
    def __init__(self, max_model_calls: int = 25, name: str = "selfheal_guardrails"):
        super().__init__(name=name)
        self.max_model_calls = max_model_calls

    # --- model side ------------------------------------------------------------------------
    async def before_model_callback(self, *, callback_context, llm_request: LlmRequest) -> LlmResponse | None:
        calls = int(callback_context.state.get(MODEL_CALLS_STATE, 0)) + 1
        callback_context.state[MODEL_CALLS_STATE] = calls
        if calls > self.max_model_calls:
            log.warning("model-call cap reached (%s) in agent %s", self.max_model_calls, callback_context.agent_name)
            message = f"Stopped: this turn reached the cap of {self.max_model_calls} model calls."
            if VERDICT_TOOL in (llm_request.tools_dict or {}):
                # An agent with a structured output must still end with a valid (and safe) verdict.
                part = types.Part(function_call=types.FunctionCall(name=VERDICT_TOOL, args={
                    "promote": False, "confidence": 0, "analysis": message + " No verdict was reached.",
                    "rootCause": "unknown: the investigation was stopped by the model-call cap",
                    "remediation": "Investigate manually or raise SELFHEAL_MAX_MODEL_CALLS.", "evidence": []}))
            else:
                part = types.Part(text=message)
            return LlmResponse(content=types.Content(role="model", parts=[part]), turn_complete=True)
        _redact_request(llm_request)
        return None

    async def after_model_callback(self, *, callback_context, llm_response: LlmResponse) -> LlmResponse | None:
        # Models with native structured output answer with JSON text instead of set_model_response.
        content = llm_response.content
        if not content or not content.parts or llm_response.partial:
            return None
        changed = False
        for part in content.parts:
            if part.text and '"promote"' in part.text and not part.thought:
                verdict = parse_verdict(part.text)
                if verdict is None:
                    continue
                gated = gate_verdict(verdict.model_dump(), callback_context.state.get(JUDGE_STATE))
                if gated["promote"] != verdict.promote:
                    part.text = json.dumps(gated)
                    changed = True
        return llm_response if changed else None

    # --- tool side -------------------------------------------------------------------------
    async def before_tool_callback(self, *, tool, tool_args: dict[str, Any], tool_context) -> dict | None:
        if tool.name not in WRITE_TOOLS or tool_context.state.get(AUTO_APPROVE_STATE):
            return None
        pending = tool_context.state.get(PENDING_WRITE_STATE)
        request = {"tool": tool.name, "args": tool_args}
        if pending == request and _user_confirmed(tool_context):
            tool_context.state[PENDING_WRITE_STATE] = None
            return None
        tool_context.state[PENDING_WRITE_STATE] = request
        return {
            "confirmation_required": True,
            "message": (
                f"This is a write action: {tool.name} with {json.dumps(redact_data(tool_args), sort_keys=True)}. "
                "Reply 'yes' to go ahead, or anything else to cancel."
            ),
        }

    async def after_tool_callback(self, *, tool, tool_args: dict[str, Any], tool_context, result: Any) -> dict | None:
        if tool.name == VERDICT_TOOL and isinstance(result, dict) and "promote" in result:
            gated = gate_verdict(result, tool_context.state.get(JUDGE_STATE))
            tool_context.actions.set_model_response = gated
            return gated
        if tool.name == EVIDENCE_TOOL and isinstance(result, dict) and "verdict" in result:
            tool_context.state[JUDGE_STATE] = {
                "namespace": tool_args.get("namespace"),
                "rollout": tool_args.get("rollout"),
                "verdict": result.get("verdict"),
                "score": result.get("score"),
            }
        if tool.name in WRITE_TOOLS and isinstance(result, dict) and not result.get("confirmation_required"):
            tool_context.state[REMEDIATION_STATE] = {
                key: result.get(key) for key in ("action", "issue_url", "session_url", "pr_url", "outbox_path")
            }
        redacted = redact_data(result)
        return redacted if redacted != result else None


def _user_confirmed(tool_context) -> bool:
    content = tool_context.user_content
    text = " ".join(part.text for part in (content.parts or []) if part.text) if content else ""
    return bool(_AFFIRMATIVE.match(text))


def _redact_request(llm_request: LlmRequest) -> None:
    for content in llm_request.contents or []:
        for part in content.parts or []:
            if part.text:
                part.text = redact(part.text)
            if part.function_response and part.function_response.response is not None:
                part.function_response.response = redact_data(part.function_response.response)
            if part.function_call and part.function_call.args:
                part.function_call.args = redact_data(part.function_call.args)
