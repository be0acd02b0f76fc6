"""`selfheal mcp` end to end: the real `mcp` client over stdio and streamable HTTP, against the simulator.

Servers run as real processes with the runbook model and their own state directory:
- stdio: `selfheal mcp`, spawned by the client (one connection shared by the module);
- HTTP: `selfheal mcp --transport http --port 0` with a token;
- mounted: `selfheal serve --mcp` with a token, next to the plugin endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from selfheal.contract import go_decode_error, plugin_request
from selfheal.simulator import SimulatedCluster, bundled_scenarios_dir, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "mcp-test-token"
SELFHEAL = Path(sys.executable).with_name("selfheal")
EXPECTED_TOOLS = {
    "analyze_rollout", "get_canary_evidence", "list_pods", "get_pod_logs", "get_events", "get_rollout",
    "query_prometheus", "ask_agent", "file_remediation",
}
# Variables that would point a server at real credentials, models or another cluster.
_SCRUBBED_PREFIXES = ("SELFHEAL_", "GOOGLE_", "GEMINI_", "VERTEX")
_SCRUBBED = {"KUBECONFIG", "PROMETHEUS_URL", "GITHUB_TOKEN", "GITHUB_API_URL", "JULES_API_KEY", "JULES_API_URL"}


# --- scenarios -------------------------------------------------------------------------------
class Target:
    """A bundled scenario's rollout: namespace, name and selectors."""

    def __init__(self, name: str):
        folder = bundled_scenarios_dir() / name
        assert (folder / "scenario.yaml").is_file(), f"scenario {name!r} is not bundled in evals/scenarios"
        meta = yaml.safe_load((folder / "scenario.yaml").read_text())
        self.name = name
        self.namespace: str = meta["rollout"]["namespace"]
        self.rollout: str = meta["rollout"]["name"]
        selectors = meta.get("selectors") or {}
        self.stable: str = selectors.get("stable", "role=stable")
        self.canary: str = selectors.get("canary", "role=canary")

    @property
    def args(self) -> dict[str, str]:
        return {"namespace": self.namespace, "rollout": self.rollout,
                "stable_selector": self.stable, "canary_selector": self.canary}


@pytest.fixture(scope="session")
def bad() -> Target:
    return Target("bad-canary")


@pytest.fixture(scope="session")
def healthy() -> Target:
    return Target("healthy-canary")


