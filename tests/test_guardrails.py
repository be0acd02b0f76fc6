"""The guardrail plugin: which judge a promote needs, and when a write may run.

Unit level: the plugin's callbacks with small stand-ins for ADK's callback and tool contexts.
Runner level: ADK's Runner over the rollout_doctor app on the simulator, driven by a scripted model
that does what the user literally says (so the guardrail, not the model, has to keep things safe),
and by the offline runbook model. Also: the remediation tools keep the event loop free, and
`file_rollout_issue` refuses what it cannot file properly.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncGenerator

import pytest
from google.adk.events import Event, EventActions
from google.adk.models import BaseLlm, LlmRequest, LlmResponse, LLMRegistry
from google.adk.models.base_llm import LlmCapabilities
from google.adk.runners import Runner
from google.adk.sessions import DatabaseSessionService, InMemorySessionService
from google.genai import types

from selfheal.config import get_settings
from selfheal.guardrails import (
    JUDGE_STATE,
    PENDING_WRITE_STATE,
    TURN_JUDGES_STATE,
    GuardrailPlugin,
    gate_on_judges,
    gate_verdict,
    is_clear_confirmation,
)
from selfheal.llm.conversation import Conversation
from support.chat import Chat
from tools import remediation_agent

BAD = ("demo-bad", "canary-demo")
HEALTHY = ("demo-healthy", "canary-demo")
REPO = "https://github.com/acme/shop"
PROMOTE = {"promote": True, "confidence": 90, "analysis": "ship it", "rootCause": "none", "remediation": "promote",
           "evidence": []}


# --- stand-ins for ADK's contexts ------------------------------------------------------------------


class FakeContext:
    """What the plugin reads from ADK's callback and tool contexts, for one invocation (turn)."""

    def __init__(self, state: dict, invocation: str, user_text: str = "", events: list[Event] | None = None,
                 call_id: str | None = None) -> None:
        self.state = state
        self.invocation_id = invocation
        self.user_content = types.Content(role="user", parts=[types.Part(text=user_text)])
        self.session = SimpleNamespace(events=events if events is not None else [_user_event(invocation)])
        self.function_call_id = call_id
        self.actions = SimpleNamespace(set_model_response=None)
        self.agent_name = "diagnosis"


def _user_event(invocation: str, state_delta: dict | None = None) -> Event:
    return Event(invocation_id=invocation, author="user", actions=EventActions(state_delta=state_delta or {}))


def _tool(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name)


async def _evidence(plugin: GuardrailPlugin, ctx: FakeContext, target: tuple[str, str], verdict: str, score: int = 50,
                    call_id: str | None = None) -> None:
    ctx.function_call_id = call_id or f"call-{target[0]}-{verdict}"
    await plugin.after_tool_callback(tool=_tool("get_canary_evidence"),
                                     tool_args={"namespace": target[0], "rollout": target[1]},
                                     tool_context=ctx, result={"verdict": verdict, "score": score})


async def _verdict(plugin: GuardrailPlugin, ctx: FakeContext) -> dict:
    gated = await plugin.after_tool_callback(tool=_tool("set_model_response"), tool_args=dict(PROMOTE),
                                             tool_context=ctx, result=dict(PROMOTE))
    assert ctx.actions.set_model_response == gated
    return gated


# --- the judge gate, unit level --------------------------------------------------------------------


async def test_a_promote_needs_every_judge_of_the_turn_to_pass() -> None:
    plugin, state = GuardrailPlugin(), {}
    ctx = FakeContext(state, "turn-1")
    # The failing rollout's evidence first, the healthy one last: the last result alone would pass.
    await _evidence(plugin, ctx, BAD, "abort", 3)
    await _evidence(plugin, ctx, HEALTHY, "promote", 97)
    gated = await _verdict(plugin, ctx)
    assert gated["promote"] is False
    assert gated["analysis"].startswith(
        "Guardrail: the model proposed promote, but the deterministic judge said 'abort' (score 3) for demo-bad/canary-demo")
    assert "evidence for 2 rollouts was read in this turn" in gated["analysis"]
    assert JUDGE_STATE not in state, "the plugin must not write the service's seeded judge"
    assert set(state[TURN_JUDGES_STATE]["judges"]) == {"call-demo-bad-abort", "call-demo-healthy-promote"}

    healthy_only = FakeContext({}, "turn-1")
    await _evidence(plugin, healthy_only, HEALTHY, "promote", 97)
    assert (await _verdict(plugin, healthy_only))["promote"] is True


