"""metadata_condition parsing and evaluation, the metadata summary, batch edits and meta_fields checks."""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import DataError
from shared.rag.metadata import (
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

pytestmark = pytest.mark.unit


def cond(name: str, op: str, value: Any = None, *, logic: str = "and") -> MetadataCondition:
    item: dict[str, Any] = {"name": name, "comparison_operator": op}
    if value is not None:
        item["value"] = value
    parsed = parse_metadata_condition({"logic": logic, "conditions": [item]})
    assert parsed is not None
    return parsed


def check(name: str, op: str, value: Any, meta: dict[str, Any]) -> bool:
    return matches(cond(name, op, value), meta)


# ----------------------------------------------------------------------------------------------- parsing


class TestParse:
    def test_full_shape(self) -> None:
        parsed = parse_metadata_condition(
            {
                "logic": "or",
                "conditions": [
                    {"name": "author", "comparison_operator": "is", "value": "bob"},
                    {"name": "tags", "comparison_operator": "empty"},
                ],
            }
        )
        assert parsed == MetadataCondition(
            logic="or",
            comparisons=(MetadataComparison("author", "=", "bob"), MetadataComparison("tags", "empty")),
        )

    def test_logic_defaults_to_and_and_ignores_case(self) -> None:
        assert parse_metadata_condition({"conditions": []}) == MetadataCondition("and", ())
        assert parse_metadata_condition({"logic": None, "conditions": []}) == MetadataCondition("and", ())
        parsed = parse_metadata_condition({"logic": "OR", "conditions": []})
        assert parsed is not None and parsed.logic == "or"

    @pytest.mark.parametrize("raw", [None, "", [], 0, False])
    def test_absent_means_no_condition(self, raw: object) -> None:
        assert parse_metadata_condition(raw) is None

    @pytest.mark.parametrize("raw", [{}, {"logic": "and"}, {"conditions": None}, {"logic": "or", "conditions": []}])
    def test_empty_conditions_match_everything(self, raw: dict[str, Any]) -> None:
        parsed = parse_metadata_condition(raw)
        assert parsed is not None and parsed.is_empty
        assert matches(parsed, {}) and matches(parsed, {"a": 1}) and matches(parsed, None)

    @pytest.mark.parametrize(
        ("alias", "canonical"),
        [
            ("is", "="),
            ("=", "="),
            ("==", "="),
            ("not is", "≠"),
            ("≠", "≠"),
            ("!=", "≠"),
            (">=", "≥"),
            ("≥", "≥"),
            ("<=", "≤"),
            ("≤", "≤"),
            (">", ">"),
            ("<", "<"),
            ("contains", "contains"),
            ("not contains", "not contains"),
            ("start with", "start with"),
            ("end with", "end with"),
            ("in", "in"),
            ("not in", "not in"),
            ("Not  Is", "≠"),
            (" START WITH ", "start with"),
        ],
    )
    def test_operator_aliases(self, alias: str, canonical: str) -> None:
        parsed = cond("k", alias, "v")
        assert parsed.comparisons[0].operator == canonical

    @pytest.mark.parametrize("op", ["empty", "not empty"])
    def test_valueless_operators_drop_value(self, op: str) -> None:
        assert cond("k", op).comparisons[0] == MetadataComparison("k", op, None)
        assert cond("k", op, "ignored").comparisons[0].value is None

    def test_in_values_from_list_or_comma_string(self) -> None:
        assert cond("k", "in", ["a", 2]).comparisons[0].value == ("a", 2)
        assert cond("k", "in", " a, b ,,c ").comparisons[0].value == ("a", "b", "c")
        assert cond("k", "not in", "a\uff0cb").comparisons[0].value == ("a", "b")
        assert cond("k", "in", 5).comparisons[0].value == (5,)

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ("x", "metadata_condition must be an object."),
            ([1], "metadata_condition must be an object."),
            (42, "metadata_condition must be an object."),
            ({"logic": "xor", "conditions": []}, "logic must be 'and' or 'or'."),
            ({"logic": 1, "conditions": []}, "logic must be 'and' or 'or'."),
            ({"conditions": {"name": "a"}}, "conditions must be a list."),
            ({"conditions": "a"}, "conditions must be a list."),
            ({"conditions": ["a"]}, "Each condition requires name and comparison_operator."),
            ({"conditions": [{"name": "a"}]}, "Each condition requires name and comparison_operator."),
            ({"conditions": [{"comparison_operator": "is"}]}, "Each condition requires name and comparison_operator."),
            (
                {"conditions": [{"name": " ", "comparison_operator": "is", "value": 1}]},
                "Each condition requires name and comparison_operator.",
            ),
            (
                {"conditions": [{"name": "a", "comparison_operator": 3, "value": 1}]},
                "Each condition requires name and comparison_operator.",
            ),
            (
                {"conditions": [{"name": "a", "comparison_operator": "like", "value": 1}]},
                "Unsupported comparison operator: like",
            ),
            (
                {"conditions": [{"name": "a", "comparison_operator": "is"}]},
                "Condition on 'a' requires a value for operator: is",
            ),
            (
                {"conditions": [{"name": "a", "comparison_operator": "is", "value": ["x"]}]},
                "Condition on 'a' needs a string, number or boolean value for operator: is",
            ),
            (
                {"conditions": [{"name": "a", "comparison_operator": ">", "value": {"x": 1}}]},
                "Condition on 'a' needs a string, number or boolean value for operator: >",
            ),
            (
                {"conditions": [{"name": "a", "comparison_operator": "in", "value": [["x"]]}]},
                "Condition on 'a' needs a list or a comma-separated string value.",
            ),
        ],
    )
    def test_errors(self, raw: object, message: str) -> None:
        with pytest.raises(MetadataConditionError) as caught:
            parse_metadata_condition(raw)
        assert str(caught.value) == message
        assert caught.value.message == message

    def test_error_is_value_error_and_data_error(self) -> None:
        with pytest.raises(ValueError):
            parse_metadata_condition("x")
        with pytest.raises(DataError):
            parse_metadata_condition("x")

    def test_json(self) -> None:
        parsed = parse_metadata_condition_json(
            '{"logic":"and","conditions":[{"name":"tags","comparison_operator":"is","value":"bar"}]}'
        )
        assert parsed == MetadataCondition("and", (MetadataComparison("tags", "=", "bar"),))
        assert parse_metadata_condition_json("") is None
        assert parse_metadata_condition_json("   ") is None
        assert parse_metadata_condition_json(None) is None
        empty = parse_metadata_condition_json("{}")
        assert empty is not None and empty.is_empty

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("{bad json", "metadata_condition must be valid JSON."),
            ("[1]", "metadata_condition must be an object."),
            ('"x"', "metadata_condition must be an object."),
            ("null", "metadata_condition must be an object."),
            ('{"conditions": 1}', "conditions must be a list."),
        ],
    )
    def test_json_errors(self, text: str, message: str) -> None:
        with pytest.raises(MetadataConditionError, match=rf"^{message}$".replace(".", r"\.")):
            parse_metadata_condition_json(text)


