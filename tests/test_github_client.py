"""tools.github_client against the fake GitHub REST API (PyGithub pointed at it by base URL)."""

from __future__ import annotations

import time

import pytest
from fakes.github_server import GITHUB_TOKEN, REPO, FakeGitHub, github_fake  # noqa: F401 - fixture

from tools import redaction
from tools.github_client import (
    _HARD_SECRET_KINDS,
    GitHubClient,
    GitHubError,
    RepoRef,
    check_repo_path,
    fingerprint_marker,
    parse_repo_url,
    validate_files,
)
from tools.redaction import redact

SHOP = parse_repo_url("https://github.com/acme/shop")


class Sleeps(list):
    """An injected sleep that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(fake: FakeGitHub, token: str = GITHUB_TOKEN, **kwargs) -> GitHubClient:
    options = {"seconds_between_writes": 0.0, "backoff_base": 0.01, "sleep": Sleeps()}
    options.update(kwargs)
    return GitHubClient(token, fake.base_url, **options)


# ---------------------------------------------------------------------------- repository URLs


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/shop",
        "https://github.com/acme/shop/",
        "https://github.com/acme/shop.git",
        "https://github.com/acme/shop.git/",
        "http://github.com/acme/shop",
        "https://www.github.com/acme/shop",
        "https://GitHub.com/acme/shop",
        "  https://github.com/acme/shop  ",
        "https://github.com/acme/shop/tree/main/src",
        "https://github.com/acme/shop/pull/12",
        "https://github.com/acme/shop?tab=readme#top",
        "https://x-access-token:ghp_abcdefghijklmnopqrstuvwx@github.com/acme/shop.git",
        "git@github.com:acme/shop.git",
        "git@github.com:acme/shop",
        "github.com:acme/shop.git",
        "ssh://git@github.com/acme/shop.git",
        "ssh://git@github.com:22/acme/shop.git",
        "git+ssh://git@github.com/acme/shop",
        "git://github.com/acme/shop.git",
    ],
)
def test_parse_github_com_forms(url: str) -> None:
    assert parse_repo_url(url) == RepoRef(host="github.com", owner="acme", name="shop", api_base_url="https://api.github.com")


@pytest.mark.parametrize(
    ("url", "host", "api"),
    [
        ("https://ghe.example.com/team/svc", "ghe.example.com", "https://ghe.example.com/api/v3"),
        ("https://ghe.example.com/team/svc.git/", "ghe.example.com", "https://ghe.example.com/api/v3"),
        ("git@ghe.example.com:team/svc.git", "ghe.example.com", "https://ghe.example.com/api/v3"),
        ("ssh://git@ghe.example.com:2222/team/svc.git", "ghe.example.com", "https://ghe.example.com/api/v3"),
        ("https://ghe.example.com:8443/team/svc", "ghe.example.com:8443", "https://ghe.example.com:8443/api/v3"),
        ("http://git.internal/team/svc", "git.internal", "http://git.internal/api/v3"),
    ],
)
def test_parse_enterprise_hosts(url: str, host: str, api: str) -> None:
    ref = parse_repo_url(url)
    assert (ref.host, ref.owner, ref.name, ref.api_base_url) == (host, "team", "svc", api)
    assert ref.full_name == "team/svc"


def test_parse_keeps_dots_and_dashes_in_names() -> None:
    ref = parse_repo_url("https://github.com/my-org/my.repo-name_2.git")
    assert (ref.owner, ref.name) == ("my-org", "my.repo-name_2")
    assert ref.html_url == "https://github.com/my-org/my.repo-name_2"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("acme/shop", "not a repository URL"),
        ("https://github.com/acme", "does not name OWNER/REPO"),
        ("https://github.com/", "does not name OWNER/REPO"),
        ("ftp://github.com/acme/shop", "unsupported scheme"),
        ("https:///acme/shop", "no host"),
        ("https://github.com/acme/shop/../evil", "extra path segments"),
        ("https://github.com/acme/shop/extra/stuff", "extra path segments"),
        ("https://github.com/ac me/shop", "invalid owner"),
        ("https://github.com/acme/sh$p", "invalid repository name"),
        ("https://github.com/acme/..", "invalid repository name"),
        ("https://github.com:99999/acme/shop", "invalid host or port"),
        ("not a url at all", "not a repository URL"),
    ],
)
def test_parse_rejects_junk_with_clear_messages(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_repo_url(url)


def test_parse_error_does_not_echo_credentials() -> None:
    with pytest.raises(ValueError) as caught:
        parse_repo_url("https://user:ghp_abcdefghijklmnopqrstuvwx@github.com/acme")
    assert "ghp_abcdefghijklmnopqrstuvwx" not in str(caught.value)


# ---------------------------------------------------------------------------- issues


def file(gh: GitHubClient, fingerprint: str, **kwargs):
    options = {
        "fingerprint": fingerprint,
        "title": f"Canary aborted {fingerprint}",
        "body": "evidence",
        "comment": "aborted again",
        "labels": ["canary-rollback", "automated", "jules"],
    }
    options.update(kwargs)
    return gh.find_or_file_issue(SHOP, **options)


def test_first_filing_creates_issue_with_marker_and_missing_labels(github_fake: FakeGitHub) -> None:
    github_fake.repo(REPO).labels["automated"] = {"id": 1, "name": "automated", "color": "000000", "description": ""}
    gh = client(github_fake)
    outcome = file(gh, "demo/shop/abc123")
    assert outcome.action == "created"
    assert outcome.labels_created == ["canary-rollback", "jules"]
    assert outcome.url == "https://github.com/acme/shop/issues/1"
    issue = github_fake.repo(REPO).issues[1]
    assert issue["body"].startswith(fingerprint_marker("demo/shop/abc123"))
    assert issue["labels"] == ["canary-rollback", "automated", "jules"]
    created = [r.json()["name"] for r in github_fake.requests_to("POST", r"/labels$")]
    assert created == ["canary-rollback", "jules"]
    colors = {r.json()["name"]: r.json()["color"] for r in github_fake.requests_to("POST", r"/labels$")}
    assert colors == {"canary-rollback": "d73a4a", "jules": "5319e7"}


def test_repeat_comments_instead_of_filing_again(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    first = file(gh, "demo/shop/abc123")
    second = file(client(github_fake), "demo/shop/abc123", comment="second abort evidence")
    third = file(client(github_fake), "demo/shop/abc123", comment="third abort evidence")
    assert (second.action, third.action) == ("commented", "commented")
    assert second.number == third.number == first.number
    repo = github_fake.repo(REPO)
    assert len(repo.real_issues()) == 1
    bodies = [c["body"] for c in repo.comments[first.number]]
    assert [b.split("\n", 1)[1] for b in bodies] == ["second abort evidence", "third abort evidence"]
    assert second.comment_url and second.comment_url.startswith("https://github.com/acme/shop/issues/1#issuecomment-")
    assert not github_fake.requests_to("POST", r"/labels$")[3:]  # labels only created on first filing


def test_new_revision_files_a_new_issue(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    assert file(gh, "demo/shop/abc123").number == 1
    outcome = file(gh, "demo/shop/def456")
    assert (outcome.action, outcome.number) == ("created", 2)
    assert len(github_fake.repo(REPO).real_issues()) == 2


def test_closed_issue_is_not_reused(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    file(gh, "demo/shop/abc123")
    github_fake.repo(REPO).issues[1]["state"] = "closed"
    outcome = file(gh, "demo/shop/abc123", known_issue_number=1)
    assert (outcome.action, outcome.number) == ("created", 2)


def test_marker_search_pages_through_many_open_issues(github_fake: FakeGitHub) -> None:
    gh = client(github_fake, per_page=2)
    for index in range(7):
        file(gh, f"demo/shop/h{index}")
    outcome = file(gh, "demo/shop/h0")  # the oldest: on the last page (newest first)
    assert (outcome.action, outcome.number) == ("commented", 1)
    pages = [r.query for r in github_fake.requests_to("GET", r"/issues$")][-4:]
    assert any("page=4" in query for query in pages)


def test_issue_text_is_redacted_before_it_leaves(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    secret = "ghp_" + "A" * 36
    file(gh, "demo/shop/abc123", title=f"boom token={secret}", body=f"Authorization: Bearer {secret}")
    file(gh, "demo/shop/abc123", comment=f"again password=hunter22 {secret}")
    traffic = github_fake.all_traffic()
    assert secret not in traffic and "hunter22" not in traffic
    assert "[REDACTED:" in github_fake.repo(REPO).issues[1]["body"]


def test_stale_marker_in_body_cannot_hijack_fingerprint(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    file(gh, "demo/shop/abc123", body=f"{fingerprint_marker('other/app/zzz')}\nlog line")
    body = github_fake.repo(REPO).issues[1]["body"]
    assert body.count("selfheal:fingerprint=") == 1 and "other/app/zzz" not in body


# ---------------------------------------------------------------------------- pull requests


def test_pull_request_on_new_branch_leaves_base_untouched(github_fake: FakeGitHub) -> None:
    repo = github_fake.repo(REPO)
    base_before = repo.refs["refs/heads/main"]
    gh = client(github_fake)
    issue = file(gh, "demo/shop/abc123")
    outcome = gh.open_pull_request(
        SHOP, "main", "Return 200 again", "The handler returned 500.",
        {"app/server.py": "def handler():\n    return 200  # fixed\n", "./tests/test_server.py": "def test(): pass\n"},
        issue.number, author_name="Selfheal Bot", author_email="selfheal@example.invalid",
    )  # fmt: skip
    assert repo.refs["refs/heads/main"] == base_before
    assert outcome.branch.startswith("selfheal/issue-1-") and outcome.branch != "main"
    assert outcome.files == ["app/server.py", "tests/test_server.py"]
    files = repo.files_at(outcome.branch)
    assert files["app/server.py"].endswith("# fixed\n")
    assert files["tests/test_server.py"] == "def test(): pass\n"
    assert files["README.md"] == "# shop\n"  # the rest of the base tree is kept
    commit = repo.commits[repo.refs[f"refs/heads/{outcome.branch}"]]
    assert commit["parents"] == [base_before]
    assert commit["author"]["email"] == "selfheal@example.invalid"
    pull = repo.issues[outcome.number]
    assert pull["base"]["ref"] == "main" and pull["head"]["ref"] == outcome.branch
    assert pull["body"].rstrip().endswith("Fixes #1")
    assert outcome.url == f"https://github.com/acme/shop/pull/{outcome.number}"
    assert not github_fake.requests_to("PATCH", r"/git/refs")  # nothing moved an existing ref


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../outside.py", "app/../../outside.py", ".git/config", "sub/.git/hooks/pre-commit",
     "C:/windows/evil", "app\\server.py", ".github/workflows/ci.yml", "app/", ""],
)  # fmt: skip
def test_pull_request_paths_are_confined(github_fake: FakeGitHub, path: str) -> None:
    gh = client(github_fake)
    with pytest.raises(GitHubError) as caught:
        gh.open_pull_request(SHOP, "main", "t", "b", {path: "x"}, 1)
    assert caught.value.kind in ("refused", "invalid_argument")
    assert not github_fake.requests  # refused before anything was sent


def test_check_repo_path_normalises() -> None:
    assert check_repo_path("./src//app.py") == "src/app.py"


def test_pull_request_refuses_credentials_and_the_base_branch(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    with pytest.raises(GitHubError, match="credential"):
        gh.open_pull_request(SHOP, "main", "t", "b", {"config.py": "KEY = 'AKIAABCDEFGHIJKLMNOP'\n"}, 1)
    with pytest.raises(GitHubError, match="base branch"):
        gh.open_pull_request(SHOP, "main", "t", "b", {"a.py": "x = 1\n"}, 1, branch="main")
    with pytest.raises(GitHubError) as missing:
        gh.open_pull_request(SHOP, "release", "t", "b", {"a.py": "x = 1\n"}, 1)
    assert missing.value.kind == "not_found" and "release" in missing.value.message


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("TOKEN = 'glpat-" + "a1B2" * 5 + "'\n", "GITLAB_TOKEN"),
        ("stripe.api_key = 'sk_live_" + "Ab3" * 8 + "'\n", "STRIPE_KEY"),
        ("CREDS = 'ya29." + "x9Y" * 10 + "'\n", "GOOGLE_OAUTH_TOKEN"),
        ("SLACK = 'xoxb-1234567890-abcdefghij'\n", "SLACK_TOKEN"),
        ('HEADERS = {"Authorization": "Basic dXNlcjpodW50ZXIy"}\n', "AUTHORIZATION"),  # user:hunter2
        ("curl -H 'Authorization: Basic YWRtaW46czNjcjN0' https://x\n", "AUTHORIZATION"),  # admin:s3cr3t
    ],
)
def test_literal_credentials_in_a_change_are_refused(content: str, kind: str) -> None:
    with pytest.raises(GitHubError, match="credential") as caught:
        validate_files({"app/settings.py": content})
    assert caught.value.kind == "refused" and kind in caught.value.message


def test_code_that_handles_credentials_is_not_refused() -> None:
    # These trip the context-recognised redaction kinds (AUTHORIZATION, COOKIE, SECRET_VALUE), which is
    # right for logs but would refuse ordinary fixes, so they are not hard credentials.
    code = (
        "def auth(request):\n"
        "    authorization = request.headers.get('Authorization', '')\n"
        "    cookie = request.cookies.get('session')\n"
        "    if cookie:\n"
        "        return cookie\n"
        "    # Authorization: Basic auth is required for the admin API\n"
        "    password = os.environ['DB_PASSWORD']\n"
        "    return {'Authorization': f'Bearer {token}', 'Basic': 'Basic realm'}\n"
    )
    assert validate_files({"app/auth.py": code}) == {"app/auth.py": code}
    assert "[REDACTED:AUTHORIZATION]" in redact(code) and "[REDACTED:COOKIE]" in redact(code)


def test_every_shape_recognised_redaction_kind_is_a_hard_credential() -> None:
    # A new token kind added to tools.redaction must be classified here too.
    redaction_kinds = {kind for kind, _pattern in redaction._PATTERNS}
    context_kinds = {"AUTHORIZATION", "COOKIE", "SECRET_VALUE", "EMAIL"}
    assert redaction_kinds - context_kinds == _HARD_SECRET_KINDS


def test_pull_request_existing_branch_is_a_clear_error(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    gh.open_pull_request(SHOP, "main", "t", "b", {"a.py": "x = 1\n"}, 1, branch="selfheal/fix")
    with pytest.raises(GitHubError, match="already exists"):
        gh.open_pull_request(SHOP, "main", "t", "b", {"a.py": "x = 2\n"}, 1, branch="selfheal/fix")


# ---------------------------------------------------------------------------- failures


def test_bad_token_is_unauthorized_with_hint(github_fake: FakeGitHub) -> None:
    gh = client(github_fake, token="wrong")
    with pytest.raises(GitHubError) as caught:
        file(gh, "demo/shop/abc123")
    error = caught.value
    assert error.kind == "unauthorized" and error.status == 401
    assert "Bad credentials" in error.message and "SELFHEAL_GITHUB_TOKEN" in (error.hint or "")
    assert error.to_result()["error"]["kind"] == "unauthorized"


def test_missing_token_is_not_configured() -> None:
    with pytest.raises(GitHubError) as caught:
        GitHubClient("", "http://127.0.0.1:9")
    assert caught.value.kind == "not_configured"


def test_unknown_repository_is_not_found(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    with pytest.raises(GitHubError) as caught:
        gh.find_or_file_issue(parse_repo_url("https://github.com/acme/nope"), fingerprint="a/b/c", title="t",
                              body="b", comment="c")  # fmt: skip
    assert caught.value.kind == "not_found" and "acme/nope" in caught.value.message


def test_validation_error_is_invalid_argument(github_fake: FakeGitHub) -> None:
    github_fake.validation_error("POST", r"/issues$")
    with pytest.raises(GitHubError) as caught:
        file(client(github_fake), "demo/shop/abc123")
    assert caught.value.kind == "invalid_argument" and caught.value.status == 422
    assert "title is not acceptable" in caught.value.message


def test_rate_limit_far_away_reports_reset_time(github_fake: FakeGitHub) -> None:
    reset = github_fake.rate_limit("GET", r"/repos/acme/shop$", reset_in=3600)
    sleeps = Sleeps()
    with pytest.raises(GitHubError) as caught:
        file(client(github_fake, sleep=sleeps), "demo/shop/abc123")
    error = caught.value
    assert error.kind == "rate_limited" and error.status == 403
    assert error.reset_at is not None and int(error.reset_at.timestamp()) == reset
    assert error.to_result()["reset_at"] == error.reset_at.isoformat()
    assert sleeps == []


def test_rate_limit_soon_waits_until_reset_then_succeeds(github_fake: FakeGitHub) -> None:
    github_fake.rate_limit("POST", r"/issues$", reset_in=5)
    sleeps = Sleeps()
    outcome = file(client(github_fake, sleep=sleeps, max_rate_limit_wait=60), "demo/shop/abc123")
    assert outcome.action == "created"
    assert len(sleeps) == 1 and 4 <= sleeps[0] <= 7
    assert len(github_fake.repo(REPO).real_issues()) == 1


def test_server_errors_then_success_back_off(github_fake: FakeGitHub) -> None:
    github_fake.server_error("GET", r"/repos/acme/shop$", status=502, times=2)
    sleeps = Sleeps()
    outcome = file(client(github_fake, sleep=sleeps, backoff_base=0.5), "demo/shop/abc123")
    assert outcome.action == "created"
    assert sleeps == [0.5, 1.0]


def test_server_error_on_create_does_not_file_twice(github_fake: FakeGitHub) -> None:
    """A 5xx after GitHub stored the issue: the retry finds it instead of filing a duplicate."""
    github_fake.server_error("POST", r"/issues$", status=502, after=True)
    outcome = file(client(github_fake), "demo/shop/abc123")
    assert (outcome.action, outcome.number) == ("created", 1)
    assert len(github_fake.repo(REPO).real_issues()) == 1
    assert len(github_fake.requests_to("POST", r"/issues$")) == 1


def test_server_error_on_comment_does_not_comment_twice(github_fake: FakeGitHub) -> None:
    gh = client(github_fake)
    file(gh, "demo/shop/abc123")
    github_fake.server_error("POST", r"/comments$", status=500, after=True)
    outcome = file(gh, "demo/shop/abc123", comment="again")
    assert outcome.action == "commented" and outcome.comment_url
    assert len(github_fake.repo(REPO).comments[1]) == 1


def test_server_error_on_pull_creation_returns_the_pull(github_fake: FakeGitHub) -> None:
    github_fake.server_error("POST", r"/pulls$", status=502, after=True)
    github_fake.server_error("POST", r"/git/refs$", status=502, after=True)
    outcome = client(github_fake).open_pull_request(SHOP, "main", "t", "b", {"a.py": "x = 1\n"}, None)
    assert len(github_fake.repo(REPO).pulls()) == 1
    assert github_fake.repo(REPO).pulls()[0]["number"] == outcome.number


def test_server_errors_exhausted_are_upstream_errors(github_fake: FakeGitHub) -> None:
    github_fake.server_error("GET", r"/repos/acme/shop$", status=503, times=10)
    with pytest.raises(GitHubError) as caught:
        file(client(github_fake, max_retries=2), "demo/shop/abc123")
    assert caught.value.kind == "upstream_error" and caught.value.status == 503


def test_unreachable_api() -> None:
    sleeps = Sleeps()
    gh = GitHubClient("t", "http://127.0.0.1:9", max_retries=1, sleep=sleeps, timeout=2)
    started = time.monotonic()
    with pytest.raises(GitHubError) as caught:
        file(gh, "demo/shop/abc123")
    assert caught.value.kind in ("unreachable", "timeout")
    assert len(sleeps) == 1 and time.monotonic() - started < 10
