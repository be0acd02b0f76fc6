"""Parse what services print into log entries, and count what matters per pod and per role.

`parse_log(text)` turns the raw log of one container into `LogEntry` objects, one per event:

- a line may start with an RFC3339/RFC3339Nano timestamp and a space (`kubectl logs --timestamps`);
  it becomes `LogEntry.timestamp`. Lines without it are fine too.
- formats recognised line by line: the Argo `rollouts-demo` request lines
  (`2026/01/01 12:00:00 500 - red (2.000000s)`), Go `log` lines (and nginx's error log, which looks
  the same), nginx/Apache access logs (common and combined, optionally followed by a request time),
  uvicorn access logs, envoy/istio access logs, JSON lines, logfmt, klog
  (`E0101 12:00:00.000000 1 file.go:12] msg`) and plain text with a level word.
- multi-line events become ONE entry: Go panics (`panic: …` or `http: panic serving …` followed by
  `goroutine N [running]:` and frames), Python tracebacks (up to the final `XError: msg`, with
  chained tracebacks), Java stack traces (`Exception in thread …`, `\tat …`, `Caused by: …`,
  `... N more`), PEM blocks, and any line that starts with whitespace (it continues the entry
  before it). Blank lines are skipped.

`iter_entries(lines)` does the same one entry at a time (flat memory for huge logs).

`summarize(entries)` gives a `LogStats` (request count, status histogram, 5xx/4xx counts, latency
samples, level counts, traces and panics); `merge_stats` adds several of them up (per role).

Entries are plain slotted dataclasses, not pydantic models: a pod can print hundreds of thousands
of lines and parsing must stay above 100k lines per second. Pydantic models are used at the
boundary (`LogStats`).

Units and conventions:
- `LogEntry.latency_ms` is milliseconds. Durations with a unit (`"2.01s"`, `"150ms"`, `"1m2s"`,
  `"250µs"`) are converted. A unitless number takes its unit from the key (`*_ms`, `*_us`, `*_ns`,
  `*_s`/`*_seconds`); under a key without a unit (`latency`, `duration`, `elapsed`, `took`,
  `response_time`) a float is seconds (zap, Python), an integer above 100,000 is nanoseconds (Go's
  `time.Duration`, slog) and a smaller integer is milliseconds (envoy/istio, pino, Elasticsearch).
  nginx `$request_time` (a decimal at the end of an access line) is seconds; a trailing integer is
  Apache's `%D` (microseconds).
- `LogEntry.level` is normalised to one of `debug`, `info`, `warn`, `error`, `fatal` (or None when
  the line does not say). Traces are `error` (`fatal` for a Go `panic:`/`fatal error:` that ends
  the process) unless their first line says otherwise.
- `LogEntry.status` is an HTTP status (100–599); anything else (gRPC codes, envoy's `0` for a
  request that never got a response) is left out.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel, Field, computed_field

# --- the entry ---------------------------------------------------------------------------------

KIND_REQUEST = "request"  # rollouts-demo request line
KIND_ACCESS = "access"  # nginx / Apache access log
KIND_ENVOY = "envoy"  # envoy / istio-proxy access log
KIND_JSON = "json"
KIND_LOGFMT = "logfmt"
KIND_GO_LOG = "go_log"  # `YYYY/MM/DD HH:MM:SS` prefix (Go `log`, nginx error log), not a request
KIND_KLOG = "klog"
KIND_TEXT = "text"
KIND_GO_PANIC = "go_panic"
KIND_PYTHON_TRACEBACK = "python_traceback"
KIND_JAVA_EXCEPTION = "java_exception"

TRACE_KINDS = frozenset({KIND_GO_PANIC, KIND_PYTHON_TRACEBACK, KIND_JAVA_EXCEPTION})
LEVELS = ("debug", "info", "warn", "error", "fatal")
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}

# Lines of a multi-line entry kept in `LogEntry.text`; the rest are counted in `lines` only.
MAX_ENTRY_LINES = 60
# A PEM block never reaching its END line stops folding after this many lines.
_MAX_PEM_LINES = 200


@dataclass(slots=True)
class LogEntry:
    """One event of a container log.

    `text` is the entry as printed, without the kubectl timestamp (for multi-line entries the first
    line and its continuation lines joined by newlines, at most `MAX_ENTRY_LINES` of them).
    `message` is what identifies the event, with request noise (client address, sizes, request
    ids, the date a logger prints) left out — the input of signature mining; None means `text`.
    `lines` counts the physical (non-blank) lines folded into the entry.
    """

    timestamp: datetime | None
    text: str
    level: str | None = None
    status: int | None = None
    latency_ms: float | None = None
    kind: str = KIND_TEXT
    lines: int = 1
    message: str | None = None

    @property
    def is_trace(self) -> bool:
        return self.kind in TRACE_KINDS

    @property
    def signature_text(self) -> str:
        return self.text if self.message is None else self.message


# --- helpers for fields ------------------------------------------------------------------------

_LEVEL_ALIASES = {
    "trace": "debug", "debug": "debug", "dbg": "debug", "dbug": "debug", "verbose": "debug", "fine": "debug",
    "info": "info", "information": "info", "informational": "info", "notice": "info", "inf": "info",
    "warn": "warn", "warning": "warn", "wrn": "warn",
    "error": "error", "err": "error", "eror": "error", "severe": "error",
    "fatal": "fatal", "critical": "fatal", "crit": "fatal", "panic": "fatal", "alert": "fatal",
    "emerg": "fatal", "emergency": "fatal", "dpanic": "fatal",
    "d": "debug", "i": "info", "w": "warn", "e": "error", "f": "fatal", "c": "fatal",
}


def normalize_level(value: object) -> str | None:
    """`WARNING`, `warn`, `W`, `30` (pino/bunyan numbers)... -> one of `LEVELS`, or None."""
    if isinstance(value, str):
        return _LEVEL_ALIASES.get(value.strip().lower())
    if isinstance(value, int) and not isinstance(value, bool):
        # pino / bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
        if value >= 60:
            return "fatal"
        if value >= 10:
            return LEVELS[max(0, value // 10 - 2)]
    return None


_STATUS_CACHE = {code: code for code in range(100, 600)}  # one int object per status
_STATUS_TEXT = {str(code): code for code in range(100, 600)}


def _status(value: object) -> int | None:
    if type(value) is int:
        return _STATUS_CACHE.get(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _STATUS_CACHE.get(value)
    if isinstance(value, str) and len(value) == 3 and value.isdigit():
        return _STATUS_CACHE.get(int(value))
    if isinstance(value, float) and value.is_integer():
        return _STATUS_CACHE.get(int(value))
    return None


_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION_FULL = re.compile(r"(?:\d+(?:\.\d*)?(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration_ms(value: object, unit_ms: float | None = None) -> float | None:
    """A duration in milliseconds from `"2.01s"`, `"150ms"`, `"1m2.5s"`, `"250µs"` or a number.

    A number (or numeric string) uses `unit_ms` (milliseconds per unit) when given; otherwise the
    unitless convention in the module docstring (float seconds, large integer nanoseconds, small
    integer milliseconds).
    """
    kind = type(value)
    if kind is int or kind is float:
        if value < 0 or not math.isfinite(value):
            return None
        if unit_ms is not None:
            return float(value) if unit_ms == 1.0 else round(value * unit_ms, 6)
        if kind is float:
            return round(value * 1000.0, 6)
        return value / 1e6 if value > 100_000 else float(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _DURATION_FULL.fullmatch(text):
            return round(sum(float(num) * _UNIT_MS[unit] for num, unit in _DURATION_PART.findall(text)), 6)
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    if unit_ms is not None:
        return round(value * unit_ms, 6)
    if isinstance(value, float):
        return round(value * 1000.0, 6)
    if value > 100_000:
        return value / 1e6
    return float(value)


def _unit_from_key(key: str) -> float | None:
    key = key.lower()
    if key.endswith(("_ms", "ms", "_millis", "millis")):
        return 1.0
    if key.endswith(("_us", "_micros", "micros")):
        return 1e-3
    if key.endswith(("_ns", "_nanos", "nanos")):
        return 1e-6
    if key.endswith(("_s", "_sec", "_secs", "_seconds", "seconds")):
        return 1000.0
    return None


# Keys looked up in structured records (JSON, logfmt), first match wins.
_LEVEL_KEYS = ("level", "severity", "lvl", "loglevel", "log_level", "levelname", "log.level", "@l")
_STATUS_KEYS = (
    "status", "status_code", "statusCode", "http_status", "httpStatus", "response_code", "responseCode",
    "http.status_code", "http.response.status_code", "code",
)
_LATENCY_KEYS = (
    "latency_ms", "duration_ms", "elapsed_ms", "response_time_ms", "request_time_ms", "took_ms", "time_ms",
    "latency", "duration", "elapsed", "response_time", "responseTime", "request_time", "took",
    "latency_seconds", "duration_seconds", "http.duration", "event.duration",
)
_MESSAGE_KEYS = ("msg", "message", "@m", "@mt", "event", "log")
_ERROR_KEYS = ("error", "err", "error.message", "exception", "exc_info", "stack", "stacktrace", "stack_trace")
_TIME_KEYS = ("time", "ts", "timestamp", "@timestamp", "@t")
_METHOD_KEYS = ("method", "http_method", "http.method", "request_method")
_PATH_KEYS = ("path", "uri", "url", "route", "http.path", "request_uri", "http.target")


# Which field each key feeds, and its priority among the keys of that field (lower wins).
_LEVEL, _STATUS, _LATENCY, _TIME, _MESSAGE, _ERROR, _METHOD, _PATH = range(8)
_FIELD_OF: dict[str, tuple[int, int, float | None]] = {
    key: (field, priority, _unit_from_key(key))
    for field, keys in (
        (_LEVEL, _LEVEL_KEYS), (_STATUS, _STATUS_KEYS), (_LATENCY, _LATENCY_KEYS), (_TIME, _TIME_KEYS),
        (_MESSAGE, _MESSAGE_KEYS), (_ERROR, _ERROR_KEYS), (_METHOD, _METHOD_KEYS), (_PATH, _PATH_KEYS),
    )
    for priority, key in enumerate(keys)
}


def _fields(record: dict) -> list:
    """One pass over a record: the best value per field (`None` where absent).

    Status and latency values are converted here, and a key whose value does not convert (a
    `status: "ok"`, a gRPC `code: 2`) leaves the field to the next key.
    """
    best: list = [None] * 8
    rank = [99] * 8
    for key, value in record.items():
        slot = _FIELD_OF.get(key)
        if slot is None or value is None or value == "":
            continue
        field, priority, unit = slot
        if priority >= rank[field]:
            continue
        if field == _STATUS:
            value = _status(value)
        elif field == _LATENCY:
            value = parse_duration_ms(value, unit)
        if value is not None:
            best[field] = value
            rank[field] = priority
    return best


def _nested(record: dict) -> None:
    """Lift the few nested fields we read (`http.response.status_code`, `log.level`) to dotted keys."""
    for outer in ("http", "log", "res", "response", "event", "error"):
        inner = record.get(outer)
        if isinstance(inner, dict):
            for key, value in inner.items():
                if isinstance(value, dict):
                    for key2, value2 in value.items():
                        record.setdefault(f"{outer}.{key}.{key2}", value2)
                    if outer == "res" and key == "statusCode":
                        record.setdefault("status", value)
                else:
                    record.setdefault(f"{outer}.{key}", value)
            if outer in ("res", "response"):
                record.setdefault("status", inner.get("statusCode") or inner.get("status"))


def _epoch_or_iso(value: object) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if seconds > 1e17:  # nanoseconds
            seconds /= 1e9
        elif seconds > 1e14:  # microseconds
            seconds /= 1e6
        elif seconds > 1e11:  # milliseconds
            seconds /= 1e3
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-":
        try:
            parsed = datetime.fromisoformat(value.replace(" ", "T", 1))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _structured(record: dict, ts: datetime | None, text: str, kind: str) -> LogEntry:
    """An entry from a JSON or logfmt record."""
    if "http" in record or "log" in record or "res" in record or "response" in record:
        _nested(record)
    raw_level, status, latency, raw_time, msg, err, method, path = _fields(record)
    level = normalize_level(raw_level)
    if ts is None and raw_time is not None:
        ts = _epoch_or_iso(raw_time)
    parts = [level or "-"]
    if isinstance(msg, str):
        parts.append(msg.strip())
    elif msg is not None:
        parts.append(json.dumps(msg, sort_keys=True)[:200])
    trace_kind = None
    if isinstance(err, str):
        if "\n" in err:
            trace_kind, headline = _trace_from_text(err)
            parts.append(headline)
        else:
            parts.append(err)
    elif isinstance(err, dict):
        parts.append(str(err.get("message") or err.get("msg") or err.get("type") or ""))
    if status is not None:
        if isinstance(method, str):
            parts.append(method)
        if isinstance(path, str):
            parts.append(path.split("?", 1)[0])
        parts.append(str(status))
    if trace_kind is not None:
        kind = trace_kind
        if level is None:
            level = "error"
    elif level is None and not (isinstance(msg, str) and msg) and status is None:
        # A record we cannot read: sign it by its keys, so the shape still counts.
        parts.append("{" + ",".join(sorted(record)[:12]) + "}")
    return LogEntry(ts, text, level, status, latency, kind, 1, " ".join(p for p in parts if p))


# --- line formats ------------------------------------------------------------------------------

# A Go `log` line; when the rest is a rollouts-demo request (`500 - red (2.000000s)`), groups 8-9
# hold the status and the delay in seconds.
_GO_LINE = re.compile(
    r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))? "
    r"(?:([1-5]\d\d) - \S*(?: \((\d+(?:\.\d+)?)s\))?\s*$)?"
)
_ACCESS = re.compile(
    r"(\S+) \S+ (\S+) \[([^\]]+)\] \"(\S+)(?: (\S+))?(?: (\S+))?\" (\d{3}) (\d+|-)"
    r"(?: \"[^\"]*\" \"[^\"]*\")?(.*)$"
)
# uvicorn's access log: `INFO:     10.0.0.1:54321 - "GET /orders HTTP/1.1" 200 OK`.
_UVICORN = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):\s+\S+ - \"(\S+) (\S+)[^\"]*\" (\d{3})\b")
_ENVOY = re.compile(
    r"\[([^\]]+)\] \"(\S+) (\S+) ([^\"]*)\" (\d{1,3}) (\S+) (?:(\S+) (\S+) \"[^\"]*\" )?(\d+|-) (\d+|-) (\d+|-) "
)
_ISO_PREFIX = re.compile(
    r"\[?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\]?\s+"
)
_KLOG = re.compile(r"([IWEF])(\d\d)(\d\d) (\d\d:\d\d:\d\d\.\d+)\s+\d+ ([^\]\s]+)\] ?")
_LOGFMT_START = re.compile(r"[A-Za-z_][\w.-]*=")
_LOGFMT_PAIR = re.compile(r"([A-Za-z_][\w.@-]*)=(?:\"((?:[^\"\\]|\\.)*)\"|(\S*))")
# An upper-case level word; the character before it is checked in `_text_level` (a pattern that
# starts with the word itself lets the regex engine skip quickly to candidate letters).
_LEVEL_UPPER = re.compile(
    r"(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|PANIC|SEVERE|ALERT|EMERG)"
    r"(?=$|[\s\]):|,>\"'])"
)
_BEFORE_LEVEL = frozenset(" \t[(|:=<\"'")
# A lower-case level word where a lower-case level is meant: at the start (`error: x`,
# `Warning: y`) or in brackets (`[error]`, nginx). Matched on the lower-cased head of the text.
_LOWER_WORDS = ("trace", "debug", "info", "notice", "warning", "warn", "error", "err", "critical", "crit",
                "fatal", "panic", "severe", "alert", "emerg")
_LOWER_PREFIXES = _LOWER_WORDS + tuple(f"[{word}" for word in _LOWER_WORDS)
_LEVEL_HEAD = re.compile(r"\[?(" + "|".join(_LOWER_WORDS) + r")(?=\]|:|\"|\s|,|$)")
_JAVA_CLASS_LINE = re.compile(r"(?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable|Fault)\b(?::|$)")
_JAVA_FRAME = re.compile(r"\s+at [\w$.<>/]+\(")
_GO_FRAME = re.compile(r"[\w./*$\[\]{}()-]+\(.*\)$")
_GO_CONTINUATION = ("goroutine ", "created by ", "[signal ", "exit status ", "...additional frames", "panic(")
_PY_CHAIN = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

# States of the parser: no multi-line entry open, a trace of some kind, a PEM block, or an entry
# that received indented continuation lines.
_NONE, _PY_FRAMES, _PY_DONE, _PY_CHAIN_STATE, _JAVA, _GO, _PEM, _FOLD = range(8)
_TRACE_STATES = frozenset({_PY_FRAMES, _PY_DONE, _PY_CHAIN_STATE, _JAVA, _GO})


def _text_level(text: str) -> str | None:
    """The level a plain text line announces (upper-case word near the start, `error:`, `[warn]`)."""
    match = _LEVEL_UPPER.search(text, 0, 100)
    while match is not None:
        start = match.start()
        if start == 0 or text[start - 1] in _BEFORE_LEVEL:
            return _LEVEL_ALIASES[match.group(1).lower()]
        match = _LEVEL_UPPER.search(text, match.end(), 100)
    head = text[:12].lower()
    if not head.startswith(_LOWER_PREFIXES):
        bracket = text.find("[", 1, 60)
        if bracket < 0:
            return None
        head = text[bracket:bracket + 12].lower()
        if not head.startswith(_LOWER_PREFIXES):
            return None
    match = _LEVEL_HEAD.match(head)
    return _LEVEL_ALIASES[match.group(1)] if match is not None else None


def _go_date(match: re.Match[str]) -> datetime | None:
    year, month, day, hour, minute, second, frac = match.group(1, 2, 3, 4, 5, 6, 7)
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((frac or "0").ljust(6, "0")[:6]), tzinfo=timezone.utc,
        )
    except ValueError:
        return None


def _clf_date(text: str) -> datetime | None:
    """`01/Jan/2026:12:00:00 +0000` (common log format)."""
    try:
        day, month, rest = text.split("/", 2)
        year, hour, minute, second_zone = rest.split(":", 3)
        second, _, zone = second_zone.partition(" ")
        moment = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc)
        if len(zone) == 5 and zone[0] in "+-":
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
            moment -= offset if zone[0] == "+" else -offset
        return moment
    except (ValueError, KeyError):
        return None


def _iso(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace(",", ".").replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _access(line: str, ts: datetime | None) -> LogEntry | None:
    match = _ACCESS.match(line)
    if match is None:
        return None
    _client, _user, when, method, path, _proto, code, _size, tail = match.groups()
    status = _STATUS_CACHE.get(int(code))
    latency = None
    tail = tail.strip()
    if tail:
        last = tail.rsplit(" ", 1)[-1]
        if last and last[0].isdigit():
            if "." in last:
                latency = parse_duration_ms(last, 1000.0)
            elif last.isdigit():
                latency = int(last) / 1000.0  # Apache %D: microseconds
    if ts is None:
        ts = _clf_date(when)
    if path is None:
        message = f"{method} {status}"
    else:
        message = f"{method} {path.split('?', 1)[0]} {status}"
    return LogEntry(ts, line, None, status, latency, KIND_ACCESS, 1, message)


def _envoy(line: str, ts: datetime | None) -> LogEntry | None:
    match = _ENVOY.match(line)
    if match is None:
        return None
    when, method, path, _proto, code, flags, details, _termination, _received, _sent, duration = match.groups()
    status = _STATUS_CACHE.get(int(code))
    latency = float(duration) if duration.isdigit() else None
    if ts is None:
        ts = _iso(when)
    parts = [method, path.split("?", 1)[0], str(status) if status is not None else code]
    if flags != "-":
        parts.append(flags)
    if details and details != "via_upstream" and details != "-":
        parts.append(details)
    return LogEntry(ts, line, None, status, latency, KIND_ENVOY, 1, " ".join(parts))


def _logfmt(line: str, ts: datetime | None) -> LogEntry | None:
    pairs = _LOGFMT_PAIR.findall(line)
    if len(pairs) < 2:
        return None
    record = {key: (quoted.replace('\\"', '"') if quoted else bare) for key, quoted, bare in pairs}
    return _structured(record, ts, line, KIND_LOGFMT)


def _python_headline(lines: Sequence[str]) -> str:
    headline = None
    for line in lines:
        if line and line[0] not in " \t" and not line.startswith("Traceback (") and line not in _PY_CHAIN:
            headline = line
    return (headline or lines[0]).strip()


def _java_headline(lines: Sequence[str]) -> str:
    header = lines[0].strip()
    root = None
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("Caused by: "):
            root = stripped
    return f"{header} | {root}" if root else header


def _go_headline(header: str, lines: Sequence[str]) -> str:
    """The panic line, plus the first frame of the application's own code."""
    running = False
    for line in lines[1:]:
        if line.startswith("goroutine "):
            if running:
                break
            running = True
            continue
        if not running or line[:1] in " \t" or not line:
            continue
        if line.startswith(("runtime.", "runtime/", "panic(", "net/http.", "created by ", "sync.", "testing.")):
            continue
        return f"{header} in {line.rsplit('(', 1)[0]}"
    return header


