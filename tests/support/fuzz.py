"""What the fuzz suites share: hypothesis settings bounded for ``make test`` and a hostile client's JSON.

``FLOWLESS_FUZZ_EXAMPLES=<n>`` sets how many examples each property tries (default 100, which keeps every
fuzz suite to seconds); raise it to fuzz for longer, e.g. ``FLOWLESS_FUZZ_EXAMPLES=20000 pytest -m fuzz``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FLOWLESS_FUZZ_EXAMPLES", "100"))

#: Settings of every property: bounded, no per-example deadline (a loaded CI machine is no bug).
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

#: Text as clients send it, lone surrogates (which no encoder can write back) among it.
texts = st.one_of(
    st.text(max_size=20),
    st.text(max_size=8).map(lambda t: t + "\ud800"),
    st.sampled_from(["", " ", "  \t", "0", "1", "-1", "1.5", "1e999", "NaN", "true", "null", str(2**63), "a,b"]),
)

#: Numbers beyond what storage holds, and the non-finite ones JSON doesn't have but Python's json writes.
numbers = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.integers(),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**40, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)

scalars = st.one_of(st.none(), st.booleans(), numbers, texts)


def json_values(keys: st.SearchStrategy[str] | None = None, *, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (dicts keyed by ``keys`` when given, else by arbitrary text)."""
    key_strategy = keys if keys is not None else texts
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(key_strategy, children, max_size=4),
        max_leaves=max_leaves,
    )


def json_text(value: Any) -> str:
    """``value`` as a client would send it (Python's json writes NaN and Infinity, as careless clients do)."""
    return json.dumps(value, allow_nan=True)


def utf8_json(value: Any) -> bytes:
    """Whether ``value`` can be answered and stored: JSON without lone surrogates, as UTF-8."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")
