"""OpenMetrics files of a scenario: checked at load, time-shifted for backfill.

promtool needs sample timestamps in seconds and a final `# EOF`; a file in milliseconds is
accepted silently by promtool and lands in the year 58872, so it is refused here instead.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

# Metric name and optional label set; label values may hold any character, quotes escaped.
_SERIES = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?')
# Seconds since 1970 stay below this until the year 5138; milliseconds are far above it.
_MAX_SECONDS = 1e11


class MetricsError(ValueError):
    """A metrics file problem; the message names the file and line."""


class MetricsFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: Path
    text: str
    samples: int
    first_timestamp: float
    last_timestamp: float


def _split(line: str) -> tuple[str, list[str], str] | None:
    """(series, [value, timestamp...], exemplar) of a sample line; None if it is not one."""
    match = _SERIES.match(line)
    if not match:
        return None
    rest = line[match.end():]
    exemplar = ""
    mark = rest.find(" # ")
    if mark != -1:
        rest, exemplar = rest[:mark], rest[mark:]
    return line[:match.end()], rest.split(), exemplar


def read_metrics(path: Path) -> MetricsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetricsError(f"{path}: cannot read: {exc}") from None
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or lines[-1].strip() != "# EOF":
        raise MetricsError(f"{path}: the file must end with '# EOF' (promtool refuses it otherwise)")
    samples, first, last = 0, float("inf"), float("-inf")
    for number, line in enumerate(lines[:-1], start=1):
        if not line or line.startswith("#"):
            if line.strip() == "# EOF":
                raise MetricsError(f"{path}:{number}: '# EOF' before the end of the file")
            continue
        parts = _split(line)
        if parts is None or not parts[1]:
            raise MetricsError(f"{path}:{number}: not an OpenMetrics sample line: {line[:80]!r}")
        _, fields, _ = parts
        if len(fields) < 2:
            raise MetricsError(f"{path}:{number}: sample without a timestamp (backfill needs one)")
        try:
            float(fields[0])
            stamp = float(fields[1])
        except ValueError:
            raise MetricsError(f"{path}:{number}: bad value or timestamp in {line[:80]!r}") from None
        if stamp > _MAX_SECONDS:
            raise MetricsError(f"{path}:{number}: timestamp {fields[1]} looks like milliseconds; "
                               "OpenMetrics timestamps are in seconds")
        samples += 1
        first, last = min(first, stamp), max(last, stamp)
    if not samples:
        raise MetricsError(f"{path}: no samples")
    return MetricsFile(source=path, text=text, samples=samples, first_timestamp=first, last_timestamp=last)


def _format_seconds(value: float, template: str) -> str:
    if "." not in template and "e" not in template.lower():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def shift_metrics(text: str, seconds: int) -> str:
    """The same OpenMetrics text with every sample timestamp moved by `seconds`."""
    out = []
    for line in text.split("\n"):
        parts = None if (not line or line.startswith("#")) else _split(line)
        if parts is None or len(parts[1]) < 2:
            out.append(line)
            continue
        series, fields, exemplar = parts
        stamp = fields[1]
        fields[1] = _format_seconds(float(stamp) + seconds, stamp)
        out.append(f"{series} {' '.join(fields)}{exemplar}")
    return "\n".join(out)
