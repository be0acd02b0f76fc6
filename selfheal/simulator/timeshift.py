"""Moving a scenario's timestamps from its `now` to the simulator's startup time.

A scenario describes one frozen instant; serving it unchanged would make every pod look
months old and every metric fall outside Prometheus' lookback. One whole-second shift is
applied to RFC3339 values in objects, to timestamps inside log lines and to metric samples.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import datetime, timedelta, timezone
from typing import Any

# A whole RFC3339 value, as Kubernetes writes it in objects (fraction and zone optional parts).
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
# The date-and-second part of timestamps found inside log text: RFC3339 (`T` or space, so
# Python's asctime too), Go's log package (`2026/01/01 12:00:00`) and the Common Log Format of
# nginx/Apache (`01/Jan/2026:12:00:00`). Fractions and zones around it are kept as they are;
# shifting local wall time by N seconds moves the instant by N seconds too.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BASE = re.compile(r"(?<!\d)(?:(\d{4})([-/])(\d{2})\2(\d{2})([Tt ])(\d{2}):(\d{2}):(\d{2})"
                   rf"|(\d{{2}})/({'|'.join(_MONTHS)})/(\d{{4}}):(\d{{2}}):(\d{{2}}):(\d{{2}}))")
_ZONE = re.compile(r"([+-])(\d{2}):(\d{2})$")


def parse_rfc3339(text: str) -> datetime | None:
    """The aware datetime of an RFC3339 value (nanoseconds are cut to microseconds), else None."""
    if not RFC3339.fullmatch(text):
        return None
    epoch = rfc3339_epoch(text)
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)


def format_rfc3339(moment: datetime | float) -> str:
    """`2026-01-01T12:00:00Z`: the seconds-precision form Kubernetes uses in object metadata."""
    if isinstance(moment, datetime):
        moment = moment.timestamp()
    return datetime.fromtimestamp(int(moment), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=65536)
def base_epoch(base: str) -> int | None:
    """Epoch of `YYYY-MM-DDTHH:MM:SS` read as UTC; None for impossible dates. Cached: log
    lines share seconds, and this runs once per line when `since*` filters a large log."""
    try:
        moment = datetime(int(base[0:4]), int(base[5:7]), int(base[8:10]),
                          int(base[11:13]), int(base[14:16]), int(base[17:19]))
    except ValueError:
        return None
    return calendar.timegm(moment.timetuple())


def rfc3339_epoch(token: str) -> float | None:
    """Epoch seconds of an RFC3339 token known to match `RFC3339`; None for impossible dates."""
    whole = base_epoch(token[:19])
    if whole is None:
        return None
    rest = token[19:]
    value = float(whole)
    if rest[:1] == ".":
        digits = rest[1:].rstrip("Zz").split("+")[0].split("-")[0]
        value += float("0." + digits)
    zone = _ZONE.search(rest)
    if zone:
        offset = int(zone.group(2)) * 3600 + int(zone.group(3)) * 60
        value -= offset if zone.group(1) == "+" else -offset
    return value


class TimeShift:
    """A fixed whole-second shift with per-second caches, so large logs shift quickly."""

    def __init__(self, seconds: int) -> None:
        self.seconds = int(seconds)
        self._bases: dict[str, str] = {}

    @classmethod
    def between(cls, scenario_now: datetime, startup: datetime) -> "TimeShift":
        return cls(int((startup - scenario_now).total_seconds()))

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def _base(self, match: re.Match[str]) -> str:
        text = match.group(0)
        shifted = self._bases.get(text)
        if shifted is None:
            groups = match.groups()
            if groups[0] is not None:
                year, sep, month, day, tee, hour, minute, second = groups[:8]
                layout = f"%Y{sep}%m{sep}%d{tee}%H:%M:%S"
            else:
                day, month_name, year, hour, minute, second = groups[8:]
                month, layout = str(_MONTHS.index(month_name) + 1), "%d/%b/%Y:%H:%M:%S"
            try:
                moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
            except ValueError:
                shifted = text  # not a real date: leave it alone
            else:
                # %b is locale-dependent; the English abbreviation is put back explicitly.
                shifted = (moment + self.delta).strftime(layout.replace("%b", "@"))
                if "@" in shifted:
                    shifted = shifted.replace("@", _MONTHS[(moment + self.delta).month - 1])
            self._bases[text] = shifted
        return shifted

    def text(self, text: str) -> str:
        """Shift every timestamp found anywhere in free text (a log line)."""
        if not self.seconds:
            return text
        return _BASE.sub(self._base, text)

    def value(self, value: str) -> str:
        """Shift a string only when the whole string is an RFC3339 timestamp."""
        if self.seconds and RFC3339.fullmatch(value):
            return _BASE.sub(self._base, value, count=1)
        return value

    def tree(self, obj: Any) -> Any:
        """A copy of a JSON-like tree with every RFC3339 string value shifted."""
        if isinstance(obj, dict):
            return {key: self.tree(item) for key, item in obj.items()}
        if isinstance(obj, list):
            return [self.tree(item) for item in obj]
        if isinstance(obj, str) and len(obj) >= 20 and obj[4:5] == "-":
            return self.value(obj)
        return obj
