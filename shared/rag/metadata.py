"""Document metadata (``meta_fields``): RAGFlow's ``metadata_condition`` filter, summary and batch edits.

Pure functions over plain mappings, shared by document listing, the ``/metadata/summary`` and
``/metadata/update`` endpoints, retrieval and the chat completions that filter retrieval.

RAGFlow evaluates a condition over an inverted index (``{key: {value: [doc_id, ...]}}``); here the
same rules are applied to one document's ``meta_fields`` at a time, so any store can feed it:

* string comparisons ignore case; ``=``/``≠`` and the ordering operators compare numerically when both
  sides are numbers (``"10"`` equals ``10.0``; ``9 < 10``), else as strings;
* ordering a number against a non-number never matches (RAGFlow's comparison raises and skips), and a
  ``YYYY-MM-DD`` date only orders against another date-shaped value;
* a list value matches when any element matches; the negative operators (``not is``, ``not contains``,
  ``not in``) match when no element matches the positive form;
* a document without the key (or with ``None`` / ``[]``) matches only ``empty`` — RAGFlow only looks at
  documents that carry the key;
* ``in`` / ``not in`` take a list or a comma-separated string and test membership with the ``=`` rule
  (RAGFlow tests ``meta in value`` as a substring of the raw string, which lets ``"ali"`` match
  ``"alice,bob"``; membership is what clients mean). A value containing a comma needs the list form.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

from shared.errors import DataError
from shared.schemas.reading import MalformedJson, load_json

__all__ = [
    "MAX_META_KEY_LENGTH",
    "OPERATORS",
    "MetadataComparison",
    "MetadataCondition",
    "MetadataConditionError",
    "apply_metadata_changes",
    "filter_documents",
    "matches",
    "parse_metadata_condition",
    "parse_metadata_condition_json",
    "summarize",
    "validate_meta_fields",
    "validate_metadata_changes",
]

MAX_META_KEY_LENGTH = 255

Logic = Literal["and", "or"]


class MetadataConditionError(DataError, ValueError):
    """Invalid ``metadata_condition``, metadata edit or ``meta_fields``.

    RAGFlow answers these with code 102 (``get_error_data_result``), hence ``DataError``; it is also a
    ``ValueError`` so pure callers can treat it as bad input without knowing the HTTP layer.
    """


# Canonical operator names are RAGFlow's internal ones ("is" → "=", "not is" → "≠").
OPERATORS: frozenset[str] = frozenset(
    {
        "=",
        "≠",
        "contains",
        "not contains",
        "in",
        "not in",
        "start with",
        "end with",
        ">",
        "<",
        "≥",
        "≤",
        "empty",
        "not empty",
    }
)
_ALIASES = {
    "is": "=",
    "==": "=",
    "not is": "≠",
    "!=": "≠",
    ">=": "≥",
    "=>": "≥",
    "<=": "≤",
    "=<": "≤",
}
_VALUELESS = frozenset({"empty", "not empty"})
_LIST_VALUED = frozenset({"in", "not in"})
_NEGATIONS = {"≠": "=", "not contains": "contains", "not in": "in"}
_ORDERING = frozenset({">", "<", "≥", "≤"})

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ].*)?")  # compared after casefold
_LIST_SEPARATORS = re.compile("[,\uff0c]")  # ASCII or full-width comma

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class MetadataComparison:
    """One condition: ``meta[name] <operator> value``. ``operator`` is canonical (see ``OPERATORS``)."""

    name: str
    operator: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class MetadataCondition:
    """A parsed ``metadata_condition``. With no comparisons it matches every document."""

    logic: Logic = "and"
    comparisons: tuple[MetadataComparison, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the condition filters nothing (RAGFlow skips filtering for empty ``conditions``)."""
        return not self.comparisons


# --------------------------------------------------------------------------------------------- parsing


def parse_metadata_condition(raw: object) -> MetadataCondition | None:
    """Validate a ``metadata_condition`` body value.

    ``None`` and falsy non-objects (``""``, ``[]``) mean "no condition" and give ``None``, as RAGFlow's
    ``req.get("metadata_condition") or {}`` does. Any dict, ``{}`` included, gives a ``MetadataCondition``;
    one without conditions matches everything (check ``is_empty``). Raises ``MetadataConditionError``
    with RAGFlow's messages.
    """
    if raw is None or (not raw and not isinstance(raw, Mapping)):
        return None
    if not isinstance(raw, Mapping):
        raise MetadataConditionError("metadata_condition must be an object.")

    logic = raw.get("logic")
    if logic is None or logic == "":
        logic = "and"
    if not isinstance(logic, str) or logic.strip().lower() not in ("and", "or"):
        raise MetadataConditionError("logic must be 'and' or 'or'.")
    normalized_logic: Logic = "and" if logic.strip().lower() == "and" else "or"

    conditions = raw.get("conditions")
    if conditions is None:
        conditions = []
    if not isinstance(conditions, list):
        raise MetadataConditionError("conditions must be a list.")
    comparisons = tuple(_parse_comparison(item) for item in conditions)
    return MetadataCondition(logic=normalized_logic, comparisons=comparisons)


