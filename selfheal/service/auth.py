"""Optional token auth for every endpoint except liveness.

The Go plugin cannot send headers, but it sends HTTP Basic auth when `agentUrl` is
`http://user:TOKEN@host:port`, so the token is accepted as a Bearer token or as the Basic password.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send


def token_from_header(value: str) -> str | None:
    scheme, _, credentials = value.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, _, password = decoded.partition(":")
        return password or None
    return None


class TokenAuthMiddleware:
    def __init__(self, app: ASGIApp, token: str | None, open_paths: set[str]):
        self.app = app
        self.token = token
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.token or scope["type"] not in ("http", "websocket") or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        offered = token_from_header(headers.get(b"authorization", b"").decode("latin-1"))
        if offered is not None and hmac.compare_digest(offered.encode(), self.token.encode()):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({
            "error": "authentication required: send the service token as 'Authorization: Bearer <token>' "
            "or as the HTTP Basic password (agentUrl http://user:<token>@host:port)"
        }).encode()
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b'Basic realm="selfheal"'),
                        (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
