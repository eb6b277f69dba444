"""Builds a FastAPI app from route groups: one group for a Lambda function, all of them locally."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from functools import cache
from typing import Any

from fastapi import FastAPI

from functions.api.errors import install_error_handlers
from functions.api.routing import RagflowRouting
from shared.container import Container
from shared.routes import RouteGroup


@cache
def _probe_pydantic_v1_only_once_imported() -> None:
    """FastAPI asks of each parameter it makes a field of (our path parameters) whether its annotation is a
    pydantic.v1 model, and imports the whole pydantic.v1 package to find out: 14 ms of every function's cold
    start here (fastapi/fastapi#16374 reports 44 ms on a 512 MB Lambda, and proposes this very test).
    A v1 model class cannot exist before something imports pydantic.v1, so until then the answer is no;
    afterwards FastAPI's own probe answers (and refuses v1 models as it always did)."""
    from fastapi._compat import shared

    probe = shared.is_pydantic_v1_model_class

    def is_pydantic_v1_model_class(cls: Any) -> bool:
        return "pydantic.v1" in sys.modules and probe(cls)

    shared.is_pydantic_v1_model_class = is_pydantic_v1_model_class


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
    _probe_pydantic_v1_only_once_imported()
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
