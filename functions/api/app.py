"""Builds a FastAPI app from route groups: one group for a Lambda function, all of them locally."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from fastapi import FastAPI

from functions.api.errors import install_error_handlers
from functions.api.routing import RagflowRouting
from shared.container import Container
from shared.routes import RouteGroup


def create_app(groups: Iterable[RouteGroup], container: Container | None = None, *, docs: bool = False) -> FastAPI:
    """An app serving ``groups``; ``container`` replaces the process-wide one (tests, local server).
    ``docs`` adds ``/openapi.json`` and ``/docs`` (the local server; Lambda functions don't serve them)."""
    app = FastAPI(
        title="flowless",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    groups = tuple(groups)
    app.state.container = container
    # Inside the error handlers' middleware (added after it, so it wraps this): its answers get request ids.
    app.add_middleware(RagflowRouting, served_groups=[group.name for group in groups])
    install_error_handlers(app)
    for group in groups:
        router_module = importlib.import_module(f"{group.module}.router")
        app.include_router(router_module.build_router())
    if docs:
        from functions.api.openapi import install_docs

        install_docs(app)
    return app
