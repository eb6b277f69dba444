"""The local server: every registered route group in one FastAPI app on the embedded backends."""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

from fastapi import FastAPI

from functions.api.app import create_app
from shared.config import Settings
from shared.container import Container
from shared.routes import ROUTE_GROUPS

#: Variables the local server does not take from the environment: it is the local backend, on ``data_dir``.
_FIXED_LOCALLY = frozenset({"FLOWLESS_BACKEND", "FLOWLESS_DATA_DIR"})


def local_container(data_dir: Path) -> Container:
    """Adapters on SQLite, the filesystem and in-process workers, all under ``data_dir``; the other settings
    from the process's ``FLOWLESS_*`` variables, as on Lambda: ``FLOWLESS_MAX_UPLOAD_BYTES``,
    ``FLOWLESS_LOCAL_BUCKETS``, ``FLOWLESS_WEBHOOK_ALLOW_PRIVATE``... A variable with an invalid value raises
    ``ValueError`` naming it."""
    environ = {name: value for name, value in os.environ.items() if name not in _FIXED_LOCALLY}
    settings = Settings.from_env(environ)
    data_dir.mkdir(parents=True, exist_ok=True)
    return Container(dataclasses.replace(settings, backend="local", data_dir=data_dir))


def build_local_app(container: Container) -> FastAPI:
    from functions.local.parts import build_router as part_uploads

    app = create_app(ROUTE_GROUPS, container, docs=True)
    # Where the local stand-in of S3 receives the parts of presigned uploads (outside the API's registry).
    app.include_router(part_uploads())
    return app


def rebuild_index_if_needed(container: Container) -> int | None:
    """The embedded index is derived data: when its folder is new or a rebuild was interrupted, load it
    again from the metadata store. Returns how many chunks were loaded, None when nothing was needed."""
    from shared.adapters.local.embedded_index import EmbeddedSearchIndex
    from shared.services.ingestion import all_indexed_chunks
    from shared.services.knowledge import graph_index_records

    index = container.search_index
    if not isinstance(index, EmbeddedSearchIndex) or not index.needs_rebuild():
        return None
    chunks = all_indexed_chunks(container.document_repo)
    return index.rebuild(itertools.chain(chunks, graph_index_records(container.graph_store.records)))


def resume_background_work(container: Container) -> int:
    """Parses and knowledge builds a previous process left running (killed mid-way) start again; returns
    how many."""
    return container.ingestion.resume_interrupted() + container.knowledge_builds.resume_interrupted()


def resume_webhook_deliveries(container: Container) -> int:
    """Webhook deliveries a previous process left pending are queued again; returns how many."""
    return container.webhooks.resume_pending()
