"""Prometheus over its HTTP API: queries for the model, metric discovery, and the canary-vs-stable
comparison that feeds the judge (`tools.judge`).

The model-facing functions (`query_prometheus`, `query_prometheus_range`, `discover_metrics`)
return JSON-serialisable dicts and never raise; failures are `tools.errors.error_result(...)`.
`compare_canary_metrics` returns a `PrometheusComparison` whose `metrics` are judge inputs; when
Prometheus or a series is missing, those inputs carry no data and say why.

Every query is evaluated at the current time. Windows are expressed relative to now (the
canary's age for the comparison), so they keep covering the data however long ago the data was
written — see docs/architecture.md.
"""

from __future__ import annotations

import math
import re
import time as _time
from datetime import datetime, timezone
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from selfheal.config import get_settings
from tools.errors import error_result, is_error
from tools.redaction import redact_data
from tools.judge import ERROR_RATIO, LATENCY, REQUEST_RATE, MetricInput

MAX_POINTS_PER_SERIES = 11_000  # Prometheus refuses range queries with more points per series.
DEFAULT_MAX_WINDOW_SECONDS = 6 * 3600
NARROW_SERIES_HINT = (
    'Narrow the query: add label matchers (e.g. {namespace="<ns>", pod=~"<pod-a>|<pod-b>"}), '
    "aggregate with sum by (pod) (...) or sum by (code) (...), or keep the largest with topk(10, ...)."
)

# --------------------------------------------------------------------------------------------
# HTTP plumbing


def _safe_url(url: str) -> str:
    """The URL without user:password@, for messages."""
    return re.sub(r"(?<=://)[^/@\s]+@", "", url)


def _resolve_url(prometheus_url: str | None) -> str | dict:
    url = prometheus_url or get_settings().prometheus_url
    if not url:
        return error_result(
            "not_configured",
            "No Prometheus is configured.",
            hint="Set PROMETHEUS_URL (or SELFHEAL_PROMETHEUS_URL) to the server's base URL, e.g. "
            "http://prometheus-operated.monitoring:9090; meanwhile judge from logs and pod status.",
        )
    return url.rstrip("/")


def _query_target(query: str, prometheus_url: str | None) -> str | dict:
    """The base URL to send `query` to, or an error result (empty query, no Prometheus)."""
    if not query or not query.strip():
        return error_result("invalid_argument", "The query is empty.", hint="Pass a PromQL expression.")
    return _resolve_url(prometheus_url)


