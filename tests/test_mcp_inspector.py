"""A third-party MCP client against `selfheal mcp`: the MCP Inspector CLI from npm.

The Inspector is pinned in scripts/npm-tools/package.json to 0.15.0, the newest release whose
engines accept the machine's Node 20; scripts/test.sh installs it into .tools. Its CLI exits 0
even when a tool call returns `isError: true`, so every call's JSON is checked, not the exit code.
0.15.0 cannot send HTTP headers, so over HTTP it talks to a server without a token, and a server
with a token is shown to refuse it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from selfheal.simulator import SimulatedCluster
from test_mcp import EXPECTED_TOOLS, Target, selfheal_command, server_env, start_http_mcp

ROOT = Path(__file__).resolve().parents[1]
INSPECTOR = ROOT / ".tools" / "node_modules" / ".bin" / "mcp-inspector"
PINNED = json.loads((ROOT / "scripts" / "npm-tools" / "package.json").read_text())["dependencies"][
    "@modelcontextprotocol/inspector"]


@pytest.fixture(scope="module")
def inspector() -> Path:
    # Required real parts, installed by scripts/test.sh: a missing one fails, it is never skipped.
    assert shutil.which("node"), "node is not installed"
    assert INSPECTOR.exists(), "the MCP Inspector is not installed: run scripts/test.sh (it installs scripts/npm-tools into .tools)"
    installed = json.loads((ROOT / ".tools" / "node_modules" / "@modelcontextprotocol" / "inspector" /
                            "package.json").read_text())["version"]
    assert installed == PINNED, f".tools has inspector {installed}, scripts/npm-tools pins {PINNED}"
    return INSPECTOR


def run_inspector(inspector: Path, target: list[str], *args: str, env: dict[str, str] | None = None,
                  timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(inspector), "--cli", *target, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def answer(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, f"inspector failed ({result.returncode}): {result.stderr[-2000:]}"
    return json.loads(result.stdout)


def tool_json(result: subprocess.CompletedProcess[str]) -> dict:
    data = answer(result)
    assert data.get("isError") is not True, data
    assert data["structuredContent"] == json.loads(data["content"][0]["text"])
    return data["structuredContent"]


def check_tools(data: dict) -> None:
    tools = {tool["name"]: tool for tool in data["tools"]}
    assert set(tools) == EXPECTED_TOOLS
    analyze = tools["analyze_rollout"]
    assert analyze["inputSchema"]["required"] == ["namespace", "rollout"]
    assert analyze["inputSchema"]["properties"]["namespace"]["description"]
    assert "promote" in analyze["outputSchema"]["properties"]


@pytest.fixture(scope="module")
def stdio_env(simulator: SimulatedCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return server_env(simulator, tmp_path_factory.mktemp("inspector-stdio"))


def test_inspector_stdio_lists_tools_and_analyzes(inspector: Path, stdio_env: dict[str, str]) -> None:
    bad = Target("bad-canary")
    command = [*selfheal_command(), "mcp"]
    check_tools(answer(run_inspector(inspector, command, "--method", "tools/list", env=stdio_env)))

    verdict = tool_json(run_inspector(
        inspector, command, "--method", "tools/call", "--tool-name", "analyze_rollout",
        "--tool-arg", f"namespace={bad.namespace}", f"rollout={bad.rollout}", env=stdio_env))
    assert verdict["promote"] is False and verdict["rollout"] == bad.rollout

    refused = answer(run_inspector(
        inspector, command, "--method", "tools/call", "--tool-name", "get_pod_logs",
        "--tool-arg", f"namespace={bad.namespace}", "pod=web", "tail_lines=50000", env=stdio_env))
    assert refused["isError"] is True and "tail_lines" in refused["content"][0]["text"]


def test_inspector_http_lists_tools_and_analyzes(inspector: Path, simulator: SimulatedCluster,
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    healthy = Target("healthy-canary")
    server, url = start_http_mcp(simulator, tmp_path_factory.mktemp("inspector-http"))
    try:
        http = [url, "--transport", "http"]
        check_tools(answer(run_inspector(inspector, http, "--method", "tools/list")))
        verdict = tool_json(run_inspector(
            inspector, http, "--method", "tools/call", "--tool-name", "analyze_rollout",
            "--tool-arg", f"namespace={healthy.namespace}", f"rollout={healthy.rollout}"))
        assert verdict["promote"] is True and verdict["namespace"] == healthy.namespace
    finally:
        server.stop()


def test_inspector_without_the_token_is_refused(inspector: Path, simulator: SimulatedCluster,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    server, url = start_http_mcp(simulator, tmp_path_factory.mktemp("inspector-token"), SELFHEAL_TOKEN="s3cret-token")
    try:
        result = run_inspector(inspector, [url, "--transport", "http"], "--method", "tools/list")
        assert result.returncode != 0
        assert "authentication required" in result.stderr
    finally:
        server.stop()
