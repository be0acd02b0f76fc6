"""Health probe for the `selfheal serve` container.

    python /opt/selfheal/probe.py [--port 8080] [--host 127.0.0.1] [--timeout 4] /readyz

Sends `GET http://HOST:PORT/PATH` and exits 0 when the answer is 2xx or 3xx, 1 otherwise
(connection refused, timeout, 401, 503, ...). The image's HEALTHCHECK uses it for `/healthz` and
the Kubernetes readiness probe uses it for `/readyz`.

Why a script and not an `httpGet` probe: when a service token is configured, every endpoint
except `/healthz` requires it, and an `httpGet` probe can only send headers written literally in
the manifest. This script reads the token from the container's own `SELFHEAL_TOKEN` variable (the
same Secret key the server reads) and sends it as a bearer token, so the token never appears in a
manifest. Standard library only, so it starts in a few tens of milliseconds; proxies from the
environment (HTTP_PROXY for the model API, ...) are ignored because the target is the pod itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request

_BODY_EXCERPT = 300


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Probe an endpoint of `selfheal serve`.")
    parser.add_argument("path", help="endpoint path, e.g. /healthz or /readyz")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SELFHEAL_PORT", "8080")))
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds before giving up")
    return parser.parse_args(argv)


def probe(url: str, token: str | None, timeout: float) -> tuple[bool, str]:
    """GET `url`; return (healthy, one-line description of what came back)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            body = response.read(_BODY_EXCERPT)
    except urllib.error.HTTPError as exc:
        status = exc.code
        body = exc.read(_BODY_EXCERPT) if exc.fp is not None else b""
    except (OSError, ValueError) as exc:  # refused, reset, timeout, bad URL
        return False, f"{url}: {exc}"
    text = body.decode("utf-8", "replace").replace("\n", " ").strip()
    return 200 <= status < 400, f"{url}: HTTP {status} {text}".rstrip()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    path = args.path if args.path.startswith("/") else f"/{args.path}"
    url = f"http://{args.host}:{args.port}{path}"
    healthy, line = probe(url, os.environ.get("SELFHEAL_TOKEN") or None, args.timeout)
    # The kubelet records this output in the pod's events when the probe fails.
    print(line, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
