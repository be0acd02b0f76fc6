"""Plumbing shared by the fake GitHub and Jules servers.

`FakeAPI` is a Starlette app run by uvicorn in a daemon thread on a random 127.0.0.1 port. Every
request is recorded (method, path, query, headers, body) before anything else happens; scripted
failures (`fail(...)`) are answered next, then authentication, then the real route.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class ScriptedFailure:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    after: bool = False  # process the request first, then answer with the failure

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in ("*", method) and bool(self.pattern.search(path))


@dataclass
class _Recorder:
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: list[ScriptedFailure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Intercept:
    """ASGI middleware: record the request, answer scripted failures, check auth, then route."""

    def __init__(self, app: ASGIApp, owner: FakeAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        method = scope["method"]
        path = scope["path"]
        relative = path[len(self.owner.prefix) :] if path.startswith(self.owner.prefix) else path
        recorded = RecordedRequest(method, path, scope.get("query_string", b"").decode(), headers, body)
        with self.owner._rec.lock:
            self.owner._rec.requests.append(recorded)
            failure = next((f for f in self.owner._rec.failures if f.matches(method, relative)), None)
            if failure is not None:
                failure.times -= 1
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def discard(message: Message) -> None:
            return None

        response: Response | None
        if failure is not None:
            if failure.after:
                await self.app(scope, replay, discard)
            response = JSONResponse(failure.body, status_code=failure.status, headers=failure.headers)
        else:
            response = self.owner.authenticate(headers)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, replay, send)


class FakeAPI(ABC):
    """Base of the fakes: routes, recording, scripted failures and the server thread."""

    prefix = ""

    def __init__(self) -> None:
        self._rec = _Recorder()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # subclasses ---------------------------------------------------------------------------
    @abstractmethod
    def routes(self) -> list[tuple[str, str, Callable[[Request], Awaitable[Response]]]]:
        """(method, path, handler) triples, paths relative to `prefix`."""

    def authenticate(self, headers: dict[str, str]) -> Response | None:
        """None when the request may proceed, else the error response."""
        return None

    # scripting and inspection --------------------------------------------------------------
    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: bool = False,
    ) -> None:
        """Answer the next `times` requests matching `method` (or "*") and `pattern` with `status`.

        With `after=True` the request is carried out first and its real answer replaced by the failure
        (a server that stored the write and then failed).
        """
        with self._rec.lock:
            self._rec.failures.append(
                ScriptedFailure(method.upper() if method != "*" else "*", re.compile(pattern), status,
                                body if body is not None else {"message": f"scripted {status}"},
                                dict(headers or {}), times, after)
            )  # fmt: skip

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._rec.lock:
            return list(self._rec.requests)

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        regex = re.compile(pattern)
        return [r for r in self.requests if r.method == method and regex.search(r.path)]

    def all_traffic(self) -> str:
        """Every recorded request path, query and body as one text (for 'no secret reached us' checks)."""
        return "\n".join(f"{r.method} {r.path}?{r.query}\n{r.text}" for r in self.requests)

    # server ---------------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + self.prefix

    def app(self) -> ASGIApp:
        routes = [Route(self.prefix + path, handler, methods=[method]) for method, path, handler in self.routes()]
        return _Intercept(Starlette(routes=routes), self)

    def start(self) -> FakeAPI:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def page_slice(items: list[Any], page: int, per_page: int) -> tuple[list[Any], bool]:
    """Items of 1-based `page` and whether another page follows."""
    start = (page - 1) * per_page
    return items[start : start + per_page], start + per_page < len(items)


def int_param(request: Request, name: str, default: int, low: int = 1, high: int = 10_000) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        value = default
    return max(low, min(high, value))


def now_iso(clock: Callable[[], float] = time.time) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock()))
