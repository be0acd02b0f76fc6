"""Benchmark of the log-evidence layer on the `large-logs` scenario.

    python -m bench.large_logs [--scenario DIR] [--generate] [--lines N] [--seed S] [--rare TEXT] [--top N]

Reads `evals/scenarios/large-logs` (with the simulator's scenario readers, one pod at a time) when
it exists, or else (or with `--generate`) generates a scenario of the same shape (seeded, so every run sees the same logs): `--lines`
lines per role over two pods per role, rollouts-demo request lines mixed with Go log, JSON and
warning lines, and in the canary a changed colour, one new harmless info line and ONE rare error
(30 Go panic traces).

It runs what an analysis runs on the application container's logs of every stable and canary pod,
one pod at a time: read the file, then parse, summarise and mine in one stream
(`iter_entries` -> `SignatureMiner.tap` -> `summarize`, one miner for both roles), merge the stats
per role, and diff the canary against stable. It prints:

- lines processed per second (parse + summarize + mine, both roles; reading and gunzipping the
  files is timed separately);
- peak memory, two ways: the growth of the process's peak RSS (`resource.getrusage` ru_maxrss)
  from after the imports to the end of the timed run — reading one pod's log at a time (the
  simulator's reader holds the gzip bytes, the text and its lines at once) plus everything the
  analysis allocates; generated logs are written by a child process, so they do not count — and
  the peak of Python allocations during reading and analysis (`tracemalloc`, in a second, untimed
  run, because tracing slows Python down);
- whether the rare canary-only error signature is among the top `--top` entries of the diff;
- the naive approach for comparison: the last 100 lines per pod (what the Java reference agent
  reads) and whether the rare error is in them.

The rare signature is found without the miner: canary-only error-like entries (traces, 5xx,
error/fatal levels) whose text, digits masked, is absent from stable and rare (at most 0.5 % of
the canary's entries); `--rare TEXT` names it by a substring instead.

`measure()` returns everything as a `BenchResult` (per-role `LogStats`, the `SignatureDiff`, the
rare signature's ids and rank, the naive tails, timings); `rows()` turns it into the printed
table. A report builder (e.g. the evidence report) can take the result and add its own rows.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import multiprocessing
import random
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from selfheal.simulator.manifests import read_manifests
from selfheal.simulator.podlogs import parse_log_name, read_log_lines
from selfheal.simulator.scenario import bundled_scenarios_dir, read_info
from selfheal.simulator.selectors import labels_match, parse_label_selector
from tools.k8s import choose_app_container
from tools.logs import LogEntry, LogStats, iter_entries, merge_stats, summarize
from tools.signatures import SignatureDiff, SignatureMiner

NAIVE_TAIL_LINES = 100
TARGET_LINES_PER_SECOND = 100_000
TARGET_PEAK_MB = 300
RARE_SHARE = 0.005


@dataclass
class PodSource:
    """One log file to analyse: the application container of a stable or canary pod."""

    role: str
    pod: str
    container: str
    previous: bool
    path: Path


@dataclass
class BenchResult:
    source: str
    pods: dict[str, int]
    lines: dict[str, int] = field(default_factory=dict)
    read_seconds: float = 0.0
    work_seconds: float = 0.0
    diff_seconds: float = 0.0
    rss_baseline_mb: float = 0.0
    rss_growth_mb: float = 0.0
    tracemalloc_peak_mb: float | None = None
    stats: dict[str, LogStats] = field(default_factory=dict)
    diff: SignatureDiff | None = None
    rare_ids: list[str] = field(default_factory=list)
    rare_count: int = 0
    rare_rank: int | None = None
    top: int = 10
    naive_lines: int = 0
    naive_rare: int = 0
    naive_stats: dict[str, LogStats] = field(default_factory=dict)
    naive_canary_tails: list[list[str]] = field(default_factory=list, repr=False)

    @property
    def total_lines(self) -> int:
        return sum(self.lines.values())

    @property
    def lines_per_second(self) -> float:
        return self.total_lines / self.work_seconds if self.work_seconds else 0.0


# --- the logs ----------------------------------------------------------------------------------


def scan_pods(folder: Path) -> list[PodSource]:
    """The application container's log files (current and previous) of every stable and canary
    pod, stable first; nothing is read yet, so one pod's lines at a time are in memory."""
    info = read_info(folder)
    selectors = {
        "stable": parse_label_selector(info.selectors.stable),
        "canary": parse_label_selector(info.selectors.canary),
    }
    roles: dict[str, str] = {}
    apps: dict[str, str | None] = {}
    for path in sorted((folder / "cluster").glob("*.y*ml")):
        for manifest in read_manifests(path):
            if manifest.kind != "Pod":
                continue
            labels = (manifest.body.get("metadata") or {}).get("labels") or {}
            for role, requirements in selectors.items():
                if labels_match(requirements, labels):
                    roles[manifest.name] = role
                    apps[manifest.name] = choose_app_container(manifest.body)
    sources = []
    for pod_dir in sorted((folder / "logs").iterdir()) if (folder / "logs").is_dir() else []:
        if pod_dir.name not in roles:
            continue
        for path in sorted(pod_dir.iterdir()):
            parsed = parse_log_name(path.name)
            if parsed is not None and parsed[0] == apps[pod_dir.name]:
                sources.append(PodSource(roles[pod_dir.name], pod_dir.name, parsed[0], parsed[1], path))
    if {source.role for source in sources} != {"stable", "canary"}:
        raise SystemExit(f"{folder}: needs application logs of stable and canary pods")
    return sorted(sources, key=lambda source: source.role != "stable")


