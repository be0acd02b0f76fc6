"""Log line formats, each as the real program prints it, behind `kubectl logs --timestamps` prefixes.

Every line returned here starts with the container runtime's RFC3339Nano timestamp and a space.
Multi-line records (stack traces, PEM blocks) get one prefixed line per line, as the CRI log does.
"""

from __future__ import annotations

import random

from .common import (NS, clf_time, go_log_time, python_log_time, request_id, rfc3339_micros,
                     rfc3339_millis, rfc3339nano)
from .traffic import Req

BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
)
# ingress-nginx controller pods: every request reaches the app from one of them.
INGRESS_IPS = ("10.244.0.17", "10.244.1.23", "10.244.2.9")


def stamped(ns: int, text: str) -> str:
    return f"{rfc3339nano(ns)} {text}"


def block(ns: int, text: str) -> list[str]:
    """A multi-line write: one runtime-stamped line per line, microseconds apart."""
    return [stamped(ns + i * 1_000, part) for i, part in enumerate(text.split("\n"))]


def go_log(ns: int, message: str) -> list[str]:
    """Go's `log.Printf` (LstdFlags): `2026/01/01 11:40:00 message`; continuation lines unprefixed."""
    return block(ns + 40_000, f"{go_log_time(ns)} {message}")


def demo_request(q: Req, color: str, delay: str = "") -> str:
    """argoproj/rollouts-demo's per-request line: `log.Printf("%d - %s%s\\n", status, color, delayStr)`."""
    return stamped(q.log_ns, f"{go_log_time(q.end_ns)} {q.status} - {color}{delay}")


def combined_log(q: Req, size: int, referer: str, agent: str) -> str:
    """NCSA combined log format (nginx `combined`, gorilla/handlers CombinedLoggingHandler)."""
    return stamped(q.log_ns, f'{q.client} - - [{clf_time(q.end_ns)}] "{q.method} {q.path} HTTP/1.1" '
                             f'{q.status} {size} "{referer}" "{agent}"')


def python_log(ns: int, level: str, logger: str, message: str) -> list[str]:
    """Python logging with format `%(asctime)s %(levelname)s [%(name)s] %(message)s`."""
    return block(ns + 30_000, f"{python_log_time(ns)} {level} [{logger}] {message}")


# ------------------------------------------------------------------------------------ istio sidecar

