"""What the user asks for, and which rollout they mean — read from the conversation text.

Used by the runbook model only. Everything here works on the user's words and on tool results,
never on scenario files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from google.adk.models import LlmRequest
from google.genai import types

from selfheal.guardrails import is_clear_confirmation
from selfheal.llm.conversation import Conversation

Intent = Literal["diagnose", "remediate", "remediation_status", "confirm", "decline", "other"]

HELP_TEXT = (
    "I watch Argo Rollouts canaries. I can tell you whether a canary is healthy (\"is the canary of "
    "canary-demo healthy?\"), why a rollout failed (\"why did rollout canary-demo in demo fail?\"), "
    "show the canary's errors (\"show me the canary errors of canary-demo\"), and file the fix as a "
    "GitHub issue for Jules (\"file an issue for canary-demo, repo https://github.com/org/app\").\n"
    "I am running on the offline runbook model (no model credentials are configured): I follow the "
    "investigation runbook and answer these questions from the real evidence, but I cannot hold a "
    "free-form conversation, write code changes or answer questions outside canary analysis. Set "
    "GOOGLE_API_KEY (or SELFHEAL_MODEL) to use a real model."
)

# A short reply that says no to a held-back write ("no", "cancel", "ok, but don't file").
_DECLINE = re.compile(
    r"^\W*(no|nope|nah)\W*$|^\W*(no|nope|nah)\s*[,.!;]|^\W*(cancel\w*|never\s*mind|not now)\b"
    r"|\b(don'?t|do not|no need to)\s+(file|open|create|submit|run|proceed|do (it|that|this))\b",
    re.I,
)
_REMEDIATE = re.compile(
    r"\b(file|open|create|raise|submit|start)\b.{0,40}\b(issue|ticket|bug|pr|pull request|fix|session)\b"
    r"|\bremediat\w*|\bjules\b|\bfix (it|this|the)\b",
    re.I,
)
_STATUS = re.compile(r"\b(status|link|url|where)\b.{0,30}\b(issue|pr|pull request|fix|remediation|session)\b", re.I)
_DIAGNOSE = re.compile(
    r"\b(canary|canaries|rollouts?|pods?|health(y)?|promot\w*|abort\w*|why|fail\w*|errors?|logs?|latency|slow|"
    r"crash\w*|analy[sz]\w*|status|diagnos\w*|investigat\w*|check|broken|wrong|ok|degraded)\b",
    re.I,
)

_NAME = r"([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)"
_STOP = {"is", "the", "a", "an", "of", "for", "in", "on", "and", "now", "status", "health", "healthy", "canary",
         "rollout", "namespace", "it", "this", "that", "my", "our", "fail", "failed", "failing", "ok", "doing"}
_ROLLOUT_PATTERNS = [
    re.compile(r"rollout\s+['\"`]" + _NAME + r"['\"`]", re.I),
    re.compile(r"rollout\s+(?:named\s+|called\s+)?" + _NAME, re.I),
    re.compile(r"canary\s+(?:of|for)\s+(?:the\s+)?(?:rollout\s+)?['\"`]?" + _NAME, re.I),
    re.compile(_NAME + r"\s+rollout\b", re.I),
    re.compile(r"\b(?:for|of)\s+['\"`]?" + _NAME + r"['\"`]?\s+in\b", re.I),
]
_NAMESPACE_PATTERNS = [
    re.compile(r"namespace[:\s]+['\"`]?" + _NAME, re.I),
    re.compile(r"\bin\s+(?:the\s+)?['\"`]?" + _NAME + r"['\"`]?\s+namespace", re.I),
    re.compile(r"\b(?:ns|-n)\s+['\"`]?" + _NAME, re.I),
    # Loosest last: "... canary-demo in demo-bad ..." (stop words such as "in the" are skipped).
    re.compile(r"\bin\s+['\"`]?" + _NAME + r"['\"`]?(?=[\s,;:?.!]|$)", re.I),
]
_QUALIFIED = re.compile(r"\b([a-z0-9][-a-z0-9]*)/([a-z0-9][-a-z0-9.]*)\b")
_STABLE_SELECTOR = re.compile(r"stable\s+pods?\s*\(selector:\s*([^)]+)\)|stable[_ -]selector[:=\s]+([^\s,;]+)", re.I)
_CANARY_SELECTOR = re.compile(r"canary\s+pods?\s*\(selector:\s*([^)]+)\)|canary[_ -]selector[:=\s]+([^\s,;]+)", re.I)
_REPO = re.compile(r"(https?://[^\s'\"<>()]+|git@[\w.-]+:[\w./-]+)")
_BRANCH = re.compile(r"\b(?:base\s+)?branch[:\s]+['\"`]?([\w./-]+)", re.I)
_POD = re.compile(r"\bpod\s+['\"`]?" + _NAME, re.I)


def classify(text: str) -> Intent:
    if not text:
        return "other"
    # Only a whole-message yes confirms a write (the guardrail applies the same rule).
    if is_clear_confirmation(text):
        return "confirm"
    if len(text) < 80 and _DECLINE.search(text):
        return "decline"
    if _STATUS.search(text):
        return "remediation_status"
    if _REMEDIATE.search(text):
        return "remediate"
    if _DIAGNOSE.search(text):
        return "diagnose"
    return "other"


@dataclass
class Target:
    namespace: str | None = None
    rollout: str | None = None
    stable: str = "role=stable"
    canary: str = "role=canary"
    repo_url: str | None = None
    base_branch: str | None = None
    pod: str | None = None


def resolve_target(convo: Conversation) -> Target:
    """The rollout the user means: from their latest words first, then earlier turns and tool calls."""
    target = Target()
    said: set[str] = set()  # selectors the user named, latest first (even when they equal the default)
    for text in reversed(convo.user_messages):
        _fill_from_text(target, text, said)
    for call in reversed(convo.turn_calls + convo.history_calls):
        args = call.args
        target.namespace = target.namespace or args.get("namespace")
        target.rollout = target.rollout or args.get("rollout") or (args.get("name") if call.name == "get_rollout" else None)
    return target


def _fill_from_text(target: Target, text: str, said: set[str]) -> None:
    if target.rollout is None:
        for pattern in _ROLLOUT_PATTERNS:
            for match in pattern.finditer(text):
                name = match.group(1).lower().strip(".")
                if name not in _STOP:
                    target.rollout = name
                    break
            if target.rollout:
                break
    if target.namespace is None:
        for pattern in _NAMESPACE_PATTERNS:
            names = [m.group(1).lower().strip(".") for m in pattern.finditer(_REPO.sub(" ", text))]
            names = [name for name in names if name not in _STOP and name != target.rollout]
            if names:
                target.namespace = names[0]
                break
    qualified = _QUALIFIED.search(_REPO.sub(" ", text))
    if qualified and (target.namespace is None or target.rollout is None):
        target.namespace = target.namespace or qualified.group(1)
        target.rollout = target.rollout or qualified.group(2)
    for pattern, attr in ((_STABLE_SELECTOR, "stable"), (_CANARY_SELECTOR, "canary")):
        match = pattern.search(text)
        if match and attr not in said:
            said.add(attr)
            setattr(target, attr, (match.group(1) or match.group(2)).strip())
    if target.repo_url is None:
        repo = _REPO.search(text)
        if repo:
            target.repo_url = repo.group(1).rstrip(".,;")
    if target.base_branch is None:
        branch = _BRANCH.search(text)
        if branch:
            target.base_branch = branch.group(1)
    if target.pod is None:
        pod = _POD.search(text)
        if pod and pod.group(1).lower() not in _STOP:
            target.pod = pod.group(1)


def single_rollout(found: Any, target: Target) -> tuple[str, str] | None:
    """The one rollout `find_rollouts` returned that fits the target, if exactly one does."""
    if not isinstance(found, dict):
        return None
    candidates = [
        (item.get("namespace"), item.get("name"))
        for item in found.get("rollouts", [])
        if (not target.rollout or item.get("name") == target.rollout)
        and (not target.namespace or item.get("namespace") == target.namespace)
    ]
    return candidates[0] if len(candidates) == 1 else None


def ambiguity_message(found: Any, target: Target) -> str:
    if isinstance(found, dict) and "error" in found:
        return f"I could not list the rollouts: {found['error'].get('message', 'unknown error')}."
    items = found.get("rollouts", []) if isinstance(found, dict) else []
    wanted = f"rollout '{target.rollout}'" if target.rollout else "a rollout"
    if not items:
        where = f" in namespace '{target.namespace}'" if target.namespace else ""
        return f"I found no {wanted}{where} in the cluster."
    names = ", ".join(f"{item.get('namespace')}/{item.get('name')}" for item in items[:12])
    return f"Several rollouts match {wanted}: {names}. Say which one (namespace/rollout) and I will analyse it."


def _canary_pods(evidence: dict) -> list[dict]:
    pods = evidence.get("canary_pods") or []
    return [pod for pod in pods if isinstance(pod, dict)]


def crashed_canary_pod(evidence: dict) -> str | None:
    for pod in _canary_pods(evidence):
        if (pod.get("restarts") or 0) > 0 or pod.get("waiting_reason") == "CrashLoopBackOff":
            return pod.get("name")
    return None


def stuck_canary_pod(evidence: dict) -> str | None:
    for pod in _canary_pods(evidence):
        if pod.get("phase") == "Pending" or (pod.get("waiting_reason") and pod.get("waiting_reason") != "CrashLoopBackOff"):
            return pod.get("name")
    return None


_ERRORISH = re.compile(r"(error|exception|panic|fatal|killed|out of memory|traceback|refused|failed)", re.I)


def last_error_line(log_result: dict) -> str | None:
    # get_pod_logs returns the log as "text" (and "lines" as a count).
    for line in reversed(str(log_result.get("text") or "").splitlines()):
        if _ERRORISH.search(line):
            return line.strip()[:240]
    return None


def awaiting_confirmation(request: LlmRequest, tool: str) -> dict[str, Any] | None:
    """Arguments of the write the guardrail held back in the turn just before the user's latest
    message, if there is one.

    The guardrail accepts a confirmation only in the very next user message: a request from an
    older turn (declined, or followed by another question) is no longer waiting.
    """
    turn = 0  # real user messages seen so far
    asked_in: int | None = None
    args: dict[str, Any] = {}
    for content in request.contents or []:
        if any(_is_user_message(content, part) for part in content.parts or []):
            turn += 1
        for part in content.parts or []:
            if part.function_call and part.function_call.name == tool:
                asked_in, args = None, dict(part.function_call.args or {})
            elif part.function_response and part.function_response.name == tool:
                response = part.function_response.response
                asked_in = turn if isinstance(response, dict) and response.get("confirmation_required") else None
    return args if asked_in is not None and asked_in == turn - 1 else None


def _is_user_message(content: types.Content, part: types.Part) -> bool:
    # The same reading as Conversation: other agents' quoted turns are not the user speaking.
    if not (part.text and content.role == "user" and not part.thought):
        return False
    probe = Conversation.from_request(LlmRequest(contents=[types.Content(role="user", parts=[part])]))
    return bool(probe.user_messages)


def describe_remediation(result: Any) -> str:
    """Plain words for a remediation tool result."""
    if not isinstance(result, dict):
        return f"The remediation tool answered: {result}"
    if result.get("confirmation_required"):
        return str(result.get("message"))
    if "error" in result:
        error = result["error"]
        hint = f" {error.get('hint')}" if error.get("hint") else ""
        return f"The fix was not filed: {error.get('message')}.{hint}"
    # file_rollout_issue answers with an action; get_remediation_status with the record's status.
    action = result.get("action") or result.get("status") or "unknown"
    links = [result.get(key) for key in ("issue_url", "session_url", "pr_url") if result.get(key)]
    text = {
        "created": "Filed a new issue",
        "commented": "The issue for this revision already exists; I added the new evidence as a comment",
        "already_filed": "This revision was already filed",
        "dry_run": "No GitHub token is configured, so this was a dry run: the issue was written to the outbox",
        "refused": "The remediation was refused",
        "disabled": "Remediation is turned off (SELFHEAL_REMEDIATION_MODE=off)",
        "nothing filed": "Nothing has been filed for the current canary revision yet",
        "issue_filed": "The issue for this revision is filed",
        "session_started": "The issue is filed and a Jules session is working on the fix",
        "pr_opened": "Jules opened a pull request for this revision",
        "session_completed": "The Jules session completed",
        "session_failed": "The Jules session failed; the issue stays open for a person",
    }.get(action, f"Remediation status: {action}")
    parts = [text + "."]
    if links:
        parts.append("Links: " + ", ".join(links) + ".")
    if result.get("outbox_path"):
        parts.append(f"Outbox: {result['outbox_path']}.")
    if result.get("message"):
        parts.append(str(result["message"]))
    return " ".join(parts)
