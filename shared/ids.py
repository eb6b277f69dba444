"""Identifiers and timestamps in RAGFlow's shapes."""

from __future__ import annotations

import time
import uuid
from email.utils import formatdate


def new_id() -> str:
    """A RAGFlow-style id: a UUID1 as 32 lowercase hex characters."""
    return uuid.uuid1().hex


def now_ms() -> int:
    """Milliseconds since the epoch (RAGFlow's ``create_time``)."""
    return time.time_ns() // 1_000_000


def http_date(ms: int) -> str:
    """RAGFlow's ``create_date`` form: ``Mon, 28 Apr 2025 18:40:41 GMT``."""
    return formatdate(ms / 1000, usegmt=True)


def record_times(now: int) -> dict[str, int | str]:
    """The create and update times (ms) and dates of a record created at ``now``, as RAGFlow stores them."""
    date = http_date(now)
    return {"create_time": now, "create_date": date, "update_time": now, "update_date": date}


def is_uuid1_hex(value: str) -> bool:
    """True when ``value`` is 32 hex characters encoding a version-1 UUID."""
    if len(value) != 32:
        return False
    try:
        return uuid.UUID(hex=value).version == 1
    except ValueError:
        return False
