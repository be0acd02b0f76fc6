"""The app-wide ADK plugin that enforces the guardrails for every agent.

- Redaction: every text and tool result in a model request is redacted, and tool results are
  redacted before they are stored in the session or shown in chat.
- Judge gate: a verdict may only say promote when the deterministic judge said promote; the model
  may turn a passing judge into an abort, never the reverse. A verdict does not name its rollout,
  so the gate is conservative: it counts every `get_canary_evidence` result of the current turn
  (kept under an invocation-scoped `temp:` key, so nothing carries over to a later turn) plus the
  judge the plugin service seeds for its own run, and lets a promote through only when there is at
  least one judge and every one of them said promote.
- Budget: a cap on model calls per invocation (turn).
- Confirmation: write actions (GitHub, Jules) run only when the user's very next message is a clear
  confirmation ("yes", "go ahead", ...). Any other reply cancels the held-back write. There is no
  way to skip this from session state: the plugin service files issues in code, not through the
  agent.

Plugins (not agent callbacks) are used because the active agent changes after a transfer.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from google.adk.models import LlmRequest, LlmResponse
from google.adk.plugins.base_plugin import BasePlugin
from google.genai import types

from selfheal.verdict import parse_verdict
from tools.redaction import redact, redact_data

log = logging.getLogger(__name__)

# {"namespace", "rollout", "verdict", "score"}: seeded by the plugin service (selfheal.analysis) for
# the rollout it analyses, in the state of that very run. This plugin never writes it.
JUDGE_STATE = "selfheal:judge"
# {"invocation": id, "judges": {function call id: {"namespace", "rollout", "verdict", "score"}}}:
# every get_canary_evidence result of the current turn. ADK drops `temp:` keys after the invocation;
# the invocation id guards against a caller that reuses one session object across turns.
TURN_JUDGES_STATE = "temp:selfheal_judges"
# {"tool", "args", "requested_in": invocation id, "confirmed_in": invocation id | None}
PENDING_WRITE_STATE = "selfheal:pending_write"
REMEDIATION_STATE = "selfheal:remediation"  # the last remediation tool result (real URLs only)
MODEL_CALLS_STATE = "temp:selfheal_model_calls"

EVIDENCE_TOOL = "get_canary_evidence"
VERDICT_TOOL = "set_model_response"
WRITE_TOOLS = frozenset({"file_rollout_issue", "open_pull_request"})

# A clear confirmation is the whole message: "yes", "yes please", "Yes, go ahead!", "confirm",
# "go ahead", "do it", "proceed", "approved". "ok, but don't file" or "yes, but wait" are not.
_YES = r"(?:yes|y|yep|yeah|yup)"
_GO = r"(?:i confirm|confirm(?:ed)?|go ahead|do it|proceed|approve(?:d)?|file it|go for it)"
_CLEAR_CONFIRMATION = re.compile(
    rf"(?:{_YES}(?: please)?(?: {_GO})?(?: please)?|(?:please )?{_GO}(?: please)?)", re.I
)


def is_clear_confirmation(text: str | None) -> bool:
    """Whether a whole user message is an unambiguous yes (punctuation and case do not matter)."""
    if not text:
        return False
    words = re.sub(r"[\s.,!;:]+", " ", text).strip().lower()
    return bool(words) and len(words) <= 40 and _CLEAR_CONFIRMATION.fullmatch(words) is not None


def gate_verdict(verdict: dict[str, Any], judge: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the verdict, with promote forced to false unless the judge said promote."""
    return gate_on_judges(verdict, [judge] if judge is not None else [])


