"""Unit tests run without network: sockets are disabled (Unix sockets stay allowed for asyncio)."""

from __future__ import annotations

import pytest

from tests.support.offline import mark_folder, no_network

__all__ = ["no_network"]

pytest_collection_modifyitems = mark_folder("unit", pytest.mark.unit)
