"""Fuzzing the metadata-condition evaluator (shared.rag.metadata): any condition a client sends is parsed or refused
with MetadataConditionError, and a parsed one evaluates over any stored metadata without raising, consistently."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, reject
from hypothesis import strategies as st

from shared.errors import FlowlessError
from shared.rag.metadata import (
    OPERATORS,
    MetadataComparison,
    MetadataCondition,
    MetadataConditionError,
    apply_metadata_changes,
    filter_documents,
    matches,
    parse_metadata_condition,
    parse_metadata_condition_json,
    summarize,
    validate_meta_fields,
    validate_metadata_changes,
)
from tests.support.fuzz import FUZZ, json_text, json_values, scalars, texts

NAMES = ["author", "year", "tags", "a b"]
names = st.one_of(st.sampled_from(NAMES), texts)
operators = st.one_of(
    st.sampled_from(sorted(OPERATORS)),
    st.sampled_from(["is", "not is", "==", "!=", ">=", "<=", "=>", "=<", " Not  Contains ", "IN"]),
    texts,
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), json_values(max_leaves=4))
comparisons = st.one_of(
    st.fixed_dictionaries({"name": names, "comparison_operator": operators, "value": values}),
    st.fixed_dictionaries({"name": names, "comparison_operator": operators}),
    json_values(max_leaves=4),
)
conditions = st.one_of(
    st.fixed_dictionaries(
        {"logic": st.one_of(st.sampled_from(["and", "or", "AND", " or ", ""]), scalars)},
        optional={"conditions": st.one_of(st.lists(comparisons, max_size=4), values)},
    ),
    json_values(max_leaves=6),
)
# Stored metadata: what meta_fields validation lets in, and worse (nested values, non-finite numbers).
metas = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(NAMES), st.one_of(scalars, st.lists(scalars, max_size=4)), max_size=4),
    st.dictionaries(names, json_values(max_leaves=4), max_size=4),
)
documents = st.lists(st.tuples(st.uuids().map(str), metas), max_size=6)


def parsed(raw: Any) -> MetadataCondition | None:
    """``raw`` parsed; a refused one ends the example (refusals have a property of their own)."""
    try:
        return parse_metadata_condition(raw)
    except MetadataConditionError:
        reject()


@FUZZ
@given(raw=conditions)
def test_a_condition_is_parsed_or_refused_with_ragflows_code(raw: Any) -> None:
    try:
        condition = parse_metadata_condition(raw)
    except MetadataConditionError as exc:
        assert int(exc.code) == 102 and exc.message
        return
    if condition is not None:
        assert condition.logic in ("and", "or")
        assert all(c.operator in OPERATORS for c in condition.comparisons)


@FUZZ
@given(text=st.one_of(texts, conditions.map(json_text)))
def test_a_condition_in_a_query_string_is_parsed_or_refused_with_a_typed_error(text: str) -> None:
    try:
        parse_metadata_condition_json(text)
    except FlowlessError as exc:
        assert int(exc.code) in (101, 102)


@FUZZ
@given(raw=conditions, docs=documents)
def test_filtering_never_raises_and_keeps_document_order(raw: Any, docs: list[tuple[str, Any]]) -> None:
    try:
        condition = parse_metadata_condition(raw)
    except MetadataConditionError:
        return
    kept = filter_documents(condition, docs)
    ids = [doc_id for doc_id, _ in docs]
    positions = [ids.index(doc_id) for doc_id in kept]
    assert positions == sorted(positions)
    if condition is None or condition.is_empty:
        assert kept == ids


NEGATIONS = {"=": "≠", "contains": "not contains", "in": "not in"}


@FUZZ
@given(
    name=st.sampled_from(NAMES),
    operator=st.sampled_from(sorted(NEGATIONS)),
    value=st.one_of(scalars, st.lists(scalars, min_size=1, max_size=3)),
    meta=metas,
)
def test_a_negated_operator_matches_exactly_where_the_positive_one_does_not(
    name: str, operator: str, value: Any, meta: Any
) -> None:
    item = {"name": name, "comparison_operator": operator, "value": value}
    positive = parsed({"conditions": [item]})
    negative = parsed({"conditions": [{**item, "comparison_operator": NEGATIONS[operator]}]})
    stored = meta.get(name) if isinstance(meta, dict) else None
    present = stored is not None and (not isinstance(stored, list) or any(e is not None for e in stored))
    if present:
        assert matches(negative, meta) is not matches(positive, meta)
    else:  # without the key (or only nulls under it) neither matches: RAGFlow only looks at documents holding it
        assert not matches(positive, meta) and not matches(negative, meta)


@FUZZ
@given(comparison=comparisons, meta=metas)
def test_and_or_of_one_comparison_agree(comparison: Any, meta: Any) -> None:
    try:
        both = [parse_metadata_condition({"logic": logic, "conditions": [comparison]}) for logic in ("and", "or")]
    except MetadataConditionError:
        return
    assert matches(both[0], meta) == matches(both[1], meta)


@FUZZ
@given(docs=st.lists(metas, max_size=6))
def test_a_summary_counts_every_value_it_reports(docs: list[Any]) -> None:
    summary = summarize(docs)
    for entries in summary.values():
        assert entries and all(count >= 1 for _, count in entries)
        counts = [count for _, count in entries]
        assert counts == sorted(counts, reverse=True)


@FUZZ
@given(meta=metas, updates=values, deletes=values)
def test_edits_are_refused_or_applied_to_a_copy(meta: Any, updates: Any, deletes: Any) -> None:
    try:
        checked = validate_metadata_changes(updates, deletes)
    except MetadataConditionError:
        return
    before = copy.deepcopy(meta)
    result, changed = apply_metadata_changes(meta, *checked)
    assert meta == before  # the stored metadata is never modified in place
    assert isinstance(result, dict) and changed == (result != (meta or {}))


@FUZZ
@given(value=st.one_of(metas, json_values(max_leaves=6)))
def test_meta_fields_are_validated_or_refused(value: Any) -> None:
    try:
        checked = validate_meta_fields(value)
    except MetadataConditionError:
        return
    assert all(isinstance(key, str) and key.strip() for key in checked)
    condition = MetadataCondition(comparisons=tuple(MetadataComparison(k, "not empty") for k in checked))
    assert filter_documents(condition, [("d", checked)]) in ([], ["d"])
