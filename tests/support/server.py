"""Runs the local server (uvicorn, real HTTP on loopback) in a background thread for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from functions.local.server import build_local_app, local_container
from shared.catalog import MINILM_EMBEDDING_MODEL
from shared.config import Settings
from shared.container import Container
from shared.ports.search import SearchIndex

TEST_EMBEDDING_MODEL = MINILM_EMBEDDING_MODEL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    data_dir: Path
    container: Container

    def client(self, api_key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def new_tenant_key(self, name: str = "test", *, embd_id: str = TEST_EMBEDDING_MODEL) -> str:
        """A new tenant's key. Its default embedding model is MiniLM, not the product's default (bge-small, twice
        the layers and unbatched): the API suites parse many documents and only need *an* embedder; the product
        default is tested by the tests that create tenants the standard way (``embd_id=BUILTIN_EMBEDDING_MODEL``)."""
        return self.container.tenant_service.create(name, embd_id=embd_id)[1]


@contextmanager
def run_local_server(
    data_dir: Path,
    *,
    search_index: SearchIndex | None = None,
    replace: dict[str, object] | None = None,
    settings: dict[str, Any] | None = None,
) -> Iterator[RunningServer]:
    """Serve ``data_dir``'s local container; ``search_index`` replaces its embedded index when given,
    ``replace`` any of its services by name (tests that need a service to misbehave), and ``settings`` are
    the container's settings beyond the local defaults (e.g. a smaller upload limit)."""
    container = local_container(data_dir)
    if settings:
        container = Container(Settings(backend="local", data_dir=data_dir, **settings))
    if search_index is not None:
        container.overrides["search_index"] = search_index
    for name, service in (replace or {}).items():
        container.__dict__[name] = service  # the container's services are cached properties
    with serve_asgi(build_local_app(container)) as base_url:
        yield RunningServer(base_url, data_dir, container)


@contextmanager
def serve_asgi(app: ASGIApp, **options: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a background thread; yields its base URL.
    ``options`` go to ``uvicorn.Config`` (e.g. the keep-alive the Lambda Web Adapter's uvicorn runs with)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("local server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def stored_blob_keys(container: Container, prefix: str) -> list[str]:
    """The keys the container's blob store holds under ``prefix`` (the blob port has no listing: tests look
    behind it, at the folder or the bucket)."""
    from shared.adapters.aws.s3_blobs import S3BlobStore
    from shared.adapters.local.fs_blobs import FilesystemBlobStore

    blobs = container.blobs
    if isinstance(blobs, FilesystemBlobStore):
        return sorted(
            str(path.relative_to(blobs.root).as_posix())
            for path in blobs.root.joinpath(*prefix.split("/")).rglob("*")
            if path.is_file()
        )
    assert isinstance(blobs, S3BlobStore), type(blobs)
    import boto3

    settings = container.settings
    client = boto3.client("s3", region_name=settings.aws_region, endpoint_url=settings.s3_endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=blobs.bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