def _trace_from_text(text: str) -> tuple[str | None, str]:
    """(trace kind, headline) of a stack trace held in one string (a JSON `stack` field)."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return None, ""
    if any(line.startswith("Traceback (") for line in lines):
        return KIND_PYTHON_TRACEBACK, _python_headline(lines)
    if any(line.startswith("goroutine ") for line in lines):
        return KIND_GO_PANIC, _go_headline(lines[0].strip(), lines)
    if any(_JAVA_FRAME.match(line) for line in lines):
        return KIND_JAVA_EXCEPTION, _java_headline(lines)
    return None, lines[0].strip()


def _finish(entry: LogEntry, lines: list[str], state: int) -> None:
    """Close a multi-line entry: join its text (capped), count its lines, compute its headline."""
    entry.lines = len(lines)
    if len(lines) > MAX_ENTRY_LINES:
        entry.text = "\n".join(lines[:MAX_ENTRY_LINES]) + f"\n... {len(lines) - MAX_ENTRY_LINES} more lines"
    else:
        entry.text = "\n".join(lines)
    if state not in _TRACE_STATES:
        if state == _PEM:
            entry.message = lines[0].split("-----BEGIN", 1)[0] + "-----BEGIN PEM BLOCK-----"
        return
    kind = entry.kind
    if kind == KIND_PYTHON_TRACEBACK:
        entry.message = _python_headline(lines)
    elif kind == KIND_JAVA_EXCEPTION:
        entry.message = _java_headline([entry.message or lines[0], *lines[1:]])
    elif kind == KIND_GO_PANIC:
        entry.message = _go_headline(entry.message or lines[0], lines)


def _new_entry(line: str, ts: datetime | None) -> tuple[LogEntry, int]:
    """Classify the first line of an entry; returns the entry and the trace state it opens."""
    c = line[0]
    if c == "{":
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return _structured(record, ts, line, KIND_JSON), _NONE
    elif c.isdigit():
        match = _GO_LINE.match(line)
        if match is not None:
            if ts is None:
                ts = _go_date(match)
            code = match.group(8)
            if code is not None:
                rest = line[match.start(8):]
                seconds = match.group(9)
                latency = round(float(seconds) * 1000.0, 6) if seconds is not None else None
                return LogEntry(ts, line, None, _STATUS_TEXT[code], latency, KIND_REQUEST, 1, rest), _NONE
            rest = line[match.end():]
            if rest.startswith("http: panic serving "):
                return LogEntry(ts, line, "error", None, None, KIND_GO_PANIC, 1, rest), _GO
            if rest.startswith("panic: "):
                return LogEntry(ts, line, "fatal", None, None, KIND_GO_PANIC, 1, rest), _GO
            return LogEntry(ts, line, _text_level(rest), None, None, KIND_GO_LOG, 1, rest), _NONE
        if '] "' in line:
            entry = _access(line, ts)
            if entry is not None:
                return entry, _NONE
        match = _ISO_PREFIX.match(line)
        if match is not None:
            return _date_prefixed(line, match, ts)
    elif c == "[":
        entry = _envoy(line, ts)
        if entry is not None:
            return entry, _NONE
        match = _ISO_PREFIX.match(line)
        if match is not None:
            return _date_prefixed(line, match, ts)
    else:
        if c == "T" and line.startswith("Traceback (most recent call last)"):
            return LogEntry(ts, line, "error", None, None, KIND_PYTHON_TRACEBACK, 1, None), _PY_FRAMES
        if c == "p" and line.startswith("panic: "):
            return LogEntry(ts, line, "fatal", None, None, KIND_GO_PANIC, 1, line), _GO
        if c == "f" and line.startswith("fatal error: "):
            return LogEntry(ts, line, "fatal", None, None, KIND_GO_PANIC, 1, line), _GO
        if c == "E" and line.startswith("Exception in thread "):
            return LogEntry(ts, line, "error", None, None, KIND_JAVA_EXCEPTION, 1, line), _JAVA
        if c == "-" and line.startswith("-----BEGIN "):
            return LogEntry(ts, line, None, None, None, KIND_TEXT, 1, None), _PEM
        if c in "IWEF":
            match = _KLOG.match(line)
            if match is not None:
                rest = line[match.end():]
                if ts is None:
                    ts = _klog_time(match)
                level = _LEVEL_ALIASES[match.group(1).lower()]
                return LogEntry(ts, line, level, None, None, KIND_KLOG, 1, f"{match.group(5).split(':')[0]}] {rest}"), _NONE
        if _LOGFMT_START.match(line):
            entry = _logfmt(line, ts)
            if entry is not None:
                return entry, _NONE
        if c in "DIWEC" and ' - "' in line:
            match = _UVICORN.match(line)
            if match is not None:
                level_word, method, path, code = match.groups()
                status = _STATUS_TEXT[code]
                message = f"{method} {path.split('?', 1)[0]} {status}"
                return LogEntry(ts, line, _LEVEL_ALIASES[level_word.lower()], status, None, KIND_ACCESS, 1, message), _NONE
        if line.find(" [", 0, 80) > 0 and '] "' in line:  # access log from a host name or IPv6 client
            entry = _access(line, ts)
            if entry is not None:
                return entry, _NONE
        if "Exception" in line or "Error" in line or "Throwable" in line:
            if _JAVA_CLASS_LINE.match(line):
                return LogEntry(ts, line, "error", None, None, KIND_JAVA_EXCEPTION, 1, line), _JAVA
        if "-----BEGIN " in line and "PRIVATE KEY" in line and "-----END " not in line:
            return LogEntry(ts, line, None, None, None, KIND_TEXT, 1, None), _PEM
    return LogEntry(ts, line, _text_level(line), None, None, KIND_TEXT, 1, None), _NONE


def _date_prefixed(line: str, match: re.Match[str], ts: datetime | None) -> tuple[LogEntry, int]:
    """A line that starts with its own ISO date (`2026-01-01 12:00:00,123 ERROR ...`, `[2026-...] {...}`)."""
    rest = line[match.end():]
    if ts is None:
        ts = _iso(match.group(1))
    if rest:
        if rest[0] == "{":
            entry, state = _new_entry(rest, ts)
            entry.text = line
            return entry, state
        if _LOGFMT_START.match(rest):
            entry = _logfmt(rest, ts)
            if entry is not None:
                entry.text = line
                return entry, _NONE
    return LogEntry(ts, line, _text_level(rest), None, None, KIND_TEXT, 1, rest or None), _NONE


def _klog_time(match: re.Match[str]) -> datetime | None:
    """klog lines carry no year; the current UTC year is assumed."""
    month, day, clock = int(match.group(2)), int(match.group(3)), match.group(4)
    try:
        hour, minute, second = clock.split(":")
        whole, _, frac = second.partition(".")
        return datetime(
            datetime.now(timezone.utc).year, month, day, int(hour), int(minute), int(whole),
            int(frac.ljust(6, "0")[:6]), tzinfo=timezone.utc,
        )
    except ValueError:
        return None


def _continues(state: int, line: str) -> int:
    """The new trace state if `line` (not indented, not blank) continues the open trace, else -1."""
    if state == _PY_FRAMES:
        return _PY_DONE  # the first unindented line after the frames is the exception
    if state == _PY_DONE:
        return _PY_CHAIN_STATE if line in _PY_CHAIN else -1
    if state == _PY_CHAIN_STATE:
        return _PY_FRAMES if line.startswith("Traceback (") else -1
    if state == _JAVA:
        if line.startswith(("Caused by: ", "Suppressed: ", "... ")):
            return _JAVA
        return -1
    if state == _GO:
        if line.startswith(_GO_CONTINUATION) or _GO_FRAME.match(line):
            return _GO
        return -1
    if state == _PEM:
        return _NONE if line.startswith("-----END ") else _PEM
    return -1


def iter_entries(lines: Iterable[str]) -> Iterator[LogEntry]:
    """Parse the lines of one container log (no trailing newlines) into entries, one at a time.

    See the module docstring for the formats. Blank lines are skipped; multi-line events become
    one entry whose `lines` counts the physical lines folded into it (an entry is yielded once the
    line after it shows it is complete). Streaming keeps memory flat however long the log is:
    `summarize(miner.tap(iter_entries(lines), role))` never holds more than one entry.
    """
    fromiso = datetime.fromisoformat
    current: LogEntry | None = None
    folded: list[str] | None = None  # lines of the current entry once it has more than one
    state = _NONE
    for raw in lines:
        if not raw:
            continue
        if raw[-1] == "\r":
            raw = raw[:-1]
            if not raw:
                continue
        ts = None
        line = raw
        if len(raw) >= 20 and raw[10] == "T" and raw[4] == "-" and raw[0].isdigit():
            space = raw.find(" ", 19, 40)
            if space > 0:
                try:
                    ts = fromiso(raw[:space])
                except ValueError:
                    ts = None
                else:
                    line = raw[space + 1:]
                    if ts.tzinfo is None:
                        ts = ts.replace(tzinfo=timezone.utc)
            elif len(raw) <= 40:
                try:
                    fromiso(raw)
                except ValueError:
                    pass
                else:
                    continue  # only a timestamp: an empty log line
        if not line or line.isspace():
            continue
        first = line[0]
        if current is not None:
            if first == " " or first == "\t":
                if folded is None:
                    folded = [current.text, line]
                else:
                    folded.append(line)
                if state == _NONE or state == _FOLD:
                    state = _FOLD
                    if current.kind not in TRACE_KINDS and _JAVA_FRAME.match(line):
                        current.kind = KIND_JAVA_EXCEPTION
                        if current.level is None or LEVEL_RANK[current.level] < LEVEL_RANK["error"]:
                            current.level = "error"
                        state = _JAVA
                continue
            if state != _NONE and state != _FOLD:
                following = _continues(state, line)
                if following >= 0 and not (state == _PEM and len(folded or ()) >= _MAX_PEM_LINES):
                    if folded is None:
                        folded = [current.text, line]
                    else:
                        folded.append(line)
                    state = following
                    if following == _NONE:  # a PEM block ended
                        _finish(current, folded, _PEM)
                        yield current
                        current = None
                        folded = None
                    continue
            if folded is not None:
                _finish(current, folded, state)
                folded = None
            elif state != _NONE:
                _finish(current, [current.text], state)
            yield current
        current, state = _new_entry(line, ts)
    if current is not None:
        if folded is not None:
            _finish(current, folded, state)
        elif state != _NONE:
            _finish(current, [current.text], state)
        yield current


def parse_lines(lines: Iterable[str]) -> list[LogEntry]:
    """Parse the lines of one container log (no trailing newlines) into a list of entries."""
    return list(iter_entries(lines))


def parse_log(text: str) -> list[LogEntry]:
    """Parse the raw log text of one container (as `kubectl logs [--timestamps]` prints it)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return parse_lines(text.split("\n"))


