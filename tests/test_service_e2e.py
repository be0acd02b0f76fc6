"""End to end: real `selfheal serve` processes, the simulator, a fake GitHub and a real PostgreSQL.

The client sends exactly what the Go plugin sends (selfheal.contract.plugin_request), with the
service token as the HTTP Basic password in the URL (agentUrl http://user:TOKEN@host:port), and
every answer is decoded by the real Go decoder. One shared server serves most tests; a second
process on the same state dir and a pair of processes on one PostgreSQL cover persistence and
filing once across replicas.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from google.adk.sessions import DatabaseSessionService

from conftest import bundled_scenario_dirs
from contract.go_decoder import GoDecoder
from fakes.github_server import FakeGitHub
from selfheal.analysis.agent_run import session_id_for
from selfheal.simulator import SimulatedCluster
from support.postgres import Postgres, free_port
from test_service import assert_go_decodes, go_decoder, metric, request_for, scenario  # noqa: F401

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(180)]

TOKEN = "e2e-service-token"
GITHUB_TOKEN = "test-token"
REPO_URL = "https://github.com/acme/shop"
SELFHEAL = str(Path(sys.executable).with_name("selfheal"))
SCENARIOS = [folder.name for folder in bundled_scenario_dirs() if (folder / "expect.yaml").is_file()]


class Served:
    """One `selfheal serve` process on a free port; its log goes to `state_dir/serve.log`."""

    def __init__(self, env: dict[str, str], state_dir: Path):
        self.state_dir = state_dir
        self.port = free_port()
        self.log = state_dir / "serve.log"
        state_dir.mkdir(parents=True, exist_ok=True)
        full_env = {key: value for key, value in os.environ.items()
                    if not key.startswith("SELFHEAL_") and key not in ("KUBECONFIG", "GITHUB_TOKEN", "GOOGLE_API_KEY",
                                                                       "GEMINI_API_KEY", "GITHUB_API_URL")}
        full_env.update({"SELFHEAL_STATE_DIR": str(state_dir), "SELFHEAL_MODEL": "runbook", **env})
        self.started = time.perf_counter()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([SELFHEAL, "serve", "--port", str(self.port), "--log-level", "warning"],
                                            env=full_env, stdout=log, stderr=subprocess.STDOUT)
        self.token = full_env.get("SELFHEAL_TOKEN")

    def url(self, path: str) -> str:
        """The URL the plugin would use: the token as the Basic-auth password."""
        credentials = f"argo-rollouts:{self.token}@" if self.token else ""
        return f"http://{credentials}127.0.0.1:{self.port}{path}"

    async def wait_healthy(self, timeout: float = 90) -> float:
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"selfheal serve exited ({self.process.returncode}):\n{self.log.read_text()}")
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return time.perf_counter() - self.started
                except httpx.TransportError:
                    pass
                if time.perf_counter() - self.started > timeout:
                    raise AssertionError(f"selfheal serve did not become healthy:\n{self.log.read_text()}")
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    async def metrics(self, client: httpx.AsyncClient) -> str:
        response = await client.get(self.url("/metrics"))
        assert response.status_code == 200
        return response.text


def analyses_run(text: str) -> float:
    return metric(text, "selfheal_analyses_total", source="model") + metric(text, "selfheal_analyses_total",
                                                                             source="judge")


def github_env(github: FakeGitHub) -> dict[str, str]:
    return {"SELFHEAL_GITHUB_TOKEN": GITHUB_TOKEN, "SELFHEAL_GITHUB_API_URL": github.base_url,
            "SELFHEAL_REPO_ALLOWLIST": "acme/shop"}


def issues_for(github: FakeGitHub, fingerprint_prefix: str) -> list[dict]:
    return [issue for issue in github.repo("acme/shop").real_issues() if fingerprint_prefix in issue["body"]]


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(tokens={GITHUB_TOKEN})
    fake.start()
    fake.add_repo("acme/shop")
    try:
        yield fake
    finally:
        fake.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(simulator: SimulatedCluster, github: FakeGitHub, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Served]:
    served = Served({**simulator.environment(), **github_env(github), "SELFHEAL_TOKEN": TOKEN},
                    tmp_path_factory.mktemp("e2e-state"))
    try:
        await served.wait_healthy()
        yield served
    finally:
        served.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # The plugin's client timeout is 5 minutes and it never retries.
    async with httpx.AsyncClient(timeout=300) as http:
        yield http


def record_count(served: Served, memory_key: str) -> int:
    with sqlite3.connect(served.state_dir / "selfheal.db", timeout=10) as db:
        return db.execute("SELECT count(*) FROM selfheal_analyses WHERE memory_key = ?", (memory_key,)).fetchone()[0]


# --------------------------------------------------------------------------------------------------
# The shared server
# --------------------------------------------------------------------------------------------------


async def test_probes(server: Served, client: httpx.AsyncClient) -> None:
    root = await client.get(server.url("/"))
    assert root.status_code == 200 and root.json()["status"] == "ok" and root.json()["models"] == ["runbook"]
    assert (await client.get(f"http://127.0.0.1:{server.port}/healthz")).json() == {"status": "ok"}  # no token
    assert (await client.get(f"http://127.0.0.1:{server.port}/")).status_code == 401  # reachable for the plugin
    assert (await client.get(server.url("/a2a/health"))).status_code == 200
    ready = await client.get(server.url("/readyz"))
    assert ready.status_code == 200 and ready.json()["ready"] is True
    card = await client.get(server.url("/.well-known/agent-card.json"))
    assert card.status_code == 200 and card.json()["name"]


async def test_fifty_concurrent_requests_run_one_analysis(server: Served, client: httpx.AsyncClient,
                                                          go_decoder: GoDecoder) -> None:
    body = request_for("noisy-but-healthy")
    before = await server.metrics(client)
    responses = await asyncio.gather(*(client.post(server.url("/a2a/analyze"), json=body) for _ in range(50)))
    after = await server.metrics(client)
    assert [r.status_code for r in responses] == [200] * 50
    assert len({r.content for r in responses}) == 1  # everyone got the one analysis' answer
    assert analyses_run(after) - analyses_run(before) == 1
    joined = (metric(after, "selfheal_shared_flights_total") - metric(before, "selfheal_shared_flights_total")
              + metric(after, "selfheal_cache_hits_total") - metric(before, "selfheal_cache_hits_total"))
    assert joined == 49
    assert record_count(server, body["memoryId"]) == 1
    assert_go_decodes(go_decoder, [responses[0].content])


@pytest.mark.parametrize("name", SCENARIOS)
async def test_every_scenario(server: Served, client: httpx.AsyncClient, github: FakeGitHub, go_decoder: GoDecoder,
                              name: str) -> None:
    data = scenario(name)
    body = request_for(name, repo_url=REPO_URL, base_branch="main")
    response = await client.post(server.url("/a2a/analyze"), json=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["promote"] is data["expect"]["promote"], answer
    assert answer["analysis"] and answer["rootCause"] and answer["remediation"]
    assert_go_decodes(go_decoder, [response.content])
    namespace, rollout = data["rollout"]["namespace"], data["rollout"]["name"]
    filed = issues_for(github, f"{namespace}/{rollout}/")
    if answer["promote"]:
        assert "prLink" not in answer and filed == []
    else:
        # One issue per rollout revision, and the link is the one GitHub's API returned.
        assert len(filed) == 1, [issue["title"] for issue in filed]
        assert answer["prLink"] == f"https://github.com/acme/shop/issues/{filed[0]['number']}"
        assert "canary-rollback" in [str(label).lower() for label in filed[0]["labels"]]


async def test_repeat_requests_are_answered_from_the_record(server: Served, client: httpx.AsyncClient,
                                                            github: FakeGitHub) -> None:
    body = request_for("bad-canary", repo_url=REPO_URL, base_branch="main")
    first = await client.post(server.url("/a2a/analyze"), json=body)
    before = await server.metrics(client)
    seconds = []
    for _ in range(20):
        started = time.perf_counter()
        response = await client.post(server.url("/a2a/analyze"), json=body)
        seconds.append(time.perf_counter() - started)
        assert response.content == first.content
    after = await server.metrics(client)
    assert metric(after, "selfheal_cache_hits_total") - metric(before, "selfheal_cache_hits_total") == 20
    assert analyses_run(after) == analyses_run(before)
    assert sorted(seconds)[18] < 0.25, seconds  # p95; the benchmark measures the real figure
    assert len(issues_for(github, "demo-bad/canary-demo/")) == 1  # a repeat files nothing


async def test_repo_off_the_allow_list_files_nothing(server: Served, client: httpx.AsyncClient,
                                                     github: FakeGitHub) -> None:
    body = request_for("panic-canary", repo_url="https://github.com/acme/not-allowed")
    body["memoryId"] += "#second-template"  # another AnalysisTemplate: not answered from the record
    before = await server.metrics(client)
    response = await client.post(server.url("/a2a/analyze"), json=body)
    answer = response.json()
    assert answer["promote"] is False and "prLink" not in answer
    assert github.requests_to("POST", r"/repos/acme/not-allowed") == []
    assert github.requests_to("GET", r"/repos/acme/not-allowed") == []
    deadline = time.monotonic() + 10
    while metric(await server.metrics(client), "selfheal_remediations_total", action="refused") < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert metric(before, "selfheal_remediations_total", action="refused") == 0


async def test_metrics_page(server: Served, client: httpx.AsyncClient) -> None:
    text = await server.metrics(client)
    assert metric(text, "selfheal_analyses_total", verdict="promote") >= 1
    assert metric(text, "selfheal_analyses_total", verdict="abort") >= 1
    assert metric(text, "selfheal_analyses_total", source="record") >= 1
    assert metric(text, "selfheal_model_calls_total", model="runbook") >= len(SCENARIOS)
    assert metric(text, "selfheal_model_tokens_total", model="runbook", kind="prompt") > 0
    assert metric(text, "selfheal_model_tokens_total", model="runbook", kind="output") > 0
    assert metric(text, "selfheal_cache_hits_total") >= 1
    assert metric(text, "selfheal_remediations_total", action="created") >= 1
    assert metric(text, "selfheal_analysis_duration_seconds_count") >= len(SCENARIOS)
    assert "selfheal_errors_total" in text


async def test_readyz_is_503_while_the_kubernetes_api_is_down(server: Served, client: httpx.AsyncClient,
                                                              simulator_faults: SimulatedCluster) -> None:
    simulator_faults.inject_fault(r"^/version", status=503)
    down = await client.get(server.url("/readyz"))
    assert down.status_code == 503
    assert down.json()["ready"] is False and down.json()["checks"]["kubernetes"].startswith("unavailable")
    assert down.json()["checks"]["state_store"] == "ok"
    simulator_faults.clear_faults()
    assert (await client.get(server.url("/readyz"))).status_code == 200


async def test_a_second_process_continues_the_session_and_shares_the_record(
        server: Served, client: httpx.AsyncClient, simulator: SimulatedCluster) -> None:
    body = request_for("bad-canary")
    # TTL 0: the second process analyses again, in the ADK session the first process left behind.
    second = Served({**simulator.environment(), "SELFHEAL_TOKEN": TOKEN, "SELFHEAL_CACHE_TTL_SECONDS": "0"},
                    server.state_dir)
    try:
        await second.wait_healthy()
        response = await client.post(second.url("/a2a/analyze"), json=body)
        assert response.status_code == 200 and response.json()["promote"] is False
        assert analyses_run(await second.metrics(client)) == 1
    finally:
        second.stop()
    sessions = DatabaseSessionService(db_url=f"sqlite+aiosqlite:///{server.state_dir / 'selfheal.db'}")
    session = await sessions.get_session(app_name="rollout_doctor", user_id="argo-rollouts",
                                         session_id=session_id_for(body["memoryId"], "runbook"))
    prompts = [event for event in session.events if event.author == "user"]
    assert len(prompts) == 2  # the first process's analysis, then the second's
    assert any(part.function_call and part.function_call.name == "get_canary_evidence"
               for event in session.events if event.content for part in event.content.parts or [])
    assert record_count(server, body["memoryId"]) == 2
    # The first process answers the next measurement from the record the second one wrote.
    again = await client.post(server.url("/a2a/analyze"), json=body)
    assert again.content == response.content


# --------------------------------------------------------------------------------------------------
# Two replicas on one PostgreSQL
# --------------------------------------------------------------------------------------------------


async def test_two_processes_on_one_postgresql_file_once(simulator: SimulatedCluster, client: httpx.AsyncClient,
                                                         tmp_path: Path, go_decoder: GoDecoder) -> None:
    postgres = Postgres.start()
    fake = FakeGitHub(tokens={GITHUB_TOKEN})
    fake.start()
    fake.add_repo("acme/shop")
    replicas: list[Served] = []
    try:
        env = {**simulator.environment(), **github_env(fake), "SELFHEAL_DATABASE_URL": postgres.url}
        replicas = [Served(env, tmp_path / f"replica-{index}") for index in range(2)]
        await asyncio.gather(*(replica.wait_healthy() for replica in replicas))
        body = request_for("bad-canary", repo_url=REPO_URL, base_branch="main")
        responses = await asyncio.gather(*(client.post(replicas[i % 2].url("/a2a/analyze"), json=body)
                                           for i in range(10)))
        answers = [response.json() for response in responses]
        assert all(response.status_code == 200 for response in responses)
        assert all(answer["promote"] is False for answer in answers)
        assert_go_decodes(go_decoder, [response.content for response in responses])
        await asyncio.sleep(1.0)  # let a replica that lost the race finish its background work
        issues = fake.repo("acme/shop").real_issues()
        assert len(issues) == 1, [issue["title"] for issue in issues]
        assert len(fake.requests_to("POST", r"/repos/acme/shop/issues$")) == 1
        url = f"https://github.com/acme/shop/issues/{issues[0]['number']}"
        links = {answer.get("prLink") for answer in answers} - {None}
        assert links == {url}
        # Both replicas analysed and tried to file; one created the issue, the other found it taken.
        pages = [await replica.metrics(client) for replica in replicas]
        assert [analyses_run(page) for page in pages] == [1, 1]
        assert sum(metric(page, "selfheal_remediations_total", action="created") for page in pages) == 1
        assert sum(metric(page, "selfheal_remediations_total", action=action) for page in pages
                   for action in ("already_filed", "commented")) == 1
        # Both replicas used PostgreSQL, not a file of their own.
        assert not any((replica.state_dir / "selfheal.db").exists() for replica in replicas)
        for replica in replicas:
            assert (await client.get(replica.url("/readyz"))).json()["checks"]["state_store"] == "ok"
    finally:
        for replica in replicas:
            replica.stop()
        fake.stop()
        postgres.stop()
