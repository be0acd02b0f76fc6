"""Run the golden-transcript evals: offline (CI), against real models (report), and record new cases.

`selfheal eval` (selfheal/cli.py) is the front door; everything here is plain Python so tests can
call it too.

- `run_evals()` starts the simulator over every bundled scenario (one API server, one Prometheus),
  points the product at it and runs, per model and iteration,
  `adk eval agents/rollout_doctor <eval sets> --config_file_path evals/test_config.json`.
  Its exit code is non-zero when any case failed. With `report=True` it also reads the results
  ADK wrote and prints, per model, a table of verdict accuracy, facts, trajectory score, tokens and
  latency per case.
- `record()` runs one scenario with any model and writes the conversation as a new eval case
  (by default into evals/recorded/<scenario>.evalset.json) for a person to review.

The eval environment never writes anywhere real: GitHub and Jules credentials are removed, so
remediation is a dry run into a temporary outbox; `.env` files are not loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
AGENT_DIR = ROOT / "agents" / "rollout_doctor"
APP_NAME = AGENT_DIR.name
EVALSETS_DIR = ROOT / "evals" / "evalsets"
CONFIG_FILE = ROOT / "evals" / "test_config.json"
RECORDED_DIR = ROOT / "evals" / "recorded"
EVAL_HISTORY_DIR = AGENT_DIR / ".adk" / "eval_history"
RESULT_SUFFIX = ".evalset_result.json"
OFFLINE_MODEL = "runbook"

# The repositories the chat cases file issues for (dry runs only: no token is ever passed).
EVAL_REPO_ALLOWLIST = "acme/*"
# Never handed to an eval run: with them a chat case could write to a real repository.
WRITE_CREDENTIALS = (
    "GITHUB_TOKEN", "SELFHEAL_GITHUB_TOKEN", "GITHUB_API_URL", "SELFHEAL_GITHUB_API_URL",
    "JULES_API_KEY", "SELFHEAL_JULES_API_KEY", "SELFHEAL_JULES_API_URL", "JULES_API_URL",
)
# Product settings that would make the eval run differ from the golden setup.
PRODUCT_OVERRIDES = ("SELFHEAL_MODELS", "GEMINI_MODEL", "SELFHEAL_DATABASE_URL", "SELFHEAL_REMEDIATION_MODE",
                     "SELFHEAL_ENABLE_MCP_REMEDIATION", "SELFHEAL_TOKEN")

# Arguments that make a recorded call what it is; the rest (tail lengths, default selectors,
# narrative text) varies between equally good runs and is dropped from recorded trajectories.
ESSENTIAL_ARGS = frozenset({"agent_name", "namespace", "name", "rollout", "pod", "previous", "repo_url"})
VERDICT_TOOL = "set_model_response"

Echo = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


# --- what to run ---------------------------------------------------------------------------


def default_evalsets() -> list[str]:
    return [str(path) for path in sorted(EVALSETS_DIR.glob("*.evalset.json"))]


def absolute_evalset(spec: str) -> str:
    """`FILE[:CASE,...]` with FILE made absolute (adk eval runs from the project root)."""
    file, colon, cases = spec.partition(":")
    return str(Path(file).resolve()) + colon + cases


def bundled_scenario_dirs() -> list[Path]:
    from selfheal.simulator import bundled_scenarios_dir

    root = bundled_scenarios_dir()
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")) and (p / "scenario.yaml").is_file())


def adk_executable() -> str:
    beside = Path(sys.executable).with_name("adk")
    if beside.is_file():
        return str(beside)
    found = shutil.which("adk")
    if found is None:
        raise RuntimeError("the `adk` command was not found; install google-adk[eval] in this environment")
    return found


def adk_eval_command(evalsets: Sequence[str], config: Path = CONFIG_FILE, detailed: bool = False,
                     log_level: str = "WARNING") -> list[str]:
    """`adk eval agents/rollout_doctor <eval sets> --config_file_path evals/test_config.json`."""
    command = [adk_executable(), "eval", str(AGENT_DIR), *evalsets, "--config_file_path", str(config),
               "--log_level", log_level]
    if detailed:
        command.append("--print_detailed_results")
    return command


def model_problem(model: str) -> str | None:
    """Why `model` cannot run here, if it obviously cannot (a Gemini model without credentials)."""
    from selfheal.llm import has_model_credentials

    if model.startswith("gemini") and not has_model_credentials():
        return (f"model {model} needs GOOGLE_API_KEY (or Vertex AI settings: GOOGLE_GENAI_USE_VERTEXAI=true "
                "and GOOGLE_CLOUD_PROJECT) in the environment")
    return None


# --- the environment: simulator plus settings ----------------------------------------------------


@contextlib.contextmanager
def simulated_cluster(extra_scenarios: Sequence[Path] = ()) -> Iterator[Any]:
    """One simulator serving every bundled scenario (plus `extra_scenarios`)."""
    from selfheal.simulator import SimulatedCluster

    folders = bundled_scenario_dirs()
    known = {folder.resolve() for folder in folders}
    folders += [Path(extra) for extra in extra_scenarios if Path(extra).resolve() not in known]
    with SimulatedCluster(folders) as cluster:
        yield cluster


def eval_environment(cluster_env: dict[str, str], workdir: Path, model: str,
                     base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of one eval run: the simulator, the model, throwaway state, dry-run remediation."""
    env = dict(os.environ if base is None else base)
    for name in (*WRITE_CREDENTIALS, *PRODUCT_OVERRIDES):
        env.pop(name, None)
    (workdir / "state").mkdir(parents=True, exist_ok=True)
    (workdir / "outbox").mkdir(parents=True, exist_ok=True)
    env.update(cluster_env)
    env.update({
        "SELFHEAL_MODEL": model,
        "SELFHEAL_STATE_DIR": str(workdir / "state"),
        "SELFHEAL_OUTBOX_DIR": str(workdir / "outbox"),
        "SELFHEAL_REPO_ALLOWLIST": EVAL_REPO_ALLOWLIST,
        "SELFHEAL_REMEDIATION_MODE": "issue",
        # A developer's .env could hold a GitHub token; the evals use this environment only.
        "ADK_DISABLE_LOAD_DOTENV": "1",
        "ADK_SUPPRESS_EXPERIMENTAL_FEATURE_WARNINGS": "true",
        "GOOGLE_API_USE_CLIENT_CERTIFICATE": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    })
    return env


