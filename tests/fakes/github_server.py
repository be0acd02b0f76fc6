"""A fake GitHub REST API (the endpoints PyGithub uses for issues, labels, git data and pulls).

State lives in memory (`FakeGitHub.repos`) so tests can assert on it. Start it with
`FakeGitHub().start()` or as a context manager and point PyGithub at `fake.base_url`.

Endpoints: repos get; labels list/create; issues list (state, labels, sort, direction,
pagination with Link headers)/create/get; issue comments list (since)/create; git ref get, refs
create, commits get/create, trees get/create; pulls list/create/get. Authentication is a token from
`tokens` (`Authorization: token X` or `Bearer X`), else 401 "Bad credentials".
Scripted failures: `fail(...)`, `rate_limit(...)`, `validation_error(...)`, `server_error(...)`.

Fixture `github_fake` (import it into a test module): a started fake accepting token `GITHUB_TOKEN`
with the repository `REPO` (acme/shop, branch main, files app/server.py and README.md).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._server import FakeAPI, int_param, now_iso, page_slice

HTML = "https://github.com"
GITHUB_TOKEN = "test-token"
REPO = "acme/shop"
NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


def _sha(kind: str, payload: Any) -> str:
    return hashlib.sha1(f"{kind}:{json.dumps(payload, sort_keys=True)}".encode()).hexdigest()


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    default_branch: str
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower name -> label
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # issues and pulls share numbers
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit sha
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    trees: dict[str, dict[str, str]] = field(default_factory=dict)  # tree sha -> {path: content}

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def real_issues(self) -> list[dict[str, Any]]:
        return [issue for issue in self.issues.values() if "pull_request" not in issue]

    def pulls(self) -> list[dict[str, Any]]:
        return [issue for issue in self.issues.values() if "pull_request" in issue]

    def files_at(self, branch: str) -> dict[str, str]:
        sha = self.refs[f"refs/heads/{branch}"]
        return dict(self.trees[self.commits[sha]["tree"]])


class FakeGitHub(FakeAPI):
    def __init__(
        self, *, tokens: set[str] | None = None, prefix: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.tokens = set(tokens or {"test-token"})
        self.clock = clock
        self.repos: dict[str, FakeRepo] = {}
        self._ids = itertools.count(1000)
        self._state = threading.Lock()

    # ------------------------------------------------------------------ setup and inspection

    def add_repo(
        self, full_name: str, *, default_branch: str = "main", files: dict[str, str] | None = None,
        labels: list[str] | None = None,
    ) -> FakeRepo:  # fmt: skip
        owner, name = full_name.split("/")
        repo = FakeRepo(id=next(self._ids), owner=owner, name=name, default_branch=default_branch)
        tree = dict(files or {"README.md": f"# {name}\n"})
        tree_sha = _sha("tree", tree)
        repo.trees[tree_sha] = tree
        commit = {"message": "initial commit", "tree": tree_sha, "parents": [], "author": self._person()}
        commit_sha = _sha("commit", commit)
        repo.commits[commit_sha] = commit
        repo.refs[f"refs/heads/{default_branch}"] = commit_sha
        for label in labels or []:
            repo.labels[label.lower()] = self._new_label(repo, label, "ededed", "")
        self.repos[full_name.lower()] = repo
        return repo

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name.lower()]

    def rate_limit(self, method: str = "*", pattern: str = ".*", *, reset_in: int = 3600, times: int = 1) -> int:
        """Primary rate limit: 403 with X-RateLimit-Remaining 0 and a reset `reset_in` seconds ahead."""
        reset = int(self.clock()) + reset_in
        self.fail(
            method, pattern, 403, times=times,
            body={"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest"},
            headers={"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset),
                     "X-RateLimit-Resource": "core"},
        )  # fmt: skip
        return reset

    def validation_error(self, method: str, pattern: str, *, field_name: str = "title", times: int = 1) -> None:
        self.fail(
            method, pattern, 422, times=times,
            body={"message": "Validation Failed",
                  "errors": [{"resource": "Issue", "field": field_name, "code": "custom",
                              "message": f"{field_name} is not acceptable"}]},
        )  # fmt: skip

    def server_error(
        self, method: str, pattern: str, *, status: int = 502, times: int = 1, after: bool = False
    ) -> None:
        """5xx answers; `after=True` stores the write first (the client cannot know it succeeded)."""
        self.fail(method, pattern, status, times=times, body={"message": "Server Error"}, after=after)

    # ------------------------------------------------------------------ JSON shapes

    def _api(self, repo: FakeRepo) -> str:
        return f"{self.base_url}/repos/{repo.full_name}"

    def _person(self) -> dict[str, str]:
        return {"name": "Fake Bot", "email": "bot@fake.invalid", "date": now_iso(self.clock)}

    def _user(self) -> dict[str, Any]:
        return {"login": "selfheal-bot", "id": 1, "type": "Bot"}

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        return {
            "id": repo.id, "name": repo.name, "full_name": repo.full_name,
            "owner": {"login": repo.owner, "id": 7, "type": "Organization"},
            "private": False, "default_branch": repo.default_branch, "has_issues": True, "archived": False,
            "url": self._api(repo), "html_url": f"{HTML}/{repo.full_name}",
        }  # fmt: skip

    def _new_label(self, repo: FakeRepo, name: str, color: str, description: str) -> dict[str, Any]:
        return {"id": next(self._ids), "name": name, "color": color, "description": description, "default": False}

    def _label_json(self, repo: FakeRepo, label: dict[str, Any]) -> dict[str, Any]:
        return dict(label, url=f"{self._api(repo)}/labels/{urllib.parse.quote(label['name'])}")

    def _issue_json(self, repo: FakeRepo, issue: dict[str, Any]) -> dict[str, Any]:
        data = dict(issue)
        data["labels"] = [self._label_json(repo, repo.labels[n.lower()]) for n in issue["labels"] if n.lower() in repo.labels]
        data["comments"] = len(repo.comments.get(issue["number"], []))
        kind = "pull" if "pull_request" in issue else "issues"
        data["url"] = f"{self._api(repo)}/issues/{issue['number']}"
        data["html_url"] = f"{HTML}/{repo.full_name}/{kind}/{issue['number']}"
        data["comments_url"] = f"{data['url']}/comments"
        if "pull_request" in issue:
            data["pull_request"] = {"url": f"{self._api(repo)}/pulls/{issue['number']}", "html_url": data["html_url"]}
            for key in ("head", "base", "draft", "merged"):
                data.pop(key, None)
        return data

    def _pull_json(self, repo: FakeRepo, pull: dict[str, Any]) -> dict[str, Any]:
        data = {key: value for key, value in pull.items() if key not in ("pull_request", "labels")}
        data["url"] = f"{self._api(repo)}/pulls/{pull['number']}"
        data["html_url"] = f"{HTML}/{repo.full_name}/pull/{pull['number']}"
        data["issue_url"] = f"{self._api(repo)}/issues/{pull['number']}"
        for side in ("head", "base"):
            data[side] = dict(pull[side], repo=self._repo_json(repo))
        return data

    def _comment_json(self, repo: FakeRepo, number: int, comment: dict[str, Any]) -> dict[str, Any]:
        return dict(
            comment,
            url=f"{self._api(repo)}/issues/comments/{comment['id']}",
            html_url=f"{HTML}/{repo.full_name}/issues/{number}#issuecomment-{comment['id']}",
            issue_url=f"{self._api(repo)}/issues/{number}",
        )

    def _commit_json(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        commit = repo.commits[sha]
        return {
            "sha": sha, "node_id": sha[:12], "url": f"{self._api(repo)}/git/commits/{sha}",
            "html_url": f"{HTML}/{repo.full_name}/commit/{sha}", "message": commit["message"],
            "author": commit["author"], "committer": commit.get("committer", commit["author"]),
            "tree": {"sha": commit["tree"], "url": f"{self._api(repo)}/git/trees/{commit['tree']}"},
            "parents": [{"sha": p, "url": f"{self._api(repo)}/git/commits/{p}"} for p in commit["parents"]],
        }  # fmt: skip

    def _tree_json(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        entries = [
            {"path": path, "mode": "100644", "type": "blob", "sha": _sha("blob", content), "size": len(content)}
            for path, content in sorted(repo.trees[sha].items())
        ]
        return {"sha": sha, "url": f"{self._api(repo)}/git/trees/{sha}", "tree": entries, "truncated": False}

    def _ref_json(self, repo: FakeRepo, ref: str) -> dict[str, Any]:
        sha = repo.refs[ref]
        return {
            "ref": ref, "node_id": ref, "url": f"{self._api(repo)}/git/{ref}",
            "object": {"sha": sha, "type": "commit", "url": f"{self._api(repo)}/git/commits/{sha}"},
        }  # fmt: skip

    # ------------------------------------------------------------------ plumbing

    def authenticate(self, headers: dict[str, str]) -> Response | None:
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() in ("token", "bearer") and token in self.tokens:
            return None
        return JSONResponse({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, 401)

    def _find_repo(self, request: Request) -> FakeRepo | None:
        return self.repos.get(f"{request.path_params['owner']}/{request.path_params['repo']}".lower())

    def _paged(self, request: Request, items: list[Any]) -> Response:
        per_page = int_param(request, "per_page", 30, 1, 100)
        page = int_param(request, "page", 1)
        chunk, more = page_slice(items, page, per_page)
        headers = {}
        if more:
            query = dict(request.query_params)
            query["page"] = str(page + 1)
            next_url = f"{self.origin}{request.url.path}?{urllib.parse.urlencode(query)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        return json.loads(raw) if raw else {}

    # ------------------------------------------------------------------ routes

    def routes(self):  # noqa: ANN201 - see FakeAPI.routes
        base = "/repos/{owner}/{repo}"
        return [
            ("GET", base, self.get_repo),
            ("GET", base + "/labels", self.list_labels),
            ("POST", base + "/labels", self.create_label),
            ("GET", base + "/issues", self.list_issues),
            ("POST", base + "/issues", self.create_issue),
            ("GET", base + "/issues/{number:int}", self.get_issue),
            ("GET", base + "/issues/{number:int}/comments", self.list_comments),
            ("POST", base + "/issues/{number:int}/comments", self.create_comment),
            ("GET", base + "/git/ref/{ref:path}", self.get_ref),
            ("POST", base + "/git/refs", self.create_ref),
            ("GET", base + "/git/commits/{sha}", self.get_commit),
            ("POST", base + "/git/commits", self.create_commit),
            ("GET", base + "/git/trees/{sha}", self.get_tree),
            ("POST", base + "/git/trees", self.create_tree),
            ("GET", base + "/pulls", self.list_pulls),
            ("POST", base + "/pulls", self.create_pull),
            ("GET", base + "/pulls/{number:int}", self.get_pull),
        ]

    async def get_repo(self, request: Request) -> Response:
        repo = self._find_repo(request)
        return JSONResponse(self._repo_json(repo)) if repo else JSONResponse(NOT_FOUND, 404)

    async def list_labels(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        return self._paged(request, [self._label_json(repo, label) for label in repo.labels.values()])

    async def create_label(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        body = await self._body(request)
        name = str(body.get("name") or "")
        with self._state:
            if not name or name.lower() in repo.labels:
                return JSONResponse(
                    {"message": "Validation Failed",
                     "errors": [{"resource": "Label", "code": "already_exists" if name else "missing_field",
                                 "field": "name"}]}, 422,
                )  # fmt: skip
            label = self._new_label(repo, name, str(body.get("color") or "ededed"), str(body.get("description") or ""))
            repo.labels[name.lower()] = label
        return JSONResponse(self._label_json(repo, label), 201)

    async def list_issues(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        state = request.query_params.get("state", "open")
        wanted = [label.lower() for label in request.query_params.get("labels", "").split(",") if label]
        items = []
        for issue in repo.issues.values():
            if state != "all" and issue["state"] != state:
                continue
            names = {name.lower() for name in issue["labels"]}
            if any(label not in names for label in wanted):
                continue
            items.append(issue)
        items.sort(key=lambda issue: issue["number"], reverse=request.query_params.get("direction", "desc") == "desc")
        return self._paged(request, [self._issue_json(repo, issue) for issue in items])

    async def create_issue(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        body = await self._body(request)
        title = str(body.get("title") or "")
        if not title or len(title) > 256:
            return JSONResponse(
                {"message": "Validation Failed", "errors": [{"resource": "Issue", "field": "title", "code": "invalid"}]},
                422,
            )
        labels = [str(label) for label in body.get("labels") or []]
        with self._state:
            for label in labels:  # like GitHub, unknown labels are created on the fly
                if label.lower() not in repo.labels:
                    repo.labels[label.lower()] = self._new_label(repo, label, "ededed", "")
            number = len(repo.issues) + 1
            issue = {
                "id": next(self._ids), "number": number, "title": title, "body": body.get("body") or "",
                "state": "open", "labels": labels, "user": self._user(), "created_at": now_iso(self.clock),
                "updated_at": now_iso(self.clock), "closed_at": None, "assignees": [], "locked": False,
            }  # fmt: skip
            repo.issues[number] = issue
        return JSONResponse(self._issue_json(repo, issue), 201)

    async def get_issue(self, request: Request) -> Response:
        repo = self._find_repo(request)
        issue = repo.issues.get(request.path_params["number"]) if repo else None
        return JSONResponse(self._issue_json(repo, issue)) if issue else JSONResponse(NOT_FOUND, 404)

    async def list_comments(self, request: Request) -> Response:
        repo = self._find_repo(request)
        number = request.path_params["number"]
        if not repo or number not in repo.issues:
            return JSONResponse(NOT_FOUND, 404)
        since = request.query_params.get("since", "")
        comments = [c for c in repo.comments.get(number, []) if c["created_at"] >= since]
        return self._paged(request, [self._comment_json(repo, number, c) for c in comments])

    async def create_comment(self, request: Request) -> Response:
        repo = self._find_repo(request)
        number = request.path_params["number"]
        if not repo or number not in repo.issues:
            return JSONResponse(NOT_FOUND, 404)
        body = await self._body(request)
        if not body.get("body"):
            return JSONResponse({"message": "Validation Failed", "errors": [{"field": "body", "code": "missing"}]}, 422)
        comment = {
            "id": next(self._ids), "body": body["body"], "user": self._user(),
            "created_at": now_iso(self.clock), "updated_at": now_iso(self.clock),
        }  # fmt: skip
        with self._state:
            repo.comments.setdefault(number, []).append(comment)
        return JSONResponse(self._comment_json(repo, number, comment), 201)

    async def get_ref(self, request: Request) -> Response:
        repo = self._find_repo(request)
        ref = "refs/" + urllib.parse.unquote(request.path_params["ref"])
        if not repo or ref not in repo.refs:
            return JSONResponse(NOT_FOUND, 404)
        return JSONResponse(self._ref_json(repo, ref))

    async def create_ref(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        body = await self._body(request)
        ref, sha = str(body.get("ref") or ""), str(body.get("sha") or "")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            return JSONResponse({"message": "Reference name must start with 'refs/' and have two slashes"}, 422)
        with self._state:
            if ref in repo.refs:
                return JSONResponse({"message": "Reference already exists"}, 422)
            if sha not in repo.commits:
                return JSONResponse({"message": "Object does not exist"}, 422)
            repo.refs[ref] = sha
        return JSONResponse(self._ref_json(repo, ref), 201)

    async def get_commit(self, request: Request) -> Response:
        repo = self._find_repo(request)
        sha = request.path_params["sha"]
        if not repo or sha not in repo.commits:
            return JSONResponse(NOT_FOUND, 404)
        return JSONResponse(self._commit_json(repo, sha))

    async def create_commit(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        body = await self._body(request)
        tree, parents = body.get("tree"), list(body.get("parents") or [])
        if tree not in repo.trees or any(parent not in repo.commits for parent in parents):
            return JSONResponse({"message": "Tree or parent SHA does not exist"}, 422)
        commit = {
            "message": str(body.get("message") or ""), "tree": tree, "parents": parents,
            "author": dict(body.get("author") or self._person()),
            "committer": dict(body.get("committer") or body.get("author") or self._person()),
        }  # fmt: skip
        sha = _sha("commit", commit)
        with self._state:
            repo.commits[sha] = commit
        return JSONResponse(self._commit_json(repo, sha), 201)

    async def get_tree(self, request: Request) -> Response:
        repo = self._find_repo(request)
        sha = request.path_params["sha"]
        if not repo or sha not in repo.trees:
            return JSONResponse(NOT_FOUND, 404)
        return JSONResponse(self._tree_json(repo, sha))

    async def create_tree(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        body = await self._body(request)
        base = body.get("base_tree")
        if base is not None and base not in repo.trees:
            return JSONResponse({"message": "base_tree is not a valid tree"}, 422)
        files = dict(repo.trees[base]) if base else {}
        for entry in body.get("tree") or []:
            path = str(entry.get("path") or "")
            parts = path.split("/")
            if not path or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
                return JSONResponse({"message": f"tree.path contains a malformed path component: {path!r}"}, 422)
            if entry.get("content") is None:
                return JSONResponse({"message": "tree entries must carry content in this fake"}, 422)
            files[path] = str(entry["content"])
        sha = _sha("tree", files)
        with self._state:
            repo.trees[sha] = files
        return JSONResponse(self._tree_json(repo, sha), 201)

    async def list_pulls(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        state = request.query_params.get("state", "open")
        head = request.query_params.get("head", "")
        base = request.query_params.get("base", "")
        items = [
            pull for pull in repo.pulls()
            if (state == "all" or pull["state"] == state)
            and (not head or head == pull["head"]["label"])
            and (not base or base == pull["base"]["ref"])
        ]  # fmt: skip
        return self._paged(request, [self._pull_json(repo, pull) for pull in items])

    async def create_pull(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if not repo:
            return JSONResponse(NOT_FOUND, 404)
        body = await self._body(request)
        head, base = str(body.get("head") or ""), str(body.get("base") or "")
        head_branch = head.split(":", 1)[-1]
        invalid = [
            {"resource": "PullRequest", "field": name, "code": "invalid"}
            for name, branch in (("head", head_branch), ("base", base))
            if f"refs/heads/{branch}" not in repo.refs
        ]
        if invalid or not body.get("title"):
            return JSONResponse({"message": "Validation Failed", "errors": invalid or [{"field": "title"}]}, 422)
        if head_branch == base:
            return JSONResponse({"message": "Validation Failed", "errors": [{"message": "head and base are the same"}]}, 422)
        label = f"{repo.owner}:{head_branch}"
        with self._state:
            if any(p["state"] == "open" and p["head"]["label"] == label and p["base"]["ref"] == base for p in repo.pulls()):
                return JSONResponse(
                    {"message": "Validation Failed",
                     "errors": [{"message": f"A pull request already exists for {label}."}]}, 422,
                )  # fmt: skip
            number = len(repo.issues) + 1
            pull = {
                "id": next(self._ids), "number": number, "title": body["title"], "body": body.get("body") or "",
                "state": "open", "labels": [], "user": self._user(), "draft": bool(body.get("draft")),
                "merged": False, "created_at": now_iso(self.clock), "updated_at": now_iso(self.clock),
                "head": {"ref": head_branch, "label": label, "sha": repo.refs[f"refs/heads/{head_branch}"]},
                "base": {"ref": base, "label": f"{repo.owner}:{base}", "sha": repo.refs[f"refs/heads/{base}"]},
                "pull_request": True,
            }  # fmt: skip
            repo.issues[number] = pull
        return JSONResponse(self._pull_json(repo, pull), 201)

    async def get_pull(self, request: Request) -> Response:
        repo = self._find_repo(request)
        pull = repo.issues.get(request.path_params["number"]) if repo else None
        if not pull or "pull_request" not in pull:
            return JSONResponse(NOT_FOUND, 404)
        return JSONResponse(self._pull_json(repo, pull))


@pytest.fixture
def github_fake() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(tokens={GITHUB_TOKEN})
    fake.start()
    fake.add_repo(REPO, files={"app/server.py": "def handler():\n    return 200\n", "README.md": "# shop\n"})
    try:
        yield fake
    finally:
        fake.stop()
