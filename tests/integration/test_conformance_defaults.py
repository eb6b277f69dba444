"""RAGFlow's server defaults for ``parser_config`` over real HTTP: the whole default per chunk method, the
tenant's chat model as ``llm_id``, merging, a document's reset, round trips and unknown keys of newer clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.schemas.parser_config import RAPTOR_PROMPT
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.server import RunningServer

CHAT_MODEL = "conformance-chat@OpenAI-API-Compatible"
NAIVE_DEFAULT: dict[str, Any] = {
    "layout_recognize": "DeepDOC",
    "chunk_token_num": 512,
    "delimiter": "\n",
    "auto_keywords": 0,
    "auto_questions": 0,
    "html4excel": False,
    "topn_tags": 3,
    "image_context_size": 0,
    "table_context_size": 0,
    "llm_id": CHAT_MODEL,
    "raptor": {
        "use_raptor": True,
        "prompt": RAPTOR_PROMPT,
        "max_token": 256,
        "threshold": 0.1,
        "max_cluster": 64,
        "random_seed": 0,
    },
    "graphrag": {
        "use_graphrag": True,
        "entity_types": ["organization", "person", "geo", "event", "category"],
        "method": "light",
    },
}
NO_RAPTOR_NO_GRAPHRAG: dict[str, Any] = {
    "raptor": {"use_raptor": False},
    "graphrag": {"use_graphrag": False},
    "image_context_size": 0,
    "table_context_size": 0,
    "llm_id": CHAT_MODEL,
}
MEDIA_ONLY: dict[str, Any] = {"image_context_size": 0, "table_context_size": 0, "llm_id": CHAT_MODEL}


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    """A tenant whose default chat model is set (it becomes every dataset's ``parser_config.llm_id``)."""
    from shared.services.tenants import ModelSetting

    setting = ModelSetting(CHAT_MODEL, "chat", api_base="http://127.0.0.1:9/v1", api_key="sk-x")
    _, key = server.container.tenant_service.create("defaults", [setting])
    with server.client(key) as client:
        yield client


def _create(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    res: dict[str, Any] = api.post("/api/v1/datasets", json={"name": "defaults", **fields}).json()
    return res


@pytest.mark.parametrize("parser_config", ["missing", {}, None])
def test_naive_dataset_gets_ragflows_whole_default(api: httpx.Client, parser_config: Any) -> None:
    fields = {} if parser_config == "missing" else {"parser_config": parser_config}
    res = _create(api, **fields)
    assert res["code"] == 0, res
    assert res["data"]["parser_config"] == NAIVE_DEFAULT
    assert res["data"]["parser_config"]["delimiter"] == "\n"  # a real newline, not backslash-n


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        *((m, NO_RAPTOR_NO_GRAPHRAG) for m in ("qa", "manual", "paper", "book", "laws", "presentation")),
        *((m, MEDIA_ONLY) for m in ("table", "picture", "one", "email", "tag")),
    ],
)
def test_each_chunk_method_gets_its_default(api: httpx.Client, method: str, expected: dict[str, Any]) -> None:
    data = _create(api, chunk_method=method)["data"]
    assert data["chunk_method"] == method and data["parser_config"] == expected


def test_without_a_chat_model_llm_id_is_empty(server: RunningServer) -> None:
    with server.client(server.new_tenant_key()) as client:
        assert _create(client)["data"]["parser_config"]["llm_id"] == ""


def test_client_settings_merge_over_the_method_defaults(api: httpx.Client) -> None:
    config = {"chunk_token_num": 128, "raptor": {"max_token": 512}, "graphrag": {"method": "general"}}
    data = _create(api, parser_config=config)["data"]["parser_config"]
    assert data["chunk_token_num"] == 128 and data["delimiter"] == "\n" and data["topn_tags"] == 3
    assert data["raptor"] == {**NAIVE_DEFAULT["raptor"], "max_token": 512}
    assert data["graphrag"] == {**NAIVE_DEFAULT["graphrag"], "method": "general"}
    qa = _create(api, name="qa", chunk_method="qa", parser_config={"raptor": {"use_raptor": True}})["data"]
    assert qa["parser_config"]["raptor"] == {"use_raptor": True}
    assert qa["parser_config"]["graphrag"] == {"use_graphrag": False}


def test_the_tenant_chat_model_wins_on_create(api: httpx.Client) -> None:
    # RAGFlow sets llm_id after merging the client's settings.
    data = _create(api, parser_config={"llm_id": "other@OpenAI"})["data"]
    assert data["parser_config"]["llm_id"] == CHAT_MODEL


