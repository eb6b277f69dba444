"""The datasets endpoints over real HTTP against the local server, rule by rule from the reference."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer

PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def create(api: httpx.Client, **payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.post("/api/v1/datasets", json=payload).json()
    return result


def delete(api: httpx.Client, payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.request("DELETE", "/api/v1/datasets", json=payload).json()
    return result


def listing(api: httpx.Client, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.get("/api/v1/datasets", params=params).json()
    return result


# -- create -------------------------------------------------------------------------------------------


def test_create_answers_every_documented_field(api: httpx.Client) -> None:
    res = create(api, name="RAGFlow example")
    assert res["code"] == 0, res
    data = res["data"]
    for field in (
        "avatar",
        "chunk_count",
        "chunk_method",
        "create_date",
        "create_time",
        "created_by",
        "description",
        "document_count",
        "embedding_model",
        "id",
        "language",
        "name",
        "pagerank",
        "parser_config",
        "permission",
        "similarity_threshold",
        "status",
        "tenant_id",
        "token_num",
        "update_date",
        "update_time",
        "vector_similarity_weight",
    ):
        assert field in data, field
    assert data["chunk_method"] == "naive"
    assert data["permission"] == "me"
    assert data["embedding_model"] == "all-MiniLM-L6-v2@Builtin"
    assert data["similarity_threshold"] == 0.2 and data["vector_similarity_weight"] == 0.3
    assert data["status"] == "1" and data["language"] == "English"
    assert data["chunk_count"] == data["document_count"] == data["token_num"] == 0
    assert len(data["id"]) == 32 and uuid.UUID(hex=data["id"]).version == 1
    assert data["create_time"] > 1_600_000_000_000  # milliseconds
    assert data["create_date"].endswith("GMT")
    assert data["parser_config"]["delimiter"] == "\n"  # RAGFlow's whole default: test_conformance_defaults


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "String should have at least 1 character"),
        ("   ", "String should have at least 1 character"),
        ("a" * 129, "String should have at most 128 characters"),
        (0, "Input should be a valid string"),
        (None, "Input should be a valid string"),
        ("emoji 😀", "Basic Multilingual Plane"),
    ],
)
def test_create_rejects_bad_names(api: httpx.Client, name: Any, message: str) -> None:
    res = create(api, name=name)
    assert res["code"] == 101
    assert message in res["message"]
    assert "Field: <name>" in res["message"]
    assert listing(api)["total"] == 0


def test_create_trims_and_allows_128_chars(api: httpx.Client) -> None:
    assert create(api, name="  padded  ")["data"]["name"] == "padded"
    assert create(api, name="b" * 128)["code"] == 0


def test_names_are_unique_per_tenant_case_insensitively(api: httpx.Client, other_api: httpx.Client) -> None:
    assert create(api, name="Shared Name")["code"] == 0
    # RAGFlow's server names a repeated name name(1), name(2)… (see test_conformance_messages)
    assert create(api, name="shared name")["data"]["name"] == "shared name(1)"
    assert create(other_api, name="Shared Name")["data"]["name"] == "Shared Name"  # another tenant may use it
    assert listing(api)["total"] == 2


def test_required_name_missing(api: httpx.Client) -> None:
    res = create(api)
    assert res["code"] == 101 and "Field required" in res["message"]


def test_unknown_fields_are_rejected(api: httpx.Client) -> None:
    res = create(api, name="x", unknown_field="y")
    assert res["code"] == 101
    assert "Field: <unknown_field> - Message: <Extra inputs are not permitted>" in res["message"]
    assert listing(api)["total"] == 0


@pytest.mark.parametrize(
    ("avatar", "message"),
    [
        ("no-prefix", "Missing MIME prefix. Expected format: data:<mime>;base64,<data>"),
        ("image/png;base64,abc", "Invalid MIME prefix format. Must start with 'data:'"),
        ("data:text/plain;base64,abc", "Unsupported MIME type. Allowed: ['image/jpeg', 'image/png']"),
        ("data:image/png;base64," + "a" * 65535, "String should have at most 65535 characters"),
    ],
)
def test_avatar_rules(api: httpx.Client, avatar: str, message: str) -> None:
    res = create(api, name="avatar", avatar=avatar)
    assert res["code"] == 101 and message in res["message"]


def test_avatar_and_description_are_kept(api: httpx.Client) -> None:
    data = create(api, name="with avatar", avatar=PNG, description="about")["data"]
    assert data["avatar"] == PNG and data["description"] == "about"
    assert create(api, name="long desc", description="d" * 65536)["code"] == 101


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no-at-sign", "Embedding model identifier must follow <model_name>@<provider> format"),
        ("@factory", "Both model_name and provider must be non-empty strings"),
        ("name@", "Both model_name and provider must be non-empty strings"),
        ("x" * 256 + "@OpenAI", "String should have at most 255 characters"),
        ("unknown-model@Nowhere", "Unsupported model: <unknown-model@Nowhere>"),
        ("BAAI/bge-large-zh-v1.5@BAAI", "Unsupported model: <BAAI/bge-large-zh-v1.5@BAAI>"),  # not in RAGFlow's list
        ("text-embedding-3-small@OpenAI", "Unauthorized model: <text-embedding-3-small@OpenAI>"),
        ("nope@Builtin", "Unsupported model: <nope@Builtin>"),
        (
            "BAAI/bge-m3@Builtin",  # one of RAGFlow's builtin models, whose weights are not shipped
            "Builtin model <BAAI/bge-m3@Builtin> is not shipped with this server; "
            "the builtin models are: all-MiniLM-L6-v2@Builtin, BAAI/bge-small-en-v1.5@Builtin",
        ),
        ("gpt-4o@OpenAI", "Unsupported model: <gpt-4o@OpenAI>"),  # a chat model is not an embedding model
    ],
)
def test_embedding_model_rules(api: httpx.Client, model: str, message: str) -> None:
    res = create(api, name="emb", embedding_model=model)
    assert res["code"] == 101, res
    assert message in res["message"]


@pytest.mark.parametrize("model", ["BAAI/bge-m3@Builtin", "Qwen/Qwen3-Embedding-0.6B@Builtin"])
def test_ragflows_builtin_models_that_are_not_shipped_are_named_as_such(api: httpx.Client, model: str) -> None:
    res = create(api, name="emb", embedding_model=model)
    assert res == {
        "code": 101,
        "message": f"Builtin model <{model}> is not shipped with this server; the builtin models are: "
        "all-MiniLM-L6-v2@Builtin, BAAI/bge-small-en-v1.5@Builtin",
    }
    assert listing(api)["data"] == []  # nothing was created


def test_builtin_and_configured_embedding_models_are_accepted(server: RunningServer) -> None:
    from shared.services.tenants import ModelSetting

    _, key = server.container.tenant_service.create(
        "configured", [ModelSetting("text-embedding-3-small@OpenAI", "embedding")]
    )
    with server.client(key) as client:
        assert create(client, name="b", embedding_model="all-MiniLM-L6-v2@Builtin")["code"] == 0
        assert create(client, name="e", embedding_model="BAAI/bge-small-en-v1.5@Builtin")["code"] == 0
        data = create(client, name="c", embedding_model="text-embedding-3-small@OpenAI")["data"]
        assert data["embedding_model"] == "text-embedding-3-small@OpenAI"
        # the tenant's default embedding model is used when none is given
        assert create(client, name="d")["data"]["embedding_model"] == "text-embedding-3-small@OpenAI"


@pytest.mark.parametrize("permission", ["me", "team"])
def test_permission_values(api: httpx.Client, permission: str) -> None:
    res = create(api, name=f"perm {permission}", permission=permission)
    assert res["code"] == 0 and res["data"]["permission"] == permission


def test_permission_rejects_others(api: httpx.Client) -> None:
    res = create(api, name="perm", permission="everyone")
    assert res["code"] == 101 and "Input should be 'me' or 'team'" in res["message"]


@pytest.mark.parametrize("method", ["unknown", "", 1, None, ["naive"]])
def test_chunk_method_enum(api: httpx.Client, method: Any) -> None:
    res = create(api, name="m", chunk_method=method)
    assert res["code"] == 101
    assert "Input should be 'naive', 'book', 'email', 'laws', 'manual', 'one', 'paper', 'picture', " in res["message"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"auto_keywords": -1}, "greater than or equal to 0"),
        ({"auto_keywords": 33}, "less than or equal to 32"),
        ({"auto_keywords": 3.5}, "Input should be a valid integer"),
        ({"auto_questions": 11}, "less than or equal to 10"),
        ({"chunk_token_num": 0}, "greater than or equal to 1"),
        ({"chunk_token_num": 2049}, "less than or equal to 2048"),
        ({"delimiter": ""}, "at least 1 character"),
        ({"html4excel": "yes"}, "Input should be a valid boolean"),
        ({"task_page_size": 0}, "greater than or equal to 1"),
        ({"raptor": {"use_raptor": "x"}}, "Input should be a valid boolean"),
        ({"raptor": {"max_token": 0}}, "greater than or equal to 1"),
        ({"raptor": {"threshold": 1.5}}, "less than or equal to 1"),
        ({"graphrag": {"method": "heavy"}}, "Input should be 'light' or 'general'"),
        ({"graphrag": {"use_graphrag": 1}}, "Input should be a valid boolean"),
        ("not an object", "Input should be a valid dictionary"),
    ],
)
def test_parser_config_ranges(api: httpx.Client, config: Any, message: str) -> None:
    res = create(api, name="pc", parser_config=config)
    assert res["code"] == 101, res
    assert message in res["message"]


def test_pipeline_fields(api: httpx.Client) -> None:
    pipeline = "d0bebe30ae2211f0970942010a8e0005"
    ok = create(api, name="pipe", parse_type=2, pipeline_id=pipeline)
    assert ok["code"] == 0 and ok["data"]["pipeline_id"] == pipeline and ok["data"]["parse_type"] == 2
    for payload, message in [
        ({"pipeline_id": pipeline}, "required fields missing: parse_type"),
        ({"parse_type": 1}, "required fields missing: pipeline_id"),
        ({"chunk_method": "naive", "pipeline_id": pipeline, "parse_type": 1}, "disallowed fields present"),
        ({"parse_type": 1, "pipeline_id": "D0BEBE30AE2211F0970942010A8E0005"}, "lowercase hexadecimal"),
        ({"parse_type": 1, "pipeline_id": "abc"}, "32 hex characters"),
        ({"parse_type": 1, "pipeline_id": "z" * 32}, "hexadecimal"),
        ({"parse_type": 65, "pipeline_id": pipeline}, "less than or equal to 64"),
        ({"parse_type": 1, "pipeline_id": pipeline, "parser_config": {"chunk_token_num": 9}}, "parser_config"),
    ]:
        res = create(api, name="pipe2", **payload)
        assert res["code"] == 101, (payload, res)
        assert message in res["message"], (payload, res)


def test_create_rejects_pagerank(api: httpx.Client) -> None:
    assert create(api, name="pr", pagerank=5)["code"] == 101


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        ("{bad json", {"Content-Type": "application/json"}, "Malformed JSON syntax"),
        ('["a list"]', {"Content-Type": "application/json"}, "Invalid request payload: expected object, got list"),
        ("name=x", {"Content-Type": "application/x-www-form-urlencoded"}, "Unsupported content type"),
    ],
)
def test_bad_bodies(api: httpx.Client, content: str, headers: dict[str, str], message: str) -> None:
    res = api.post("/api/v1/datasets", content=content, headers=headers)
    assert res.status_code == 200
    assert res.json()["code"] == 101 and message in res.json()["message"]


def test_concurrent_creates_of_one_name_get_distinct_names(api: httpx.Client, server: RunningServer) -> None:
    key = api.headers["Authorization"].split()[1]
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        with server.client(key) as client:
            barrier.wait()
            results.append(create(client, name="Race"))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["code"] for r in results] == [0] * 8
    assert sorted(r["data"]["name"] for r in results) == ["Race", *(f"Race({n})" for n in range(1, 8))]
    assert listing(api)["total"] == 8


# -- list ---------------------------------------------------------------------------------------------


def _make(api: httpx.Client, count: int) -> list[str]:
    return [create(api, name=f"ds{i:02d}")["data"]["id"] for i in range(count)]


def test_list_defaults_newest_first_with_total(api: httpx.Client) -> None:
    ids = _make(api, 5)
    res = listing(api)
    assert res["code"] == 0 and res["total"] == 5
    assert [d["id"] for d in res["data"]] == ids[::-1]


def test_list_pages_and_orders(api: httpx.Client) -> None:
    ids = _make(api, 7)
    page2 = listing(api, page=2, page_size=3, desc="false")
    assert [d["id"] for d in page2["data"]] == ids[3:6] and page2["total"] == 7
    assert listing(api, page=4, page_size=3)["data"] == []
    # touching the oldest makes it first by update_time
    assert api.put(f"/api/v1/datasets/{ids[0]}", json={"description": "touched"}).json()["code"] == 0
    by_update = listing(api, orderby="update_time")
    assert by_update["data"][0]["id"] == ids[0]
    assert listing(api, orderby="create_time", desc="true")["data"][0]["id"] == ids[-1]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": 0}, "Input should be greater than or equal to 1"),
        ({"page": "a"}, "Input should be a valid integer, unable to parse string as an integer"),
        ({"page_size": 0}, "Input should be greater than or equal to 1"),
        ({"orderby": "name"}, "Input should be 'create_time' or 'update_time'"),
        ({"desc": "maybe"}, "Input should be a valid boolean, unable to interpret input"),
        ({"id": "not-a-uuid"}, "Invalid UUID1 format"),
        ({"id": uuid.uuid4().hex}, "Invalid UUID1 format"),  # RAGFlow's own except catches its other message
        ({"unknown": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_list_argument_errors(api: httpx.Client, params: dict[str, Any], message: str) -> None:
    res = listing(api, **params)
    assert res["code"] == 101 and message in res["message"], res


def test_list_by_name_and_id(api: httpx.Client) -> None:
    ids = _make(api, 3)
    by_name = listing(api, name="DS01")  # names match case-insensitively
    assert [d["id"] for d in by_name["data"]] == [ids[1]] and by_name["total"] == 1
    assert [d["id"] for d in listing(api, id=ids[2])["data"]] == [ids[2]]
    assert [d["id"] for d in listing(api, id=ids[1], name="ds01")["data"]] == [ids[1]]
    assert listing(api, id=ids[0], name="ds01")["data"] == []


def test_list_unknown_or_foreign_filters_look_the_same(api: httpx.Client, other_api: httpx.Client) -> None:
    foreign = create(other_api, name="theirs")["data"]["id"]
    missing = uuid.uuid1().hex
    res_foreign = listing(api, id=foreign)
    res_missing = listing(api, id=missing)
    assert res_foreign["code"] == res_missing["code"] == 108
    assert res_foreign["message"].replace(foreign, "X") == res_missing["message"].replace(missing, "X")
    res = listing(api, name="theirs")
    assert res["code"] == 108 and "lacks permission for dataset 'theirs'" in res["message"]


# -- update -------------------------------------------------------------------------------------------


def test_update_returns_the_dataset(api: httpx.Client) -> None:
    ds = create(api, name="before")["data"]
    res = api.put(
        f"/api/v1/datasets/{ds['id']}",
        json={"name": "after", "description": "d", "permission": "team", "pagerank": 50, "avatar": PNG},
    ).json()
    assert res["code"] == 0
    data = res["data"]
    assert (data["name"], data["description"], data["permission"], data["pagerank"]) == ("after", "d", "team", 50)
    assert data["update_time"] >= ds["update_time"] and data["create_time"] == ds["create_time"]
    assert listing(api, name="after")["total"] == 1
    assert listing(api, name="before")["code"] == 108  # the old name is free again
    assert create(api, name="before")["code"] == 0


def test_update_name_conflicts(api: httpx.Client) -> None:
    a = create(api, name="alpha")["data"]
    create(api, name="beta")
    res = api.put(f"/api/v1/datasets/{a['id']}", json={"name": "BETA"}).json()
    assert res == {"code": 102, "message": "Dataset name 'BETA' already exists"}
    # changing only the case of its own name is allowed
    assert api.put(f"/api/v1/datasets/{a['id']}", json={"name": "ALPHA"}).json()["data"]["name"] == "ALPHA"


def test_update_chunk_method_resets_parser_config(api: httpx.Client) -> None:
    ds = create(api, name="cm", parser_config={"chunk_token_num": 64})["data"]
    res = api.put(f"/api/v1/datasets/{ds['id']}", json={"chunk_method": "qa"}).json()
    config = res["data"]["parser_config"]
    assert res["data"]["chunk_method"] == "qa" and "chunk_token_num" not in config
    assert config["raptor"] == {"use_raptor": False} and config["graphrag"] == {"use_graphrag": False}
    res = api.put(f"/api/v1/datasets/{ds['id']}", json={"parser_config": {"raptor": {"use_raptor": True}}}).json()
    assert res["data"]["parser_config"]["raptor"] == {"use_raptor": True}


def test_update_parser_config_deep_merges(api: httpx.Client) -> None:
    ds = create(api, name="merge")["data"]
    data = api.put(f"/api/v1/datasets/{ds['id']}", json={"parser_config": {"chunk_token_num": 256}}).json()["data"]
    assert data["parser_config"]["chunk_token_num"] == 256 and data["parser_config"]["delimiter"] == "\n"


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({}, 101, "No properties were modified"),
        ({"pagerank": 101}, 101, "less than or equal to 100"),
        ({"pagerank": -1}, 101, "greater than or equal to 0"),
        ({"tenant_id": "x"}, 101, "Extra inputs are not permitted"),
        ({"name": ""}, 101, "String should have at least 1 character"),
        ({"name": None}, 101, "Input should be a valid string"),
        ({"permission": "all"}, 101, "Input should be 'me' or 'team'"),
        ({"chunk_method": "nope"}, 101, "Input should be 'naive'"),
        ({"embedding_model": "nope@Nowhere"}, 101, "Unsupported model: <nope@Nowhere>"),
        ({"parser_config": {"chunk_token_num": 4096}}, 101, "less than or equal to 2048"),
    ],
)
def test_update_argument_errors_change_nothing(
    api: httpx.Client, payload: dict[str, Any], code: int, message: str
) -> None:
    ds = create(api, name="stable")["data"]
    res = api.put(f"/api/v1/datasets/{ds['id']}", json=payload).json()
    assert res["code"] == code and message in res["message"], res
    assert listing(api, id=ds["id"])["data"][0] == ds


def test_update_unknown_bad_and_foreign_ids(api: httpx.Client, other_api: httpx.Client) -> None:
    assert (
        api.put("/api/v1/datasets/not-a-uuid", json={"name": "x"})
        .json()["message"]
        .endswith("Invalid UUID1 format> - Value: <not-a-uuid>")
    )
    foreign = create(other_api, name="theirs")["data"]["id"]
    res = api.put(f"/api/v1/datasets/{foreign}", json={"name": "mine now"}).json()
    assert res["code"] == 108 and "lacks permission for dataset" in res["message"]
    assert listing(other_api, id=foreign)["data"][0]["name"] == "theirs"


def test_update_embedding_model_frozen_once_chunked(api: httpx.Client, server: RunningServer) -> None:
    ds = create(api, name="frozen")["data"]
    tenant_id = ds["tenant_id"]
    from shared.repos.datasets import DatasetRepository

    DatasetRepository(server.container.metadata).add_counts(tenant_id, ds["id"], chunk_count=3)
    res = api.put(f"/api/v1/datasets/{ds['id']}", json={"embedding_model": "text-embedding-3-small@OpenAI"}).json()
    assert res == {
        "code": 102,
        "message": "When chunk_num (3) > 0, embedding_model must remain all-MiniLM-L6-v2@Builtin",
    }
    same = api.put(f"/api/v1/datasets/{ds['id']}", json={"embedding_model": "all-MiniLM-L6-v2@Builtin"}).json()
    assert same["code"] == 0


# -- delete -------------------------------------------------------------------------------------------


def test_delete_by_ids(api: httpx.Client) -> None:
    ids = _make(api, 3)
    assert delete(api, {"ids": ids[:2]}) == {"code": 0}
    assert [d["id"] for d in listing(api)["data"]] == [ids[2]]


def test_delete_empty_list_deletes_nothing_and_null_deletes_all(api: httpx.Client, other_api: httpx.Client) -> None:
    _make(api, 3)
    theirs = create(other_api, name="keep")["data"]["id"]
    assert delete(api, {"ids": []}) == {"code": 0}
    assert listing(api)["total"] == 3
    assert delete(api, {"ids": None}) == {"code": 0}
    assert listing(api)["total"] == 0
    assert listing(other_api, id=theirs)["total"] == 1  # other tenants untouched


def test_delete_errors(api: httpx.Client, other_api: httpx.Client) -> None:
    ids = _make(api, 2)
    missing = uuid.uuid1().hex
    foreign = create(other_api, name="theirs")["data"]["id"]
    res = delete(api, {"ids": [ids[0], missing, foreign]})
    assert res["code"] == 108
    assert missing in res["message"] and foreign in res["message"] and ids[0] not in res["message"]
    assert listing(api)["total"] == 2  # nothing deleted
    dup = delete(api, {"ids": [ids[0], ids[0]]})
    assert dup["code"] == 101 and f"Duplicate ids: '{ids[0]}'" in dup["message"]
    assert delete(api, {"ids": ["bad"]})["code"] == 101
    assert "Field required" in delete(api, {})["message"]
    assert "Input should be a valid list" in delete(api, {"ids": "x"})["message"]
    assert delete(api, {"ids": ids}) == {"code": 0}
    again = delete(api, {"ids": ids})
    assert again["code"] == 108


# -- auth, routing, envelope -------------------------------------------------------------------------


def test_auth_answers(anon: httpx.Client, server: RunningServer) -> None:
    # RAGFlow answers a missing or malformed header with code 0 (read as success): 109 here.
    assert anon.get("/api/v1/datasets").json() == {"code": 109, "message": "`Authorization` can't be empty"}
    malformed = anon.get("/api/v1/datasets", headers={"Authorization": "Bearer"}).json()
    assert malformed == {"code": 109, "message": "Please check your authorization format."}
    unknown = anon.get("/api/v1/datasets", headers={"Authorization": "Bearer ragflow-unknown"}).json()
    assert unknown == {"code": 109, "message": "Authentication error: API key is invalid!"}
    assert anon.post("/api/v1/datasets", json={"name": "x"}).json()["code"] == 109


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/api/v1/nothing", "<NotFound '404: Not Found'>"),
        ("GET", "/api/v1/datasets//documents", "<MethodNotAllowed '405: Method Not Allowed'>"),  # merged slashes
        ("GET", "/api/v1/nothing/", "<NotFound '404: Not Found'>"),
        ("PATCH", "/api/v1/datasets", "<MethodNotAllowed '405: Method Not Allowed'>"),
        ("GET", "/api/v1/datasets/abc", "<MethodNotAllowed '405: Method Not Allowed'>"),
    ],
)
def test_routing_errors_are_ragflow_json(api: httpx.Client, method: str, path: str, message: str) -> None:
    res = api.request(method, path)
    assert res.headers["content-type"].startswith("application/json")
    assert res.json() == {"code": 100, "message": message}


def test_health_and_ping(anon: httpx.Client) -> None:
    health = anon.get("/v1/system/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    for name in ("db", "storage", "doc_engine", "workflow"):
        assert body[name] == "ok" and "elapsed" in body["_meta"][name]
    ping = anon.get("/v1/system/ping")
    assert ping.status_code == 200 and ping.text == "pong"