# --- one `adk eval` run ------------------------------------------------------------------------


@dataclass
class AdkRun:
    model: str
    iteration: int
    returncode: int
    seconds: float
    result_files: list[Path] = field(default_factory=list)


def _history_files() -> set[Path]:
    return set(EVAL_HISTORY_DIR.glob("*" + RESULT_SUFFIX)) if EVAL_HISTORY_DIR.is_dir() else set()


def run_adk_eval(evalsets: Sequence[str], env: dict[str, str], *, model: str, iteration: int = 1,
                 detailed: bool = False, echo: Echo = _print) -> AdkRun:
    """Run `adk eval` once, streaming its output, and find the result files it wrote."""
    command = adk_eval_command(evalsets, detailed=detailed)
    before = _history_files()
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, text=True, bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            if line.startswith("Using evaluation criteria:") and len(line) > 160:
                line = line[:157] + "..."  # the whole config, repeated; evals/test_config.json has it
            echo(line)
        returncode = process.wait()
    seconds = time.perf_counter() - started
    written = sorted(path for path in _history_files() - before
                     if path.stat().st_mtime >= time.time() - seconds - 5)
    return AdkRun(model=model, iteration=iteration, returncode=returncode, seconds=seconds, result_files=written)


# --- reading results ---------------------------------------------------------------------------


@dataclass
class CaseRow:
    """One eval case in one run."""

    model: str
    iteration: int
    eval_set_id: str
    eval_id: str
    passed: bool
    scores: dict[str, float | None]
    failed_metrics: list[str]
    tokens: float | None
    seconds: float | None

    @property
    def case(self) -> str:
        return f"{self.eval_set_id}:{self.eval_id}"


