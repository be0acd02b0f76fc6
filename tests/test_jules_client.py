"""tools.jules_client against the fake Jules REST API."""

from __future__ import annotations

import json

import pytest
from fakes.jules_server import JULES_KEY, FakeJules, jules_fake  # noqa: F401 - fixture

from tools.jules_client import (
    JulesClient,
    JulesConfigError,
    JulesError,
    Session,
    build_session_request,
    github_source,
)


class AsyncSleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def new_session(jules: JulesClient, repo: str = "shop", branch: str = "main", **kwargs) -> Session:
    request = build_session_request(prompt=kwargs.pop("prompt", "p"), source=github_source("acme", repo),
                                    starting_branch=branch, **kwargs)  # fmt: skip
    return await jules.create_session(request)


def client(fake: FakeJules, key: str = JULES_KEY, **kwargs) -> JulesClient:
    options = {"backoff_base": 0.01, "jitter": 0.0, "sleep": AsyncSleeps()}
    options.update(kwargs)
    return JulesClient(key, fake.base_url, **options)


async def test_sources_are_paginated(jules_fake: FakeJules) -> None:
    for index in range(4):
        jules_fake.add_source("acme", f"svc{index}")
    async with client(jules_fake) as jules:
        sources = await jules.list_sources(page_size=2)
    assert [s.name for s in sources] == ["sources/github/acme/shop"] + [f"sources/github/acme/svc{i}" for i in range(4)]
    assert sources[0].github_repo is not None and sources[0].github_repo.default_branch.display_name == "main"
    queries = [r.query for r in jules_fake.requests_to("GET", r"/sources$")]
    assert queries == ["pageSize=2", "pageToken=2&pageSize=2", "pageToken=4&pageSize=2"]
    assert all(r.headers["x-goog-api-key"] == JULES_KEY for r in jules_fake.requests)


async def test_get_source(jules_fake: FakeJules) -> None:
    async with client(jules_fake) as jules:
        source = await jules.get_source("sources/github/acme/shop")
        assert source.github_repo.owner == "acme"
        with pytest.raises(JulesError) as caught:
            await jules.get_source("sources/github/acme/none")
    assert caught.value.kind == "not_found"


async def test_create_session_sends_the_exact_body(jules_fake: FakeJules) -> None:
    async with client(jules_fake) as jules:
        session = await new_session(jules, branch="develop", prompt="Fix the 500s", title="Fix 500s")
    body = jules_fake.requests_to("POST", r"/sessions$")[0].json()
    assert body == {
        "prompt": "Fix the 500s",
        "title": "Fix 500s",
        "sourceContext": {"source": "sources/github/acme/shop", "githubRepoContext": {"startingBranch": "develop"}},
        "requirePlanApproval": False,
        "automationMode": "AUTO_CREATE_PR",
    }
    assert session.name == "sessions/1" and session.session_id == "1" and session.state == "QUEUED"
    assert session.url == "https://jules.google.com/session/1"


async def test_session_request_redacts_prompt_and_title() -> None:
    request = build_session_request(
        prompt="log: password=hunter22 and AIza" + "B" * 35, source="sources/github/a/b", starting_branch="main",
        title="token=abcdef123", require_plan_approval=True,
    )  # fmt: skip
    text = json.dumps(request.payload())
    assert "hunter22" not in text and "AIza" not in text and "abcdef123" not in text
    assert request.payload()["requirePlanApproval"] is True


async def test_follow_session_to_its_pull_request(jules_fake: FakeJules) -> None:
    seen: list[str] = []
    async with client(jules_fake) as jules:
        created = await new_session(jules)
        final = await jules.follow_session(
            created, timeout_seconds=10, poll_seconds=0.01, on_update=lambda s: seen.append(s.state)
        )
        activities = await jules.list_activities(created, page_size=1)
    assert final.state == "COMPLETED" and final.is_terminal
    assert final.pr_url == "https://github.com/acme/shop/pull/100"
    assert seen == ["QUEUED", "PLANNING", "IN_PROGRESS", "COMPLETED"]
    assert [a.kind for a in activities] == ["planGenerated", "progressUpdated", "sessionCompleted"]
    assert len(jules_fake.requests_to("GET", r"/activities$")) == 3  # one per page of one


async def test_follow_session_that_fails(jules_fake: FakeJules) -> None:
    jules_fake.script_next_session("QUEUED", "PLANNING", "FAILED", pr_url=None)
    async with client(jules_fake) as jules:
        created = await new_session(jules)
        final = await jules.follow_session(created.name, timeout_seconds=10, poll_seconds=0.01)
    assert final.state == "FAILED" and final.pr_url is None


async def test_follow_session_is_bounded(jules_fake: FakeJules) -> None:
    jules_fake.script_next_session("QUEUED", "IN_PROGRESS")
    async with client(jules_fake) as jules:
        created = await new_session(jules)
        final = await jules.follow_session(created.session_id, timeout_seconds=0.2, poll_seconds=0.02)
    assert final.state == "IN_PROGRESS" and not final.is_terminal