_PANIC = (
    "{ts} {go} http: panic serving 10.244.{a}.{b}:{port}: runtime error: slice bounds out of range [:{hi}] with capacity {cap}\n"
    "{ts} goroutine {g} [running]:\n"
    "{ts} net/http.(*conn).serve.func1()\n"
    "{ts} \t/usr/local/go/src/net/http/server.go:1898 +0xbe\n"
    "{ts} panic({{0x6d5e40?, 0xc00001c0f0?}})\n"
    "{ts} \t/usr/local/go/src/runtime/panic.go:770 +0x132\n"
    "{ts} main.(*server).renderColor(0xc0000a6000, {{0x7f1d38, 0xc0001c2000}}, 0xc0001b8000)\n"
    "{ts} \t/go/src/app/main.go:{line} +0x2c5\n"
    "{ts} created by net/http.(*Server).Serve in goroutine 1\n"
    "{ts} \t/usr/local/go/src/net/http/server.go:3285 +0x4b4"
)


def _generated_lines(role: str, pod_index: int, count: int, rng: random.Random, rare: int) -> list[str]:
    """`count` log lines of one pod; the canary's include `rare` panic traces."""
    color = "blue" if role == "stable" else "green"
    start = datetime(2026, 1, 1, 11, 40, tzinfo=timezone.utc)
    step = timedelta(seconds=1200 / count)
    lines: list[str] = []
    rare_at = set(rng.sample(range(count), rare)) if rare else set()
    for i in range(count):
        moment = start + step * i
        ts = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        go = moment.strftime("%Y/%m/%d %H:%M:%S")
        if i in rare_at:
            lines.extend(
                _PANIC.format(
                    ts=ts, go=go, a=rng.randrange(256), b=rng.randrange(256), port=rng.randrange(30000, 60000),
                    hi=rng.randrange(9, 64), cap=8, g=rng.randrange(20, 9000), line=rng.choice((131, 131, 140)),
                ).split("\n")
            )
            continue
        r = rng.random()
        if r < 0.70:
            status = 500 if rng.random() < 0.01 else 200
            lines.append(f"{ts} {go} {status} - {color}")
        elif r < 0.80:
            lines.append(f"{ts} {go} 200 - {color} ({rng.random() * 0.2:.6f}s)")
        elif r < 0.88:
            lines.append(
                f'{ts} {{"level":"info","ts":{moment.timestamp():.3f},"msg":"served request","method":"GET",'
                f'"path":"/color","status":200,"latency_ms":{rng.randrange(1, 40)},'
                f'"request_id":"{rng.getrandbits(64):016x}"}}'
            )
        elif r < 0.94:
            lines.append(f"{ts} {go} cache refresh took {rng.randrange(1, 900)}ms for key user-{rng.randrange(10**6)}")
        elif r < 0.97:
            lines.append(f"{ts} {go} connected to redis at 10.0.{rng.randrange(256)}.{rng.randrange(256)}:6379 (pool {rng.randrange(1, 64)})")
        elif r < 0.99:
            lines.append(f"{ts} {go} WARN slow upstream 10.0.3.{rng.randrange(256)}:8080 took {rng.random() * 3:.2f}s")
        elif role == "canary" and r < 0.995:
            lines.append(f"{ts} {go} feature flag new-checkout enabled for tenant t-{rng.randrange(5000)}")
        else:
            lines.append(f"{ts} {go} GC forced, heap {rng.randrange(8, 512)}MB")
    return lines


