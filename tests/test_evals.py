"""The golden-transcript evals, as CI runs them: `selfheal eval` (adk eval, offline runbook model,
a simulator serving every scenario) must pass; the report and the recorder work offline too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.adk.evaluation.local_eval_sets_manager import load_eval_set_from_file

from evals import metrics
from evals.runner import EVALSETS_DIR, ROOT, bundled_scenario_dirs
from selfheal.contract import plugin_prompt
from selfheal.simulator.scenario import read_info

EVALSETS = sorted(EVALSETS_DIR.glob("*.evalset.json"))


def selfheal(*args: str, timeout: float = 280) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ADK_SUPPRESS_EXPERIMENTAL_FEATURE_WARNINGS="true", GOOGLE_API_USE_CLIENT_CERTIFICATE="false")
    return subprocess.run([sys.executable, "-m", "selfheal.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def _tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def _cases():
    for path in EVALSETS:
        yield from load_eval_set_from_file(str(path), path.stem).eval_cases


def _called(case) -> list[tuple[str, dict]]:
    return [(call.name, dict(call.args or {})) for turn in case.conversation for call in turn.intermediate_data.tool_uses]


# --- the eval sets themselves -------------------------------------------------------------------------


def test_every_scenario_has_a_case_with_the_plugins_prompt():
    prompts = {turn.user_content.parts[0].text for case in _cases() for turn in case.conversation}
    for folder in bundled_scenario_dirs():
        info = read_info(folder)
        prompt = plugin_prompt(info.rollout.namespace, info.rollout.name, info.selectors.stable, info.selectors.canary)
        assert prompt in prompts, f"no eval case sends the plugin's prompt for {folder.name}"


def test_chat_cases_delegate_to_both_sub_agents_and_confirm_writes():
    chat = [case for case in _cases() if case.eval_id.startswith("chat_")]
    transfers = {args.get("agent_name") for case in chat for name, args in _called(case) if name == "transfer_to_agent"}
    assert transfers >= {"diagnosis", "remediation"}
    asked = [turn.user_content.parts[0].text for case in chat for turn in case.conversation]
    for question in ("is the canary of canary-demo in demo-bad healthy?", "why is the canary failing?",
                     "show me the canary errors", "file an issue for canary-demo in demo-bad, repo https://github.com/acme/shop",
                     "yes"):
        assert question in asked
    # A write happens only after the user's "yes": the golden files call it again in that turn.
    conversation = next(case for case in chat if case.eval_id == "chat_bad_canary_conversation")
    assert [turn.user_content.parts[0].text for turn in conversation.conversation][-1] == "yes"
    assert [call.name for call in conversation.conversation[-1].intermediate_data.tool_uses] == ["file_rollout_issue"]


def test_golden_trajectories_investigate_the_way_the_scenario_needs():
    known = metrics.expectations()
    for case in _cases():
        first = case.conversation[0]
        expectation = metrics.mentioned_scenario(first.user_content.parts[0].text, known)
        if not case.eval_id.endswith("_plugin") or expectation is None:
            continue
        names = [name for name, _ in _called(case)]
        assert names[0] == "transfer_to_agent" and names[-1] == "set_model_response", case.eval_id
        assert names.index("get_rollout") < names.index("get_canary_evidence"), case.eval_id
        for name, args in _called(case):
            if "namespace" in args:
                assert args["namespace"] == expectation.namespace, case.eval_id
        if expectation.scenario in ("crashloop-canary", "config-error-canary"):
            assert ("get_pod_logs", True) in [(n, a.get("previous")) for n, a in _called(case)], case.eval_id
        if expectation.scenario == "imagepull-canary":
            assert "describe_pod" in names


# --- the commands ---------------------------------------------------------------------------------


def test_offline_evals_pass():
    """The CI run: `selfheal eval` = adk eval over every eval set with the runbook model."""
    result = selfheal("eval")
    output = result.stdout + result.stderr
    assert "Eval Run Summary" in output, _tail(result)
    assert result.returncode == 0, "some eval cases failed:\n" + _tail(result)
    assert "eval case run(s) passed" in output


def test_report_table_offline(tmp_path: Path):
    rows_file = tmp_path / "rows.json"
    result = selfheal("eval", "--model", "runbook", "--iterations", "2", "--report",
                      "--evalset", "evals/evalsets/plugin.evalset.json:bad_canary_plugin,healthy_canary_plugin",
                      "--json-out", str(rows_file))
    assert result.returncode == 0, _tail(result)
    lines = result.stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("model runbook: 2 iteration(s)"))
    assert lines[header + 1].split()[:5] == ["case", "pass", "verdict", "facts", "trajectory"]
    table = {line.split()[0]: line.split() for line in lines[header + 3:header + 7] if line and not line.startswith("-")}
    for case in ("bad_canary_plugin", "healthy_canary_plugin", "ALL"):
        assert case in table, lines[header:header + 8]
    assert table["bad_canary_plugin"][1:5] == ["2/2", "100%", "100%", "100%"]
    assert table["ALL"][1] == "4/4"
    rows = json.loads(rows_file.read_text())
    assert len(rows) == 4 and {row["iteration"] for row in rows} == {1, 2}
    assert all(row["passed"] and row["tokens"] > 0 and row["seconds"] > 0 for row in rows)
    assert all(row["scores"]["verdict_accuracy"] == 1.0 for row in rows)


def test_record_writes_a_reviewable_case_that_replays(tmp_path: Path):
    out = tmp_path / "recorded.evalset.json"
    first = selfheal("eval", "record", "slow-canary", "--model", "runbook", "--out", str(out))
    assert first.returncode == 0, _tail(first)
    assert "Review it before it becomes golden" in first.stdout
    second = selfheal("eval", "record", "imagepull-canary", "--model", "runbook", "--out", str(out),
                      "--question", "the canary of canary-demo in namespace demo-imagepull is stuck, what is wrong?")
    assert second.returncode == 0, _tail(second)

    eval_set = load_eval_set_from_file(str(out), out.stem)
    assert len(eval_set.eval_cases) == 2
    plugin_case, chat_case = eval_set.eval_cases
    assert plugin_case.eval_id.startswith("slow_canary_plugin_runbook_")
    assert plugin_case.conversation[0].user_content.parts[0].text == plugin_prompt(
        "demo-slow", "canary-demo", "role=stable", "role=canary")
    calls = [(call.name, call.args) for call in plugin_case.conversation[0].intermediate_data.tool_uses]
    assert calls == [
        ("transfer_to_agent", {"agent_name": "diagnosis"}),
        ("get_rollout", {"namespace": "demo-slow", "name": "canary-demo"}),
        ("get_canary_evidence", {"namespace": "demo-slow", "rollout": "canary-demo"}),
        ("set_model_response", {}),
    ]
    verdict = metrics.find_verdict(plugin_case.conversation[0])
    assert verdict is not None and verdict.data["promote"] is False
    assert "describe_pod" in [call.name for call in chat_case.conversation[0].intermediate_data.tool_uses]

    replay = selfheal("eval", "--evalset", str(out))
    assert replay.returncode == 0, _tail(replay)
    assert "All 2 eval case run(s) passed." in replay.stdout


def test_unknown_scenario_is_a_clear_error(tmp_path: Path):
    result = selfheal("eval", "record", "no-such-scenario", "--model", "runbook", "--out", str(tmp_path / "x.json"))
    assert result.returncode == 2
    assert "no-such-scenario" in result.stderr and not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("model", ["gemini-2.5-flash"])
def test_a_gemini_model_without_credentials_is_refused_before_running(model: str):
    env_keys = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI")
    if any(os.environ.get(key) for key in env_keys):
        pytest.skip("model credentials are configured here")
    result = selfheal("eval", "--model", model, "--report", timeout=60)
    assert result.returncode == 2
    assert "GOOGLE_API_KEY" in result.stdout
