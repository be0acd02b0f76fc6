"""Container logs: reading `logs/<pod>/<container>[.previous].log[.gz]` and answering
`pods/{name}/log` queries the way the kubelet does.

A large scenario holds hundreds of thousands of lines per pod, so lines stay raw in memory
and only the lines a query returns are time-shifted; per-line times (needed for `since*`)
are computed once, on the first query that needs them.
"""

from __future__ import annotations

import bisect
import gzip
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .timeshift import RFC3339, TimeShift, base_epoch, parse_rfc3339, rfc3339_epoch

_FILE = re.compile(r"(?P<container>[^.]+)(?P<previous>\.previous)?\.log(?P<gz>\.gz)?")
# The RFC3339 prefix (and its separating space) that the kubelet adds to every line.
_STAMP_PREFIX = re.compile(
    r"(?m)^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})(?: |$)")
# The same after a newline: starting with a literal lets the regex engine skip ahead fast.
_NEWLINE_STAMP = re.compile(r"\n\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})(?: |(?=\n)|$)")


class LogFile(BaseModel):
    """One log file of a scenario."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    namespace: str
    pod: str
    container: str
    previous: bool
    source: Path
    lines: list[str]


def parse_log_name(name: str) -> tuple[str, bool] | None:
    """(container, previous) for a log file name, or None if the name is not a log file."""
    match = _FILE.fullmatch(name)
    return (match["container"], bool(match["previous"])) if match else None


def read_log_lines(path: Path) -> list[str]:
    """Lines of a plain or gzip log file (undecodable bytes become U+FFFD, like kubectl shows)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class LogOptions(BaseModel):
    """The query parameters of `pods/{name}/log` (PodLogOptions)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    container: str | None = None
    previous: bool = False
    follow: bool = False
    timestamps: bool = False
    tail_lines: int | None = Field(default=None, alias="tailLines")
    since_seconds: int | None = Field(default=None, alias="sinceSeconds")
    since_time: datetime | None = Field(default=None, alias="sinceTime")
    limit_bytes: int | None = Field(default=None, alias="limitBytes")

    @field_validator("since_time", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        if isinstance(value, str):
            parsed = parse_rfc3339(value)
            if parsed is None:
                raise ValueError(f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse')
            return parsed
        return value

    def problems(self) -> list[str]:
        """Validation failures phrased like the apiserver's PodLogOptions validation."""
        out = []
        if self.tail_lines is not None and self.tail_lines < 0:
            out.append(f"tailLines: Invalid value: {self.tail_lines}: must be greater than or equal to 0")
        if self.limit_bytes is not None and self.limit_bytes < 1:
            out.append(f"limitBytes: Invalid value: {self.limit_bytes}: must be greater than 0")
        if self.since_seconds is not None and self.since_time is not None:
            out.append("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
        elif self.since_seconds is not None and self.since_seconds < 1:
            out.append(f"sinceSeconds: Invalid value: {self.since_seconds}: must be greater than 0")
        return out

    @classmethod
    def from_query(cls, query: dict[str, str]) -> "LogOptions":
        """Parse query parameters; raises ValueError with a one-line reason on bad syntax."""
        try:
            return cls.model_validate(query)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = ".".join(str(part) for part in err["loc"])
            raise ValueError(f"{name}: {err['msg']}") from None


class LogView:
    """A container log as served: the raw lines, the scenario's shift and line times."""

    def __init__(self, lines: list[str], shift: TimeShift, fallback_epoch: float) -> None:
        self.lines = lines
        self.shift = shift
        self.fallback_epoch = fallback_epoch  # unshifted time for lines before any stamp
        self._times: list[float] | None = None
        self._sorted = True
        self._lock = threading.Lock()

    def _line_times(self) -> tuple[list[float], bool]:
        """Unshifted epoch per line; unstamped lines (stack traces) inherit the previous stamp."""
        with self._lock:
            if self._times is None:
                self._times = _line_times(self.lines, self.fallback_epoch)
                times = self._times
                self._sorted = all(a <= b for a, b in zip(times, times[1:]))
            return self._times, self._sorted

    def _start_index(self, since_epoch: float) -> list[int] | int:
        """First index at or after `since_epoch` (or the matching indexes if the log is unordered)."""
        times, ordered = self._line_times()
        if ordered:
            return bisect.bisect_left(times, since_epoch)
        return [i for i, t in enumerate(times) if t >= since_epoch]

    def render(self, opts: LogOptions, now: float) -> bytes:
        """The log body for these options; `now` is the wall clock (epoch seconds)."""
        since: float | None = None
        if opts.since_seconds is not None:
            since = now - opts.since_seconds
        elif opts.since_time is not None:
            since = opts.since_time.timestamp()
        lines: list[str] = self.lines
        first = 0
        if since is not None:
            start = self._start_index(since - self.shift.seconds)
            if isinstance(start, int):
                first = start
            else:
                lines, first = [self.lines[i] for i in start], 0
        count = len(lines) - first
        if opts.tail_lines is not None:
            count = min(count, opts.tail_lines)
        if count <= 0:
            return b""
        begin = len(lines) - count
        selected = lines[begin:]
        if opts.timestamps:
            selected = self._stamp_all(selected, begin if lines is self.lines else None)
        # One regex pass over the whole block is much faster than line by line.
        text = self.shift.text("\n".join(selected))
        if not opts.timestamps:
            text = _NEWLINE_STAMP.sub("\n", "\n" + text)[1:]
        body = (text + "\n").encode("utf-8")
        if opts.limit_bytes is not None:
            body = body[:opts.limit_bytes]
        return body

    def _stamp_all(self, selected: list[str], offset: int | None) -> list[str]:
        """Give unstamped lines the (unshifted) time they inherit, as the kubelet would print it."""
        if all(_STAMP_PREFIX.match(line) for line in selected):
            return selected
        times, _ = self._line_times()
        out = []
        for index, line in enumerate(selected):
            if _STAMP_PREFIX.match(line):
                out.append(line)
                continue
            moment = self.fallback_epoch
            if offset is not None:
                moment = times[offset + index]
            stamp = datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.append(f"{stamp} {line}")
        return out


def _line_times(lines: list[str], fallback: float) -> list[float]:
    """Unshifted epoch per line (the fast path reads `...Z` and `.fraction Z` prefixes directly)."""
    times: list[float] = []
    current: float | None = None
    pending = 0
    for line in lines:
        epoch = None
        if len(line) >= 20 and line[10] in "Tt" and line[4] == "-":
            whole = base_epoch(line[:19])
            if whole is not None:
                space = line.find(" ", 19)
                rest = line[19:space] if space != -1 else line[19:]
                if rest in ("Z", "z"):
                    epoch = whole
                elif rest[:1] == "." and rest[-1:] in ("Z", "z") and rest[1:-1].isdigit():
                    epoch = whole + float(rest[:-1])
                elif RFC3339.fullmatch(line[:19] + rest):
                    epoch = rfc3339_epoch(line[:19] + rest)
        if epoch is None:
            if current is None:
                pending += 1
                continue
            epoch = current
        if pending:
            times.extend([epoch] * pending)  # leading unstamped lines take the first stamp
            pending = 0
        current = epoch
        times.append(epoch)
    times.extend([fallback] * pending)
    return times