def generate_scenario(folder: Path, lines_per_role: int, seed: int, rare: int = 30) -> None:
    """Write a large-logs scenario in the scenario format: two stable and two canary pods."""
    rng = random.Random(seed)
    namespace = "bench-large-logs"
    (folder / "cluster").mkdir(parents=True)
    (folder / "scenario.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "large-logs-generated",
                "description": f"generated by bench/large_logs.py (seed {seed})",
                "now": "2026-01-01T12:00:00Z",
                "rollout": {"namespace": namespace, "name": "canary-demo"},
                "selectors": {"stable": "role=stable", "canary": "role=canary"},
            }
        )
    )
    docs: list[dict] = [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
         "metadata": {"name": "canary-demo", "namespace": namespace}, "spec": {}},
    ]
    for role in ("stable", "canary"):
        for index in range(2):
            pod = f"canary-demo-{role}-{index}"
            docs.append(
                {"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": pod, "namespace": namespace, "labels": {"app": "canary-demo", "role": role}},
                 "spec": {"containers": [{"name": "canary-demo", "image": f"argoproj/rollouts-demo:{role}"},
                                         {"name": "istio-proxy", "image": "istio/proxyv2"}]}}
            )
            pod_rare = rare // 2 + (rare % 2 if index == 0 else 0) if role == "canary" else 0
            lines = _generated_lines(role, index, lines_per_role // 2, rng, pod_rare)
            (folder / "logs" / pod).mkdir(parents=True)
            (folder / "logs" / pod / "canary-demo.log.gz").write_bytes(
                gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)
            )
    (folder / "cluster" / "objects.yaml").write_text(yaml.safe_dump_all(docs))


# --- the measurement ---------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


def _rare_key(entry: LogEntry) -> str:
    return _DIGITS.sub("#", entry.signature_text)


def _error_like(entry: LogEntry) -> bool:
    return entry.is_trace or (entry.status or 0) >= 500 or entry.level in ("error", "fatal")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def analyze(sources: list[PodSource], result: BenchResult | None = None) -> tuple[SignatureMiner, dict[str, LogStats]]:
    """What an analysis does with the logs: per pod, read the file, then parse, summarise and mine
    in one stream (`iter_entries` -> `SignatureMiner.tap` -> `summarize`); per role, merge the
    stats. Fills the timings, line counts and naive tails of `result` when given."""
    miner = SignatureMiner()
    per_role: dict[str, list[LogStats]] = {"stable": [], "canary": []}
    tails: dict[str, list[LogStats]] = {"stable": [], "canary": []}
    for source in sources:
        t0 = time.perf_counter()
        lines = read_log_lines(source.path)
        t1 = time.perf_counter()
        per_role[source.role].append(summarize(miner.tap(iter_entries(lines), source.role)))
        t2 = time.perf_counter()
        if result is not None:
            result.read_seconds += t1 - t0
            result.work_seconds += t2 - t1
            result.lines[source.role] = result.lines.get(source.role, 0) + len(lines)
            if not source.previous:
                tail = lines[-NAIVE_TAIL_LINES:]
                result.naive_lines += len(tail)
                tails[source.role].append(summarize(iter_entries(tail)))
                if source.role == "canary":
                    result.naive_canary_tails.append(tail)
        del lines
    if result is not None:
        result.naive_stats = {role: merge_stats(parts) for role, parts in tails.items()}
    return miner, {role: merge_stats(parts) for role, parts in per_role.items()}