# -------------------------------------------------------------------------------------------- operators


class TestEquality:
    @pytest.mark.parametrize(
        ("meta_value", "value", "expected"),
        [
            ("alice", "alice", True),
            ("Alice", "ALICE", True),
            (" alice ", "alice", True),
            ("alice", "alic", False),
            ("10", 10.0, True),
            (10, "10", True),
            (10, "10.0", True),
            (1e1, 10, True),
            ("10", "010", True),
            ("10", "10a", False),
            (True, "true", True),
            (True, True, True),
            (False, "true", False),
            (True, 1, False),  # booleans are not numbers
            ("2024-05-01", "2024-05-01", True),
            ("", "", True),
            ("nan", "nan", True),  # not a number: compared as text
            ("1_000", 1000, False),  # Python's float() accepts this; metadata does not
        ],
    )
    def test_is(self, meta_value: Any, value: Any, expected: bool) -> None:
        for op in ("is", "=", "=="):
            assert check("k", op, value, {"k": meta_value}) is expected
        for op in ("not is", "≠", "!="):
            assert check("k", op, value, {"k": meta_value}) is (not expected)

    def test_list_value_any_element(self) -> None:
        meta = {"tags": ["foo", "Bar", 3]}
        assert check("tags", "is", "bar", meta)
        assert check("tags", "is", "3", meta)
        assert not check("tags", "is", "baz", meta)
        assert not check("tags", "not is", "bar", meta)  # some element is "bar"
        assert check("tags", "not is", "baz", meta)

    def test_list_with_none_elements(self) -> None:
        assert check("tags", "is", "a", {"tags": [None, "a"]})
        assert not check("tags", "is", "a", {"tags": [None]})
        assert not check("tags", "not is", "a", {"tags": [None]})  # nothing to compare: like a missing key


