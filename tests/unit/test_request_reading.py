"""Reading untrusted JSON (shared.schemas.reading) and turning validation failures into RAGFlow's errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import field_validator

from shared.errors import ArgumentError, DataError, RetCode
from shared.schemas.common import LenientBody, StrictBody, parse_model, refuse
from shared.schemas.reading import JsonLimits, load_json


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_deep_nesting_is_refused_with_101_not_a_recursion_error(depth: int) -> None:
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        with pytest.raises(ArgumentError, match="nested too deeply"):
            load_json(opener * depth + "1" + closer * depth)


def test_nesting_within_the_limit_is_read() -> None:
    value = load_json("[" * 64 + "]" * 64)
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    assert depth == 64


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "a\\ud800b", "\\udc00\\ud800"])
def test_lone_surrogates_are_refused_in_values_and_keys(escape: str) -> None:
    with pytest.raises(ArgumentError, match="lone surrogate"):
        load_json(f'{{"name": "{escape}"}}')
    with pytest.raises(ArgumentError, match="lone surrogate"):
        load_json(f'{{"{escape}": 1}}')


def test_a_valid_surrogate_pair_is_one_character() -> None:
    assert load_json('{"name": "\\ud83d\\ude00"}') == {"name": "\U0001f600"}


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_non_finite_numbers_are_refused(token: str) -> None:
    with pytest.raises(ArgumentError, match="Invalid JSON number"):
        load_json(f'{{"page": {token}}}')


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_refused(value: int) -> None:
    with pytest.raises(ArgumentError, match="Integer out of range"):
        load_json(json.dumps({"page_size": value}))


def test_64_bit_integers_are_read() -> None:
    assert load_json(json.dumps([2**63 - 1, -(2**63)])) == [2**63 - 1, -(2**63)]


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b'{"a": "\xc3"}', b"{", b"", b"{'a': 1}", b"[1,]"])
def test_malformed_bytes_answer_ragflows_message(raw: bytes) -> None:
    with pytest.raises(ArgumentError, match="Malformed JSON syntax"):
        load_json(raw)


def test_string_and_value_count_limits() -> None:
    limits = JsonLimits(max_string_chars=10, max_values=5)
    assert load_json('{"a": "0123456789"}', limits) == {"a": "0123456789"}
    with pytest.raises(ArgumentError, match="too long"):
        load_json('{"a": "01234567890"}', limits)
    with pytest.raises(ArgumentError, match="too many values"):
        load_json("[1, 2, 3, 4, 5]", limits)


class _Strict(StrictBody):
    name: str


class _Retrieval(LenientBody):
    dataset_ids: list[str]

    @field_validator("dataset_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise refuse(RetCode.DATA_ERROR, "`dataset_ids` should be a list {not a template}")
        return value


def test_strict_bodies_refuse_unknown_fields_and_coercion() -> None:
    with pytest.raises(ArgumentError, match=r"Field: <extra> - Message: <Extra inputs are not permitted>"):
        parse_model(_Strict, {"name": "a", "extra": 1})
    with pytest.raises(ArgumentError, match=r"Field: <name> - Message: <Input should be a valid string>"):
        parse_model(_Strict, {"name": 1})


def test_lenient_bodies_ignore_unknown_fields_but_not_wrong_types() -> None:
    assert parse_model(_Retrieval, {"dataset_ids": ["a"], "unknown": 1}).dataset_ids == ["a"]
    with pytest.raises(ArgumentError):
        parse_model(_Retrieval, {"dataset_ids": [1]})


def test_refuse_answers_ragflows_code_and_message_verbatim() -> None:
    with pytest.raises(DataError) as caught:
        parse_model(_Retrieval, {"dataset_ids": "abc"})
    assert caught.value.message == "`dataset_ids` should be a list {not a template}"
    assert caught.value.code == RetCode.DATA_ERROR
