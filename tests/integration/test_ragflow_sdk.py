"""The official `ragflow-sdk` client, unchanged, against the local server: datasets, documents, parsing,
chunks, retrieval, chat assistants and a multi-turn session, streamed and not; agents and their sessions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ragflow_sdk import RAGFlow

from shared.services.tenants import ModelSetting
from tests.support.fake_openai import FakeOpenAI
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-sdk") as fake:
        yield fake


@pytest.fixture
def rag(server: RunningServer, llm: FakeOpenAI) -> RAGFlow:
    _, key = server.container.tenant_service.create(
        "sdk", [ModelSetting("sdk-chat@OpenAI-API-Compatible", "chat", api_base=llm.base_url, api_key="sk-sdk")]
    )
    return RAGFlow(api_key=key, base_url=server.base_url)


def test_a_ragflow_sdk_session_of_several_turns(rag: RAGFlow, llm: FakeOpenAI) -> None:
    dataset = rag.create_dataset(name="kitchen", chunk_method="naive")
    assert dataset.chunk_method == "naive" and dataset.embedding_model == "all-MiniLM-L6-v2@Builtin"
    dataset.upload_documents(
        [
            {"display_name": "bread.txt", "blob": b"Bread rises because yeast ferments sugar into carbon dioxide."},
            {"display_name": "tea.txt", "blob": b"Green tea is steamed or pan-fired to stop oxidation."},
        ]
    )
    documents = dataset.list_documents()
    assert sorted(d.name for d in documents) == ["bread.txt", "tea.txt"]
    dataset.async_parse_documents([d.id for d in documents])
    deadline = time.monotonic() + 60
    while any(d.run != "DONE" for d in dataset.list_documents()):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    bread = next(d for d in dataset.list_documents() if d.name == "bread.txt")
    chunks = bread.list_chunks()
    assert chunks and "yeast" in chunks[0].content
    added = bread.add_chunk(content="Sourdough uses wild yeast.")
    assert any(c.id == added.id for c in bread.list_chunks())

    found = rag.retrieve(question="why does bread rise", dataset_ids=[dataset.id])
    assert found and found[0].document_id == bread.id

    assistant = rag.create_chat("baker", dataset_ids=[dataset.id])
    session = assistant.create_session("first")
    llm.script_chat(["Yeast ", "ferments ", "sugar."])
    streamed = list(session.ask("Why does bread rise?", stream=True))
    assert streamed[-1].content.startswith("Yeast ferments sugar.")
    assert [m.content for m in streamed[:3]] == ["Yeast ", "Yeast ferments ", "Yeast ferments sugar."]

    llm.script_chat(["Wild yeast in sourdough does it too."])
    whole = list(session.ask("Does sourdough bread rise with yeast?", stream=False))
    assert whole[0].content.startswith("Wild yeast in sourdough does it too.")
    assert [m["role"] for m in llm.last_chat_messages()] == ["system", "user", "assistant", "user"]

    listed = assistant.list_sessions(id=session.id)[0]
    assert [m["role"] for m in listed.messages] == ["assistant", "user", "assistant", "user", "assistant"]
    session.update({"name": "renamed"})
    assert assistant.list_sessions(id=session.id)[0].name == "renamed"

    assistant.delete_sessions(ids=[session.id])
    assert assistant.list_sessions() == []
    rag.delete_chats(ids=[assistant.id])
    rag.delete_datasets(ids=[dataset.id])
    assert rag.list_datasets() == []


def test_ragflow_sdk_agents(rag: RAGFlow, llm: FakeOpenAI) -> None:
    spec = json.loads((Path(__file__).resolve().parents[2] / "docs" / "agents" / "customer_service.json").read_text())
    rag.create_agent(spec["title"], spec["dsl"], description=spec["description"])
    (agent,) = rag.list_agents(title=spec["title"])
    assert agent.description == spec["description"] and agent.dsl.components  # type: ignore[attr-defined]

    session = agent.create_session()
    # RAGFlow answers a new agent session with ``message`` (listings say ``messages``)
    assert session.message[0]["content"] == "Hello! How can we help you today?"  # type: ignore[attr-defined]
    llm.script_chat(["refund"])
    llm.script_chat(["Send ", "the ", "order ", "number."])
    (answer,) = session.ask("I want a refund", stream=False)
    assert answer.content == "Send the order number."
    llm.script_chat(["shipping"])
    llm.script_chat(["Three days."])
    (answer,) = session.ask("And the delivery?", stream=False)
    assert answer.content == "Three days."
    (listed,) = agent.list_sessions(id=session.id)
    assert [m["role"] for m in listed.messages] == ["assistant", "user", "assistant", "user", "assistant"]

    rag.update_agent(agent.id, title="triage")
    assert rag.list_agents(id=agent.id)[0].title == "triage"  # type: ignore[attr-defined]
    agent.delete_sessions([session.id])
    assert agent.list_sessions() == []
    rag.delete_agent(agent.id)
    with pytest.raises(Exception, match=r"The agent doesn't exist\."):
        rag.list_agents(id=agent.id)
