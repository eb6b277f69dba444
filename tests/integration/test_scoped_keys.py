"""Scoped API keys over real HTTP. The cases are generated from the route registry (``shared.access``'s
table): a read key is refused with RAGFlow's permission error on every write route and changes nothing; it
is let through on every read route; an id-restricted key is refused on every route naming another dataset,
and on routes that reach the whole tenant. Then the CLI that issues, lists and revokes keys."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.cli import main as flowless
from functions.local.server import local_container
from shared.access import access_table
from shared.schemas.common import parse_model
from shared.schemas.datasets import CreateDatasetRequest
from tests.support.api import create_dataset, upload_one
from tests.support.server import RunningServer

AGENT_DSL = {
    "components": {
        "begin": {
            "obj": {"component_name": "Begin", "params": {"prologue": "Hi"}},
            "downstream": ["Message:Echo"],
            "upstream": [],
        },
        "Message:Echo": {
            "obj": {"component_name": "Message", "params": {"content": ["You asked: {sys.query}"]}},
            "downstream": [],
            "upstream": ["begin"],
        },
    },
    "globals": {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": []},
    "history": [],
    "path": [],
    "retrieval": [],
}


@dataclass
class Tenant:
    id: str
    admin: httpx.Client
    ids: dict[str, str]

    def key(self, server: RunningServer, scope: str = "write", **lists: list[str]) -> httpx.Client:
        ids = {kind: lists[kind] for kind in ("dataset", "chat", "agent") if kind in lists} or None
        key = server.container.tenant_service.issue_key(self.id, scope, ids)  # type: ignore[arg-type]
        return server.client(key)

    def snapshot(self) -> dict[str, Any]:
        """What the tenant holds, to show a refused call changed nothing."""
        get = self.admin.get
        return {
            "datasets": get("/api/v1/datasets").json(),
            "documents": get(f"/api/v1/datasets/{self.ids['dataset_id']}/documents").json(),
            "chats": get("/api/v1/chats").json(),
            "agents": get("/api/v1/agents").json(),
            "webhooks": get("/api/v1/flowless/webhooks").json(),
        }


@pytest.fixture
def tenant(server: RunningServer, api: httpx.Client) -> Tenant:
    dataset, other = create_dataset(api, "mine"), create_dataset(api, "other")
    doc = upload_one(api, dataset["id"], "a.txt", b"Scoped keys reach only what they name.\n")
    chat = api.post("/api/v1/chats", json={"name": "assistant", "dataset_ids": []}).json()["data"]
    other_chat = api.post("/api/v1/chats", json={"name": "other", "dataset_ids": []}).json()["data"]
    assert api.post("/api/v1/agents", json={"title": "agent", "dsl": AGENT_DSL}).json()["code"] == 0
    agent = api.get("/api/v1/agents", params={"title": "agent"}).json()["data"][0]
    tenant_id = dataset["tenant_id"]
    fake = uuid.uuid1().hex
    return Tenant(
        tenant_id,
        api,
        {
            "dataset_id": dataset["id"],
            "other_dataset": other["id"],
            "document_id": doc["id"],
            "chat_id": chat["id"],
            "other_chat": other_chat["id"],
            "agent_id": agent["id"],
            # Ids of things that need not exist: the key is refused before anything is looked up.
            "chunk_id": fake,
            "session_id": fake,
            "webhook_id": fake,
            "upload_id": fake,
            "file_id": fake,
        },
    )


def concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), uuid.uuid1().hex), path)


def call(client: httpx.Client, method: str, path: str, body: Any = None) -> httpx.Response:
    if method == "GET":
        return client.get(path)
    return client.request(method, path, json={} if body is None else body)


def answer(response: httpx.Response) -> dict[str, Any]:
    """The envelope of a JSON answer, or of the first frame of a stream; {} for other content (downloads)."""
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        first = next((line[5:] for line in text.splitlines() if line.startswith("data:")), "{}")
        parsed: dict[str, Any] = json.loads(first) if first.strip().startswith("{") else {}
        return parsed
    try:
        loaded = response.json()
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


WRITE_ROUTES = sorted((a.method, a.path) for a in access_table().values() if a.scope == "write")
READ_ROUTES = sorted((a.method, a.path) for a in access_table().values() if a.scope == "read")


def test_the_table_covers_every_route_the_server_serves(server: RunningServer) -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    from functions.local.server import build_local_app

    served = {
        (method, route.path_format)
        for route in iter_route_contexts(build_local_app(server.container).routes)
        if isinstance(route.original_route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    public = {("GET", "/v1/system/healthz"), ("GET", "/v1/system/ping")}
    assert served - public == set(access_table())
    assert ("POST", "/api/v1/retrieval") in READ_ROUTES and ("POST", "/api/v1/datasets") in WRITE_ROUTES


def test_a_read_key_is_refused_on_every_write_route_and_changes_nothing(server: RunningServer, tenant: Tenant) -> None:
    before = tenant.snapshot()
    with tenant.key(server, "read") as reader:
        for method, path in WRITE_ROUTES:
            res = answer(call(reader, method, concrete(path, tenant.ids)))
            assert res.get("code") == 108, (method, path, res)
            assert res["message"].startswith("Permission denied.") and "'write' scope" in res["message"]
    assert tenant.snapshot() == before


def test_ragflows_routing_rules_do_not_open_a_way_around_the_scopes(server: RunningServer, tenant: Tenant) -> None:
    """Paths RAGFlow's router still matches (a trailing slash, merged slashes) reach the same route and the
    same refusal."""
    before = tenant.snapshot()
    with tenant.key(server, "read") as reader:
        for method, path in WRITE_ROUTES:
            concrete_path = concrete(path, tenant.ids)
            for variant in (concrete_path + "/", concrete_path.replace("/api/v1/", "/api//v1//", 1)):
                res = answer(call(reader, method, variant))
                assert res.get("code") == 108, (method, variant, res)
    assert tenant.snapshot() == before


def test_a_read_key_reads_retrieves_and_answers(server: RunningServer, tenant: Tenant) -> None:
    with tenant.key(server, "read") as reader:
        for method, path in READ_ROUTES:
            res = answer(call(reader, method, concrete(path, tenant.ids)))
            assert res.get("code") != 108, (method, path, res)
        listed = reader.get("/api/v1/datasets").json()
        assert listed["code"] == 0 and listed["total"] == 2
        found = reader.post("/api/v1/retrieval", json={"question": "keys", "dataset_ids": [tenant.ids["dataset_id"]]})
        assert found.json()["code"] == 0


def test_a_dataset_restricted_key_is_refused_on_every_route_naming_another_dataset(
    server: RunningServer, tenant: Tenant
) -> None:
    mine, other = tenant.ids["dataset_id"], tenant.ids["other_dataset"]
    before = tenant.snapshot()
    dataset_routes = [(m, p) for m, p in WRITE_ROUTES + READ_ROUTES if "{dataset_id}" in p]
    assert len(dataset_routes) >= 10
    with tenant.key(server, "write", dataset=[mine]) as restricted:
        for method, path in dataset_routes:
            res = answer(call(restricted, method, concrete(path, {**tenant.ids, "dataset_id": other})))
            assert res.get("code") == 108 and f"The dataset {other} is out of reach" in res["message"], (path, res)
        refused = [
            ("GET", "/api/v1/datasets", None),  # every dataset
            ("GET", f"/api/v1/datasets?id={other}", None),
            ("DELETE", "/api/v1/datasets", {"ids": [other]}),
            ("DELETE", "/api/v1/datasets", {"ids": None}),  # all of them
            ("POST", "/api/v1/datasets", {"name": "new"}),  # the whole tenant
            ("POST", "/api/v1/retrieval", {"question": "q", "dataset_ids": [mine, other]}),
            ("GET", "/api/v1/chats", None),  # a kind the key has no list for
            ("GET", f"/api/v1/chats/{tenant.ids['chat_id']}/sessions", None),
            ("POST", f"/api/v1/agents/{tenant.ids['agent_id']}/completions", {"question": "q"}),
            ("GET", "/api/v1/flowless/webhooks", None),
        ]
        for method, path, body in refused:
            res = answer(call(restricted, method, path, body))
            assert res.get("code") == 108, (method, path, res)
        assert tenant.snapshot() == before

        listed = restricted.get("/api/v1/datasets", params={"id": mine}).json()
        assert listed["code"] == 0 and [d["id"] for d in listed["data"]] == [mine]
        found = restricted.post("/api/v1/retrieval", json={"question": "keys", "dataset_ids": [mine]}).json()
        assert found["code"] == 0
        doc = upload_one(restricted, mine, "b.txt", b"A restricted write key writes inside its datasets.\n")
        assert restricted.get(f"/api/v1/datasets/{mine}/documents", params={"id": doc["id"]}).json()["code"] == 0


def test_a_chat_restricted_key_reaches_its_chat_only(server: RunningServer, tenant: Tenant) -> None:
    chat, other = tenant.ids["chat_id"], tenant.ids["other_chat"]
    with tenant.key(server, "read", chat=[chat]) as restricted:
        assert restricted.get(f"/api/v1/chats/{chat}/sessions").json()["code"] == 0
        assert restricted.get("/api/v1/chats", params={"id": chat}).json()["code"] == 0
        assert restricted.get(f"/api/v1/chats/{other}/sessions").json()["code"] == 108
        answered = answer(restricted.post(f"/api/v1/chats/{chat}/completions", json={"question": "hi"}))
        assert answered.get("code") != 108
        assert restricted.get(f"/api/v1/datasets/{tenant.ids['dataset_id']}/documents").json()["code"] == 108
    with tenant.key(server, "write", chat=[chat]) as writer:
        moved = writer.put(f"/api/v1/chats/{chat}", json={"dataset_ids": [tenant.ids["other_dataset"]]}).json()
        assert moved["code"] == 108  # attaching a dataset the key may not touch
        assert writer.put(f"/api/v1/chats/{chat}", json={"name": "renamed"}).json()["code"] == 0


def test_keys_issued_before_scopes_and_unknown_routes_stay_as_they_were(api: httpx.Client) -> None:
    """A key without a scope (every key before this feature) may do everything, as before."""
    assert api.post("/api/v1/datasets", json={"name": "still-writable"}).json()["code"] == 0


def test_the_cli_issues_lists_and_revokes_scoped_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    assert flowless(["tenant", "create", "--data-dir", data, "--name", "acme"]) == 0
    created = capsys.readouterr()
    tenant_id = created.err.split()[-1]
    container = local_container(tmp_path)
    dataset = container.datasets.create(tenant_id, parse_model(CreateDatasetRequest, {"name": "docs"}))

    assert (
        flowless(["tenant", "key", tenant_id, "--data-dir", data, "--scope", "read", "--datasets", dataset["id"]]) == 0
    )
    key = capsys.readouterr().out.strip()
    grant = container.tenants.grant_for_key(key)
    assert grant is not None and grant.scope == "read" and grant.ids == {"dataset": frozenset({dataset["id"]})}

    assert flowless(["tenant", "keys", tenant_id, "--data-dir", data]) == 0
    listing = capsys.readouterr().out
    assert key not in listing and key[-4:] in listing
    assert "read" in listing and f"datasets: {dataset['id']}" in listing and "(all)" in listing
    key_id = grant.key_id
    assert key_id in listing

    assert flowless(["tenant", "key", tenant_id, "--data-dir", data, "--datasets", uuid.uuid1().hex]) == 2
    assert "has no dataset" in capsys.readouterr().err
    assert flowless(["tenant", "revoke", tenant_id, key_id, "--data-dir", data]) == 0
    assert container.tenants.grant_for_key(key) is None
    assert flowless(["tenant", "revoke", tenant_id, key_id, "--data-dir", data]) == 2