def rare_entries(sources: list[PodSource], rare_text: str | None, canary_entries: int) -> list[LogEntry]:
    """The canary entries of the rare canary-only error, found without the miner (see the module
    docstring), in a separate untimed pass."""
    stable_keys: set[str] = set()
    canary_keys: Counter[str] = Counter()
    candidates: list[LogEntry] = []
    for source in sources:
        for entry in iter_entries(read_log_lines(source.path)):
            if rare_text is not None:
                if source.role == "canary" and rare_text in entry.text:
                    candidates.append(entry)
            elif _error_like(entry):
                if source.role == "stable":
                    stable_keys.add(_rare_key(entry))
                else:
                    canary_keys[_rare_key(entry)] += 1
                    candidates.append(entry)
    if rare_text is not None:
        return candidates
    limit = max(1, int(canary_entries * RARE_SHARE))
    rare = {key for key, n in canary_keys.items() if key not in stable_keys and n <= limit}
    return [entry for entry in candidates if _rare_key(entry) in rare]


def measure(sources: list[PodSource], *, source: str, rare_text: str | None = None, top: int = 10) -> BenchResult:
    """Run the analysis on `sources` and measure it (see the module docstring)."""
    pods: dict[str, set[str]] = {"stable": set(), "canary": set()}
    for item in sources:
        pods[item.role].add(item.pod)
    result = BenchResult(source=source, pods={role: len(names) for role, names in pods.items()}, top=top)

    gc.collect()
    result.rss_baseline_mb = _maxrss_mb()
    miner, stats = analyze(sources, result)
    t0 = time.perf_counter()
    diff = miner.diff()
    result.diff_seconds = time.perf_counter() - t0
    result.rss_growth_mb = _maxrss_mb() - result.rss_baseline_mb
    result.stats = stats
    result.diff = diff

    rare = rare_entries(sources, rare_text, miner.entries("canary"))
    result.rare_count = len(rare)
    result.rare_ids = sorted({sid for sid in (miner.signature_of(entry) for entry in rare) if sid is not None})
    ranked_ids = [change.id for change in diff.ranked()]
    ranks = [ranked_ids.index(sid) + 1 for sid in result.rare_ids if sid in ranked_ids]
    result.rare_rank = min(ranks) if ranks else None

    # The naive way: were any of the rare entries in the last 100 lines of a canary pod?
    rare_keys = {_rare_key(entry) for entry in rare}
    for tail in result.naive_canary_tails:
        for entry in iter_entries(tail):
            if (rare_text is not None and rare_text in entry.text) or (
                rare_text is None and _error_like(entry) and _rare_key(entry) in rare_keys
            ):
                result.naive_rare += 1

    # Python allocations of the analysis alone, in a second run (tracing slows Python down).
    del miner, stats, rare
    gc.collect()
    tracemalloc.start()
    analyze(sources)
    result.tracemalloc_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result


# --- the table ---------------------------------------------------------------------------------


def _ok(passed: bool) -> str:
    return "OK" if passed else "MISSED"


