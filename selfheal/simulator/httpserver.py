"""HTTP/1.1 plumbing: a threaded stdlib server on 127.0.0.1 in front of `ApiApp`."""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .api import JSON, ApiApp, Response, error_response
from .status import ApiError

logger = logging.getLogger("selfheal.simulator")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse pooled connections
    # Small responses otherwise wait ~40 ms for the client's delayed ACK (Nagle's algorithm).
    disable_nagle_algorithm = True
    server_version = "selfheal-sim"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: "ApiServer"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # bodies of refused writes are read and dropped
        try:
            response = self.server.app.handle(method, self.path, self.headers.get("Accept") or JSON)
        except Exception as exc:  # a bug must not kill the connection thread silently
            logger.exception("simulator failed on %s %s", method, self.path)
            response = error_response(ApiError(500, f"Internal error occurred: {exc}", "InternalError"))
        self._send(response, with_body=method != "HEAD")

    def _send(self, response: Response, with_body: bool) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if with_body:
            self.wfile.write(response.body)

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("%s %s", self.address_string(), format % args)


class ApiServer(ThreadingHTTPServer):
    """One thread per connection; `close()` also drops idle keep-alive connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.app: ApiApp | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def start(self, app: ApiApp) -> None:
        self.app = app
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="selfheal-sim-api", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
