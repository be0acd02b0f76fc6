"""Benchmark of the plugin service: a real `selfheal serve` with the runbook model on the simulator.

    python -m bench.service_bench [--runs N] [--concurrent N] [--distinct N] [--repeats N] [--starts N]

It starts the simulator with every bundled scenario, then measures what the Argo Rollouts plugin
experiences, sending exactly its request (selfheal.contract.plugin_request) over HTTP:

- start-up: process start to the first `GET /healthz` 200, over `--starts` fresh processes;
- one analysis: `--runs` sequential fresh analyses (each with a memoryId of its own, so neither the
  record nor a session answers), cycling over the scenarios except `large-logs` (timed once on its
  own: it reads 2 x 50 MB of logs);
- one rollout, `--concurrent` requests at once: how many analyses ran (target exactly 1, read from
  /metrics) and the latency every client saw;
- `--distinct` rollouts at once: the simulator serves 11 scenarios, so the distinct rollouts are
  distinct memoryIds cycled over the 10 small ones (each one a full analysis; at most
  SELFHEAL_MAX_CONCURRENT_ANALYSES, default 4, run at a time and the rest queue);
- repeats: `--repeats` sequential requests answered from the record (target p95 < 20 ms).

It prints one table. Nothing is written outside temporary folders.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from selfheal.contract import plugin_request
from selfheal.simulator import SimulatedCluster, bundled_scenarios_dir, free_port

SELFHEAL = str(Path(sys.executable).with_name("selfheal"))
LARGE = "large-logs"


@dataclass
class Row:
    what: str
    n: int
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    note: str = ""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def row(what: str, seconds: list[float], note: str = "") -> Row:
    ms = [s * 1000 for s in seconds]
    return Row(what, len(ms), statistics.median(ms), percentile(ms, 0.95), max(ms), note)


def scenario_bodies() -> dict[str, dict]:
    bodies = {}
    for folder in sorted(bundled_scenarios_dir().iterdir()):
        if not (folder / "scenario.yaml").is_file():
            continue
        info = yaml.safe_load((folder / "scenario.yaml").read_text())
        selectors = info.get("selectors") or {}
        bodies[folder.name] = plugin_request(info["rollout"]["namespace"], info["rollout"]["name"],
                                             selectors.get("stable", "role=stable"),
                                             selectors.get("canary", "role=canary"))
    return bodies


def fresh(body: dict, tag: str) -> dict:
    """The same request under a memoryId never seen before (a fresh analysis and session)."""
    return {**body, "memoryId": f"{body['memoryId']}#bench-{tag}"}


class Server:
    def __init__(self, env: dict[str, str]):
        self.state = Path(tempfile.mkdtemp(prefix="selfheal-bench-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SELFHEAL_") and k != "KUBECONFIG"}
        clean.update(env, SELFHEAL_STATE_DIR=str(self.state), SELFHEAL_MODEL="runbook")
        self.started = time.perf_counter()
        self.process = subprocess.Popen([SELFHEAL, "serve", "--port", str(self.port), "--log-level", "error"],
                                        env=clean, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_healthy(self) -> float:
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"selfheal serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                time.sleep(0.01)

    def analyses_run(self) -> float:
        text = httpx.get(f"{self.base}/metrics", timeout=10).text
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == "selfheal_analyses_total" and sample.labels.get("source") in ("model", "judge"))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.state, ignore_errors=True)


def analyze(client: httpx.Client, server: Server, body: dict) -> float:
    started = time.perf_counter()
    response = client.post(f"{server.base}/a2a/analyze", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"analysis failed: {response.status_code} {response.text[:300]}")
    return elapsed


async def at_once(server: Server, bodies: list[dict]) -> tuple[list[float], float]:
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=len(bodies))) as client:
        async def one(body: dict) -> float:
            started = time.perf_counter()
            response = await client.post(f"{server.base}/a2a/analyze", json=body)
            if response.status_code != 200:
                raise SystemExit(f"analysis failed: {response.status_code} {response.text[:300]}")
            return time.perf_counter() - started

        started = time.perf_counter()
        seconds = await asyncio.gather(*(one(body) for body in bodies))
        return list(seconds), time.perf_counter() - started


def run(args: argparse.Namespace) -> list[Row]:
    bodies = scenario_bodies()
    small = [name for name in bodies if name != LARGE]
    rows: list[Row] = []
    folders = [bundled_scenarios_dir() / name for name in bodies]
    with SimulatedCluster(folders) as simulator:
        env = simulator.environment()
        starts = []
        for _ in range(args.starts - 1):
            server = Server(env)
            starts.append(server.wait_healthy())
            server.stop()
        server = Server(env)
        starts.append(server.wait_healthy())
        rows.append(row("start-up (process start -> /healthz 200)", starts))
        try:
            with httpx.Client(timeout=300) as client:
                analyze(client, server, fresh(bodies[small[0]], "warm-up"))  # first call builds the agents
                seconds = [analyze(client, server, fresh(bodies[small[i % len(small)]], f"one-{i}"))
                           for i in range(args.runs)]
                rows.append(row("one analysis (fresh, sequential)", seconds,
                                f"cycling over {len(small)} scenarios"))
                if LARGE in bodies:
                    rows.append(row(f"one analysis of {LARGE}", [analyze(client, server, fresh(bodies[LARGE], "large"))],
                                    "2 x 50 MB of logs"))

                before = server.analyses_run()
                seconds, wall = asyncio.run(at_once(server, [fresh(bodies["bad-canary"], "crowd")] * args.concurrent))
                ran = server.analyses_run() - before
                rows.append(row(f"{args.concurrent} concurrent requests, one rollout", seconds,
                                f"analyses run: {ran:.0f} (target 1); wall {wall * 1000:.0f} ms"))

                before = server.analyses_run()
                distinct = [fresh(bodies[small[i % len(small)]], f"distinct-{i}") for i in range(args.distinct)]
                seconds, wall = asyncio.run(at_once(server, distinct))
                ran = server.analyses_run() - before
                rows.append(row(f"{args.distinct} distinct rollouts at once", seconds,
                                f"analyses run: {ran:.0f}; {args.distinct} memoryIds over {len(small)} scenarios; "
                                f"wall {wall * 1000:.0f} ms"))

                body = bodies["bad-canary"]
                analyze(client, server, body)
                seconds = [analyze(client, server, body) for _ in range(args.repeats)]
                rows.append(row("repeat answered from the record", seconds, "target p95 < 20 ms"))
                # Every request first reads the rollout's revision (the record's key) from the API.
                context = body["context"]
                path = (f"{simulator.apiserver}/apis/argoproj.io/v1alpha1/namespaces/{context['namespace']}"
                        f"/rollouts/{context['rolloutName']}")
                seconds = []
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    client.get(path, headers={"Authorization": "Bearer simulated"}).raise_for_status()
                    seconds.append(time.perf_counter() - started)
                rows.append(row("  of which: one Kubernetes API GET (simulator)", seconds,
                                "the rollout's revision, read on every request"))
        finally:
            server.stop()
    return rows


def print_table(rows: list[Row]) -> None:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    header = ("measurement", "n", "p50 ms", "p95 ms", "max ms", "note")
    lines = [(r.what, str(r.n), cell(r.p50_ms), cell(r.p95_ms), cell(r.max_ms), r.note) for r in rows]
    widths = [max(len(str(item[i])) for item in [header, *lines]) for i in range(len(header))]
    for index, line in enumerate([header, *lines]):
        print("  ".join(str(item).ljust(width) if i in (0, 5) else str(item).rjust(width)
                        for i, (item, width) in enumerate(zip(line, widths))).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="fresh sequential analyses (default 20)")
    parser.add_argument("--concurrent", type=int, default=50, help="requests at once for one rollout (default 50)")
    parser.add_argument("--distinct", type=int, default=20, help="distinct rollouts at once (default 20)")
    parser.add_argument("--repeats", type=int, default=200, help="repeats answered from the record (default 200)")
    parser.add_argument("--starts", type=int, default=3, help="server start-ups to time (default 3)")
    args = parser.parse_args(argv)
    print(f"selfheal serve benchmark: runbook model, simulator with every bundled scenario, {os.cpu_count()} CPUs")
    print_table(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
