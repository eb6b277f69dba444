"""The official `ragflow-sdk` client, unchanged, against the local server: datasets, documents, parsing,
chunks, retrieval, chat assistants and a multi-turn session, streamed and not; agents and their sessions."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from ragflow_sdk import RAGFlow

from shared.services.tenants import FactorySetting, ModelSetting
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
    assert dataset.chunk_method == "naive" and dataset.embedding_model == "BAAI/bge-small-en-v1.5@Builtin"
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


# -- the same flow on both SDK versions, with RAGFlow's model names ------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
FLOW_SCRIPT = REPO_ROOT / "tests" / "support" / "ragflow_sdk_flow.py"
#: ``make setup`` builds it when a Python 3.12 exists (ragflow-sdk 0.23.1 requires Python >= 3.12).
SDK_023_PYTHON = Path(os.environ.get("FLOWLESS_SDK_PYTHON", REPO_ROOT / ".venv-sdk" / "bin" / "python"))


@pytest.fixture
def openai_tenant(server: RunningServer, llm: FakeOpenAI) -> str:
    """A tenant whose default chat model is RAGFlow's ``gpt-4o-mini@OpenAI``, authorized by an OpenAI key for
    the whole factory (its endpoint: the fake), with the builtin embedder as its default."""
    tenant, key = server.container.tenant_service.create("openai", [ModelSetting("gpt-4o-mini@OpenAI", "chat")])
    server.container.tenant_service.set_factory(
        tenant.id, FactorySetting("OpenAI", api_base=llm.base_url, api_key="sk-sdk")
    )
    llm.reset()
    llm.script_chat(["Yeast ", "ferments ", "sugar."])
    llm.script_chat(["Wild yeast does it too."])
    return key


SHIPPED_BUILTINS = "all-MiniLM-L6-v2@Builtin, BAAI/bge-small-en-v1.5@Builtin"


def check_flow(facts: dict[str, Any], llm: FakeOpenAI) -> None:
    assert facts["builtin_unshipped_error"] == (
        "Builtin model <BAAI/bge-m3@Builtin> is not shipped with this server; "
        f"the builtin models are: {SHIPPED_BUILTINS}"
    )
    assert facts["embedding_model"] == "BAAI/bge-small-en-v1.5@Builtin"  # RAGFlow's default, the tenant's
    assert facts["documents"] == ["bread.txt", "tea.txt"]
    assert facts["bread_chunks"] and "yeast" in facts["bread_chunks"][0]
    assert facts["chunk_added"] is True and facts["retrieved_first_document"] is True
    assert facts["chat_model"] == "gpt-4o-mini@OpenAI"
    assert facts["streamed"][:3] == ["Yeast ", "Yeast ferments ", "Yeast ferments sugar."]
    assert facts["whole"][0].startswith("Wild yeast does it too.")
    assert facts["session_roles"] == ["assistant", "user", "assistant", "user", "assistant"]
    assert {request.body["model"] for request in llm.chat_requests} == {"gpt-4o-mini"}
    # the v0.27 default delete calls deleted nothing
    assert facts["v027_delete_sessions"] == {"code": 0} and facts["v027_delete_chats"] == {"code": 0}
    assert facts["sessions_after_v027"] == facts["sessions_expected"]
    assert facts["chats_after_v027"] == [facts["chat_id"]]
    # a partial delete succeeds for the SDK, and deleted the session it found
    assert facts["partial_delete_error"] is None
    assert len(facts["sessions_after_partial"]) == 1
    assert (facts["chats_left"], facts["datasets_left"]) == (0, 0)


def test_the_flow_on_ragflow_sdk_0_22(server: RunningServer, llm: FakeOpenAI, openai_tenant: str) -> None:
    from tests.support.ragflow_sdk_flow import run_flow

    assert version("ragflow-sdk") == "0.22.1"
    check_flow(run_flow(server.base_url, openai_tenant), llm)


@pytest.mark.skipif(
    not SDK_023_PYTHON.exists(),
    reason=f"no {SDK_023_PYTHON}: ragflow-sdk 0.23.1 needs Python >= 3.12 (make setup builds .venv-sdk with one)",
)
def test_the_flow_on_ragflow_sdk_0_23(server: RunningServer, llm: FakeOpenAI, openai_tenant: str) -> None:
    sdk = subprocess.run(
        [str(SDK_023_PYTHON), "-c", "import importlib.metadata as m; print(m.version('ragflow-sdk'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sdk.stdout.strip() == "0.23.1"
    run = subprocess.run(
        [str(SDK_023_PYTHON), str(FLOW_SCRIPT), server.base_url, openai_tenant],
        capture_output=True,
        text=True,
        timeout=180,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    )
    assert run.returncode == 0, run.stderr
    check_flow(json.loads(run.stdout.splitlines()[-1]), llm)