async def test_repeated_evidence_of_one_rollout_keeps_every_result() -> None:
    plugin, ctx = GuardrailPlugin(), FakeContext({}, "turn-1")
    await _evidence(plugin, ctx, HEALTHY, "inconclusive", 40, call_id="a")
    await _evidence(plugin, ctx, HEALTHY, "promote", 97, call_id="b")
    gated = await _verdict(plugin, ctx)
    assert gated["promote"] is False and "said 'inconclusive' (score 40) for demo-healthy/canary-demo" in gated["analysis"]


async def test_a_judge_from_an_earlier_turn_does_not_count() -> None:
    plugin, state = GuardrailPlugin(), {}
    await _evidence(plugin, FakeContext(state, "turn-1"), HEALTHY, "promote", 97)
    # Even if a caller kept the temp: value in its session object, it belongs to turn-1.
    later = FakeContext(state, "turn-2", events=[_user_event("turn-1"), _user_event("turn-2")])
    gated = await _verdict(plugin, later)
    assert gated["promote"] is False and "no judge verdict was collected" in gated["analysis"]


async def test_evidence_errors_block_a_promote_but_a_call_without_names_does_not_count() -> None:
    plugin, ctx = GuardrailPlugin(), FakeContext({}, "turn-1")
    await _evidence(plugin, ctx, HEALTHY, "promote", 97)
    await plugin.after_tool_callback(tool=_tool("get_canary_evidence"), tool_args={"namespace": "", "rollout": ""},
                                     tool_context=ctx, result={"error": {"kind": "invalid_argument", "message": "x"}})
    assert (await _verdict(plugin, ctx))["promote"] is True
    ctx.function_call_id = "unreachable"
    await plugin.after_tool_callback(tool=_tool("get_canary_evidence"), tool_args={"namespace": BAD[0], "rollout": BAD[1]},
                                     tool_context=ctx, result={"error": {"kind": "unreachable", "message": "down"}})
    gated = await _verdict(plugin, ctx)
    assert gated["promote"] is False
    assert "the evidence for demo-bad/canary-demo could not be collected (unreachable)" in gated["analysis"]


async def test_the_seeded_judge_counts_only_in_the_run_that_seeded_it() -> None:
    plugin = GuardrailPlugin()
    seeded = {"namespace": HEALTHY[0], "rollout": HEALTHY[1], "verdict": "promote", "score": 97}
    # Seeded when the session was created for this run: every event belongs to this invocation.
    assert (await _verdict(plugin, FakeContext({JUDGE_STATE: seeded}, "run-1")))["promote"] is True
    # Seeded with this run's state_delta (what the service does for an existing session).
    events = [_user_event("run-1"), _user_event("run-2", {JUDGE_STATE: seeded})]
    assert (await _verdict(plugin, FakeContext({JUDGE_STATE: seeded}, "run-2", events=events)))["promote"] is True
    # Left over from an earlier run (e.g. a web UI chat in the plugin's session): stale.
    events = [_user_event("run-1", {JUDGE_STATE: seeded}), _user_event("run-2")]
    stale = await _verdict(plugin, FakeContext({JUDGE_STATE: seeded}, "run-2", events=events))
    assert stale["promote"] is False and "no judge verdict was collected" in stale["analysis"]
    # A seeded abort is one more judge: a passing evidence call in the run does not outvote it.
    ctx = FakeContext({JUDGE_STATE: dict(seeded, verdict="abort", score=5)}, "run-1")
    await _evidence(plugin, ctx, HEALTHY, "promote", 97)
    assert (await _verdict(plugin, ctx))["promote"] is False


async def test_json_text_verdicts_are_gated_on_the_turn_judges_too() -> None:
    plugin, ctx = GuardrailPlugin(), FakeContext({}, "turn-1")
    await _evidence(plugin, ctx, BAD, "abort", 3)
    await _evidence(plugin, ctx, HEALTHY, "promote", 97)
    response = LlmResponse(content=types.Content(role="model", parts=[types.Part(text=json.dumps(PROMOTE))]))
    changed = await plugin.after_model_callback(callback_context=ctx, llm_response=response)
    assert changed is response and json.loads(response.content.parts[0].text)["promote"] is False


