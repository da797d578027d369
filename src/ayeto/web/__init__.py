"""The web view: the user's conversations in a browser, served by `ayeto serve` under /web/.

Server-rendered HTML that works without JavaScript; see README "The web view".
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ayeto.api.services import Services
from ayeto.web.pages import SecurityHeaders
from ayeto.web.routes import install_errors, router

PREFIX = "/web"


def install(app: FastAPI, shared: Services) -> None:
    """Serve the web view under `PREFIX` of `app`: its own application, out of the OpenAPI
    document, with its own error pages and headers."""
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    web.state.services = shared
    web.include_router(router)
    install_errors(web, shared)
    app.mount(PREFIX, SecurityHeaders(web))

    @app.get(PREFIX, include_in_schema=False)
    async def web_root(request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}{PREFIX}/", status_code=303)
