"""How many CPUs this process may use (Lambda and containers may allow fewer than the host has)."""

from __future__ import annotations

import os


def core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
