"""The rollout_doctor ADK app: an orchestrator that delegates to diagnosis and remediation.

`adk web agents`, `adk run agents/rollout_doctor`, `adk eval`, `selfheal serve` and the MCP server
all use `app` (or `build_app(model)` for a specific model, e.g. when several models vote).
"""

from __future__ import annotations

from google.adk.agents import LlmAgent
from google.adk.agents.context_cache_config import ContextCacheConfig
from google.adk.apps import App
from google.adk.plugins.context_filter_plugin import ContextFilterPlugin

import prompts
from selfheal.config import get_settings
from selfheal.guardrails import GuardrailPlugin
from selfheal.llm import resolve_model
from selfheal.verdict import Verdict
from tools import k8s, prometheus
from tools.evidence import get_canary_evidence
from tools.remediation_agent import file_rollout_issue, get_remediation_status, open_pull_request

APP_NAME = "rollout_doctor"

DIAGNOSIS_TOOLS = [
    k8s.find_rollouts,
    k8s.get_rollout,
    get_canary_evidence,
    k8s.list_pods,
    k8s.describe_pod,
    k8s.get_pod_logs,
    k8s.get_events,
    k8s.get_pod_metrics,
    k8s.list_related_resources,
    prometheus.query_prometheus,
    prometheus.query_prometheus_range,
    prometheus.discover_metrics,
]
REMEDIATION_TOOLS = [file_rollout_issue, get_remediation_status, open_pull_request]


def build_root_agent(model: str | None = None) -> LlmAgent:
    model = model or resolve_model()
    diagnosis = LlmAgent(
        name="diagnosis",
        model=model,
        description="Investigates a rollout, canary, pod or namespace from evidence and returns a promote/abort verdict.",
        instruction=prompts.load("diagnosis"),
        tools=list(DIAGNOSIS_TOOLS),
        output_schema=Verdict,
        output_key="verdict",
    )
    remediation = LlmAgent(
        name="remediation",
        model=model,
        description="Starts the fix for a failed canary: the GitHub issue for Jules, a Jules session, or a pull request.",
        instruction=prompts.load("remediation"),
        tools=list(REMEDIATION_TOOLS),
    )
    return LlmAgent(
        name="orchestrator",
        model=model,
        description="Routes rollout questions to diagnosis and fix requests to remediation.",
        instruction=prompts.load("orchestrator"),
        sub_agents=[diagnosis, remediation],
    )


def build_app(model: str | None = None) -> App:
    settings = get_settings()
    return App(
        name=APP_NAME,
        root_agent=build_root_agent(model),
        # Gemini context caching per agent: the long instructions and tool schemas are not re-billed
        # on every call of a multi-step investigation.
        context_cache_config=ContextCacheConfig(min_tokens=2048, ttl_seconds=600),
        plugins=[
            GuardrailPlugin(max_model_calls=settings.max_model_calls),
            # Long-lived sessions (one per rollout) keep only the recent analyses in the prompt.
            ContextFilterPlugin(num_invocations_to_keep=4),
        ],
    )


app = build_app()
root_agent = app.root_agent
