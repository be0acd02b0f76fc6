"""What the model reads: the evidence report against the naive "last 100 lines per pod".

For `large-logs` (200k+ lines per role, one rare canary-only error) it runs the product's whole
evidence path on the simulator — Kubernetes API, log fetch, parsing, signatures, judge, report —
and prints the collection time, the bytes the model reads, whether the rare error is in them, and
the same for the naive approach of the Java reference agent. With `--all` it also prints the
report size of every bundled scenario.

    python -m bench.evidence_report [--all] [--rare TEXT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

from selfheal.simulator import list_scenarios


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def simulator(names: list[str]) -> Iterator[dict]:
    """`selfheal sim` in its own process, so the memory measured here is the product's alone."""
    command = [sys.executable, "-m", "selfheal.cli", "sim", *names]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        yield ready
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _point_product_at(ready: dict) -> None:
    from selfheal.config import get_settings
    from tools import k8s

    os.environ["KUBECONFIG"] = os.environ["SELFHEAL_KUBECONFIG"] = ready["kubeconfig"]
    if ready.get("prometheus"):
        os.environ["SELFHEAL_PROMETHEUS_URL"] = ready["prometheus"]
    get_settings.cache_clear()
    k8s.reset_clients()


def naive_report(namespace: str, stable: str, canary: str, tail: int = 100) -> str:
    """The reference agent's input: the last `tail` lines of the first container of every pod."""
    from tools import k8s

    parts = []
    for role, selector in (("STABLE", stable), ("CANARY", canary)):
        parts.append(f"--- {role} LOGS ---")
        for pod in k8s.list_pods(namespace, selector).get("pods", []):
            log = k8s.fetch_container_log(namespace, pod["name"], tail_lines=tail)
            parts.append(log.text)
    return "\n".join(parts)


def measure(info, rare: str) -> dict:
    from selfheal.config import get_settings
    from tools.evidence import collect_evidence, summarize_evidence

    namespace, rollout = info.rollout.namespace, info.rollout.name
    budget = get_settings().report_bytes
    rss_before = _maxrss_mb()
    started = time.perf_counter()
    evidence = collect_evidence(namespace, rollout, info.selectors.stable, info.selectors.canary)
    collect_seconds = time.perf_counter() - started
    summary = summarize_evidence(evidence, budget)
    model_bytes = len(json.dumps(summary).encode())
    report = summary["report"]
    naive = naive_report(namespace, info.selectors.stable, info.selectors.canary)
    lines = evidence.stable_logs.lines + evidence.canary_logs.lines
    return {
        "scenario": info.name,
        "lines": lines,
        "collect_seconds": collect_seconds,
        "lines_per_second": lines / collect_seconds if collect_seconds else 0.0,
        "rss_growth_mb": _maxrss_mb() - rss_before,
        "budget": budget,
        "report_bytes": len(report.encode()),
        "model_bytes": model_bytes,
        "verdict": evidence.judge.verdict,
        "rare_in_report": rare.lower() in report.lower(),
        "naive_bytes": len(naive.encode()),
        "rare_in_naive": rare.lower() in naive.lower(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rare", default="payment gateway timeout",
                        help="text of the rare canary-only error in large-logs")
    parser.add_argument("--all", action="store_true", help="also report every bundled scenario")
    args = parser.parse_args(argv)

    infos = [info for info in list_scenarios() if args.all or info.name == "large-logs"]
    # large-logs first: its memory figure must not include what other scenarios left behind.
    infos.sort(key=lambda info: info.name != "large-logs")
    with simulator([info.name for info in infos]) as ready:
        _point_product_at(ready)
        results = [measure(info, args.rare) for info in infos]

    large = next(r for r in results if r["scenario"] == "large-logs")
    rows = [
        ("log lines read (both roles)", f"{large['lines']:,}", ""),
        ("evidence collection, end to end", f"{large['collect_seconds']:.2f} s",
         "Kubernetes API + fetch + parse + mine + judge"),
        ("throughput, end to end", f"{large['lines_per_second']:,.0f} lines/s", ""),
        ("peak RSS growth", f"{large['rss_growth_mb']:.0f} MB", "target < 300 MB"),
        ("evidence report", f"{large['report_bytes']:,} bytes", f"budget {large['budget']:,}"),
        ("everything the model reads", f"{large['model_bytes']:,} bytes", "report + structured facts"),
        ("rare canary-only error in the report", "yes" if large["rare_in_report"] else "NO", ""),
        ("judge verdict", large["verdict"], ""),
        ("naive: last 100 lines per pod", f"{large['naive_bytes']:,} bytes", "the Java reference agent"),
        ("rare error in the naive input", "yes" if large["rare_in_naive"] else "no", ""),
    ]
    width = max(len(row[0]) for row in rows)
    print("large-logs: the product's evidence path against the naive tail")
    for label, value, note in rows:
        print(f"  {label:<{width}}  {value:>18}  {note}")
    if args.all:
        print("\nreport size per scenario:")
        for result in results:
            print(f"  {result['scenario']:<22} {result['report_bytes']:>7,} report / {result['model_bytes']:>7,} total bytes"
                  f"  {result['collect_seconds']:5.2f} s  judge {result['verdict']}")
    ok = large["rare_in_report"] and large["model_bytes"] <= large["budget"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
