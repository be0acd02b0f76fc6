"""Scenarios on argoproj/rollouts-demo itself: healthy, bad (85 % HTTP 500), slow (+2 s),
low traffic, and an image that does not exist.

The demo's per-request line is `log.Printf("%d - %s%s\\n", statusCode, color, delayStr)`:
`2026/01/01 11:40:03 200 - blue`, and with LATENCY set, `200 - yellow (2.000000s)`.
`bad-<color>` images are built with ERROR_RATE=15 (the app answers 500 when
rand.Intn(100) >= ERROR_RATE, i.e. 85 % of requests); `slow-<color>` with LATENCY=2.
"""

from __future__ import annotations

import random

from . import k8s
from .apps import (demo_log, http_series, pct, sidecar_log, since_canary, status_counts, telemetry_filter,
                   traffic)
from .base import Cluster, Scenario
from .common import NS, rng
from .k8s import APP, EventSpec
from .openmetrics import http_metrics
from .traffic import fast_latency, requests

RATE = 0.25  # requests per second per pod (the Service spreads traffic evenly over ready pods)
STABLE_AGE = 7517  # the stable revision started rolling out ~2 hours before `now`
FIVE_XX = ["HTTP 500", "status 500", "500 error", "500s", "5xx", "internal server error", "500 response"]


def demo_template(env: list[dict] | None = None):
    return lambda image: [k8s.demo_container(image, env=env)]


def _ok(r: random.Random, _t: int) -> tuple[int, float]:
    return 200, fast_latency(r)


def _error_rate(rate_env: int):
    """The demo's ERROR_RATE semantics: 500 when rand.Intn(100) >= ERROR_RATE."""
    def decide(r: random.Random, _t: int) -> tuple[int, float]:
        return (500 if r.randrange(100) >= rate_env else 200), fast_latency(r)
    return decide


def _slow(r: random.Random, _t: int) -> tuple[int, float]:
    return 200, 2.0 + fast_latency(r)


def _two_roles(c: Cluster, rate: float, stable_decide, canary_decide, stable_color: str, canary_color: str,
               canary_delay: str = "", sidecar: bool = False):
    """Logs and metrics series for every pod; returns (logs, series, reqs by role)."""
    logs, series, by_role = {}, {}, {"stable": [], "canary": []}
    for pod in c.pods:
        stable = pod.role == "stable"
        reqs = traffic(c, pod, rate, stable_decide if stable else canary_decide)
        color = stable_color if stable else canary_color
        logs[(pod.name, APP, False)] = demo_log(c, pod, reqs, color, "" if stable else canary_delay)
        if sidecar:
            logs[(pod.name, "istio-proxy", False)] = sidecar_log(c, pod, reqs, len(color) + 2)
        series[pod.name] = http_series(c, pod, reqs, rate)
        by_role[pod.role] += reqs
    return logs, series, by_role


# ------------------------------------------------------------------------------------------ healthy

def healthy_canary() -> Scenario:
    ns = "demo-healthy"
    # Both revisions run with ERROR_RATE=99 (a 1 % chaos baseline the team keeps on), so both
    # answer about 1 % of requests with 500: a non-zero, statistically equal error rate.
    env = [{"name": "ERROR_RATE", "value": "99"}]
    c = Cluster("healthy-canary", ns, stable_image="argoproj/rollouts-demo:blue",
                canary_image="argoproj/rollouts-demo:yellow", old_image="argoproj/rollouts-demo:green",
                template=demo_template(env), stable_age=STABLE_AGE)
    logs, series, by_role = _two_roles(c, RATE, _error_rate(99), _error_rate(99), "blue", "yellow")
    for pod in c.canary_pods:
        c.canary_start_events(pod)
    s_n, s_e = status_counts(since_canary(c, by_role["stable"]))
    c_n, c_e = status_counts(by_role["canary"])
    assert c_e >= 1 and abs(s_e / s_n - c_e / c_n) < 0.01, (s_e, s_n, c_e, c_n)
    return Scenario(
        name="healthy-canary", namespace=ns,
        description=(
            "argoproj/rollouts-demo blue -> yellow: only the colour changes. Both revisions run with "
            "ERROR_RATE=99 in the pod template (a 1 % chaos baseline), so both answer about 1 % of requests "
            f"with HTTP 500: stable {s_e}/{s_n} ({pct(s_e, s_n)}), canary {c_e}/{c_n} ({pct(c_e, c_n)}) "
            "over the canary's 20 minutes - statistically equal. Latency is equal (about 2 ms). "
            "App log: `2026/01/01 11:40:03 200 - yellow` per request. Metrics: http_requests_total and "
            "http_request_duration_seconds per pod. The Rollout waits at its AI analysis step; the "
            "correct verdict is promote."),
        expect={"promote": True, "verdict": "promote", "facts": [[
            "no significant", "not significant", "comparable", "similar", "same error rate", "equivalent",
            "no regression", "no increase", "in line with", "consistent with", "statistically equal",
            "matches stable", "on par"]]},
        cluster=c.render("analysis"), logs=logs, metrics={"http.om": http_metrics(ns, series)})