def parse_metadata_condition_json(text: str | None) -> MetadataCondition | None:
    """Parse the JSON ``metadata_condition`` query parameter of the document listing.

    A blank parameter means no condition. The text is read by the bounded JSON reader, so nesting, size,
    numbers and Unicode beyond its limits raise its ``ArgumentError`` (code 101). Raises
    ``MetadataConditionError("metadata_condition must be valid JSON.")`` for malformed JSON and
    "must be an object." for JSON that isn't one.
    """
    if text is None or not text.strip():
        return None
    try:
        raw = load_json(text)
    except MalformedJson as exc:
        raise MetadataConditionError("metadata_condition must be valid JSON.") from exc
    if not isinstance(raw, dict):
        raise MetadataConditionError("metadata_condition must be an object.")
    return parse_metadata_condition(raw)


def _parse_comparison(item: object) -> MetadataComparison:
    if not isinstance(item, Mapping):
        raise MetadataConditionError("Each condition requires name and comparison_operator.")
    name = item.get("name")
    raw_operator = item.get("comparison_operator")
    if not isinstance(name, str) or not name.strip() or not isinstance(raw_operator, str) or not raw_operator:
        raise MetadataConditionError("Each condition requires name and comparison_operator.")

    key = " ".join(raw_operator.split()).lower()
    operator = _ALIASES.get(key, key)
    if operator not in OPERATORS:
        raise MetadataConditionError(f"Unsupported comparison operator: {raw_operator}")

    value = item.get("value")
    if operator in _VALUELESS:
        return MetadataComparison(name=name, operator=operator)
    if value is None:
        raise MetadataConditionError(f"Condition on '{name}' requires a value for operator: {raw_operator}")
    if operator in _LIST_VALUED:
        return MetadataComparison(name=name, operator=operator, value=_parse_member_list(name, value))
    if not _is_scalar(value):
        raise MetadataConditionError(
            f"Condition on '{name}' needs a string, number or boolean value for operator: {raw_operator}"
        )
    return MetadataComparison(name=name, operator=operator, value=value)


def _parse_member_list(name: str, value: object) -> tuple[Scalar, ...]:
    """``in`` / ``not in`` values: a list, or a string split on commas (ASCII or full-width)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in _LIST_SEPARATORS.split(value) if part.strip())
    if _is_scalar(value):
        return (value,)
    if isinstance(value, list) and all(_is_scalar(member) for member in value):
        return tuple(value)
    raise MetadataConditionError(f"Condition on '{name}' needs a list or a comma-separated string value.")


# ------------------------------------------------------------------------------------------ evaluation


def matches(condition: MetadataCondition | None, meta: Mapping[str, Any] | None) -> bool:
    """Whether one document's ``meta_fields`` satisfy ``condition`` (``None`` / empty: always)."""
    if condition is None or condition.is_empty:
        return True
    fields: Mapping[str, Any] = meta or {}
    results = (_matches_comparison(comparison, fields) for comparison in condition.comparisons)
    return all(results) if condition.logic == "and" else any(results)


def filter_documents(
    condition: MetadataCondition | None, docs: Iterable[tuple[str, Mapping[str, Any] | None]]
) -> list[str]:
    """Ids of the documents whose metadata match, in input order. ``docs`` yields ``(doc_id, meta_fields)``."""
    return [doc_id for doc_id, meta in docs if matches(condition, meta)]


def _matches_comparison(comparison: MetadataComparison, meta: Mapping[str, Any]) -> bool:
    present = comparison.name in meta
    value = meta.get(comparison.name)
    if comparison.operator == "empty":
        return not present or _is_empty(value)
    if comparison.operator == "not empty":
        return present and not _is_empty(value)

    elements = _elements(value) if present else []
    if not elements:
        # No key, None or []: RAGFlow's index has no entry for the document, so nothing matches.
        return False
    positive = _NEGATIONS.get(comparison.operator)
    if positive is not None:
        return not any(_test(positive, element, comparison.value) for element in elements)
    return any(_test(comparison.operator, element, comparison.value) for element in elements)