def test_gate_verdict_keeps_the_single_judge_form_for_voting() -> None:
    gated = gate_verdict(dict(PROMOTE), {"verdict": "abort", "score": 12})
    assert gated["promote"] is False
    assert gated["analysis"].startswith("Guardrail: the model proposed promote, but the deterministic judge said "
                                        "'abort' (score 12); the canary is not promoted. ship it")
    assert gate_verdict(dict(PROMOTE), {"verdict": "promote", "score": 90})["promote"] is True
    assert gate_verdict(dict(PROMOTE), None)["promote"] is False
    assert gate_on_judges(dict(PROMOTE), [])["promote"] is False
    no_promote = dict(PROMOTE, promote=False)
    assert gate_on_judges(no_promote, []) is no_promote


# --- confirmation of writes, unit level ------------------------------------------------------------

FILE_ARGS = {"namespace": BAD[0], "rollout": BAD[1], "repo_url": REPO}


async def _turn(plugin: GuardrailPlugin, state: dict, invocation: str, text: str, args: dict | None = None,
                call: bool = True) -> dict | None:
    """One user turn: the first model call sees the message, then (optionally) the write is attempted.
    Returns what before_tool_callback answered (None: the write runs)."""
    ctx = FakeContext(state, invocation, text)
    await plugin.before_model_callback(callback_context=ctx, llm_request=LlmRequest())
    if not call:
        return {}
    return await plugin.before_tool_callback(tool=_tool("file_rollout_issue"), tool_args=dict(args or FILE_ARGS),
                                             tool_context=ctx)


async def test_a_clear_yes_in_the_next_message_runs_the_write() -> None:
    plugin, state = GuardrailPlugin(), {}
    asked = await _turn(plugin, state, "t1", "file an issue for canary-demo in demo-bad, repo " + REPO)
    assert asked["confirmation_required"] is True and "Reply 'yes'" in asked["message"]
    assert await _turn(plugin, state, "t2", "Yes, go ahead!") is None
    assert state[PENDING_WRITE_STATE] is None


@pytest.mark.parametrize("reply", ["ok, but don't file", "ok", "sure, after lunch", "no", "yes, but not yet",
                                   "what is the status?"])
async def test_anything_but_a_clear_yes_cancels_the_write(reply: str) -> None:
    plugin, state = GuardrailPlugin(), {}
    await _turn(plugin, state, "t1", "file it")
    again = await _turn(plugin, state, "t2", reply)
    assert again is not None and again["confirmation_required"] is True  # asked afresh, not run


async def test_a_declined_write_is_not_run_by_a_later_yes() -> None:
    plugin, state = GuardrailPlugin(), {}
    await _turn(plugin, state, "t1", "file it")
    await _turn(plugin, state, "t2", "no, not now", call=False)
    assert state[PENDING_WRITE_STATE] is None
    # "yes" to some other question later: the model retries the old write, the guardrail asks again.
    later = await _turn(plugin, state, "t3", "yes")
    assert later is not None and later["confirmation_required"] is True
    assert state[PENDING_WRITE_STATE]["requested_in"] == "t3"


async def test_a_confirmation_holds_for_one_turn_and_for_the_same_arguments() -> None:
    plugin, state = GuardrailPlugin(), {}
    await _turn(plugin, state, "t1", "file it")
    other_repo = await _turn(plugin, state, "t2", "yes", dict(FILE_ARGS, repo_url="https://github.com/acme/other"))
    assert other_repo["confirmation_required"] is True
    plugin, state = GuardrailPlugin(), {}
    await _turn(plugin, state, "t1", "file it")
    await _turn(plugin, state, "t2", "yes", call=False)  # confirmed, but the model did not file in that turn
    assert (await _turn(plugin, state, "t3", "yes"))["confirmation_required"] is True


async def test_session_state_cannot_switch_confirmation_off() -> None:
    plugin = GuardrailPlugin()
    state = {"selfheal:auto_approve_writes": True}
    asked = await _turn(plugin, state, "t1", "file it")
    assert asked is not None and asked["confirmation_required"] is True


@pytest.mark.parametrize("text", ["yes", "Yes!", "y", "yes please", "Yes, go ahead.", "confirm", "confirmed",
                                  "go ahead", "do it", "proceed", "approve", "yes, do it please", "  YES  "])
def test_clear_confirmations(text: str) -> None:
    assert is_clear_confirmation(text)


@pytest.mark.parametrize("text", ["ok, but don't file", "ok", "okay", "sure", "yes, but wait", "no", "", "confirm?",
                                  "yes and also check rollout web", "go ahead and open a PR too", "yesterday"])
