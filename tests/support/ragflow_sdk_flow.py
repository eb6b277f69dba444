"""A RAGFlow user's whole flow through the official ``ragflow-sdk``, unchanged: datasets → documents → parse →
chunks → retrieval → chat → session, then the deletes a newer (v0.27) client sends.

Imports nothing of flowless, so it runs in-process (ragflow-sdk 0.22.1, the project's venv) and as a script in
another interpreter (ragflow-sdk 0.23.1 needs Python ≥ 3.12: ``.venv-sdk``), printing its findings as JSON:

    python tests/support/ragflow_sdk_flow.py BASE_URL API_KEY

The chat model is the tenant's default (the SDK's ``create_chat`` sends ``model_name: null``); the caller
scripts its answers: "Yeast ferments sugar." streamed in three pieces, then "Wild yeast does it too.".
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ragflow_sdk import RAGFlow

#: One of RAGFlow's builtin embedding models that flowless does not ship (refused with a clear message); RAGFlow's
#: builtin default, BAAI/bge-small-en-v1.5@Builtin, ships and is the tenant's default here.
RAGFLOW_UNSHIPPED_BUILTIN = "BAAI/bge-m3@Builtin"


def _error_of(call: Any) -> str | None:
    try:
        call()
    except Exception as exc:  # the SDK raises a bare Exception carrying the server's message
        return str(exc)
    return None


def run_flow(base_url: str, api_key: str) -> dict[str, Any]:
    rag = RAGFlow(api_key=api_key, base_url=base_url)
    facts: dict[str, Any] = {}
    facts["builtin_unshipped_error"] = _error_of(
        lambda: rag.create_dataset(name="bge-m3", embedding_model=RAGFLOW_UNSHIPPED_BUILTIN)
    )

    dataset = rag.create_dataset(name="kitchen")
    facts["embedding_model"] = dataset.embedding_model
    dataset.upload_documents(
        [
            {"display_name": "bread.txt", "blob": b"Bread rises because yeast ferments sugar into carbon dioxide."},
            {"display_name": "tea.txt", "blob": b"Green tea is steamed or pan-fired to stop oxidation."},
        ]
    )
    documents = dataset.list_documents()
    facts["documents"] = sorted(d.name for d in documents)
    dataset.async_parse_documents([d.id for d in documents])
    deadline = time.monotonic() + 90
    while any(d.run != "DONE" for d in dataset.list_documents()):
        if time.monotonic() > deadline:
            raise RuntimeError("parsing did not finish")
        time.sleep(0.1)

    bread = next(d for d in dataset.list_documents() if d.name == "bread.txt")
    facts["bread_chunks"] = [c.content for c in bread.list_chunks()]
    added = bread.add_chunk(content="Sourdough uses wild yeast.")
    facts["chunk_added"] = any(c.id == added.id for c in bread.list_chunks())

    found = rag.retrieve(question="why does bread rise", dataset_ids=[dataset.id])
    facts["retrieved_first_document"] = found[0].document_id == bread.id if found else None

    assistant = rag.create_chat("baker", dataset_ids=[dataset.id])
    facts["chat_model"] = assistant.llm.model_name
    session = assistant.create_session("first")
    streamed = [m.content for m in session.ask("Why does bread rise?", stream=True)]
    facts["streamed"] = streamed
    facts["whole"] = [m.content for m in session.ask("Does sourdough rise with yeast?", stream=False)]
    listed = assistant.list_sessions(id=session.id)[0]
    facts["session_roles"] = [m["role"] for m in listed.messages]

    # A v0.27 SDK's default delete calls: under v0.23.1's rule they would delete everything.
    extra = assistant.create_session("second")
    facts["v027_delete_sessions"] = rag.delete(
        f"/chats/{assistant.id}/sessions", {"ids": None, "delete_all": False}
    ).json()
    facts["v027_delete_chats"] = rag.delete("/chats", {"ids": None, "delete_all": False}).json()
    facts["sessions_after_v027"] = sorted(s.id for s in assistant.list_sessions())
    facts["sessions_expected"] = sorted([session.id, extra.id])
    facts["chats_after_v027"] = [c.id for c in rag.list_chats()]
    facts["chat_id"] = assistant.id

    # Partial success: the found session is deleted, the unknown one reported (code 0, so the SDK returns).
    facts["partial_delete_error"] = _error_of(lambda: assistant.delete_sessions(ids=[extra.id, "nope"]))
    facts["sessions_after_partial"] = [s.id for s in assistant.list_sessions()]

    rag.delete_chats(ids=[assistant.id])
    rag.delete_datasets(ids=[dataset.id])
    facts["chats_left"] = len(rag.list_chats())
    facts["datasets_left"] = len(rag.list_datasets())
    return facts


if __name__ == "__main__":
    print(json.dumps(run_flow(sys.argv[1], sys.argv[2])))