def test_a_returned_parser_config_can_be_sent_back_unchanged(api: httpx.Client) -> None:
    ds = _create(api)["data"]
    config = ds["parser_config"]
    again = _create(api, name="copy", parser_config=config)
    assert again["code"] == 0 and again["data"]["parser_config"] == config
    updated = api.put(f"/api/v1/datasets/{ds['id']}", json={"parser_config": config}).json()
    assert updated["code"] == 0 and updated["data"]["parser_config"] == config
    doc = upload_one(api, ds["id"], "a.txt", b"text")
    assert doc["parser_config"] == config  # a document starts with its dataset's
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}"
    res = api.put(url, json={"parser_config": {**doc["parser_config"], "image_context_size": 2}}).json()
    assert res["code"] == 0 and res["data"]["parser_config"] == {**config, "image_context_size": 2}


def test_dataset_update_merges_and_keeps_the_chat_model(api: httpx.Client) -> None:
    ds = _create(api)["data"]
    url = f"/api/v1/datasets/{ds['id']}"
    merged = api.put(url, json={"parser_config": {"table_context_size": 4, "raptor": {"threshold": 0.5}}}).json()
    config = merged["data"]["parser_config"]
    assert config["table_context_size"] == 4 and config["raptor"] == {**NAIVE_DEFAULT["raptor"], "threshold": 0.5}
    assert api.put(url, json={"parser_config": {}}).json()["data"]["parser_config"] == config  # {} changes nothing
    switched = api.put(url, json={"chunk_method": "book"}).json()["data"]
    assert switched["parser_config"] == NO_RAPTOR_NO_GRAPHRAG


def test_document_parser_config_resets_to_its_method_defaults(api: httpx.Client) -> None:
    ds = _create(api)["data"]
    doc = upload_one(api, ds["id"], "a.txt", b"text")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}"
    changed = api.put(url, json={"parser_config": {"chunk_token_num": 64, "raptor": {"use_raptor": False}}}).json()
    assert changed["data"]["parser_config"]["chunk_token_num"] == 64
    reset = api.put(url, json={"parser_config": {}}).json()
    assert reset["code"] == 0 and reset["data"]["parser_config"] == NAIVE_DEFAULT
    manual = api.put(url, json={"chunk_method": "manual"}).json()["data"]
    assert manual["parser_config"] == NO_RAPTOR_NO_GRAPHRAG
    api.put(url, json={"parser_config": {"chunk_token_num": 99}})
    assert api.put(url, json={"parser_config": {}}).json()["data"]["parser_config"] == NO_RAPTOR_NO_GRAPHRAG
    both = api.put(url, json={"chunk_method": "naive", "parser_config": {}}).json()["data"]
    assert both["chunk_method"] == "naive" and both["parser_config"] == NAIVE_DEFAULT


def test_unknown_keys_of_newer_clients_are_accepted_and_ignored(api: httpx.Client) -> None:
    newer = {
        "chunk_token_num": 256,
        "parent_child": {"use_parent_child": True, "children_delimiter": ";"},
        "children_delimiter": ";",
        "ext": {"anything": [1, 2]},
        "raptor": {"use_raptor": True, "scope": "dataset"},
        "graphrag": {"use_graphrag": False, "batch": 3},
    }
    res = _create(api, parser_config=newer)
    assert res["code"] == 0, res
    config = res["data"]["parser_config"]
    assert config["chunk_token_num"] == 256
    assert not {"parent_child", "children_delimiter", "ext"} & set(config)
    assert "scope" not in config["raptor"] and "batch" not in config["graphrag"]
    url = f"/api/v1/datasets/{res['data']['id']}"
    assert api.put(url, json={"parser_config": {"ext": {}, "topn_tags": 5}}).json()["data"]["parser_config"] == {
        **config,
        "topn_tags": 5,
    }
    doc = upload_one(api, res["data"]["id"], "a.txt", b"text")
    doc_url = f"{url}/documents/{doc['id']}"
    assert api.put(doc_url, json={"parser_config": {"parent_child": {"use_parent_child": True}}}).json()["code"] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"image_context_size": -1}, "greater than or equal to 0"),
        ({"table_context_size": "4"}, "Input should be a valid integer"),
        ({"llm_id": 3}, "Input should be a valid string"),
        ({"topn_tags": 0}, "greater than or equal to 1"),
    ],
)
def test_known_keys_are_still_checked(api: httpx.Client, config: dict[str, Any], message: str) -> None:
    res = _create(api, parser_config=config)
    assert res["code"] == 101 and message in res["message"], res
    assert api.get("/api/v1/datasets").json()["total"] == 0


def test_use_raptor_and_graphrag_are_settings_only(api: httpx.Client) -> None:
    ds = create_dataset(api)
    assert ds["parser_config"]["raptor"]["use_raptor"] is True
    doc = upload_one(api, ds["id"], "a.txt", b"Plain text for a plain parse.")
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "DONE" and done["chunk_count"] == 1  # no summaries or graph were added
