"""Shared fixtures: a local server over real HTTP, and a fresh tenant per test for isolation.

``server`` runs on the embedded search engine. Modules that must pass on both engines override ``server``
with ``engine_server``: the same local server with its search index on OpenSearch instead — osmem-server
behind ``StrictAoss``, which refuses what OpenSearch Serverless refuses and makes writes searchable only
``API_VISIBILITY_DELAY_S`` after they were made (so a test that searches right after a write must wait for it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from osmem_server import OsmemServer

from tests.support.aoss import run_strict_aoss
from tests.support.opensearch import osmem_index, run_osmem_server
from tests.support.server import RunningServer, run_local_server

#: The search engines a local server can run on (``engine_server``'s parameters).
ENGINES = ("embedded", "opensearch")
#: How long the API suite's OpenSearch takes to make a write searchable (AOSS: seconds; short here for speed).
API_VISIBILITY_DELAY_S = 0.3


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
    """A local server whose search index is ``OpenSearchIndex`` on a collection of its own: an osmem clone
    behind the strict AOSS stand-in. At the end, the stand-in must not have refused anything it was asked."""
    clone = osmem.clone()
    try:
        data_dir = Path(tmp_path_factory.mktemp("flowless-data-opensearch"))
        with run_strict_aoss(clone.url, visibility_delay_s=API_VISIBILITY_DELAY_S) as aoss:
            with run_local_server(data_dir, search_index=osmem_index(aoss.url)) as running:
                yield running
            assert aoss.refusals == [], f"OpenSearch Serverless would have refused: {aoss.refusals}"
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