def _sum_per_invocation(case_result: Any, metric_name: str) -> float | None:
    values = [result.score
              for per_invocation in case_result.eval_metric_result_per_invocation
              for result in per_invocation.eval_metric_results
              if result.metric_name == metric_name and result.score is not None]
    return float(sum(values)) if values else None


def case_rows(result_files: Sequence[Path], model: str, iteration: int) -> list[CaseRow]:
    from google.adk.evaluation._eval_set_results_manager_utils import parse_eval_set_result_json
    from google.adk.evaluation.evaluator import EvalStatus

    rows = []
    for path in result_files:
        result = parse_eval_set_result_json(path.read_text(encoding="utf-8"))
        for case in result.eval_case_results:
            scores = {metric.metric_name: metric.score for metric in case.overall_eval_metric_results}
            failed = [metric.metric_name for metric in case.overall_eval_metric_results
                      if metric.eval_status == EvalStatus.FAILED]
            if not case.overall_eval_metric_results:
                failed = ["inference failed"]
            rows.append(CaseRow(
                model=model, iteration=iteration, eval_set_id=case.eval_set_id, eval_id=case.eval_id,
                passed=case.final_eval_status == EvalStatus.PASSED, scores=scores, failed_metrics=failed,
                tokens=_sum_per_invocation(case, "token_usage_v1"),
                seconds=_sum_per_invocation(case, "invocation_duration_v1"),
            ))
    return rows


# --- the report --------------------------------------------------------------------------------


def _mean(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.fmean(present) if present else None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _report_line(label: str, runs: Sequence[CaseRow], with_failures: bool = True) -> tuple[str, ...]:
    failures = sorted({name for row in runs for name in row.failed_metrics})
    return (
        label,
        f"{sum(row.passed for row in runs)}/{len(runs)}",
        _percent(_mean([row.scores.get("verdict_accuracy") for row in runs])),
        _percent(_mean([row.scores.get("root_cause_facts") for row in runs])),
        _percent(_mean([row.scores.get("tool_trajectory_avg_score") for row in runs])),
        _number(_mean([row.tokens for row in runs])),
        _number(_mean([row.seconds for row in runs]), 1),
        (", ".join(failures) or "-") if with_failures else "",
    )


REPORT_COLUMNS = ("case", "pass", "verdict", "facts", "trajectory", "tokens", "latency s", "failed metrics")


def report_table(rows: Sequence[CaseRow]) -> str:
    """One table per model: per case, the share of runs passed and the mean of each measure."""
    blocks = []
    for model in dict.fromkeys(row.model for row in rows):
        mine = [row for row in rows if row.model == model]
        runs = len({row.iteration for row in mine})
        table = [_report_line(case.split(":", 1)[1], [row for row in mine if row.case == case])
                 for case in sorted(dict.fromkeys(row.case for row in mine))]
        table.append(_report_line("ALL", mine, with_failures=False))
        widths = [max(len(REPORT_COLUMNS[i]), *(len(line[i]) for line in table)) for i in range(len(REPORT_COLUMNS))]

        def fmt(line: Sequence[str]) -> str:
            cells = [line[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(line[1:-1], widths[1:-1])),
                     line[-1]]
            return "  ".join(cells).rstrip()

        lines = [f"model {model}: {runs} iteration(s); verdict, facts, trajectory are means over runs; "
                 "tokens and latency are per case (all turns), means over runs",
                 fmt(REPORT_COLUMNS), fmt(["-" * width for width in widths])]
        lines += [fmt(line) for line in table[:-1]]
        lines += [fmt(["-" * width for width in widths]), fmt(table[-1])]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def failure_summary(rows: Sequence[CaseRow]) -> str:
    failed = [row for row in rows if not row.passed]
    if not failed:
        return f"All {len(rows)} eval case run(s) passed."
    lines = [f"{len(failed)} of {len(rows)} eval case run(s) failed:"]
    for row in failed:
        detail = ", ".join(f"{name}={_number(row.scores.get(name), 2)}" if name in row.scores else name
                           for name in row.failed_metrics)
        lines.append(f"  [{row.model} #{row.iteration}] {row.case}: {detail}")
    return "\n".join(lines)


# --- the command -------------------------------------------------------------------------------


def run_evals(models: Sequence[str] = (OFFLINE_MODEL,), iterations: int = 1, evalsets: Sequence[str] = (),
              report: bool = False, detailed: bool = False, json_out: Path | None = None,
              echo: Echo = _print) -> int:
    """Run every eval set with each model `iterations` times; 0 when every case passed."""
    evalsets = [absolute_evalset(spec) for spec in evalsets] or default_evalsets()
    if not evalsets:
        echo(f"error: no eval sets in {EVALSETS_DIR}")
        return 2
    for model in models:
        problem = model_problem(model)
        if problem:
            echo(f"error: {problem}")
            return 2
    rows: list[CaseRow] = []
    runs: list[AdkRun] = []
    started = time.perf_counter()
    with simulated_cluster() as cluster, tempfile.TemporaryDirectory(prefix="selfheal-eval-") as tmp:
        echo(f"simulator: {len(cluster.scenarios)} scenarios, Kubernetes API {cluster.apiserver}, "
             f"Prometheus {cluster.prometheus_url or 'none (' + str(cluster.prometheus_note) + ')'}")
        for model in models:
            for iteration in range(1, iterations + 1):
                workdir = Path(tmp) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', model)}-{iteration}"
                env = eval_environment(cluster.environment(), workdir, model)
                echo(f"$ SELFHEAL_MODEL={model} {' '.join(adk_eval_command(evalsets, detailed=detailed))}"
                     + (f"   # iteration {iteration}/{iterations}" if iterations > 1 else ""))
                run = run_adk_eval(evalsets, env, model=model, iteration=iteration, detailed=detailed, echo=echo)
                runs.append(run)
                rows += case_rows(run.result_files, model, iteration)
    elapsed = time.perf_counter() - started
    if report:
        echo("")
        echo(report_table(rows))
    echo("")
    echo(failure_summary(rows))
    echo(f"{len(runs)} adk eval run(s) in {elapsed:.0f}s.")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([row.__dict__ | {"case": row.case} for row in rows], indent=2), encoding="utf-8")
    if any(run.returncode != 0 for run in runs) or any(not row.passed for row in rows):
        return 1
    return 0