# ---------------------------------------------------------------------------------------------- bad

def bad_canary() -> Scenario:
    ns = "demo-bad"
    c = Cluster("bad-canary", ns, stable_image="argoproj/rollouts-demo:blue",
                canary_image="argoproj/rollouts-demo:bad-yellow", old_image="argoproj/rollouts-demo:green",
                template=demo_template(), istio=True, stable_age=STABLE_AGE)
    logs, series, by_role = _two_roles(c, RATE, _ok, _error_rate(15), "blue", "yellow", sidecar=True)
    for pod in c.canary_pods:
        c.canary_start_events(pod)
    c.extra_docs["istio.yaml"] = [telemetry_filter(ns)]
    s_n, s_e = status_counts(since_canary(c, by_role["stable"]))
    c_n, c_e = status_counts(by_role["canary"])
    assert 0.8 < c_e / c_n < 0.9 and s_e == 0
    return Scenario(
        name="bad-canary", namespace=ns,
        description=(
            "Canary image argoproj/rollouts-demo:bad-yellow (built with ERROR_RATE=15) answers about 85 % of "
            f"requests with HTTP 500: canary {c_e}/{c_n} ({pct(c_e, c_n)}) vs stable blue {s_e}/{s_n} since the "
            "canary started. "
            "App log lines `500 - yellow` / `200 - blue`. Every pod carries an Istio sidecar listed first "
            "(holdApplicationUntilProxyStarts), so the app container must be chosen explicitly; the sidecar's "
            "Envoy access log keeps only requests with status >= 400 or duration >= 1 s (Telemetry filter), "
            "so it shows the canary's 500s. Metrics: http_requests_total{code} and the latency histogram. "
            "Correct verdict: abort."),
        expect={"promote": False, "verdict": "abort", "facts": [FIVE_XX, ["bad-yellow"]]},
        cluster=c.render("analysis"), logs=logs, metrics={"http.om": http_metrics(ns, series)})


# --------------------------------------------------------------------------------------------- slow