def test_not_clear_confirmations(text: str) -> None:
    assert not is_clear_confirmation(text)


# --- Runner level ----------------------------------------------------------------------------------

_OLD_CONSENT = re.compile(r"^\s*(yes|y|yep|yeah|confirm(ed)?|go ahead|do it|proceed|ok(ay)?|sure|approve[d]?)\b", re.I)
_TARGETS = re.compile(r"([a-z0-9-]+)/([a-z0-9-]+)")


class ScriptedLlm(BaseLlm):
    """A model that does what the user's latest message literally says, with no care of its own.

    - "evidence NS/ROLLOUT, NS/ROLLOUT then promote": read the evidence of each (all in one
      response when the message says "together"), then promote.
    - "promote": promote without reading any evidence.
    - "file NS/ROLLOUT repo URL": file the issue.
    - a reply the old guardrail took for consent ("yes", "ok, ...", "sure"): file again with the
      last arguments it used, in whatever turn.
    - anything else: a short text.
    """

    model: str = "scripted-guard"

    @classmethod
    def supported_models(cls) -> list[str]:
        return [r"scripted-guard"]

    @property
    def capabilities(self) -> LlmCapabilities:
        return LlmCapabilities(output_schema_and_tools=False)

    async def generate_content_async(self, llm_request: LlmRequest, stream: bool = False
                                     ) -> AsyncGenerator[LlmResponse, None]:
        parts = _scripted_step(Conversation.from_request(llm_request))
        yield LlmResponse(content=types.Content(role="model", parts=parts))


LLMRegistry.register(ScriptedLlm)


def _call(name: str, **args: Any) -> types.Part:
    return types.Part(function_call=types.FunctionCall(name=name, args=args))


def _scripted_step(convo: Conversation) -> list[types.Part]:
    question = convo.question.strip()
    diagnose = question.startswith(("evidence", "promote"))
    transfer = "transfer_to_agent" in convo.tools and not convo.turn_calls
    if "set_model_response" in convo.tools:  # diagnosis
        if not diagnose and transfer:
            return [_call("transfer_to_agent", agent_name="remediation")]
        wanted = _TARGETS.findall(question.split(" then ")[0]) if question.startswith("evidence") else []
        done = [(c.args.get("namespace"), c.args.get("rollout")) for c in convo.called("get_canary_evidence")]
        missing = [target for target in wanted if target not in done]
        if missing:
            batch = missing if "together" in question else missing[:1]
            return [_call("get_canary_evidence", namespace=ns, rollout=name) for ns, name in batch]
        return [_call("set_model_response", **PROMOTE)]
    if "file_rollout_issue" in convo.tools:  # remediation
        if diagnose and transfer:
            return [_call("transfer_to_agent", agent_name="diagnosis")]
        if convo.turn_calls:
            return [types.Part(text=json.dumps(convo.turn_calls[-1].response))]
        if question.startswith("file "):
            (namespace, rollout), repo = _TARGETS.findall(question)[0], question.split(" repo ")[1]
            return [_call("file_rollout_issue", namespace=namespace, rollout=rollout, repo_url=repo)]
        earlier = [c for c in convo.history_calls if c.name == "file_rollout_issue"]
        if _OLD_CONSENT.match(question) and earlier:
            return [_call("file_rollout_issue", **earlier[-1].args)]
        return [types.Part(text="Understood.")]
    return [_call("transfer_to_agent", agent_name="diagnosis" if diagnose else "remediation")]


class AppSession:
    """One session of the app on a given session service (in memory or a real database)."""

    def __init__(self, service, model: str = "scripted-guard") -> None:
        from agents.rollout_doctor.agent import build_app

        self.app = build_app(model)
        self.service = service
        self.runner = Runner(app=self.app, session_service=service)
        self.session_id: str | None = None

    async def ask(self, text: str, state_delta: dict | None = None) -> dict:
        if self.session_id is None:
            self.session_id = (await self.service.create_session(app_name=self.app.name, user_id="sre")).id
        turn: dict = {"calls": [], "responses": [], "text": ""}
        message = types.Content(role="user", parts=[types.Part(text=text)])
        async for event in self.runner.run_async(user_id="sre", session_id=self.session_id, new_message=message,
                                                 state_delta=state_delta):
            for part in event.content.parts if event.content else []:
                if part.function_call:
                    turn["calls"].append((part.function_call.name, dict(part.function_call.args or {})))
                elif part.function_response:
                    turn["responses"].append((part.function_response.name, part.function_response.response))
                elif part.text and event.is_final_response():
                    turn["text"] = part.text
        return turn

    async def state(self) -> dict:
        session = await self.service.get_session(app_name=self.app.name, user_id="sre", session_id=self.session_id)
        return dict(session.state)