# --- servers ---------------------------------------------------------------------------------
def server_env(cluster: SimulatedCluster, state_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment: the simulator, the runbook model, a private state dir, nothing else."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED}
    env.update(cluster.environment())
    env.update({
        "SELFHEAL_MODEL": "runbook",
        "SELFHEAL_STATE_DIR": str(state_dir),
        "ADK_SUPPRESS_EXPERIMENTAL_FEATURE_WARNINGS": "true",
        "GOOGLE_API_USE_CLIENT_CERTIFICATE": "false",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def selfheal_command() -> list[str]:
    return [str(SELFHEAL)] if SELFHEAL.exists() else [sys.executable, "-m", "selfheal.cli"]


class ServerProcess:
    """A `selfheal` server process; its stderr goes to a log file shown when a test fails."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen([*selfheal_command(), *args], env=env, stdout=subprocess.PIPE,
                                        stderr=self._log_file, text=True)

    def read_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                return self.process.stdout.readline()
        raise AssertionError(f"the server printed nothing in {timeout}s; log:\n{self.log.read_text()[-4000:]}")

    def wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{url} did not answer in {timeout}s; log:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def start_http_mcp(cluster: SimulatedCluster, workdir: Path, **extra: str) -> tuple[ServerProcess, str]:
    """`selfheal mcp --transport http --port 0`; returns the process and the URL it printed."""
    server = ServerProcess(["mcp", "--transport", "http", "--port", "0", "--log-level", "info"],
                           server_env(cluster, workdir / "state", **extra), workdir / "mcp-http.log")
    line = server.read_line(timeout=60)
    url = json.loads(line)["mcp"]
    server.wait_http(url.rsplit("/", 1)[0] + "/healthz", timeout=30)
    return server, url


@pytest.fixture(scope="module")
def http_server(simulator: SimulatedCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, url = start_http_mcp(simulator, tmp_path_factory.mktemp("mcp-http"), SELFHEAL_TOKEN=TOKEN)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def mounted_server(simulator: SimulatedCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`selfheal serve --mcp` with a token; yields the service's base URL."""
    workdir = tmp_path_factory.mktemp("serve-mcp")
    port = free_port()
    server = ServerProcess(["serve", "--mcp", "--port", str(port), "--log-level", "warning"],
                           server_env(simulator, workdir / "state", SELFHEAL_TOKEN=TOKEN), workdir / "serve.log")
    base = f"http://127.0.0.1:{port}"
    server.wait_http(f"{base}/healthz", timeout=90)
    yield base
    server.stop()


# --- client sessions -------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def stdio_session(env: dict[str, str], errlog: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=selfheal_command()[0], args=[*selfheal_command()[1:], "mcp"], env=env)
    with errlog.open("a") as log:
        async with stdio_client(params, errlog=log) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            yield session


@contextlib.asynccontextmanager
async def http_session(url: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as client, \
            streamable_http_client(url, http_client=client) as streams, \
            ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        yield session


class HeldSession:
    """An MCP client session kept open across tests, entered and exited in one task (anyio rule)."""

    def __init__(self, opener: Callable[[], contextlib.AbstractAsyncContextManager[ClientSession]]):
        self._opener = opener
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold())

    async def _hold(self) -> None:
        try:
            async with self._opener() as session:
                self._ready.set_result(session)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    async def session(self) -> ClientSession:
        return await asyncio.wait_for(asyncio.shield(self._ready), timeout=120)

    async def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, timeout=30)


@pytest.fixture(scope="module")
def stdio_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp-stdio") / "server.log"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stdio(simulator: SimulatedCluster, tmp_path_factory: pytest.TempPathFactory,
                stdio_log: Path) -> AsyncIterator[ClientSession]:
    env = server_env(simulator, tmp_path_factory.mktemp("mcp-stdio-state"))
    held = HeldSession(lambda: stdio_session(env, stdio_log))
    try:
        yield await held.session()
    finally:
        await held.close()


async def call(session: ClientSession, tool: str, **arguments: Any):
    return await session.call_tool(tool, arguments)


def structured(result) -> dict:
    assert not result.is_error, f"unexpected tool error: {result.content[0].text if result.content else result}"
    assert isinstance(result.structured_content, dict)
    # The text block carries the same JSON for clients that only read text.
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error_message(result) -> str:
    assert result.is_error, f"expected an error result, got {result}"
    text = " ".join(block.text for block in result.content if getattr(block, "text", None))
    assert "Traceback" not in text and 'File "' not in text
    return text


# --- stdio -----------------------------------------------------------------------------------
async def test_tools_are_listed_with_usable_schemas(stdio: ClientSession) -> None:
    tools = {tool.name: tool for tool in (await stdio.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 80, tool.name
        assert not tool.description.startswith(" "), "descriptions are dedented"
        schema = tool.input_schema
        assert schema["type"] == "object"
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", tool.name
        assert tool.annotations is not None
        # ask_agent cannot write while MCP remediation is off (the default).
        assert tool.annotations.read_only_hint is (tool.name != "file_remediation"), tool.name

    analyze = tools["analyze_rollout"].input_schema
    assert analyze["required"] == ["namespace", "rollout"]
    assert analyze["properties"]["namespace"]["pattern"]
    assert analyze["properties"]["stable_selector"]["default"] == "role=stable"
    verdict_schema = tools["analyze_rollout"].output_schema
    assert {"promote", "confidence", "analysis"} <= set(verdict_schema["required"])
    assert {"rootCause", "remediation", "namespace", "rollout"} <= set(verdict_schema["properties"])
    logs = tools["get_pod_logs"].input_schema["properties"]
    assert (logs["tail_lines"]["minimum"], logs["tail_lines"]["maximum"]) == (1, 10000)
    assert logs["mode"]["enum"] == ["condensed", "raw"]
    assert tools["ask_agent"].input_schema["required"] == ["question"]
    assert "ctx" not in tools["ask_agent"].input_schema["properties"]
    assert tools["file_remediation"].annotations.destructive_hint is False


async def test_analyze_rollout_aborts_the_bad_canary(stdio: ClientSession, bad: Target) -> None:
    verdict = structured(await call(stdio, "analyze_rollout", **bad.args))
    assert verdict["promote"] is False
    assert isinstance(verdict["confidence"], int) and 0 <= verdict["confidence"] <= 100
    assert verdict["namespace"] == bad.namespace and verdict["rollout"] == bad.rollout
    assert verdict["rootCause"] and verdict["analysis"]
    assert verdict["modelResults"] and verdict["modelResults"][0]["modelName"] == "runbook"
    assert verdict["canary"]["pod_template_hash"]
    # The plugin's wire fields decode with the Go client's rules.
    wire = {key: value for key, value in verdict.items() if key not in ("namespace", "rollout", "canary")}
    assert go_decode_error(json.dumps(wire)) is None


async def test_analyze_rollout_promotes_the_healthy_canary(stdio: ClientSession, healthy: Target) -> None:
    verdict = structured(await call(stdio, "analyze_rollout", namespace=healthy.namespace, rollout=healthy.rollout))
    assert verdict["promote"] is True, verdict
    assert verdict["confidence"] > 0


async def test_recent_analyses_resources(stdio: ClientSession, bad: Target, healthy: Target) -> None:
    structured(await call(stdio, "analyze_rollout", **bad.args))  # answered from the record when repeated
    listed = {str(resource.uri) for resource in (await stdio.list_resources()).resources}
    assert "selfheal://analyses/recent" in listed
    templates = [template.uri_template for template in (await stdio.list_resource_templates()).resource_templates]
    assert "selfheal://analyses/{namespace}/{rollout}" in templates

    recent = json.loads((await stdio.read_resource("selfheal://analyses/recent")).contents[0].text)
    rollouts = {(item["namespace"], item["rollout"]): item for item in recent["analyses"]}
    assert rollouts[(bad.namespace, bad.rollout)]["promote"] is False
    assert rollouts[(healthy.namespace, healthy.rollout)]["promote"] is True

    one = json.loads((await stdio.read_resource(f"selfheal://analyses/{bad.namespace}/{bad.rollout}")).contents[0].text)
    assert one["count"] >= 1
    assert all(item["rollout"] == bad.rollout for item in one["analyses"])
    assert one["analyses"][0]["report"], "the newest record carries the evidence report"


async def test_read_tools(stdio: ClientSession, simulator: SimulatedCluster, bad: Target) -> None:
    pods = structured(await call(stdio, "list_pods", namespace=bad.namespace, label_selector=bad.canary))
    assert pods["count"] >= 1
    pod = pods["pods"][0]["name"]

    logs = structured(await call(stdio, "get_pod_logs", namespace=bad.namespace, pod=pod, tail_lines=2000))
    assert logs["mode"] == "condensed" and "text" not in logs
    assert logs["signatures"] and {"template", "count", "example"} <= set(logs["signatures"][0])
    assert logs["stats"]["entries"] >= 1
    raw = structured(await call(stdio, "get_pod_logs", namespace=bad.namespace, pod=pod, tail_lines=20, mode="raw"))
    assert 0 < raw["lines"] <= 20 and raw["text"]

    events = structured(await call(stdio, "get_events", namespace=bad.namespace))
    assert "events" in events
    rollout = structured(await call(stdio, "get_rollout", namespace=bad.namespace, rollout=bad.rollout))
    assert rollout["name"] == bad.rollout and rollout["canary"]["pod_template_hash"]

    evidence = structured(await call(stdio, "get_canary_evidence", **bad.args))
    assert evidence["verdict"] == "abort"
    assert evidence["failing_metrics"] and evidence["canary_hash"]
    assert "Judge verdict: ABORT" in evidence["report"], "the report carries the judge's metric table"

    if simulator.prometheus_url:
        series = structured(await call(stdio, "query_prometheus",
                                       query=f'sum by (pod) (http_requests_total{{namespace="{bad.namespace}"}})'))
        assert series["series_count"] >= 1
    else:
        message = error_message(await call(stdio, "query_prometheus", query="up"))
        assert "not_configured" in message


async def test_ask_agent_answers_in_one_session(stdio: ClientSession, bad: Target) -> None:
    question = f"Is the canary of rollout {bad.rollout} in namespace {bad.namespace} healthy?"
    first = structured(await call(stdio, "ask_agent", question=question))
    assert first["answer"] and first["model"] == "runbook"
    assert first["verdict"]["promote"] is False
    assert first["tool_calls"], "the agent used tools"
    second = structured(await call(stdio, "ask_agent", question=f"Why did rollout {bad.rollout} in {bad.namespace} fail?"))
    assert second["answer"]
    assert second["session"] == first["session"], "one ADK session per MCP session"
    # The remediation agent cannot file through the chat while MCP remediation is off.
    filing = structured(await call(stdio, "ask_agent", question=f"File an issue for rollout {bad.rollout} in "
                                   f"namespace {bad.namespace}, repo https://github.com/acme/shop"))
    assert "SELFHEAL_ENABLE_MCP_REMEDIATION" in filing["answer"], filing
    assert filing["session"] == first["session"]


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("analyze_rollout", {"namespace": "Demo_Bad", "rollout": "web"}, ["namespace", "lowercase"]),
        ("analyze_rollout", {"namespace": "demo"}, ["rollout is required"]),
        ("get_pod_logs", {"namespace": "demo", "pod": "web-1", "tail_lines": 50000}, ["tail_lines", "10000"]),
        ("get_pod_logs", {"namespace": "demo", "pod": "web-1", "tail_lines": "many"}, ["tail_lines", "integer"]),
        ("get_pod_logs", {"namespace": "demo", "pod": "web-1", "mode": "full"}, ["mode", "condensed"]),
        ("get_events", {"namespace": "demo", "limit": 0}, ["limit", "greater than or equal to 1"]),
        ("query_prometheus", {"query": ""}, ["query", "at least 1 character"]),
        ("ask_agent", {"question": ""}, ["question"]),
        ("no_such_tool", {}, ["Unknown tool", "analyze_rollout"]),
    ],
)
async def test_bad_arguments_get_a_clear_error(stdio: ClientSession, tool: str, arguments: dict,
                                               expected: list[str]) -> None:
    message = error_message(await stdio.call_tool(tool, arguments))
    for fragment in expected:
        assert fragment.lower() in message.lower(), message


async def test_unknown_rollout_and_pod_are_errors_that_help(stdio: ClientSession, bad: Target) -> None:
    message = error_message(await call(stdio, "analyze_rollout", namespace=bad.namespace, rollout="no-such-rollout"))
    assert "not_found" in message and bad.rollout in message, "the hint lists the namespace's rollouts"
    message = error_message(await call(stdio, "get_pod_logs", namespace=bad.namespace, pod="no-such-pod"))
    assert "not_found" in message


async def test_file_remediation_is_refused_by_default(stdio: ClientSession, bad: Target) -> None:
    message = error_message(await call(stdio, "file_remediation", namespace=bad.namespace, rollout=bad.rollout,
                                       repo_url="https://github.com/acme/shop"))
    assert "disabled" in message and "SELFHEAL_ENABLE_MCP_REMEDIATION" in message


async def test_investigate_prompt(stdio: ClientSession, bad: Target) -> None:
    prompts = {prompt.name: prompt for prompt in (await stdio.list_prompts()).prompts}
    arguments = {argument.name: argument for argument in prompts["investigate_rollout"].arguments}
    assert set(arguments) == {"namespace", "rollout"} and all(a.required and a.description for a in arguments.values())
    prompt = await stdio.get_prompt("investigate_rollout", {"namespace": bad.namespace, "rollout": bad.rollout})
    text = prompt.messages[0].content.text
    assert "analyze_rollout" in text and bad.namespace in text and bad.rollout in text


# --- streamable HTTP, standalone ---------------------------------------------------------------
async def test_http_requires_the_token(http_server: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(http_server, json=body, headers=headers)).status_code == 401
        wrong = {**headers, "authorization": "Bearer nope"}
        assert (await client.post(http_server, json=body, headers=wrong)).status_code == 401
        assert (await client.get(http_server.replace("/mcp", "/healthz"))).status_code == 200
    with pytest.raises(BaseException):
        async with http_session(http_server) as session:
            await session.list_tools()


async def test_http_with_token_analyzes(http_server: str, bad: Target, healthy: Target) -> None:
    async with http_session(http_server, TOKEN) as session:
        assert {tool.name for tool in (await session.list_tools()).tools} == EXPECTED_TOOLS
        assert structured(await call(session, "analyze_rollout", **bad.args))["promote"] is False
        assert structured(await call(session, "analyze_rollout", namespace=healthy.namespace,
                                     rollout=healthy.rollout))["promote"] is True
        message = error_message(await call(session, "get_pod_logs", namespace=bad.namespace, pod="x", tail_lines=0))
        assert "tail_lines" in message


async def test_http_ask_agent_keeps_one_adk_session_per_mcp_session(http_server: str, bad: Target) -> None:
    question = f"Is the canary of rollout {bad.rollout} in namespace {bad.namespace} healthy?"
    async with http_session(http_server, TOKEN) as session:
        first = structured(await call(session, "ask_agent", question=question))
        again = structured(await call(session, "ask_agent", question=question))
    async with http_session(http_server, TOKEN) as other:
        third = structured(await call(other, "ask_agent", question=question))
    assert first["session"] == again["session"]
    assert third["session"] != first["session"]
    assert first["verdict"]["promote"] is False and third["answer"]


# --- mounted in `selfheal serve --mcp` ----------------------------------------------------------
async def test_serve_mounts_mcp_behind_the_token(mounted_server: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{mounted_server}/mcp", json=body,
                                     headers={"accept": "application/json, text/event-stream"})
    assert response.status_code == 401
    async with http_session(f"{mounted_server}/mcp", TOKEN) as session:
        assert {tool.name for tool in (await session.list_tools()).tools} == EXPECTED_TOOLS


async def test_serve_mcp_shares_the_plugin_record(mounted_server: str, bad: Target) -> None:
    async with http_session(f"{mounted_server}/mcp", TOKEN) as session:
        verdict = structured(await call(session, "analyze_rollout", **bad.args))
        assert verdict["promote"] is False
        async with httpx.AsyncClient(timeout=120) as client:
            started = time.perf_counter()
            response = await client.post(f"{mounted_server}/a2a/analyze",
                                         json=plugin_request(bad.namespace, bad.rollout, bad.stable, bad.canary),
                                         headers={"Authorization": f"Bearer {TOKEN}"})
            elapsed = time.perf_counter() - started
        assert response.status_code == 200
        plugin = response.json()
        assert go_decode_error(response.text) is None
        assert (plugin["promote"], plugin["confidence"], plugin["analysis"]) == (
            verdict["promote"], verdict["confidence"], verdict["analysis"])
        assert elapsed < 5, "the plugin's repeat is answered from the record MCP wrote"
        text = (await session.read_resource(f"selfheal://analyses/{bad.namespace}/{bad.rollout}")).contents[0].text
        assert json.loads(text)["count"] == 1, "one analysis, one record, two front doors"


# --- the write action, enabled ------------------------------------------------------------------
async def test_file_remediation_when_enabled_respects_allow_list_and_revision(
        simulator: SimulatedCluster, tmp_path: Path, bad: Target, healthy: Target) -> None:
    from fakes.github_server import GITHUB_TOKEN, REPO, FakeGitHub

    github = FakeGitHub(tokens={GITHUB_TOKEN})
    github.start()
    github.add_repo(REPO, files={"app/server.py": "def handler():\n    return 200\n"})
    env = server_env(simulator, tmp_path / "state", SELFHEAL_ENABLE_MCP_REMEDIATION="true",
                     SELFHEAL_REPO_ALLOWLIST=REPO, SELFHEAL_GITHUB_API_URL=github.base_url,
                     SELFHEAL_GITHUB_TOKEN=GITHUB_TOKEN, SELFHEAL_REMEDIATION_MODE="issue")
    try:
        async with stdio_session(env, tmp_path / "server.log") as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert tools["ask_agent"].annotations.read_only_hint is False

            args = {"namespace": bad.namespace, "rollout": bad.rollout}
            message = error_message(await call(session, "file_remediation", **args,
                                               repo_url="https://github.com/other-org/app"))
            assert "refused" in message and "SELFHEAL_REPO_ALLOWLIST" in message

            first = structured(await call(session, "file_remediation", **args, repo_url=f"https://github.com/{REPO}"))
            assert first["action"] == "created" and first["issue_url"], first
            again = structured(await call(session, "file_remediation", **args, repo_url=f"https://github.com/{REPO}"))
            assert again["action"] in ("commented", "already_filed"), again
            assert again["issue_number"] == first["issue_number"]
            assert len(github.repo(REPO).real_issues()) == 1, "one issue per rollout revision"

            message = error_message(await call(session, "file_remediation", namespace=healthy.namespace,
                                               rollout=healthy.rollout, repo_url=f"https://github.com/{REPO}"))
            assert "refused" in message and "judge passed" in message
    finally:
        github.stop()