def slow_canary() -> Scenario:
    ns = "demo-slow"
    c = Cluster("slow-canary", ns, stable_image="argoproj/rollouts-demo:blue",
                canary_image="argoproj/rollouts-demo:slow-yellow", old_image="argoproj/rollouts-demo:green",
                template=demo_template(), istio=True, stable_age=STABLE_AGE)
    logs, series, by_role = _two_roles(c, RATE, _ok, _slow, "blue", "yellow", canary_delay=" (2.000000s)",
                                       sidecar=True)
    for pod in c.canary_pods:
        c.canary_start_events(pod)
    c.extra_docs["istio.yaml"] = [telemetry_filter(ns)]
    s_n, s_e = status_counts(since_canary(c, by_role["stable"]))
    c_n, c_e = status_counts(by_role["canary"])
    assert s_e == 0 and c_e == 0 and not any(q.status != 200 for q in by_role["stable"])
    s_lat = sorted(q.latency for q in since_canary(c, by_role["stable"]))
    c_lat = sorted(q.latency for q in by_role["canary"])
    med = lambda xs: xs[len(xs) // 2]
    return Scenario(
        name="slow-canary", namespace=ns,
        description=(
            "Canary image argoproj/rollouts-demo:slow-yellow (built with LATENCY=2) sleeps 2 s before every "
            f"answer; no errors in either role (since the canary started: stable {s_n} requests, canary {c_n}, all "
            "HTTP 200). Median "
            f"latency: stable {med(s_lat) * 1000:.1f} ms, canary {med(c_lat):.3f} s. Latency shows in three "
            "places: the demo's own line carries the configured delay (`200 - yellow (2.000000s)`, as the real "
            "app prints it), the Istio sidecar's Envoy access log (kept for requests >= 1 s) has the measured "
            "duration in ms, and metrics have http_request_duration_seconds histograms (buckets 0.05 ... 5, "
            "+Inf). Correct verdict: abort (latency regression)."),
        expect={"promote": False, "verdict": "abort", "facts": [
            ["latency", "response time", "slow", "duration"],
            ["2 s", "2s", "2 seconds", "2.0", "2000 ms", "2000ms", "two seconds", "2 sec"]]},
        cluster=c.render("analysis"), logs=logs, metrics={"http.om": http_metrics(ns, series)})


# -------------------------------------------------------------------------------------- low traffic

def low_traffic_canary() -> Scenario:
    ns = "demo-lowtraffic"
    rate = 0.01  # an internal tool at night: ~36 requests per hour per pod
    c = Cluster("low-traffic-canary", ns, stable_image="argoproj/rollouts-demo:purple",
                canary_image="argoproj/rollouts-demo:orange", old_image="argoproj/rollouts-demo:red",
                template=demo_template(), stable_age=6 * 3600 + 611)
    logs, series, by_role = {}, {}, {"stable": [], "canary": []}
    for pod in c.pods:
        if pod.role == "stable":
            reqs = traffic(c, pod, rate, _ok)
        else:
            # Exactly 12 requests reached the canary in its 20 minutes, all answered 200.
            r = rng(ns, pod.name, "traffic")
            ready = c.app_start(pod) + 2
            starts = sorted(int(r.uniform(ready + 30, c.now - 20) * NS) for _ in range(12))
            reqs = requests(r, starts, _ok)
            for q in reqs:
                q.client = r.choice(("10.244.0.17", "10.244.1.23", "10.244.2.9"))
        color = "purple" if pod.role == "stable" else "orange"
        logs[(pod.name, APP, False)] = demo_log(c, pod, reqs, color)
        series[pod.name] = http_series(c, pod, reqs, rate, logs_from_start=True)
        by_role[pod.role] += reqs
    for pod in c.canary_pods:
        c.canary_start_events(pod)
    s_n, s_e = status_counts(by_role["stable"])
    c_n, c_e = status_counts(by_role["canary"])
    since = c.t0 * NS
    s_recent = sum(1 for q in by_role["stable"] if q.start_ns >= since)
    assert c_n == 12 and c_e == 0 and s_e == 0
    return Scenario(
        name="low-traffic-canary", namespace=ns,
        description=(
            "argoproj/rollouts-demo purple -> orange on an internal tool at night: about 0.01 requests per "
            f"second per pod. The canary served only {c_n} requests in its 20 minutes (none failed); the "
            f"four stable pods served {s_recent} in the same window ({s_n} since they started 6 hours ago, "
            "none failed). Far too few canary requests to compare error rates or latency with any "
            "confidence; the correct verdict is inconclusive, which means do not promote yet. Metrics "
            "cover the same requests."),
        expect={"promote": False, "verdict": "inconclusive", "facts": [[
            "too few", "low traffic", "insufficient", "not enough", "sample size", "12 requests",
            "inconclusive", "little traffic", "few requests", "limited traffic", "small sample"]]},
        cluster=c.render("analysis"), logs=logs, metrics={"http.om": http_metrics(ns, series)})


# ----------------------------------------------------------------------------------------- imagepull

def imagepull_canary() -> Scenario:
    ns = "demo-imagepull"
    bad_image = "argoproj/rollouts-demo:yelow"
    c = Cluster("imagepull-canary", ns, stable_image="argoproj/rollouts-demo:blue", canary_image=bad_image,
                old_image="argoproj/rollouts-demo:green", template=demo_template(), stable_age=STABLE_AGE)
    logs = {}
    for pod in c.stable_pods:
        reqs = traffic(c, pod, RATE, _ok)
        logs[(pod.name, APP, False)] = demo_log(c, pod, reqs, "blue")
    pod = c.canary_pods[0]
    app = pod.app_container
    app.runs = []
    app.waiting = ("ImagePullBackOff", f'Back-off pulling image "{bad_image}"')
    c.canary_start_events(pod, pulled=False)
    fp = f"spec.containers{{{app.name}}}"
    t0, now = pod.created, c.now
    ref = f"docker.io/{bad_image}"
    # The kubelet retried the pull with exponential back-off (10 s doubling, 5 min cap).
    attempts, t, backoff, backoffs = [], t0 + 1, 10, 0
    while t < now:
        attempts.append(t)
        backoffs += max(1, backoff // 15)  # the kubelet reports BackOff on each pod sync while waiting
        t += 2 + backoff
        backoff = min(backoff * 2, 300)
    c.events += [
        EventSpec("Pod", pod.name, "Pulling", f'Pulling image "{bad_image}"', attempts[0], attempts[-1],
                  count=len(attempts), host=pod.node, field_path=fp),
        EventSpec("Pod", pod.name, "Failed", f'Failed to pull image "{bad_image}": rpc error: code = NotFound '
                  f'desc = failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
                  f"{ref}: not found", attempts[0] + 1, attempts[-1] + 1, count=len(attempts), type="Warning",
                  host=pod.node, field_path=fp),
        EventSpec("Pod", pod.name, "Failed", "Error: ErrImagePull", attempts[0] + 1, attempts[-1] + 1,
                  count=len(attempts), type="Warning", host=pod.node, field_path=fp),
        EventSpec("Pod", pod.name, "BackOff", f'Back-off pulling image "{bad_image}"', attempts[0] + 2, now - 4,
                  count=backoffs, host=pod.node, field_path=fp),
        EventSpec("Pod", pod.name, "Failed", "Error: ImagePullBackOff", attempts[0] + 2, now - 4, count=backoffs,
                  type="Warning", host=pod.node, field_path=fp),
    ]
    return Scenario(
        name="imagepull-canary", namespace=ns,
        description=(
            f"The canary's image tag does not exist: {bad_image} (a typo of yellow). The canary pod stays "
            "Pending with its container waiting in ImagePullBackOff (ErrImagePull on each retry); events "
            "show `Failed to pull image ... not found`. There are no canary logs. The Rollout never finished "
            "step 0 and is Degraded (ProgressDeadlineExceeded after 600 s); stable pods keep serving blue. "
            "Correct verdict: abort."),
        expect={"promote": False, "verdict": "abort", "facts": [
            ["ImagePullBackOff", "ErrImagePull", "image pull", "pull the image", "pull image", "pulling image",
             "pulling the image"],
            ["yelow"]]},
        cluster=c.render("degraded"), logs=logs)
