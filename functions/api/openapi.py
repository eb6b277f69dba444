"""The OpenAPI document, generated from the request models routes read (``Json[...]`` / ``Query[...]``).

FastAPI describes path parameters itself; bodies and query strings are read by our own dependencies
(``functions.api.deps``), which carry their pydantic model, so they are described here from that same model.
Every response is RAGFlow's envelope: HTTP 200 with ``code`` 0 and ``data``, or a non-zero ``code`` and
``message``. ``/docs`` serves Swagger UI from the ``swagger_ui_bundle`` package (no CDN: it works offline).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from shared.routes import ROUTE_GROUPS

TITLE = "flowless"
VERSION = "0.23.1"
DESCRIPTION = (
    "RAGFlow v0.23.1's HTTP API (datasets, documents, chunks, retrieval, chats, sessions, completions, "
    "agents, files, knowledge graph) served by flowless. Every JSON answer is RAGFlow's envelope: HTTP 200 with "
    '`{"code": 0, "data": ...}`, or a non-zero `code` and a `message` (101 argument, 102 data, 103 operating, '
    "108 permission, 109 authentication, 100 exception). Routes under `/api/v1/flowless/` are flowless's own, "
    "beyond RAGFlow: webhooks for parse-completion events, presigned multipart uploads and imports from S3."
)
_REF = "#/components/schemas/{model}"
_ENVELOPE = {
    "type": "object",
    "description": "RAGFlow's envelope: code 0 with data, or a non-zero code with a message.",
    "properties": {
        "code": {"type": "integer", "description": "0 on success, RAGFlow's error code otherwise"},
        "message": {"type": "string"},
        "data": {"description": "the answer (any JSON value)"},
    },
    "required": ["code"],
    "additionalProperties": True,
}
_UNAUTHENTICATED_PREFIXES = tuple(
    route.path.split("{")[0] for group in ROUTE_GROUPS if not group.authenticated for route in group.routes
)


def _dependencies(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _dependencies(dependency)


def _models(route: Any) -> tuple[type[BaseModel] | None, type[BaseModel] | None]:
    body = query = None
    for call in _dependencies(route.dependant):
        body = getattr(call, "flowless_body_model", None) or body
        query = getattr(call, "flowless_query_model", None) or query
    return body, query


def _register(components: dict[str, Any], model: type[BaseModel], mode: str) -> dict[str, Any]:
    """Put ``model`` (and the models it refers to) in ``components``; return a reference to it."""
    schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, schema)
    return {"$ref": _REF.format(model=model.__name__)}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF, mode="validation")
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("type") == "array" or any(option.get("type") == "array" for option in prop.get("anyOf", [])):
            parameter["explode"] = True
        parameters.append(parameter)
    return parameters


def _responses(route: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": _REF.format(model="Envelope")}}}
    # Routes answering something besides JSON (a file download, server-sent events) say so in openapi_extra.
    content.update((route.openapi_extra or {}).get("x-flowless-content") or {})
    return {"200": {"description": "RAGFlow's envelope (errors too are answered with HTTP 200)", "content": content}}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes."""
    document = get_openapi(title=TITLE, version=VERSION, description=DESCRIPTION, routes=app.routes)
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    components["Envelope"] = _ENVELOPE
    document["components"]["securitySchemes"] = {
        "ApiKey": {"type": "http", "scheme": "bearer", "description": "A RAGFlow API key: `ragflow-...`"}
    }
    for route in iter_route_contexts(app.routes):  # each route with its router's prefix applied
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        body, query = _models(route)
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            operation.pop("requestBody", None)
            parameters = [p for p in operation.get("parameters", []) if p.get("in") == "path"]
            for parameter in parameters:
                parameter["schema"] = {"type": "string"}
            if query is not None:
                parameters.extend(_query_parameters(query))
            if parameters:
                operation["parameters"] = parameters
            if body is not None:
                operation["requestBody"] = {
                    "required": not getattr(body, "body_optional", False),
                    "content": {"application/json": {"schema": _register(components, body, "validation")}},
                }
            upload = (route.openapi_extra or {}).get("requestBody")
            if upload is not None:
                operation["requestBody"] = upload
            operation["responses"] = _responses(route)
            operation.pop("x-flowless-content", None)
            if not str(route.path_format).startswith(_UNAUTHENTICATED_PREFIXES):
                operation["security"] = [{"ApiKey": []}]
    for name in [name for name in components if name in ("HTTPValidationError", "ValidationError")]:
        del components[name]
    return document


def _swagger_assets() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def install_docs(app: FastAPI) -> None:
    """``/openapi.json`` and ``/docs`` (Swagger UI served from the installed package, no CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "document" not in cache:
            cache["document"] = build_openapi(app)
        return cache["document"]  # type: ignore[no-any-return]

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount("/docs/assets", StaticFiles(directory=_swagger_assets()), name="swagger-ui")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> dict[str, Any]:
        return openapi()

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{TITLE} API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def render(document: dict[str, Any]) -> str:
    """The committed form of the document (docs/openapi.json): stable key order, one trailing newline."""
    import json

    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def local_document() -> dict[str, Any]:
    """The local server's document (every route group), built without starting anything."""
    import tempfile

    from functions.local.server import build_local_app, local_container

    with tempfile.TemporaryDirectory() as data_dir:
        return build_openapi(build_local_app(local_container(Path(data_dir))))


if __name__ == "__main__":  # python -m functions.api.openapi > docs/openapi.json
    import sys

    sys.stdout.write(render(local_document()))
