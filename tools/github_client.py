"""GitHub through PyGithub: repository URLs, one issue per rollout revision, and pull requests.

Three things live here:

- `parse_repo_url` turns every common spelling of a repository (HTTPS, `.git`, trailing slash,
  `git@host:o/r.git`, `ssh://`, GitHub Enterprise hosts) into a `RepoRef` with its API base URL.
- `GitHubClient.find_or_file_issue` keeps **one open issue per fingerprint** (namespace/rollout/canary
  pod-template hash). The fingerprint is an HTML comment in the issue body; open issues carrying the
  label are listed (the search API lags behind writes) and the marker decides. A repeat adds a comment.
- `GitHubClient.open_pull_request` commits files to a **new branch** created from the base branch head
  (the base branch is never written) through the git data API and opens a PR that says `Fixes #N`.

Every title, body and comment is redacted (`tools.redaction.redact`) inside this module before it is
sent. Failures raise `GitHubError`, whose `kind` is one of `tools.errors.ErrorKind`; 5xx answers and
rate limits are retried with bounded exponential backoff (POSTs check first whether the earlier
attempt took effect, so a retry never files twice).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

import requests
from github import Auth, Github, GithubException, InputGitAuthor, InputGitTreeElement
from github.Issue import Issue
from github.Repository import Repository
from pydantic import BaseModel, ConfigDict

from tools.errors import ErrorKind, error_result
from tools.redaction import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

PUBLIC_HOST = "github.com"
PUBLIC_API_URL = "https://api.github.com"
DEFAULT_LABELS: tuple[str, ...] = ("canary-rollback", "automated", "jules")
LABEL_COLORS: dict[str, str] = {"canary-rollback": "d73a4a", "automated": "ededed", "jules": "5319e7"}
DEFAULT_LABEL_COLOR = "c5def5"
# GitHub refuses issue bodies and comments above 65,536 characters.
MAX_BODY_CHARS = 65_000
MAX_PR_FILES = 50
MAX_FILE_BYTES = 1_000_000
# Redaction kinds that are certainly credentials (recognised by their shape, or a literal
# `Bearer <token>` / `user:password@`); a proposed file containing one is refused. The kinds recognised
# only by their context stay out: SECRET_VALUE and EMAIL, and AUTHORIZATION and COOKIE, which fire on
# ordinary code (`if cookie: ...`, `authorization = request.headers.get(...)`). A literal
# `Basic <base64 of user:password>` is refused through `_basic_credentials` instead.
_HARD_SECRET_KINDS = {
    "PRIVATE_KEY",
    "JWT",
    "BEARER_TOKEN",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "GOOGLE_API_KEY",
    "GOOGLE_OAUTH_TOKEN",
    "AWS_ACCESS_KEY",
    "SLACK_TOKEN",
    "STRIPE_KEY",
    "URL_PASSWORD",
}
_BASIC_AUTH_RE = re.compile(r"(?i)\bbasic\s+([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])")
# Web routes that may follow owner/repo in a pasted browser URL.
_WEB_ROUTES = {
    "tree", "blob", "pull", "pulls", "issues", "commit", "commits", "actions", "releases",
    "wiki", "tags", "branches", "compare", "settings",
}  # fmt: skip
_OWNER_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,98}[A-Za-z0-9_])?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?$")
_SCP_RE = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\s][^\s]*)$")
_FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,300}$")
_MARKER_RE = re.compile(r"<!-- selfheal:fingerprint=([A-Za-z0-9._:/-]+) -->")
_COMMENT_MARKER_RE = re.compile(r"<!-- selfheal:comment=([0-9a-f]+) -->")
_REDACTED_KIND_RE = re.compile(r"\[REDACTED:([A-Z_]+)\]")
_BRANCH_BAD_RE = re.compile(r"(\.\.|[\x00-\x20~^:?*\[\\\x7f]|@\{|//)")


# --------------------------------------------------------------------------------------------------
# Repository URLs
# --------------------------------------------------------------------------------------------------


class RepoRef(BaseModel):
    """A GitHub repository: where it lives and which REST API serves it."""

    model_config = ConfigDict(frozen=True)

    host: str
    owner: str
    name: str
    api_base_url: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def html_url(self) -> str:
        return f"https://{self.host}/{self.owner}/{self.name}"


def api_base_for_host(host: str, scheme: str = "https") -> str:
    """REST API base URL of a GitHub host: api.github.com, or `<scheme>://HOST/api/v3` (Enterprise)."""
    if host.lower() in (PUBLIC_HOST, f"www.{PUBLIC_HOST}"):
        return PUBLIC_API_URL
    return f"{scheme}://{host}/api/v3"


def parse_repo_url(url: str) -> RepoRef:
    """Parse a repository URL in any common form into a `RepoRef`.

    Accepted: `https://github.com/o/r`, with `.git` and/or a trailing slash, browser URLs such as
    `https://github.com/o/r/tree/main`, `git@github.com:o/r.git`, `ssh://git@github.com[:22]/o/r.git`,
    `git://…`, and the same on GitHub Enterprise hosts (API base `https://HOST/api/v3`).
    Raises ValueError with a message that says what was wrong.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("repository URL is empty; expected e.g. https://github.com/OWNER/REPO")
    raw = url.strip()
    shown = redact(raw)
    expected = "expected https://HOST/OWNER/REPO, git@HOST:OWNER/REPO.git or ssh://git@HOST/OWNER/REPO.git"
    if "://" in raw:
        parts = urllib.parse.urlsplit(raw)
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            raise ValueError(f"unsupported scheme {scheme!r} in repository URL {shown!r}; {expected}")
        try:
            hostname = (parts.hostname or "").lower()
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid host or port in repository URL {shown!r}: {exc}") from None
        if not hostname:
            raise ValueError(f"repository URL {shown!r} has no host; {expected}")
        web_scheme = scheme if scheme in ("http", "https") else "https"
        host = hostname if port is None or web_scheme != scheme or port in (80, 443) else f"{hostname}:{port}"
        path = parts.path
    else:
        match = _SCP_RE.match(raw)
        if not match:
            raise ValueError(f"not a repository URL: {shown!r}; {expected}")
        host = match.group("host").lower()
        web_scheme = "https"
        path = match.group("path")
    if host.startswith("www."):
        host = host[4:]
    if not _HOST_RE.match(host):
        raise ValueError(f"invalid host {host!r} in repository URL {shown!r}")
    segments = [urllib.parse.unquote(segment) for segment in path.strip("/").split("/") if segment]
    if len(segments) < 2:
        raise ValueError(f"repository URL {shown!r} does not name OWNER/REPO; {expected}")
    if len(segments) > 2 and segments[2] not in _WEB_ROUTES:
        raise ValueError(f"repository URL {shown!r} has extra path segments after OWNER/REPO; {expected}")
    owner, name = segments[0], segments[1]
    if name.endswith(".git"):
        name = name[: -len(".git")]
    if not _OWNER_RE.match(owner):
        raise ValueError(f"invalid owner {owner!r} in repository URL {shown!r}")
    if not _NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(f"invalid repository name {name!r} in repository URL {shown!r}")
    return RepoRef(host=host, owner=owner, name=name, api_base_url=api_base_for_host(host, web_scheme))


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class GitHubError(Exception):
    """A GitHub call failed; `kind` is a `tools.errors.ErrorKind`."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        reset_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = redact(message)
        self.hint = hint
        self.status = status
        self.reset_at = reset_at

    def to_result(self) -> dict:
        """The `tools.errors.error_result` dict for a tool answer."""
        extra: dict[str, Any] = {}
        if self.status is not None:
            extra["status"] = self.status
        if self.reset_at is not None:
            extra["reset_at"] = self.reset_at.isoformat()
        return error_result(self.kind, self.message, self.hint, **extra)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


_TOKEN_HINT = (
    "Set SELFHEAL_GITHUB_TOKEN (or GITHUB_TOKEN) to a valid token for this repository "
    "(fine-grained: Issues, Contents and Pull requests read/write). Without a token remediation "
    "is a dry run written to the outbox."
)


def _message_of(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        message = str(data.get("message") or "")
        errors = data.get("errors")
        details: list[str] = []
        if isinstance(errors, list):
            for item in errors:
                if isinstance(item, dict):
                    text = item.get("message") or " ".join(
                        str(item[key]) for key in ("resource", "field", "code") if item.get(key)
                    )
                    details.append(str(text))
                else:
                    details.append(str(item))
        return message + (": " + "; ".join(details) if details else "")
    return str(data or exc.message or "")


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    if not headers:
        return None
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return str(value)
    return None


def _is_rate_limited(exc: GithubException) -> bool:
    if exc.status == 429:
        return True
    if exc.status != 403:
        return False
    if _header(exc.headers, "X-RateLimit-Remaining") == "0" or _header(exc.headers, "Retry-After"):
        return True
    message = _message_of(exc).lower()
    return "rate limit" in message


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


class IssueInfo(BaseModel):
    number: int
    url: str
    title: str
    state: str
    fingerprint: str | None = None


class IssueOutcome(BaseModel):
    """What `find_or_file_issue` did: created a new issue or commented on the existing one."""

    action: Literal["created", "commented"]
    number: int
    url: str
    comment_url: str | None = None
    labels_created: list[str] = []


class PullRequestOutcome(BaseModel):
    number: int
    url: str
    branch: str
    base_branch: str
    commit_sha: str
    files: list[str]


# --------------------------------------------------------------------------------------------------
# Helpers shared with remediation
# --------------------------------------------------------------------------------------------------


def fingerprint_marker(fingerprint: str) -> str:
    """The HTML comment that identifies the issue of one rollout revision."""
    check_fingerprint(fingerprint)
    return f"<!-- selfheal:fingerprint={fingerprint} -->"


def check_fingerprint(fingerprint: str) -> str:
    if not _FINGERPRINT_RE.match(fingerprint or ""):
        raise ValueError(f"invalid fingerprint {fingerprint!r}: use letters, digits and . _ : / -")
    return fingerprint


def fingerprint_of(body: str | None) -> str | None:
    """The fingerprint recorded in an issue body, if any."""
    match = _MARKER_RE.search(body or "")
    return match.group(1) if match else None


def prepare_body(text: str, *, marker: str = "") -> str:
    """Redact `text`, drop any stale fingerprint marker, clip to GitHub's size limit, prepend `marker`."""
    body = _MARKER_RE.sub("", redact(text or "")).strip("\n")
    budget = MAX_BODY_CHARS - len(marker) - 2
    if len(body) > budget:
        note = "\n\n_(truncated to fit GitHub's size limit)_"
        body = body[: budget - len(note)].rstrip() + note
    return f"{marker}\n{body}" if marker else body