class TestText:
    @pytest.mark.parametrize(
        ("op", "meta_value", "value", "expected"),
        [
            ("contains", "https://amd.com/x", "AMD", True),
            ("contains", "https://intel.com", "amd", False),
            ("contains", 2024, "02", True),
            ("contains", "abc", "", True),
            ("not contains", "https://amd.com/x", "amd", False),
            ("not contains", "https://intel.com", "amd", True),
            ("start with", "Report 2024", "report", True),
            ("start with", "Report 2024", "2024", False),
            ("start with", 2024, 20, True),
            ("end with", "Report 2024", "2024", True),
            ("end with", "Report 2024", "REPORT", False),
            ("end with", "notes.PDF", ".pdf", True),
        ],
    )
    def test_scalar(self, op: str, meta_value: Any, value: Any, expected: bool) -> None:
        assert check("k", op, value, {"k": meta_value}) is expected

    def test_lists(self) -> None:
        meta = {"tags": ["alpha", "beta"]}
        assert check("tags", "contains", "ph", meta)
        assert not check("tags", "contains", "z", meta)
        assert check("tags", "not contains", "z", meta)
        assert not check("tags", "not contains", "et", meta)
        assert check("tags", "start with", "be", meta)
        assert not check("tags", "start with", "ta", meta)
        assert check("tags", "end with", "ta", meta)
        assert not check("tags", "end with", "al", meta)


class TestMembership:
    @pytest.mark.parametrize(
        ("meta_value", "value", "expected"),
        [
            ("alice", ["alice", "bob"], True),
            ("ALICE", "alice, bob", True),
            ("ali", "alice,bob", False),  # membership, not substring (RAGFlow would match)
            ("carol", ["alice", "bob"], False),
            ("10", [10, 20], True),
            (20.0, "10,20", True),
            (5, 5, True),
            ("a,b", ["a,b"], True),  # a value with a comma needs the list form
            ("a,b", "a,b", False),
            ("x", "", False),
        ],
    )
    def test_in(self, meta_value: Any, value: Any, expected: bool) -> None:
        assert check("k", "in", value, {"k": meta_value}) is expected
        assert check("k", "not in", value, {"k": meta_value}) is (not expected)

    def test_lists(self) -> None:
        meta = {"tags": ["foo", "bar"]}
        assert check("tags", "in", ["bar", "baz"], meta)
        assert not check("tags", "in", ["baz"], meta)
        assert check("tags", "not in", ["baz", "qux"], meta)
        assert not check("tags", "not in", ["foo"], meta)


class TestOrdering:
    @pytest.mark.parametrize(
        ("op", "meta_value", "value", "expected"),
        [
            (">", 10, 9, True),
            (">", "10", "9", True),  # numeric, not lexicographic
            (">", 9, "10", False),
            ("<", "9", 10, True),
            ("<", 10, 10, False),
            ("≤", 10, "10.0", True),
            ("<=", 10, "10.0", True),
            ("≥", "10", 10, True),
            (">=", 9.5, 10, False),
            (">", -1, "-2", True),
            (">", "1e3", 999, True),
            (">", "2024-05-02", "2024-05-01", True),
            ("<", "2024-05-02", "2024-05-10", True),
            ("≥", "2024-05-01", "2024-05-01", True),
            ("≤", "2023-12-31", "2024-01-01", True),
            (">", "2024-05-02T10:00:00", "2024-05-01", True),
            (">", "beta", "ALPHA", True),  # text order, case-insensitive
            ("<", "Apple", "banana", True),
            (">", "abc", 5, False),  # word vs number: no order
            ("<", 5, "abc", False),
            (">", "zzz", "2024-05-01", False),  # a date orders only against a date
            ("<", "2024-05-01", "zzz", False),
            (">", True, "a", True),  # booleans compare as the words true/false
        ],
    )
    def test_scalar(self, op: str, meta_value: Any, value: Any, expected: bool) -> None:
        assert check("k", op, value, {"k": meta_value}) is expected

    def test_lists_any_element(self) -> None:
        meta = {"years": [2001, 2019]}
        assert check("years", ">", 2010, meta)
        assert check("years", "<", 2010, meta)
        assert not check("years", ">", 2020, meta)
        assert check("years", "≤", 2001, meta)