# --- statistics --------------------------------------------------------------------------------

DEFAULT_LATENCY_CAP = 10_000
_RESERVOIR_SEED = 20260101


class LogStats(BaseModel):
    """What the logs of one pod (or of a whole role, via `merge_stats`) say, in numbers.

    Requests are entries that carry an HTTP status. `latency_samples_ms` holds every latency
    while there are at most `latency_sample_cap` of them; beyond that it is a deterministic
    uniform reservoir sample (Algorithm R with a fixed seed, so the same log always gives the same
    sample), and `latency_sampled` is true. `latency_count`, `latency_sum_ms` and
    `latency_max_ms` are always exact; the percentiles come from the samples.
    """

    entries: int = 0
    lines: int = Field(default=0, description="physical non-blank lines in the entries")
    requests: int = Field(default=0, description="entries with an HTTP status")
    status_counts: dict[str, int] = Field(default_factory=dict, description="HTTP status -> entries")
    server_errors: int = Field(default=0, description="requests with a 5xx status")
    client_errors: int = Field(default=0, description="requests with a 4xx status")
    level_counts: dict[str, int] = Field(default_factory=dict, description="normalised level -> entries")
    traces: int = Field(default=0, description="multi-line traces: Go panics, Python tracebacks, Java exceptions")
    panics: int = Field(default=0, description="Go panics (a subset of traces)")
    kind_counts: dict[str, int] = Field(default_factory=dict, description="entry format -> entries")
    latency_count: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float | None = None
    latency_samples_ms: list[float] = Field(default_factory=list)
    latency_sample_cap: int = DEFAULT_LATENCY_CAP
    latency_sampled: bool = False
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error_ratio(self) -> float | None:
        """5xx responses over all requests (None without requests)."""
        return self.server_errors / self.requests if self.requests else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def latency_mean_ms(self) -> float | None:
        return self.latency_sum_ms / self.latency_count if self.latency_count else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def latency_p50_ms(self) -> float | None:
        return _percentile(self.latency_samples_ms, 0.50)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def latency_p95_ms(self) -> float | None:
        return _percentile(self.latency_samples_ms, 0.95)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def latency_p99_ms(self) -> float | None:
        return _percentile(self.latency_samples_ms, 0.99)


