"""large-logs: two busy pods (>= 200k log lines each) and one rare canary-only error signature."""

from __future__ import annotations

from . import k8s
from .apps import Timed, pct
from .base import Cluster, Scenario
from .common import NS, go_log_time, rng, stamp_ns
from .formats import BROWSER_AGENTS, INGRESS_IPS, combined_log, python_log, stamped
from .traffic import Req, arrivals

RATE = 150.0  # requests per second per pod
ROTATED_AT = 1290  # the stable pod's current log file began this many seconds before `now`
PAYMENT_TIMEOUTS = 30

CATEGORIES = ("shoes", "jackets", "bags", "hats", "socks", "shirts")
PRODUCTS = tuple(f"{adj}-{noun}" for adj in ("trail", "city", "alpine", "coastal", "urban", "classic", "summit",
                                               "harbor", "canyon", "meadow")
                 for noun in ("runner", "parka", "tote", "beanie", "crew", "oxford", "boot", "shell", "pack", "tee"))


def _shop_template(image: str) -> list[dict]:
    c = k8s.demo_container(image, name="shop-web")
    c["readinessProbe"]["httpGet"]["path"] = "/healthz"
    c["resources"] = {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    return [c]


def _size(path: str) -> int:
    return 900 + (sum(map(ord, path)) * 37) % 7000


class _Shop:
    """Renders one pod's stream: nginx access log (combined), nginx error log, the app's Python logging."""

    def __init__(self, seed: str) -> None:
        self.r = rng(seed)
        self.items: Timed = []
        self.requests = 0
        self.codes: dict[int, int] = {}
        self.order = 0

    def order_id(self) -> str:
        self.order += 1
        return "ORD-" + "".join(self.r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))

    def request(self, start: int, method: str, path: str, status: int, latency: float, client: str) -> Req:
        end = start + int(latency * NS)
        q = Req(start, end, end + self.r.randint(20_000, 400_000), status, method, path, client)
        size = _size(path) if status < 400 else 153
        referer = "https://shop.example.com/" if method == "GET" else "https://shop.example.com/cart"
        self.items.append((q.log_ns, combined_log(q, size, referer, self.r.choice(BROWSER_AGENTS))))
        self.requests += 1
        self.codes[status] = self.codes.get(status, 0) + 1
        return q

    def app(self, ns_: int, level: str, logger: str, message: str) -> None:
        line = python_log(ns_, level, logger, message)[0]
        self.items.append((stamp_ns(line), line))

    def serve(self, start: int) -> None:
        r = self.r
        x = r.random()
        client = r.choice(INGRESS_IPS)
        fast = r.lognormvariate(-4.6, 0.5)
        if x < 0.06:
            self.request(start, "GET", "/", 200, fast, client)
        elif x < 0.26:
            slug = r.choice(PRODUCTS)
            self.request(start, "GET", f"/products/{slug}", 404 if r.random() < 0.006 else 200, fast, client)
        elif x < 0.45:
            self.request(start, "GET", f"/api/products?category={r.choice(CATEGORIES)}&page={r.randint(1, 9)}",
                         200, fast * 1.6, client)
        elif x < 0.59:
            self.request(start, "GET", "/api/cart", 200, fast, client)
        elif x < 0.69:
            q = self.request(start, "POST", "/api/cart/items", 201, fast * 1.3, client)
            self.app(q.end_ns - 200_000, "INFO", "shop.cart",
                     f"item added cart=c{r.randint(100000, 999999)} sku=SKU-{r.randint(10000, 19999)} qty={r.randint(1, 3)}")
        elif x < 0.72:
            latency = r.uniform(0.25, 0.9)
            q = self.request(start, "POST", "/api/checkout", 200, latency, client)
            oid = self.order_id()
            self.app(q.end_ns - 3_000_000, "INFO", "shop.payments",
                     f"payment authorized order_id={oid} provider=stripe latency_ms={int(latency * 1000) - 40}")
            self.app(q.end_ns - 1_000_000, "INFO", "shop.checkout",
                     f"order placed order_id={oid} total={r.randint(19, 480)}.{r.choice(('00', '50', '90', '95'))} "
                     f"items={r.randint(1, 6)}")
        elif x < 0.80:
            self.request(start, "GET", "/api/recommendations?limit=8", 200, fast * 2.2, client)
        else:
            self.request(start, "GET", f"/static/{r.choice(('js/app.4f9c1e.js', 'css/app.77b2d0.css', 'img/logo.svg'))}",
                         200, fast * 0.3, client)
        if r.random() < 0.0005:  # a slow recommendation backend, in both versions
            self.app(start + 50_000_000, "WARNING", "shop.recommendations",
                     f"recommendation service slow, serving cached results age_s={r.randint(20, 90)}")
        if r.random() < 0.00005:  # the app worker recycled mid-request, in both versions
            path = "/api/cart"
            q = self.request(start, "GET", path, 502, 0.003, client)
            self.items.append((q.log_ns - 10_000, stamped(q.log_ns - 10_000,
                f"{go_log_time(q.end_ns)} [error] 31#31: *{r.randint(10_000, 9_999_999)} upstream prematurely closed "
                f"connection while reading response header from upstream, client: {client}, server: _, request: "
                f'"GET {path} HTTP/1.1", upstream: "http://127.0.0.1:8000{path}", host: "shop.example.com"')))

    def payment_timeout(self, start: int) -> None:
        client = self.r.choice(INGRESS_IPS)
        oid = self.order_id()
        q = self.request(start, "POST", "/api/checkout", 504, 30.0 + self.r.uniform(0.002, 0.02), client)
        self.app(q.end_ns - 4_000_000, "ERROR", "shop.payments",
                 f"payment gateway timeout after 30000ms order_id={oid} provider=stripe")

    def lines(self, until: int) -> list[str]:
        self.items.sort(key=lambda item: item[0])
        return [line for t, line in self.items if t <= until]