# --- recording ---------------------------------------------------------------------------------


def _essential(tool: str, args: dict[str, Any] | None) -> dict[str, Any]:
    if tool == VERDICT_TOOL:
        return {}  # the verdict itself is judged by the metrics, not by its arguments
    return {key: value for key, value in (args or {}).items() if key in ESSENTIAL_ARGS}


def golden_invocations(events: Sequence[Any]) -> list[Any]:
    """Session events as eval-case turns: the user's words, the calls (essential args), the answer."""
    from google.adk.evaluation.eval_case import IntermediateData, Invocation, get_all_tool_calls
    from google.adk.evaluation.evaluation_generator import EvaluationGenerator
    from google.genai import types

    turns = []
    for index, invocation in enumerate(EvaluationGenerator.convert_events_to_eval_invocations(list(events)), 1):
        calls = [types.FunctionCall(name=call.name, args=_essential(call.name, call.args))
                 for call in get_all_tool_calls(invocation.intermediate_data)]
        turns.append(Invocation(
            invocation_id=f"turn-{index}",
            user_content=invocation.user_content,
            final_response=invocation.final_response,
            intermediate_data=IntermediateData(tool_uses=calls),
        ))
    return turns


async def _converse(app: Any, questions: Sequence[str], user_id: str) -> list[Any]:
    from google.adk.runners import InMemoryRunner
    from google.genai import types

    runner = InMemoryRunner(app=app)
    try:
        session = await runner.session_service.create_session(app_name=app.name, user_id=user_id)
        for question in questions:
            message = types.Content(role="user", parts=[types.Part(text=question)])
            async for _ in runner.run_async(user_id=user_id, session_id=session.id, new_message=message):
                pass
        session = await runner.session_service.get_session(app_name=app.name, user_id=user_id, session_id=session.id)
        return list(session.events)
    finally:
        await runner.close()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass
