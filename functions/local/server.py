"""The local server: every registered route group in one FastAPI app on the embedded backends."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from functions.api.app import create_app
from shared.config import Settings
from shared.container import Container
from shared.routes import ROUTE_GROUPS


def local_container(data_dir: Path) -> Container:
    """Adapters on SQLite, the filesystem and in-process workers, all under ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return Container(Settings(backend="local", data_dir=data_dir))


def build_local_app(container: Container) -> FastAPI:
    return create_app(ROUTE_GROUPS, container)


def resume_background_work(container: Container) -> int:
    """Parses a previous process left RUNNING (killed mid-parse) start again; returns how many."""
    return container.ingestion.resume_interrupted()
