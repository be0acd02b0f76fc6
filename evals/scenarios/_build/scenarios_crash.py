"""Canaries that die: OOMKilled in a loop (memory growth) and a missing environment variable at start."""

from __future__ import annotations

from . import k8s
from .apps import Timed, http_series, sort_lines, status_counts, timed, traffic
from .base import Cluster, Scenario
from .common import NS, go_duration, python_log_time, rfc3339, rng, uid
from .formats import demo_request, go_log, python_log, stamped
from .k8s import EventSpec, PodPlan, Run
from .openmetrics import OpenMetrics, http_metrics
from .traffic import Req, Segment, fast_latency, pod_series, scrape_grid

MIB = 1024 * 1024
STABLE_AGE = 7517


def _backoff_messages(c: Cluster, pod: PodPlan, container: str, finishes: list[int], backoffs: list[int]) -> EventSpec:
    """The kubelet's BackOff event for a crash-looping container (reported on every sync while waiting)."""
    count = sum(max(1, b // 10) for b in backoffs)
    return EventSpec("Pod", pod.name, "BackOff",
                     f"Back-off restarting failed container {container} in pod "
                     f"{pod.name}_{c.namespace}({uid(c.namespace, 'Pod', pod.name)})",
                     finishes[0] + 1, c.now - 2, count=count, type="Warning", host=pod.node,
                     field_path=f"spec.containers{{{container}}}")


def _waiting(c: Cluster, pod: PodPlan, container: str, backoff: int) -> tuple[str, str]:
    return ("CrashLoopBackOff", f"back-off {go_duration(backoff)} restarting failed container={container} "
            f"pod={pod.name}_{c.namespace}({uid(c.namespace, 'Pod', pod.name)})")


# ---------------------------------------------------------------------------------------- crashloop

def crashloop_canary() -> Scenario:
    ns = "demo-crashloop"
    rate = 0.25
    limit = 64 * MIB
    template = lambda image: [k8s.demo_container(image, memory_limit="64Mi")]
    c = Cluster("crashloop-canary", ns, stable_image="ghcr.io/acme/rollouts-demo:1.3.2",
                canary_image="ghcr.io/acme/rollouts-demo:1.4.0", old_image="ghcr.io/acme/rollouts-demo:1.3.1",
                template=template, stable_age=STABLE_AGE)
    logs: dict = {}
    series: dict = {}
    memory: dict[str, list[tuple[int, int]]] = {}
    grid = scrape_grid(c.now)
    decide = lambda r, _t: (200, fast_latency(r))

    # Stable 1.3.2: steady ~12 MiB, a memstats line every 15 s.
    s_reqs_all: list[Req] = []
    for pod in c.stable_pods:
        reqs = traffic(c, pod, rate, decide)
        s_reqs_all += reqs
        r = rng(ns, pod.name, "mem")
        start = c.app_start(pod)
        items: Timed = []
        boot = start * NS + 31_000_000
        items += timed(boot, go_log(boot, "Started server on :8080"))
        gc = 0
        for k, t in enumerate(range(start + 15, c.now, 15)):
            gc += r.randint(1, 3)
            ns_t = t * NS + r.randint(0, 900_000)
            heap = 3.6 + r.uniform(0, 0.9)
            items += timed(ns_t, go_log(ns_t, f"memstats: heap_alloc={heap:.1f}MiB heap_sys={heap + 7.6:.1f}MiB "
                                              f"num_gc={gc}"))
        items += [(q.log_ns, demo_request(q, "blue")) for q in reqs]
        logs[(pod.name, k8s.APP, False)] = sort_lines(items)
        series[pod.name] = http_series(c, pod, reqs, rate)
        memory[pod.name] = [(ts, int((11.4 + r.uniform(0, 1.2)) * MIB)) for ts in grid if ts >= start + 1]

    # Canary 1.4.0: an unbounded response cache (max_entries=0) grows ~1.2 MiB per request until the
    # container passes its 64Mi limit and is OOMKilled; the kubelet restarts it with back-off.
    pod = c.canary_pods[0]
    app = pod.app_container
    r = rng(ns, pod.name, "runs")
    per_entry, base_ws = 1.2 * MIB, 7.4 * MIB
    runs: list[Run] = []
    run_logs: list[list[str]] = []
    c_reqs_all: list[Req] = []
    segments: list[Segment] = []
    mem_points: list[tuple[int, int]] = []
    backoffs: list[int] = []
    t = c.app_start(pod)
    gc = 0
    while t < c.now:
        rr = rng(ns, pod.name, "run", len(runs))
        start_ns = t * NS
        arrivals_ = traffic(c, pod, rate, decide, since=t + 2, until=c.now, seed=len(runs))
        reqs: list[Req] = []
        killed: int | None = None
        entries = 0
        for q in arrivals_:
            ws = base_ws + (entries + 1) * per_entry + rr.uniform(0, 0.8) * MIB
            if ws >= limit:
                killed = q.start_ns + rr.randint(1_000_000, 4_000_000)
                break
            entries += 1
            reqs.append(q)
        items = []
        boot = start_ns + 28_000_000
        items += timed(boot, go_log(boot, "Started server on :8080"))
        items += timed(boot + 400_000, go_log(boot + 400_000, "response cache enabled (ttl=0s, max_entries=0)"))
        items += [(q.log_ns, demo_request(q, "blue")) for q in reqs]
        end_ns = killed if killed is not None else c.now * NS
        for tick in range(t + 15, end_ns // NS + 1, 15):
            tick_ns = tick * NS + rr.randint(0, 900_000)
            if tick_ns >= end_ns:
                break
            n = sum(1 for q in reqs if q.end_ns <= tick_ns)
            heap = (base_ws + n * per_entry) / MIB - 5.9 + rr.uniform(0, 0.4)
            gc += rr.randint(0, 2)
            items += timed(tick_ns, go_log(tick_ns, f"memstats: heap_alloc={heap:.1f}MiB "
                                                    f"heap_sys={heap + 6.3 + n * 0.05:.1f}MiB num_gc={gc} "
                                                    f"cache_entries={n}"))
        run_logs.append(sort_lines(items))
        c_reqs_all += reqs
        end_s = None if killed is None else -(-killed // NS)
        segments.append(Segment(start=t, end=end_s))
        for ts in grid:
            if ts >= t + 1 and (end_s is None or ts < end_s):
                n = sum(1 for q in reqs if q.end_ns <= ts * NS)
                mem_points.append((ts, int(base_ws + n * per_entry + rr.uniform(0, 0.5) * MIB)))
        if killed is None:
            runs.append(Run(t))
            break
        runs.append(Run(t, end_s, 137, "OOMKilled"))
        backoff = min(10 * 2 ** (len(runs) - 1), 300)
        backoffs.append(backoff)
        t = end_s + backoff + rr.randint(0, 2)
    assert not runs[-1].running and len(runs) >= 4, [(x.started - c.t0, x.finished and x.finished - c.t0) for x in runs]
    app.runs = runs
    app.waiting = _waiting(c, pod, app.name, backoffs[-1])
    logs[(pod.name, app.name, True)] = run_logs[-1]
    # While the container waits in CrashLoopBackOff the kubelet serves the last terminated
    # container's log for both the current and the previous log request.
    logs[(pod.name, app.name, False)] = run_logs[-1]
    series[pod.name] = pod_series(c_reqs_all, grid, segments)
    memory[pod.name] = mem_points
    c.canary_start_events(pod)
    c.events.append(_backoff_messages(c, pod, app.name, [x.finished for x in runs], backoffs))

    om = OpenMetrics()
    om.family("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes.")
    for pod_name, points in memory.items():
        for ts, value in points:
            om.sample("container_memory_working_set_bytes",
                      [("namespace", ns), ("pod", pod_name), ("container", k8s.APP)], value, ts)
    timeline = ", ".join(f"{rfc3339(x.started)[11:19]}-{rfc3339(x.finished)[11:19]}" for x in runs)
    s_n, _ = status_counts(s_reqs_all)
    return Scenario(
        name="crashloop-canary", namespace=ns,
        description=(
            "Canary ghcr.io/acme/rollouts-demo:1.4.0 (a fork of the rollouts-demo) adds a response cache "
            "with no bound (`response cache enabled (ttl=0s, max_entries=0)`): memory grows about 1.2 MiB "
            "per request until the container exceeds its 64Mi limit and is OOMKilled (exit code 137). "
            f"It restarted {len(runs) - 1} times ({timeline}) and now waits in CrashLoopBackOff. The "
            "previous log shows memstats lines (heap_alloc, cache_entries) growing until it stops abruptly; "
            "while the container waits, `kubectl logs` and `kubectl logs --previous` both return that last "
            "terminated container's log, as the kubelet does. Stable 1.3.2 stays at ~4 MiB heap "
            f"({s_n} requests, no errors). Metrics: http_requests_total (the canary's counters reset at "
            "each restart) and container_memory_working_set_bytes (sawtooth up to the limit). Correct "
            "verdict: abort."),
        expect={"promote": False, "verdict": "abort", "facts": [
            ["OOMKilled", "OOM", "out of memory", "out-of-memory", "memory limit"],
            ["CrashLoopBackOff", "crash loop", "crashloop", "crash-loop", "restarting", "restarts", "restarted"]]},
        cluster=c.render("analysis"), logs=logs,
        metrics={"http.om": http_metrics(ns, series), "memory.om": om.text()})


# ------------------------------------------------------------------------------------- config error

ORDER_PATHS = ("/api/orders?status=open", "/api/orders?status=shipped&limit=50", "/api/orders/{id}",
               "/api/orders/{id}/items", "/api/orders")
STATUS_TEXT = {200: "OK", 201: "Created", 404: "Not Found"}


def _orders_template(image: str, with_db: bool) -> list[dict]:
    env = [{"name": "LOG_LEVEL", "value": "INFO"}]
    if with_db:
        env.append({"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "orders-db", "key": "url"}}})
    else:
        env.append({"name": "ORDERS_EVENTS_TOPIC", "value": "orders.v2"})
    c = k8s.demo_container(image, name="orders-api", env=env)
    c["envFrom"] = [{"configMapRef": {"name": "orders-api-config"}}]
    c["command"] = ["python", "-m", "orders"]
    c["readinessProbe"]["httpGet"]["path"] = "/healthz"
    c["readinessProbe"]["periodSeconds"] = 10
    return [c]


def _uvicorn_access(q: Req) -> str:
    port = 30000 + (q.start_ns // 1000) % 30000
    return stamped(q.log_ns, f'INFO:     {q.client}:{port} - "{q.method} {q.path} HTTP/1.1" '
                             f"{q.status} {STATUS_TEXT[q.status]}")


def _orders_stable_log(c: Cluster, pod: PodPlan, version: str) -> tuple[list[str], list[Req]]:
    r = rng(c.namespace, pod.name, "orders")
    start = c.app_start(pod)
    ns0 = start * NS + 350_000_000
    items: Timed = []
    items += [(ns0, stamped(ns0, "INFO:     Started server process [1]")),
              (ns0 + 1_000, stamped(ns0 + 1_000, "INFO:     Waiting for application startup."))]
    items += timed(ns0 + 90_000_000, python_log(ns0 + 90_000_000, "INFO", "orders.app",
                                               f"orders-api {version} starting (python 3.12.8, uvicorn 0.32.1)"))
    items += timed(ns0 + 210_000_000, python_log(ns0 + 210_000_000, "INFO", "orders.db",
                                                f"connected to postgresql://orders-db.{c.namespace}.svc:5432/orders "
                                                "(pool size 10)"))
    items += [(ns0 + 230_000_000, stamped(ns0 + 230_000_000, "INFO:     Application startup complete.")),
              (ns0 + 231_000_000, stamped(ns0 + 231_000_000,
                                          "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)"))]

    def decide(rr, _t):
        return 200, rr.lognormvariate(-4.3, 0.5)

    reqs = traffic(c, pod, 0.25, decide)
    for q in reqs:
        pick = r.random()
        oid = r.randint(80000, 89999)
        if pick < 0.35:
            q.method, q.path = "GET", ORDER_PATHS[0]
        elif pick < 0.45:
            q.method, q.path = "GET", ORDER_PATHS[1]
        elif pick < 0.75:
            q.method, q.path = "GET", ORDER_PATHS[2].format(id=oid)
            if r.random() < 0.03:
                q.status = 404
        elif pick < 0.87:
            q.method, q.path = "GET", ORDER_PATHS[3].format(id=oid)
        else:
            q.method, q.path, q.status = "POST", ORDER_PATHS[4], 201
        items.append((q.log_ns, _uvicorn_access(q)))
    # kubelet readiness probes every 10 s, from the node's pod-network gateway.
    gateway = ".".join((pod.ip or "10.244.0.0").split(".")[:3] + ["1"])
    for k, t in enumerate(range(start + 3, c.now, 10)):
        t_ns = t * NS + r.randint(0, 3_000_000)
        items.append((t_ns, stamped(t_ns, f'INFO:     {gateway}:{40000 + (k * 7919) % 20000} - "GET /healthz HTTP/1.1" 200 OK')))
    for t in range(start + 60, c.now, 60):
        t_ns = t * NS + r.randint(0, 400_000_000)
        items += timed(t_ns, python_log(t_ns, "INFO", "orders.sync",
                                        f"reconciled {r.randint(3, 40)} pending orders in {r.randint(90, 400)}ms"))
    return sort_lines(items), reqs


def _key_error_trace(start_ns: int) -> list[str]:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "<frozen runpy>", line 198, in _run_module_as_main\n'
        '  File "<frozen runpy>", line 88, in _run_code\n'
        '  File "/app/orders/__main__.py", line 5, in <module>\n'
        "    from orders.app import create_app\n"
        '  File "/app/orders/app.py", line 14, in <module>\n'
        "    from orders.settings import settings\n"
        '  File "/app/orders/settings.py", line 38, in <module>\n'
        "    settings = Settings.from_env()\n"
        "               ^^^^^^^^^^^^^^^^^^^\n"
        '  File "/app/orders/settings.py", line 27, in from_env\n'
        '    database_url=os.environ["DATABASE_URL"],\n'
        "                 ~~~~~~~~~~^^^^^^^^^^^^^^^^\n"
        '  File "<frozen os>", line 714, in __getitem__\n'
        "KeyError: 'DATABASE_URL'")
    lines = [stamped(start_ns, f"{python_log_time(start_ns)} INFO [orders] orders-api 2.4.0 starting "
                               "(python 3.12.8, uvicorn 0.32.1)")]
    lines += [stamped(start_ns + 612_000_000 + i * 1_000, part) for i, part in enumerate(trace.split("\n"))]
    return lines


def config_error_canary() -> Scenario:
    ns = "demo-config"
    c = Cluster("config-error-canary", ns, stable_image="ghcr.io/acme/orders-api:2.3.1",
                canary_image="ghcr.io/acme/orders-api:2.4.0", old_image="ghcr.io/acme/orders-api:2.3.0",
                template=lambda image: _orders_template(image, True),
                canary_template=lambda image: _orders_template(image, False),
                stable_age=STABLE_AGE, github_url="https://github.com/acme/orders-api")
    logs = {}
    s_reqs: list[Req] = []
    for pod in c.stable_pods:
        lines, reqs = _orders_stable_log(c, pod, "2.3.1")
        logs[(pod.name, "orders-api", False)] = lines
        s_reqs += reqs
    pod = c.canary_pods[0]
    app = pod.app_container
    r = rng(ns, pod.name, "runs")
    runs, backoffs, t = [], [], c.app_start(pod)
    while t < c.now:
        end = t + 1 + (1 if r.random() < 0.6 else 0)
        runs.append(Run(t, end, 1, "Error"))
        backoff = min(10 * 2 ** (len(runs) - 1), 300)
        backoffs.append(backoff)
        t = end + backoff + r.randint(0, 2)
    app.runs = runs
    app.waiting = _waiting(c, pod, app.name, backoffs[-1])
    last = runs[-1]
    crash_log = _key_error_trace(last.started * NS + 480_000_000)
    logs[(pod.name, app.name, True)] = crash_log
    logs[(pod.name, app.name, False)] = crash_log  # the kubelet serves the last terminated container
    c.canary_start_events(pod)
    c.events.append(_backoff_messages(c, pod, app.name, [x.finished for x in runs], backoffs))
    c.extra_docs["configmaps.yaml"] = [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": k8s.meta("ConfigMap", "orders-api-config", ns, c.rollout_created - 30),
        "data": {"LOG_LEVEL": "INFO", "ORDERS_PAGE_SIZE": "50", "ORDERS_SYNC_INTERVAL": "60s",
                 "ORDERS_PAYMENTS_URL": f"http://payments.{ns}.svc:8080"}}]
    s_n, _ = status_counts(s_reqs)
    return Scenario(
        name="config-error-canary", namespace=ns,
        description=(
            "Python service orders-api 2.3.1 -> 2.4.0. The 2.4.0 pod template was rewritten for a new events "
            "topic and lost the DATABASE_URL entry (stable's template takes it from Secret orders-db); "
            "settings.py reads os.environ['DATABASE_URL'] at import, so every start dies within a second "
            "with `KeyError: 'DATABASE_URL'` (full Python 3.12 traceback in the previous log), exit code 1. "
            f"The canary restarted {len(runs) - 1} times and waits in CrashLoopBackOff; it was never ready, so "
            "the Rollout never finished step 0 and is Degraded (ProgressDeadlineExceeded). Stable logs are "
            f"uvicorn access lines plus app logging ({s_n} requests). Correct verdict: abort."),
        expect={"promote": False, "verdict": "abort", "facts": [
            ["DATABASE_URL"],
            ["CrashLoopBackOff", "crash loop", "crashloop", "crash-loop", "crashing", "restarting",
             "fails to start", "fails at start", "failing to start", "exits at startup", "startup", "start-up"]]},
        cluster=c.render("degraded"), logs=logs)