@pytest.fixture(params=["memory", "database"])
def session_service(request, tmp_path):
    if request.param == "memory":
        return InMemorySessionService()
    return DatabaseSessionService(db_url=f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}")


def _verdict_of(turn: dict) -> dict:
    responses = [response for name, response in turn["responses"] if name == "set_model_response"]
    assert responses, f"no verdict in {turn}"
    return json.loads(turn["text"]) if turn["text"] else responses[-1]


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "parallel-calls"])
async def test_runner_blocks_a_promote_when_any_evidence_of_the_turn_failed(product_env, together: bool) -> None:
    chat = AppSession(InMemorySessionService())
    word = " together" if together else ""
    # Failing B first, healthy A last: the old gate read only the last evidence and let this through.
    turn = await chat.ask(f"evidence {BAD[0]}/{BAD[1]}, {HEALTHY[0]}/{HEALTHY[1]}{word} then promote")
    evidence_calls = [args for name, args in turn["calls"] if name == "get_canary_evidence"]
    assert len(evidence_calls) == 2
    verdict = _verdict_of(turn)
    assert verdict["promote"] is False
    assert "'abort'" in verdict["analysis"] and "demo-bad/canary-demo" in verdict["analysis"]
    state = await chat.state()
    assert state["verdict"]["promote"] is False
    assert JUDGE_STATE not in state and TURN_JUDGES_STATE not in state  # nothing judge-related persists

    healthy = await AppSession(InMemorySessionService()).ask(f"evidence {HEALTHY[0]}/{HEALTHY[1]} then promote")
    assert _verdict_of(healthy)["promote"] is True  # a single passing judge still allows a promote


async def test_runner_a_judge_does_not_carry_over_to_the_next_turn(product_env, session_service) -> None:
    chat = AppSession(session_service)
    first = await chat.ask(f"evidence {HEALTHY[0]}/{HEALTHY[1]} then promote")
    assert _verdict_of(first)["promote"] is True
    second = await chat.ask("promote")
    assert not [name for name, _ in second["calls"] if name == "get_canary_evidence"]
    verdict = _verdict_of(second)
    assert verdict["promote"] is False and "no judge verdict was collected" in verdict["analysis"]
    assert TURN_JUDGES_STATE not in await chat.state()


async def test_runner_a_seeded_judge_counts_in_its_own_run_only(product_env, session_service) -> None:
    seeded = {JUDGE_STATE: {"namespace": HEALTHY[0], "rollout": HEALTHY[1], "verdict": "promote", "score": 97}}
    chat = AppSession(session_service)
    await chat.ask("hello")  # an earlier turn, so the seed below arrives with the run's state_delta
    assert _verdict_of(await chat.ask("promote", state_delta=seeded))["promote"] is True
    # The same session later, without a fresh seed (a web UI chat in the plugin's session).
    stale = _verdict_of(await chat.ask("promote"))
    assert stale["promote"] is False and "no judge verdict was collected" in stale["analysis"]


@pytest.fixture
def allow_shop(product_env, monkeypatch) -> Path:
    monkeypatch.setenv("SELFHEAL_REPO_ALLOWLIST", "acme/shop")
    get_settings.cache_clear()
    return Path(get_settings().outbox)


def _written(outbox: Path) -> list[str]:
    return sorted(p.name for p in outbox.iterdir()) if outbox.exists() else []


def _file_results(turn: dict) -> list[dict]:
    return [response for name, response in turn["responses"] if name == "file_rollout_issue"]


async def test_runner_a_declined_write_is_not_run_by_a_later_yes(allow_shop: Path) -> None:
    chat = AppSession(InMemorySessionService())
    first = await chat.ask(f"file {BAD[0]}/{BAD[1]} repo {REPO}")
    assert _file_results(first)[0]["confirmation_required"] is True
    declined = await chat.ask("no, not now")
    assert not _file_results(declined)
    # A "yes" to something else later: the model files the old request again; the guardrail asks again.
    later = await chat.ask("yes")
    assert [result.get("confirmation_required") for result in _file_results(later)] == [True]
    assert _written(allow_shop) == []


