"""`selfheal demo`: the main job on a simulated cluster, with no keys and no cluster.

It starts the simulator on a bundled scenario, starts `selfheal serve` in-process on a free port,
sends exactly the plugin's request, and shows what Argo Rollouts would record, the judge's table
and the remediation it would file (a dry run into the outbox when no GitHub token is set).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import click

from selfheal.contract import go_decode_error, plugin_request
from selfheal.simulator import free_port

DEMO_REPO = "https://github.com/argoproj/rollouts-demo"


class _Progress:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        click.echo(click.style(f"[{time.perf_counter() - self.started:5.1f}s] ", dim=True) + message, err=True)


def list_bundled() -> None:
    from selfheal.simulator.scenario import list_scenarios

    for info in list_scenarios():
        click.echo(f"{info.name:24} {info.rollout.namespace}/{info.rollout.name}  {info.description}")


def run_demo(scenario: str, outbox: Path, keep_state: bool = False) -> int:
    from selfheal.simulator.cluster import SimulatedCluster
    from selfheal.simulator.scenario import ScenarioError

    progress = _Progress()
    progress(f"starting the simulated cluster for scenario '{scenario}'")
    try:
        cluster = SimulatedCluster([scenario])
    except ScenarioError as exc:
        click.echo(f"error: {exc}\nRun `selfheal demo --list` to see the bundled scenarios.", err=True)
        return 2
    with cluster, tempfile.TemporaryDirectory(prefix="selfheal-demo-") as state_dir:
        info = cluster.scenarios[0]
        progress(f"Kubernetes API at {cluster.apiserver}; Prometheus: "
                 f"{cluster.prometheus_url or 'none (' + (cluster.prometheus_note or 'not installed') + ')'}")
        port = free_port()
        env = {
            **cluster.environment(),
            "SELFHEAL_STATE_DIR": state_dir,
            "SELFHEAL_OUTBOX_DIR": str(outbox.resolve()),
            "SELFHEAL_REPO_ALLOWLIST": "argoproj/rollouts-demo",
            "SELFHEAL_HOST": "127.0.0.1",
            "SELFHEAL_PORT": str(port),
        }
        os.environ.update(env)
        for name in ("GITHUB_TOKEN", "SELFHEAL_GITHUB_TOKEN", "SELFHEAL_TOKEN"):
            os.environ.pop(name, None)  # the demo never writes to GitHub and needs no auth
        return asyncio.run(_serve_and_ask(info, port, progress))


async def _serve_and_ask(info, port: int, progress: _Progress) -> int:
    import httpx
    import uvicorn

    from selfheal.config import get_settings
    from selfheal.llm import resolve_model
    from tools import k8s

    get_settings.cache_clear()
    k8s.reset_clients()
    settings = get_settings()
    progress(f"model: {resolve_model(settings)} (set GOOGLE_API_KEY or SELFHEAL_MODEL to use another)")
    from selfheal.service.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=300) as client:
            for _ in range(200):
                if server.started:
                    break
                await asyncio.sleep(0.05)
            status = await client.get("/")
            progress(f"selfheal serve is up at {base} (GET / -> {status.status_code})")
            body = plugin_request(
                info.rollout.namespace, info.rollout.name, info.selectors.stable, info.selectors.canary,
                repo_url=DEMO_REPO, base_branch="master",
            )
            progress(f"POST /a2a/analyze for rollout {info.rollout.namespace}/{info.rollout.name} (the plugin's request)")
            started = time.perf_counter()
            response = await client.post("/a2a/analyze", json=body)
            elapsed = time.perf_counter() - started
            progress(f"answer in {elapsed:.1f}s: HTTP {response.status_code}")
            if response.status_code != 200:
                click.echo(f"error: the service answered {response.status_code}: {response.text}", err=True)
                return 1
            answer = response.json()
            _show(answer, response.text, info)
            from selfheal.state import StateStore

            store: StateStore = app.state.store
            records = await store.recent_analyses(limit=1)
            if records and records[0].report:
                click.echo(click.style("\nEvidence the model read (judge table and signatures):", bold=True))
                click.echo(textwrap.indent(_report_excerpt(records[0].report), "  "))
            _show_outbox(Path(get_settings().outbox))
    finally:
        server.should_exit = True
        await serving
    return 0


def _show(answer: dict, raw: str, info) -> None:
    decode_error = go_decode_error(raw)
    promote = answer.get("promote")
    phase = "Successful" if promote else "Failed"
    value = f"{answer.get('confidence', 0) / 100:.2f}" if promote else "0"
    click.echo(click.style(f"\nScenario {info.name}: {info.description}", bold=True))
    click.echo(click.style(
        f"Argo measurement: phase {phase}, value {value} -> the rollout "
        f"{'continues (promote)' if promote else 'aborts'}", fg="green" if promote else "red", bold=True))
    click.echo(f"Contract: {'decodes under the plugin Go types' if decode_error is None else 'BROKEN: ' + decode_error}")
    for key in ("confidence", "analysis", "rootCause", "remediation", "prLink", "votingRationale"):
        if answer.get(key) not in (None, ""):
            click.echo(f"{key}: " + textwrap.fill(str(answer[key]), 110, subsequent_indent="    "))


def _report_excerpt(report: str, max_lines: int = 40) -> str:
    lines = report.splitlines()
    keep = []
    for line in lines:
        if line.startswith("## Events"):
            break
        keep.append(line)
    return "\n".join(keep[:max_lines])


def _show_outbox(outbox: Path) -> None:
    files = sorted(outbox.glob("*")) if outbox.exists() else []
    if not files:
        click.echo("\nRemediation: nothing filed (the canary passed, or no repository was allowed).")
        return
    click.echo(click.style(f"\nRemediation (dry run: no GITHUB_TOKEN) written to {outbox}:", bold=True))
    for path in files:
        click.echo(f"  {path.name}")
    issue = next((p for p in files if p.suffix == ".md"), None)
    if issue is not None:
        lines = [line for line in issue.read_text().splitlines() if line.strip()]
        click.echo(textwrap.indent("\n".join(lines[:10]), "    | "))


def main(scenario: str, list_only: bool, outbox: str) -> int:
    if list_only:
        list_bundled()
        return 0
    return run_demo(scenario, Path(outbox))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bad-canary", False, "outbox"))
