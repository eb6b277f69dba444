"""The chat session endpoints over real HTTP against the local server, and the session repository's appends."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.ports.metadata import ConditionFailed, MetadataStore
from shared.repos.chats import ChatRepository, SessionNotFound, SessionRepository
from tests.support.server import RunningServer

DEFAULT_OPENER = "Hi! I'm your assistant. What can I do for you?"


def new_chat(api: httpx.Client, name: str = "assistant", **payload: Any) -> str:
    res = api.post("/api/v1/chats", json={"name": name, **payload}).json()
    assert res["code"] == 0, res
    chat_id: str = res["data"]["id"]
    return chat_id


def create(api: httpx.Client, chat_id: str, payload: Any = None) -> dict[str, Any]:
    url = f"/api/v1/chats/{chat_id}/sessions"
    result: dict[str, Any] = (api.post(url) if payload is None else api.post(url, json=payload)).json()
    return result


def update(api: httpx.Client, chat_id: str, session_id: str, payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.put(f"/api/v1/chats/{chat_id}/sessions/{session_id}", json=payload).json()
    return result


def delete(api: httpx.Client, chat_id: str, payload: Any = None) -> dict[str, Any]:
    url = f"/api/v1/chats/{chat_id}/sessions"
    response = api.request("DELETE", url) if payload is None else api.request("DELETE", url, json=payload)
    result: dict[str, Any] = response.json()
    return result


def listing(api: httpx.Client, chat_id: str, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.get(f"/api/v1/chats/{chat_id}/sessions", params=params).json()
    return result


def ids_of(res: dict[str, Any]) -> list[str]:
    assert res["code"] == 0, res
    return [s["id"] for s in res["data"]]


def make(api: httpx.Client, chat_id: str, count: int, **payload: Any) -> list[str]:
    return [create(api, chat_id, {"name": f"session{i:02d}", **payload})["data"]["id"] for i in range(count)]


@pytest.fixture
def chat(api: httpx.Client) -> str:
    return new_chat(api)


@pytest.fixture
def sessions(server: RunningServer) -> SessionRepository:
    return SessionRepository(server.container.metadata)


# -- create -------------------------------------------------------------------------------------------


def test_create_answers_the_documented_fields(api: httpx.Client, chat: str) -> None:
    res = create(api, chat, {"name": "new session"})
    assert res["code"] == 0, res
    data = res["data"]
    assert set(data) == {
        "chat_id",
        "create_date",
        "create_time",
        "id",
        "messages",
        "name",
        "update_date",
        "update_time",
        "user_id",
    }
    assert data["chat_id"] == chat and data["name"] == "new session" and data["user_id"] == ""
    assert data["messages"] == [{"role": "assistant", "content": DEFAULT_OPENER}]
    assert len(data["id"]) == 32 and uuid.UUID(hex=data["id"]).version == 1
    assert data["create_time"] == data["update_time"] and data["create_date"].endswith("GMT")


def test_create_defaults_and_the_chats_opener(api: httpx.Client) -> None:
    chat = new_chat(api, prompt={"opener": "Ahoy! Ask me about otters."})
    no_body: list[dict[str, Any] | None] = [None, {}]
    for payload in no_body:
        data = create(api, chat, payload)["data"]
        assert data["name"] == "New session"
        assert data["messages"] == [{"role": "assistant", "content": "Ahoy! Ask me about otters."}]
    data = create(api, chat, {"name": "  mine  ", "user_id": "user-7"})["data"]
    assert (data["name"], data["user_id"]) == ("mine", "user-7")


@pytest.mark.parametrize("name", ["", "   ", None])
def test_create_name_cannot_be_empty(api: httpx.Client, chat: str, name: Any) -> None:
    assert create(api, chat, {"name": name}) == {"code": 102, "message": "`name` can not be empty."}
    assert listing(api, chat)["data"] == []


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"name": 3}, "Field: <name>"),
        ({"name": "n" * 256}, "at most 255 characters"),
        ({"user_id": 3}, "Field: <user_id>"),
    ],
)
def test_create_argument_errors(api: httpx.Client, chat: str, payload: dict[str, Any], where: str) -> None:
    res = create(api, chat, payload)
    assert res["code"] == 101 and where in res["message"], res
    assert listing(api, chat)["data"] == []


def test_unknown_fields_are_ignored_as_ragflow_does(api: httpx.Client, chat: str) -> None:
    made = create(api, chat, {"name": "s", "messages": [{"role": "user", "content": "forged"}], "chat_id": "x"})
    assert made["code"] == 0, made
    session = listing(api, chat, id=made["data"]["id"])["data"][0]
    assert [m["role"] for m in session["messages"]] == ["assistant"] and session["chat_id"] == chat
    assert update(api, chat, session["id"], {"chat_id": "elsewhere", "name": "t"}) == {"code": 0}
    assert listing(api, chat, id=session["id"])["data"][0]["name"] == "t"


def test_create_on_a_missing_or_foreign_chat(api: httpx.Client, other_api: httpx.Client) -> None:
    theirs = new_chat(other_api)
    expected = {"code": 102, "message": "You do not own the assistant."}
    assert create(api, theirs, {"name": "x"}) == create(api, uuid.uuid1().hex, {"name": "x"}) == expected
    assert listing(other_api, theirs)["data"] == []


def test_a_session_cannot_outlive_its_chat(
    api: httpx.Client, server: RunningServer, sessions: SessionRepository
) -> None:
    chat = new_chat(api)
    record = server.container.chats.chat_of(api_tenant(server, api), chat)
    assert record is not None
    assert api.request("DELETE", "/api/v1/chats", json={"ids": [chat]}).json() == {"code": 0}
    # a create racing the deletion: the transaction checks the chat is still there
    with pytest.raises(ConditionFailed):
        sessions.create(
            {
                "id": uuid.uuid1().hex,
                "chat_id": chat,
                "tenant_id": record["tenant_id"],
                "name": "late",
                "user_id": "",
                "messages": [],
                "reference": [],
                "create_time": 1,
                "create_date": "",
                "update_time": 1,
                "update_date": "",
            }
        )
    assert sessions.all_of_chat(chat) == []


def api_tenant(server: RunningServer, api: httpx.Client) -> str:
    tenant = server.container.tenants.tenant_for_key(api.headers["Authorization"].split()[1])
    assert tenant is not None
    return tenant


# -- list ---------------------------------------------------------------------------------------------


def test_list_newest_first_pages_and_orders(api: httpx.Client, chat: str) -> None:
    ids = make(api, chat, 5)
    assert ids_of(listing(api, chat)) == ids[::-1]
    assert ids_of(listing(api, chat, page=2, page_size=2)) == [ids[2], ids[1]]
    assert ids_of(listing(api, chat, page=3, page_size=2)) == [ids[0]]
    assert ids_of(listing(api, chat, page=4, page_size=2)) == []
    assert ids_of(listing(api, chat, page_size=0)) == []
    assert ids_of(listing(api, chat, desc="false")) == ids
    assert update(api, chat, ids[1], {"name": "renamed"}) == {"code": 0}
    assert ids_of(listing(api, chat, orderby="update_time"))[0] == ids[1]
    assert ids_of(listing(api, chat, orderby="update_time", desc="False"))[-1] == ids[1]
    assert len(ids_of(listing(api, chat, a="b"))) == 5  # unknown parameters are ignored, as in RAGFlow


def test_list_filters(api: httpx.Client, chat: str) -> None:
    ids = make(api, chat, 3)
    alice = create(api, chat, {"name": "session01", "user_id": "alice"})["data"]["id"]
    assert ids_of(listing(api, chat, name="SESSION00")) == [ids[0]]  # names compare case-insensitively
    assert ids_of(listing(api, chat, name="session01")) == [alice, ids[1]]  # names need not be unique
    assert ids_of(listing(api, chat, user_id="alice")) == [alice]
    assert ids_of(listing(api, chat, name="session01", user_id="alice")) == [alice]
    assert ids_of(listing(api, chat, id=ids[2])) == [ids[2]]
    assert ids_of(listing(api, chat, id=ids[2], name="session02")) == [ids[2]]
    assert ids_of(listing(api, chat, id="", name="")) == [alice, *ids[::-1]]  # empty filters are no filters
    for params in ({"id": ids[2], "name": "session00"}, {"name": "unknown"}, {"id": "unknown"}, {"user_id": "bob"}):
        assert listing(api, chat, **params) == {"code": 0, "data": []}, params


def test_list_does_not_cross_chats_or_tenants(api: httpx.Client, other_api: httpx.Client) -> None:
    mine, also_mine = new_chat(api, "one"), new_chat(api, "two")
    session = create(api, mine, {})["data"]["id"]
    assert ids_of(listing(api, also_mine, id=session)) == []
    theirs = new_chat(other_api)
    missing = uuid.uuid1().hex
    assert listing(api, theirs) == {"code": 102, "message": f"You don't own the assistant {theirs}."}
    assert listing(api, missing) == {"code": 102, "message": f"You don't own the assistant {missing}."}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": -1}, "greater than or equal to 0"),
        ({"page_size": "x"}, "Input should be a valid integer"),
        ({"orderby": "message"}, "Input should be 'create_time', 'update_time'"),
        ({"desc": "maybe"}, "Input should be a valid boolean"),
    ],
)
def test_list_argument_errors(api: httpx.Client, chat: str, params: dict[str, Any], message: str) -> None:
    res = listing(api, chat, **params)
    assert res["code"] == 101 and message in res["message"], res


def test_listed_answers_carry_their_cited_chunks(
    api: httpx.Client, chat: str, server: RunningServer, sessions: SessionRepository
) -> None:
    session_id = create(api, chat, {})["data"]["id"]
    record = sessions.get(chat, session_id)
    assert record is not None
    cited = {
        "chunk_id": "c1",
        "content_with_weight": "Otters hold hands.",
        "doc_id": "d1",
        "docnm_kwd": "otters.txt",
        "kb_id": "k1",
        "img_id": "",
        "positions": [],
    }
    record = sessions.append_messages(
        record,
        [
            {"role": "user", "content": "Do otters hold hands?", "id": "m1"},
            {"role": "assistant", "content": "Yes ##0$$", "id": "m1", "prompt": "the full prompt"},
        ],
        {"chunks": [cited], "doc_aggs": [{"doc_name": "otters.txt", "doc_id": "d1", "count": 1}]},
    )
    sessions.append_messages(
        record,
        [{"role": "user", "content": "Thanks", "id": "m2"}, {"role": "assistant", "content": "Welcome", "id": "m2"}],
        {"chunks": [], "doc_aggs": []},
    )
    messages = listing(api, chat, id=session_id)["data"][0]["messages"]
    assert [m["role"] for m in messages] == ["assistant", "user", "assistant", "user", "assistant"]
    assert "reference" not in messages[0]  # the opener cites nothing
    assert "prompt" not in messages[2]
    assert messages[2]["reference"] == [
        {
            "id": "c1",
            "content": "Otters hold hands.",
            "document_id": "d1",
            "document_name": "otters.txt",
            "dataset_id": "k1",
            "image_id": "",
            "positions": [],
        }
    ]
    assert messages[4]["reference"] == []
    assert "reference" not in listing(api, chat, id=session_id)["data"][0]


# -- appends (the completions code's write path) -----------------------------------------------------


def test_concurrent_appends_lose_nothing(api: httpx.Client, chat: str, sessions: SessionRepository) -> None:
    session_id = create(api, chat, {})["data"]["id"]
    start = sessions.get(chat, session_id)
    assert start is not None
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for turn in range(3):
                sessions.append_messages(
                    start,  # a stale copy on purpose: every writer but the first must re-read and retry
                    [{"role": "user", "content": f"w{n}t{turn}"}, {"role": "assistant", "content": f"a{n}t{turn}"}],
                    {"chunks": [], "doc_aggs": [], "n": n, "turn": turn},
                )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = sessions.get(chat, session_id)
    assert final is not None
    assert final["version"] == 18 and len(final["messages"]) == 1 + 36 and len(final["reference"]) == 18
    questions = {m["content"] for m in final["messages"] if m["role"] == "user"}
    assert questions == {f"w{n}t{turn}" for n in range(6) for turn in range(3)}
    # each answer directly follows its question, and references keep the answers' order
    pairs = final["messages"][1:]
    assert all(q["content"][1:] == a["content"][1:] for q, a in zip(pairs[::2], pairs[1::2], strict=True))
    assert [(r["n"], r["turn"]) for r in final["reference"]] == [
        (int(a["content"][1]), int(a["content"][3])) for a in pairs[1::2]
    ]
    assert final["update_time"] >= start["update_time"]


def test_append_to_a_deleted_session(api: httpx.Client, chat: str, sessions: SessionRepository) -> None:
    session_id = create(api, chat, {})["data"]["id"]
    record = sessions.get(chat, session_id)
    assert record is not None
    assert delete(api, chat, {"ids": [session_id]}) == {"code": 0}
    with pytest.raises(SessionNotFound):
        sessions.append_messages(record, [{"role": "user", "content": "hello?"}], None)


# -- update -------------------------------------------------------------------------------------------


def test_update_name_and_user_id(api: httpx.Client, chat: str) -> None:
    before = create(api, chat, {"name": "old"})["data"]
    assert update(api, chat, before["id"], {"name": "new", "user_id": "u1"}) == {"code": 0}
    after = listing(api, chat, id=before["id"])["data"][0]
    assert (after["name"], after["user_id"]) == ("new", "u1")
    assert after["messages"] == before["messages"] and after["create_time"] == before["create_time"]
    assert after["update_time"] >= before["update_time"]
    assert update(api, chat, before["id"], {}) == {"code": 0}


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"name": ""}, 102, "`name` can not be empty."),
        ({"name": None}, 102, "`name` can not be empty."),
        ({"messages": []}, 102, "`message` can not be change"),
        ({"message": [], "name": "x"}, 102, "`message` can not be change"),
        ({"reference": []}, 102, "`reference` can not be change"),
        ({"name": 1}, 101, "Input should be a valid string"),
    ],
)
def test_update_errors_change_nothing(
    api: httpx.Client, chat: str, payload: dict[str, Any], code: int, message: str
) -> None:
    session = create(api, chat, {"name": "stable"})["data"]["id"]
    before = listing(api, chat, id=session)["data"]
    res = update(api, chat, session, payload)
    assert res["code"] == code and message in res["message"], res
    if code == 102:
        assert res["message"] == message
    assert listing(api, chat, id=session)["data"] == before


def test_update_missing_or_foreign(api: httpx.Client, other_api: httpx.Client) -> None:
    mine, also_mine = new_chat(api, "one"), new_chat(api, "two")
    other_chats_session = create(api, also_mine, {})["data"]["id"]
    expected_missing = {"code": 102, "message": "Session does not exist"}
    assert update(api, mine, uuid.uuid1().hex, {"name": "x"}) == expected_missing
    assert update(api, mine, other_chats_session, {"name": "x"}) == expected_missing  # a session of another chat
    theirs = new_chat(other_api)
    their_session = create(other_api, theirs, {})["data"]["id"]
    expected_foreign = {"code": 102, "message": "You do not own the session"}
    assert update(api, theirs, their_session, {"name": "x"}) == expected_foreign
    assert update(api, uuid.uuid1().hex, their_session, {"name": "x"}) == expected_foreign
    assert listing(other_api, theirs)["data"][0]["name"] == "New session"


# -- delete -------------------------------------------------------------------------------------------


def test_delete_by_ids(api: httpx.Client, chat: str) -> None:
    ids = make(api, chat, 3)
    assert delete(api, chat, {"ids": ids[:2]}) == {"code": 0}
    assert ids_of(listing(api, chat)) == [ids[2]]
    again = delete(api, chat, {"ids": ids[:1]})
    assert again == {"code": 102, "message": f"The chat doesn't own the session {ids[0]}"}


def test_delete_of_only_unknown_ids_deletes_nothing(api: httpx.Client, chat: str) -> None:
    make(api, chat, 2)
    other_chat = new_chat(api, "other")
    elsewhere = create(api, other_chat, {})["data"]["id"]
    res = delete(api, chat, {"ids": ["invalid_id", elsewhere]})
    assert res == {
        "code": 102,
        "message": f"The chat doesn't own the session invalid_id; The chat doesn't own the session {elsewhere}",
    }
    assert len(ids_of(listing(api, chat))) == 2 and len(ids_of(listing(api, other_chat))) == 1


def test_delete_reports_repeated_ids(api: httpx.Client, chat: str) -> None:
    ids = make(api, chat, 3)
    res = delete(api, chat, {"ids": [*ids[:2], *ids[:2]]})
    assert res == {
        "code": 0,
        "message": "Partially deleted 2 sessions with 2 errors",
        "data": {
            "success_count": 2,
            "errors": [f"Duplicate session ids: {ids[0]}", f"Duplicate session ids: {ids[1]}"],
        },
    }
    assert ids_of(listing(api, chat)) == [ids[2]]


@pytest.mark.parametrize("payload", [None, {}, {"ids": None}, {"ids": []}])
def test_delete_without_ids_deletes_every_session_of_the_chat(api: httpx.Client, payload: Any) -> None:
    chat, other_chat = new_chat(api, "one"), new_chat(api, "two")
    make(api, chat, 3)
    kept = create(api, other_chat, {})["data"]["id"]
    assert delete(api, chat, payload) == {"code": 0}
    assert ids_of(listing(api, chat)) == []
    assert ids_of(listing(api, other_chat)) == [kept]


def test_delete_on_a_missing_or_foreign_chat(api: httpx.Client, other_api: httpx.Client) -> None:
    theirs = new_chat(other_api)
    their_session = create(other_api, theirs, {})["data"]["id"]
    expected = {"code": 102, "message": "You don't own the chat"}
    assert delete(api, theirs, {"ids": [their_session]}) == expected
    assert delete(api, theirs) == expected
    assert delete(api, uuid.uuid1().hex) == expected
    assert ids_of(listing(other_api, theirs)) == [their_session]


def test_delete_argument_errors(api: httpx.Client, chat: str) -> None:
    session = create(api, chat, {})["data"]["id"]
    assert "Input should be a valid list" in delete(api, chat, {"ids": session})["message"]
    assert "Field: <ids.0>" in delete(api, chat, {"ids": [None]})["message"]
    assert ids_of(listing(api, chat)) == [session]


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


def _session_record(chat_id: str, ms: int, name: str = "s") -> dict[str, Any]:
    return {
        "id": uuid.uuid1().hex,
        "chat_id": chat_id,
        "tenant_id": "t1",
        "name": name,
        "user_id": "",
        "messages": [{"role": "assistant", "content": "Hi"}],
        "reference": [],
        "create_time": ms,
        "create_date": "",
        "update_time": ms,
        "update_date": "",
    }


def test_session_repository_on_both_drivers(store: MetadataStore) -> None:
    chats, sessions = ChatRepository(store), SessionRepository(store)
    chat: dict[str, Any] = {"id": uuid.uuid1().hex, "tenant_id": "t1", "name": "c", "create_time": 1, "update_time": 1}
    with pytest.raises(ConditionFailed):  # no chat, no session
        sessions.create(_session_record(chat["id"], 1))
    chats.create(chat)
    first, second = _session_record(chat["id"], 1000), _session_record(chat["id"], 2000)
    sessions.create(first)
    sessions.create(second)
    assert [s["id"] for s in sessions.page(chat["id"], orderby="create_time", desc=True, offset=0, limit=5)] == [
        second["id"],
        first["id"],
    ]
    stale = sessions.get(chat["id"], first["id"])
    assert stale is not None and stale["version"] == 0
    grown = sessions.append_messages(stale, [{"role": "user", "content": "q1"}], None)
    # a stale copy still appends after the latest messages
    grown = sessions.append_messages(stale, [{"role": "user", "content": "q2"}], {"chunks": [], "doc_aggs": []})
    assert [m["content"] for m in grown["messages"]] == ["Hi", "q1", "q2"]
    assert grown["version"] == 2 and grown["reference"] == [{"chunks": [], "doc_aggs": []}]
    assert [s["id"] for s in sessions.page(chat["id"], orderby="update_time", desc=True, offset=0, limit=1)] == [
        first["id"]
    ]
    renamed = sessions.update(grown, {"name": "renamed", "update_time": grown["update_time"] + 1})
    assert renamed["name"] == "renamed" and renamed["messages"] == grown["messages"]
    assert sessions.delete_all_of_chat(chat["id"]) == 2
    assert sessions.all_of_chat(chat["id"]) == []
    with pytest.raises(SessionNotFound):
        sessions.append_messages(grown, [{"role": "user", "content": "late"}], None)


def test_concurrent_appends_on_both_drivers(store: MetadataStore) -> None:
    chats, sessions = ChatRepository(store), SessionRepository(store)
    chat: dict[str, Any] = {"id": uuid.uuid1().hex, "tenant_id": "t1", "name": "c", "create_time": 1, "update_time": 1}
    chats.create(chat)
    record = _session_record(chat["id"], 1)
    sessions.create(record)
    start = sessions.get(chat["id"], record["id"])
    assert start is not None
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for turn in range(3):
                sessions.append_messages(start, [{"role": "user", "content": f"{n}-{turn}"}], None)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = sessions.get(chat["id"], record["id"])
    assert final is not None and final["version"] == 12
    assert sorted(m["content"] for m in final["messages"][1:]) == sorted(f"{n}-{t}" for n in range(4) for t in range(3))
