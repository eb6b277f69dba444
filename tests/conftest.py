"""Shared fixtures: a local server over real HTTP, and a fresh tenant per test for isolation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import RunningServer, run_local_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_local_server(Path(tmp_path_factory.mktemp("flowless-data"))) as running:
        yield running


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    """A client authenticated as a tenant of its own (no state shared between tests)."""
    with server.client(server.new_tenant_key()) as client:
        yield client


@pytest.fixture
def other_api(server: RunningServer) -> Iterator[httpx.Client]:
    """A client of a second, unrelated tenant."""
    with server.client(server.new_tenant_key("other")) as client:
        yield client


@pytest.fixture
def anon(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(None) as client:
        yield client