def check_repo_path(path: str) -> str:
    """Validate a file path for a commit: relative, inside the repository, not under `.git/`.

    Returns the normalised path; raises ValueError with the reason otherwise. Paths under
    `.github/workflows/` are refused too: an automated fix must not change what CI runs with secrets.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError("empty file path")
    if "\x00" in path or any(ord(ch) < 0x20 for ch in path):
        raise ValueError(f"file path {path!r} contains control characters")
    if "\\" in path:
        raise ValueError(f"file path {path!r} uses backslashes; use forward slashes")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ValueError(f"file path {path!r} is absolute; give a path relative to the repository root")
    segments = path.split("/")
    if any(segment == ".." for segment in segments):
        raise ValueError(f"file path {path!r} leaves the repository ('..')")
    if segments[-1] == "":
        raise ValueError(f"file path {path!r} names a directory, not a file")
    parts = [segment for segment in segments if segment not in ("", ".")]
    if not parts:
        raise ValueError(f"file path {path!r} names no file")
    if any(segment.lower() == ".git" for segment in parts):
        raise ValueError(f"file path {path!r} is inside .git/, which cannot be written")
    normalised = "/".join(parts)
    if normalised.lower().startswith(".github/workflows/"):
        raise ValueError(f"file path {path!r} is a CI workflow; automated fixes may not change workflows")
    return normalised


def _basic_credentials(text: str) -> bool:
    """Whether `text` holds a literal HTTP Basic credential: `Basic <base64 of user:password>`."""
    for match in _BASIC_AUTH_RE.finditer(text):
        try:
            decoded = base64.b64decode(match.group(1), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        _user, sep, password = decoded.partition(":")
        if sep and password and decoded.isprintable():
            return True
    return False


def validate_files(files: Mapping[str, str]) -> dict[str, str]:
    """Check a proposed change (path → full text) and return it with normalised paths.

    Raises GitHubError: `refused` for a path outside the repository (absolute, `..`, `.git/`, CI
    workflows) or content holding a credential; `invalid_argument` for empty, oversized or duplicate input.
    """
    if not files:
        raise GitHubError("invalid_argument", "no files given: a pull request needs at least one changed file")
    if len(files) > MAX_PR_FILES:
        raise GitHubError("invalid_argument", f"too many files ({len(files)}); at most {MAX_PR_FILES} per PR")
    clean: dict[str, str] = {}
    for path, content in files.items():
        try:
            normalised = check_repo_path(path)
        except ValueError as exc:
            raise GitHubError(
                "refused", str(exc), hint="Give paths relative to the repository root, e.g. src/app.py."
            ) from None
        if not isinstance(content, str):
            raise GitHubError("invalid_argument", f"content of {normalised} must be text")
        if len(content.encode("utf-8")) > MAX_FILE_BYTES:
            raise GitHubError("invalid_argument", f"{normalised} is larger than {MAX_FILE_BYTES} bytes")
        kinds = set(_REDACTED_KIND_RE.findall(redact(content))) & _HARD_SECRET_KINDS
        if _basic_credentials(content):
            kinds.add("AUTHORIZATION")
        if kinds:
            raise GitHubError(
                "refused",
                f"{normalised} contains what looks like a credential ({', '.join(sorted(kinds))})",
                hint="Remove the secret from the change; read it from configuration instead.",
            )
        if normalised in clean:
            raise GitHubError("invalid_argument", f"{normalised} is given twice")
        clean[normalised] = content
    return clean


def check_branch_name(branch: str) -> str:
    """Validate a new branch name against git's ref rules."""
    if (
        not branch
        or branch.startswith(("/", "-", "."))
        or branch.endswith(("/", ".", ".lock"))
        or _BRANCH_BAD_RE.search(branch)
        or "/." in branch
        or branch.startswith("refs/")
    ):
        raise ValueError(f"invalid branch name {branch!r}")
    return branch


