"""HTTP surface of the system group: health and ping, no authentication (RAGFlow's contract)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from functions.api.deps import ContainerDep
from shared.services.health import check_health

# Neither answer is RAGFlow's envelope: the health report, and a plain "pong" (functions.api.openapi).
_HEALTH = {
    "schema": {
        "type": "object",
        "description": "`ok` or `nok` per backend, `status` overall, timings and errors in `_meta`",
        "properties": {"status": {"enum": ["ok", "nok"]}, "_meta": {"type": "object"}},
        "additionalProperties": {"enum": ["ok", "nok"]},
        "required": ["status", "_meta"],
    }
}
_PONG = {"schema": {"const": "pong"}}


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/system")

    @router.get("/healthz", openapi_extra={"x-flowless-content": {"application/json": _HEALTH}})
    def healthz(services: ContainerDep) -> JSONResponse:
        healthy, body = check_health(services.health_probes())
        return JSONResponse(body, status_code=200 if healthy else 500)

    @router.get("/ping", openapi_extra={"x-flowless-content": {"text/plain": _PONG}})
    def ping() -> PlainTextResponse:
        return PlainTextResponse("pong")

    return router
