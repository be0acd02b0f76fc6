"""The deterministic canary judge: statistics, not a model, decide whether the canary regressed.

It follows Kayenta's NetflixACAJudge (see `../shared/notes/judging-canaries.md`):

1. Every metric is classified on its own — canary against stable — as `pass`, `high`, `low` or
   `nodata`, with a statistical test at a confidence level *and* an allowed effect size *and* a
   minimum amount of data. A difference must be both significant and large enough to matter.
   - `proportion` metrics (events out of a total per role, e.g. HTTP 5xx out of all requests)
     use Fisher's exact test on the 2x2 table (SciPy's implementation stays fast for millions
     of requests), one-sided in each direction.
   - `samples` metrics (a list of values per role, e.g. request latencies or a p95 series)
     use the Mann-Whitney U (Wilcoxon rank-sum) test like Kayenta, one-sided in each direction,
     and the ratio of means canary/stable (Kayenta's default `meanRatio` effect measure).
   NaN and infinite values are removed first (Kayenta's default `nanStrategy: remove`).
2. Rows are combined into a score `pass / (pass + high + low) x 100` over scored metrics with
   data. A `low` on a metric whose bad direction is `increase` (a canary with *fewer* errors) is
   shown as `low` but is an improvement and counts like `pass`; the same holds for `high` on a
   `decrease` metric.
3. Overrides, in this order:
   - a canary pod that crash-loops, was OOMKilled, cannot pull its image, cannot create its
     container, failed, or stays not Ready while stable pods are Ready -> `abort`, score 0;
   - no canary pods at all -> `inconclusive` (a canary we cannot see is never promoted);
   - a critical metric (the error ratio by default) classified `high` (or `low` when its bad
     direction is `decrease`) -> `abort`, score 0, like Kayenta's critical metrics;
   - a critical metric without data in every source, or `nodata` on at least half of the
     scored metrics -> `inconclusive`, score 0 (Kayenta scores such a run 0; we never pass it);
   - a canary whose critical error ratio is at or above `unhealthy_ratio` while stable is just
     as bad -> `inconclusive` (not a canary regression, so no abort; but not healthy, so no
     promote: a person should look);
   - otherwise `promote` when the score reaches `pass_score` and no metric failed, `abort` when
     the score is below `marginal_score`, `inconclusive` in between (Argo's Kayenta provider
     treats the marginal band the same way).

Several sources: the same metric name may come from Prometheus and from logs. Both rows are
classified and shown with their source; either one failing fails the metric (and, for a
critical metric, the canary). A critical metric counts as missing only when every source of it
is `nodata`. A source that delivered no data at all (Prometheus not configured, no series for
these pods) is reported once and left out of the missing-data fraction, so the judge falls back
to the other source — "from Prometheus when available, from logs otherwise".

Known limits, shared with Kayenta: points of a Prometheus range query are autocorrelated, which
Mann-Whitney assumes away; the compare step queries non-overlapping rate windows to limit this.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator
from scipy import stats

ERROR_RATIO = "error_ratio"
REQUEST_RATE = "request_rate"
LATENCY = "latency"

Direction = Literal["increase", "decrease", "either"]
Classification = Literal["pass", "high", "low", "nodata"]
Verdict = Literal["promote", "abort", "inconclusive"]
Source = Literal["prometheus", "logs"]
MetricKind = Literal["proportion", "samples"]

IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"}
)
CONTAINER_CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
CRASH_LOOP_REASON = "CrashLoopBackOff"
OOM_REASON = "OOMKilled"


class JudgeConfig(BaseModel):
    """Thresholds of the judge. Every default is chosen to keep a bad canary from being promoted
    without aborting healthy canaries on noise.

    - `confidence_level` 0.98: the level Kayenta's production judge passes to its Mann-Whitney
      classifier. One analysis tests several correlated metrics (error ratio and latency from
      two sources, three quantiles) and Argo repeats the analysis every interval, so false
      alarms compound; the stricter level keeps them rare, while real regressions (tens of
      percent more errors or latency over hundreds of requests) still reach p-values far below
      0.02. The allowed effect sizes below carry most of the decision anyway.
    - Proportions (error ratio): the canary is `high` only when its ratio exceeds stable's by
      more than `proportion_allowed_absolute` (1 percentage point) AND by more than the factor
      `proportion_allowed_ratio` (1.5x) — both, so 0.1 % -> 0.3 % (tiny absolute) and
      20 % -> 21.5 % (tiny relative) both pass. `low` is symmetric; on a `decrease` metric (a
      success share) the factor applies to the complement, so 95 % -> 70 % success (5 % -> 30 %
      failures, 6x) is `low`.
    - Samples (latency, rates): `high` when the canary's mean is at least
      `samples_allowed_increase` (1.2 = +20 %) times stable's; `low` at or below
      `samples_allowed_decrease` (0.8 = -20 %).
    - Minimum data: `min_requests` 50 per role for proportions (Spinnaker's "at least 50 pieces
      of data per metric"); `min_samples` 8 values per role for sample series (with 3
      values per role Mann-Whitney cannot reach p < 0.02 at all — the smallest exact one-sided
      p is 1/20 — and with 4 only when every canary value beats every stable one; 8 keeps some
      power, and a 20-minute canary queried at one point a minute gives about 19).
    - `critical_metrics` ["error_ratio"]: failing one aborts on its own (score 0).
    - `muted_metrics` ["request_rate"]: classified and shown, never scored (traffic per pod
      depends on the rollout's weight, not on the canary's quality).
    - `nodata_inconclusive_fraction` 0.5: Kayenta's rule — half the metrics without data and
      the score means nothing.
    - `pass_score` 90 / `marginal_score` 75: the thresholds of Argo Rollouts' Kayenta example.
    - `unhealthy_ratio` 0.5: a canary whose critical error ratio is at least 50 % is never
      promoted, even when stable is as bad.
    - `not_ready_grace_seconds` 120: a canary pod not Ready for longer than this (while stable
      pods are Ready) fails the canary; when the evidence does not say for how long, the pod
      counts as not Ready for long.
    """

    confidence_level: float = Field(default=0.98, gt=0.5, lt=1.0)
    proportion_allowed_absolute: float = Field(default=0.01, ge=0.0, le=1.0)
    proportion_allowed_ratio: float = Field(default=1.5, ge=1.0)
    samples_allowed_increase: float = Field(default=1.2, ge=1.0)
    samples_allowed_decrease: float = Field(default=0.8, gt=0.0, le=1.0)
    min_requests: int = Field(default=50, ge=1)
    min_samples: int = Field(default=8, ge=3)
    critical_metrics: list[str] = Field(default_factory=lambda: [ERROR_RATIO])
    muted_metrics: list[str] = Field(default_factory=lambda: [REQUEST_RATE])
    nodata_inconclusive_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    pass_score: int = Field(default=90, ge=0, le=100)
    marginal_score: int = Field(default=75, ge=0, le=100)
    unhealthy_ratio: float = Field(default=0.5, gt=0.0, le=1.0)
    not_ready_grace_seconds: float = Field(default=120.0, ge=0.0)

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> JudgeConfig:
        if self.marginal_score > self.pass_score:
            raise ValueError("marginal_score must not exceed pass_score")
        return self


class MetricInput(BaseModel):
    """One metric of both roles, ready to judge.

    `kind="proportion"`: fill `stable_events/stable_total` and `canary_events/canary_total`
    (e.g. 5xx responses and all responses). `kind="samples"`: fill `stable_samples` and
    `canary_samples` (e.g. request latencies, or the points of a p95 series); NaN, infinite and
    null values are dropped before testing. Leave the data empty and put the cause in `note`
    when a source could not provide it; the row becomes `nodata` with that note.
    `direction` is the bad direction: `increase` for errors and latency.
    `critical`/`muted` default to membership in `JudgeConfig.critical_metrics`/`muted_metrics`.
    `allowed_increase`/`allowed_decrease` override the config's effect sizes for this metric
    (samples: ratio of means; proportions: the relative factor, e.g. 1.5), and `allowed_absolute`
    the absolute difference allowed for a proportion (0 for events that should never appear).
    """

    name: str = Field(min_length=1)
    source: Source
    kind: MetricKind
    direction: Direction = "increase"
    critical: bool | None = None
    muted: bool | None = None
    unit: str = ""
    stable_events: int | None = Field(default=None, ge=0)
    stable_total: int | None = Field(default=None, ge=0)
    canary_events: int | None = Field(default=None, ge=0)
    canary_total: int | None = Field(default=None, ge=0)
    stable_samples: list[float | None] = Field(default_factory=list)
    canary_samples: list[float | None] = Field(default_factory=list)
    allowed_increase: float | None = Field(default=None, gt=0.0)
    allowed_decrease: float | None = Field(default=None, gt=0.0)
    allowed_absolute: float | None = Field(default=None, ge=0.0, le=1.0)
    note: str | None = None

    @model_validator(mode="after")
    def _events_within_totals(self) -> MetricInput:
        for role in ("stable", "canary"):
            events, total = getattr(self, f"{role}_events"), getattr(self, f"{role}_total")
            if events is not None and total is not None and events > total:
                raise ValueError(f"{self.name}: {role} events ({events}) exceed {role} total ({total})")
        return self

    @classmethod
    def from_counts(
        cls,
        name: str,
        source: Source,
        stable: tuple[int, int] | None,
        canary: tuple[int, int] | None,
        **fields: object,
    ) -> MetricInput:
        """A proportion metric from `(events, total)` per role; `None` for a role without data."""
        stable_events, stable_total = stable if stable is not None else (None, None)
        canary_events, canary_total = canary if canary is not None else (None, None)
        return cls(
            name=name,
            source=source,
            kind="proportion",
            stable_events=stable_events,
            stable_total=stable_total,
            canary_events=canary_events,
            canary_total=canary_total,
            **fields,
        )

    @classmethod
    def from_samples(
        cls,
        name: str,
        source: Source,
        stable: list[float | None],
        canary: list[float | None],
        **fields: object,
    ) -> MetricInput:
        """A samples metric from one list of values per role."""
        return cls(
            name=name, source=source, kind="samples", stable_samples=list(stable), canary_samples=list(canary), **fields
        )


class PodHealth(BaseModel):
    """What the judge needs to know about one pod (from the pod's status).

    `restarts` is the application container's restart count; `waiting_reason` its current
    waiting reason (CrashLoopBackOff, ImagePullBackOff, CreateContainerConfigError, ...);
    `terminated_reason` its current terminated reason, if it is terminated right now;
    `last_termination_reason`/`last_exit_code` come from `lastState.terminated`.
    `not_ready_seconds`: how long the pod has not been Ready (from the Ready condition's
    lastTransitionTime), `age_seconds`: time since the pod started; both optional.
    """

    name: str
    role: Literal["stable", "canary"]
    phase: str = "Running"
    ready: bool = True
    restarts: int = Field(default=0, ge=0)
    waiting_reason: str | None = None
    waiting_message: str | None = None
    terminated_reason: str | None = None
    last_termination_reason: str | None = None
    last_exit_code: int | None = None
    not_ready_seconds: float | None = Field(default=None, ge=0.0)
    age_seconds: float | None = Field(default=None, ge=0.0)


class MetricRow(BaseModel):
    """One classified metric: a row of the judge's table."""

    metric: str
    source: Source
    kind: MetricKind
    direction: Direction
    unit: str = ""
    stable_value: float | None = None
    canary_value: float | None = None
    stable_count: int | None = None
    canary_count: int | None = None
    test: str = "none"
    p_value: float | None = None
    effect: float | None = None
    difference: float | None = None
    classification: Classification
    failed: bool = False
    critical: bool = False
    muted: bool = False
    reason: str


class JudgeResult(BaseModel):
    """The judge's decision. `rows` is the per-metric table; `pod_findings` and `reasons` are
    sentences a person can read; `summary` is one line."""

    verdict: Verdict
    score: int = Field(ge=0, le=100)
    rows: list[MetricRow] = Field(default_factory=list)
    pod_findings: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    summary: str
    failed_metrics: list[str] = Field(default_factory=list)
    nodata_fraction: float = 0.0
    confidence_level: float
    pass_score: int
    marginal_score: int

    def table(self) -> str:
        """The per-metric rows as a Markdown table."""
        header = "| metric | source | stable | canary | test | p-value | effect | result | reason |"
        lines = [header, "|---|---|---|---|---|---|---|---|---|"]
        for row in self.rows:
            result = row.classification.upper() if row.failed else row.classification
            if row.critical:
                result += " (critical)"
            if row.muted:
                result += " (info)"
            cells = [
                row.metric,
                row.source,
                _format_value(row.stable_value, row, row.stable_count),
                _format_value(row.canary_value, row, row.canary_count),
                row.test,
                _format_p(row.p_value),
                "–" if row.effect is None else f"{row.effect:.2f}x",
                result,
                row.reason,
            ]
            lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |")
        if not self.rows:
            lines.append("| (no metrics) | | | | | | | | |")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Verdict, score, pod findings, the metric table and the reasons, as Markdown."""
        parts = [
            f"**Judge verdict: {self.verdict.upper()}** — score {self.score}/100 "
            f"(promote at >= {self.pass_score}, abort below {self.marginal_score}; "
            f"confidence level {self.confidence_level:.0%})",
            "",
            self.summary,
        ]
        if self.pod_findings:
            parts += ["", "Pod findings:"] + [f"- {finding}" for finding in self.pod_findings]
        parts += ["", self.table()]
        if self.reasons:
            parts += ["", "Reasons:"] + [f"- {reason}" for reason in self.reasons]
        return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# formatting


def _format_p(p: float | None) -> str:
    if p is None:
        return "–"
    if p < 1e-300:
        return "<1e-300"
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.3f}"


def _p_phrase(p: float) -> str:
    text = _format_p(p)
    return f"p{text}" if text.startswith("<") else f"p={text}"


def _format_number(value: float, unit: str) -> str:
    if unit == "s":
        if abs(value) < 1.0:
            return f"{value * 1000:.1f} ms"
        return f"{value:.3g} s"
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


def _format_value(value: float | None, row: MetricRow, count: int | None) -> str:
    if value is None:
        return "–" if count is None else f"– (n={count})"
    if row.kind == "proportion":
        return f"{value:.2%} (n={count})"
    return f"{_format_number(value, row.unit)} (n={count})"


def _pct(events: int, total: int) -> str:
    return f"{events / total:.2%} ({events}/{total})"


# --------------------------------------------------------------------------------------------
# per-metric classification


def _effect_ratio(canary: float, stable: float) -> float | None:
    """canary relative to stable as a factor (1.0 = equal); None when stable is 0 and canary not."""
    if stable == 0.0:
        return 1.0 if canary == 0.0 else None
    return 1.0 + (canary - stable) / abs(stable)


def _p(value: float) -> float:
    return 1.0 if value is None or not math.isfinite(float(value)) else float(value)


def _is_failure(classification: Classification, direction: Direction) -> bool:
    if classification == "high":
        return direction in ("increase", "either")
    if classification == "low":
        return direction in ("decrease", "either")
    return False


def _reported_p(classification: Classification, direction: Direction, p_high: float, p_low: float) -> float:
    if classification == "high":
        return p_high
    if classification == "low":
        return p_low
    if direction == "increase":
        return p_high
    if direction == "decrease":
        return p_low
    return min(1.0, 2.0 * min(p_high, p_low))


def _row(metric: MetricInput, critical: bool, muted: bool, **fields: object) -> MetricRow:
    row = MetricRow(
        metric=metric.name,
        source=metric.source,
        kind=metric.kind,
        direction=metric.direction,
        unit=metric.unit,
        critical=critical,
        muted=muted,
        **fields,
    )
    row.failed = _is_failure(row.classification, row.direction)
    return row


def _nodata(metric: MetricInput, critical: bool, muted: bool, reason: str, **fields: object) -> MetricRow:
    if metric.note:
        reason = f"{reason} ({metric.note})"
    return _row(metric, critical, muted, classification="nodata", reason=reason, **fields)


def _too_few(counts: dict[str, int], minimum: int, noun: str) -> str | None:
    short = [f"{count} {role} {noun} < {minimum} required" for role, count in counts.items() if count < minimum]
    return "; ".join(short) if short else None


def _side_alpha(config: JudgeConfig, direction: Direction) -> float:
    """The significance level of each one-sided test (halved for `either`: a two-sided test)."""
    alpha = 1.0 - config.confidence_level
    return alpha / 2.0 if direction == "either" else alpha


def _decide(
    direction: Direction,
    test: str,
    compared: str,
    p_values: tuple[float, float],
    side_alpha: float,
    big: tuple[bool, bool],
    limits: str,
) -> tuple[Classification, str]:
    """Classification and reason from the one-sided p-values (higher, lower) and whether the
    effect in each direction exceeds the allowed size."""
    (p_high, p_low), (big_up, big_down) = p_values, big
    if p_high < side_alpha and big_up:
        return "high", f"{compared}: significantly higher, {test} {_p_phrase(p_high)} < {side_alpha:g}"
    if p_low < side_alpha and big_down:
        reason = f"{compared}: significantly lower, {test} {_p_phrase(p_low)} < {side_alpha:g}"
        return "low", reason + (" — an improvement, not a failure" if direction == "increase" else "")
    significant = [p for p in (p_high, p_low) if p < side_alpha]
    if significant:
        p = _p_phrase(significant[0])
        return "pass", f"{compared}: significant ({test} {p}) but within the allowed effect ({limits})"
    p = _p_phrase(_reported_p("pass", direction, p_high, p_low))
    return "pass", f"{compared}: no significant difference ({test} {p})"


def _classify_proportion(metric: MetricInput, config: JudgeConfig, critical: bool, muted: bool) -> MetricRow:
    se, st, ce, ct = metric.stable_events, metric.stable_total, metric.canary_events, metric.canary_total
    if se is None or st is None or ce is None or ct is None:
        missing = [role for role, total in (("stable", st), ("canary", ct)) if total is None]
        missing += [role for role, events in (("stable", se), ("canary", ce)) if events is None and role not in missing]
        reason = f"no counts for {' and '.join(missing)}"
        return _nodata(metric, critical, muted, reason, stable_count=st, canary_count=ct)
    too_few = _too_few({"stable": st, "canary": ct}, config.min_requests, "requests")
    if too_few:
        return _nodata(
            metric,
            critical,
            muted,
            too_few,
            stable_value=se / st if st else None,
            canary_value=ce / ct if ct else None,
            stable_count=st,
            canary_count=ct,
        )
    stable_rate, canary_rate = se / st, ce / ct
    table = [[ce, ct - ce], [se, st - se]]
    p_high = _p(stats.fisher_exact(table, alternative="greater").pvalue)
    p_low = _p(stats.fisher_exact(table, alternative="less").pvalue)
    side_alpha = _side_alpha(config, metric.direction)
    ratio_allowed = metric.allowed_increase or config.proportion_allowed_ratio
    ratio_allowed_down = 1.0 / metric.allowed_decrease if metric.allowed_decrease else config.proportion_allowed_ratio
    difference = canary_rate - stable_rate
    ratio = _effect_ratio(canary_rate, stable_rate)
    absolute = config.proportion_allowed_absolute if metric.allowed_absolute is None else metric.allowed_absolute
    limits = f"limits {absolute * 100:g} pp and {ratio_allowed:g}x"
    big_up = difference > absolute and (ratio is None or ratio > ratio_allowed)
    if metric.direction == "decrease":
        # A falling success share is a growing failure share: apply the factor to the complement.
        shrink = (1.0 - canary_rate) > ratio_allowed_down * (1.0 - stable_rate)
    else:
        shrink = canary_rate * ratio_allowed_down < stable_rate
    big_down = -difference > absolute and shrink
    factor = "from zero" if ratio is None else f"{ratio:.2f}x"
    compared = f"canary {_pct(ce, ct)} vs stable {_pct(se, st)} ({difference * 100:+.2f} pp, {factor})"
    classification, reason = _decide(
        metric.direction, "Fisher's exact", compared, (p_high, p_low), side_alpha, (big_up, big_down), limits
    )
    return _row(
        metric,
        critical,
        muted,
        classification=classification,
        stable_value=stable_rate,
        canary_value=canary_rate,
        stable_count=st,
        canary_count=ct,
        test="fisher_exact",
        p_value=_reported_p(classification, metric.direction, p_high, p_low),
        effect=ratio,
        difference=difference,
        reason=reason,
    )


def _clean(values: list[float | None]) -> np.ndarray:
    array = np.asarray([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def _classify_samples(metric: MetricInput, config: JudgeConfig, critical: bool, muted: bool) -> MetricRow:
    stable, canary = _clean(metric.stable_samples), _clean(metric.canary_samples)
    dropped = len(metric.stable_samples) + len(metric.canary_samples) - len(stable) - len(canary)
    dropped_note = f"; {dropped} NaN/infinite/empty values removed" if dropped else ""
    too_few = _too_few({"stable": len(stable), "canary": len(canary)}, config.min_samples, "values")
    stable_mean = float(stable.mean()) if len(stable) else None
    canary_mean = float(canary.mean()) if len(canary) else None
    common = dict(
        stable_value=stable_mean, canary_value=canary_mean, stable_count=len(stable), canary_count=len(canary)
    )
    if too_few:
        if metric.note and not metric.stable_samples and not metric.canary_samples:
            return _row(metric, critical, muted, classification="nodata", reason=metric.note, **common)
        return _nodata(metric, critical, muted, too_few + dropped_note, **common)
    assert stable_mean is not None and canary_mean is not None
    unit = metric.unit
    difference = canary_mean - stable_mean
    ratio = _effect_ratio(canary_mean, stable_mean)
    medians = (
        f"median canary {_format_number(float(np.median(canary)), unit)} vs stable "
        f"{_format_number(float(np.median(stable)), unit)}"
    )
    factor = "from zero" if ratio is None else f"{ratio:.2f}x"
    compared = (
        f"mean canary {_format_number(canary_mean, unit)} vs stable {_format_number(stable_mean, unit)} "
        f"({factor}; {medians})"
    )
    if float(np.ptp(np.concatenate([stable, canary]))) == 0.0:
        return _row(
            metric,
            critical,
            muted,
            classification="pass",
            test="mann_whitney_u",
            p_value=1.0,
            effect=1.0,
            difference=0.0,
            reason=f"every value in both roles is {_format_number(stable_mean, unit)}: no difference{dropped_note}",
            **common,
        )
    p_high = _p(stats.mannwhitneyu(canary, stable, alternative="greater").pvalue)
    p_low = _p(stats.mannwhitneyu(canary, stable, alternative="less").pvalue)
    side_alpha = _side_alpha(config, metric.direction)
    allowed_up = metric.allowed_increase or config.samples_allowed_increase
    allowed_down = metric.allowed_decrease or config.samples_allowed_decrease
    big_up = difference > 0 and (ratio is None or ratio >= allowed_up)
    big_down = difference < 0 and ratio is not None and ratio <= allowed_down
    limits = f"{allowed_down:g}x to {allowed_up:g}x"
    classification, reason = _decide(
        metric.direction, "Mann-Whitney U", compared, (p_high, p_low), side_alpha, (big_up, big_down), limits
    )
    return _row(
        metric,
        critical,
        muted,
        classification=classification,
        test="mann_whitney_u",
        p_value=_reported_p(classification, metric.direction, p_high, p_low),
        effect=ratio,
        difference=difference,
        reason=reason + dropped_note,
        **common,
    )


def classify_metric(metric: MetricInput, config: JudgeConfig | None = None) -> MetricRow:
    """Classify one metric (canary against stable) as pass / high / low / nodata."""
    config = config or JudgeConfig()
    critical = metric.critical if metric.critical is not None else metric.name in config.critical_metrics
    muted = metric.muted if metric.muted is not None else metric.name in config.muted_metrics
    if metric.kind == "proportion":
        return _classify_proportion(metric, config, critical, muted)
    return _classify_samples(metric, config, critical, muted)


# --------------------------------------------------------------------------------------------
# pods


def _termination(pod: PodHealth) -> str:
    parts = [pod.last_termination_reason or "unknown reason"]
    if pod.last_exit_code is not None:
        parts.append(f"exit code {pod.last_exit_code}")
    return ", ".join(parts)


def _pod_problem(pod: PodHealth) -> str | None:
    """Why this pod is unhealthy, as a sentence fragment, or None."""
    message = f": {pod.waiting_message}" if pod.waiting_message else ""
    if pod.waiting_reason in IMAGE_PULL_REASONS:
        return f"cannot pull its image ({pod.waiting_reason}{message})"
    if pod.waiting_reason in CONTAINER_CONFIG_REASONS:
        return f"cannot create its container ({pod.waiting_reason}{message})"
    if OOM_REASON in (pod.last_termination_reason, pod.terminated_reason):
        return f"was OOMKilled (out of memory; exit code {pod.last_exit_code or 137}), {pod.restarts} restart(s)"
    if pod.waiting_reason == CRASH_LOOP_REASON:
        return f"is in CrashLoopBackOff after {pod.restarts} restart(s) (last termination: {_termination(pod)})"
    if pod.restarts > 0 and (pod.last_termination_reason or pod.last_exit_code not in (None, 0)):
        return f"restarted {pod.restarts} time(s) (last termination: {_termination(pod)})"
    if pod.phase == "Failed":
        return f"failed (phase Failed{', ' + pod.terminated_reason if pod.terminated_reason else ''})"
    return None


def _not_ready_for_long(pod: PodHealth, config: JudgeConfig) -> tuple[bool, str]:
    if pod.ready or pod.phase == "Succeeded":
        return False, ""
    seconds = pod.not_ready_seconds if pod.not_ready_seconds is not None else pod.age_seconds
    if seconds is None:
        return True, "is not Ready"
    if seconds >= config.not_ready_grace_seconds:
        return True, f"has not been Ready for {seconds:.0f} s (grace {config.not_ready_grace_seconds:.0f} s)"
    return False, f"is not Ready yet ({seconds:.0f} s, within the {config.not_ready_grace_seconds:.0f} s grace)"


def _judge_pods(
    stable_pods: list[PodHealth], canary_pods: list[PodHealth], config: JudgeConfig
) -> tuple[list[str], list[str], bool]:
    """(failures, notes, stable_unready): failures fail the canary; notes are information."""
    failures: list[str] = []
    notes: list[str] = []
    stable_ready = any(pod.ready for pod in stable_pods)
    stable_unready = bool(stable_pods) and not stable_ready
    for pod in canary_pods:
        problem = _pod_problem(pod)
        if problem:
            failures.append(f"canary pod {pod.name} {problem}")
            continue
        long, text = _not_ready_for_long(pod, config)
        if long and not stable_unready:
            failures.append(
                f"canary pod {pod.name} {text}"
                + (" while stable pods are Ready" if stable_pods else " and there is no stable pod to compare")
            )
        elif text:
            notes.append(f"canary pod {pod.name} {text}")
    for pod in stable_pods:
        problem = _pod_problem(pod)
        if problem:
            notes.append(f"stable pod {pod.name} {problem} — the problem is not new with the canary")
        elif not pod.ready:
            notes.append(f"stable pod {pod.name} is not Ready")
    if stable_unready:
        notes.append("no stable pod is Ready, so canary readiness cannot be compared")
    return failures, notes, stable_unready


# --------------------------------------------------------------------------------------------
# the verdict


def _rows_label(rows: list[MetricRow]) -> str:
    return ", ".join(f"{row.metric} ({row.source})" for row in rows)


def judge(
    metrics: list[MetricInput],
    stable_pods: list[PodHealth],
    canary_pods: list[PodHealth],
    config: JudgeConfig | None = None,
) -> JudgeResult:
    """Judge the canary against stable: per-metric rows, pod findings, score and verdict.

    Deterministic: the same inputs always give the same result. See the module docstring for
    the rules and `JudgeConfig` for the thresholds.
    """
    config = config or JudgeConfig()
    rows = [classify_metric(metric, config) for metric in metrics]
    pod_failures, pod_notes, stable_unready = _judge_pods(stable_pods, canary_pods, config)
    reasons: list[str] = []

    scored = [row for row in rows if not row.muted]
    answering = {row.source for row in scored if row.classification != "nodata"}
    for source in sorted({row.source for row in scored} - answering):
        reasons.append(f"no {source} data for any metric; judged on the other sources only")
    counted = [row for row in scored if row.source in answering]
    with_data = [row for row in counted if row.classification != "nodata"]
    nodata_fraction = 1.0 if not counted else (len(counted) - len(with_data)) / len(counted)
    good = [row for row in with_data if not row.failed]
    failed_rows = [row for row in scored if row.failed]
    computed_score = math.floor(100 * len(good) / len(with_data)) if with_data else 0

    critical_names = sorted({row.metric for row in scored if row.critical})
    critical_failed = [row for row in failed_rows if row.critical]
    critical_missing = [
        name
        for name in critical_names
        if all(row.classification == "nodata" for row in scored if row.critical and row.metric == name)
    ]
    critical_missing += [f"{name} (not measured)" for name in config.critical_metrics if name not in critical_names]
    unhealthy = [
        row
        for row in scored
        if row.critical
        and row.kind == "proportion"
        and row.direction == "increase"
        and not row.failed
        and row.classification != "nodata"
        and row.canary_value is not None
        and row.canary_value >= config.unhealthy_ratio
    ]

    verdict: Verdict
    score = computed_score
    if pod_failures:
        verdict, score = "abort", 0
        reasons.insert(0, "canary pods are unhealthy: " + "; ".join(pod_failures))
        summary = f"abort: {pod_failures[0]}" + (f" (+{len(pod_failures) - 1} more)" if len(pod_failures) > 1 else "")
    elif not canary_pods:
        verdict, score = "inconclusive", 0
        reasons.insert(0, "no canary pods were found, so there is nothing to judge; a canary is never promoted unseen")
        summary = "inconclusive: no canary pods found"
    elif critical_failed:
        verdict, score = "abort", 0
        failures = "; ".join(f"{r.metric} ({r.source}): {r.reason}" for r in critical_failed)
        reasons.insert(0, f"critical metric failed: {failures}")
        first = critical_failed[0]
        summary = f"abort: critical metric {first.metric} is {first.classification} — {first.reason}"
    elif critical_missing:
        verdict, score = "inconclusive", 0
        reasons.insert(0, f"critical metric without data: {', '.join(critical_missing)}; never a pass without it")
        summary = f"inconclusive: no usable data for critical metric {critical_missing[0]}"
    elif nodata_fraction >= config.nodata_inconclusive_fraction:
        verdict, score = "inconclusive", 0
        reasons.insert(
            0,
            f"{nodata_fraction:.0%} of the metrics have no data "
            f"(at least {config.nodata_inconclusive_fraction:.0%} makes the verdict inconclusive)",
        )
        summary = f"inconclusive: {nodata_fraction:.0%} of the metrics have no data"
    elif unhealthy:
        verdict = "inconclusive"
        row = unhealthy[0]
        reasons.insert(
            0,
            f"{row.metric} ({row.source}) is {row.canary_value:.0%} in the canary and "
            f"{row.stable_value:.0%} in stable: not a canary regression, "
            "but not healthy either — a person should look",
        )
        summary = f"inconclusive: both versions are unhealthy ({row.metric} {row.canary_value:.0%} in the canary)"
    elif stable_unready:
        verdict = "inconclusive"
        reasons.insert(0, "no stable pod is Ready; the comparison has no healthy baseline")
        summary = "inconclusive: no Ready stable pod to compare against"
    elif computed_score >= config.pass_score and not failed_rows:
        verdict = "promote"
        summary = f"promote: {len(good)}/{len(with_data)} metrics pass, score {computed_score}"
    elif computed_score < config.marginal_score:
        verdict = "abort"
        summary = f"abort: score {computed_score} < {config.marginal_score}; failing: {_rows_label(failed_rows)}"
    else:
        verdict = "inconclusive"
        summary = f"inconclusive: score {computed_score} is marginal" + (
            f"; failing: {_rows_label(failed_rows)}" if failed_rows else ""
        )
    for row in failed_rows:
        if not row.critical:
            reasons.append(f"{row.metric} ({row.source}) is {row.classification}: {row.reason}")
    if nodata_fraction and nodata_fraction < config.nodata_inconclusive_fraction:
        missing = [row for row in counted if row.classification == "nodata"]
        reasons.append(f"no data for {_rows_label(missing)}")
    return JudgeResult(
        verdict=verdict,
        score=score,
        rows=rows,
        pod_findings=pod_failures + pod_notes,
        reasons=reasons,
        summary=summary,
        failed_metrics=sorted({row.metric for row in failed_rows}),
        nodata_fraction=round(nodata_fraction, 4),
        confidence_level=config.confidence_level,
        pass_score=config.pass_score,
        marginal_score=config.marginal_score,
    )