async def test_runner_ok_but_dont_file_does_not_confirm(allow_shop: Path) -> None:
    chat = AppSession(InMemorySessionService())
    await chat.ask(f"file {BAD[0]}/{BAD[1]} repo {REPO}")
    reply = await chat.ask("ok, but don't file")
    # The model took it for consent and retried; the guardrail held the write back again.
    assert [result.get("confirmation_required") for result in _file_results(reply)] == [True]
    assert _written(allow_shop) == []
    # The fresh request can still be confirmed properly.
    done = await chat.ask("yes")
    assert _file_results(done)[0]["action"] == "dry_run"
    assert any(name.endswith(".issue.md") for name in _written(allow_shop))


async def test_runbook_decline_then_yes_files_nothing(allow_shop: Path) -> None:
    chat = Chat()
    await chat.ask(f"file an issue for rollout canary-demo in namespace demo-bad, repo {REPO}")
    declined = await chat.ask("no, not now")
    assert "remediation" in declined["authors"] and "Cancelled" in declined["text"]
    assert "file_rollout_issue" not in declined["responses"]
    later = await chat.ask("yes")
    assert "file_rollout_issue" not in later["responses"]
    assert "nothing waiting for confirmation" in later["text"]
    assert _written(allow_shop) == []


# --- the remediation tools keep the event loop free ------------------------------------------------


async def _max_tick_gap(work) -> tuple[Any, float, float]:
    """Run `work` while a task ticks every 10 ms; return its result, its duration and the longest gap."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    try:
        result = await work
    finally:
        duration = time.perf_counter() - started
        stop.set()
        await task
    return result, duration, max(gaps)


async def test_remediation_tools_do_not_block_the_event_loop(allow_shop: Path, simulator_faults) -> None:
    # A slow Kubernetes API (0.8 s per read of the Rollout): a blocking call would stall the loop that long.
    simulator_faults.inject_fault(r"/namespaces/demo-bad/rollouts/canary-demo", delay_seconds=0.8)
    filed, duration, gap = await _max_tick_gap(remediation_agent.file_rollout_issue(BAD[0], BAD[1], REPO))
    assert filed["action"] == "dry_run"
    assert duration >= 0.8 and gap < 0.4, (duration, gap)
    status, duration, gap = await _max_tick_gap(remediation_agent.get_remediation_status(BAD[0], BAD[1]))
    assert status["status"] == "dry_run"
    assert duration >= 0.8 and gap < 0.4, (duration, gap)


# --- what file_rollout_issue refuses ---------------------------------------------------------------


async def test_file_rollout_issue_refuses_an_unknown_canary_revision(allow_shop: Path, simulator_faults) -> None:
    # The Rollout cannot be read (the pods still can): which revision failed is unknown.
    simulator_faults.inject_fault(r"/namespaces/demo-bad/rollouts", status=403)
    result = await remediation_agent.file_rollout_issue(BAD[0], BAD[1], REPO, root_cause="the canary returns 500s")
    assert result["error"]["kind"] == "refused"
    assert "pod-template hash of demo-bad/canary-demo is unknown" in result["error"]["message"]
    assert "get_rollout" in result["error"]["hint"]
    assert _written(allow_shop) == []


async def test_file_rollout_issue_needs_a_root_cause_for_an_inconclusive_or_passing_canary(allow_shop: Path) -> None:
    inconclusive = await remediation_agent.file_rollout_issue("demo-lowtraffic", "canary-demo", REPO)
    assert inconclusive["error"]["kind"] == "refused" and "inconclusive" in inconclusive["error"]["message"]
    assert "root cause" in inconclusive["error"]["hint"]
    passed = await remediation_agent.file_rollout_issue(*HEALTHY, REPO)
    assert passed["error"]["kind"] == "refused" and "judge passed" in passed["error"]["message"]
    assert _written(allow_shop) == []
    # With a root cause the model found itself, both are filed (the judge may miss a real fault).
    cause = "the new build logs every request twice"
    for namespace, rollout in (("demo-lowtraffic", "canary-demo"), HEALTHY):
        filed = await remediation_agent.file_rollout_issue(namespace, rollout, REPO, root_cause=cause)
        assert filed["action"] == "dry_run", filed
        issue = next(allow_shop.glob(f"{namespace}__{rollout}__*.issue.md")).read_text()
        assert cause in issue
