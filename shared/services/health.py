"""Backend health in the shape of RAGFlow's /v1/system/healthz."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

Probe = Callable[[], None]


def check_health(probes: Mapping[str, Probe]) -> tuple[bool, dict[str, Any]]:
    """Run every probe; ``(all_ok, body)`` where body has ``<name>: ok|nok``, ``status`` and ``_meta``."""
    body: dict[str, Any] = {}
    meta: dict[str, dict[str, str]] = {}
    for name, probe in probes.items():
        started = time.perf_counter()
        error: str | None = None
        try:
            probe()
        except Exception as exc:  # a probe reports any failure; nothing propagates to the client
            error = f"{type(exc).__name__}: {exc}"[:300]
        elapsed = f"{(time.perf_counter() - started) * 1000:.1f}"
        body[name] = "ok" if error is None else "nok"
        meta[name] = {"elapsed": elapsed} if error is None else {"elapsed": elapsed, "error": error}
    healthy = all(state == "ok" for state in body.values())
    body["status"] = "ok" if healthy else "nok"
    body["_meta"] = meta
    return healthy, body
