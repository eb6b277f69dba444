"""For conftest files of suites that run without network: sockets disabled (Unix sockets stay allowed for asyncio)
and every test of the folder marked."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


def mark_folder(folder: str, marker: pytest.MarkDecorator) -> Callable[[list[pytest.Item]], None]:
    """A ``pytest_collection_modifyitems`` hook adding ``marker`` to the tests under ``tests/<folder>/``."""

    def modify(items: list[pytest.Item]) -> None:
        for item in items:
            if f"tests/{folder}/" in str(item.fspath):
                item.add_marker(marker)

    return modify
