"""Shared fixtures: a local server over real HTTP, and a fresh tenant per test for isolation.

``server`` runs on the embedded search engine. Modules that must pass on both engines override ``server``
with ``engine_server``: the same local server with its search index on OpenSearch (osmem-server) instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from osmem_server import OsmemServer

from tests.support.opensearch import osmem_index, run_osmem_server
from tests.support.server import RunningServer, run_local_server

#: The search engines a local server can run on (``engine_server``'s parameters).
ENGINES = ("embedded", "opensearch")


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_local_server(Path(tmp_path_factory.mktemp("flowless-data"))) as running:
        yield running


@pytest.fixture(scope="session")
def osmem() -> Iterator[OsmemServer]:
    with run_osmem_server() as running:
        yield running


@pytest.fixture(scope="session")
def opensearch_server(tmp_path_factory: pytest.TempPathFactory, osmem: OsmemServer) -> Iterator[RunningServer]:
    """A local server whose search index is ``OpenSearchIndex`` on a cluster of its own (an osmem clone).
    osmem-server makes writes searchable at once, so no refresh is needed between a write and a search."""
    clone = osmem.clone()
    try:
        data_dir = Path(tmp_path_factory.mktemp("flowless-data-opensearch"))
        with run_local_server(data_dir, search_index=osmem_index(clone.url)) as running:
            yield running
    finally:
        clone.close()


@pytest.fixture(scope="session")
def server(embedded_server: RunningServer) -> RunningServer:
    return embedded_server


@pytest.fixture(params=ENGINES)
def engine_server(request: pytest.FixtureRequest) -> RunningServer:
    """The local server on each search engine in turn (a module opts in by overriding ``server`` with it)."""
    running: RunningServer = request.getfixturevalue(f"{request.param}_server")
    return running


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
