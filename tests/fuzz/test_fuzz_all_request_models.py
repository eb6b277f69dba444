"""Every request model of every route, fuzzed the way a request reaches it: JSON bytes through the bounded reader,
then the model (query models get strings, repeated or not). Found by walking ``shared.schemas``, so a model added
later is fuzzed without touching this file. Whatever arrives, the only exceptions are our typed errors, and what a
model accepts can be answered and stored (it encodes as UTF-8 JSON)."""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shared.schemas
from shared.errors import FlowlessError
from shared.schemas.common import LenientBody, QueryArgs, RequestModel, StrictBody, parse_model
from shared.schemas.reading import check_text, load_json
from tests.support.fuzz import EXAMPLES, FUZZ, json_text, json_values, texts

#: A quarter of the per-property budget per model: these properties are broad (every model), the document
#: suites go deeper on their own models. FLOWLESS_FUZZ_EXAMPLES raises both.
BROAD = settings(FUZZ, max_examples=max(10, EXAMPLES // 4))


def _request_models() -> list[type[RequestModel]]:
    for module in pkgutil.iter_modules(shared.schemas.__path__):
        importlib.import_module(f"shared.schemas.{module.name}")
    found: list[type[RequestModel]] = []
    pending: list[type[RequestModel]] = [RequestModel]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub not in (StrictBody, LenientBody, QueryArgs) and sub.__module__.startswith("shared.schemas."):
                found.append(sub)
    return sorted(set(found), key=lambda m: f"{m.__module__}.{m.__qualname__}")


MODELS = _request_models()
BODY_MODELS = [m for m in MODELS if not issubclass(m, QueryArgs)]
QUERY_MODELS = [m for m in MODELS if issubclass(m, QueryArgs)]


def _keys(model: type[RequestModel]) -> st.SearchStrategy[str]:
    known = sorted({info.alias or name for name, info in model.model_fields.items()})
    return st.one_of(st.sampled_from(known), texts) if known else texts


def _accepted_is_storable(model: RequestModel) -> None:
    json.dumps(model.model_dump(mode="json", warnings=False), ensure_ascii=False).encode("utf-8")


def test_every_schema_module_has_models() -> None:
    assert len(BODY_MODELS) >= 20 and len(QUERY_MODELS) >= 5, (len(BODY_MODELS), len(QUERY_MODELS))


@pytest.mark.parametrize("model", BODY_MODELS, ids=lambda m: m.__qualname__)
def test_a_body_model_raises_only_typed_errors(model: type[RequestModel]) -> None:
    @BROAD
    @given(st.dictionaries(_keys(model), json_values(_keys(model)), max_size=6))
    def check(payload: dict[str, Any]) -> None:
        try:
            accepted = parse_model(model, load_json(json_text(payload)))
        except FlowlessError:
            return
        _accepted_is_storable(accepted)

    check()


@pytest.mark.parametrize("model", QUERY_MODELS, ids=lambda m: m.__qualname__)
def test_a_query_model_raises_only_typed_errors(model: type[RequestModel]) -> None:
    values = st.one_of(texts, st.lists(texts, min_size=1, max_size=3))

    @BROAD
    @given(st.dictionaries(_keys(model), values, max_size=6))
    def check(args: dict[str, Any]) -> None:
        try:
            # As the query reader does: every value through the string rules first, then the model.
            for value in args.values():
                for text in value if isinstance(value, list) else [value]:
                    check_text(text)
            accepted = parse_model(model, args)
        except FlowlessError:
            return
        _accepted_is_storable(accepted)

    check()
