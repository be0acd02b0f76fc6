"""The runbook model's reading of the conversation: intents and targets (no cluster needed)."""

from __future__ import annotations

import pytest

from google.adk.models import LlmRequest
from google.genai import types

from selfheal.contract import plugin_prompt
from selfheal.llm import intents
from selfheal.llm.conversation import Conversation, ToolCall


@pytest.mark.parametrize(
    "text, intent",
    [
        (plugin_prompt("demo", "web", "role=stable", "role=canary"), "diagnose"),
        ("is the canary of canary-demo healthy?", "diagnose"),
        ("why did rollout checkout fail?", "diagnose"),
        ("show me the canary errors", "diagnose"),
        ("file an issue for canary-demo, repo https://github.com/o/r", "remediate"),
        ("please open a PR with the fix", "remediate"),
        ("start a Jules session for it", "remediate"),
        ("what is the status of the issue?", "remediation_status"),
        ("yes", "confirm"),
        ("Go ahead", "confirm"),
        ("Yes, please!", "confirm"),
        # Only a whole-message yes confirms a write (the guardrail's rule): these do not.
        ("ok, but don't file", "decline"),
        ("yes, but check rollout web in shop first", "diagnose"),
        ("no, not now", "decline"),
        ("cancel", "decline"),
        ("don't file an issue for canary-demo", "decline"),
        ("why don't the canary pods start?", "diagnose"),
        ("no errors in canary-demo?", "diagnose"),
        ("write me a poem", "other"),
        ("", "other"),
    ],
)
def test_classify(text: str, intent: str) -> None:
    assert intents.classify(text) == intent


@pytest.mark.parametrize(
    "text, namespace, rollout, stable, canary",
    [
        (plugin_prompt("demo-bad", "canary-demo", "app=web,track=stable", "app=web,track=canary"),
         "demo-bad", "canary-demo", "app=web,track=stable", "app=web,track=canary"),
        ("is the canary of canary-demo in namespace demo-healthy healthy?", "demo-healthy", "canary-demo",
         "role=stable", "role=canary"),
        ("why did rollout checkout in the payments namespace fail?", "payments", "checkout", "role=stable", "role=canary"),
        ("check shop/web-frontend please", "shop", "web-frontend", "role=stable", "role=canary"),
        ("is the canary healthy?", None, None, "role=stable", "role=canary"),
    ],
)
def test_resolve_target_from_words(text, namespace, rollout, stable, canary) -> None:
    target = intents.resolve_target(Conversation(user_messages=[text]))
    assert (target.namespace, target.rollout, target.stable, target.canary) == (namespace, rollout, stable, canary)


def test_target_falls_back_to_earlier_turns_and_tool_calls() -> None:
    convo = Conversation(
        user_messages=["is rollout web in namespace shop healthy?", "show me the canary errors"],
        history_calls=[ToolCall(name="get_canary_evidence", args={"namespace": "shop", "rollout": "web"})],
    )
    target = intents.resolve_target(convo)
    assert (target.namespace, target.rollout) == ("shop", "web")


def test_repo_url_is_not_mistaken_for_namespace_and_rollout() -> None:
    target = intents.resolve_target(Conversation(
        user_messages=["file an issue for rollout web in namespace shop, repo https://github.com/acme/shop base branch develop"]))
    assert (target.namespace, target.rollout) == ("shop", "web")
    assert target.repo_url == "https://github.com/acme/shop"
    assert target.base_branch == "develop"


def test_single_rollout_and_ambiguity() -> None:
    found = {"rollouts": [{"namespace": "a", "name": "web"}, {"namespace": "b", "name": "web"}]}
    assert intents.single_rollout(found, intents.Target(rollout="web")) is None
    assert intents.single_rollout(found, intents.Target(rollout="web", namespace="b")) == ("b", "web")
    assert "a/web, b/web" in intents.ambiguity_message(found, intents.Target(rollout="web"))
    assert "found no rollout 'x'" in intents.ambiguity_message({"rollouts": []}, intents.Target(rollout="x"))


def _user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def _asked(call_id: str, args: dict, response: dict) -> list[types.Content]:
    return [
        types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(
            id=call_id, name="file_rollout_issue", args=args))]),
        types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
            id=call_id, name="file_rollout_issue", response=response))]),
    ]


def test_a_write_waits_for_confirmation_only_in_the_next_message() -> None:
    args = {"namespace": "n", "rollout": "r", "repo_url": "https://github.com/o/r"}
    held = {"confirmation_required": True, "message": "This is a write action"}
    request = [_user("file an issue for rollout r in namespace n, repo https://github.com/o/r"),
               *_asked("c1", args, held)]

    def waiting(*contents: types.Content) -> dict | None:
        return intents.awaiting_confirmation(LlmRequest(contents=[*request, *contents]), "file_rollout_issue")

    assert waiting(_user("yes")) == args
    # Other agents' turns quoted as user text are not the user speaking.
    assert waiting(_user("For context: [orchestrator] called tool `transfer_to_agent`"), _user("yes")) == args
    # A reply in between (a decline, another question) ends the wait.
    assert waiting(_user("no, not now"), _user("yes")) is None
    # Once the write ran, nothing waits.
    assert waiting(_user("yes"), *_asked("c2", args, {"action": "dry_run"}), _user("yes")) is None
    # A refusal is not a held-back write.
    refused = [_user("file it for r in n, repo x"), *_asked("c3", args, {"error": {"kind": "refused"}})]
    assert intents.awaiting_confirmation(LlmRequest(contents=[*refused, _user("yes")]), "file_rollout_issue") is None


def test_describe_remediation_uses_only_tool_urls() -> None:
    text = intents.describe_remediation({"action": "created", "issue_url": "https://github.com/o/r/issues/7"})
    assert "Filed a new issue" in text and "https://github.com/o/r/issues/7" in text
    dry = intents.describe_remediation({"action": "dry_run", "outbox_path": "/tmp/outbox/x.issue.md"})
    assert "dry run" in dry and "/tmp/outbox/x.issue.md" in dry
    error = intents.describe_remediation({"error": {"kind": "refused", "message": "not allowed", "hint": "add it"}})
    assert error == "The fix was not filed: not allowed. add it"


def test_namespace_after_in_and_rollout_after_for() -> None:
    target = intents.resolve_target(Conversation(user_messages=["is the canary of canary-demo in demo-bad healthy?"]))
    assert (target.namespace, target.rollout) == ("demo-bad", "canary-demo")
    target = intents.resolve_target(Conversation(
        user_messages=["file an issue for canary-demo in demo-bad, repo https://github.com/acme/shop"]))
    assert (target.namespace, target.rollout, target.repo_url) == ("demo-bad", "canary-demo", "https://github.com/acme/shop")
    target = intents.resolve_target(Conversation(user_messages=["what is wrong in the canary?"]))
    assert target.namespace is None


def test_describe_remediation_reads_a_status_record() -> None:
    assert intents.describe_remediation({"status": "dry_run", "fingerprint": "n/r/h"}).startswith(
        "No GitHub token is configured")
    assert intents.describe_remediation({"status": "nothing filed"}).startswith("Nothing has been filed")


def test_the_latest_selectors_win_even_when_they_are_the_defaults() -> None:
    earlier = plugin_prompt("demo", "web", "role=stable", "role=canry")
    latest = plugin_prompt("demo", "web", "role=stable", "role=canary")
    target = intents.resolve_target(Conversation(user_messages=[earlier, latest]))
    assert (target.stable, target.canary) == ("role=stable", "role=canary")
