"""A fake Jules REST API (v1alpha) with scripted session progress.

Endpoints (under `/v1alpha`): sources list (pageSize/pageToken/nextPageToken) and get; sessions
create/list (paginated, oldest first)/get; activities list (paginated); `sessions/{id}:approvePlan`.
The key must arrive in `X-Goog-Api-Key` (missing → 401 UNAUTHENTICATED, wrong → 403 PERMISSION_DENIED).

Each created session follows a script: every `GET` of the session moves it one state further along
`states` (default QUEUED → PLANNING → IN_PROGRESS → COMPLETED). A session in AWAITING_PLAN_APPROVAL
stays there until `:approvePlan`. COMPLETED carries `outputs[].pullRequest.url` (unless the script says
`pr_url=None`); FAILED carries none. `script_next_session(...)` changes the script of the next session.

Scripted failures: `fail(...)`, `too_many_requests(...)`, `server_error(..., after=True)` (the session
is stored, then a 5xx is answered) and `slow_create(seconds)` (the next create is stored, then the
answer waits `seconds`: a client timeout after the write).

Fixture `jules_fake` (import it into a test module): a started fake accepting `JULES_KEY` with the
source `sources/github/acme/shop`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._server import FakeAPI, int_param, now_iso

DEFAULT_STATES = ("QUEUED", "PLANNING", "IN_PROGRESS", "COMPLETED")
JULES_KEY = "jules-test-key"


def _google_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message, "status": code}}, status)


@dataclass
class SessionScript:
    states: tuple[str, ...] = DEFAULT_STATES
    pr_url: str | None = "https://github.com/{owner}/{repo}/pull/{number}"


@dataclass
class FakeSession:
    id: str
    body: dict[str, Any]
    script: SessionScript
    position: int = 0
    approved: bool = False
    gets: int = 0
    activities: list[dict[str, Any]] = field(default_factory=list)
    pr_url: str | None = None

    @property
    def state(self) -> str:
        return self.script.states[self.position]


class FakeJules(FakeAPI):
    prefix = "/v1alpha"

    def __init__(self, *, api_key: str = JULES_KEY, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.api_key = api_key
        self.clock = clock
        self.sources: list[dict[str, Any]] = []
        self.sessions: dict[str, FakeSession] = {}
        self._scripts: list[SessionScript] = []
        self._ids = itertools.count(1)
        self._pr_numbers = itertools.count(100)
        self._create_delays: list[float] = []
        self._state = threading.Lock()

    # ------------------------------------------------------------------ setup and inspection

    def add_source(self, owner: str, repo: str, *, default_branch: str = "main", private: bool = False) -> None:
        self.sources.append({
            "name": f"sources/github/{owner}/{repo}", "id": f"github/{owner}/{repo}",
            "githubRepo": {"owner": owner, "repo": repo, "isPrivate": private,
                           "defaultBranch": {"displayName": default_branch},
                           "branches": [{"displayName": default_branch}]},
        })  # fmt: skip

    def script_next_session(self, *states: str, pr_url: str | None = SessionScript.pr_url) -> None:
        """The next created session walks through `states` (last one sticks)."""
        self._scripts.append(SessionScript(tuple(states) or DEFAULT_STATES, pr_url))

    def too_many_requests(self, method: str, pattern: str, *, retry_after: str = "1", times: int = 1) -> None:
        self.fail(
            method, pattern, 429, times=times, headers={"Retry-After": retry_after},
            body={"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}},
        )  # fmt: skip

    def server_error(
        self, method: str, pattern: str, *, status: int = 500, times: int = 1, after: bool = False
    ) -> None:
        """5xx answers; `after=True` carries the request out first (the client cannot know it succeeded)."""
        self.fail(method, pattern, status, times=times, after=after,
                  body={"error": {"code": status, "message": "Internal error encountered.", "status": "INTERNAL"}})

    def slow_create(self, seconds: float, *, times: int = 1) -> None:
        """The next `times` creates store the session at once but answer only after `seconds`."""
        with self._state:
            self._create_delays.extend([seconds] * times)

    def created_bodies(self) -> list[dict[str, Any]]:
        return [session.body for session in self.sessions.values()]

    # ------------------------------------------------------------------ plumbing

    def authenticate(self, headers: dict[str, str]) -> Response | None:
        key = headers.get("x-goog-api-key")
        if not key:
            return _google_error(401, "UNAUTHENTICATED", "Request is missing required authentication credential.")
        if key != self.api_key:
            return _google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
        return None

    def _session_json(self, session: FakeSession) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": f"sessions/{session.id}", "id": session.id,
            "title": session.body.get("title") or session.body["prompt"][:60],
            "prompt": session.body["prompt"], "sourceContext": session.body["sourceContext"],
            "state": session.state, "url": f"https://jules.google.com/session/{session.id}",
            "createTime": now_iso(self.clock), "updateTime": now_iso(self.clock),
        }  # fmt: skip
        if "automationMode" in session.body:
            data["automationMode"] = session.body["automationMode"]
        if session.state == "COMPLETED" and session.pr_url:
            data["outputs"] = [{"pullRequest": {"url": session.pr_url, "title": data["title"],
                                                "description": "Fix from the fake Jules"}}]  # fmt: skip
        return data

    def _activity(self, session: FakeSession, kind: str, payload: dict[str, Any]) -> None:
        number = len(session.activities) + 1
        session.activities.append({
            "name": f"sessions/{session.id}/activities/{number}", "id": str(number),
            "createTime": now_iso(self.clock), "originator": "agent" if kind != "planApproved" else "user",
            "description": kind, kind: payload,
        })  # fmt: skip

    def _advance(self, session: FakeSession) -> None:
        if session.state == "AWAITING_PLAN_APPROVAL" and not session.approved:
            return
        if session.position + 1 >= len(session.script.states):
            return
        session.position += 1
        state = session.state
        if state == "PLANNING":
            self._activity(session, "planGenerated", {"plan": {"steps": [{"title": "Find the regression"}]}})
        elif state == "IN_PROGRESS":
            self._activity(session, "progressUpdated", {"title": "Working on the fix"})
        elif state == "COMPLETED":
            self._activity(session, "sessionCompleted", {})
        elif state == "FAILED":
            self._activity(session, "sessionFailed", {"reason": "could not reproduce the failure"})

    # ------------------------------------------------------------------ routes

    def routes(self):  # noqa: ANN201 - see FakeAPI.routes
        return [
            ("GET", "/sources", self.list_sources),
            ("GET", "/sources/{name:path}", self.get_source),
            ("POST", "/sessions", self.create_session),
            ("GET", "/sessions", self.list_sessions),
            ("POST", "/sessions/{sid}:approvePlan", self.approve_plan),
            ("GET", "/sessions/{sid}/activities", self.list_activities),
            ("GET", "/sessions/{sid}", self.get_session),
        ]

    async def list_sources(self, request: Request) -> Response:
        size = int_param(request, "pageSize", 30, 1, 100)
        start = int(request.query_params.get("pageToken") or 0)
        chunk = self.sources[start : start + size]
        data: dict[str, Any] = {"sources": chunk}
        if start + size < len(self.sources):
            data["nextPageToken"] = str(start + size)
        return JSONResponse(data)

    async def get_source(self, request: Request) -> Response:
        name = f"sources/{request.path_params['name']}"
        for source in self.sources:
            if source["name"] == name:
                return JSONResponse(source)
        return _google_error(404, "NOT_FOUND", f"{name} not found")

    async def create_session(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload")
        if not body.get("prompt"):
            return _google_error(400, "INVALID_ARGUMENT", "prompt is required")
        source = (body.get("sourceContext") or {}).get("source")
        if source not in {s["name"] for s in self.sources}:
            return _google_error(404, "NOT_FOUND", f"source {source!r} not found; connect the repository first")
        with self._state:
            script = self._scripts.pop(0) if self._scripts else SessionScript()
            if body.get("requirePlanApproval") and "AWAITING_PLAN_APPROVAL" not in script.states:
                states = list(script.states)
                states.insert(states.index("PLANNING") + 1 if "PLANNING" in states else 1, "AWAITING_PLAN_APPROVAL")
                script = SessionScript(tuple(states), script.pr_url)
            session = FakeSession(id=str(next(self._ids)), body=body, script=script)
            owner, repo = source.split("/")[2:4]
            if script.pr_url:
                session.pr_url = script.pr_url.format(owner=owner, repo=repo, number=next(self._pr_numbers))
            self.sessions[session.id] = session
            delay = self._create_delays.pop(0) if self._create_delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        return JSONResponse(self._session_json(session))

    async def list_sessions(self, request: Request) -> Response:
        size = int_param(request, "pageSize", 30, 1, 100)
        start = int(request.query_params.get("pageToken") or 0)
        with self._state:
            listed = list(self.sessions.values())
        data: dict[str, Any] = {"sessions": [self._session_json(session) for session in listed[start : start + size]]}
        if start + size < len(listed):
            data["nextPageToken"] = str(start + size)
        return JSONResponse(data)

    async def get_session(self, request: Request) -> Response:
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return _google_error(404, "NOT_FOUND", "session not found")
        with self._state:
            if session.gets:
                self._advance(session)
            session.gets += 1
        return JSONResponse(self._session_json(session))

    async def list_activities(self, request: Request) -> Response:
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return _google_error(404, "NOT_FOUND", "session not found")
        size = int_param(request, "pageSize", 50, 1, 100)
        start = int(request.query_params.get("pageToken") or 0)
        data: dict[str, Any] = {"activities": session.activities[start : start + size]}
        if start + size < len(session.activities):
            data["nextPageToken"] = str(start + size)
        return JSONResponse(data)

    async def approve_plan(self, request: Request) -> Response:
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return _google_error(404, "NOT_FOUND", "session not found")
        if session.state != "AWAITING_PLAN_APPROVAL":
            return _google_error(400, "FAILED_PRECONDITION", f"session is {session.state}, not awaiting approval")
        with self._state:
            session.approved = True
            self._activity(session, "planApproved", {"planId": "plan-1"})
        return JSONResponse({})


@pytest.fixture
def jules_fake() -> Iterator[FakeJules]:
    fake = FakeJules(api_key=JULES_KEY)
    fake.start()
    fake.add_source("acme", "shop")
    try:
        yield fake
    finally:
        fake.stop()