def gate_on_judges(verdict: dict[str, Any], judges: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Return the verdict, with promote forced to false unless every judge said promote.

    `judges` are all the judge results that may concern the verdict (a verdict does not say which
    rollout it is about); with none at all, a promote is refused too.
    """
    if not verdict.get("promote"):
        return verdict
    judges = [judge for judge in judges if isinstance(judge, Mapping)]
    failing = [judge for judge in judges if judge.get("verdict") != "promote"]
    if judges and not failing:
        return verdict
    if not judges:
        reason = "no judge verdict was collected for this rollout"
    else:
        reasons = list(dict.fromkeys(_judge_reason(judge) for judge in failing))
        reason = "; ".join(reasons)
        rollouts = {_where(judge) for judge in judges}
        if len(rollouts) > 1:
            reason += (f" (evidence for {len(rollouts)} rollouts was read in this turn, and a promote needs every"
                       " judge to pass)")
    gated = dict(verdict)
    gated["promote"] = False
    gated["analysis"] = f"Guardrail: the model proposed promote, but {reason}; the canary is not promoted. " + str(
        verdict.get("analysis", "")
    )
    return gated


def _where(judge: Mapping[str, Any]) -> str:
    namespace, rollout = judge.get("namespace"), judge.get("rollout")
    return f"{namespace}/{rollout}" if namespace and rollout else ""


def _judge_reason(judge: Mapping[str, Any]) -> str:
    where = f" for {_where(judge)}" if _where(judge) else ""
    verdict = judge.get("verdict")
    if verdict == "error":
        return f"the evidence{where} could not be collected ({judge.get('error') or 'error'})"
    if not verdict:
        return f"no judge verdict was collected{where or ' for this rollout'}"
    return f"the deterministic judge said '{verdict}' (score {judge.get('score')}){where}"


class GuardrailPlugin(BasePlugin):
    def __init__(self, max_model_calls: int = 25, name: str = "selfheal_guardrails"):
        super().__init__(name=name)
        self.max_model_calls = max_model_calls

    # --- model side ------------------------------------------------------------------------
    async def before_model_callback(self, *, callback_context, llm_request: LlmRequest) -> LlmResponse | None:
        # The user's message of this turn is visible here, before any tool of the turn runs.
        _settle_pending_write(callback_context)
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
                gated = gate_on_judges(verdict.model_dump(), turn_judges(callback_context))
                if gated["promote"] != verdict.promote:
                    part.text = json.dumps(gated)
                    changed = True
        return llm_response if changed else None

    # --- tool side -------------------------------------------------------------------------
    async def before_tool_callback(self, *, tool, tool_args: dict[str, Any], tool_context) -> dict | None:
        if tool.name not in WRITE_TOOLS:
            return None
        _settle_pending_write(tool_context)
        pending = tool_context.state.get(PENDING_WRITE_STATE)
        if (
            isinstance(pending, dict)
            and pending.get("tool") == tool.name
            and pending.get("args") == tool_args
            and pending.get("confirmed_in") == tool_context.invocation_id
        ):
            tool_context.state[PENDING_WRITE_STATE] = None
            return None
        tool_context.state[PENDING_WRITE_STATE] = {
            "tool": tool.name, "args": dict(tool_args), "requested_in": tool_context.invocation_id, "confirmed_in": None,
        }
        return {
            "confirmation_required": True,
            "message": (
                f"This is a write action: {tool.name} with {json.dumps(redact_data(tool_args), sort_keys=True)}. "
                "Reply 'yes' to go ahead, or anything else to cancel."
            ),
        }

    async def after_tool_callback(self, *, tool, tool_args: dict[str, Any], tool_context, result: Any) -> dict | None:
        if tool.name == VERDICT_TOOL and isinstance(result, dict) and "promote" in result:
            gated = gate_on_judges(result, turn_judges(tool_context))
            tool_context.actions.set_model_response = gated
            return gated
        if tool.name == EVIDENCE_TOOL:
            _record_judge(tool_context, tool_args, result)
        if tool.name in WRITE_TOOLS and isinstance(result, dict) and not result.get("confirmation_required"):
            tool_context.state[REMEDIATION_STATE] = {
                key: result.get(key) for key in ("action", "issue_url", "session_url", "pr_url", "outbox_path")
            }
        redacted = redact_data(result)
        return redacted if redacted != result else None


# --- judges ------------------------------------------------------------------------------------


def turn_judges(context) -> list[dict[str, Any]]:
    """Every judge that may concern a verdict given now: this turn's evidence results and the judge
    the plugin service seeded for this run."""
    judges: list[dict[str, Any]] = []
    record = context.state.get(TURN_JUDGES_STATE)
    if isinstance(record, Mapping) and record.get("invocation") == context.invocation_id:
        judges.extend(dict(judge) for judge in (record.get("judges") or {}).values() if isinstance(judge, Mapping))
    seeded = _seeded_judge(context)
    if seeded is not None:
        judges.append(seeded)
    return judges


def _record_judge(tool_context, tool_args: Mapping[str, Any], result: Any) -> None:
    """Keep one get_canary_evidence result for the rest of this turn (and only this turn)."""
    if isinstance(result, Mapping) and "verdict" in result:
        judge = {"verdict": result.get("verdict"), "score": result.get("score")}
    elif isinstance(result, Mapping) and isinstance(result.get("error"), Mapping):
        kind = result["error"].get("kind")
        if kind == "invalid_argument":
            return  # no rollout was named: nothing could be promoted on it
        # The rollout may exist (API unreachable, wrong selectors): no verdict means no promote.
        judge = {"verdict": "error", "error": kind, "score": None}
    else:
        judge = {"verdict": "error", "error": "unexpected result", "score": None}
    judge.update(namespace=tool_args.get("namespace"), rollout=tool_args.get("rollout"))
    invocation = tool_context.invocation_id
    record = tool_context.state.get(TURN_JUDGES_STATE)
    judges = dict(record.get("judges") or {}) if (
        isinstance(record, Mapping) and record.get("invocation") == invocation) else {}
    # Keyed by the call: parallel calls (merged by ADK) and repeated calls never overwrite each other.
    judges[tool_context.function_call_id or f"call-{len(judges) + 1}"] = judge
    tool_context.state[TURN_JUDGES_STATE] = {"invocation": invocation, "judges": judges}


def _seeded_judge(context) -> dict[str, Any] | None:
    """The judge the plugin service put into the state for this run, if it did so for this run.

    The service seeds it when it creates the session (then every event is of this invocation) or
    with the run's state_delta (carried by this invocation's user event). A value left from an
    earlier run (a chat in the same session in the web UI, or an older version that wrote it) is
    stale and ignored.
    """
    judge = context.state.get(JUDGE_STATE)
    if not isinstance(judge, Mapping):
        return None
    invocation = context.invocation_id
    events = list(getattr(context.session, "events", None) or [])
    seeded_now = any(
        event.invocation_id == invocation and event.actions is not None and JUDGE_STATE in (event.actions.state_delta or {})
        for event in events
    )
    if seeded_now or all(event.invocation_id == invocation for event in events):
        return dict(judge)
    return None


# --- confirmation ------------------------------------------------------------------------------


def _settle_pending_write(context) -> None:
    """At the first look in a new turn: a held-back write survives only a clear confirmation, and
    only for this turn."""
    pending = context.state.get(PENDING_WRITE_STATE)
    if not pending:
        return
    invocation = context.invocation_id
    if isinstance(pending, Mapping):
        if invocation in (pending.get("requested_in"), pending.get("confirmed_in")):
            return  # already settled in this turn
        if not pending.get("confirmed_in") and is_clear_confirmation(_user_text(context)):
            context.state[PENDING_WRITE_STATE] = {**pending, "confirmed_in": invocation}
            return
    log.info("pending write cancelled: the user's reply was not a clear confirmation")
    context.state[PENDING_WRITE_STATE] = None


def _user_text(context) -> str:
    content = context.user_content
    return " ".join(part.text for part in (content.parts or []) if part.text) if content else ""


def _redact_request(llm_request: LlmRequest) -> None:
    for content in llm_request.contents or []:
        for part in content.parts or []:
            if part.text:
                part.text = redact(part.text)
            if part.function_response and part.function_response.response is not None:
                part.function_response.response = redact_data(part.function_response.response)
            if part.function_call and part.function_call.args:
                part.function_call.args = redact_data(part.function_call.args)