class TestEmptiness:
    @pytest.mark.parametrize(
        ("meta", "empty"),
        [
            ({}, True),
            ({"k": None}, True),
            ({"k": ""}, True),
            ({"k": "  "}, True),
            ({"k": []}, True),
            ({"k": [None, ""]}, True),
            ({"k": "x"}, False),
            ({"k": 0}, False),
            ({"k": False}, False),
            ({"k": ["x"]}, False),
            ({"other": "x"}, True),
        ],
    )
    def test_empty(self, meta: dict[str, Any], empty: bool) -> None:
        assert check("k", "empty", None, meta) is empty
        assert check("k", "not empty", None, meta) is (not empty)


class TestMissingKey:
    @pytest.mark.parametrize(
        ("op", "value"),
        [
            ("is", "x"),
            ("not is", "x"),
            ("contains", "x"),
            ("not contains", "x"),
            ("in", ["x"]),
            ("not in", ["x"]),
            ("start with", "x"),
            ("end with", "x"),
            (">", 1),
            ("<", 1),
            ("≥", 1),
            ("≤", 1),
            ("not empty", None),
        ],
    )
    @pytest.mark.parametrize("meta", [{}, {"k": None}, {"k": []}, {"other": "x"}])
    def test_fails_all_but_empty(self, op: str, value: Any, meta: dict[str, Any]) -> None:
        assert check("k", op, value, meta) is False

    def test_none_meta_is_an_empty_mapping(self) -> None:
        assert matches(cond("k", "empty"), None)
        assert not matches(cond("k", "is", "x"), None)

    def test_key_names_are_case_sensitive(self) -> None:
        assert not check("Author", "is", "bob", {"author": "bob"})


# ------------------------------------------------------------------------------------------------ logic


class TestLogic:
    META = {"author": "alice", "tags": ["foo", "bar"], "year": 2024}

    def _parse(self, logic: str, *conditions: tuple[str, str, Any]) -> MetadataCondition:
        parsed = parse_metadata_condition(
            {
                "logic": logic,
                "conditions": [{"name": n, "comparison_operator": op, "value": v} for n, op, v in conditions],
            }
        )
        assert parsed is not None
        return parsed

    def test_and(self) -> None:
        assert matches(self._parse("and", ("author", "is", "alice"), ("tags", "is", "bar")), self.META)
        assert not matches(self._parse("and", ("author", "is", "alice"), ("tags", "is", "baz")), self.META)
        assert not matches(self._parse("and", ("author", "is", "alice"), ("missing", "is", "x")), self.META)

    def test_or(self) -> None:
        assert matches(self._parse("or", ("author", "is", "bob"), ("year", ">", "2000")), self.META)
        assert matches(self._parse("or", ("missing", "is", "x"), ("tags", "contains", "fo")), self.META)
        assert not matches(self._parse("or", ("author", "is", "bob"), ("year", "<", 2000)), self.META)

    def test_spec_retrieval_example(self) -> None:
        parsed = self._parse("and", ("author", "=", "Toby"), ("url", "not contains", "amd"))
        assert matches(parsed, {"author": "toby", "url": "https://intel.com"})
        assert not matches(parsed, {"author": "toby", "url": "https://amd.com"})
        assert not matches(parsed, {"author": "toby"})  # no url: RAGFlow only sees documents with the key

    def test_filter_documents_keeps_order(self) -> None:
        docs: list[tuple[str, dict[str, Any] | None]] = [
            ("d3", {"author": "alice"}),
            ("d1", {"author": "bob"}),
            ("d2", {"author": "Alice", "tags": ["x"]}),
            ("d4", None),
        ]
        assert filter_documents(cond("author", "is", "alice"), docs) == ["d3", "d2"]
        assert filter_documents(cond("tags", "empty"), docs) == ["d3", "d1", "d4"]
        assert filter_documents(MetadataCondition(), docs) == ["d3", "d1", "d2", "d4"]
        assert filter_documents(None, iter(docs)) == ["d3", "d1", "d2", "d4"]

    def test_spec_list_example(self) -> None:
        parsed = parse_metadata_condition_json(
            '{"logic":"and","conditions":[{"name":"tags","comparison_operator":"is","value":"bar"},'
            '{"name":"author","comparison_operator":"is","value":"alice"}]}'
        )
        docs: list[tuple[str, dict[str, Any]]] = [
            ("a", {"tags": ["foo", "bar"], "author": "alice"}),
            ("b", {"tags": "bar", "author": "bob"}),
            ("c", {"tags": ["bar"], "author": ["alice", "carol"]}),
        ]
        assert filter_documents(parsed, docs) == ["a", "c"]