def large_logs() -> Scenario:
    ns = "demo-large"
    c = Cluster("large-logs", ns, stable_image="ghcr.io/acme/shop-web:3.7.2",
                canary_image="ghcr.io/acme/shop-web:3.8.0", old_image="ghcr.io/acme/shop-web:3.7.1",
                template=_shop_template, n_stable=1, n_canary=1, weight=50, stable_age=5 * 86400 + 3917,
                github_url="https://github.com/acme/shop-web")
    logs = {}
    stats = {}
    until = c.now * NS
    for pod in c.pods:
        canary = pod.role == "canary"
        shop = _Shop(f"{ns}/{pod.name}/shop")
        r = shop.r
        if canary:
            boot = c.app_start(pod) * NS + 200_000_000
            for i, (level, logger, message) in enumerate((
                    ("INFO", "shop", "shop-web 3.8.0 starting (gunicorn 23.0.0, 4 workers)"),
                    ("INFO", "shop.payments", "payment client: provider=stripe timeout=30000ms pool_size=32"),
                    ("INFO", "shop", "ready"))):
                shop.app(boot + i * 150_000_000, level, logger, message)
            nginx_start = boot - 150_000_000
            shop.items.append((nginx_start, stamped(nginx_start, f"{go_log_time(nginx_start)} [notice] 1#1: "
                                                                 "start worker processes")))
            start = c.app_start(pod) + 2.0
        else:
            start = c.now - ROTATED_AT
        for t in arrivals(r, start, c.now, RATE, wobble=0.08):
            shop.serve(t)
        for tick in range(int(start) + 11, c.now, 30):
            at = tick * NS + r.randint(0, 50_000_000)
            shop.app(at, "INFO", "shop.inventory",
                     f"stock sync completed skus=18234 changed={r.randint(0, 40)} duration_ms={r.randint(600, 1100)}")
        timeouts = 0
        if canary:
            # 3.8.0 halved the payment client's connection pool: under load some checkouts wait for a
            # connection until the 30 s gateway timeout and fail with 504.
            for t in sorted(r.uniform(start + 120, c.now - 40) for _ in range(PAYMENT_TIMEOUTS)):
                shop.payment_timeout(int(t * NS))
                timeouts += 1
        lines = shop.lines(until)
        logs[(pod.name, "shop-web", False)] = lines
        checkouts = sum(1 for line in lines if '"POST /api/checkout ' in line)
        stats[pod.role] = (len(lines), shop.requests, shop.codes, checkouts, timeouts)
    assert stats["stable"][0] >= 200_000 and stats["canary"][0] >= 200_000, {k: v[0] for k, v in stats.items()}
    s_lines, s_req, s_codes, s_co, _ = stats["stable"]
    c_lines, c_req, c_codes, c_co, c_to = stats["canary"]
    five = lambda codes: sum(v for k, v in codes.items() if k >= 500)
    for pod in c.canary_pods:
        c.canary_start_events(pod)
    return Scenario(
        name="large-logs", namespace=ns,
        description=(
            "Busy web shop shop-web 3.7.2 -> 3.8.0, one stable and one canary pod at 50 % (about 150 requests "
            "per second each). Each container log mixes nginx's combined access log, nginx's error log and "
            "the Python app's logging (`%(asctime)s %(levelname)s [%(name)s] %(message)s`); the node pool "
            f"keeps container logs up to 50Mi, so the files hold {s_lines} lines (stable, log rotated "
            f"{ROTATED_AT // 60} minutes ago) and {c_lines} lines (canary, since it started), gzipped. Both "
            "versions behave the same (404s on unknown products, a few 502s when a worker recycles, a "
            "WARNING when recommendations are slow) except one rare canary-only signature: "
            f"`ERROR [shop.payments] payment gateway timeout after 30000ms order_id=...`, {c_to} times, each "
            "a customer's checkout (POST /api/checkout) failing with 504 after 30 s. 3.8.0 halved the payment "
            f"client's connection pool (pool_size=32 in its start-up line; 3.7.2 used 64). Canary checkouts: {c_co}, of which {c_to} failed "
            f"({pct(c_to, c_co)}); stable checkouts: {s_co}, none failed. Overall 5xx: canary "
            f"{five(c_codes)}/{c_req}, stable {five(s_codes)}/{s_req} - tiny as a share of all traffic, but "
            "these are lost orders that only the canary causes, so the rollout must not be promoted: "
            "correct verdict abort, and the analysis must surface the payment gateway timeouts."),
        expect={"promote": False, "verdict": "abort", "facts": [
            ["payment gateway"],
            ["timeout", "timed out", "time out", "504", "30000ms", "30000 ms", "30 s", "30s", "30 seconds"]]},
        cluster=c.render("analysis"), logs=logs, gzip_logs=True)
