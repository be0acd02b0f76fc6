"""The `selfheal` command. Each subcommand imports its implementation lazily so `--help` is fast."""

from __future__ import annotations

import os
import sys
import warnings

import click

# ADK marks A2A and eval pieces experimental and warns on every import; users cannot act on it.
os.environ.setdefault("ADK_SUPPRESS_EXPERIMENTAL_FEATURE_WARNINGS", "true")
warnings.filterwarnings("ignore", message=r"\[EXPERIMENTAL\]")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="selfheal-rollouts")
def main() -> None:
    """Self-healing rollouts: judge Argo Rollouts canaries and start the fix."""
    from pydantic import ValidationError

    from selfheal.config import get_settings

    try:
        get_settings()
    except ValidationError as exc:  # a bad environment variable: say which, not a traceback
        problems = "; ".join(
            f"{_env_name(error['loc'][0])}: {error['msg']}" if error["loc"] else error["msg"] for error in exc.errors()
        )
        raise click.ClickException(f"invalid configuration: {problems}") from None


def _env_name(field: object) -> str:
    name = str(field).upper()
    return name if name.startswith("SELFHEAL_") or name in ("GEMINI_MODEL", "KUBECONFIG") else f"SELFHEAL_{name}"


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=str))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="API server port on 127.0.0.1 (0 picks a free port).")
def sim(scenarios: tuple[str, ...], port: int) -> None:
    """Serve scenario folders as a Kubernetes API server (and Prometheus when installed).

    Prints one JSON line {"apiserver", "kubeconfig", "prometheus"} when ready and runs until
    SIGTERM/SIGINT. A scenario may be a folder path or the name of a bundled scenario.
    """
    from selfheal.simulator.cli import run_simulator

    sys.exit(run_simulator(list(scenarios), port))


@main.command()
@click.argument("scenario", default="bad-canary")
@click.option("--list", "list_only", is_flag=True, help="List the bundled scenarios and exit.")
@click.option("--outbox", default="outbox", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the dry-run remediation (the issue that would be filed).")
def demo(scenario: str, list_only: bool, outbox: str) -> None:
    """Run the main job on a simulated cluster: no keys, no cluster needed.

    Starts the simulator on SCENARIO (default bad-canary; a bundled name or a folder), starts the
    plugin service in-process, sends exactly the plugin's request and shows the verdict Argo
    Rollouts would record, the evidence and the remediation it would file.
    """
    from selfheal.demo import main as run

    sys.exit(run(scenario, list_only, outbox))


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default SELFHEAL_HOST or 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default SELFHEAL_PORT or 8080).")
@click.option("--web/--no-web", default=None, help="Also serve the ADK web UI (/dev-ui/) in this process.")
@click.option("--mcp/--no-mcp", "mount_mcp", default=None, help="Also serve the MCP server on /mcp.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Log verbosity.")
def serve(host: str | None, port: int | None, web: bool | None, mount_mcp: bool | None, log_level: str) -> None:
    """Serve the plugin endpoint (POST /a2a/analyze), health, metrics and A2A.

    The service token (SELFHEAL_TOKEN) and all other settings come from the environment.
    """
    import logging

    import uvicorn

    from selfheal.config import get_settings
    from selfheal.service.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {key: value for key, value in
                 {"host": host, "port": port, "web_ui": web, "mount_mcp": mount_mcp}.items() if value is not None}
    settings = get_settings().model_copy(update=overrides)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level,
                timeout_graceful_shutdown=10)


@main.command()
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio for a client that starts this command; http for streamable HTTP on /mcp.")
@click.option("--host", default=None, help="HTTP interface (default SELFHEAL_HOST or 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="HTTP port (default 8081; 0 picks a free port). The URL is printed as one JSON line.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Log verbosity (logs go to stderr).")
def mcp(transport: str, host: str | None, port: int | None, log_level: str) -> None:
    """Serve the MCP server: analyze_rollout, evidence, Kubernetes/Prometheus tools and the agent.

    Over HTTP the endpoint is /mcp and requires SELFHEAL_TOKEN (Bearer or Basic password) when set.
    `selfheal serve --mcp` serves the same endpoint inside the plugin service.
    """
    from selfheal.mcp_server import run_mcp

    sys.exit(run_mcp(transport, host, port, log_level))


from pathlib import Path  # noqa: E402  (used by the eval group below)


@main.group("eval", invoke_without_command=True)
@click.option("--model", "models", default="runbook", show_default=True,
              help="Model(s) to evaluate, comma separated (e.g. gemini-2.5-flash,gemini-2.5-pro). "
                   "`runbook` is the offline model.")
@click.option("--iterations", "-n", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Runs of every eval set per model (models are not deterministic).")
@click.option("--report", is_flag=True,
              help="Print a table per model: pass rate, verdict accuracy, facts, trajectory, tokens, latency per case.")
@click.option("--evalset", "evalsets", multiple=True, metavar="FILE[:CASE,...]",
              help="Eval set file, optionally with case ids (repeatable). Default: every evals/evalsets/*.evalset.json.")
@click.option("--detailed", is_flag=True, help="Pass --print_detailed_results to adk eval (every turn, every metric).")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write one JSON row per case and run to this file.")
@click.pass_context
def eval_(ctx: click.Context, models: str, iterations: int, report: bool, evalsets: tuple[str, ...],
          detailed: bool, json_out: Path | None) -> None:
    """Run the golden-transcript evals (adk eval) against a simulator serving every scenario.

    Without options this is the offline CI run: the runbook model, every eval set, exit code 1
    when any case fails. With --model, --iterations and --report it compares real models
    (GOOGLE_API_KEY must be set for Gemini). See docs/evals.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    from evals.runner import run_evals

    names = [name.strip() for name in models.split(",") if name.strip()]
    sys.exit(run_evals(names, iterations, evalsets, report=report, detailed=detailed, json_out=json_out))


@eval_.command("record")
@click.argument("scenario")
@click.option("--question", "questions", multiple=True,
              help="A user message (repeat for a multi-turn conversation). Default: the plugin's prompt.")
@click.option("--model", default=None, help="Model to record with (default: SELFHEAL_MODEL, Gemini, or runbook).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Eval set file to add the case to (default evals/recorded/<scenario>.evalset.json).")
@click.option("--eval-id", default=None, help="Id of the new case (default <scenario>_<kind>_<model>_<time>).")
def eval_record(scenario: str, questions: tuple[str, ...], model: str | None, out: Path | None,
                eval_id: str | None) -> None:
    """Run SCENARIO (a bundled name or a folder) and write the transcript as a new eval case to review."""
    from evals.runner import record
    from selfheal.simulator import ScenarioError

    try:
        record(scenario, questions, model, out, eval_id)
    except (ScenarioError, RuntimeError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