# ---------------------------------------------------------------------------------------------- summary


class TestSummary:
    def test_spec_example(self) -> None:
        metas: list[dict[str, Any]] = [
            {"tags": ["foo", "bar"], "author": "alice"},
            {"tags": ["bar", "baz"], "author": "alice"},
            {"author": "bob"},
        ]
        assert summarize(metas) == {
            "tags": [["bar", 2], ["baz", 1], ["foo", 1]],
            "author": [["alice", 2], ["bob", 1]],
        }

    def test_order_count_desc_then_value_asc(self) -> None:
        metas = [{"k": v} for v in ["b", "a", "c", "c", "b", "c"]]
        assert summarize(metas) == {"k": [["c", 3], ["b", 2], ["a", 1]]}
        assert summarize([{"k": "b"}, {"k": "a"}]) == {"k": [["a", 1], ["b", 1]]}

    def test_values_as_stored_and_typed(self) -> None:
        metas: list[dict[str, Any]] = [{"n": 1}, {"n": "1"}, {"n": True}, {"n": 1}, {"n": 2.5}, {"n": 0}, {"n": False}]
        assert summarize(metas) == {"n": [[1, 2], [0, 1], [2.5, 1], [False, 1], [True, 1], ["1", 1]]}

    def test_skips_empty_values(self) -> None:
        metas: list[Any] = [
            {"k": None, "e": "", "l": [], "w": "  ", "d": {"x": 1}, "m": [None, "", "v"]},
            None,
            "not a mapping",
            {},
        ]
        assert summarize(metas) == {"m": [["v", 1]]}

    def test_empty(self) -> None:
        assert summarize([]) == {}

    def test_list_elements_counted_per_occurrence(self) -> None:
        assert summarize([{"t": ["a", "a", "b"]}]) == {"t": [["a", 2], ["b", 1]]}


# ----------------------------------------------------------------------------------------- batch edits


def apply(meta: dict[str, Any], updates: list[Any] | None = None, deletes: list[Any] | None = None) -> Any:
    checked_updates, checked_deletes = validate_metadata_changes(updates, deletes)
    return apply_metadata_changes(meta, checked_updates, checked_deletes)


