"""Regressions found in review: each test reproduces a way a failing canary could be promoted, or
a healthy one aborted, before the fix."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import yaml

from selfheal.simulator import SimulatedCluster, bundled_scenarios_dir
from test_service import request_for, serve_in_process, service_env

HEALTHY = "healthy-canary"


def _stable_pod_with_old_crash(root: Path) -> Path:
    """healthy-canary, with one stable pod restarted once after an old crash that answered 500s."""
    folder = root / HEALTHY
    shutil.copytree(bundled_scenarios_dir() / HEALTHY, folder)
    pods_file = folder / "cluster" / "pods.yaml"
    pods = list(yaml.safe_load_all(pods_file.read_text()))
    stable = next(p for p in pods if p and p["kind"] == "Pod" and p["metadata"]["labels"].get("role") == "stable")
    status = next(s for s in stable["status"]["containerStatuses"] if s["name"] == "canary-demo")
    status["restartCount"] = 1
    status["lastState"] = {"terminated": {"reason": "Error", "exitCode": 2, "startedAt": "2026-01-01T08:00:00Z",
                                          "finishedAt": "2026-01-01T09:00:00Z"}}
    pods_file.write_text(yaml.safe_dump_all(pods, sort_keys=False))
    old = [f"2026-01-01T08:{m:02d}:{s:02d}.000000000Z 2026/01/01 08:{m:02d}:{s:02d} {500 if s % 2 else 200} - blue"
           for m in range(0, 50) for s in range(0, 60, 5)]
    (folder / "logs" / stable["metadata"]["name"] / "canary-demo.previous.log").write_text("\n".join(old) + "\n")
    return folder


def test_an_old_stable_crash_does_not_lower_the_baseline(tmp_path: Path, monkeypatch) -> None:
    from selfheal.config import get_settings
    from tools import k8s
    from tools.evidence import collect_evidence

    with SimulatedCluster([_stable_pod_with_old_crash(tmp_path)]) as cluster:
        for key, value in cluster.environment().items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        k8s.reset_clients()
        try:
            evidence = collect_evidence("demo-healthy", "canary-demo")
        finally:
            get_settings.cache_clear()
            k8s.reset_clients()
    # The old crash's 300 errors are not part of the stable baseline (the window is the canary's age).
    assert evidence.stable_logs.server_errors < 30
    assert evidence.judge.verdict == "promote"


async def test_an_answer_for_other_selectors_is_not_replayed(simulator, tmp_path: Path) -> None:
    async with serve_in_process(service_env(simulator, tmp_path)) as service:
        # A check with a mistyped canary selector (e.g. from an MCP call) sees no canary: no promote...
        wrong = request_for(HEALTHY)
        wrong["context"]["canarySelector"] = "role=canry"
        assert (await service.analyze(wrong)).json()["promote"] is False
        # ...and must not answer the plugin's real question about the same revision for 5 minutes.
        real = await service.analyze(request_for(HEALTHY))
        assert real.json()["promote"] is True


async def test_a_model_without_a_verdict_does_not_reuse_the_last_one(simulator, tmp_path: Path) -> None:
    from google.adk.models import BaseLlm, LLMRegistry, LlmResponse
    from google.adk.models.base_llm import LlmCapabilities
    from google.genai import types

    class ProseOnly(BaseLlm):
        model: str = "prose-only"

        @classmethod
        def supported_models(cls) -> list[str]:
            return ["prose-only"]

        @property
        def capabilities(self) -> LlmCapabilities:
            return LlmCapabilities(output_schema_and_tools=False)

        async def generate_content_async(self, llm_request, stream=False):
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text="Looks fine to me.")]))

    LLMRegistry.register(ProseOnly)
    state_dir = tmp_path / "state"
    # First the runbook analyses bad-canary (an abort verdict is stored in the rollout's session)...
    async with serve_in_process(service_env(simulator, state_dir, SELFHEAL_CACHE_TTL_SECONDS="0")) as service:
        assert (await service.analyze(request_for("bad-canary"))).json()["promote"] is False
    # ...then a model that never gives a verdict: its vote must fail, not replay the old verdict.
    env = service_env(simulator, state_dir, SELFHEAL_MODEL="prose-only", SELFHEAL_CACHE_TTL_SECONDS="0")
    async with serve_in_process(env) as service:
        answer = (await service.analyze(request_for("bad-canary"))).json()
    result = answer["modelResults"][0]
    assert result["modelName"] == "prose-only" and "did not return a usable verdict" in result["error"]


@contextlib.contextmanager
def slow_evidence(seconds: float):
    """Evidence collection that takes `seconds` longer (a slow API server), for the whole service."""
    import tools.evidence as evidence_tools

    original = evidence_tools.collect_evidence

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return original(*args, **kwargs)

    evidence_tools.collect_evidence = slow
    try:
        yield
    finally:
        evidence_tools.collect_evidence = original


async def test_a_request_that_cannot_start_in_time_gets_503_not_a_forced_abort(simulator, tmp_path: Path) -> None:
    env = service_env(simulator, tmp_path, SELFHEAL_MAX_CONCURRENT_ANALYSES="1", SELFHEAL_DEADLINE_SECONDS="10")
    with slow_evidence(6):
        async with serve_in_process(env) as service:
            first, second = await asyncio.gather(service.analyze(request_for(HEALTHY)),
                                                 service.analyze(request_for("noisy-but-healthy")))
    # The first holds the only slot for 6 s+; the second may wait at most half the deadline (5 s).
    assert first.status_code == 200 and first.json()["promote"] is True
    assert second.status_code == 503 and int(second.headers["Retry-After"]) >= 5


async def test_an_answer_forced_by_an_evidence_timeout_is_not_replayed(simulator, tmp_path: Path) -> None:
    env = service_env(simulator, tmp_path, SELFHEAL_DEADLINE_SECONDS="4")
    with slow_evidence(3):
        async with serve_in_process(env) as service:
            forced = (await service.analyze(request_for(HEALTHY))).json()
            assert forced["promote"] is False and "timed out" in forced["analysis"]
            before = await service.analyses_run()
            again = (await service.analyze(request_for(HEALTHY))).json()
            assert "timed out" in again["analysis"]
            # Analysed again (not answered from a record of the forced abort).
            assert await service.analyses_run() == before + 1


async def test_serve_start_up_resumes_a_jules_follow_up_left_by_a_previous_process(
        simulator, tmp_path: Path) -> None:
    """A process files the issue and starts a Jules session, then dies before the PR exists; the
    next `selfheal serve` follows the session on its own and links the PR on the issue."""
    from fakes.github_server import GITHUB_TOKEN, REPO, FakeGitHub
    from fakes.jules_server import JULES_KEY, FakeJules
    from selfheal.config import Settings
    from selfheal.state import StateStore
    from test_remediation import abort_request, remediate

    github, jules = FakeGitHub(tokens={GITHUB_TOKEN}), FakeJules(api_key=JULES_KEY)
    github.start()
    github.add_repo(REPO, files={"app/server.py": "def handler():\n    return 200\n"})
    jules.start()
    jules.add_source("acme", "shop")
    try:
        env = service_env(simulator, tmp_path / "state", SELFHEAL_REMEDIATION_MODE="session",
                          SELFHEAL_REPO_ALLOWLIST="acme/shop", SELFHEAL_GITHUB_TOKEN=GITHUB_TOKEN,
                          SELFHEAL_GITHUB_API_URL=github.base_url, SELFHEAL_JULES_API_KEY=JULES_KEY,
                          SELFHEAL_JULES_API_URL=jules.base_url, SELFHEAL_JULES_POLL_SECONDS="0.05")
        settings = Settings(**{key.removeprefix("SELFHEAL_").lower(): value for key, value in env.items()
                               if key.startswith("SELFHEAL_") and key not in ("SELFHEAL_KUBECONFIG",
                                                                               "SELFHEAL_PROMETHEUS_URL")})
        store = StateStore.from_url(settings.database)
        await store.init()
        first = await remediate(abort_request(), settings, store, follow=False)  # the process dies here
        await store.close()
        assert first.jules_session and first.issue_number

        async with serve_in_process(env) as service:
            for _ in range(200):
                record = await service.app.state.store.get_remediation(first.fingerprint)
                if record.status == "pr_opened":
                    break
                await asyncio.sleep(0.05)
        assert record.status == "pr_opened" and record.pr_url
        comments = [comment["body"] for comment in github.repo(REPO).comments[first.issue_number]]
        assert any(record.pr_url in body for body in comments)
    finally:
        github.stop()
        jules.stop()
