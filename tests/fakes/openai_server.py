"""A local OpenAI-compatible chat-completions server (what vLLM serves), for the LiteLLM path.

Behind the real API shape sits a small scripted model, because no real model can run here: it
delegates to `diagnosis`, calls `get_canary_evidence` for the rollout named in the plugin prompt,
and answers with the judge's verdict through `set_model_response`. With `promote_always` it tries
to promote whatever the evidence says (the judge gate must overrule it).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fakes._server import FakeAPI

API_KEY = "sk-local-test"
_TARGET = re.compile(r"rollout '([a-z0-9.-]+)'\. Namespace: ([a-z0-9-]+)\.")


class FakeOpenAI(FakeAPI):
    prefix = "/v1"

    def __init__(self, *, promote_always: bool = False) -> None:
        super().__init__()
        self.promote_always = promote_always
        self._ids = itertools.count(1)

    def routes(self):
        return [("POST", "/chat/completions", self._chat), ("GET", "/models", self._models)]

    def authenticate(self, headers: dict[str, str]) -> Response | None:
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
                                status_code=401)
        return None

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "gemma-3-27b-it", "object": "model"}]})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        message = self._decide(body.get("messages") or [], {t["function"]["name"] for t in body.get("tools") or []})
        prompt = sum(len(json.dumps(m)) for m in body.get("messages") or []) // 4
        return JSONResponse({
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 20, "total_tokens": prompt + 20},
        })

    def _decide(self, messages: list[dict[str, Any]], tools: set[str]) -> dict[str, Any]:
        if "get_canary_evidence" in tools:  # the diagnosis agent
            evidence = _tool_result(messages, "get_canary_evidence")
            if evidence is None:
                user = " ".join(str(m.get("content")) for m in messages if m.get("role") == "user")
                match = _TARGET.search(user)
                if match is None:
                    return _answer(tools, promote=False, confidence=0, analysis="no rollout named",
                                   rootCause="unknown", remediation="name the rollout", evidence=[])
                return _call("get_canary_evidence", namespace=match.group(2), rollout=match.group(1))
            verdict = evidence.get("verdict", "inconclusive")
            promote = self.promote_always or verdict == "promote"
            return _answer(tools, promote=promote, confidence=80,
                           analysis=f"The judge says {verdict} with score {evidence.get('score')}.",
                           rootCause="; ".join(evidence.get("findings") or []) or "none",
                           remediation="abort" if not promote else "promote", evidence=[])
        if "transfer_to_agent" in tools:
            return _call("transfer_to_agent", agent_name="diagnosis")
        return {"role": "assistant", "content": "I only analyse canaries."}


def _answer(tools: set[str], **verdict: Any) -> dict[str, Any]:
    # Structured output: through ADK's set_model_response tool, or as JSON text when ADK asked for
    # a response format instead (models that support schema and tools together).
    if "set_model_response" in tools:
        return _call("set_model_response", **verdict)
    return {"role": "assistant", "content": json.dumps(verdict)}


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def _tool_result(messages: list[dict[str, Any]], name: str) -> dict | None:
    ids = {call["id"] for m in messages if m.get("role") == "assistant"
           for call in m.get("tool_calls") or [] if call["function"]["name"] == name}
    for message in messages:
        if message.get("role") == "tool" and message.get("tool_call_id") in ids:
            try:
                return json.loads(message.get("content") or "{}")
            except ValueError:
                return {}
    return None


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