class TestUpdates:
    def test_set_without_match_overwrites_and_creates(self) -> None:
        assert apply({"a": "x"}, [{"key": "a", "value": "y"}]) == ({"a": "y"}, True)
        assert apply({"a": "x"}, [{"key": "b", "value": 2}]) == ({"a": "x", "b": 2}, True)
        assert apply({"t": ["x", "y"]}, [{"key": "t", "value": "z"}]) == ({"t": "z"}, True)
        assert apply({}, [{"key": "t", "value": ["a", "b", "a"]}]) == ({"t": ["a", "b"]}, True)
        assert apply({"a": "x"}, [{"key": "a", "value": "x"}]) == ({"a": "x"}, False)

    def test_null_match_is_no_match(self) -> None:
        assert apply({"a": "x"}, [{"key": "a", "value": "y", "match": None}]) == ({"a": "y"}, True)

    def test_match_scalar(self) -> None:
        assert apply({"a": "alice"}, [{"key": "a", "match": "alice", "value": "bob"}]) == ({"a": "bob"}, True)
        assert apply({"a": "alice"}, [{"key": "a", "match": "carol", "value": "bob"}]) == ({"a": "alice"}, False)
        assert apply({"a": "Alice"}, [{"key": "a", "match": "alice", "value": "bob"}]) == ({"a": "Alice"}, False)
        assert apply({"n": 10}, [{"key": "n", "match": "10", "value": 11}]) == ({"n": 11}, True)
        assert apply({"n": 10}, [{"key": "n", "match": "10.0", "value": 11}]) == ({"n": 11}, True)

    def test_match_on_missing_key_does_nothing(self) -> None:
        assert apply({"a": "x"}, [{"key": "b", "match": "x", "value": "y"}]) == ({"a": "x"}, False)

    def test_match_list_replaces_elements(self) -> None:
        meta = {"tags": ["foo", "bar", "foo"]}
        assert apply(meta, [{"key": "tags", "match": "foo", "value": "foo_new"}]) == (
            {"tags": ["foo_new", "bar"]},
            True,
        )
        assert apply(meta, [{"key": "tags", "match": "baz", "value": "x"}]) == (meta, False)
        assert apply(meta, [{"key": "tags", "match": "foo", "value": "bar"}]) == ({"tags": ["bar"]}, True)
        assert apply(meta, [{"key": "tags", "match": "bar", "value": ["x", "foo"]}]) == ({"tags": ["foo", "x"]}, True)

    def test_updates_apply_in_order(self) -> None:
        updates = [{"key": "a", "value": "1"}, {"key": "a", "match": "1", "value": "2"}]
        assert apply({}, updates) == ({"a": "2"}, True)

    def test_input_untouched(self) -> None:
        meta = {"tags": ["foo"], "a": "x"}
        new, changed = apply(meta, [{"key": "tags", "match": "foo", "value": "bar"}], [{"key": "a"}])
        assert changed and new == {"tags": ["bar"]}
        assert meta == {"tags": ["foo"], "a": "x"}

    def test_value_list_is_copied(self) -> None:
        value = ["a"]
        new, _ = apply({}, [{"key": "t", "value": value}])
        value.append("b")
        assert new == {"t": ["a"]}

    def test_none_meta(self) -> None:
        assert apply_metadata_changes(None, [{"key": "a", "value": 1}], []) == ({"a": 1}, True)
        assert apply_metadata_changes(None, [], []) == ({}, False)


class TestDeletes:
    def test_delete_key(self) -> None:
        assert apply({"a": "x", "b": 1}, deletes=[{"key": "a"}]) == ({"b": 1}, True)
        assert apply({"t": ["x", "y"]}, deletes=[{"key": "t"}]) == ({}, True)
        assert apply({"a": "x"}, deletes=[{"key": "zzz"}]) == ({"a": "x"}, False)
        assert apply({"a": "x"}, deletes=[{"key": "a", "value": None}]) == ({}, True)

    def test_delete_matching_scalar(self) -> None:
        assert apply({"author": "alice"}, deletes=[{"key": "author", "value": "alice"}]) == ({}, True)
        assert apply({"author": "alice"}, deletes=[{"key": "author", "value": "bob"}]) == ({"author": "alice"}, False)
        assert apply({"n": 3}, deletes=[{"key": "n", "value": "3"}]) == ({}, True)

    def test_delete_list_elements(self) -> None:
        assert apply({"t": ["a", "b", "a"]}, deletes=[{"key": "t", "value": "a"}]) == ({"t": ["b"]}, True)
        assert apply({"t": ["a"]}, deletes=[{"key": "t", "value": "a"}]) == ({}, True)
        assert apply({"t": ["a"]}, deletes=[{"key": "t", "value": "z"}]) == ({"t": ["a"]}, False)

    def test_spec_example(self) -> None:
        meta = {"author": "alice", "tags": ["foo", "bar"], "obsolete_key": 1}
        result = apply(
            meta,
            [{"key": "tags", "match": "foo", "value": "foo_new"}],
            [{"key": "obsolete_key"}, {"key": "author", "value": "alice"}],
        )
        assert result == ({"tags": ["foo_new", "bar"]}, True)

    def test_updates_before_deletes(self) -> None:
        assert apply({}, [{"key": "a", "value": "x"}], [{"key": "a", "value": "x"}]) == ({}, False)