def envoy_access(q: Req, r: random.Random, namespace: str, pod_ip: str, agent: str,
                 bytes_in: int, bytes_out: int) -> tuple[int, str]:
    """Istio's default Envoy text access log for an inbound request; returns (flush time, line)."""
    duration = max(0, (q.end_ns - q.start_ns) // 1_000_000)
    upstream = max(0, duration - r.randint(0, 1))
    local_port = r.randint(32768, 60999)
    line = (f'[{rfc3339_millis(q.start_ns)}] "{q.method} {q.path} HTTP/1.1" {q.status} - via_upstream - "-" '
            f'{bytes_in} {bytes_out} {duration} {upstream} "{q.client}" "{agent}" "{request_id(r)}" '
            f'"canary-demo.{namespace}.svc.cluster.local" "{pod_ip}:8080" inbound|8080|| '
            f'127.0.0.6:{local_port} {pod_ip}:8080 {q.client}:0 '
            f'outbound_.80_._.canary-demo.{namespace}.svc.cluster.local default')
    # Envoy flushes its access log file every second.
    return q.end_ns + r.randint(50_000_000, 999_000_000), line


def istio_startup(start_ns: int, pod: str, namespace: str, ip: str, r: random.Random) -> list[tuple[int, str]]:
    """pilot-agent's start-up lines (tab-separated: time, level, scope, message)."""
    steps = [
        ("info", "", 'FLAG: --concurrency="2"'),
        ("info", "", 'FLAG: --domain="' + namespace + '.svc.cluster.local"'),
        ("info", "", 'FLAG: --log_output_level="default:info"'),
        ("info", "", 'FLAG: --proxyComponentLogLevel="misc:error"'),
        ("info", "", 'FLAG: --proxyLogLevel="warning"'),
        ("info", "", "Version 1.24.2-0d2ef3c9a5f7a3c3c2a1f0e6bb4ee3d0fe2f3a71-Clean"),
        ("info", "", f"Proxy role\tips=[{ip}] type=sidecar id={pod}.{namespace} domain={namespace}.svc.cluster.local"),
        ("info", "", 'Apply proxy config from env {"holdApplicationUntilProxyStarts":true}'),
        ("info", "", "cpu limit detected as 2, setting concurrency"),
        ("info", "", "Opening status port 15020"),
        ("info", "xdsproxy", 'Initializing with upstream address "istiod.istio-system.svc:15012" and cluster "Kubernetes"'),
        ("info", "sds", "Starting SDS grpc server"),
        ("info", "", "Starting proxy agent"),
        ("info", "", "starting"),
        ("info", "", "Envoy command: [-c etc/istio/proxy/envoy-rev.json --drain-time-s 45 --drain-strategy immediate "
                     "--local-address-ip-version v4 --file-flush-interval 1000ms --disable-hot-restart "
                     "--allow-unknown-static-fields -l warning --component-log-level misc:error --concurrency 2]"),
        ("info", "cache", f"generated new workload certificate\tresourceName=default latency={r.randint(60, 140)}.{r.randint(100, 999)}ms ttl=23h59m59.{r.randint(100000000, 999999999)}s"),
        ("info", "cache", "Root cert has changed, start rotating root cert"),
        ("info", "cache", "returned workload trust anchor from cache\tttl=23h59m59.4s"),
        ("info", "xdsproxy", "connected to delta upstream XDS server: istiod.istio-system.svc:15012\tid=1"),
        ("info", "ads", "ADS: new connection for node:1"),
        ("info", "ads", "ADS: new connection for node:2"),
        ("info", "", f"Readiness succeeded in {r.randint(700, 1400)}.{r.randint(100000, 999999)}ms"),
        ("info", "", "Envoy proxy is ready"),
    ]
    out = []
    t = start_ns
    for level, scope, message in steps:
        t += r.randint(200_000, 90_000_000)
        out.append((t + 20_000, f"{rfc3339_micros(t)}\t{level}\t{scope + chr(9) if scope else ''}{message}"))
    return out


def istio_reconnects(since_ns: int, until_ns: int, r: random.Random, first_id: int = 2) -> list[tuple[int, str]]:
    """istiod closes XDS streams every ~30 minutes; the sidecar reconnects and says so."""
    out = []
    t, n = since_ns, first_id
    while True:
        t += int((1800 + r.uniform(-180, 180)) * NS)
        if t >= until_ns:
            return out
        out.append((t + 25_000, f"{rfc3339_micros(t)}\tinfo\txdsproxy\tconnected to delta upstream XDS server: "
                                f"istiod.istio-system.svc:15012\tid={n}"))
        n += 1


def istio_log(start_ns: int, until_ns: int, pod: str, namespace: str, ip: str, access: list[tuple[int, str]],
              r: random.Random) -> list[str]:
    """The whole istio-proxy container log: start-up, XDS reconnects and the access-log lines."""
    timed = istio_startup(start_ns, pod, namespace, ip, r) + istio_reconnects(start_ns, until_ns, r) + access
    timed.sort(key=lambda item: item[0])
    return [stamped(ns, text) for ns, text in timed if ns <= until_ns]


# --------------------------------------------------------------------------------------------- misc

def client_of(r: random.Random) -> str:
    return r.choice(INGRESS_IPS)


def millis(ns: int) -> str:
    return rfc3339_millis(ns)


__all__ = ["BROWSER_AGENTS", "INGRESS_IPS", "block", "client_of", "combined_log", "demo_request",
           "envoy_access", "go_log", "istio_log", "millis", "python_log", "request_id", "stamped"]
