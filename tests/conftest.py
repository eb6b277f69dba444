"""Shared fixtures: a local server over real HTTP, and a fresh tenant per test for isolation.

``server`` is the local server on the embedded backend (SQLite, files, the embedded search index, the
in-process worker). The modules in ``BACKENDS_OF`` run every test on each of their backends in turn:

* ``aws``: the same app on the AWS adapters (``tests/support/aws_backend.py``): DynamoDB, S3 and SSM on moto,
  OpenSearch Serverless as the strict stand-in (writes searchable ``API_VISIBILITY_DELAY_S`` late: a test that
  searches right after a write must wait for it), parses run by the synthesized state machine, the completions
  group through its Lambda Web Adapter entry point;
* ``aws_shards``: the same with the stage setting ``search_engine=embedded`` (the embedded engine's shards
  snapshotted in S3, their heads and leases in DynamoDB), for the modules about search.

A test that cannot pass on a backend is listed in ``CANNOT_PASS`` with the reason; it is then expected to fail
there (and reported if it starts passing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from osmem_server import OsmemServer

from tests.support.aoss import run_strict_aoss
from tests.support.opensearch import osmem_index, run_osmem_server
from tests.support.server import RunningServer, run_local_server

_API = ("embedded", "aws")
_SEARCH = ("embedded", "aws", "aws_shards")
#: The black-box API modules and the backends each runs on. Every API module runs on AWS; the search modules
#: also on the shards engine (the rest of the API does not touch the index, or only as they do, and the suite
#: must stay within its time). Not here: modules about the local process itself — its CLI, worker restarts,
#: the uvicorn entry point — and ones that build servers of their own.
BACKENDS_OF: dict[str, tuple[str, ...]] = {
    f"tests.integration.test_{name}": backends
    for names, backends in (
        (("chunks_api", "retrieval_api", "knowledge_retrieval", "conformance_top_k"), _SEARCH),
        (
            (
                "datasets_api",
                "documents_api",
                "ingestion",
                "chats_api",
                "sessions_api",
                "completions_api",
                "ragflow_sdk",
                "rerank_retrieval",
                "robustness",
                "agents_api",
                "agent_completions_api",
                "files_api",
                "files_conversion",
                "chat_robustness",
                "robustness_documents",
                "knowledge_api",
                "conformance_chunk_listing",
                "conformance_defaults",
                "conformance_leniency",
                "conformance_messages",
                "conformance_newer_clients",
                "conformance_partial",
                "scoped_keys",
            ),
            _API,
        ),
    )
    for name in names
}
#: Tests that cannot pass on a backend, by node id (without parameters) and backend, with the reason.
CANNOT_PASS: dict[tuple[str, str], str] = {}
#: How long the API suite's OpenSearch takes to make a write searchable (AOSS: seconds; short here for speed).
API_VISIBILITY_DELAY_S = 0.3


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backends = BACKENDS_OF.get(metafunc.module.__name__)
    if backends and "server" in metafunc.fixturenames:
        metafunc.parametrize("server", backends, indirect=True, scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("server") if callspec is not None else None
        reason = CANNOT_PASS.get((item.nodeid.split("[", 1)[0], str(backend)))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=f"{backend}: {reason}", strict=True))


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_local_server(Path(tmp_path_factory.mktemp("flowless-data"))) as running:
        yield running


@pytest.fixture(scope="session")
def osmem() -> Iterator[OsmemServer]:
    with run_osmem_server() as running:
        yield running


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's server (DynamoDB, S3, Step Functions ...) in a process of its own."""
    from tests.support.moto_process import run_moto_server

    with run_moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def synthesized_dev(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The CDK app synthesized for the ``dev`` stage (once per session; bundling skipped)."""
    from tests.infrastructure.conftest import synthesize

    return synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def aws_server(
    tmp_path_factory: pytest.TempPathFactory, osmem: OsmemServer, moto_url: str, synthesized_dev: Any
) -> Iterator[RunningServer]:
    """The local server's app on the AWS adapters (``tests/support/aws_backend.py``). At the end, the
    OpenSearch Serverless stand-in must not have refused anything it was asked."""
    from tests.support.aws_backend import run_aws_server

    clone = osmem.clone()
    try:
        with run_strict_aoss(clone.url, visibility_delay_s=API_VISIBILITY_DELAY_S) as aoss:
            with run_aws_server(
                Path(tmp_path_factory.mktemp("flowless-aws")),
                moto_url=moto_url,
                search_index=osmem_index(aoss.url),
                opensearch_url=aoss.url,
                template=synthesized_dev.template_json,
            ) as backend:
                yield backend.server
            assert aoss.refusals == [], f"OpenSearch Serverless would have refused: {aoss.refusals}"
    finally:
        clone.close()


@pytest.fixture(scope="session")
def aws_shards_server(
    tmp_path_factory: pytest.TempPathFactory, moto_url: str, synthesized_dev: Any
) -> Iterator[RunningServer]:
    """The local server's app on the AWS adapters with ``search_engine=embedded``: shards in S3."""
    from tests.support.aws_backend import run_aws_server

    data_dir = Path(tmp_path_factory.mktemp("flowless-aws-shards"))
    with run_aws_server(data_dir, moto_url=moto_url, template=synthesized_dev.template_json) as backend:
        yield backend.server


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest) -> RunningServer:
    """The local server on the embedded backend, or on each of a ``BACKENDS_OF`` module's backends."""
    backend = getattr(request, "param", "embedded")
    running: RunningServer = request.getfixturevalue(f"{backend}_server")
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
