"""A small OpenMetrics text writer: families grouped, series after series, timestamps in seconds."""

from __future__ import annotations

from .traffic import BUCKETS, PodSeries


def _value(v: float | int) -> str:
    if isinstance(v, int):
        return str(v)
    text = f"{v:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _labels(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"


def _le(bound: float) -> str:
    return f"{bound:.2f}".rstrip("0").rstrip(".") if bound % 1 else f"{bound:.1f}"


class OpenMetrics:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, type_: str, help_: str) -> None:
        self.lines.append(f"# TYPE {name} {type_}")
        self.lines.append(f"# HELP {name} {help_}")

    def sample(self, name: str, labels: list[tuple[str, str]], value: float | int, ts: int) -> None:
        self.lines.append(f"{name}{_labels(labels)} {_value(value)} {ts}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n# EOF\n"


def http_metrics(namespace: str, pods: dict[str, PodSeries]) -> str:
    """`http_requests_total{namespace,pod,code}` and `http_request_duration_seconds` for the pods."""
    om = OpenMetrics()
    om.family("http_requests", "counter", "Total number of HTTP requests served, by status code.")
    for pod, series in pods.items():
        for code, samples in series.codes.items():
            labels = [("namespace", namespace), ("pod", pod), ("code", code)]
            for ts, value in samples:
                om.sample("http_requests_total", labels, value, ts)
    om.family("http_request_duration_seconds", "histogram", "Time spent serving HTTP requests.")
    bounds = [_le(b) for b in BUCKETS] + ["+Inf"]
    for pod, series in pods.items():
        base = [("namespace", namespace), ("pod", pod)]
        for ts, cumulative, total, count in series.histogram:
            for le, value in zip(bounds, cumulative):
                om.sample("http_request_duration_seconds_bucket", base + [("le", le)], value, ts)
            om.sample("http_request_duration_seconds_sum", base, round(total, 6), ts)
            om.sample("http_request_duration_seconds_count", base, count, ts)
    return om.text()
