"""Per-pod traffic and log rendering shared by the scenarios built on HTTP services."""

from __future__ import annotations

import random
from typing import Callable

from .base import Cluster
from .common import NS, rng, stamp_ns
from .formats import (BROWSER_AGENTS, INGRESS_IPS, demo_request, envoy_access, go_log, istio_log, stamped)
from .k8s import PodPlan
from .traffic import PodSeries, Req, Segment, arrivals, base_segment, pod_series, requests, scrape_grid

Decide = Callable[[random.Random, int], tuple[int, float]]
Timed = list[tuple[int, str]]


def window_start(c: Cluster, pod: PodPlan, log_since: int | None = None) -> float:
    """When a pod's current log file begins: the app's start (plus readiness) or `log_since`."""
    start = c.app_start(pod) + 2.0
    return max(start, float(log_since)) if log_since is not None else start


def traffic(c: Cluster, pod: PodPlan, rate: float, decide: Decide, since: float | None = None,
            until: float | None = None, seed: object = "", **fields: object) -> list[Req]:
    """Requests served by `pod` (rate per second) from `since` (default: ready) until `now`."""
    r = rng(c.namespace, pod.name, "traffic", seed)
    start = since if since is not None else window_start(c, pod)
    end = until if until is not None else c.now
    reqs = requests(r, arrivals(r, start, end, rate, phase=r.uniform(0, 6)), decide, **fields)
    for q in reqs:
        q.client = r.choice(INGRESS_IPS)
    limit = int(end * NS)
    return [q for q in reqs if q.log_ns <= limit]


def timed(_ns: int, lines: list[str]) -> Timed:
    """Pair stamped lines with their own runtime timestamps (the sort key of a log file)."""
    return [(stamp_ns(line), line) for line in lines]


def sort_lines(items: Timed) -> list[str]:
    items.sort(key=lambda item: item[0])
    return [line for _, line in items]


def demo_log(c: Cluster, pod: PodPlan, reqs: list[Req], color: str, delay: str = "",
             started_line: bool = True, extra: Timed | None = None) -> list[str]:
    """argoproj/rollouts-demo's stdout: the start line, then one line per request."""
    items: Timed = []
    if started_line:
        start_ns = c.app_start(pod) * NS + rng(pod.name, "boot").randint(20_000_000, 90_000_000)
        items += timed(start_ns, go_log(start_ns, "Started server on :8080"))
    items += [(q.log_ns, demo_request(q, color, delay)) for q in reqs]
    items += extra or []
    return sort_lines(items)


def sidecar_log(c: Cluster, pod: PodPlan, reqs: list[Req], color_bytes: int,
                agent_of: Callable[[Req], str] | None = None) -> list[str]:
    """istio-proxy's log: start-up, XDS reconnects, and access-log lines for requests that the
    namespace's Telemetry filter keeps (status >= 400 or duration >= 1 s)."""
    r = rng(c.namespace, pod.name, "envoy")
    access = []
    for q in reqs:
        agent = agent_of(q) if agent_of else r.choice(BROWSER_AGENTS)
        if q.status >= 400 or q.end_ns - q.start_ns >= NS:
            access.append(envoy_access(q, r, c.namespace, pod.ip or "", agent, 82, color_bytes))
    proxy_start = pod.container("istio-proxy").runs[0].started * NS
    return istio_log(proxy_start, c.now * NS, pod.name, c.namespace, pod.ip or "", access, r)


def http_series(c: Cluster, pod: PodPlan, reqs: list[Req], rate: float, logs_from_start: bool = False) -> PodSeries:
    """Prometheus counters/histogram of one pod on the 15 s grid covering the 30 minutes before `now`."""
    grid = scrape_grid(c.now)
    start = c.app_start(pod)
    if pod.role == "stable" and not logs_from_start and reqs:
        first = reqs[0].start_ns / NS
        segment = base_segment(reqs, start, max(0.0, first - start), rate)
    else:
        segment = Segment(start=start)
    return pod_series(reqs, grid, [segment])


def telemetry_filter(namespace: str) -> dict:
    return {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
            "metadata": {"name": "access-log-errors-and-slow", "namespace": namespace},
            "spec": {"accessLogging": [{"providers": [{"name": "envoy"}],
                                        "filter": {"expression": 'response.code >= 400 || '
                                                                 'response.duration >= duration("1s")'}}]}}


def since_canary(c: Cluster, reqs: list[Req]) -> list[Req]:
    """The requests that started after the canary pods were created (the comparison window)."""
    since = c.t0 * NS
    return [q for q in reqs if q.start_ns >= since]


def status_counts(reqs: list[Req]) -> tuple[int, int]:
    """(requests, 5xx responses)."""
    return len(reqs), sum(1 for q in reqs if q.status >= 500)


def pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


__all__ = ["Decide", "Timed", "demo_log", "http_series", "pct", "sidecar_log", "since_canary", "sort_lines", "stamped",
           "status_counts", "telemetry_filter", "timed", "traffic", "window_start"]