def _is_pull(issue: Issue) -> bool:
    # `issue.pull_request` would cost one GET per listed issue (PyGithub completes absent attributes).
    return "/pull/" in (issue.html_url or "")


def _slug(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "fix"


# --------------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------------


class GitHubClient:
    """PyGithub pointed at one API base URL (github.com, an Enterprise server, or a test fake).

    Retries are done here, not by urllib3, so that POSTs can be checked before they are repeated:
    5xx and connection errors back off exponentially (`backoff_base * 2**attempt`, at most
    `backoff_max`) up to `max_retries` times; a primary rate limit (403 with `X-RateLimit-Remaining: 0`)
    waits until `X-RateLimit-Reset` when that is within `max_rate_limit_wait` seconds, otherwise
    `GitHubError(kind="rate_limited", reset_at=…)` is raised at once. Methods are synchronous
    (PyGithub is); call them from async code with `asyncio.to_thread`.
    """

    def __init__(
        self,
        token: str,
        base_url: str = PUBLIC_API_URL,
        *,
        timeout: int = 15,
        per_page: int = 100,
        max_retries: int = 3,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_rate_limit_wait: float = 60.0,
        max_pages: int = 20,
        seconds_between_requests: float = 0.0,
        seconds_between_writes: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not token:
            raise GitHubError("not_configured", "no GitHub token configured", hint=_TOKEN_HINT)
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_rate_limit_wait = max_rate_limit_wait
        self.max_pages = max_pages
        self.per_page = per_page
        self._sleep = sleep
        self._clock = clock
        self._gh = Github(
            base_url=self.base_url,
            auth=Auth.Token(token),
            timeout=timeout,
            per_page=per_page,
            retry=None,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
        )
        self._repos: dict[str, Repository] = {}

    @classmethod
    def from_settings(cls, settings: Any, repo: RepoRef | None = None, **kwargs: Any) -> GitHubClient:
        """A client for `repo` from Settings: `github_api_url` when set, else the repository host's API."""
        base = settings.github_api_url or (repo.api_base_url if repo else PUBLIC_API_URL)
        return cls(settings.github_token or "", base, **kwargs)

    def close(self) -> None:
        self._gh.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- retry and error mapping

    def _call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        check: Callable[[], T | None] | None = None,
        not_found: str | None = None,
    ) -> T:
        """Run `fn` with retries; `check` (for POSTs) returns the result if an earlier try took effect."""
        attempt = 0
        rate_waits = 0
        while True:
            uncertain = False  # the failed try may have taken effect (5xx, connection error)
            try:
                return fn()
            except GithubException as exc:
                if _is_rate_limited(exc):
                    wait, reset_at = self._rate_limit_wait(exc)
                    if wait is None or wait > self.max_rate_limit_wait or rate_waits >= 2:
                        when = f" until {reset_at.isoformat()}" if reset_at else ""
                        raise GitHubError(
                            "rate_limited",
                            f"GitHub rate limit exceeded while trying to {what}{when}",
                            hint="Retry after the reset time, or use a token with a higher limit.",
                            status=exc.status,
                            reset_at=reset_at,
                        ) from None
                    rate_waits += 1
                    log.warning("GitHub rate limit while trying to %s; waiting %.1fs", what, wait)
                    self._sleep(wait)
                elif exc.status >= 500 and attempt < self.max_retries:
                    delay = min(self.backoff_max, self.backoff_base * 2**attempt)
                    attempt += 1
                    log.warning("GitHub %s while trying to %s; retry %d in %.2fs", exc.status, what, attempt, delay)
                    self._sleep(delay)
                    uncertain = True
                else:
                    raise self._map(exc, what, not_found) from None
            except requests.exceptions.RequestException as exc:
                if attempt >= self.max_retries:
                    kind: ErrorKind = "timeout" if isinstance(exc, requests.exceptions.Timeout) else "unreachable"
                    raise GitHubError(
                        kind,
                        f"GitHub API at {self.base_url} could not be reached to {what}: {type(exc).__name__}",
                        hint="Check SELFHEAL_GITHUB_API_URL and the network path to GitHub.",
                    ) from None
                delay = min(self.backoff_max, self.backoff_base * 2**attempt)
                attempt += 1
                self._sleep(delay)
                uncertain = True
            if uncertain and check is not None:
                done = check()
                if done is not None:
                    return done

    def _rate_limit_wait(self, exc: GithubException) -> tuple[float | None, datetime | None]:
        retry_after = _header(exc.headers, "Retry-After")
        if retry_after and retry_after.strip().isdigit():
            seconds = float(retry_after.strip())
            return seconds, datetime.fromtimestamp(self._clock() + seconds, timezone.utc)
        reset = _header(exc.headers, "X-RateLimit-Reset")
        if reset and reset.strip().isdigit():
            reset_at = datetime.fromtimestamp(int(reset.strip()), timezone.utc)
            return max(0.0, int(reset.strip()) - self._clock()) + 1.0, reset_at
        return None, None

    def _map(self, exc: GithubException, what: str, not_found: str | None) -> GitHubError:
        status = exc.status
        detail = _message_of(exc)
        if status == 401:
            return GitHubError(
                "unauthorized", f"GitHub rejected the token (401 {detail or 'Bad credentials'})", hint=_TOKEN_HINT,
                status=status,
            )  # fmt: skip
        if status == 403:
            return GitHubError(
                "forbidden",
                f"GitHub refused to {what} (403 {detail})",
                hint="The token lacks permission on this repository (Issues, Contents and Pull requests: write).",
                status=status,
            )
        if status == 404:
            return GitHubError(
                "not_found",
                not_found or f"GitHub returned 404 while trying to {what}",
                hint="Check the repository URL and that the token can see the repository.",
                status=status,
            )
        if status == 410:
            return GitHubError("forbidden", f"cannot {what}: {detail or 'gone'} (410)", status=status)
        if status == 422:
            return GitHubError("invalid_argument", f"GitHub rejected the request to {what} (422 {detail})", status=status)
        if status >= 500:
            return GitHubError(
                "upstream_error", f"GitHub kept failing ({status}) while trying to {what}", status=status,
                hint="GitHub is having trouble; try again later.",
            )  # fmt: skip
        return GitHubError("upstream_error", f"GitHub answered {status} while trying to {what}: {detail}", status=status)

    def _list(self, what: str, make: Callable[[], Iterable[T]], limit: int | None = None) -> list[T]:
        """Read a paginated listing completely (bounded by `max_pages`), retrying as one unit."""
        cap = limit if limit is not None else self.max_pages * self.per_page

        def read() -> list[T]:
            items: list[T] = []
            for item in make():
                items.append(item)
                if len(items) >= cap:
                    break
            return items

        return self._call(what, read)

    # ---------------------------------------------------------------- repositories and labels

    def repository(self, repo: RepoRef) -> Repository:
        """The repository object (fetched once per client); 404 → GitHubError(not_found)."""
        key = repo.full_name.lower()
        if key not in self._repos:
            self._repos[key] = self._call(
                f"read repository {repo.full_name}",
                lambda: self._gh.get_repo(repo.full_name),
                not_found=f"repository {repo.full_name} not found at {self.base_url} (or the token cannot see it)",
            )
        return self._repos[key]

    def default_branch(self, repo: RepoRef) -> str:
        """The repository's default branch (e.g. main)."""
        return self.repository(repo).default_branch

    def ensure_labels(self, repo: RepoRef, labels: Sequence[str]) -> list[str]:
        """Create the labels that do not exist yet; returns the names created."""
        wanted = [label for label in dict.fromkeys(label.strip() for label in labels) if label]
        if not wanted:
            return []
        gh_repo = self.repository(repo)
        existing = {label.name.lower() for label in self._list("list labels", gh_repo.get_labels)}
        created: list[str] = []
        for name in wanted:
            if name.lower() in existing:
                continue
            color = LABEL_COLORS.get(name.lower(), DEFAULT_LABEL_COLOR)
            try:
                self._call(
                    f"create label {name!r}",
                    lambda name=name, color=color: gh_repo.create_label(
                        name, color, "Filed by selfheal (self-healing rollouts)"
                    ),
                )
                created.append(name)
            except GitHubError as exc:
                # Another replica created it between our list and our create: fine.
                if exc.status != 422 or "already" not in exc.message.lower():
                    raise
        return created

    # ---------------------------------------------------------------- issues

    def _info(self, issue: Issue) -> IssueInfo:
        return IssueInfo(
            number=issue.number,
            url=issue.html_url,
            title=issue.title,
            state=issue.state,
            fingerprint=fingerprint_of(issue.body),
        )

    def get_issue(self, repo: RepoRef, number: int) -> IssueInfo | None:
        """The issue `number`, or None when it does not exist (or is a pull request)."""
        gh_repo = self.repository(repo)
        try:
            issue = self._call(f"read issue #{number}", lambda: gh_repo.get_issue(number))
        except GitHubError as exc:
            if exc.kind == "not_found":
                return None
            raise
        if _is_pull(issue):
            return None
        return self._info(issue)

    def find_issue(self, repo: RepoRef, fingerprint: str, label: str | None = None) -> IssueInfo | None:
        """The open issue whose body carries the fingerprint marker (lists open issues with `label`)."""
        check_fingerprint(fingerprint)
        gh_repo = self.repository(repo)

        def listing() -> Iterable[Issue]:
            if label:
                return gh_repo.get_issues(state="open", labels=[label], sort="created", direction="desc")
            return gh_repo.get_issues(state="open", sort="created", direction="desc")

        for issue in self._list("list open issues", listing):
            if not _is_pull(issue) and fingerprint_of(issue.body) == fingerprint:
                return self._info(issue)
        return None

    def comment_issue(self, repo: RepoRef, number: int, body: str) -> str:
        """Add a (redacted) comment to issue `number`; returns the comment's URL.

        A retry after a 5xx first looks for a comment with the same content marker posted meanwhile.
        """
        gh_repo = self.repository(repo)
        digest = secrets.token_hex(8)
        text = prepare_body(body, marker=f"<!-- selfheal:comment={digest} -->")
        issue = self._call(f"read issue #{number}", lambda: gh_repo.get_issue(number), not_found=f"issue #{number} not found")
        started = datetime.fromtimestamp(self._clock() - 60, timezone.utc)

        def posted() -> str | None:
            for comment in self._list("list comments", lambda: issue.get_comments(since=started)):
                match = _COMMENT_MARKER_RE.search(comment.body or "")
                if match and match.group(1) == digest:
                    return comment.html_url
            return None

        comment = self._call(
            f"comment on issue #{number}", lambda: issue.create_comment(text).html_url, check=posted
        )
        return comment

    def find_or_file_issue(
        self,
        repo: RepoRef,
        *,
        fingerprint: str,
        title: str,
        body: str,
        comment: str,
        labels: Sequence[str] = DEFAULT_LABELS,
        known_issue_number: int | None = None,
    ) -> IssueOutcome:
        """Keep one open issue per fingerprint: comment on it when it exists, else create it.

        `known_issue_number` (from the state store) is tried first; then the open issues with the first
        label are searched for the fingerprint marker; otherwise the missing labels are created and a new
        issue is filed with the marker in its body. `title`, `body` and `comment` are redacted here.
        """
        marker = fingerprint_marker(fingerprint)
        gh_repo = self.repository(repo)
        existing: IssueInfo | None = None
        if known_issue_number is not None:
            info = self.get_issue(repo, known_issue_number)
            if info is not None and info.state == "open" and info.fingerprint == fingerprint:
                existing = info
        if existing is None:
            existing = self.find_issue(repo, fingerprint, labels[0] if labels else None)
        if existing is not None:
            url = self.comment_issue(repo, existing.number, comment)
            return IssueOutcome(action="commented", number=existing.number, url=existing.url, comment_url=url)

        created_labels = self.ensure_labels(repo, labels)
        text = prepare_body(body, marker=marker)
        clean_title = redact(title).strip()[:250] or f"Canary rollback {fingerprint}"

        def filed_meanwhile() -> Issue | None:
            found = self.find_issue(repo, fingerprint, labels[0] if labels else None)
            return gh_repo.get_issue(found.number) if found else None

        issue = self._call(
            f"create an issue in {repo.full_name}",
            lambda: gh_repo.create_issue(title=clean_title, body=text, labels=list(labels)),
            check=filed_meanwhile,
        )
        return IssueOutcome(action="created", number=issue.number, url=issue.html_url, labels_created=created_labels)

    # ---------------------------------------------------------------- pull requests

    def open_pull_request(
        self,
        repo: RepoRef,
        base_branch: str,
        title: str,
        body: str,
        files: Mapping[str, str],
        issue_number: int | None = None,
        *,
        branch: str | None = None,
        commit_message: str | None = None,
        author_name: str | None = None,
        author_email: str | None = None,
        draft: bool = False,
    ) -> PullRequestOutcome:
        """Commit `files` (path → full text) on a new branch from `base_branch` and open a pull request.

        The branch is created only after the commit exists, from the base branch head; the base
        branch itself is never written. Paths must be relative and stay inside the repository (no
        absolute paths, `..`, `.git/` or CI workflows). The PR body ends with `Fixes #<issue_number>`.
        Files that contain a credential (private key, token) are refused rather than committed.
        """
        if not base_branch:
            raise GitHubError("invalid_argument", "no base branch given for the pull request")
        clean = validate_files(files)
        head = branch or f"selfheal/{f'issue-{issue_number}-' if issue_number else ''}{_slug(title, 30)}-{secrets.token_hex(3)}"
        try:
            check_branch_name(head)
        except ValueError as exc:
            raise GitHubError("invalid_argument", str(exc)) from None
        if head == base_branch:
            raise GitHubError("refused", f"refusing to commit to the base branch {base_branch!r}; use a new branch")

        gh_repo = self.repository(repo)
        base_ref = self._call(
            f"read branch {base_branch}",
            lambda: gh_repo.get_git_ref(f"heads/{base_branch}"),
            not_found=f"base branch {base_branch!r} not found in {repo.full_name}",
        )
        base_sha = base_ref.object.sha
        base_commit = self._call("read the base commit", lambda: gh_repo.get_git_commit(base_sha))
        elements = [InputGitTreeElement(path, "100644", "blob", content=content) for path, content in clean.items()]
        tree = self._call("create the tree", lambda: gh_repo.create_git_tree(elements, base_commit.tree))
        message = redact(commit_message or title).strip() or "Fix canary failure"
        if issue_number:
            message += f"\n\nRefs #{issue_number}"
        author = InputGitAuthor(author_name, author_email) if author_name and author_email else None

        def commit() -> Any:
            if author is not None:
                return gh_repo.create_git_commit(message, tree, [base_commit], author=author, committer=author)
            return gh_repo.create_git_commit(message, tree, [base_commit])

        new_commit = self._call("create the commit", commit)

        def ref_exists() -> Any | None:
            try:
                ref = gh_repo.get_git_ref(f"heads/{head}")
            except GithubException:
                return None
            return ref if ref.object.sha == new_commit.sha else None

        try:
            self._call(
                f"create branch {head}",
                lambda: gh_repo.create_git_ref(f"refs/heads/{head}", new_commit.sha),
                check=ref_exists,
            )
        except GitHubError as exc:
            if exc.status == 422 and ref_exists() is None:
                raise GitHubError(
                    "invalid_argument", f"branch {head!r} already exists in {repo.full_name}",
                    hint="Choose another branch name.", status=422,
                ) from None  # fmt: skip
            if exc.status != 422:
                raise
        pr_body = prepare_body(body)
        if issue_number and f"#{issue_number}" not in pr_body:
            pr_body += f"\n\nFixes #{issue_number}"
        pr_title = redact(title).strip()[:250] or "Fix canary failure"

        def existing_pull() -> Any | None:
            pulls = self._list(
                "list pull requests",
                lambda: gh_repo.get_pulls(state="open", head=f"{repo.owner}:{head}", base=base_branch),
                limit=1,
            )
            return pulls[0] if pulls else None

        pull = self._call(
            "open the pull request",
            lambda: gh_repo.create_pull(base=base_branch, head=head, title=pr_title, body=pr_body, draft=draft),
            check=existing_pull,
        )
        return PullRequestOutcome(
            number=pull.number,
            url=pull.html_url,
            branch=head,
            base_branch=base_branch,
            commit_sha=new_commit.sha,
            files=sorted(clean),
        )