async def test_plan_approval(jules_fake: FakeJules) -> None:
    async with client(jules_fake) as jules:
        created = await new_session(jules, require_plan_approval=True)
        waiting = await jules.follow_session(created, timeout_seconds=0.3, poll_seconds=0.02)
        assert waiting.state == "AWAITING_PLAN_APPROVAL"
        await jules.approve_plan(created)
        final = await jules.follow_session(created, timeout_seconds=10, poll_seconds=0.01)
    assert final.state == "COMPLETED" and final.pr_url
    assert jules_fake.requests_to("POST", r"/sessions/1:approvePlan$")
    assert jules_fake.requests_to("POST", r"/sessions$")[0].json()["requirePlanApproval"] is True


async def test_429_honours_retry_after(jules_fake: FakeJules) -> None:
    jules_fake.too_many_requests("GET", r"/sources$", retry_after="3", times=2)
    sleeps = AsyncSleeps()
    async with client(jules_fake, sleep=sleeps) as jules:
        sources = await jules.list_sources()
    assert len(sources) == 1
    assert sleeps == [3.0, 3.0]


async def test_retry_after_as_http_date(jules_fake: FakeJules) -> None:
    jules_fake.too_many_requests("GET", r"/sources$", retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    sleeps = AsyncSleeps()
    async with client(jules_fake, sleep=sleeps) as jules:
        await jules.list_sources()
    assert len(sleeps) == 1 and sleeps[0] < 1  # a date in the past: retry at once (backoff only)


async def test_retry_after_beyond_the_bound_fails_fast(jules_fake: FakeJules) -> None:
    jules_fake.too_many_requests("POST", r"/sessions$", retry_after="3600")
    sleeps = AsyncSleeps()
    async with client(jules_fake, sleep=sleeps, backoff_max=30) as jules:
        with pytest.raises(JulesError) as caught:
            await new_session(jules)
    assert caught.value.kind == "rate_limited" and "3600" in caught.value.message
    assert sleeps == [] and not jules_fake.sessions


async def test_5xx_then_success_with_exponential_backoff(jules_fake: FakeJules) -> None:
    jules_fake.fail("GET", r"/sessions/1$", 503, times=3)
    sleeps = AsyncSleeps()
    async with client(jules_fake, sleep=sleeps, backoff_base=0.5) as jules:
        created = await new_session(jules)
        session = await jules.get_session(created)
    assert session.name == "sessions/1"
    assert sleeps == [0.5, 1.0, 2.0]


async def test_5xx_exhausted(jules_fake: FakeJules) -> None:
    jules_fake.fail("GET", r"/sources$", 500, times=10)
    async with client(jules_fake, max_retries=2) as jules:
        with pytest.raises(JulesError) as caught:
            await jules.list_sources()
    assert caught.value.kind == "upstream_error" and caught.value.status == 500
    assert len(jules_fake.requests) == 3


async def test_401_and_403_are_configuration_errors(jules_fake: FakeJules) -> None:
    async with client(jules_fake, key="wrong-key") as jules:
        with pytest.raises(JulesConfigError) as forbidden:
            await jules.list_sources()
    assert forbidden.value.status == 403 and "JULES_API_KEY" in (forbidden.value.hint or "")
    jules_fake.fail("GET", r"/sources$", 401, body={"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                              "message": "API key not valid"}})  # fmt: skip
    async with client(jules_fake) as jules:
        with pytest.raises(JulesConfigError) as unauthorized:
            await jules.list_sources()
    assert unauthorized.value.status == 401 and "API key not valid" in unauthorized.value.message
    assert unauthorized.value.to_result()["error"]["kind"] == "unauthorized"
    assert forbidden.value.kind == "forbidden"


def test_missing_key_is_a_configuration_error() -> None:
    with pytest.raises(JulesConfigError, match="no Jules API key") as caught:
        JulesClient(None)
    assert caught.value.kind == "not_configured"


async def test_unknown_source_is_not_found(jules_fake: FakeJules) -> None:
    async with client(jules_fake) as jules:
        with pytest.raises(JulesError) as caught:
            await new_session(jules, repo="other")
    assert caught.value.kind == "not_found"


async def test_follow_tolerates_transient_errors(jules_fake: FakeJules) -> None:
    async with client(jules_fake, max_retries=0) as jules:
        created = await new_session(jules)
        jules_fake.fail("GET", r"/sessions/1$", 502, times=2)
        final = await jules.follow_session(created, timeout_seconds=10, poll_seconds=0.01)
    assert final.state == "COMPLETED"


async def test_unreachable_api() -> None:
    sleeps = AsyncSleeps()
    async with JulesClient("k", "http://127.0.0.1:9/v1alpha", max_retries=1, sleep=sleeps, jitter=0) as jules:
        with pytest.raises(JulesError) as caught:
            await jules.list_sources()
    assert caught.value.kind == "unreachable" and sleeps == [1.0]


def test_session_model_reads_outputs() -> None:
    session = Session.model_validate(
        {"name": "sessions/9", "state": "COMPLETED",
         "outputs": [{"changeSet": {"gitPatch": {}}}, {"pullRequest": {"url": "https://github.com/a/b/pull/3"}}]}
    )  # fmt: skip
    assert session.pr_url == "https://github.com/a/b/pull/3" and session.session_id == "9"