def _test(operator: str, actual: Any, expected: Any) -> bool:
    """One positive operator against one scalar metadata value."""
    if operator == "=":
        return _equal(actual, expected)
    if operator == "in":
        return any(_equal(actual, member) for member in expected)
    if operator == "contains":
        return _text(expected) in _text(actual)
    if operator == "start with":
        return _text(actual).startswith(_text(expected))
    if operator == "end with":
        return _text(actual).endswith(_text(expected))
    if operator in _ORDERING:
        return _ordered(operator, actual, expected)
    raise AssertionError(f"unhandled operator {operator}")  # parse_metadata_condition rejects others


def _equal(actual: Any, expected: Any) -> bool:
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return left == right
    return _text(actual) == _text(expected)


def _ordered(operator: str, actual: Any, expected: Any) -> bool:
    left_num, right_num = _number(actual), _number(expected)
    if left_num is not None and right_num is not None:
        order = (left_num > right_num) - (left_num < right_num)
    elif left_num is not None or right_num is not None:
        return False  # a number against a word has no order
    else:
        left, right = _text(actual), _text(expected)
        if bool(_DATE.fullmatch(left)) != bool(_DATE.fullmatch(right)):
            return False  # a date only orders against a date (RAGFlow skips non-date values)
        order = (left > right) - (left < right)
    if operator == ">":
        return order > 0
    if operator == "<":
        return order < 0
    if operator == "≥":
        return order >= 0
    return order <= 0


def _number(value: Any) -> float | None:
    """The value as a finite number when it is one or spells one; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float (the JSON reader keeps requests to 64 bits)
            return None
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().casefold()


def _elements(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [element for element in value if element is not None]
    return [value]


def _is_empty(value: Any) -> bool:
    """None, a blank string, or a list holding nothing but those."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return all(_is_empty(element) for element in value)
    if isinstance(value, dict):
        return not value
    return False


# ----------------------------------------------------------------------------------------------- summary


def summarize(metas: Iterable[Mapping[str, Any] | None]) -> dict[str, list[list[Any]]]:
    """RAGFlow's metadata summary: ``{key: [[value, count], ...]}`` over many documents' ``meta_fields``.

    Each list element counts on its own; ``None``, blank strings, empty lists and nested objects are
    skipped (RAGFlow skips every falsy value; ``0`` and ``false`` are real values here). Values are
    reported as stored, so ``1`` and ``"1"`` are distinct entries. Order: count descending, then value
    ascending (numbers before booleans before strings) so the answer is deterministic — RAGFlow breaks
    ties by database row order.
    """
    counts: dict[str, dict[tuple[int, Any], tuple[Any, int]]] = {}
    for meta in metas:
        if not isinstance(meta, Mapping):
            continue
        for key, raw in meta.items():
            for value in _elements(raw):
                sort_key = _summary_key(value)
                if sort_key is None:
                    continue
                per_key = counts.setdefault(key, {})
                stored, count = per_key.get(sort_key, (value, 0))
                per_key[sort_key] = (stored, count + 1)
    return {
        key: [[stored, count] for sort_key, (stored, count) in sorted(per_key.items(), key=_summary_order)]
        for key, per_key in counts.items()
    }


def _summary_key(value: Any) -> tuple[int, Any] | None:
    """A hashable, type-aware identity for a metadata value (``True`` and ``1`` stay apart)."""
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int):
        return (0, value)
    if isinstance(value, float):
        return (0, value) if math.isfinite(value) else None
    if isinstance(value, str):
        return (2, value) if value.strip() else None
    return None


def _summary_order(item: tuple[tuple[int, Any], tuple[Any, int]]) -> tuple[int, int, Any]:
    (rank, value), (_, count) = item
    return (-count, rank, value)


# ------------------------------------------------------------------------------------------ batch edits


