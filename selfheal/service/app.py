"""`selfheal serve`: the HTTP service the Argo Rollouts metric-ai plugin calls.

Routes: GET / (plugin probe), /healthz (liveness), /a2a/health, /readyz, POST /a2a/analyze (the
plugin contract), GET /metrics, the A2A protocol (card at /.well-known/agent-card.json, JSON-RPC at
POST /), and optionally the ADK web UI and the MCP server (/mcp).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import urlsplit
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

import selfheal
from selfheal.analysis.metrics import ServiceMetrics
from selfheal.analysis.service import AnalysisService, Overloaded
from selfheal.config import Settings, get_settings
from selfheal.contract import AnalyzeRequest, AnalyzeResponse
from selfheal.llm import voting_models
from selfheal.service.auth import TokenAuthMiddleware
from selfheal.state import StateStore
from tools import k8s
from tools.redaction import redact_data
from tools.remediation import resume_follows, stop_follows

log = logging.getLogger(__name__)

# How long /readyz waits for each dependency.
_PROBE_SECONDS = 3.0


def _consume(task: asyncio.Future) -> None:
    """Retrieve a finished probe's exception so a late failure is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


def validation_error_body(error: ValidationError) -> dict:
    """A JSON error that names the offending field(s) for a person to fix."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(body)"
        problems.append({"field": field, "problem": item["msg"]})
    first = problems[0] if problems else {"field": "(body)", "problem": "invalid"}
    return {"error": f"invalid request: {first['field']}: {first['problem']}", "problems": problems}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = ServiceMetrics()
    store = StateStore.from_url(settings.database)
    a2a_app = _a2a_app(settings, store)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.init()
        service = AnalysisService(settings, store, metrics)
        app.state.analysis = service
        # Jules sessions a previous process was following (restart, rolling update) are followed on.
        await resume_follows(settings, store, owner=service.owner)
        async with contextlib.AsyncExitStack() as stack:
            if a2a_app is not None:
                await stack.enter_async_context(a2a_app.router.lifespan_context(a2a_app))
            for hook in app.state.lifespan_hooks:
                await stack.enter_async_context(hook())
            try:
                yield
            finally:
                await stop_follows()  # hands the follow leases back before the store closes
                await service.close()
                await store.close()

    app = _base_app(settings, lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.store = store
    app.state.lifespan_hooks = []
    app.add_middleware(TokenAuthMiddleware, token=settings.token, open_paths={"/healthz"})

    @app.get("/")
    async def root() -> dict:
        return {"service": "selfheal", "status": "ok", "version": selfheal.__version__,
                "models": voting_models(settings)}

    @app.get("/healthz")
    @app.get("/a2a/health")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        # Both checks run at once and are waited for at most _PROBE_SECONDS; a check still going on
        # (a locked database, a hanging API) is left to finish in the background, never cancelled
        # mid-call, so the probe answers in time.
        ping = asyncio.ensure_future(store.ping())
        kube = asyncio.ensure_future(asyncio.to_thread(k8s.check_api))
        await asyncio.wait({ping, kube}, timeout=_PROBE_SECONDS)
        for task in (ping, kube):
            task.add_done_callback(_consume)
        if not ping.done():
            checks["state_store"] = f"unavailable: no answer within {_PROBE_SECONDS:.0f}s (locked or unreachable)"
        elif ping.exception() is not None:
            exc = ping.exception()
            checks["state_store"] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
        else:
            checks["state_store"] = "ok"
        if not kube.done():
            checks["kubernetes"] = f"unavailable: no answer within {_PROBE_SECONDS:.0f}s"
        else:
            problem = kube.result()
            checks["kubernetes"] = "ok" if problem is None else f"unavailable: {problem}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/a2a/analyze")
    async def analyze(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            payload = json.loads(raw or b"null")
        except ValueError as exc:
            metrics.errors.labels(kind="bad_request").inc()
            return JSONResponse({"error": f"invalid JSON body: {exc}"}, status_code=400)
        if not isinstance(payload, dict):
            metrics.errors.labels(kind="bad_request").inc()
            return JSONResponse({"error": "the body must be a JSON object with a 'context' field"}, status_code=400)
        try:
            body = AnalyzeRequest.model_validate(payload)
        except ValidationError as exc:
            metrics.errors.labels(kind="bad_request").inc()
            return JSONResponse(validation_error_body(exc), status_code=422)
        service: AnalysisService = request.app.state.analysis
        try:
            answer = await service.analyze(body)
        except Overloaded as exc:
            return JSONResponse(
                {"error": f"too many analyses in progress; retry in {exc.retry_after}s"},
                status_code=503,
                headers={"Retry-After": str(exc.retry_after)},
            )
        except Exception as exc:  # last net: the plugin must always get a decodable, safe answer
            log.exception("analysis failed")
            metrics.errors.labels(kind="internal").inc()
            answer = AnalyzeResponse(
                analysis=f"The analysis failed ({type(exc).__name__}); not promoting without a verdict.",
                rootCause="unknown: internal error in the analysis service",
                remediation="Check the selfheal service logs; the canary was not promoted.",
                promote=False,
                confidence=0,
            )
        # Model and provider text (errors, rationale) may carry secrets; nothing leaves unredacted.
        return JSONResponse(redact_data(answer.wire()))

    if settings.mount_mcp:
        # MCP on /mcp, behind the same token, sharing this app's analysis service (selfheal.mcp_server).
        from selfheal.mcp_server import mount_mcp

        mount_mcp(app, settings)

    if a2a_app is not None:
        # Mounted last: only requests no route above matched (POST / and the agent card) reach it.
        app.mount("/", a2a_app)
    return app


def _base_app(settings: Settings, lifespan) -> FastAPI:
    if not settings.web_ui:
        return FastAPI(title="selfheal", version=selfheal.__version__, lifespan=lifespan,
                       docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    # The ADK dev UI in the same process, on the same database as the plugin's sessions.
    from google.adk.cli.fast_api import get_fast_api_app

    from selfheal.service.adk_web import agents_dir, adk_session_uri

    app = get_fast_api_app(agents_dir=str(agents_dir()), web=True, session_service_uri=adk_session_uri(settings),
                           host=settings.host, port=settings.port, lifespan=lifespan)
    # Our GET / answers the plugin's probe; the UI stays at /dev-ui/.
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", None) != "/"]
    return app


def _a2a_app(settings: Settings, store: StateStore):
    """The standard A2A endpoint for the orchestrator, with sessions in the state store."""
    try:
        from google.adk.a2a.utils.agent_to_a2a import to_a2a
        from google.adk.runners import Runner
        from google.adk.sessions import DatabaseSessionService

        from selfheal.analysis.agent_run import app_for
        from selfheal.llm import resolve_model
    except ImportError as exc:  # a2a-sdk is an install requirement; say so instead of failing to start
        log.warning("A2A endpoint disabled: %s", exc)
        return None
    adk_app = app_for(resolve_model(settings))
    runner = Runner(app=adk_app, session_service=DatabaseSessionService(db_engine=store.engine))
    public = urlsplit(settings.public_url or f"http://{settings.host}:{settings.port}")
    return to_a2a(adk_app.root_agent, host=public.hostname or settings.host,
                  port=public.port or (443 if public.scheme == "https" else 80), protocol=public.scheme, runner=runner)
