"""The request models of the documents and chunks routes, and the streamed upload reader, below HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message

from functions.api.deps import multipart_files
from shared.errors import ArgumentError, DataError, RequestTooLarge
from shared.schemas.chunks import AddChunkRequest, DeleteChunksRequest, UpdateChunkRequest
from shared.schemas.common import parse_model
from shared.schemas.documents import DocumentIdsRequest, ListDocumentsQuery
from shared.schemas.metadata import MetadataUpdateRequest


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_metadata_condition_nested_deeper_than_any_url_is_a_101(depth: int) -> None:
    condition = '{"conditions": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(ArgumentError, match="nested too deeply"):
        parse_model(ListDocumentsQuery, {"metadata_condition": condition})


def test_a_metadata_condition_is_parsed_once_while_the_query_is_read() -> None:
    condition = '{"logic": "OR", "conditions": [{"name": "a", "comparison_operator": "is", "value": 1}]}'
    query = parse_model(ListDocumentsQuery, {"metadata_condition": condition})
    assert query.metadata_condition is not None and query.metadata_condition.logic == "or"
    assert [(c.name, c.operator, c.value) for c in query.metadata_condition.comparisons] == [("a", "=", 1)]
    assert parse_model(ListDocumentsQuery, {"metadata_condition": "  "}).metadata_condition is None


def test_ids_keep_their_order_and_repeats_are_reported_once() -> None:
    request = parse_model(DocumentIdsRequest, {"document_ids": ["b", "a", "b", "b", "c", "a"]})
    assert request.unique_ids() == (["b", "a", "c"], ["Duplicate document ids: b", "Duplicate document ids: a"])
    chunks = parse_model(DeleteChunksRequest, {"chunk_ids": ["x", "x"]})
    assert chunks.unique_ids() == (["x"], ["Duplicate chunk ids: x"])


@pytest.mark.parametrize("body", [{}, {"document_ids": []}, {"document_ids": None}, {"document_ids": ""}])
def test_document_ids_are_required_with_ragflows_message(body: dict[str, Any]) -> None:
    with pytest.raises(DataError, match=r"^`document_ids` is required$"):
        parse_model(DocumentIdsRequest, body)


def test_an_update_without_content_keeps_it_and_available_becomes_a_boolean() -> None:
    request = parse_model(UpdateChunkRequest, {"content": None, "available": 0, "unknown": 1})
    assert request.changes() == {"available": False}
    assert parse_model(AddChunkRequest, {"content": "c", "questions": [" a ", ""]}).questions == ["a"]


def test_metadata_changes_keep_only_what_the_client_sent() -> None:
    request = parse_model(
        MetadataUpdateRequest,
        {"selector": None, "updates": [{"key": "k", "value": [1, "a"], "extra": 1}], "deletes": [{"key": "d"}]},
    )
    assert request.change_lists() == ([{"key": "k", "value": [1, "a"]}], [{"key": "d"}])
    assert request.selector.document_ids == [] and request.selector.metadata_condition is None


# -- the streamed multipart reader ---------------------------------------------------------------------
def _upload_request(chunks: int, chunk_size: int, pulled: list[int]) -> Request:
    """A multipart request whose body arrives in ``chunks`` pieces; ``pulled`` counts the bytes read from it."""
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
    pieces = [head] + [b"x" * chunk_size] * chunks + [b"\r\n--b--\r\n"]

    async def receive() -> Message:
        body = pieces.pop(0)
        pulled.append(len(body))
        return {"type": "http.request", "body": body, "more_body": bool(pieces)}

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", b"multipart/form-data; boundary=b")]}
    return Request(scope, receive)


async def _sizes(request: Request, max_bytes: int) -> list[int]:
    async with multipart_files(request, "file", max_bytes=max_bytes, max_files=10) as parts:
        return [len(await part.read()) for part in parts]


def test_an_upload_is_read_no_further_than_the_limit() -> None:
    pulled: list[int] = []
    with pytest.raises(RequestTooLarge):
        asyncio.run(_sizes(_upload_request(chunks=10_000, chunk_size=4096, pulled=pulled), max_bytes=64 * 1024))
    assert 64 * 1024 < sum(pulled) <= 64 * 1024 + 4096  # one piece past the limit, of the 40 MB offered


def test_an_upload_within_the_limit_is_read_whole() -> None:
    pulled: list[int] = []
    assert asyncio.run(_sizes(_upload_request(chunks=8, chunk_size=4096, pulled=pulled), max_bytes=64 * 1024)) == [
        8 * 4096
    ]


# -- found by the fuzz suite ------------------------------------------------------------------------------
def test_integers_beyond_a_float_are_ordinary_metadata_values() -> None:
    from shared.rag.metadata import matches, parse_metadata_condition, summarize

    huge = 10**400
    assert summarize([{"n": huge}, {"n": huge}]) == {"n": [[huge, 2]]}
    condition = parse_metadata_condition({"conditions": [{"name": "n", "comparison_operator": ">", "value": 1}]})
    assert matches(condition, {"n": huge}) is False  # not a comparable number: no order, no exception
    same = parse_metadata_condition({"conditions": [{"name": "n", "comparison_operator": "is", "value": huge}]})
    assert matches(same, {"n": huge}) is True


def test_a_metadata_condition_parameter_given_twice_is_a_101() -> None:
    with pytest.raises(ArgumentError, match="metadata_condition"):
        parse_model(ListDocumentsQuery, {"metadata_condition": ["{}", "{}"]})