def validate_metadata_changes(updates: object, deletes: object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check the ``updates`` / ``deletes`` of ``POST /metadata/update``; ``None`` counts as an empty list.

    Returns the two lists, each item a fresh dict. Messages follow RAGFlow.
    """
    updates = [] if updates is None else updates
    deletes = [] if deletes is None else deletes
    if not isinstance(updates, list) or not isinstance(deletes, list):
        raise MetadataConditionError("updates and deletes must be lists.")

    checked_updates: list[dict[str, Any]] = []
    for update in updates:
        if not isinstance(update, Mapping) or not _is_key(update.get("key")) or update.get("value") is None:
            raise MetadataConditionError("Each update requires key and value.")
        _check_meta_value(f"value for '{update['key']}'", update["value"])
        if update.get("match") is not None and not _is_scalar(update["match"]):
            raise MetadataConditionError(f"match for '{update['key']}' must be a string, number or boolean.")
        checked_updates.append(dict(update))

    checked_deletes: list[dict[str, Any]] = []
    for delete in deletes:
        if not isinstance(delete, Mapping) or not _is_key(delete.get("key")):
            raise MetadataConditionError("Each delete requires key.")
        if delete.get("value") is not None and not _is_scalar(delete["value"]):
            raise MetadataConditionError(f"value to delete from '{delete['key']}' must be a string, number or boolean.")
        checked_deletes.append(dict(delete))
    return checked_updates, checked_deletes


def apply_metadata_changes(
    meta: Mapping[str, Any] | None, updates: Sequence[Mapping[str, Any]], deletes: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """Apply validated updates, then deletes, to a copy of one document's ``meta_fields``.

    * update without ``match`` (absent or null): set ``key`` to ``value``, creating the key;
    * update with ``match``: only where the current value equals ``match`` — a scalar is replaced, in a
      list each equal element is replaced (a list ``value`` is spliced in) and duplicates are dropped;
    * delete without ``value``: remove the key; with ``value``: remove the key if its scalar value equals
      it, or remove the equal elements of a list (and the key once the list is empty).

    "Equals" is RAGFlow's exact string comparison (``str(a) == str(b)``), widened so that numerically
    equal numbers match (``10`` and ``"10.0"``). Returns ``(new_meta, changed)``; ``meta`` is untouched.
    """
    original = dict(meta or {})
    result = copy.deepcopy(original)
    for update in updates:
        _apply_update(result, update)
    for delete in deletes:
        _apply_delete(result, delete)
    return result, result != original


def _apply_update(meta: dict[str, Any], update: Mapping[str, Any]) -> None:
    key, value, match = update["key"], update["value"], update.get("match")
    if match is None:
        meta[key] = _dedupe(list(value)) if isinstance(value, list) else value
        return
    if key not in meta:
        return
    current = meta[key]
    if isinstance(current, list):
        if not any(_same(element, match) for element in current):
            return
        replaced: list[Any] = []
        for element in current:
            if not _same(element, match):
                replaced.append(element)
            elif isinstance(value, list):
                replaced.extend(value)
            else:
                replaced.append(value)
        meta[key] = _dedupe(replaced)
    elif _same(current, match):
        meta[key] = copy.deepcopy(value)


def _apply_delete(meta: dict[str, Any], delete: Mapping[str, Any]) -> None:
    key, value = delete["key"], delete.get("value")
    if key not in meta:
        return
    current = meta[key]
    if value is None:
        del meta[key]
    elif isinstance(current, list):
        kept = [element for element in current if not _same(element, value)]
        if not kept:
            del meta[key]
        elif len(kept) != len(current):
            meta[key] = kept
    elif _same(current, value):
        del meta[key]


def _same(current: Any, wanted: Any) -> bool:
    if str(current) == str(wanted):
        return True
    left, right = _number(current), _number(wanted)
    return left is not None and left == right


def _dedupe(values: list[Any]) -> list[Any]:
    """Drop repeated elements, keeping the first; ``1`` and ``"1"`` are repeats (RAGFlow dedupes on ``str``)."""
    seen: set[str] = set()
    unique: list[Any] = []
    for value in values:
        marker = str(value)
        if marker not in seen:
            seen.add(marker)
            unique.append(value)
    return unique


# ------------------------------------------------------------------------------------------ meta_fields


def validate_meta_fields(value: object) -> dict[str, Any]:
    """Check the ``meta_fields`` of ``PUT /datasets/{id}/documents/{id}`` and return a copy.

    A dict of non-empty string keys (at most 255 characters) to strings, numbers, booleans or flat
    lists of them.
    """
    if not isinstance(value, dict):
        raise MetadataConditionError("meta_fields must be a dictionary")
    checked: dict[str, Any] = {}
    for key, field_value in value.items():
        if not _is_key(key):
            raise MetadataConditionError("meta_fields keys must be non-empty strings.")
        if len(key) > MAX_META_KEY_LENGTH:
            raise MetadataConditionError(
                f"meta_fields key '{key[:40]}…' is longer than {MAX_META_KEY_LENGTH} characters."
            )
        _check_meta_value(f"meta_fields['{key}']", field_value)
        checked[key] = list(field_value) if isinstance(field_value, list) else field_value
    return checked


def _check_meta_value(label: str, value: object) -> None:
    """Metadata values are scalars or flat lists of scalars; ``label`` names the offending field."""
    if isinstance(value, dict):
        raise MetadataConditionError(f"{label} must not be a nested object.")
    if isinstance(value, list):
        if any(isinstance(element, dict | list) for element in value):
            raise MetadataConditionError(f"{label} must be a flat list of strings, numbers or booleans.")
        if not all(_is_scalar(element) for element in value):
            raise MetadataConditionError(f"{label} must be a string, number, boolean or a list of them.")
        return
    if not _is_scalar(value):
        raise MetadataConditionError(f"{label} must be a string, number, boolean or a list of them.")


def _is_scalar(value: object) -> TypeGuard[Scalar]:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def _is_key(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