def _get(base_url: str, path: str, params: dict[str, Any] | list[tuple[str, Any]]) -> dict:
    """GET a Prometheus API path; {"data": ..., "warnings": [...]} or an error result."""
    timeout = get_settings().prometheus_timeout_seconds
    params = list(params.items()) if isinstance(params, dict) else list(params)
    params.append(("timeout", f"{timeout:g}s"))  # the server stops evaluating when we stop waiting
    where = _safe_url(base_url)
    try:
        response = httpx.get(base_url + path, params=params, timeout=timeout)
    except httpx.TimeoutException:
        return error_result(
            "timeout",
            f"Prometheus at {where} did not answer within {timeout:g} s.",
            hint="Make the query cheaper: add label matchers, shorten the range or raise the step.",
        )
    except (httpx.TransportError, httpx.InvalidURL, ValueError) as exc:
        return error_result(
            "unreachable",
            f"Cannot reach Prometheus at {where}: {exc}",
            hint="Check PROMETHEUS_URL and that Prometheus is running; meanwhile judge from logs and pod status.",
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        kind = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(response.status_code, "upstream_error")
        return error_result(
            kind,
            f"{where}{path} answered HTTP {response.status_code} without a Prometheus API response.",
            hint="Check that PROMETHEUS_URL points at the Prometheus server (including any path prefix).",
        )
    if body["status"] == "success":
        return {"data": body.get("data"), "warnings": body.get("warnings") or []}
    error_type, message = body.get("errorType", ""), body.get("error", "unknown error")
    if error_type in ("bad_data", "execution"):
        return error_result(
            "invalid_argument",
            f"Prometheus rejected the query: {message}",
            hint="Fix the PromQL; label values go in double quotes, regex matchers use =~, "
            "range selectors need a duration like [5m].",
        )
    if error_type == "timeout":
        return error_result(
            "timeout",
            f"Prometheus gave up evaluating the query: {message}",
            hint="Make the query cheaper: add label matchers, shorten the range or raise the step.",
        )
    return error_result("upstream_error", f"Prometheus answered {error_type or 'an error'}: {message}")


# --------------------------------------------------------------------------------------------
# time arguments

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(value: str | float | int) -> float:
    """Seconds from `90`, `"90"`, `"90s"`, `"5m"`, `"1h30m"`; ValueError otherwise."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(number + unit for number, unit in parts) != text:
                raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h30m)") from None
            seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive: {value!r}")
    return seconds


def parse_time(value: str | float | int | None, now: float) -> float:
    """Unix seconds from None/`"now"`, `"now-30m"`/`"-30m"`, a Unix timestamp or RFC3339."""
    if value is None:
        return now
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip().replace(" ", "")
    if text in ("", "now"):
        return now
    relative = re.fullmatch(r"(?:now)?-(.+)", text)
    if relative:
        return now - parse_duration(relative.group(1))
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {value!r} (use now, now-30m, a Unix timestamp or RFC3339 like 2026-01-01T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# result shaping


def _number(value: str) -> float | str:
    """A sample value as a float, or Prometheus' own spelling for NaN and infinities."""
    number = float(value)
    return number if math.isfinite(number) else value


def _sample_value(item: dict) -> float | str | None:
    if "value" in item:
        return _number(item["value"][1])
    return None


def _series_summary(points: list[list]) -> dict | None:
    finite = [point[1] for point in points if isinstance(point[1], float)]
    if not finite:
        return None
    return {
        "min": min(finite),
        "max": max(finite),
        "mean": sum(finite) / len(finite),
        "last": points[-1][1],
        "points": len(points),
    }


def _shape(data: dict, max_series: int, max_points: int, range_seconds: float | None) -> dict:
    """Compact result for the model, capped at `max_series` series and `max_points` points."""
    result_type = data.get("resultType", "")
    result = data.get("result")
    if result_type in ("scalar", "string"):
        value = result[1] if isinstance(result, list) else None
        return {"result_type": result_type, "value": _number(value) if result_type == "scalar" else value}
    items = result or []
    shaped: dict[str, Any] = {"result_type": result_type, "series_count": len(items), "truncated": False}
    messages: list[str] = []
    if len(items) > max_series:
        shaped["truncated"] = True
        messages.append(f"Showing {max_series} of {len(items)} series (limit {max_series}). {NARROW_SERIES_HINT}")
        items = items[:max_series]
    series: list[dict] = []
    if result_type == "vector":
        for item in items:
            entry: dict[str, Any] = {"labels": item.get("metric", {}), "value": _sample_value(item)}
            if "histogram" in item:
                entry["histogram"] = item["histogram"]
            series.append(entry)
    else:
        per_series = max(1, max_points // max(1, len(items)))
        cut = 0
        for item in items:
            points = [[float(ts), _number(v)] for ts, v in item.get("values", [])]
            if len(points) > per_series:
                cut = max(cut, len(points))
                points = points[-per_series:]
            series.append({"labels": item.get("metric", {}), "points": points, "summary": _series_summary(points)})
        if cut:
            shaped["truncated"] = True
            fit = f" (step={math.ceil(range_seconds / per_series)}s fits)" if range_seconds else ""
            messages.append(
                f"Showing the last {per_series} of up to {cut} points per series "
                f"(limit {max_points} points in all). Raise the step{fit}, shorten the range, "
                "or aggregate with sum by (...) to get fewer series."
            )
    shaped["series"] = series
    if messages:
        shaped["message"] = " ".join(messages)
    return shaped


def query_prometheus(query: str, time: str | None = None, prometheus_url: str | None = None) -> dict:
    """Run one PromQL instant query: the value of each matching series at one moment.

    Use it for current values and totals over a window, e.g.
    `sum by (pod, code) (increase(http_requests_total{namespace="shop"}[20m]))`.
    Always add label matchers (namespace, pod) — the number of series returned is capped.

    Args:
        query: PromQL expression.
        time: evaluation time; default now. `now`, `now-10m`, a Unix timestamp or RFC3339.
        prometheus_url: leave unset to use the configured Prometheus.

    Returns:
        {"query", "time", "result_type": "vector"|"matrix"|"scalar"|"string", "series_count",
        "series": [{"labels": {...}, "value": float}] (or "points" for a matrix), "truncated",
        "message" when the result was cut (it says how to narrow the query), "warnings"},
        or {"error": {"kind", "message", "hint"}} (not_configured, unreachable, timeout,
        invalid_argument with Prometheus' own parse error).
    """
    base = _query_target(query, prometheus_url)
    if isinstance(base, dict):
        return base
    now = _time.time()
    try:
        at = parse_time(time, now)
    except ValueError as exc:
        return error_result("invalid_argument", str(exc))
    answer = _get(base, "/api/v1/query", {"query": query, "time": f"{at:.3f}"})
    if is_error(answer):
        return answer
    settings = get_settings()
    shaped = _shape(answer["data"] or {}, settings.prometheus_max_series, settings.prometheus_max_points, None)
    return redact_data({"query": query, "time": _iso(at), **shaped, "warnings": answer["warnings"]})


def query_prometheus_range(
    query: str,
    start: str = "now-30m",
    end: str = "now",
    step: str = "60s",
    prometheus_url: str | None = None,
) -> dict:
    """Run one PromQL range query: each matching series as points over time.

    Use it to see how a value evolved, e.g. the canary's p95 latency over its lifetime:
    `histogram_quantile(0.95, sum by (le) (rate(
        http_request_duration_seconds_bucket{namespace="shop",pod=~"web-canary-.*"}[1m])))`.
    Series and points are capped; prefer aggregated queries and a step of 30s-5m.

    Args:
        query: PromQL expression (an instant-vector expression; Prometheus evaluates it at each step).
        start: range start; `now-30m` (default), `-2h`, a Unix timestamp or RFC3339.
        end: range end; `now` (default) or the same formats.
        step: resolution, e.g. `30s`, `1m`, `5m` (or seconds as a number).
        prometheus_url: leave unset to use the configured Prometheus.

    Returns:
        {"query", "start", "end", "step_seconds", "result_type": "matrix", "series_count",
        "series": [{"labels": {...}, "points": [[unix_seconds, value], ...],
        "summary": {"min", "max", "mean", "last", "points"}}], "truncated", "message" when the
        result was cut (it says how to narrow the query), "warnings"}, or {"error": {...}}.
    """
    base = _query_target(query, prometheus_url)
    if isinstance(base, dict):
        return base
    now = _time.time()
    try:
        start_s, end_s, step_s = parse_time(start, now), parse_time(end, now), parse_duration(step)
    except ValueError as exc:
        return error_result("invalid_argument", str(exc))
    if end_s < start_s:
        return error_result("invalid_argument", f"end ({_iso(end_s)}) is before start ({_iso(start_s)}).")
    points = (end_s - start_s) / step_s + 1
    if points > MAX_POINTS_PER_SERIES:
        needed = math.ceil((end_s - start_s) / (MAX_POINTS_PER_SERIES - 1))
        return error_result(
            "invalid_argument",
            f"{points:.0f} points per series is more than Prometheus allows ({MAX_POINTS_PER_SERIES}).",
            hint=f"Raise the step to at least {needed}s or shorten the range.",
        )
    answer = _get(
        base,
        "/api/v1/query_range",
        {"query": query, "start": f"{start_s:.3f}", "end": f"{end_s:.3f}", "step": f"{step_s:g}"},
    )
    if is_error(answer):
        return answer
    settings = get_settings()
    shaped = _shape(
        answer["data"] or {}, settings.prometheus_max_series, settings.prometheus_max_points, end_s - start_s
    )
    return redact_data(
        {
            "query": query,
            "start": _iso(start_s),
            "end": _iso(end_s),
            "step_seconds": step_s,
            **shaped,
            "warnings": answer["warnings"],
        }
    )


# --------------------------------------------------------------------------------------------
# discovery


def _label_value(value: str) -> str:
    """A PromQL double-quoted string body."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def pod_regex(pods: list[str]) -> str:
    """An RE2 alternation matching exactly these pod names, escaped for a double-quoted PromQL string."""
    escaped = [re.sub(r"([.\\+*?()|\[\]{}^$])", r"\\\1", pod) for pod in sorted(set(pods))]
    return _label_value("|".join(escaped))


def _kind_of(name: str, labels: set[str]) -> str:
    if name.endswith("_bucket") and "le" in labels:
        return "histogram"
    if "quantile" in labels:
        return "summary"
    if name.endswith(("_sum", "_count")):
        return "histogram/summary part"
    if name.endswith("_total"):
        return "counter"
    return "gauge or untyped"


def discover_metrics(
    namespace: str,
    pods: list[str],
    lookback_seconds: int = 3600,
    prometheus_url: str | None = None,
    max_metrics: int = 200,
) -> dict:
    """List which metrics Prometheus has for some pods (matched by the `namespace` and `pod` labels).

    Use it before writing queries: it tells you the metric names, their kind (counter,
    histogram, summary, gauge) and extra labels such as `code` or `le`, and which pods have no
    series at all (not scraped, or not started).

    Args:
        namespace: Kubernetes namespace of the pods.
        pods: pod names (e.g. the canary's and stable's pods); empty means every pod in the namespace.
        lookback_seconds: how far back to look for series (default 1 hour, ending now).
        prometheus_url: leave unset to use the configured Prometheus.
        max_metrics: at most this many metric names are listed.

    Returns:
        {"namespace", "pods", "lookback_seconds", "metric_count", "metrics": [{"name", "kind",
        "series", "pods": [...], "labels": [...]}], "pods_without_series": [...], "truncated",
        "message"?}, or {"error": {...}}.
    """
    if not namespace:
        return error_result("invalid_argument", "namespace is required.")
    base = _resolve_url(prometheus_url)
    if isinstance(base, dict):
        return base
    now = _time.time()
    lookback = max(60, int(lookback_seconds))
    matcher = f'{{namespace="{_label_value(namespace)}"' + (f',pod=~"{pod_regex(pods)}"}}' if pods else "}")
    answer = _get(
        base,
        "/api/v1/series",
        [("match[]", matcher), ("start", f"{now - lookback:.3f}"), ("end", f"{now:.3f}")],
    )
    if is_error(answer):
        return answer
    by_name: dict[str, dict[str, Any]] = {}
    seen_pods: set[str] = set()
    for labels in answer["data"] or []:
        name = labels.get("__name__", "")
        entry = by_name.setdefault(name, {"series": 0, "pods": set(), "labels": set()})
        entry["series"] += 1
        if labels.get("pod"):
            entry["pods"].add(labels["pod"])
            seen_pods.add(labels["pod"])
        entry["labels"].update(key for key in labels if key not in ("__name__", "namespace", "pod"))
    names = sorted(by_name)
    metrics = [
        {
            "name": name,
            "kind": _kind_of(name, by_name[name]["labels"]),
            "series": by_name[name]["series"],
            "pods": sorted(by_name[name]["pods"]),
            "labels": sorted(by_name[name]["labels"]),
        }
        for name in names[:max_metrics]
    ]
    result: dict[str, Any] = {
        "namespace": namespace,
        "pods": list(pods),
        "lookback_seconds": lookback,
        "metric_count": len(names),
        "metrics": metrics,
        "pods_without_series": [pod for pod in pods if pod not in seen_pods],
        "truncated": len(names) > max_metrics,
    }
    if result["truncated"]:
        result["message"] = f"Listed {max_metrics} of {len(names)} metric names; pass fewer pods to narrow it."
    if not names:
        result["message"] = (
            f"No series with namespace={namespace!r}" + (" for these pods" if pods else "") + f" in the last "
            f"{lookback} s. Check the label names (kube-prometheus uses namespace and pod) "
            "and that the pods are scraped."
        )
    return redact_data(result)


# --------------------------------------------------------------------------------------------
# canary vs stable


class QueryTemplates(BaseModel):
    """PromQL templates of the canary comparison, one role at a time.

    Placeholders (replaced literally, so PromQL's own braces need no escaping):
    `{namespace}` the namespace, `{pods}` an anchored regex alternation of the role's pod names,
    `{window}` the comparison window (e.g. `1200s`), `{rate_window}` the rate window of the
    latency series (e.g. `60s`), `{quantile}` one of `quantiles` (e.g. `0.95`).

    The defaults fit kube-prometheus-style labels `namespace`, `pod` and `code` on the
    conventional families `http_requests_total` (counter) and `http_request_duration_seconds`
    (a histogram with `_bucket{le}`, or a summary with `{quantile}`, plus `_sum`/`_count`):
    - `requests`/`errors`: requests and 5xx responses over the window (instant, `increase`),
      so the judge can run a proportion test on counts;
    - `request_rate`: requests per second per pod (range), informational;
    - `latency_histogram`: `histogram_quantile` over the role's buckets (range), tried first;
    - `latency_summary`: the pods' summary quantiles averaged per role (range; quantiles cannot
      be aggregated exactly, so this is an approximation), tried when no buckets exist;
    - `latency_mean`: `_sum`/`_count`, the mean latency (range), tried last.
    A template may return several series (e.g. one per pod): instant values are summed, the
    points of range series are pooled into one sample list per role.
    Latency series are sampled every `max(rate_window_seconds, window / target_points)` seconds,
    so consecutive rate windows do not overlap (Mann-Whitney assumes independent values).
    """

    requests: str = 'sum(increase(http_requests_total{namespace="{namespace}",pod=~"{pods}"}[{window}]))'
    errors: str = 'sum(increase(http_requests_total{namespace="{namespace}",pod=~"{pods}",code=~"5.."}[{window}]))'
    request_rate: str = (
        'sum(rate(http_requests_total{namespace="{namespace}",pod=~"{pods}"}[{rate_window}]))'
        ' / count(count by (pod) (rate(http_requests_total{namespace="{namespace}",pod=~"{pods}"}[{rate_window}])))'
    )
    latency_histogram: str = (
        "histogram_quantile({quantile}, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{namespace="{namespace}",pod=~"{pods}"}[{rate_window}])))'
    )
    latency_summary: str = (
        'avg(http_request_duration_seconds{namespace="{namespace}",pod=~"{pods}",quantile="{quantile}"})'
    )
    latency_mean: str = (
        'sum(rate(http_request_duration_seconds_sum{namespace="{namespace}",pod=~"{pods}"}[{rate_window}]))'
        ' / sum(rate(http_request_duration_seconds_count{namespace="{namespace}",pod=~"{pods}"}[{rate_window}]))'
    )
    quantiles: list[float] = Field(default_factory=lambda: [0.5, 0.95, 0.99])
    latency_unit: str = "s"
    rate_window_seconds: int = Field(default=60, ge=1)
    target_points: int = Field(default=30, ge=2)

    def render(self, template: str, namespace: str, pods: list[str], window_seconds: int, quantile: float = 0.5) -> str:
        values = {
            "{namespace}": _label_value(namespace),
            "{pods}": pod_regex(pods),
            "{window}": f"{window_seconds}s",
            "{rate_window}": f"{self.rate_window_seconds}s",
            "{quantile}": f"{quantile:g}",
        }
        return re.sub("|".join(re.escape(key) for key in values), lambda m: values[m.group(0)], template)


LatencySource = Literal["histogram", "summary", "mean", "none"]


class PrometheusComparison(BaseModel):
    """Canary against stable from Prometheus. `metrics` are judge inputs (`tools.judge.MetricInput`):
    `error_ratio` (5xx/all counts over the window), `request_rate` (per pod, informational) and
    latency (`latency_p50`/`latency_p95`/`latency_p99` series, or `latency_mean`). Inputs without
    data carry a `note` that says why; `notes` repeats the findings for a person."""

    namespace: str
    stable_pods: list[str]
    canary_pods: list[str]
    window_seconds: int
    step_seconds: int
    evaluated_at: str
    available: bool
    latency_source: LatencySource = "none"
    metrics: list[MetricInput] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    queries: list[str] = Field(default_factory=list)
    error: dict | None = None


class _Roles:
    """Runs one template for both roles and remembers the queries."""

    def __init__(self, base: str, namespace: str, pods: dict[str, list[str]], templates: QueryTemplates, window: int):
        self.base, self.namespace, self.pods, self.templates, self.window = base, namespace, pods, templates, window
        self.queries: list[str] = []
        self.error: dict | None = None

    def _run(self, template: str, role: str, quantile: float, params: dict[str, str], path: str) -> dict | None:
        query = self.templates.render(template, self.namespace, self.pods[role], self.window, quantile)
        self.queries.append(query)
        answer = _get(self.base, path, {"query": query, **params})
        if is_error(answer):
            self.error = self.error or answer
            return None
        return answer["data"] or {}

    def instant(self, template: str, at: float) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        for role in ("stable", "canary"):
            data = self._run(template, role, 0.5, {"time": f"{at:.3f}"}, "/api/v1/query")
            numbers = [float(item["value"][1]) for item in (data or {}).get("result") or []]
            finite = [number for number in numbers if math.isfinite(number)]
            values[role] = sum(finite) if finite else None
        return values

    def series(self, template: str, start: float, end: float, step: int, quantile: float = 0.5) -> dict[str, list]:
        values: dict[str, list] = {}
        params = {"start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
        for role in ("stable", "canary"):
            data = self._run(template, role, quantile, params, "/api/v1/query_range")
            result = (data or {}).get("result") or []
            values[role] = [float(v) for item in result for _, v in item.get("values", [])]
        return values


def _missing(roles: dict[str, Any], what: str, pods: dict[str, list[str]], window: int) -> str | None:
    absent = [role for role in ("stable", "canary") if not roles[role]]
    if not absent:
        return None
    return "; ".join(
        f"no {what} for the {role} pods ({', '.join(pods[role])}) in the last {window} s" for role in absent
    )


def _nodata_inputs(note: str, unit: str) -> list[MetricInput]:
    return [
        MetricInput(name=ERROR_RATIO, source="prometheus", kind="proportion", note=note),
        MetricInput(name=REQUEST_RATE, source="prometheus", kind="samples", unit="req/s", note=note),
        MetricInput(name=LATENCY, source="prometheus", kind="samples", unit=unit, note=note),
    ]


def compare_canary_metrics(
    namespace: str,
    stable_pods: list[str],
    canary_pods: list[str],
    window_seconds: int,
    templates: QueryTemplates | None = None,
    prometheus_url: str | None = None,
    max_window_seconds: int = DEFAULT_MAX_WINDOW_SECONDS,
) -> PrometheusComparison:
    """Compare the canary pods with the stable pods in Prometheus and return judge inputs.

    `window_seconds` is the canary's age (the caller computes it); it is capped to
    `max_window_seconds` (default 6 h) and raised to at least the rate window. Everything is
    evaluated at the current time: counts over `[window]` ending now, latency series from
    `now - window` to now. Never raises: a missing Prometheus, a failing query or a missing
    series gives inputs without data and a note.
    """
    templates = templates or QueryTemplates()
    now = _time.time()
    window = int(min(max(int(window_seconds), templates.rate_window_seconds), max_window_seconds))
    step = max(templates.rate_window_seconds, math.ceil(window / templates.target_points))
    comparison = PrometheusComparison(
        namespace=namespace,
        stable_pods=list(stable_pods),
        canary_pods=list(canary_pods),
        window_seconds=window,
        step_seconds=step,
        evaluated_at=_iso(now),
        available=False,
    )
    if window != int(window_seconds):
        comparison.notes.append(f"window {int(window_seconds)} s adjusted to {window} s")
    base = _resolve_url(prometheus_url)
    if isinstance(base, dict):
        comparison.error = base["error"]
        comparison.notes.append(base["error"]["message"])
        comparison.metrics = _nodata_inputs(base["error"]["message"], templates.latency_unit)
        return comparison
    without = [role for role, pods in (("stable", stable_pods), ("canary", canary_pods)) if not pods]
    if without:
        note = f"no {' and no '.join(without)} pods to compare"
        comparison.notes.append(note)
        comparison.metrics = _nodata_inputs(note, templates.latency_unit)
        comparison.available = True
        return comparison

    pods = {"stable": list(stable_pods), "canary": list(canary_pods)}
    roles = _Roles(base, namespace, pods, templates, window)
    requests = roles.instant(templates.requests, now)
    if roles.error and roles.error["error"]["kind"] in ("unreachable", "timeout", "not_configured"):
        comparison.error = roles.error["error"]
        comparison.notes.append(roles.error["error"]["message"])
        comparison.metrics = _nodata_inputs(roles.error["error"]["message"], templates.latency_unit)
        comparison.queries = roles.queries
        return comparison
    comparison.available = True
    errors = roles.instant(templates.errors, now)
    comparison.metrics.append(_error_ratio_input(requests, errors, pods, window, comparison.notes))

    start = now - window + templates.rate_window_seconds
    rate = roles.series(templates.request_rate, min(start, now), now, step)
    note = _missing(rate, "request rate", pods, window)
    comparison.metrics.append(
        MetricInput.from_samples(
            REQUEST_RATE, "prometheus", rate["stable"], rate["canary"], unit="req/s", direction="either", note=note
        )
    )
    comparison.metrics.extend(_latency_inputs(roles, templates, comparison, min(start, now), now, step))
    comparison.queries = roles.queries
    if roles.error:
        comparison.error = roles.error["error"]
        comparison.notes.append(f"a query failed: {roles.error['error']['message']}")
    return comparison


def _error_ratio_input(
    requests: dict[str, float | None],
    errors: dict[str, float | None],
    pods: dict[str, list[str]],
    window: int,
    notes: list[str],
) -> MetricInput:
    note = _missing(requests, "http requests", pods, window)
    counts: dict[str, tuple[int, int] | None] = {}
    for role in ("stable", "canary"):
        total = requests[role]
        if total is None:
            counts[role] = None
            continue
        total_count = max(0, round(total))
        counts[role] = (min(total_count, max(0, round(errors[role] or 0.0))), total_count)
    if note:
        notes.append(note)
    return MetricInput.from_counts(ERROR_RATIO, "prometheus", counts["stable"], counts["canary"], note=note)


def _latency_inputs(
    roles: _Roles, templates: QueryTemplates, comparison: PrometheusComparison, start: float, end: float, step: int
) -> list[MetricInput]:
    unit = templates.latency_unit
    flavours: list[tuple[LatencySource, str, list[float]]] = [
        ("histogram", templates.latency_histogram, templates.quantiles),
        ("summary", templates.latency_summary, templates.quantiles),
    ]
    for source, template, quantiles in flavours:
        if not quantiles:
            continue
        first = roles.series(template, start, end, step, quantiles[0])
        if not first["stable"] and not first["canary"]:
            continue
        comparison.latency_source = source
        inputs = []
        for quantile in quantiles:
            values = first if quantile == quantiles[0] else roles.series(template, start, end, step, quantile)
            note = _missing(values, f"latency {source} series", roles.pods, roles.window)
            if note and note not in comparison.notes:
                comparison.notes.append(note)
            name = f"{LATENCY}_p{quantile * 100:g}".replace(".", "_")
            inputs.append(
                MetricInput.from_samples(
                    name, "prometheus", values["stable"], values["canary"], unit=unit, note=note
                )
            )
        return inputs
    mean = roles.series(templates.latency_mean, start, end, step)
    if mean["stable"] or mean["canary"]:
        comparison.latency_source = "mean"
        note = _missing(mean, "latency _sum/_count series", roles.pods, roles.window)
        if note:
            comparison.notes.append(note)
        name = f"{LATENCY}_mean"
        return [MetricInput.from_samples(name, "prometheus", mean["stable"], mean["canary"], unit=unit, note=note)]
    # Neither role exposes latency: the family does not exist here, which is not missing canary
    # data, so no input is made (it would count as `nodata` in the judge).
    comparison.notes.append(
        f"no latency histogram, summary or _sum/_count series for either role in the last {roles.window} s; "
        "latency is not compared from Prometheus"
    )
    return []
