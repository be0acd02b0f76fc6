"""The remediation agent's tools, and the bridge from canary evidence to a remediation request.

The agent files through the same `tools.remediation.file_remediation` the plugin service uses, so
the allow-list, the one-issue-per-revision rule and the dry-run outbox apply the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from selfheal.config import Settings, get_settings
from tools import k8s
from tools.errors import error_result, is_error
from tools.evidence import CanaryEvidence, collect_evidence, explain_evidence, remember_evidence, summarize_evidence
from tools.remediation import (
    AnalysisRunSummary,
    RemediationRequest,
    SignatureSample,
    file_remediation,
    open_fix_pull_request,
    spawn_background,
)


def remediation_request(
    evidence: CanaryEvidence,
    verdict: Any,
    repo_url: str | None,
    base_branch: str | None,
) -> RemediationRequest:
    """Everything the issue and the Jules prompt need, from the evidence and the final verdict.

    `verdict` is an AnalyzeResponse or any object/dict with promote, confidence, analysis,
    rootCause and remediation.
    """
    get = verdict.get if isinstance(verdict, dict) else lambda key, default=None: getattr(verdict, key, default)
    facts = evidence.facts
    changes = [c for c in (evidence.signatures.ranked() if evidence.signatures else []) if c.change != "vanished"]
    run = facts.analysis_runs[0] if facts.analysis_runs else None
    return RemediationRequest(
        namespace=evidence.namespace,
        rollout=evidence.rollout,
        canary_hash=facts.canary_hash or "unknown",
        stable_hash=facts.stable_hash or "",
        stable_image=facts.stable_image or "",
        canary_image=facts.canary_image or "",
        stable_revision=str(facts.stable_revision or ""),
        canary_revision=str(facts.canary_revision or ""),
        promote=bool(get("promote", False)),
        confidence=int(get("confidence", 0) or 0),
        analysis=str(get("analysis", "") or ""),
        root_cause=str(get("rootCause", "") or ""),
        remediation=str(get("remediation", "") or ""),
        judge_table=evidence.judge.to_markdown(),
        signatures=[
            SignatureSample(template=c.template, count=c.canary_count, example=c.example, stable_count=c.stable_count)
            for c in changes[:8]
        ],
        events=evidence.events[:15],
        analysis_run=AnalysisRunSummary(
            name=run.get("name") or "", phase=run.get("phase") or "", message=run.get("message") or "",
            metrics=[f"{m.get('name')}: {m.get('phase')} {m.get('latest')}" for m in run.get("metrics") or []],
        ) if run else None,
        canary_pods=[pod["name"] for pod in evidence.canary_pods],
        stable_pods=[pod["name"] for pod in evidence.stable_pods],
        repo_url=repo_url or "",
        base_branch=base_branch or "",
    )


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator["_ToolStore"]:
    from selfheal.state import StateStore  # the state layer imports this package; keep the cycle lazy

    store = _ToolStore(StateStore.from_url(settings.database))
    try:
        await store.inner.init()
        yield store
    finally:
        await store.release()


class _ToolStore:
    """The state store of one tool call, kept open while a background Jules follow-up it started
    still needs it (a chat-started session is followed to its PR like a plugin-started one)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self._users = 1  # the tool call itself

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def keep_open_for(self, coro: Any) -> Any:
        self._users += 1

        async def run() -> None:
            try:
                await coro
            finally:
                await self.release()

        return spawn_background(run())

    async def release(self) -> None:
        self._users -= 1
        if self._users == 0:
            await self.inner.close()