def rows(result: BenchResult) -> list[tuple[str, str, str]]:
    """(measure, value, target/verdict) rows of the printed table."""
    diff = result.diff
    assert diff is not None
    stable, canary = result.stats["stable"], result.stats["canary"]
    lps = result.lines_per_second
    peak = result.rss_growth_mb
    out = [
        ("source", result.source, ""),
        ("pods (stable / canary)", f"{result.pods['stable']} / {result.pods['canary']}", ""),
        ("lines (stable / canary)", f"{result.lines.get('stable', 0):,} / {result.lines.get('canary', 0):,}", ""),
        ("entries (stable / canary)", f"{stable.entries:,} / {canary.entries:,}", "multi-line traces folded"),
        ("read (gunzip + split)", f"{result.read_seconds:.2f} s", "not in lines/s"),
        ("parse + summarize + mine", f"{result.work_seconds:.2f} s", "one stream per pod, one miner"),
        ("diff", f"{result.diff_seconds:.3f} s", ""),
        ("lines/s (parse+summarize+mine)", f"{lps:,.0f}", f">= {TARGET_LINES_PER_SECOND:,}: {_ok(lps >= TARGET_LINES_PER_SECOND)}"),
        ("peak memory: RSS growth (getrusage)", f"{peak:.0f} MB",
         f"< {TARGET_PEAK_MB} MB: {_ok(peak < TARGET_PEAK_MB)} (reading one pod's log + analysis)"),
        ("  process peak RSS / after imports", f"{result.rss_baseline_mb + peak:.0f} / {result.rss_baseline_mb:.0f} MB", ""),
        ("  Python allocations (tracemalloc)", f"{(result.tracemalloc_peak_mb or 0):.0f} MB", "reading + analysis, untimed run"),
        ("5xx ratio (stable / canary)", f"{_pct(stable.error_ratio)} / {_pct(canary.error_ratio)}", ""),
        ("traces (stable / canary)", f"{stable.traces} / {canary.traces}", ""),
        ("signatures", f"{diff.signatures} (new {len(diff.new)}, grown {len(diff.grown)}, vanished {len(diff.vanished)})", ""),
    ]
    if result.rare_ids:
        found = result.rare_rank is not None and result.rare_rank <= result.top
        out.append((
            "rare canary-only error",
            f"{', '.join(result.rare_ids)}: {result.rare_count} entries, rank {result.rare_rank}",
            f"in top {result.top}: {_ok(found)}",
        ))
        template = next(c.template for c in diff.ranked() if c.id in result.rare_ids)
        out.append(("  template", template if len(template) <= 80 else template[:79] + "…", ""))
    else:
        out.append(("rare canary-only error", "none in this data", "MISSED"))
    out.append((
        f"naive: last {NAIVE_TAIL_LINES} lines/pod",
        f"{result.naive_lines} lines, {result.naive_rare} rare-error entries",
        f"rare error seen: {'yes' if result.naive_rare else 'no'}",
    ))
    naive = result.naive_stats
    out.append((
        "  naive 5xx ratio (stable / canary)",
        f"{_pct(naive['stable'].error_ratio)} / {_pct(naive['canary'].error_ratio)}",
        "",
    ))
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def print_table(table: list[tuple[str, str, str]]) -> None:
    width = [max(len(row[i]) for row in table) for i in range(3)]
    for name, value, note in table:
        print(f"{name:<{width[0]}}  {value:<{width[1]}}  {note}".rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=bundled_scenarios_dir() / "large-logs",
                        help="scenario folder (default: evals/scenarios/large-logs; generated if missing)")
    parser.add_argument("--generate", action="store_true", help="generate logs even if the scenario exists")
    parser.add_argument("--lines", type=int, default=200_000, help="lines per role when generating")
    parser.add_argument("--seed", type=int, default=7, help="seed when generating")
    parser.add_argument("--rare", default=None, help="substring that identifies the rare canary-only error")
    parser.add_argument("--top", type=int, default=10, help="the rare signature must rank within this many")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-large-logs-") as tmp:
        if args.scenario.is_dir() and not args.generate:
            folder, source = args.scenario, str(args.scenario)
        else:
            folder = Path(tmp) / "large-logs"
            # A child process writes the logs, so their generation stays out of this process's peak RSS.
            child = multiprocessing.get_context("fork").Process(
                target=generate_scenario, args=(folder, args.lines, args.seed)
            )
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit(f"generating the scenario failed (exit code {child.exitcode})")
            source = f"generated ({args.lines:,} lines/role, seed {args.seed})"
        result = measure(scan_pods(folder), source=source, rare_text=args.rare, top=args.top)
    print_table(rows(result))
    found = result.rare_rank is not None and result.rare_rank <= args.top
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
