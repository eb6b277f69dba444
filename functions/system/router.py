"""HTTP surface of the system group: health and ping, no authentication (RAGFlow's contract)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from functions.api.deps import ContainerDep
from shared.services.health import check_health


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/system")

    @router.get("/healthz")
    def healthz(services: ContainerDep) -> JSONResponse:
        healthy, body = check_health(services.health_probes())
        return JSONResponse(body, status_code=200 if healthy else 500)

    @router.get("/ping")
    def ping() -> PlainTextResponse:
        return PlainTextResponse("pong")

    return router