async def file_rollout_issue(
    namespace: str,
    rollout: str,
    repo_url: str,
    base_branch: str = "main",
    stable_selector: str = "role=stable",
    canary_selector: str = "role=canary",
    root_cause: str = "",
    analysis: str = "",
) -> dict:
    """File (or update) the GitHub issue for a failed canary revision, labelled for Jules.

    It collects the canary evidence again (judge table, canary-only log signatures, events,
    images and revisions) and files one issue per rollout revision: when this revision already has
    an issue, the new evidence is added as a comment instead. Depending on configuration it also
    starts a Jules session that opens the pull request. Without a GitHub token it writes the exact
    issue to the local outbox (a dry run) and says so. This is a write action: the user must confirm.

    It refuses when the canary's pod-template hash is unknown (the issue could not be tied to one
    revision), when the judge was inconclusive and you give no root cause, and when the judge
    passed the canary and you give no root cause. With a root_cause you found yourself it files
    even for a canary the judge passed or could not decide: use that only for a real fault you can
    point at in the evidence (logs, events, metrics), and say what it is.

    Args:
        namespace: namespace of the Rollout.
        rollout: the Rollout name.
        repo_url: the repository holding the service's code, e.g. https://github.com/org/app
            (it must be on the operator's allow-list).
        base_branch: the branch the fix should start from (default "main").
        stable_selector: label selector of the stable pods.
        canary_selector: label selector of the canary pods.
        root_cause: your root-cause statement, if you have one (otherwise the judge's findings are used);
            required to file for a canary the judge passed or could not decide.
        analysis: your analysis, if you have one.

    Returns:
        {"action": created|commented|dry_run|refused|disabled|error|already_filed, "issue_url",
        "issue_number", "session_url", "pr_url", "outbox_path", "message"}; URLs come only from GitHub
        and Jules. On bad input: {"error": {...}}.
    """
    if not repo_url or not isinstance(repo_url, str):
        return error_result("invalid_argument", "repo_url is required",
                            "Ask the user for the repository URL, e.g. https://github.com/org/app.")
    settings = get_settings()
    # Collecting and summarizing evidence is blocking I/O and CPU work: off the event loop, which
    # serves every other analysis and chat in `selfheal serve`.
    evidence = await asyncio.to_thread(
        collect_evidence, namespace, rollout, stable_selector, canary_selector, settings)
    remember_evidence(evidence)
    if not evidence.canary_pods and evidence.collection_errors:
        return error_result("not_found", "; ".join(evidence.collection_errors)[:400],
                            "Check the namespace and rollout name (find_rollouts).")
    if not evidence.facts.canary_hash:
        reason = f" ({'; '.join(evidence.collection_errors)[:300]})" if evidence.collection_errors else ""
        return error_result(
            "refused",
            f"the canary pod-template hash of {namespace}/{rollout} is unknown{reason}; an issue is filed per "
            "canary revision, so it cannot be filed without knowing which revision failed",
            "Check the rollout with get_rollout (the canary ReplicaSet must exist and be readable), then try again.",
        )
    if evidence.judge.verdict == "promote" and not root_cause:
        return error_result(
            "refused",
            f"the judge passed this canary (score {evidence.judge.score}); there is no failure to file",
            "File an issue only for a canary that failed, or give the root cause you found.",
        )
    if evidence.judge.verdict == "inconclusive" and not root_cause:
        return error_result(
            "refused",
            f"the judge could not decide on this canary (inconclusive, score {evidence.judge.score}): too little "
            "traffic or partial evidence, so there is no established failure to file",
            "Wait for more traffic and analyse again, or give the root cause you found in the evidence.",
        )
    summary = await asyncio.to_thread(summarize_evidence, evidence, settings.report_bytes)
    verdict = explain_evidence(summary)
    if root_cause:
        verdict["rootCause"] = root_cause
    if analysis:
        verdict["analysis"] = analysis
    verdict["promote"] = False
    try:
        request = remediation_request(evidence, verdict, repo_url, base_branch)
    except ValueError as exc:
        return error_result("invalid_argument", f"cannot build the issue: {exc}")
    async with _store(settings) as store:
        result = await file_remediation(request, settings, store, spawn=store.keep_open_for)
    return result.model_dump(mode="json", exclude_none=True)


async def get_remediation_status(namespace: str, rollout: str) -> dict:
    """What was already filed for the current canary revision of a rollout: issue, Jules session, PR.

    Args:
        namespace: namespace of the Rollout.
        rollout: the Rollout name.

    Returns:
        {"fingerprint", "status", "issue_url", "session_url", "pr_url", ...} or {"status": "nothing filed"}.
    """
    # The Kubernetes client is synchronous: off the event loop.
    revision = await asyncio.to_thread(k8s.rollout_revision, namespace, rollout)
    if revision is None:
        info = await asyncio.to_thread(k8s.get_rollout, namespace, rollout)
        if is_error(info):
            return info
        return error_result("not_found", f"rollout {namespace}/{rollout} has no canary revision yet")
    fingerprint = f"{namespace}/{rollout}/{revision}"
    async with _store(get_settings()) as store:
        record = await store.get_remediation(fingerprint)
    if record is None:
        return {"fingerprint": fingerprint, "status": "nothing filed"}
    return record.model_dump(mode="json", exclude_none=True)


async def open_pull_request(
    repo_url: str,
    base_branch: str,
    title: str,
    body: str,
    files: dict[str, str],
    issue_number: int | None = None,
) -> dict:
    """Open a pull request with a concrete fix, on a new branch, linked to the rollback issue.

    Use it only when you were given the exact change (complete new file contents). The base branch
    is never modified; paths must stay inside the repository. This is a write action: the user must
    confirm. Without a GitHub token the pull request is written to the outbox instead (a dry run).

    Args:
        repo_url: the repository, e.g. https://github.com/org/app (must be on the allow-list).
        base_branch: the branch to start from and merge into, e.g. "main".
        title: the pull request title.
        body: what was wrong and how the change fixes it (markdown).
        files: repository-relative path -> complete new content of that file.
        issue_number: the rollback issue this fixes, if any.

    Returns:
        {"url", "number", "branch", ...} from GitHub, a dry-run description, or {"error": {...}}.
    """
    return await open_fix_pull_request(repo_url, base_branch, title, body, files, issue_number)
