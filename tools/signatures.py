"""Log signatures: log entries mined into templates (Drain3), counted per role, and the canary
diffed against stable.

A signature is a template of a log event with its variable parts masked
(`500 - red (<DURATION>)`, `http: panic serving <IP>: runtime error: ... in main.handler`), with how
often each role printed it and one redacted example.

How an entry becomes a signature:
1. its `signature_text` (the entry's message without request noise; for traces the headline,
   e.g. the final `XError: msg` of a Python traceback) is redacted (`tools.redaction.redact`), so
   secrets never reach a template;
2. one compiled regex masks timestamps, UUIDs, IP addresses (with port), hex values, durations,
   sizes (`3.1MiB`), quoted strings and numbers; a second pass masks identifiers that start with a letter and hold a
   digit (`ORD-9AVMNJ`). Three-digit integers are kept, so HTTP statuses stay literal in templates
   (`500 - red`); where they vary, Drain generalises them;
3. the masked text goes to a Drain3 `TemplateMiner` (no persistence). Entries are partitioned by
   HTTP status and by whether they are a trace, one miner per partition, so `200 - blue` and
   `500 - blue` never merge into `<*> - blue`.
Two caches make this fast: raw text -> signature (an identical line skips everything) and masked
text -> signature (lines that differ only in masked parts skip Drain). Both are bounded.

Stable and canary entries go through ONE `SignatureMiner`, so the same template has the same id
in both roles. `SignatureMiner.diff()` (or `diff_signatures`) then lists:
- `new`: printed by the canary only;
- `grown`: printed by both, at a canary rate (per 1,000 entries) at least `min_ratio` times the
  stable rate, at least `min_count` times, and significant: a one-sided exact conditional binomial
  test (the canary's share of the signature's occurrences against its share of all entries — the
  standard exact test for comparing two Poisson rates), Bonferroni-corrected over the signatures;
- `vanished`: printed by stable only.
Each change carries both counts and rates, the p-value and an importance score; lists are sorted
by importance: error-like signatures (traces and panics first, then 5xx and ERROR/FATAL lines)
before warnings before the rest, new before grown, then by rate and count. A rare canary-only
error therefore outranks any common info line, however frequent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from pydantic import BaseModel, Field
from scipy import stats

from tools.logs import LEVEL_RANK, TRACE_KINDS, LogEntry
from tools.redaction import redact

# --- masking -----------------------------------------------------------------------------------

# Masks as (name, first character, rest). Every mask starts with a character from a small set,
# so the combined pattern starts with one character class and the regex engine only tries it where
# such a character stands (a plain alternation would be tried at every position, 5x slower).
# Conditions on the character *before* a mask are written after the first character as
# two-character lookbehinds (`(?<![\w.].)`: the character before the first one is not a word
# character or a dot). Order matters: at one position the first mask that matches wins.
_UNIT = r"(?:ns|us|µs|μs|ms|s|m|h)"
_MASKS: list[tuple[str, str, str]] = [
    (
        "TIMESTAMP",
        r"\d",
        r"(?<=\d)(?:\d{3}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
        r"|\d{3}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?"
        r"|\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(?: [+-]\d{4})?"
        r"|(?<![\d:].)\d:\d\d:\d\d(?:[.,]\d+)?(?![\d:]))",
    ),
    (
        "UUID",
        r"[0-9a-fA-F]",
        r"(?<!\w.)(?<=[0-9a-fA-F])[0-9a-fA-F]{7}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    ),
    (
        "IP",
        r"[\d\[]",
        r"(?<=\d)(?<![\w.].)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?(?![\w.])"
        r"|(?<=\[)[0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F:]*\](?::\d{1,5})?",
    ),
    (
        "HEX",
        r"[0-9a-f]",
        r"(?<=0)(?<!\w.)x[0-9a-fA-F]+\b"
        r"|(?<!\w.)(?:(?<=\d)(?=[0-9a-f]*[a-f])|(?<=[a-f])(?=[0-9a-f]*\d))[0-9a-f]{7,}\b",
    ),
    ("DURATION", r"\d", rf"(?<=\d)(?<![\w.].)\d*(?:\.\d+)?{_UNIT}(?:\d+(?:\.\d+)?{_UNIT})*(?![\w.])"),
    ("SIZE", r"\d", r"(?<=\d)(?<![\w.].)\d*(?:\.\d+)? ?(?:[KMGTPE]i?B|[kKMGTPE]B|B|bytes)(?![\w.])"),
    ("STR", r"[\"']", r"(?<=\")[^\"\n]{0,400}\"|(?<=')(?<!\w.)[^'\n]{0,400}'(?!\w)"),
    # Numbers, except three-digit integers (HTTP statuses stay literal; Drain generalises the rest).
    ("NUM", r"\d", r"(?<=\d)(?<![\w.].)(?!\d\d(?![\w.]))\d*(?:\.\d+)?(?![\w.])"),
]
_FIRST = r"[0-9a-fA-F\"'\[]"
_MASK_RE = re.compile(_FIRST + "(?:" + "|".join(f"(?P<{name}>{rest})" for name, _, rest in _MASKS) + ")")
_MASK_TOKEN = {name: f"<{name}>" for name, _, _ in _MASKS}
# Identifiers that start with a letter and hold a digit (`cart=c879351`, `ORD-9AVMNJ`, `req_7Fx2kQ9`),
# at least 7 characters so `sha256`, `utf8`, `amd64`, `v2` stay. A second, separate pass: it must
# look at letters, which the first pass skips for speed.
_ID_PATTERN = r"\b(?=[A-Za-z][\w-]{6})[A-Za-z][\w-]*?\d[\w-]*"
_ID_RE = re.compile(_ID_PATTERN)


def _mask_token(match: re.Match[str]) -> str:
    return _MASK_TOKEN[match.lastgroup]  # type: ignore[index]


def mask(text: str) -> str:
    """Mask the variable parts of one line: timestamps, UUIDs, IPs, hex, durations, quoted strings
    and numbers (one pass), then letter-led identifiers holding digits (`<ID>`)."""
    return _ID_RE.sub("<ID>", _MASK_RE.sub(_mask_token, text))


def _miner_config(sim_th: float, depth: int) -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.drain_sim_th = sim_th
    config.drain_depth = depth
    config.drain_max_clusters = None
    config.parametrize_numeric_tokens = True
    # The same masks as the pre-mask pass, so the miner is correct on unmasked text too; on text
    # that `mask` already handled they find nothing to replace.
    config.masking_instructions = [
        *(MaskingInstruction(f"{first}(?:{rest})", name) for name, first, rest in _MASKS),
        MaskingInstruction(_ID_PATTERN, "ID"),
    ]
    config.mask_prefix = "<"
    config.mask_suffix = ">"
    return config


# --- models ------------------------------------------------------------------------------------

ChangeKind = Literal["new", "grown", "vanished"]


class Signature(BaseModel):
    """One log template with its counts per role and one redacted example."""

    id: str
    template: str
    count: int = Field(description="occurrences over all roles")
    counts: dict[str, int] = Field(default_factory=dict, description="occurrences per role")
    level: str | None = None
    kind: str = Field(description="entry format of the first occurrence (see tools.logs KIND_*)")
    status: int | None = None
    is_error: bool = Field(description="a trace/panic, an HTTP 5xx, or an error/fatal level")
    example: str = Field(description="one occurrence, redacted and truncated")


class SignatureChange(BaseModel):
    """A signature whose frequency differs between stable and canary."""

    id: str
    change: ChangeKind
    template: str
    kind: str
    level: str | None = None
    status: int | None = None
    is_error: bool
    stable_count: int
    canary_count: int
    stable_rate: float = Field(description="occurrences per 1,000 stable entries")
    canary_rate: float = Field(description="occurrences per 1,000 canary entries")
    rate_ratio: float | None = Field(description="canary_rate / stable_rate (None when stable_rate is 0)")
    p_value: float = Field(description="one-sided exact test: canary rate higher (new, grown) or lower (vanished)")
    significant: bool = Field(description="p_value below alpha after Bonferroni correction")
    importance: float = Field(description="sort key: severity tier x 100 + a bounded rate term")
    example: str


class SignatureDiff(BaseModel):
    """Canary against stable, signature by signature. Lists are sorted by importance."""

    stable_entries: int
    canary_entries: int
    signatures: int = Field(description="distinct signatures seen in either role")
    alpha: float
    min_ratio: float
    new: list[SignatureChange] = Field(default_factory=list)
    grown: list[SignatureChange] = Field(default_factory=list)
    vanished: list[SignatureChange] = Field(default_factory=list)

    def ranked(self) -> list[SignatureChange]:
        """New and grown signatures by importance, then the vanished ones."""
        return sorted(self.new + self.grown, key=_change_order) + self.vanished


# --- mining ------------------------------------------------------------------------------------


def _severity(kind: str, level: str | None, status: int | None) -> int:
    """3 trace/panic/fatal, 2 error level or 5xx, 1 warn level or 4xx, 0 anything else."""
    if kind in TRACE_KINDS or level == "fatal":
        return 3
    if level == "error" or (status is not None and status >= 500):
        return 2
    if level == "warn" or (status is not None and status >= 400):
        return 1
    return 0


class _Sig:
    __slots__ = ("partition", "cluster_id", "kind", "level", "status", "examples")

    def __init__(self, partition: tuple[int | None, bool], cluster_id: int, entry: LogEntry) -> None:
        self.partition = partition
        self.cluster_id = cluster_id
        self.kind = entry.kind
        self.level = entry.level
        self.status = entry.status
        self.examples: dict[str, str] = {}


class SignatureMiner:
    """Mines the entries of several roles (stable, canary) into shared signatures.

    `sim_th` is Drain's similarity threshold: higher keeps more templates apart. 0.7 is stricter
    than Drain3's default (0.4) because the masks already remove the variable parts, and a new
    error must not be absorbed into a similar-looking stable template.

    `cache_size` bounds each of the two caches (raw text and masked text -> signature); a full
    cache is emptied and refills with what comes next, so memory stays bounded and lines that keep
    coming back keep hitting the cache however many one-off lines went before.
    """

    def __init__(
        self,
        *,
        sim_th: float = 0.7,
        depth: int = 4,
        max_example_chars: int = 500,
        cache_size: int = 100_000,
    ) -> None:
        self._sim_th = sim_th
        self._depth = depth
        self._max_example_chars = max_example_chars
        self._cache_size = cache_size
        self._miners: dict[tuple[int | None, bool], TemplateMiner] = {}
        self._sigs: list[_Sig] = []
        self._by_cluster: dict[tuple[tuple[int | None, bool], int], int] = {}
        self._raw: dict[str, int] = {}
        self._masked: dict[tuple[tuple[int | None, bool], str], int] = {}
        self._counts: dict[str, list[int]] = {}
        self._entries: dict[str, int] = {}

    # The hot path: `tap` inlines the cache hit; `_slow` handles everything else.
    def _slow(self, entry: LogEntry, text: str) -> int:
        partition = (entry.status, entry.kind in TRACE_KINDS)
        masked = mask(redact(text))
        key = (partition, masked)
        index = self._masked.get(key)
        if index is None:
            miner = self._miners.get(partition)
            if miner is None:
                miner = self._miners[partition] = TemplateMiner(config=_miner_config(self._sim_th, self._depth))
            cluster_id = miner.add_log_message(masked)["cluster_id"]
            index = self._by_cluster.get((partition, cluster_id))
            if index is None:
                index = len(self._sigs)
                self._sigs.append(_Sig(partition, cluster_id, entry))
                self._by_cluster[(partition, cluster_id)] = index
                for counts in self._counts.values():
                    counts.append(0)
            if len(self._masked) >= self._cache_size:
                self._masked.clear()
            self._masked[key] = index
        sig = self._sigs[index]
        if entry.level is not None and (sig.level is None or LEVEL_RANK[entry.level] > LEVEL_RANK[sig.level]):
            sig.level = entry.level
        if len(self._raw) >= self._cache_size:
            self._raw.clear()
        self._raw[text] = index
        return index

    def _role(self, role: str) -> list[int]:
        counts = self._counts.get(role)
        if counts is None:
            counts = self._counts[role] = [0] * len(self._sigs)
            self._entries[role] = 0
        return counts

    def add(self, entry: LogEntry, role: str = "stable") -> str:
        """Count one entry for `role`; returns the id of its signature."""
        counts = self._role(role)
        text = entry.signature_text
        index = self._raw.get(text)
        if index is None:
            index = self._slow(entry, text)
        if counts[index] == 0:
            self._sigs[index].examples.setdefault(role, entry.text)
        counts[index] += 1
        self._entries[role] += 1
        return _sig_id(index)

    def tap(self, entries: Iterable[LogEntry], role: str = "stable") -> Iterator[LogEntry]:
        """Count each entry for `role` while passing it on, to mine and summarise in one stream:
        `summarize(miner.tap(iter_entries(lines), "canary"))`."""
        counts = self._role(role)
        raw_get = self._raw.get
        slow = self._slow
        sigs = self._sigs
        entries_of = self._entries
        for entry in entries:
            text = entry.message
            if text is None:
                text = entry.text
            index = raw_get(text)
            if index is None:
                index = slow(entry, text)
            if counts[index] == 0:
                sigs[index].examples.setdefault(role, entry.text)
            counts[index] += 1
            entries_of[role] += 1
            yield entry

    def add_all(self, entries: Iterable[LogEntry], role: str = "stable") -> int:
        """Count many entries for `role`; returns how many were added."""
        before = self.entries(role)
        for _ in self.tap(entries, role):
            pass
        return self.entries(role) - before

    def signature_of(self, entry: LogEntry) -> str | None:
        """The id of the signature `entry` belongs to, without counting it (None if no template fits)."""
        text = entry.signature_text
        index = self._raw.get(text)
        if index is None:
            partition = (entry.status, entry.kind in TRACE_KINDS)
            masked = mask(redact(text))
            index = self._masked.get((partition, masked))
            if index is None:
                miner = self._miners.get(partition)
                cluster = miner.match(masked) if miner is not None else None
                if cluster is None:
                    return None
                index = self._by_cluster.get((partition, cluster.cluster_id))
                if index is None:
                    return None
        return _sig_id(index)

    def entries(self, role: str) -> int:
        """How many entries of `role` were added."""
        return self._entries.get(role, 0)

    @property
    def roles(self) -> list[str]:
        return list(self._counts)

    def _template(self, sig: _Sig) -> str:
        cluster = self._miners[sig.partition].drain.id_to_cluster.get(sig.cluster_id)
        return cluster.get_template() if cluster is not None else ""

    def _example(self, sig: _Sig, prefer: tuple[str, ...] = ()) -> str:
        text = next((sig.examples[role] for role in prefer if role in sig.examples), None)
        if text is None:
            text = next(iter(sig.examples.values()), "")
        text = redact(text)  # before truncating, so a cut never splits a secret out of its pattern
        limit = self._max_example_chars
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def _signature(self, index: int, prefer: tuple[str, ...] = ()) -> Signature:
        sig = self._sigs[index]
        counts = {role: counts[index] for role, counts in self._counts.items() if counts[index]}
        return Signature(
            id=_sig_id(index),
            template=self._template(sig),
            count=sum(counts.values()),
            counts=counts,
            level=sig.level,
            kind=sig.kind,
            status=sig.status,
            is_error=_severity(sig.kind, sig.level, sig.status) >= 2,
            example=self._example(sig, prefer),
        )

    def signatures(self, role: str | None = None, limit: int | None = None) -> list[Signature]:
        """Signatures seen in `role` (all roles when None), most frequent first."""
        if role is not None:
            counts = self._counts.get(role, [])
            order = [i for i in range(len(counts)) if counts[i]]
            order.sort(key=lambda i: (-counts[i], i))
            prefer: tuple[str, ...] = (role,)
        else:
            totals = [sum(c[i] for c in self._counts.values()) for i in range(len(self._sigs))]
            order = sorted(range(len(self._sigs)), key=lambda i: (-totals[i], i))
            prefer = ()
        if limit is not None:
            order = order[:limit]
        return [self._signature(i, prefer) for i in order]

    def diff(
        self,
        baseline: str = "stable",
        candidate: str = "canary",
        *,
        alpha: float = 0.01,
        min_ratio: float = 2.0,
        min_count: int = 3,
        limit: int | None = None,
    ) -> SignatureDiff:
        """Compare `candidate` (canary) with `baseline` (stable); see the module docstring.

        `limit` caps each list (after sorting by importance).
        """
        n_stable = self.entries(baseline)
        n_canary = self.entries(candidate)
        size = len(self._sigs)
        stable = np.array(self._counts.get(baseline) or [0] * size, dtype=np.int64)
        canary = np.array(self._counts.get(candidate) or [0] * size, dtype=np.int64)
        present = (stable + canary) > 0
        tested = int(present.sum())
        total = stable + canary
        # Under "same rate in both roles", the canary's share of a signature's occurrences is
        # Binomial(total, n_canary / (n_stable + n_canary)).
        share = n_canary / (n_stable + n_canary) if n_stable + n_canary else 0.5
        p_higher = stats.binom.sf(canary - 1, total, share)
        p_lower = stats.binom.cdf(canary, total, share)
        threshold = alpha / max(tested, 1)
        new: list[SignatureChange] = []
        grown: list[SignatureChange] = []
        vanished: list[SignatureChange] = []
        for index in np.flatnonzero(present):
            a, b = int(stable[index]), int(canary[index])
            stable_rate = 1000.0 * a / n_stable if n_stable else 0.0
            canary_rate = 1000.0 * b / n_canary if n_canary else 0.0
            ratio = canary_rate / stable_rate if stable_rate else None
            if a == 0:
                change: ChangeKind = "new"
                p = float(p_higher[index])
            elif b == 0:
                change = "vanished"
                p = float(p_lower[index])
            else:
                p = float(p_higher[index])
                if not (ratio is not None and ratio >= min_ratio and b >= min_count and p <= threshold):
                    continue
                change = "grown"
            sig = self._sigs[index]
            severity = _severity(sig.kind, sig.level, sig.status)
            item = SignatureChange(
                id=_sig_id(int(index)),
                change=change,
                template=self._template(sig),
                kind=sig.kind,
                level=sig.level,
                status=sig.status,
                is_error=severity >= 2,
                stable_count=a,
                canary_count=b,
                stable_rate=round(stable_rate, 6),
                canary_rate=round(canary_rate, 6),
                rate_ratio=round(ratio, 4) if ratio is not None else None,
                p_value=p,
                significant=p <= threshold,
                importance=_importance(change, severity, stable_rate if change == "vanished" else canary_rate),
                example=self._example(sig, (baseline,) if change == "vanished" else (candidate,)),
            )
            (new if change == "new" else grown if change == "grown" else vanished).append(item)
        for items in (new, grown, vanished):
            items.sort(key=_change_order)
            if limit is not None:
                del items[limit:]
        return SignatureDiff(
            stable_entries=n_stable,
            canary_entries=n_canary,
            signatures=tested,
            alpha=alpha,
            min_ratio=min_ratio,
            new=new,
            grown=grown,
            vanished=vanished,
        )


# Importance tiers: error-like new first (traces/panics above 5xx/ERROR), error-like grown, then
# warnings, then the rest; vanished signatures below all of them.
_TIERS = {
    ("new", 3): 9, ("new", 2): 8, ("grown", 3): 7, ("grown", 2): 6,
    ("new", 1): 5, ("grown", 1): 4, ("new", 0): 3, ("grown", 0): 2,
}


def _importance(change: ChangeKind, severity: int, rate: float) -> float:
    """Tier x 100 plus 99·r/(r+1) for the rate r per 1,000 entries: bounded, so tiers never mix."""
    tier = _TIERS.get((change, severity), 1 if severity >= 2 else 0)
    return round(tier * 100 + 99.0 * rate / (rate + 1.0), 6)


def _change_order(item: SignatureChange) -> tuple[float, int, int, str]:
    return (-item.importance, -max(item.canary_count, item.stable_count), len(item.id), item.id)


def _sig_id(index: int) -> str:
    return f"S{index + 1}"


def mine_signatures(entries: Iterable[LogEntry], *, role: str = "all", limit: int | None = None) -> list[Signature]:
    """Mine one set of entries into signatures, most frequent first."""
    miner = SignatureMiner()
    miner.add_all(entries, role)
    return miner.signatures(role, limit)


def diff_signatures(
    stable: Iterable[LogEntry],
    canary: Iterable[LogEntry],
    *,
    alpha: float = 0.01,
    min_ratio: float = 2.0,
    min_count: int = 3,
    limit: int | None = None,
) -> SignatureDiff:
    """Mine stable and canary entries in one miner and diff the canary against stable."""
    miner = SignatureMiner()
    miner.add_all(stable, "stable")
    miner.add_all(canary, "canary")
    return miner.diff("stable", "canary", alpha=alpha, min_ratio=min_ratio, min_count=min_count, limit=limit)
