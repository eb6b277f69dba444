"""The scope table derived from the route registry, and the grants keys carry."""

from __future__ import annotations

import pytest

from shared.access import (
    NAMED_IDS,
    KeyGrant,
    access_table,
    authorizer_resources,
    build_access_table,
    ids_from_lists,
)
from shared.errors import PermissionDenied
from shared.routes import ROUTE_GROUPS, Route, RouteGroup

A, B = "a" * 32, "b" * 32


def test_scopes_come_from_the_registry() -> None:
    table = access_table()
    assert all(access.scope == "read" for (method, _), access in table.items() if method == "GET")
    reads = {(m, r.path) for g in ROUTE_GROUPS for r in g.routes for m in r.reads}
    assert reads >= {("POST", "/api/v1/retrieval"), ("POST", "/api/v1/chats/{chat_id}/completions")}
    assert {key for key, access in table.items() if access.scope == "read"} == {
        key for key in table if key[0] == "GET" or key in reads
    }
    assert not any(
        g.name == "system" for g in ROUTE_GROUPS if any((m, r.path) in table for r in g.routes for m in r.methods)
    )
    assert table[("GET", "/api/v1/datasets/{dataset_id}/documents")].path_ids == (("dataset_id", "dataset"),)
    assert table[("POST", "/api/v1/datasets")].tenant_wide


def test_named_ids_must_name_routes_the_registry_serves() -> None:
    assert set(NAMED_IDS) <= set(access_table())
    odd = RouteGroup(name="odd", module="x", routes=(Route("/api/v1/odd", ("POST",)),))
    assert ("POST", "/api/v1/datasets") not in build_access_table([odd])


def test_each_named_field_is_a_field_of_the_model_its_route_reads() -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    from functions.api.app import create_app
    from functions.api.openapi import _models

    routes = {
        (method, route.path_format): route
        for route in iter_route_contexts(create_app(ROUTE_GROUPS).routes)
        if isinstance(route.original_route, APIRoute)
        for method in route.methods or ()
    }
    for key, entries in NAMED_IDS.items():
        body, query = _models(routes[key])
        for entry in entries:
            model = body if entry.where == "body" else query
            assert model is not None and entry.name in model.model_fields, (key, entry)


def test_grants_travel_through_the_authorizer_context() -> None:
    grant = KeyGrant("t", "read", ids_from_lists({"dataset": [A.upper()], "chat": []}), key_id="k")
    context = grant.to_context()
    assert all(isinstance(value, str) for value in context.values())
    assert KeyGrant.from_context(context) == grant and KeyGrant.from_context({"tenant_id": "t"}).unlimited
    with pytest.raises(ValueError):
        KeyGrant.from_context({"tenant_id": "t", "scope": "admin"})
    with pytest.raises(ValueError):
        ids_from_lists({"file": [A]})


def test_restricted_grants() -> None:
    table = access_table()
    grant = KeyGrant("t", "write", ids_from_lists({"dataset": [A]}))
    documents = table[("GET", "/api/v1/datasets/{dataset_id}/documents")]
    grant.check_route(documents, {"dataset_id": A})
    grant.check_route(documents, {"dataset_id": "-".join([A[:8], A[8:12], A[12:16], A[16:20], A[20:]])})
    for params in ({"dataset_id": B}, {}):
        with pytest.raises(PermissionDenied, match="out of reach"):
            grant.check_route(documents, params)
    with pytest.raises(PermissionDenied, match="whole tenant"):
        grant.check_route(table[("POST", "/api/v1/datasets")], {})
    with pytest.raises(PermissionDenied, match="chat"):
        grant.check_route(table[("GET", "/api/v1/chats/{chat_id}/sessions")], {"chat_id": A})
    (listing,) = NAMED_IDS[("GET", "/api/v1/datasets")]
    grant.check_named(listing, A)
    for value in (None, "", B):
        with pytest.raises(PermissionDenied):
            grant.check_named(listing, value)
    (attach,) = NAMED_IDS[("PUT", "/api/v1/chats/{chat_id}")]
    grant.check_named(attach, None)  # not changing the chat's datasets
    with pytest.raises(PermissionDenied):
        grant.check_named(attach, [A, B])
    with pytest.raises(PermissionDenied, match="unrestricted key"):
        KeyGrant("t", "read").check_route(None, {})
    KeyGrant("t").check_route(None, {})


def test_authorizer_resources() -> None:
    prefix = "arn:aws:execute-api:r:1:api/stage"
    assert authorizer_resources(KeyGrant("t"), prefix) == [f"{prefix}/*/*"]
    read = authorizer_resources(KeyGrant("t", "read"), prefix)
    assert f"{prefix}/GET/*" in read and f"{prefix}/POST/api/v1/retrieval" in read
    assert not any(r.startswith(f"{prefix}/DELETE") or r.startswith(f"{prefix}/PUT") for r in read)
    assert authorizer_resources(KeyGrant("t", "read", ids_from_lists({})), prefix) == []