def _percentile(samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarize(entries: Iterable[LogEntry], *, latency_cap: int = DEFAULT_LATENCY_CAP) -> LogStats:
    """Count what one pod's entries say: requests, statuses, errors, latency samples, levels, traces."""
    if latency_cap < 1:
        raise ValueError("latency_cap must be at least 1")
    status_counts: dict[int, int] = {}
    level_counts: dict[str, int] = {}
    kind_counts: dict[str, int] = {}
    samples: list[float] = []
    rng = random.Random(_RESERVOIR_SEED)
    count = lines = latency_count = 0
    latency_sum = 0.0
    latency_max = None
    first = last = None
    for entry in entries:
        count += 1
        lines += entry.lines
        status = entry.status
        if status is not None:
            status_counts[status] = status_counts.get(status, 0) + 1
        level = entry.level
        if level is not None:
            level_counts[level] = level_counts.get(level, 0) + 1
        kind = entry.kind
        kind_counts[kind] = kind_counts.get(kind, 0) + 1
        latency = entry.latency_ms
        if latency is not None:
            latency_count += 1
            latency_sum += latency
            if latency_max is None or latency > latency_max:
                latency_max = latency
            if latency_count <= latency_cap:
                samples.append(latency)
            else:
                slot = rng.randrange(latency_count)
                if slot < latency_cap:
                    samples[slot] = latency
        ts = entry.timestamp
        if ts is not None:
            if first is None or ts < first:
                first = ts
            if last is None or ts > last:
                last = ts
    traces = sum(n for kind, n in kind_counts.items() if kind in TRACE_KINDS)
    return LogStats(
        entries=count,
        lines=lines,
        requests=sum(status_counts.values()),
        status_counts={str(code): n for code, n in sorted(status_counts.items())},
        server_errors=sum(n for code, n in status_counts.items() if code >= 500),
        client_errors=sum(n for code, n in status_counts.items() if 400 <= code < 500),
        level_counts={level: level_counts[level] for level in LEVELS if level in level_counts},
        traces=traces,
        panics=kind_counts.get(KIND_GO_PANIC, 0),
        kind_counts=dict(sorted(kind_counts.items())),
        latency_count=latency_count,
        latency_sum_ms=latency_sum,
        latency_max_ms=latency_max,
        latency_samples_ms=samples,
        latency_sample_cap=latency_cap,
        latency_sampled=latency_count > latency_cap,
        first_timestamp=first,
        last_timestamp=last,
    )


def _add_counts(target: dict[str, int], source: dict[str, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def merge_stats(parts: Sequence[LogStats], *, latency_cap: int | None = None) -> LogStats:
    """Add up the stats of several pods (e.g. all canary pods) into one.

    Latency samples are concatenated while they fit in `latency_cap` (default: the largest cap of
    the parts) and no part was sampled; otherwise each part contributes a deterministic sample
    proportional to its exact `latency_count` (stratified, so the result is still a uniform sample
    of all latencies).
    """
    if not parts:
        return LogStats(latency_sample_cap=latency_cap or DEFAULT_LATENCY_CAP)
    cap = latency_cap or max(part.latency_sample_cap for part in parts)
    status: dict[str, int] = {}
    levels: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for part in parts:
        _add_counts(status, part.status_counts)
        _add_counts(levels, part.level_counts)
        _add_counts(kinds, part.kind_counts)
    latency_count = sum(part.latency_count for part in parts)
    exact = sum(len(part.latency_samples_ms) for part in parts) <= cap and not any(p.latency_sampled for p in parts)
    if exact:
        samples = [value for part in parts for value in part.latency_samples_ms]
    else:
        samples = _stratified(parts, cap, latency_count)
    maxima = [part.latency_max_ms for part in parts if part.latency_max_ms is not None]
    firsts = [part.first_timestamp for part in parts if part.first_timestamp is not None]
    lasts = [part.last_timestamp for part in parts if part.last_timestamp is not None]
    return LogStats(
        entries=sum(part.entries for part in parts),
        lines=sum(part.lines for part in parts),
        requests=sum(part.requests for part in parts),
        status_counts=dict(sorted(status.items())),
        server_errors=sum(part.server_errors for part in parts),
        client_errors=sum(part.client_errors for part in parts),
        level_counts={level: levels[level] for level in LEVELS if level in levels},
        traces=sum(part.traces for part in parts),
        panics=sum(part.panics for part in parts),
        kind_counts=dict(sorted(kinds.items())),
        latency_count=latency_count,
        latency_sum_ms=sum(part.latency_sum_ms for part in parts),
        latency_max_ms=max(maxima) if maxima else None,
        latency_samples_ms=samples,
        latency_sample_cap=cap,
        latency_sampled=not exact,
        first_timestamp=min(firsts) if firsts else None,
        last_timestamp=max(lasts) if lasts else None,
    )


def _stratified(parts: Sequence[LogStats], cap: int, total: int) -> list[float]:
    """`cap` samples drawn from the parts in proportion to their latency counts (largest remainder)."""
    if total == 0:
        return []
    quotas = [cap * part.latency_count / total for part in parts]
    sizes = [min(int(q), len(part.latency_samples_ms)) for q, part in zip(quotas, parts, strict=True)]
    order = sorted(range(len(parts)), key=lambda i: (-(quotas[i] - int(quotas[i])), i))
    remaining = cap - sum(sizes)
    for i in order:
        if remaining <= 0:
            break
        if sizes[i] < len(parts[i].latency_samples_ms):
            sizes[i] += 1
            remaining -= 1
    rng = random.Random(_RESERVOIR_SEED)
    samples: list[float] = []
    for size, part in zip(sizes, parts, strict=True):
        if size >= len(part.latency_samples_ms):
            samples.extend(part.latency_samples_ms)
        elif size > 0:
            samples.extend(rng.sample(part.latency_samples_ms, size))
    return samples
