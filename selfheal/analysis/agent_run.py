"""Running the rollout_doctor app for one model and reading its verdict."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from dataclasses import dataclass, field

from google.adk.agents.run_config import RunConfig, ToolThreadPoolConfig
from google.adk.apps import App
from google.adk.runners import Runner
from google.adk.sessions import BaseSessionService
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from selfheal.verdict import Verdict, parse_verdict

log = logging.getLogger(__name__)

# Sync tools (Kubernetes client, Prometheus, log mining) run on ADK's tool thread pool so one
# analysis never blocks the event loop that serves the others.
# A rollout's session spans its revisions; only its recent events are loaded (the prompt keeps
# fewer still, see ContextFilterPlugin in the app), so a long-lived rollout stays cheap to analyse.
RECENT_EVENTS = GetSessionConfig(num_recent_events=200)
RUN_CONFIG = RunConfig(tool_thread_pool_config=ToolThreadPoolConfig(max_workers=8), get_session_config=RECENT_EVENTS)


@dataclass
class AgentRunResult:
    model: str
    verdict: Verdict | None = None
    error: str | None = None
    duration_ms: int = 0
    model_calls: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    tool_calls: list[str] = field(default_factory=list)
    final_text: str = ""  # the diagnosis agent's final answer
    replies: list[tuple[str, str]] = field(default_factory=list)  # (agent, text) of every final answer


@functools.cache
def _build_app(model: str) -> App:
    # Imported lazily: building the app resolves models and imports every tool.
    from agents.rollout_doctor.agent import build_app

    return build_app(model)


def app_for(model: str) -> App:
    """The rollout_doctor app whose agents all use `model` (built once per model name)."""
    return _build_app(model)


def session_id_for(memory_key: str, model: str) -> str:
    """One ADK session per memoryId (and model, when several vote).

    The session spans the rollout's canary revisions, so the agent sees its earlier analyses of the
    same rollout; a new revision still gets a fresh analysis (the record is keyed by revision).
    """
    raw = f"{memory_key}~{model}"
    return re.sub(r"[^A-Za-z0-9_.:@~/-]", "_", raw)[:255]


async def run_agent(
    *,
    model: str,
    session_service: BaseSessionService,
    user_id: str,
    session_id: str,
    message: str,
    state: dict,
    app: App | None = None,
    require_verdict: bool = True,
) -> AgentRunResult:
    """Run the app once (one user turn) and collect its answers and the diagnosis verdict; never raises.

    With `require_verdict` (the plugin path) a run that ends without a verdict is an error.
    """
    result = AgentRunResult(model=model)
    started = time.perf_counter()
    try:
        app = app or app_for(model)
        runner = Runner(app=app, session_service=session_service)
        session = await session_service.get_session(app_name=app.name, user_id=user_id, session_id=session_id,
                                                    config=RECENT_EVENTS)
        if session is None:
            await session_service.create_session(app_name=app.name, user_id=user_id, session_id=session_id, state=state)
            state_delta = None
        else:
            state_delta = state
        content = types.Content(role="user", parts=[types.Part(text=message)])
        async for event in runner.run_async(
            user_id=user_id, session_id=session_id, new_message=content, state_delta=state_delta, run_config=RUN_CONFIG
        ):
            _account(result, event)
        if result.verdict is None and require_verdict:
            session = await session_service.get_session(app_name=app.name, user_id=user_id, session_id=session_id,
                                                    config=RECENT_EVENTS)
            stored = (session.state or {}).get("verdict") if session else None
            result.verdict = parse_verdict(stored) or parse_verdict(result.final_text)
        if result.verdict is None and require_verdict:
            result.error = "the model did not return a usable verdict" + (
                f": {result.final_text[:200]!r}" if result.final_text else ""
            )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a model or tool failure must become an answer, not a 500
        log.warning("model %s failed: %s", model, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        result.error = f"{type(exc).__name__}: {exc}"[:500]
    result.duration_ms = int((time.perf_counter() - started) * 1000)
    return result


def _account(result: AgentRunResult, event) -> None:
    usage = event.usage_metadata
    if usage is not None and event.author != "user":
        result.model_calls += 1
        result.prompt_tokens += usage.prompt_token_count or 0
        result.output_tokens += usage.candidates_token_count or 0
    if event.error_code or event.error_message:
        result.error = f"{event.error_code or 'error'}: {event.error_message or ''}".strip()
    content = event.content
    if not content or not content.parts:
        return
    for part in content.parts:
        if part.function_call:
            result.tool_calls.append(part.function_call.name)
        elif part.text and not part.thought and event.author != "user" and event.is_final_response():
            result.replies.append((event.author, part.text))
            if event.author == "diagnosis":
                result.final_text = part.text
                verdict = parse_verdict(part.text)
                if verdict is not None:
                    result.verdict = verdict
