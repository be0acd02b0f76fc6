"""Time formats and deterministic identifiers shared by every scenario.

All instants are integers: seconds (`*_s`) for object timestamps, nanoseconds (`*_ns`) for log lines.
Nothing here depends on the wall clock, the hash seed or the machine: the same inputs always give
the same bytes.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from datetime import datetime, timezone

NS = 1_000_000_000
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Kubernetes' rand.SafeEncodeString alphabet (no vowels, no confusable digits).
SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def epoch(text: str) -> int:
    """Seconds since 1970 of an RFC3339 value such as `2026-01-01T12:00:00Z`."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


_TUPLES: dict[int, time.struct_time] = {}


def _tm(sec: int) -> time.struct_time:
    value = _TUPLES.get(sec)
    if value is None:
        value = time.gmtime(sec)
        if len(_TUPLES) > 200_000:
            _TUPLES.clear()
        _TUPLES[sec] = value
    return value


def rfc3339(sec: int | float) -> str:
    """`2026-01-01T11:40:00Z`: the seconds-precision form of Kubernetes object timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", _tm(int(sec)))


_NANO_BASE: dict[int, str] = {}


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano (trailing zeros of the fraction dropped), as `kubectl logs --timestamps` prints."""
    sec, frac = divmod(ns, NS)
    base = _NANO_BASE.get(sec)
    if base is None:
        base = time.strftime("%Y-%m-%dT%H:%M:%S", _tm(sec))
        if len(_NANO_BASE) > 200_000:
            _NANO_BASE.clear()
        _NANO_BASE[sec] = base
    if not frac:
        return base + "Z"
    return f"{base}.{frac:09d}".rstrip("0") + "Z"


def rfc3339_micros(ns: int) -> str:
    """`2026-01-01T11:40:01.512345Z` (Istio's pilot-agent log time)."""
    sec, frac = divmod(ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", _tm(sec)) + f".{frac // 1000:06d}Z"


def rfc3339_millis(ns: int) -> str:
    """`2026-01-01T11:41:02.117Z` (Envoy's %START_TIME%, JSON `ts` fields)."""
    sec, frac = divmod(ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", _tm(sec)) + f".{frac // 1_000_000:03d}Z"


def go_log_time(ns: int) -> str:
    """`2026/01/01 11:40:00`: Go's standard `log` package prefix (LstdFlags, UTC container)."""
    return time.strftime("%Y/%m/%d %H:%M:%S", _tm(ns // NS))


def python_log_time(ns: int) -> str:
    """`2026-01-01 11:40:00,123`: Python logging's default asctime."""
    sec, frac = divmod(ns, NS)
    return time.strftime("%Y-%m-%d %H:%M:%S", _tm(sec)) + f",{frac // 1_000_000:03d}"


def clf_time(ns: int) -> str:
    """`01/Jan/2026:11:40:00 +0000`: the Common Log Format time (nginx $time_local, UTC)."""
    tm = _tm(ns // NS)
    return f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} +0000"


def rng(*parts: object) -> random.Random:
    """A random generator seeded from the parts (string seeding is stable across runs and machines)."""
    return random.Random("/".join(str(p) for p in parts))


def digest(*parts: object) -> bytes:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()


def hexid(length: int, *parts: object) -> str:
    return digest(*parts).hex()[:length]


def uid(*parts: object) -> str:
    """A stable UUID (version 4 layout) for metadata.uid."""
    return str(uuid.UUID(bytes=digest("uid", *parts)[:16], version=4))


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """Kubernetes' rand.SafeEncodeString."""
    return "".join(SAFE_ALPHANUMS[ord(ch) % len(SAFE_ALPHANUMS)] for ch in text)


def pod_template_hash(*parts: object) -> str:
    """A pod-template hash the way Kubernetes/Argo print it: SafeEncodeString of a decimal FNV-32a."""
    return safe_encode(str(fnv32a("/".join(str(p) for p in parts))))


def name_suffix(r: random.Random, length: int = 5) -> str:
    """The random suffix of a generated pod name (`canary-demo-7bf4b7c8d9-x2k9p`)."""
    return "".join(r.choice(SAFE_ALPHANUMS) for _ in range(length))


def request_id(r: random.Random) -> str:
    """A UUID-shaped request id (x-request-id) drawn from `r`."""
    h = f"{r.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def go_duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: `10s`, `1m20s`, `5m0s`."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


_STAMP_BASE: dict[str, int] = {}


def stamp_ns(line: str) -> int:
    """Nanoseconds of the RFC3339Nano runtime timestamp that starts a log line."""
    base = line[:19]
    sec = _STAMP_BASE.get(base)
    if sec is None:
        sec = int(datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())
        _STAMP_BASE[base] = sec
    frac = line[20:line.index("Z", 19)] if line[19] == "." else ""
    return sec * NS + int(frac.ljust(9, "0") or 0)
