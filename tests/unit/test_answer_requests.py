"""The request models of retrieval and answers (shared/schemas/retrieval.py, completions.py): RAGFlow's
leniencies, its messages and codes, and the first problem deciding the answer."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_core import PydanticCustomError

from shared.errors import ArgumentError, DataError, FlowlessError
from shared.rag.metadata import MetadataCondition
from shared.schemas.common import parse_model
from shared.schemas.completions import CompletionRequest, OpenAICompletionRequest
from shared.schemas.retrieval import RetrievalRequest, ragflow_number

BASE = {"question": "q", "dataset_ids": ["d"]}


def _refusal(model: type[Any], payload: dict[str, Any]) -> FlowlessError:
    with pytest.raises(FlowlessError) as caught:
        parse_model(model, payload)
    return caught.value


@pytest.mark.parametrize(
    ("value", "integer", "expected"),
    [("2", True, 2), (2.0, True, 2), (3, False, 3.0), ("0.5", False, 0.5), (1, True, 1)],
)
def test_numbers_read_as_ragflows_int_and_float(value: Any, integer: bool, expected: float) -> None:
    number = ragflow_number("n", value, 0, 10, integer=integer)
    assert number == expected and isinstance(number, int if integer else float)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "`n` should be a number"),
        (None, "`n` should be a number"),
        ("1e3", "`n` should be a number"),
        ("9" * 5000, "`n` should be a number"),
        (2.5, "`n` should be an integer"),
        (float("inf"), "`n` should be an integer"),
        (11, "`n` should be between 0 and 10"),
    ],
)
def test_integers_refused_with_ragflows_messages(value: Any, message: str) -> None:
    with pytest.raises(PydanticCustomError) as caught:
        ragflow_number("n", value, 0, 10, integer=True)
    assert caught.value.message() == message


def test_retrieval_defaults_and_deduplication() -> None:
    request = parse_model(RetrievalRequest, {**BASE, "dataset_ids": ["a", "b", "a"], "document_ids": ["x", "x"]})
    assert request.dataset_ids == ["a", "b"] and request.document_ids == ["x"]
    assert (request.page, request.page_size, request.top_k) == (1, 30, 1024)
    assert request.metadata_condition is None and request.rerank_id is None
    assert not (request.keyword or request.highlight or request.use_kg or request.toc_enhance)


def test_retrieval_reads_the_metadata_condition_once() -> None:
    condition = {"logic": "OR", "conditions": [{"name": "a", "comparison_operator": "is", "value": 1}]}
    request = parse_model(RetrievalRequest, {**BASE, "metadata_condition": condition})
    assert isinstance(request.metadata_condition, MetadataCondition)
    assert request.metadata_condition.logic == "or" and request.metadata_condition.comparisons[0].operator == "="
    # an already-read condition passes through (the completion service builds its retrieval request with it)
    again = RetrievalRequest(question="q", dataset_ids=["d"], metadata_condition=request.metadata_condition)
    assert again.metadata_condition is request.metadata_condition


def test_the_first_problem_decides_in_ragflows_order() -> None:
    error = _refusal(RetrievalRequest, {"question": 5, "dataset_ids": "x", "page": "no"})
    assert isinstance(error, DataError) and error.message == "`dataset_ids` should be a list"
    error = _refusal(RetrievalRequest, {**BASE, "page": "no", "keyword": "yes"})
    assert error.message == "`page` should be a number"


def test_completion_keeps_other_keys_for_the_prompt_variables() -> None:
    request = parse_model(CompletionRequest, {"question": "q", "tone": "dry", "session_id": ""})
    assert request.prompt_values() == {"tone": "dry"} and request.session_id is None and request.stream is True
    assert parse_model(CompletionRequest, {"question": "q", "stream": None}).stream is False


def test_openai_required_arguments_come_first() -> None:
    error = _refusal(OpenAICompletionRequest, {"model": None, "stream": "yes"})
    assert isinstance(error, ArgumentError) and error.message == "required argument are missing: model,messages; "


def test_openai_messages_and_extra_body() -> None:
    request = parse_model(
        OpenAICompletionRequest,
        {
            "model": "m",
            "messages": [{"role": "system", "content": None}, {"role": "user", "content": [{"text": "hi"}]}],
            "extra_body": None,
            "temperature": 0.2,
        },
    )
    assert [turn.text() for turn in request.messages] == ["", "hi"]
    assert request.extra_body.reference is False and request.extra_body.metadata_condition is None
