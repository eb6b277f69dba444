"""The OpenAPI document: generated from the request models, served with /docs, committed without drift."""

from __future__ import annotations

from pathlib import Path

import httpx

from functions.api.openapi import local_document, render
from shared.routes import ROUTE_GROUPS
from tests.support.server import RunningServer

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_document_matches_the_code() -> None:
    assert COMMITTED.read_text() == render(local_document()), (
        "docs/openapi.json is stale: regenerate it with `.venv/bin/python -m functions.api.openapi > docs/openapi.json`"
    )


def test_every_registered_route_is_documented(server: RunningServer) -> None:
    with server.client(None) as anon:
        document = anon.get("/openapi.json").json()
    for group in ROUTE_GROUPS:
        for route in group.routes:
            documented = document["paths"].get(route.path)
            assert documented is not None, route.path
            assert {m.lower() for m in route.methods} <= set(documented), route


def test_docs_are_served_offline(anon: httpx.Client) -> None:
    page = anon.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert anon.get(asset).status_code == 200, asset