class Recording:
    path: Path
    eval_id: str
    turns: list[Any]


@contextlib.contextmanager
def _process_environment(env: dict[str, str]) -> Iterator[None]:
    """Run in-process code (the recorder) under `env`, then restore the environment and settings."""
    from selfheal.config import get_settings
    from tools import k8s

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    get_settings.cache_clear()
    k8s.reset_clients()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        k8s.reset_clients()


def record(scenario: str, questions: Sequence[str] = (), model: str | None = None, out: Path | None = None,
           eval_id: str | None = None, echo: Echo = _print) -> Recording:
    """Run a scenario with `model` and append the conversation as a new case to an eval set file.

    Without questions the plugin's own prompt for the scenario's rollout is asked. The case goes to
    `out` (default evals/recorded/<scenario>.evalset.json), never into evals/evalsets: a person reviews
    it (is the trajectory what a careful SRE would do? is the answer true of the scenario?) and moves
    it there.
    """
    from google.adk.evaluation.eval_case import SessionInput
    from google.adk.evaluation.eval_set import EvalCase, EvalSet
    from google.adk.evaluation.local_eval_sets_manager import load_eval_set_from_file

    from selfheal.contract import plugin_prompt
    from selfheal.llm import resolve_model
    from selfheal.simulator.scenario import read_info, resolve_scenario

    folder = resolve_scenario(scenario)
    info = read_info(folder)
    model = model or resolve_model()
    problem = model_problem(model)
    if problem:
        raise RuntimeError(problem)
    plugin = not questions
    questions = list(questions) or [plugin_prompt(info.rollout.namespace, info.rollout.name,
                                                  info.selectors.stable, info.selectors.canary)]
    user_id = "argo-rollouts" if plugin else "sre"
    with simulated_cluster([folder]) as cluster, tempfile.TemporaryDirectory(prefix="selfheal-record-") as tmp:
        with _process_environment(eval_environment(cluster.environment(), Path(tmp), model)):
            from agents.rollout_doctor.agent import build_app

            events = asyncio.run(_converse(build_app(model), questions, user_id))
    turns = golden_invocations(events)

    out = Path(out) if out is not None else RECORDED_DIR / f"{info.name}.evalset.json"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    eval_id = _slug(eval_id or f"{info.name}_{'plugin' if plugin else 'chat'}_{model}_{stamp}")
    if out.is_file():
        eval_set = load_eval_set_from_file(str(out), out.stem)
    else:
        eval_set = EvalSet(
            eval_set_id=f"recorded_{_slug(info.name)}",
            name=f"recorded {info.name}",
            description="Recorded transcripts awaiting review: check each trajectory and answer against the "
                        "scenario before moving a case into evals/evalsets/.",
            eval_cases=[],
            creation_timestamp=time.time(),
        )
    taken = {case.eval_id for case in eval_set.eval_cases}
    unique, suffix = eval_id, 2
    while unique in taken:
        unique, suffix = f"{eval_id}_{suffix}", suffix + 1
    eval_set.eval_cases.append(EvalCase(
        eval_id=unique,
        conversation=turns,
        session_input=SessionInput(app_name=APP_NAME, user_id=user_id, state={}),
        creation_timestamp=time.time(),
    ))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(eval_set.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8")

    for turn in turns:
        asked = " ".join(part.text or "" for part in turn.user_content.parts or [])
        answer = " ".join(part.text or "" for part in (turn.final_response.parts if turn.final_response else []) or [])
        echo(f"user:   {asked[:160]}")
        for call in turn.intermediate_data.tool_uses:
            echo(f"  call: {call.name}({', '.join(f'{k}={v!r}' for k, v in (call.args or {}).items())})")
        echo(f"answer: {answer[:240]}")
    echo(f"recorded eval case {unique} ({model}) in {out}")
    echo("Review it before it becomes golden: the trajectory must be what a careful SRE would do and the answer "
         "must be true of the scenario; then move the case into evals/evalsets/.")
    return Recording(path=out, eval_id=unique, turns=turns)
