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


# ---------------------------------------------------------------------------- creating at most once

TITLE = "[selfheal demo-bad/canary-demo/768c68c9c8 #7] Fix canary failure"


def posts(fake: FakeJules) -> int:
    return len(fake.requests_to("POST", r"/sessions$"))


def lookups(fake: FakeJules) -> int:
    return len(fake.requests_to("GET", r"/sessions$"))


async def test_create_that_fails_after_storing_returns_the_stored_session(jules_fake: FakeJules) -> None:
    jules_fake.server_error("POST", r"/sessions$", status=500, after=True)
    sleeps = AsyncSleeps()
    async with client(jules_fake, sleep=sleeps) as jules:
        session = await new_session(jules, title=TITLE)
    assert len(jules_fake.sessions) == 1 and posts(jules_fake) == 1
    assert session.name == "sessions/1" and session.title == TITLE
    assert lookups(jules_fake) == 1 and len(sleeps) == 1  # waited once, then looked instead of posting again


async def test_create_that_times_out_after_storing_returns_the_stored_session(jules_fake: FakeJules) -> None:
    jules_fake.slow_create(1.5)
    async with client(jules_fake, timeout=0.3) as jules:
        session = await new_session(jules, title=TITLE)
    assert len(jules_fake.sessions) == 1 and posts(jules_fake) == 1
    assert session.name == "sessions/1"


async def test_create_that_failed_without_storing_is_sent_again(jules_fake: FakeJules) -> None:
    jules_fake.server_error("POST", r"/sessions$", status=503, times=2)  # answered before anything is stored
    async with client(jules_fake) as jules:
        session = await new_session(jules, title=TITLE)
    assert posts(jules_fake) == 3 and lookups(jules_fake) == 2  # a look before each repeat
    assert len(jules_fake.sessions) == 1 and session.name == "sessions/1"


async def test_create_is_retried_without_looking_when_not_processed(jules_fake: FakeJules) -> None:
    jules_fake.too_many_requests("POST", r"/sessions$", retry_after="2")
    sleeps = AsyncSleeps()
    async with client(jules_fake, sleep=sleeps) as jules:
        await new_session(jules, title=TITLE)
    assert posts(jules_fake) == 2 and lookups(jules_fake) == 0 and sleeps == [2.0]
    assert len(jules_fake.sessions) == 1


async def test_refused_connection_is_retried_and_not_ambiguous() -> None:
    sleeps = AsyncSleeps()
    async with JulesClient("k", "http://127.0.0.1:9/v1alpha", max_retries=2, sleep=sleeps, jitter=0) as jules:
        with pytest.raises(JulesError) as caught:
            await new_session(jules, title=TITLE)
    assert caught.value.kind == "unreachable" and not caught.value.maybe_processed
    assert sleeps == [1.0, 2.0]


async def test_create_is_not_repeated_when_the_lookup_fails(jules_fake: FakeJules) -> None:
    jules_fake.server_error("POST", r"/sessions$", after=True)
    jules_fake.server_error("GET", r"/sessions$", status=503, times=20)
    async with client(jules_fake, max_retries=2) as jules:
        with pytest.raises(JulesError) as caught:
            await new_session(jules, title=TITLE)
    error = caught.value
    assert error.maybe_processed and error.kind == "upstream_error" and "looking for the session failed" in error.message
    assert posts(jules_fake) == 1 and len(jules_fake.sessions) == 1
    assert lookups(jules_fake) == 3  # the lookup itself is an ordinary GET with retries


async def test_create_without_title_is_never_repeated_after_an_ambiguous_failure(jules_fake: FakeJules) -> None:
    jules_fake.server_error("POST", r"/sessions$", after=True)
    async with client(jules_fake) as jules:
        with pytest.raises(JulesError) as caught:
            await new_session(jules)
    assert caught.value.maybe_processed and "no title" in (caught.value.hint or "")
    assert posts(jules_fake) == 1 and lookups(jules_fake) == 0


async def test_check_existing_reuses_a_session_across_pages(jules_fake: FakeJules) -> None:
    async with client(jules_fake) as jules:
        for index in range(4):
            await new_session(jules, title=f"other {index}")
        first = await new_session(jules, title=TITLE)
        await new_session(jules, repo="shop", title=TITLE + " (not exact)")
        found = await jules.find_session(TITLE, source=github_source("acme", "shop"), page_size=2)
        again = await jules.create_session(
            build_session_request(prompt="p", source=github_source("acme", "shop"), starting_branch="main", title=TITLE),
            check_existing=True,
        )
        assert await jules.find_session(TITLE, source=github_source("acme", "other")) is None
    assert found is not None and found.name == first.name == again.name == "sessions/5"
    assert posts(jules_fake) == 6 and len(jules_fake.sessions) == 6
    queries = [r.query for r in jules_fake.requests_to("GET", r"/sessions$")][:3]
    assert queries == ["pageSize=2", "pageSize=2&pageToken=2", "pageSize=2&pageToken=4"]
