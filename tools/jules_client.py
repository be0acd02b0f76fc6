"""A small typed client for the Google Jules REST API (v1alpha), on httpx + pydantic.

Endpoints used: `GET /sources` (paginated), `POST /sessions`, `GET /sessions` (paginated),
`GET /sessions/{id}`, `GET /sessions/{id}/activities` (paginated), `POST /sessions/{id}:approvePlan`.
Authentication is the `X-Goog-Api-Key` header. 429 and 5xx answers (and connection errors) are retried
with bounded exponential backoff that honours `Retry-After`; 401/403 raise `JulesConfigError` (a bad or
missing key, or a repository not connected to Jules), other failures raise `JulesError`.

Creating a session is not idempotent (each session opens its own pull request), so `create_session`
never repeats a POST blindly: it retries only when the request provably was not processed (429, or no
connection was made); after a timeout, a 5xx or a dropped connection it looks for a session with the
exact title first (`find_session`) and creates again only when there is none.

`follow_session` polls a session until it is COMPLETED or FAILED, or until its time bound, and
returns the last session seen; `Session.pr_url` reads `outputs[].pullRequest.url`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timezone
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from tools.errors import ErrorKind, error_result
from tools.redaction import redact

log = logging.getLogger(__name__)

DEFAULT_JULES_API_URL = "https://jules.googleapis.com/v1alpha"
API_KEY_HEADER = "X-Goog-Api-Key"
TERMINAL_STATES = frozenset({"COMPLETED", "FAILED"})
SessionState = Literal[
    "STATE_UNSPECIFIED", "QUEUED", "PLANNING", "AWAITING_PLAN_APPROVAL", "AWAITING_USER_FEEDBACK",
    "IN_PROGRESS", "PAUSED", "FAILED", "COMPLETED",
]  # fmt: skip
AutomationMode = Literal["AUTOMATION_MODE_UNSPECIFIED", "AUTO_CREATE_PR"]
_KEY_HINT = (
    "Set SELFHEAL_JULES_API_KEY (or JULES_API_KEY) to a key from https://jules.google.com/settings#api, "
    "and connect the repository to Jules by installing the Jules GitHub app."
)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


# --------------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------------


class GitHubBranch(_Model):
    display_name: str = ""


class GitHubRepo(_Model):
    owner: str = ""
    repo: str = ""
    is_private: bool = False
    default_branch: GitHubBranch | None = None
    branches: list[GitHubBranch] = []


class Source(_Model):
    """A connected repository: `name` is `sources/github/{owner}/{repo}`."""

    name: str
    id: str = ""
    github_repo: GitHubRepo | None = None


class SourcesPage(_Model):
    sources: list[Source] = []
    next_page_token: str | None = None


class GitHubRepoContext(_Model):
    starting_branch: str


class SourceContext(_Model):
    source: str
    github_repo_context: GitHubRepoContext | None = None


class PullRequest(_Model):
    url: str
    title: str = ""
    description: str = ""
    base_ref: str | None = None
    head_ref: str | None = None


class SessionOutput(_Model):
    pull_request: PullRequest | None = None
    change_set: dict[str, Any] | None = None


class Session(_Model):
    name: str = ""
    id: str = ""
    title: str = ""
    prompt: str = ""
    state: str = "STATE_UNSPECIFIED"
    url: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    source_context: SourceContext | None = None
    automation_mode: str | None = None
    outputs: list[SessionOutput] = []

    @property
    def session_id(self) -> str:
        return self.id or self.name.rsplit("/", 1)[-1]

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def pr_url(self) -> str | None:
        """The URL of the pull request Jules opened (`outputs[].pullRequest.url`), if any."""
        for output in self.outputs:
            if output.pull_request is not None and output.pull_request.url:
                return output.pull_request.url
        return None


class Activity(_Model):
    """One event of a session; the kind is the name of the field present (e.g. `planGenerated`)."""

    name: str = ""
    id: str = ""
    create_time: str | None = None
    originator: str | None = None
    description: str | None = None

    @property
    def kind(self) -> str | None:
        extra = self.model_extra or {}
        for key in extra:
            if key not in ("artifacts",):
                return key
        return None


class ActivitiesPage(_Model):
    activities: list[Activity] = []
    next_page_token: str | None = None


class SessionsPage(_Model):
    sessions: list[Session] = []
    next_page_token: str | None = None


class CreateSessionRequest(_Model):
    """The body of `POST /sessions`; `.payload()` is the exact JSON sent."""

    prompt: str
    title: str | None = None
    source_context: SourceContext
    require_plan_approval: bool = False
    automation_mode: AutomationMode = "AUTO_CREATE_PR"

    def payload(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def github_source(owner: str, repo: str) -> str:
    """The Jules source name of a GitHub repository: `sources/github/{owner}/{repo}`."""
    return f"sources/github/{owner}/{repo}"


def build_session_request(
    *,
    prompt: str,
    source: str,
    starting_branch: str,
    title: str | None = None,
    require_plan_approval: bool = False,
    automation_mode: AutomationMode = "AUTO_CREATE_PR",
) -> CreateSessionRequest:
    """The create-session body; prompt and title are redacted."""
    return CreateSessionRequest(
        prompt=redact(prompt),
        title=redact(title) if title else None,
        source_context=SourceContext(
            source=source, github_repo_context=GitHubRepoContext(starting_branch=starting_branch)
        ),
        require_plan_approval=require_plan_approval,
        automation_mode=automation_mode,
    )


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class JulesError(Exception):
    """A Jules call failed; `kind` is a `tools.errors.ErrorKind`.

    `maybe_processed` is True when a write may have taken effect although it failed (a timeout, a 5xx
    or a dropped connection after the request was sent): look before writing again.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
        maybe_processed: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = redact(message)
        self.status = status
        self.hint = hint
        self.maybe_processed = maybe_processed

    def to_result(self) -> dict:
        extra = {"status": self.status} if self.status is not None else {}
        return error_result(self.kind, self.message, self.hint, **extra)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class JulesConfigError(JulesError):
    """Jules is not usable as configured: no key (`not_configured`), a rejected key (401,
    `unauthorized`) or no access (403, `forbidden`)."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        kind: ErrorKind = "unauthorized" if status == 401 else "forbidden" if status == 403 else "not_configured"
        super().__init__(kind, message, status=status, hint=hint or _KEY_HINT)


# Failures before the request left this process: safe to repeat even a write.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        error = data["error"]
        return " ".join(str(part) for part in (error.get("status"), error.get("message")) if part)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(data)[:300]


def _retry_after(response: httpx.Response, now: float) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


# --------------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------------


class JulesClient:
    """Async Jules client. Use `async with JulesClient(key) as jules:` or call `aclose()`.

    Retries: up to `max_retries` for 429, 5xx and connection errors, waiting
    `min(backoff_max, backoff_base * 2**attempt)` (plus up to `jitter` of it at random), or the
    `Retry-After` the server asked for; a `Retry-After` beyond `backoff_max` fails at once with
    kind `rate_limited`. Session creation is the exception: see `create_session`. `sleep` is
    injectable so tests do not wait.
    """

    def __init__(
        self,
        api_key: str | None,
        base_url: str = DEFAULT_JULES_API_URL,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        jitter: float = 0.1,
        max_pages: int = 50,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise JulesConfigError("no Jules API key configured", hint=_KEY_HINT)
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.jitter = jitter
        self.max_pages = max_pages
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={API_KEY_HEADER: api_key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> JulesClient:
        return cls(settings.jules_api_key, settings.jules_api_url, **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> JulesClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- transport

    def _delay(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        return delay + (random.uniform(0, self.jitter * delay) if self.jitter else 0.0)

    def _transport_error(self, exc: httpx.TransportError, what: str, *, maybe_processed: bool) -> JulesError:
        if isinstance(exc, httpx.TimeoutException):
            return JulesError("timeout", f"Jules API timed out ({what})", maybe_processed=maybe_processed)
        return JulesError(
            "unreachable", f"Jules API at {self.base_url} unreachable ({what}): {type(exc).__name__}",
            hint="Check SELFHEAL_JULES_API_URL and the network path.", maybe_processed=maybe_processed,
        )  # fmt: skip

    async def _request(
        self, method: str, path: str, *, params: dict | None = None, json: Any = None, idempotent: bool = True
    ) -> Any:
        """One API call with retries. With `idempotent=False` only failures that prove the request was
        not processed (429, no connection made) are retried; the others raise at once with
        `maybe_processed=True`."""
        what = f"{method} {path}"
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, _NOT_SENT)
                if sent and not idempotent:
                    raise self._transport_error(exc, what, maybe_processed=True) from None
                if attempt >= self.max_retries:
                    raise self._transport_error(exc, what, maybe_processed=False) from None
                await self._sleep(self._delay(attempt))
                attempt += 1
                continue
            status = response.status_code
            if status < 400:
                return response.json() if response.content else {}
            detail = _error_detail(response)
            if status >= 500 and not idempotent:
                raise JulesError(
                    "upstream_error", f"Jules answered {status} ({what}): {detail}", status=status, maybe_processed=True
                )
            if status == 429 or status >= 500:
                wait = self._delay(attempt)
                asked = _retry_after(response, time.time())
                if asked is not None:
                    if asked > self.backoff_max:
                        raise JulesError(
                            "rate_limited", f"Jules asked to retry after {asked:.0f}s ({what}): {detail}",
                            status=status, hint="Try again later.",
                        )  # fmt: skip
                    wait = max(asked, wait if status >= 500 else 0.0)
                if attempt >= self.max_retries:
                    kind: ErrorKind = "rate_limited" if status == 429 else "upstream_error"
                    raise JulesError(kind, f"Jules kept answering {status} ({what}): {detail}", status=status)
                log.warning("Jules %s on %s; retry %d in %.2fs", status, what, attempt + 1, wait)
                await self._sleep(wait)
                attempt += 1
                continue
            if status == 401:
                raise JulesConfigError(f"Jules rejected the API key (401 {detail})", status=status, hint=_KEY_HINT)
            if status == 403:
                raise JulesConfigError(
                    f"Jules refused access (403 {detail})", status=status,
                    hint="The key is not allowed, or the repository is not connected to Jules. " + _KEY_HINT,
                )  # fmt: skip
            if status == 404:
                raise JulesError("not_found", f"Jules: not found ({what}): {detail}", status=status)
            if status == 400:
                raise JulesError("invalid_argument", f"Jules rejected the request ({what}): {detail}", status=status)
            raise JulesError("upstream_error", f"Jules answered {status} ({what}): {detail}", status=status)

    @staticmethod
    def _session_path(session: str | Session) -> str:
        if isinstance(session, Session):
            session = session.name or f"sessions/{session.id}"
        session = session.strip("/")
        return session if session.startswith("sessions/") else f"sessions/{session}"

    # ---------------------------------------------------------------- sources

    async def list_sources_page(
        self, *, page_token: str | None = None, page_size: int | None = None, filter: str | None = None
    ) -> SourcesPage:
        params = {k: v for k, v in (("pageToken", page_token), ("pageSize", page_size), ("filter", filter)) if v}
        return SourcesPage.model_validate(await self._request("GET", "sources", params=params))

    async def list_sources(self, *, page_size: int | None = 100, filter: str | None = None) -> list[Source]:
        """Every connected source, following `nextPageToken` (at most `max_pages` pages)."""
        sources: list[Source] = []
        token: str | None = None
        for _ in range(self.max_pages):
            page = await self.list_sources_page(page_token=token, page_size=page_size, filter=filter)
            sources.extend(page.sources)
            token = page.next_page_token
            if not token:
                break
        return sources

    async def get_source(self, name: str) -> Source:
        return Source.model_validate(await self._request("GET", name.strip("/")))

    # ---------------------------------------------------------------- sessions

    async def list_sessions_page(self, *, page_token: str | None = None, page_size: int = 100) -> SessionsPage:
        params: dict[str, Any] = {"pageSize": max(1, min(100, page_size))}
        if page_token:
            params["pageToken"] = page_token
        return SessionsPage.model_validate(await self._request("GET", "sessions", params=params))

    async def find_session(self, title: str, *, source: str | None = None, page_size: int = 100) -> Session | None:
        """The session whose title is exactly `title` (and, when given, whose source is `source`).

        Pages through the sessions (at most `max_pages` pages; beyond that a warning is logged and
        None returned). Errors raise `JulesError`: "could not look" is never "not there".
        """
        token: str | None = None
        for _ in range(self.max_pages):
            page = await self.list_sessions_page(page_token=token, page_size=page_size)
            for session in page.sessions:
                context = session.source_context
                if session.title == title and (source is None or context is None or context.source == source):
                    return session
            token = page.next_page_token
            if not token:
                return None
        log.warning("Jules lists more than %d pages of sessions; %r was not among them", self.max_pages, title)
        return None

    async def create_session(self, request: CreateSessionRequest, *, check_existing: bool = False) -> Session:
        """Start a session (`POST /sessions`) with the given body, at most once per title.

        A create is repeated only when it provably was not processed (429, or no connection made).
        After a timeout, a 5xx or a dropped connection the session may exist: after the backoff the
        sessions are searched for the exact title and source (`find_session`) and a match is returned;
        only when there is none is the POST sent again (at most `max_retries` times). A failed search
        raises (never a blind create), as does an ambiguous failure of a request without a title; such
        errors have `maybe_processed=True`. `check_existing=True` searches before the first POST too:
        use it when an earlier attempt (another process, a crash) may have created the session.
        """
        title = request.title
        source = request.source_context.source
        if check_existing and title:
            existing = await self.find_session(title, source=source)
            if existing is not None:
                log.info("Jules session %s with title %r exists; not creating another", existing.name, title)
                return existing
        attempt = 0
        while True:
            try:
                data = await self._request("POST", "sessions", json=request.payload(), idempotent=False)
                return Session.model_validate(data)
            except JulesError as exc:
                if not exc.maybe_processed:
                    raise
                if not title:
                    exc.hint = "The session may have been created; it has no title to look it up by, so not retried."
                    raise
                error = exc
            log.warning("creating Jules session %r: %s; looking for it before trying again", title, error)
            await self._sleep(self._delay(attempt))
            try:
                existing = await self.find_session(title, source=source)
            except JulesError as lookup:
                raise JulesError(
                    error.kind, f"{error.message}; then looking for the session failed: {lookup.message}",
                    status=error.status, maybe_processed=True,
                    hint="The session may exist; look it up by its title before creating another.",
                ) from None  # fmt: skip
            if existing is not None:
                log.info("Jules session %s was created despite the error; using it", existing.name)
                return existing
            if attempt >= self.max_retries:
                raise error
            attempt += 1

    async def get_session(self, session: str | Session) -> Session:
        return Session.model_validate(await self._request("GET", self._session_path(session)))

    async def list_activities_page(
        self, session: str | Session, *, page_token: str | None = None, page_size: int = 50
    ) -> ActivitiesPage:
        params: dict[str, Any] = {"pageSize": max(1, min(100, page_size))}
        if page_token:
            params["pageToken"] = page_token
        data = await self._request("GET", f"{self._session_path(session)}/activities", params=params)
        return ActivitiesPage.model_validate(data)

    async def list_activities(self, session: str | Session, *, page_size: int = 50) -> list[Activity]:
        """Every activity of a session, following `nextPageToken` (at most `max_pages` pages)."""
        activities: list[Activity] = []
        token: str | None = None
        for _ in range(self.max_pages):
            page = await self.list_activities_page(session, page_token=token, page_size=page_size)
            activities.extend(page.activities)
            token = page.next_page_token
            if not token:
                break
        return activities

    async def approve_plan(self, session: str | Session) -> None:
        """Approve the plan of a session waiting in AWAITING_PLAN_APPROVAL."""
        await self._request("POST", f"{self._session_path(session)}:approvePlan", json={})

    async def follow_session(
        self,
        session: str | Session,
        *,
        timeout_seconds: float,
        poll_seconds: float = 15.0,
        on_update: Callable[[Session], Awaitable[None] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Session:
        """Poll until the session is COMPLETED or FAILED or `timeout_seconds` have passed.

        Returns the last session seen (check `is_terminal`; `pr_url` on success). Transient errors
        (rate limits, 5xx, network) are tolerated until the bound; `JulesConfigError` and 404 raise.
        `on_update` is called whenever the state changes.
        """
        deadline = clock() + timeout_seconds
        last: Session | None = None
        last_error: JulesError | None = None
        while True:
            try:
                current = await self.get_session(session)
            except JulesConfigError:
                raise
            except JulesError as exc:
                if exc.kind in ("not_found", "invalid_argument"):
                    raise
                last_error = exc
                log.warning("following Jules session %s: %s", session, exc)
            else:
                if on_update is not None and (last is None or last.state != current.state):
                    result = on_update(current)
                    if asyncio.iscoroutine(result):
                        await result
                last = current
                if current.is_terminal:
                    return current
            remaining = deadline - clock()
            if remaining <= 0:
                if last is None:
                    raise last_error or JulesError("timeout", f"no answer from Jules for {session}")
                return last
            await asyncio.sleep(min(poll_seconds, remaining))
