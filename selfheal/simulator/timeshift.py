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
# Both patterns start with a literal so the regex engine can skip ahead quickly (50 MB of log
# in a fraction of a second): ISO forms are found by their century (years 2000-2099), CLF by
# its `/Mon/`; the digits before a match are checked in Python.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ISO = re.compile(r"20\d\d([-/])\d\d\1\d\d[Tt ]\d\d:\d\d:\d\d")
_CLF = re.compile(rf"/(?:{'|'.join(_MONTHS)})/\d{{4}}:\d\d:\d\d:\d\d")
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

    def _stamp(self, text: str) -> str:
        """The shifted form of one ISO/Go (`2026-01-01T12:00:00`) or CLF (`01/Jan/2026:12:00:00`) stamp."""
        shifted = self._bases.get(text)
        if shifted is None:
            if text[2] == "/":
                day, month, year, clock = text[0:2], _MONTHS.index(text[3:6]) + 1, text[7:11], text[12:20]
                layout = "%d/@/%Y:%H:%M:%S"
            else:
                sep, tee = text[4], text[10]
                year, month, day, clock = text[0:4], int(text[5:7]), text[8:10], text[11:19]
                layout = f"%Y{sep}%m{sep}%d{tee}%H:%M:%S"
            try:
                moment = datetime(int(year), month, int(day), int(clock[0:2]), int(clock[3:5]), int(clock[6:8]))
            except ValueError:
                shifted = text  # not a real date: leave it alone
            else:
                moment += self.delta
                # %b is locale-dependent; the English abbreviation is put in explicitly.
                shifted = moment.strftime(layout).replace("@", _MONTHS[moment.month - 1])
            self._bases[text] = shifted
        return shifted

    def _splice(self, text: str, pattern: re.Pattern[str], lead: int) -> str:
        """Replace every stamp `pattern` finds; `lead` digits before a match belong to it."""
        pieces: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            start, end = match.start() - lead, match.end()
            if start < last or (lead and not text[start:start + lead].isdigit()) \
                    or (start and text[start - 1].isdigit()):
                continue  # part of a longer number, or overlapping the previous stamp
            pieces += (text[last:start], self._stamp(text[start:end]))
            last = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def text(self, text: str) -> str:
        """Shift every timestamp found anywhere in free text (log lines)."""
        if not self.seconds:
            return text
        return self._splice(self._splice(text, _ISO, 0), _CLF, 2)

    def value(self, value: str) -> str:
        """Shift a string only when the whole string is an RFC3339 timestamp."""
        if self.seconds and RFC3339.fullmatch(value):
            return self._splice(value, _ISO, 0)
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
