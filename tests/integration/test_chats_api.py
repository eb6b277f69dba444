"""The chat assistant endpoints over real HTTP against the local server, rule by rule from the reference."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.ports.metadata import ConditionFailed, MetadataStore
from shared.repos.chats import ChatRepository, DuplicateChatName, SessionRepository
from shared.repos.datasets import DatasetRepository
from shared.schemas.chats import DEFAULT_SYSTEM_PROMPT
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.server import RunningServer

CHAT_MODEL = "gpt-4o-mini@OpenAI"
OTHER_CHAT_MODEL = "gpt-4.1@OpenAI"
VISION_MODEL = "gpt-4o@OpenAI"
RERANK_MODEL = "rerank-english-v3.0@Cohere"
BUILTIN_EMBEDDING = "all-MiniLM-L6-v2@Builtin"
DEFAULT_OPENER = "Hi! I'm your assistant. What can I do for you?"


def create(api: httpx.Client, **payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.post("/api/v1/chats", json=payload).json()
    return result


def update(api: httpx.Client, chat_id: str, payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.put(f"/api/v1/chats/{chat_id}", json=payload).json()
    return result


def delete(api: httpx.Client, payload: Any = None) -> dict[str, Any]:
    if payload is None:
        result: dict[str, Any] = api.request("DELETE", "/api/v1/chats").json()
    else:
        result = api.request("DELETE", "/api/v1/chats", json=payload).json()
    return result


def listing(api: httpx.Client, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.get("/api/v1/chats", params=params).json()
    return result


def all_chats(api: httpx.Client) -> list[dict[str, Any]]:
    res = listing(api, page_size=1000)
    assert res["code"] == 0, res
    chats: list[dict[str, Any]] = res["data"]
    return chats


def parsed_dataset(api: httpx.Client, name: str = "kb", **fields: Any) -> dict[str, Any]:
    """A dataset with parsed content (the builtin embedder, a one-line document)."""
    ds = create_dataset(api, name, **fields)
    doc = upload_one(api, ds["id"], "facts.txt", b"Otters hold hands while they sleep so they do not drift apart.")
    assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"
    return ds


@pytest.fixture
def model_api(server: RunningServer) -> Iterator[httpx.Client]:
    """A tenant with a default chat model, a vision model and a rerank model configured."""
    from shared.services.tenants import ModelSetting

    _, key = server.container.tenant_service.create(
        "models",
        [
            ModelSetting(OTHER_CHAT_MODEL, "chat"),
            ModelSetting(CHAT_MODEL, "chat"),  # the last chat model configured is the default
            ModelSetting(VISION_MODEL, "image2text"),
            ModelSetting(RERANK_MODEL, "rerank"),
        ],
    )
    with server.client(key) as client:
        yield client


# -- create -------------------------------------------------------------------------------------------


def test_create_answers_every_documented_field_with_defaults(api: httpx.Client) -> None:
    res = create(api, name="assistant")
    assert res["code"] == 0, res
    data = res["data"]
    for field in (
        "avatar",
        "create_date",
        "create_time",
        "dataset_ids",
        "description",
        "do_refer",
        "id",
        "language",
        "llm",
        "name",
        "prompt",
        "prompt_type",
        "status",
        "tenant_id",
        "top_k",
        "update_date",
        "update_time",
    ):
        assert field in data, field
    assert len(data["id"]) == 32 and uuid.UUID(hex=data["id"]).version == 1
    assert data["avatar"] == "" and data["dataset_ids"] == []
    assert (data["description"], data["language"]) == ("A helpful Assistant", "English")
    assert (data["do_refer"], data["prompt_type"], data["status"], data["top_k"]) == ("1", "simple", "1", 1024)
    assert data["create_time"] == data["update_time"] > 1_600_000_000_000
    assert data["create_date"].endswith("GMT")
    # no chat model configured for this tenant: stored as null, completions will say so
    assert data["llm"] == {
        "model_name": None,
        "model_type": "chat",
        "temperature": 0.1,
        "top_p": 0.3,
        "presence_penalty": 0.4,
        "frequency_penalty": 0.7,
        "max_tokens": 512,
    }
    prompt = data["prompt"]
    assert prompt["similarity_threshold"] == 0.2 and prompt["keywords_similarity_weight"] == 0.7
    assert prompt["top_n"] == 6 and prompt["rerank_model"] == ""
    assert prompt["variables"] == [{"key": "knowledge", "optional": False}]
    assert prompt["opener"] == DEFAULT_OPENER
    assert prompt["show_quote"] is True
    assert prompt["empty_response"] == "Sorry! No relevant content was found in the knowledge base!"
    assert "{knowledge}" in prompt["prompt"] and prompt["prompt"] == DEFAULT_SYSTEM_PROMPT
    assert "top_k" not in prompt  # shown at the top level, as the reference does
    assert all_chats(api)[0]["id"] == data["id"]


def test_create_uses_the_tenants_default_chat_model(model_api: httpx.Client) -> None:
    assert create(model_api, name="default")["data"]["llm"]["model_name"] == CHAT_MODEL
    nulled = create(model_api, name="null", llm={"model_name": None, "temperature": 0.5})["data"]["llm"]
    assert nulled["model_name"] == CHAT_MODEL and nulled["temperature"] == 0.5 and nulled["top_p"] == 0.3


def test_create_accepts_what_ragflow_sdk_sends(api: httpx.Client) -> None:
    # ragflow-sdk's RAGFlow.create_chat() with no llm/prompt arguments sends exactly this.
    sdk_prompt = "You are an intelligent assistant.\nHere is the knowledge base:\n{knowledge}\nThe above is it."
    res = create(
        api,
        name="from sdk",
        avatar="",
        dataset_ids=[],
        llm={
            "model_name": None,
            "temperature": 0.1,
            "top_p": 0.3,
            "presence_penalty": 0.4,
            "frequency_penalty": 0.7,
            "max_tokens": 512,
        },
        prompt={
            "similarity_threshold": 0.2,
            "keywords_similarity_weight": 0.7,
            "top_n": 8,
            "top_k": 1024,
            "variables": [{"key": "knowledge", "optional": True}],
            "rerank_model": "",
            "empty_response": None,
            "opener": "Hi! I'm your assistant. What can I do for you?",
            "show_quote": True,
            "prompt": sdk_prompt,
        },
    )
    assert res["code"] == 0, res
    data = res["data"]
    assert data["llm"]["max_tokens"] == 512 and data["prompt"]["top_n"] == 8
    assert data["prompt"]["empty_response"] is None and data["prompt"]["prompt"] == sdk_prompt


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": "   "}, {"name": None}])
def test_name_is_required(api: httpx.Client, payload: dict[str, Any]) -> None:
    assert create(api, **payload) == {"code": 102, "message": "`name` is required."}
    assert all_chats(api) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [(1, "Input should be a valid string"), ("a" * 256, "String should have at most 255 characters")],
)
def test_name_type_and_length(api: httpx.Client, name: Any, message: str) -> None:
    res = create(api, name=name)
    assert res["code"] == 101 and "Field: <name>" in res["message"] and message in res["message"], res
    assert all_chats(api) == []


def test_name_is_trimmed_and_255_characters_fit(api: httpx.Client) -> None:
    assert create(api, name="  padded  ")["data"]["name"] == "padded"
    assert create(api, name="n" * 255)["code"] == 0


def test_names_are_unique_per_tenant_case_insensitively(api: httpx.Client, other_api: httpx.Client) -> None:
    assert create(api, name="Helper")["code"] == 0
    assert create(api, name="hELPER") == {"code": 102, "message": "Duplicated chat name in creating chat."}
    assert create(other_api, name="Helper")["code"] == 0  # another tenant may use it
    assert len(all_chats(api)) == 1


def test_concurrent_creates_of_one_name_have_one_winner(api: httpx.Client, server: RunningServer) -> None:
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
    assert sorted(r["code"] for r in results) == [0] + [102] * 7
    assert len(all_chats(api)) == 1


def test_unknown_fields_are_ignored_as_ragflow_does(api: httpx.Client) -> None:
    # RAGFlow reads the keys it knows (req.get); the others never reach what is stored, except in ``llm``,
    # which RAGFlow stores whole: its unknown keys are kept and echoed.
    res = create(api, name="x", tenant_id="someone", id="chosen", llm={"model": "x"}, prompt={"extra": 1})
    assert res["code"] == 0, res
    chat = res["data"]
    assert chat["tenant_id"] != "someone" and chat["id"] != "chosen"
    assert chat["llm"]["model"] == "x" and "extra" not in chat["prompt"]
    assert update(api, chat["id"], {"tenant_id": "someone", "created_by": "me"}) == {"code": 0}
    assert listing(api, id=chat["id"])["data"][0]["tenant_id"] == chat["tenant_id"]


def test_bad_types_are_rejected(api: httpx.Client) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "x", "llm": {"temperature": "hot"}}, "Field: <llm.temperature>"),
        ({"name": "x", "llm": {"temperature": 3}}, "less than or equal to 2"),
        ({"name": "x", "llm": {"top_p": 1.5}}, "Field: <llm.top_p>"),
        ({"name": "x", "prompt": {"top_n": "6"}}, "Field: <prompt.top_n>"),
        ({"name": "x", "prompt": {"top_n": -1}}, "greater than or equal to 0"),
        ({"name": "x", "prompt": {"similarity_threshold": 2}}, "Field: <prompt.similarity_threshold>"),
        ({"name": "x", "prompt": {"variables": [{"optional": True}]}}, "Field: <prompt.variables.0.key>"),
        ({"name": "x", "prompt": {"show_quote": "yes"}}, "Field: <prompt.show_quote>"),
        ({"name": "x", "prompt": "just text"}, "Field: <prompt>"),
        ({"name": "x", "dataset_ids": "abc"}, "Field: <dataset_ids>"),
        ({"name": "x", "dataset_ids": [1]}, "Field: <dataset_ids.0>"),
    ]
    for payload, where in cases:
        res = create(api, **payload)
        assert res["code"] == 101 and where in res["message"], (payload, res)
    assert all_chats(api) == []


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        ("{bad json", {"Content-Type": "application/json"}, "Malformed JSON syntax"),
        ('["a list"]', {"Content-Type": "application/json"}, "Invalid request payload: expected object, got list"),
        ("name=x", {"Content-Type": "application/x-www-form-urlencoded"}, "Unsupported content type"),
    ],
)
def test_bad_bodies(api: httpx.Client, content: str, headers: dict[str, str], message: str) -> None:
    res = api.post("/api/v1/chats", content=content, headers=headers)
    assert res.status_code == 200
    assert res.json()["code"] == 101 and message in res.json()["message"]


def test_avatar_and_description_are_kept(api: httpx.Client) -> None:
    data = create(api, name="pictured", avatar="data:image/png;base64,AAAA", description="knows otters")["data"]
    assert data["avatar"] == "data:image/png;base64,AAAA" and data["description"] == "knows otters"


# -- datasets -----------------------------------------------------------------------------------------


def test_parsed_datasets_are_linked_and_listed(api: httpx.Client) -> None:
    ds = parsed_dataset(api)
    res = create(api, name="with kb", dataset_ids=[ds["id"], "", ds["id"]])  # blanks and repeats drop out
    assert res["code"] == 0, res
    assert res["data"]["dataset_ids"] == [ds["id"]]
    listed = listing(api, id=res["data"]["id"])["data"][0]
    assert listed["dataset_ids"] == [ds["id"]]
    assert [d["id"] for d in listed["datasets"]] == [ds["id"]] and listed["datasets"][0]["chunk_count"] > 0


def test_dataset_rules(api: httpx.Client, other_api: httpx.Client) -> None:
    missing = uuid.uuid1().hex
    foreign = create_dataset(other_api, "theirs")["id"]
    unparsed = create_dataset(api, "empty")["id"]
    for dataset_id, message in [
        (missing, f"You don't own the dataset {missing}"),
        (foreign, f"You don't own the dataset {foreign}"),
        ("not-an-id", "You don't own the dataset not-an-id"),
        (unparsed, f"The dataset {unparsed} doesn't own parsed file"),
    ]:
        assert create(api, name="kb chat", dataset_ids=[dataset_id]) == {"code": 102, "message": message}
    assert all_chats(api) == []


def test_datasets_must_share_one_embedding_model(server: RunningServer) -> None:
    from shared.services.tenants import ModelSetting

    tenant, key = server.container.tenant_service.create(
        "embedders", [ModelSetting("text-embedding-3-small@OpenAI", "embedding")]
    )
    with server.client(key) as client:
        builtin = parsed_dataset(client, "builtin", embedding_model=BUILTIN_EMBEDDING)
        openai = create_dataset(client, "openai")
        assert openai["embedding_model"] == "text-embedding-3-small@OpenAI"
        DatasetRepository(server.container.metadata).add_counts(tenant.id, openai["id"], chunk_count=1)
        res = create(client, name="mixed", dataset_ids=[builtin["id"], openai["id"]])
        assert res == {"code": 102, "message": "Datasets use different embedding models."}
        assert all_chats(client) == []
        assert create(client, name="single", dataset_ids=[openai["id"]])["code"] == 0


# -- models -------------------------------------------------------------------------------------------


def test_chat_model_must_be_configured_for_the_tenant(model_api: httpx.Client) -> None:
    data = create(model_api, name="other", llm={"model_name": OTHER_CHAT_MODEL})["data"]
    assert data["llm"]["model_name"] == OTHER_CHAT_MODEL and data["llm"]["temperature"] == 0.1
    # Known to RAGFlow's catalog but not configured: Unauthorized; unknown: Unsupported.
    for model in ("gpt-4o@OpenAI", "gpt-4.1-mini@OpenAI", "gpt-4.1-mini"):
        res = create(model_api, name="bad model", llm={"model_name": model})
        assert res == {"code": 101, "message": f"Unauthorized model: <{model}>"}, model
    for model in ("nope@Nowhere", "no-factory", "x@OpenAI-API-Compatible"):
        res = create(model_api, name="bad model", llm={"model_name": model})
        assert res == {"code": 101, "message": f"Unsupported model: <{model}>"}, model
    assert [c["name"] for c in all_chats(model_api)] == ["other"]


def test_model_type_image2text(model_api: httpx.Client) -> None:
    vision = create(model_api, name="vision", llm={"model_name": VISION_MODEL, "model_type": "image2text"})
    assert vision["code"] == 0 and vision["data"]["llm"]["model_type"] == "image2text"
    # a chat-only model is not a vision model; any other model_type means "chat"
    res = create(model_api, name="v2", llm={"model_name": CHAT_MODEL, "model_type": "image2text"})
    assert res == {"code": 101, "message": f"Unsupported model: <{CHAT_MODEL}>"}
    other = create(model_api, name="v3", llm={"model_name": CHAT_MODEL, "model_type": "speech"})
    assert other["data"]["llm"]["model_type"] == "chat"


def test_rerank_model(model_api: httpx.Client) -> None:
    assert create(model_api, name="r1", prompt={"rerank_model": RERANK_MODEL})["data"]["prompt"]["rerank_model"] == (
        RERANK_MODEL
    )
    res = create(model_api, name="r2", prompt={"rerank_model": "rerank-2@Voyage AI"})
    assert res == {"code": 102, "message": "`rerank_model` rerank-2@Voyage AI doesn't exist"}
    assert create(model_api, name="r3", prompt={"rerank_model": None})["data"]["prompt"]["rerank_model"] == ""


# -- prompt -------------------------------------------------------------------------------------------


def test_prompt_variables_must_be_used(api: httpx.Client) -> None:
    res = create(api, name="p", prompt={"prompt": "No placeholder.", "variables": [{"key": "knowledge"}]})
    assert res == {"code": 102, "message": "Parameter 'knowledge' is not used"}
    res = create(
        api,
        name="p",
        prompt={"prompt": "Use {knowledge}.", "variables": [{"key": "knowledge"}, {"key": "tone", "optional": False}]},
    )
    assert res == {"code": 102, "message": "Parameter 'tone' is not used"}
    assert all_chats(api) == []
    ok = create(
        api,
        name="p",
        prompt={"prompt": "Be {tone}: {knowledge}", "variables": [{"key": "knowledge"}, {"key": "tone"}]},
    )
    assert ok["code"] == 0
    assert ok["data"]["prompt"]["variables"] == [
        {"key": "knowledge", "optional": False},
        {"key": "tone", "optional": False},
    ]
    # the default variable is RAGFlow's: {knowledge} is not optional
    res = create(api, name="plain", prompt={"prompt": "You are terse."})
    assert res == {"code": 102, "message": "Parameter 'knowledge' is not used"}
    plain = create(api, name="plain", prompt={"prompt": "You are terse.", "variables": []})
    assert plain["code"] == 0 and plain["data"]["prompt"]["variables"] == []


def test_prompt_settings_are_kept(api: httpx.Client) -> None:
    data = create(
        api,
        name="tuned",
        prompt={
            "similarity_threshold": 0.5,
            "keywords_similarity_weight": 0.25,
            "top_n": 3,
            "top_k": 64,
            "empty_response": "",
            "opener": "Ahoy",
            "show_quote": False,
            "prompt": "",  # empty means the default prompt, as in RAGFlow
        },
    )["data"]
    prompt = data["prompt"]
    assert (prompt["similarity_threshold"], prompt["keywords_similarity_weight"], prompt["top_n"]) == (0.5, 0.25, 3)
    assert data["top_k"] == 64
    assert (prompt["empty_response"], prompt["opener"], prompt["show_quote"]) == ("", "Ahoy", False)
    assert prompt["prompt"] == DEFAULT_SYSTEM_PROMPT


# -- list ---------------------------------------------------------------------------------------------


def _make(api: httpx.Client, count: int) -> list[str]:
    return [create(api, name=f"chat{i:02d}")["data"]["id"] for i in range(count)]


def test_list_newest_first_pages_and_orders(api: httpx.Client) -> None:
    ids = _make(api, 7)
    res = listing(api)
    assert res["code"] == 0 and [c["id"] for c in res["data"]] == ids[::-1]
    assert [c["id"] for c in listing(api, page=2, page_size=3, desc="false")["data"]] == ids[3:6]
    assert [c["id"] for c in listing(api, page=3, page_size=3)["data"]] == [ids[0]]
    assert listing(api, page=4, page_size=3)["data"] == []
    assert listing(api, page_size=0)["data"] == []
    assert update(api, ids[0], {"description": "touched"}) == {"code": 0}
    assert listing(api, orderby="update_time")["data"][0]["id"] == ids[0]
    assert listing(api, orderby="update_time", desc="False")["data"][-1]["id"] == ids[0]
    assert listing(api, orderby="create_time", desc="True")["data"][0]["id"] == ids[-1]
    assert len(listing(api, unknown="ignored")["data"]) == 7  # RAGFlow ignores parameters it doesn't know


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": -1}, "Input should be greater than or equal to 0"),
        ({"page": "a"}, "Input should be a valid integer"),
        ({"page_size": -1}, "Input should be greater than or equal to 0"),
        ({"orderby": "name"}, "Input should be 'create_time' or 'update_time'"),
        ({"desc": "maybe"}, "Input should be a valid boolean"),
    ],
)
def test_list_argument_errors(api: httpx.Client, params: dict[str, Any], message: str) -> None:
    res = listing(api, **params)
    assert res["code"] == 101 and message in res["message"], res


def test_list_by_id_and_name(api: httpx.Client) -> None:
    ids = _make(api, 3)
    assert [c["id"] for c in listing(api, name="CHAT01")["data"]] == [ids[1]]  # names match case-insensitively
    assert [c["id"] for c in listing(api, id=ids[2])["data"]] == [ids[2]]
    assert [c["id"] for c in listing(api, id=ids[1], name="chat01")["data"]] == [ids[1]]
    assert len(listing(api, id="", name="")["data"]) == 3  # empty filters are no filters
    for params in ({"id": ids[0], "name": "chat01"}, {"name": "nobody"}, {"id": uuid.uuid1().hex}, {"id": "x"}):
        assert listing(api, **params) == {"code": 102, "message": "The chat doesn't exist"}, params


def test_another_tenants_chat_looks_missing(api: httpx.Client, other_api: httpx.Client) -> None:
    theirs = create(other_api, name="theirs")["data"]["id"]
    missing = uuid.uuid1().hex
    assert listing(api, id=theirs) == listing(api, id=missing) == {"code": 102, "message": "The chat doesn't exist"}
    assert listing(api, name="theirs")["code"] == 102
    assert update(api, theirs, {"name": "mine"}) == update(api, missing, {"name": "mine"})
    assert update(api, theirs, {"name": "mine"}) == {"code": 102, "message": "You do not own the chat"}
    assert delete(api, {"ids": [theirs]}) == {"code": 102, "message": f"Assistant({theirs}) not found."}
    assert listing(other_api, id=theirs)["data"][0]["name"] == "theirs"


# -- update -------------------------------------------------------------------------------------------


def test_update_merges_settings(model_api: httpx.Client) -> None:
    chat = create(model_api, name="before", prompt={"opener": "Hello", "top_n": 4})["data"]
    res = update(
        model_api,
        chat["id"],
        {
            "name": "after",
            "avatar": "data:image/png;base64,BBBB",
            "description": "d",
            "llm": {"temperature": 0.9, "model_name": OTHER_CHAT_MODEL},
            "prompt": {"similarity_threshold": 0.4, "top_k": 10, "rerank_model": RERANK_MODEL},
        },
    )
    assert res == {"code": 0}
    data = listing(model_api, id=chat["id"])["data"][0]
    assert (data["name"], data["avatar"], data["description"]) == ("after", "data:image/png;base64,BBBB", "d")
    assert data["llm"] == {**chat["llm"], "temperature": 0.9, "model_name": OTHER_CHAT_MODEL}
    assert data["prompt"] == {**chat["prompt"], "similarity_threshold": 0.4, "rerank_model": RERANK_MODEL}
    assert data["prompt"]["opener"] == "Hello" and data["prompt"]["top_n"] == 4  # untouched fields stay
    assert data["top_k"] == 10
    assert data["create_time"] == chat["create_time"] and data["update_time"] >= chat["update_time"]
    # the old name is free again; the new one is taken
    assert listing(model_api, name="before")["code"] == 102
    assert create(model_api, name="before")["code"] == 0
    assert create(model_api, name="AFTER")["code"] == 102
    # an explicit null model falls back to the tenant's default
    assert update(model_api, chat["id"], {"llm": {"model_name": None}}) == {"code": 0}
    assert listing(model_api, id=chat["id"])["data"][0]["llm"]["model_name"] == CHAT_MODEL


def test_update_name_rules(api: httpx.Client) -> None:
    a = create(api, name="alpha")["data"]
    create(api, name="beta")
    assert update(api, a["id"], {"name": "BETA"}) == {
        "code": 102,
        "message": "Duplicated chat name in updating chat.",
    }
    assert update(api, a["id"], {"name": ""}) == {"code": 102, "message": "`name` cannot be empty."}
    assert update(api, a["id"], {"name": None}) == {"code": 102, "message": "`name` cannot be empty."}
    assert update(api, a["id"], {"name": "ALPHA"}) == {"code": 0}  # its own name in another case
    assert listing(api, id=a["id"])["data"][0]["name"] == "ALPHA"
    assert update(api, a["id"], {}) == {"code": 0}


def test_update_datasets(api: httpx.Client) -> None:
    ds = parsed_dataset(api)
    unparsed = create_dataset(api, "unparsed")["id"]
    chat = create(api, name="kb")["data"]
    assert update(api, chat["id"], {"dataset_ids": [unparsed]}) == {
        "code": 102,
        "message": f"The dataset {unparsed} doesn't own parsed file",
    }
    assert update(api, chat["id"], {"dataset_ids": [ds["id"]]}) == {"code": 0}
    assert listing(api, id=chat["id"])["data"][0]["dataset_ids"] == [ds["id"]]
    assert update(api, chat["id"], {"dataset_ids": None}) == {"code": 0}  # null: left as it is
    assert listing(api, id=chat["id"])["data"][0]["dataset_ids"] == [ds["id"]]
    assert update(api, chat["id"], {"dataset_ids": []}) == {"code": 0}
    assert listing(api, id=chat["id"])["data"][0]["dataset_ids"] == []


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"name": 5}, 101, "Input should be a valid string"),
        ({"llm": {"top_p": 2}}, 101, "less than or equal to 1"),
        ({"llm": {"model_name": "nope@Nowhere"}}, 101, "Unsupported model: <nope@Nowhere>"),
        ({"llm": {"model_type": "image2text"}}, 101, f"Unsupported model: <{CHAT_MODEL}>"),
        ({"prompt": {"rerank_model": "nope@Nowhere"}}, 102, "`rerank_model` nope@Nowhere doesn't exist"),
        ({"prompt": {"variables": [{"key": "knowledge"}], "prompt": "none"}}, 102, "Parameter 'knowledge' is not used"),
        ({"prompt": {"prompt": "no placeholder"}}, 102, "Parameter 'knowledge' is not used"),
        ({"dataset_ids": [uuid.UUID(int=1, version=1).hex]}, 102, "You don't own the dataset"),
        ({"name": "fine", "prompt": {"top_n": -1}}, 101, "greater than or equal to 0"),
    ],
)
def test_update_errors_change_nothing(
    model_api: httpx.Client, payload: dict[str, Any], code: int, message: str
) -> None:
    # the stored variables make {knowledge} required, so a prompt without it is refused on merge
    chat = create(model_api, name="stable", prompt={"variables": [{"key": "knowledge", "optional": False}]})["data"]
    before = listing(model_api, id=chat["id"])["data"]
    res = update(model_api, chat["id"], payload)
    assert res["code"] == code and message in res["message"], res
    assert listing(model_api, id=chat["id"])["data"] == before


def test_update_bad_bodies(api: httpx.Client) -> None:
    chat = create(api, name="c")["data"]
    res = api.put(f"/api/v1/chats/{chat['id']}", content="{nope", headers={"Content-Type": "application/json"})
    assert res.json()["code"] == 101


# -- delete -------------------------------------------------------------------------------------------


def test_delete_by_ids(api: httpx.Client) -> None:
    ids = _make(api, 3)
    assert delete(api, {"ids": ids[:2]}) == {"code": 0}
    assert [c["id"] for c in all_chats(api)] == [ids[2]]
    assert delete(api, {"ids": ids[:1]}) == {"code": 102, "message": f"Assistant({ids[0]}) not found."}


def test_delete_of_only_unknown_ids_deletes_nothing(api: httpx.Client) -> None:
    ids = _make(api, 2)
    missing = [uuid.uuid1().hex, "bogus"]
    res = delete(api, {"ids": missing})
    assert res == {"code": 102, "message": f"Assistant({missing[0]}) not found.; Assistant(bogus) not found."}
    assert len(all_chats(api)) == len(ids)


def test_delete_reports_repeated_ids(api: httpx.Client) -> None:
    ids = _make(api, 3)
    res = delete(api, {"ids": [ids[0], ids[0], ids[1]]})
    assert res == {
        "code": 0,
        "message": "Partially deleted 2 chats with 1 errors",
        "data": {"success_count": 2, "errors": [f"Duplicate assistant ids: {ids[0]}"]},
    }
    assert [c["id"] for c in all_chats(api)] == [ids[2]]


@pytest.mark.parametrize("payload", [None, {}, {"ids": None}, {"ids": []}])
def test_delete_without_ids_deletes_every_chat_of_the_tenant(
    api: httpx.Client, other_api: httpx.Client, payload: Any
) -> None:
    _make(api, 3)
    theirs = create(other_api, name="keep")["data"]["id"]
    assert delete(api, payload) == {"code": 0}
    assert all_chats(api) == []
    assert [c["id"] for c in all_chats(other_api)] == [theirs]  # other tenants untouched


def test_delete_argument_errors(api: httpx.Client) -> None:
    chat = create(api, name="c")["data"]["id"]
    assert "Input should be a valid list" in delete(api, {"ids": chat})["message"]
    assert "Field: <ids.0>" in delete(api, {"ids": [1]})["message"]
    assert "Extra inputs are not permitted" in delete(api, {"id": [chat]})["message"]
    assert len(all_chats(api)) == 1


def test_deleting_a_chat_removes_its_sessions_and_frees_its_name(api: httpx.Client, server: RunningServer) -> None:
    chat = create(api, name="gone")["data"]["id"]
    kept = create(api, name="kept")["data"]["id"]
    for _ in range(3):
        assert api.post(f"/api/v1/chats/{chat}/sessions", json={}).json()["code"] == 0
    assert api.post(f"/api/v1/chats/{kept}/sessions", json={}).json()["code"] == 0
    sessions = SessionRepository(server.container.metadata)
    assert len(sessions.all_of_chat(chat)) == 3
    assert delete(api, {"ids": [chat]}) == {"code": 0}
    assert sessions.all_of_chat(chat) == []
    assert len(sessions.all_of_chat(kept)) == 1
    assert api.get(f"/api/v1/chats/{chat}/sessions").json() == {
        "code": 102,
        "message": f"You don't own the assistant {chat}.",
    }
    assert create(api, name="gone")["code"] == 0


# -- auth, routing ------------------------------------------------------------------------------------


def test_auth_answers(anon: httpx.Client) -> None:
    assert anon.get("/api/v1/chats").json() == {"code": 109, "message": "`Authorization` can't be empty"}
    unknown = anon.post("/api/v1/chats", json={"name": "x"}, headers={"Authorization": "Bearer ragflow-unknown"})
    assert unknown.json() == {"code": 109, "message": "Authentication error: API key is invalid!"}


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/api/v1/chats/abc", "<MethodNotAllowed '405: Method Not Allowed'>"),
        ("PATCH", "/api/v1/chats", "<MethodNotAllowed '405: Method Not Allowed'>"),
        ("GET", "/api/v1/chats/abc/nothing", "<NotFound '404: Not Found'>"),
        ("PUT", "/api/v1/chats/abc/sessions", "<MethodNotAllowed '405: Method Not Allowed'>"),
    ],
)
def test_routing_errors_are_ragflow_json(api: httpx.Client, method: str, path: str, message: str) -> None:
    assert api.request(method, path).json() == {"code": 100, "message": message}


# -- the repository on both drivers -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    if request.param == "sqlite":
        from shared.adapters.local.sqlite_store import SqliteMetadataStore

        yield SqliteMetadataStore(tmp_path / "meta.sqlite3")
    else:
        from tests.support.dynamo import moto_dynamo_store

        with moto_dynamo_store() as dynamo:
            yield dynamo


def _chat_record(name: str, ms: int, tenant_id: str = "t1") -> dict[str, Any]:
    return {
        "id": uuid.uuid1().hex,
        "tenant_id": tenant_id,
        "name": name,
        "llm": {"model_name": None, "temperature": 0.1},
        "prompt": {"similarity_threshold": 0.2, "variables": [{"key": "knowledge", "optional": True}]},
        "dataset_ids": [],
        "create_time": ms,
        "update_time": ms,
    }


def _must(record: dict[str, Any] | None) -> dict[str, Any]:
    assert record is not None
    return record


def test_chat_repository_names_order_and_deletes(store: MetadataStore) -> None:
    chats = ChatRepository(store)
    first, second = _chat_record("First", 1000), _chat_record("Second", 2000)
    chats.create(first)
    chats.create(second)
    with pytest.raises(DuplicateChatName):
        chats.create(_chat_record("FIRST", 3000))
    chats.create(_chat_record("First", 3000, tenant_id="t2"))  # names are per tenant
    stored = _must(chats.get("t1", first["id"]))
    assert {key: stored[key] for key in first} == first  # nested settings and floats round-trip
    assert [c["id"] for c in chats.page("t1", orderby="create_time", desc=True, offset=0, limit=10)] == [
        second["id"],
        first["id"],
    ]
    renamed = chats.update(first, {"name": "Renamed", "update_time": 4000})
    assert [c["id"] for c in chats.page("t1", orderby="update_time", desc=True, offset=0, limit=1)] == [first["id"]]
    with pytest.raises(DuplicateChatName):
        chats.update(renamed, {"name": "second", "update_time": 5000})
    # a rename decided on a stale name is refused, and leaves no guard behind
    with pytest.raises(ConditionFailed):
        chats.update(first, {"name": "Third", "update_time": 6000})
    assert chats.get_by_name("t1", "third") is None and chats.get_by_name("t1", "first") is None
    assert _must(chats.get_by_name("t1", "RENAMED"))["id"] == first["id"]
    chats.delete(first)  # a stale copy: the delete re-reads and removes the current name's guard
    assert chats.get("t1", first["id"]) is None and chats.get_by_name("t1", "renamed") is None
    chats.create(_chat_record("Renamed", 7000))
    assert [c["name"] for c in chats.all_of_tenant("t1")].count("Renamed") == 1
