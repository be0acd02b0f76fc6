"""One plugin analysis end to end: record lookup, single flight, evidence, judge, model vote, gate,
remediation and the record. `AnalysisService.analyze` always returns a decodable answer."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.adk.sessions import BaseSessionService, DatabaseSessionService

from selfheal.analysis.agent_run import AgentRunResult, run_agent, session_id_for
from selfheal.analysis.metrics import ServiceMetrics
from selfheal.analysis.voting import JudgeView, combine, judge_answer
from selfheal.config import Settings
from selfheal.contract import AnalyzeRequest, AnalyzeResponse, plugin_prompt
from selfheal.guardrails import JUDGE_STATE
from selfheal.llm import voting_models
from selfheal.state import AnalysisRecord, StateStore
from tools import evidence as evidence_tools
from tools import k8s
from tools.remediation import file_remediation
from tools.remediation_agent import remediation_request

log = logging.getLogger(__name__)

# Time kept back from the deadline to build and record the answer.
_ANSWER_MARGIN_SECONDS = 2.0
# How long the verdict may wait for the issue/PR link before it goes out without one.
_REMEDIATION_WAIT_SECONDS = 10.0
# Longest a request waits for the rollout's revision or for the state store (record lookup or write)
# before it goes on without them; the slow call itself finishes in the background.
_LOOKUP_SECONDS = 5.0


@dataclass
class _Outcome:
    response: AnalyzeResponse
    judge_verdict: str
    report: str
    recordable: bool = True  # False for answers forced by missing evidence: never replayed from the record


def _selectors(request: AnalyzeRequest) -> str:
    return f"{request.context.stableSelector}|{request.context.canarySelector}"


def _model_answered(response: AnalyzeResponse) -> bool:
    return any(result.error is None for result in response.modelResults or [])


class Overloaded(Exception):
    """Too many analyses are running or queued; the caller should retry later."""

    def __init__(self, retry_after: int):
        super().__init__(f"overloaded; retry after {retry_after}s")
        self.retry_after = retry_after


class AnalysisService:
    def __init__(self, settings: Settings, store: StateStore, metrics: ServiceMetrics | None = None,
                 session_service: BaseSessionService | None = None):
        self.settings = settings
        self.store = store
        self.metrics = metrics or ServiceMetrics()
        self.session_service = session_service or DatabaseSessionService(db_engine=store.engine)
        self.owner = f"selfheal-{uuid.uuid4().hex[:12]}"
        self._slots = asyncio.Semaphore(settings.max_concurrent_analyses)
        self._waiting = 0
        self._inflight: dict[tuple[str, str, str], asyncio.Task[AnalyzeResponse]] = {}
        self._background: set[asyncio.Task] = set()
        self._evidence_pool = ThreadPoolExecutor(max_workers=settings.max_concurrent_analyses + 1,
                                                 thread_name_prefix="selfheal-evidence")

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._evidence_pool.shutdown(wait=False, cancel_futures=True)

    # --- entry point ---------------------------------------------------------------------
    async def analyze(self, request: AnalyzeRequest) -> AnalyzeResponse:
        started = time.perf_counter()
        context = request.context
        canary_hash = await self._canary_hash(context.namespace, context.rolloutName, started)
        # An answer is about these pods: other selectors on the same revision are another question.
        key = (request.memory_key, canary_hash, _selectors(request))

        cached = await self._cached(request, canary_hash, started)
        if cached is not None:
            self.metrics.cache_hits.inc()
            self.metrics.observe(cached, "record", time.perf_counter() - started)
            return cached

        task = self._inflight.get(key)
        if task is None:
            if self._waiting >= self.settings.max_concurrent_analyses + self.settings.max_queued_analyses:
                self.metrics.errors.labels(kind="overloaded").inc()
                raise Overloaded(retry_after=max(5, int(self.settings.deadline_seconds // 4)))
            # Counted now, not when the task first runs: requests arriving in the same tick must see it.
            self._waiting += 1
            task = asyncio.create_task(self._analyze_once(request, canary_hash, started, key))
            task.add_done_callback(self._analysis_done)
            self._inflight[key] = task
            # Kept briefly after completion so requests that missed the record just before it was
            # written still share this analysis instead of starting another one.
            task.add_done_callback(lambda t, k=key: asyncio.get_running_loop().call_later(1.0, self._forget, k, t))
        else:
            self.metrics.shared_flights.inc()
        # Shielded: a client that disconnects does not cancel the analysis others wait for.
        return await asyncio.shield(task)

    def _forget(self, key: tuple[str, str, str], task: asyncio.Task) -> None:
        if self._inflight.get(key) is task:  # a newer analysis of the same key stays
            del self._inflight[key]

    def _analysis_done(self, _task: asyncio.Task) -> None:
        # A done callback, so the count drops even for a task cancelled before it ever ran.
        self._waiting -= 1

    async def _analyze_once(self, request: AnalyzeRequest, canary_hash: str, started: float,
                            key: tuple[str, str, str]) -> AnalyzeResponse:
        # Waiting for a slot counts against the deadline: better a 503 the plugin retries than an
        # analysis left with no time, whose forced abort would then be recorded.
        wait = started + self.settings.deadline_seconds / 2 - time.perf_counter()
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=max(0.01, wait))
        except (TimeoutError, asyncio.TimeoutError):
            self.metrics.errors.labels(kind="overloaded").inc()
            raise Overloaded(retry_after=max(5, int(self.settings.deadline_seconds // 4))) from None
        try:
            outcome = await self._run_with_deadline(request, canary_hash, started)
        finally:
            self._slots.release()
        elapsed = time.perf_counter() - started
        source = "model" if _model_answered(outcome.response) else "judge"
        self.metrics.observe(outcome.response, source, elapsed)
        if outcome.recordable:
            await self._record(request, canary_hash, outcome, elapsed, started)
        elif self._inflight.get(key) is asyncio.current_task():
            # A forced answer is shared only with requests already waiting, never with later ones.
            del self._inflight[key]
        return outcome.response

    # --- the analysis ----------------------------------------------------------------------
    async def _run_with_deadline(self, request: AnalyzeRequest, canary_hash: str, started: float) -> _Outcome:
        context = request.context
        deadline = started + self.settings.deadline_seconds - _ANSWER_MARGIN_SECONDS
        try:
            # Its own threads: a slow collection never starves /readyz or the revision lookups, and
            # it stops itself at the deadline instead of running on after we gave up waiting.
            evidence = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(
                    self._evidence_pool,
                    functools.partial(
                        evidence_tools.collect_evidence, context.namespace, context.rolloutName,
                        context.stableSelector, context.canarySelector, deadline=deadline,
                    ),
                ),
                timeout=max(0.1, deadline - time.perf_counter()),
            )
        except (TimeoutError, asyncio.TimeoutError):
            self.metrics.errors.labels(kind="evidence_timeout").inc()
            judge = JudgeView("inconclusive", 0, "", "unknown: the evidence could not be collected in time",
                              "Check the Kubernetes API and Prometheus latency; the analysis deadline is "
                              f"{self.settings.deadline_seconds:.0f}s.")
            return _Outcome(judge_answer(judge, "Evidence collection timed out.", "abort"),
                            "inconclusive", "", recordable=False)
        except Exception as exc:  # evidence collection never raises by contract; this is the last net
            log.exception("evidence collection failed")
            self.metrics.errors.labels(kind="evidence").inc()
            judge = JudgeView("inconclusive", 0, "", f"unknown: evidence collection failed ({type(exc).__name__})", "")
            return _Outcome(judge_answer(judge, "Evidence collection failed.", "abort"),
                            "inconclusive", "", recordable=False)

        summary = evidence_tools.summarize_evidence(evidence, self.settings.report_bytes)
        explained = evidence_tools.explain_evidence(summary)
        judge = JudgeView(
            verdict=evidence.judge.verdict,
            score=evidence.judge.score,
            summary=evidence.judge.summary,
            root_cause=explained["rootCause"],
            remediation=explained["remediation"],
        )
        if evidence.collection_errors:
            # collect_evidence already turned a passing judge on partial evidence into inconclusive.
            self.metrics.errors.labels(kind="evidence_incomplete").inc()
        # The model's own get_canary_evidence call reuses what was just collected.
        evidence_tools.remember_evidence(evidence)

        runs = await self._vote(request, judge, deadline)
        # The inconclusive policy is about too little traffic on complete evidence; a canary we could
        # not see (no pods, a failed source) is never promoted blind.
        complete = bool(evidence.canary_pods) and not evidence.collection_errors
        response = combine(runs, judge, self.settings.quorum,
                           self.settings.inconclusive_policy if complete else "abort")

        if not response.promote and context.repoUrl and (judge.verdict == "abort" or any(
            run.verdict is not None and not run.verdict.promote for run in runs
        )):
            response.prLink = await self._remediate(request, evidence, response, deadline)
        # A judge-only answer on incomplete evidence is not kept: the next measurement tries again.
        return _Outcome(response, judge.verdict, summary.get("report", ""),
                        recordable=complete or judge.verdict == "abort" or _model_answered(response))

    async def _vote(self, request: AnalyzeRequest, judge: JudgeView, deadline: float) -> list[AgentRunResult]:
        context = request.context
        message = plugin_prompt(context.namespace, context.rolloutName, context.stableSelector, context.canarySelector)
        if context.extraPrompt:
            message += (
                "\n\nOperator guidance from the AnalysisTemplate (use it to focus the investigation; it is "
                f"not evidence for a promote):\n<<<\n{context.extraPrompt}\n>>>"
            )
        state = {
            JUDGE_STATE: {"namespace": context.namespace, "rollout": context.rolloutName,
                          "verdict": judge.verdict, "score": judge.score},
            # The session spans revisions: a verdict left from an earlier analysis must not be
            # mistaken for this run's when the model ends without one.
            "verdict": None,
        }
        models = voting_models(self.settings)

        async def one(index: int, model: str) -> AgentRunResult:
            timeout = max(0.1, deadline - time.perf_counter())
            # A model listed twice votes twice, each voter in a session of its own.
            voter = model if model not in models[:index] else f"{model}#{models[:index].count(model) + 1}"
            task = asyncio.ensure_future(
                run_agent(
                    model=model,
                    session_service=self.session_service,
                    user_id=request.userId or "argo-rollouts",
                    session_id=session_id_for(request.memory_key, voter),
                    message=message,
                    state=state,
                )
            )
            try:
                done, _ = await asyncio.wait({task}, timeout=timeout)
            except asyncio.CancelledError:
                task.cancel()
                raise
            if done:
                run = task.result()
            else:
                # Not awaited: a run stuck in cleanup (e.g. on a locked database) must not hold the answer.
                task.cancel()
                self._background.add(task)
                task.add_done_callback(self._late_done)
                run = AgentRunResult(model=model, error=f"timed out after {timeout:.0f}s (analysis deadline)",
                                     duration_ms=int(timeout * 1000))
            self.metrics.record_run(run)
            return run

        return list(await asyncio.gather(*(one(index, model) for index, model in enumerate(models))))

    # --- remediation -----------------------------------------------------------------------
    async def _remediate(self, request: AnalyzeRequest, evidence, response: AnalyzeResponse, deadline: float
                         ) -> str | None:
        context = request.context
        if not evidence.facts.canary_hash:
            # Without the revision there is no "one issue per revision": better nothing than a
            # fingerprint shared by every revision of the rollout.
            log.warning("not filing for %s/%s: its canary revision is unknown", context.namespace, context.rolloutName)
            self.metrics.remediations.labels(action="refused").inc()
            return None
        # file_remediation applies the allow-list (requests cannot widen it) and files once per revision.
        filing = remediation_request(evidence, response, repo_url=context.repoUrl, base_branch=context.baseBranch)
        # A claim owner per filing: two analyses of one revision in this process must not both file.
        owner = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        task = asyncio.create_task(file_remediation(filing, self.settings, self.store, owner=owner))
        self._background.add(task)
        task.add_done_callback(self._remediation_done)
        wait = min(_REMEDIATION_WAIT_SECONDS, max(0.0, deadline - time.perf_counter()))
        done, _ = await asyncio.wait({task}, timeout=wait)
        if not done:
            return None  # still filing; the record of a later measurement will carry the link
        result = task.result()
        if result.action in ("refused", "disabled"):
            log.info("remediation %s: %s", result.action, result.message)
        return result.pr_url or result.issue_url or result.session_url

    def _remediation_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            self.metrics.errors.labels(kind="remediation").inc()
            log.warning("remediation failed: %s", task.exception())
            return
        self.metrics.remediations.labels(action=task.result().action).inc()

    # --- records ---------------------------------------------------------------------------
    def _lookup_timeout(self, started: float) -> float:
        """A short wait for a lookup: at most _LOOKUP_SECONDS and a quarter of the deadline left."""
        left = started + self.settings.deadline_seconds - _ANSWER_MARGIN_SECONDS - time.perf_counter()
        return max(0.05, min(_LOOKUP_SECONDS, left / 4))

    async def _bounded(self, coro, timeout: float):
        """Await `coro` for at most `timeout` seconds; past that it goes on in the background (never
        cancelled mid-call, so a database connection is not torn down) and TimeoutError is raised."""
        task = asyncio.ensure_future(coro)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        except (TimeoutError, asyncio.TimeoutError):
            self._background.add(task)
            task.add_done_callback(self._late_done)
            raise

    def _late_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a slow background call failed: %s", task.exception())

    async def _canary_hash(self, namespace: str, rollout: str, started: float) -> str:
        try:
            revision = await self._bounded(
                asyncio.to_thread(k8s.rollout_revision, namespace, rollout), self._lookup_timeout(started)
            )
        except (TimeoutError, asyncio.TimeoutError):
            self.metrics.errors.labels(kind="kubernetes_timeout").inc()
            log.warning("reading the revision of %s/%s timed out; analysing without the record", namespace, rollout)
            return ""
        return revision or ""

    async def _cached(self, request: AnalyzeRequest, canary_hash: str, started: float) -> AnalyzeResponse | None:
        if not canary_hash or self.settings.cache_ttl_seconds <= 0:
            return None
        try:
            record = await self._bounded(
                self.store.latest_analysis(request.memory_key, canary_hash, self.settings.cache_ttl_seconds,
                                           selectors=_selectors(request)),
                self._lookup_timeout(started),
            )
        except Exception as exc:  # a locked or unreachable database only costs the cache
            self.metrics.errors.labels(kind="database").inc()
            log.warning("record lookup failed: %s", exc or type(exc).__name__)
            return None
        if record is None:
            return None
        return AnalyzeResponse.model_validate(record.response)

    async def _record(self, request: AnalyzeRequest, canary_hash: str, outcome: _Outcome, elapsed: float,
                      started: float) -> None:
        context = request.context
        # The answer waits for the record only up to the deadline; a slow (locked) database finishes
        # the write in the background.
        timeout = max(0.05, started + self.settings.deadline_seconds - time.perf_counter())
        try:
            await self._bounded(self.store.save_analysis(
                AnalysisRecord(
                    memory_key=request.memory_key,
                    namespace=context.namespace,
                    rollout=context.rolloutName,
                    canary_hash=canary_hash,
                    selectors=_selectors(request),
                    created_at=evidence_tools.utcnow(),
                    promote=outcome.response.promote,
                    confidence=outcome.response.confidence,
                    judge_verdict=outcome.judge_verdict,
                    duration_ms=elapsed * 1000,
                    response=outcome.response.wire(),
                    report=outcome.report,
                )
            ), timeout)
        except Exception as exc:  # the answer matters more than its record
            self.metrics.errors.labels(kind="database").inc()
            log.warning("could not record the analysis: %s", exc or type(exc).__name__)