class TestValidateChanges:
    def test_none_is_empty(self) -> None:
        assert validate_metadata_changes(None, None) == ([], [])

    def test_returns_copies(self) -> None:
        update = {"key": "a", "value": "b"}
        updates, _ = validate_metadata_changes([update], [])
        assert updates == [update] and updates[0] is not update

    @pytest.mark.parametrize(
        ("updates", "deletes", "message"),
        [
            ({"key": "a"}, [], "updates and deletes must be lists."),
            ([], "a", "updates and deletes must be lists."),
            (["a"], [], "Each update requires key and value."),
            ([{"key": "", "value": "x"}], [], "Each update requires key and value."),
            ([{"key": 1, "value": "x"}], [], "Each update requires key and value."),
            ([{"key": "a"}], [], "Each update requires key and value."),
            ([{"key": "a", "value": None}], [], "Each update requires key and value."),
            ([{"value": "x"}], [], "Each update requires key and value."),
            ([], [{"x": "y"}], "Each delete requires key."),
            ([], [{"key": " "}], "Each delete requires key."),
            ([], ["a"], "Each delete requires key."),
            ([{"key": "a", "value": {"x": 1}}], [], "value for 'a' must not be a nested object."),
            ([{"key": "a", "value": [[1]]}], [], "value for 'a' must be a flat list of strings, numbers or booleans."),
            ([{"key": "a", "value": "x", "match": ["y"]}], [], "match for 'a' must be a string, number or boolean."),
            ([], [{"key": "a", "value": ["y"]}], "value to delete from 'a' must be a string, number or boolean."),
        ],
    )
    def test_errors(self, updates: Any, deletes: Any, message: str) -> None:
        with pytest.raises(MetadataConditionError) as caught:
            validate_metadata_changes(updates, deletes)
        assert str(caught.value) == message


# ------------------------------------------------------------------------------------------ meta_fields


class TestValidateMetaFields:
    def test_accepts_scalars_and_flat_lists(self) -> None:
        value = {"author": "bob", "year": 2024, "score": 0.5, "draft": False, "tags": ["a", 1, True], "none": []}
        checked = validate_meta_fields(value)
        assert checked == value
        assert checked is not value and checked["tags"] is not value["tags"]

    def test_empty_dict(self) -> None:
        assert validate_meta_fields({}) == {}

    @pytest.mark.parametrize("value", ["test", [], None, 1, [("a", 1)]])
    def test_not_a_dict(self, value: object) -> None:
        with pytest.raises(MetadataConditionError, match=r"^meta_fields must be a dictionary$"):
            validate_meta_fields(value)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ({"a": {"b": 1}}, "meta_fields['a'] must not be a nested object."),
            ({"a": [{"b": 1}]}, "meta_fields['a'] must be a flat list of strings, numbers or booleans."),
            ({"a": [[1]]}, "meta_fields['a'] must be a flat list of strings, numbers or booleans."),
            ({"a": None}, "meta_fields['a'] must be a string, number, boolean or a list of them."),
            ({"a": [None]}, "meta_fields['a'] must be a string, number, boolean or a list of them."),
            ({"a": float("nan")}, "meta_fields['a'] must be a string, number, boolean or a list of them."),
            ({"a": [float("inf")]}, "meta_fields['a'] must be a string, number, boolean or a list of them."),
            ({"": "x"}, "meta_fields keys must be non-empty strings."),
            ({"  ": "x"}, "meta_fields keys must be non-empty strings."),
            ({1: "x"}, "meta_fields keys must be non-empty strings."),
        ],
    )
    def test_rejects(self, value: dict[Any, Any], message: str) -> None:
        with pytest.raises(MetadataConditionError) as caught:
            validate_meta_fields(value)
        assert str(caught.value) == message

    def test_key_length(self) -> None:
        assert validate_meta_fields({"k" * 255: 1}) == {"k" * 255: 1}
        with pytest.raises(MetadataConditionError, match="longer than 255 characters"):
            validate_meta_fields({"k" * 256: 1})
