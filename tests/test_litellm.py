"""LiteLLM-served models (e.g. Gemma behind vLLM's OpenAI-compatible API) drive the same agents.

The model server is a local OpenAI-compatible HTTP server (tests/fakes/openai_server.py); ADK's
LiteLLM integration talks to it exactly as it would to vLLM.
"""

from __future__ import annotations

import json

import pytest

from fakes.openai_server import API_KEY, FakeOpenAI, openai_fake  # noqa: F401  (fixture)
from selfheal.config import get_settings
from selfheal.contract import plugin_prompt
from support.chat import Chat

MODEL = "openai/gemma-3-27b-it"


@pytest.fixture
def litellm_env(product_env, monkeypatch, openai_fake: FakeOpenAI) -> FakeOpenAI:
    monkeypatch.setenv("SELFHEAL_MODEL", MODEL)
    monkeypatch.setenv("OPENAI_API_BASE", openai_fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price list
    get_settings.cache_clear()
    return openai_fake


@pytest.mark.parametrize("namespace, promote", [("demo-bad", False), ("demo-healthy", True)])
async def test_litellm_model_runs_the_investigation(litellm_env: FakeOpenAI, namespace: str, promote: bool) -> None:
    turn = await Chat(MODEL).ask(plugin_prompt(namespace, "canary-demo", "role=stable", "role=canary"))
    assert json.loads(turn["text"])["promote"] is promote
    # LiteLLM models take the schema as a response format, so the verdict comes back as JSON text.
    assert [name for _, name, _ in turn["calls"]] == ["transfer_to_agent", "get_canary_evidence"]
    requests = [r.json() for r in litellm_env.requests_to("POST", r"/chat/completions$")]
    assert len(requests) == 3 and all(r["model"] == "gemma-3-27b-it" for r in requests)
    diagnosis_tools = {tool["function"]["name"] for tool in requests[1]["tools"]}
    assert {"get_canary_evidence", "get_pod_logs", "get_rollout", "query_prometheus"} <= diagnosis_tools
    # The evidence the model read went through the guardrail's redaction like any other model's.
    assert "canary-demo" in json.dumps(requests[2]["messages"])


async def test_litellm_model_cannot_promote_a_failing_canary(litellm_env: FakeOpenAI) -> None:
    litellm_env.promote_always = True
    turn = await Chat(MODEL).ask(plugin_prompt("demo-bad", "canary-demo", "role=stable", "role=canary"))
    verdict = json.loads(turn["text"])
    assert verdict["promote"] is False
    assert verdict["analysis"].startswith("Guardrail: the model proposed promote")
