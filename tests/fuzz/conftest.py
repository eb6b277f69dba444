"""Property-based fuzzing (hypothesis): no network, bounded example counts (see tests/support/fuzz.py)."""

from __future__ import annotations

import pytest

from tests.support.offline import mark_folder, no_network

__all__ = ["no_network"]

pytest_collection_modifyitems = mark_folder("fuzz", pytest.mark.fuzz)
