"""Prometheus metrics of the service (served on GET /metrics).

Each service instance owns its registry, so several apps (tests, benchmarks) never collide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram

from selfheal.contract import AnalyzeResponse

if TYPE_CHECKING:
    from selfheal.analysis.agent_run import AgentRunResult


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.analyses = Counter(
            "selfheal_analyses", "Plugin analyses answered, by verdict and source (model, judge, record).",
            ["verdict", "source"], registry=r,
        )
        self.duration = Histogram(
            "selfheal_analysis_duration_seconds", "Time to answer an analysis request.", ["source"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), registry=r,
        )
        self.model_calls = Counter("selfheal_model_calls", "Model calls made by the agents.", ["model"], registry=r)
        self.model_tokens = Counter(
            "selfheal_model_tokens", "Model tokens used, by kind (prompt, output).", ["model", "kind"], registry=r
        )
        self.model_failures = Counter("selfheal_model_failures", "Model runs without a usable verdict.", ["model"],
                                      registry=r)
        self.cache_hits = Counter("selfheal_cache_hits", "Analyses answered from the record.", registry=r)
        self.shared_flights = Counter(
            "selfheal_shared_flights", "Requests that joined an analysis already running for the same revision.",
            registry=r,
        )
        self.remediations = Counter("selfheal_remediations", "Remediation actions, by action.", ["action"], registry=r)
        self.errors = Counter("selfheal_errors", "Errors, by kind.", ["kind"], registry=r)

    def observe(self, response: AnalyzeResponse, source: str, seconds: float) -> None:
        self.analyses.labels(verdict="promote" if response.promote else "abort", source=source).inc()
        self.duration.labels(source=source).observe(seconds)

    def record_run(self, run: "AgentRunResult") -> None:
        self.model_calls.labels(model=run.model).inc(run.model_calls)
        self.model_tokens.labels(model=run.model, kind="prompt").inc(run.prompt_tokens)
        self.model_tokens.labels(model=run.model, kind="output").inc(run.output_tokens)
        if run.verdict is None:
            self.model_failures.labels(model=run.model).inc()
