"""Request streams and what they imply: each request is generated once, then rendered both as log
lines and as Prometheus counters/histograms, so logs and metrics always agree.

A request is counted by Prometheus when it completes (`end_ns`) and its log line is written a few
microseconds later (`log_ns`, the container runtime's timestamp).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from .common import NS

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)  # + "+Inf"


@dataclass(slots=True)
class Req:
    start_ns: int
    end_ns: int
    log_ns: int
    status: int
    method: str = "POST"
    path: str = "/color"
    client: str = ""
    extra: Any = None

    @property
    def latency(self) -> float:
        return (self.end_ns - self.start_ns) / NS


def arrivals(r: random.Random, start_s: float, end_s: float, rate: float, wobble: float = 0.15,
             phase: float = 0.0) -> list[int]:
    """Poisson arrival times (ns) between start and end, the rate drifting slowly (±`wobble`) per minute."""
    out: list[int] = []
    t = start_s
    minute_rate: dict[int, float] = {}
    while True:
        minute = int(t // 60)
        lam = minute_rate.get(minute)
        if lam is None:
            lam = rate * (1.0 + wobble * math.sin(minute / 6.0 + phase) + r.uniform(-wobble / 3, wobble / 3))
            minute_rate[minute] = max(lam, rate * 0.05)
        t += r.expovariate(lam)
        if t >= end_s:
            return out
        out.append(int(t * NS))


def fast_latency(r: random.Random, median: float = 0.0016, sigma: float = 0.45) -> float:
    """A quick in-memory handler: ~1.6 ms median, log-normal tail."""
    return r.lognormvariate(math.log(median), sigma)


def requests(r: random.Random, starts: list[int], decide: Callable[[random.Random, int], tuple[int, float]],
             **fields: Any) -> list[Req]:
    """One Req per arrival; `decide(r, start_ns)` gives (status, latency seconds)."""
    out = []
    for start in starts:
        status, latency = decide(r, start)
        end = start + int(latency * NS)
        out.append(Req(start, end, end + r.randint(15_000, 180_000), status, **fields))
    out.sort(key=lambda q: q.log_ns)
    return out


# ------------------------------------------------------------------------------------------- metrics

def scrape_grid(now: int, window: int = 1800, step: int = 15) -> list[int]:
    """Scrape instants (seconds) covering `window` seconds before `now`, `now` included."""
    return list(range(now - window, now + 1, step))


@dataclass
class Segment:
    """One container instance as Prometheus sees it: counters start at `base` when it starts."""

    start: float  # seconds; the first scrape is the first grid instant after start + 1 s
    end: float | None = None  # seconds; no samples at or after it (the process is gone)
    base_codes: dict[str, int] = field(default_factory=dict)
    base_buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    base_sum: float = 0.0


@dataclass
class PodSeries:
    codes: dict[str, list[tuple[int, int]]]  # code -> [(ts, value)]
    histogram: list[tuple[int, list[int], float, int]]  # (ts, cumulative buckets incl. +Inf, sum, count)


def bucket_index(latency: float) -> int:
    return bisect.bisect_left(BUCKETS, latency)


def pod_series(reqs: list[Req], grid: list[int], segments: list[Segment]) -> PodSeries:
    """Counter and histogram samples of one pod on the scrape grid."""
    ordered = sorted(reqs, key=lambda q: q.end_ns)
    ends = [q.end_ns for q in ordered]
    all_codes = sorted({str(q.status) for q in reqs} | {c for s in segments for c in s.base_codes})
    codes: dict[str, list[tuple[int, int]]] = {c: [] for c in all_codes}
    hist: list[tuple[int, list[int], float, int]] = []
    for seg in segments:
        counts = {c: seg.base_codes.get(c, 0) for c in all_codes}
        buckets = list(seg.base_buckets)
        total_sum = seg.base_sum
        i = bisect.bisect_right(ends, int(seg.start * NS))
        for ts in grid:
            if ts < seg.start + 1 or (seg.end is not None and ts >= seg.end):
                continue
            limit = ts * NS
            while i < len(ordered) and ends[i] <= limit:
                q = ordered[i]
                counts[str(q.status)] += 1
                buckets[bucket_index(q.latency)] += 1
                total_sum += q.latency
                i += 1
            for c in all_codes:
                codes[c].append((ts, counts[c]))
            cumulative, running = [], 0
            for b in buckets:
                running += b
                cumulative.append(running)
            hist.append((ts, cumulative, total_sum, running))
    return PodSeries(codes, hist)


def base_segment(reqs: list[Req], start: float, since_start_s: float, rate: float) -> Segment:
    """A long-running pod's counters at the window start: `rate` req/s since it started, with the
    status and latency mix of the generated requests."""
    total = int(rate * since_start_s)
    n = max(1, len(reqs))
    by_code: dict[str, int] = {}
    for q in reqs:
        by_code[str(q.status)] = by_code.get(str(q.status), 0) + 1
    base_codes = {c: int(total * k / n) for c, k in sorted(by_code.items())}
    count = sum(base_codes.values())
    per_bucket = [0] * (len(BUCKETS) + 1)
    for q in reqs:
        per_bucket[bucket_index(q.latency)] += 1
    base_buckets = [int(count * k / n) for k in per_bucket]
    base_buckets[0] += count - sum(base_buckets)
    mean = sum(q.latency for q in reqs) / n if reqs else 0.0
    return Segment(start=start, base_codes=base_codes, base_buckets=base_buckets, base_sum=count * mean)
