"""The application factory: routes, error handlers, health, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ayeto import __version__
from ayeto.api import errors, openapi, routes, tracing
from ayeto.api.routes import JSON
from ayeto.api.services import SERVICES, Services, services
from ayeto.config import Settings
from ayeto.metrics import CONTENT_TYPE, Metrics, Prometheus, process_registry
from ayeto.retention import Retention
from ayeto.store import Store, open_store

DESCRIPTION = """\
The ayeto Conversation API v3: search, read and delete your conversations.

Every endpoint needs an API key with scope `ayeto.conversation` (or `*`) in the `uni-api-key`
header. A key sees only the conversations of the user it belongs to. Every error answers
`{"detail": "..."}`.
"""


class Application(FastAPI):
    """The framework's application, behind the layers every API request passes first: its trace
    (`tracing.Tracing`: request id, access log, metrics), then the three endpoints called directly
    (`routes.Direct`). Anything else goes on to the framework, traced as well.

    In front of the framework's own layers rather than among them: those (its error middleware,
    telemetry hook and body limit, around the middleware added to it) cost some 10 µs of CPU per
    request that the endpoints do not need, as they answer their errors themselves
    (bench/RESULTS.md). `layers` may be rebuilt around `framework` (bench/floor.py).
    """

    layers: ASGIApp
    services: Services

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The framework's application, as it answers by itself."""
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # As the framework sets it.
        scope["app"] = self
        scope[SERVICES] = self.services
        await self.layers(scope, receive, send)


def create_app(
    store: Store, settings: Settings | None = None, registry: CollectorRegistry | None = None
) -> Application:
    """The API over `store`, its metrics in `registry` (a new one by default); the store is closed
    when the application shuts down."""
    settings = settings or Settings()
    metrics = Metrics() if settings.metrics == "off" else Prometheus(registry)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store.serve()
        pruning = None
        if settings.retention_ms is not None:
            retention = Retention(store, settings.retention_ms, metrics=metrics)
            pruning = asyncio.create_task(retention.run(), name="retention")
        yield
        if pruning is not None:
            pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruning
        metrics.close()
        app.state.services.limiter.storage.close()
        store.close()

    # `/docs` and `/redoc` serve their scripts and styles from the package: no CDN needed.
    app = FastAPIOffline(
        title="ayeto Conversation API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # `/find/` is not `/find`: an unknown path is a 404, not a redirect.
        redirect_slashes=False,
    )
    # `FastAPIOffline` makes the FastAPI itself: it becomes an `Application` once made.
    app.__class__ = Application
    assert isinstance(app, Application)
    app.layers = tracing.Tracing(routes.Direct(app.framework), metrics)
    app.services = app.state.services = Services.of(store, settings, metrics)
    routes.install(app)
    errors.install(app)

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/docs")

    # HEAD too: some load balancers check health with it.
    @app.api_route("/livez", methods=["GET", "HEAD"], include_in_schema=False)
    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    async def livez() -> Response:
        """The process answers; says nothing about the database."""
        return Response(b'{"status":"ok"}', media_type=JSON)

    @app.api_route("/readyz", methods=["GET", "HEAD"], include_in_schema=False)
    async def readyz(request: Request) -> Response:
        """Ready to serve: the database answers and its schema is current."""
        shared = services(request)
        if await shared.call(shared.store.is_ready):
            return Response(b'{"status":"ready"}', media_type=JSON)
        return errors.error_response(503, "database unavailable or schema not current")

    # Outside the API's keys, as the health checks; `serve` may serve it on another address.
    if settings.metrics == "on":

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response:
            """Prometheus' text format; in multiprocess mode, the sum over every worker."""
            return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    if settings.web:
        from ayeto import web

        web.install(app, app.state.services)

    openapi.install(app)
    return app


def app_from_env() -> Application:
    """The application as `ayeto serve` runs it in each worker: settings from the environment."""
    settings = Settings.from_env()
    store = open_store(settings.database_url, settings.connection)
    app = create_app(store, settings, process_registry())
    # What start-up made (modules, the app, its routes and models) lives as long as the process:
    # frozen, the collector's full passes no longer walk it. Each pass held up every request in
    # flight: `get`'s p99 under load was 55 ms with them, 6 ms without (bench/RESULTS.md).
    gc.collect()
    gc.freeze()
    return app
