"""Fuzzing the request models of the documents and chunks routes the way a request reaches them: bytes through the
bounded JSON reader (or a query string), then the model. Whatever arrives, the only exceptions are our typed
errors (answered 101/102), and what is accepted is what the services rely on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import FlowlessError
from shared.schemas.chunks import AddChunkRequest, DeleteChunksRequest, ListChunksQuery, UpdateChunkRequest
from shared.schemas.common import PAGING_LIMIT, RequestModel, parse_model
from shared.schemas.documents import (
    DeleteDocumentsRequest,
    DocumentIdsRequest,
    ListDocumentsQuery,
    UpdateDocumentRequest,
)
from shared.schemas.metadata import MetadataUpdateRequest
from shared.schemas.reading import INT64_MAX, check_text, load_json
from tests.support.fuzz import FUZZ, json_text, json_values, scalars, texts, utf8_json

BODY_MODELS: list[type[RequestModel]] = [
    AddChunkRequest,
    UpdateChunkRequest,
    DeleteChunksRequest,
    UpdateDocumentRequest,
    DeleteDocumentsRequest,
    DocumentIdsRequest,
    MetadataUpdateRequest,
]
QUERY_MODELS: list[type[RequestModel]] = [ListDocumentsQuery, ListChunksQuery]

# Keys the models know (and the ones RAGFlow answers specially), so most examples reach the validators.
KEYS = sorted(
    {name for model in BODY_MODELS for name in model.model_fields}
    | {"selector", "metadata_condition", "conditions", "logic", "name", "comparison_operator", "value", "key"}
    | {"match", "document_ids", "chunk_count", "delete_all"}
)
keys = st.one_of(st.sampled_from(KEYS), texts)
# Values shaped like the real ones: id lists, metadata conditions, chunk lists ... and anything else.
plausible = st.one_of(
    json_values(keys),
    st.lists(texts, max_size=4),
    st.lists(st.lists(st.integers(min_value=-1, max_value=6), max_size=6), max_size=3),
    st.fixed_dictionaries(
        {"logic": scalars, "conditions": st.lists(st.dictionaries(keys, json_values(keys), max_size=4), max_size=3)}
    ),
    st.dictionaries(keys, json_values(keys), max_size=4),
)
bodies = st.one_of(st.dictionaries(keys, plausible, max_size=6), json_values(keys))


@pytest.mark.parametrize("model", BODY_MODELS, ids=lambda m: m.__name__)
@FUZZ
@given(payload=bodies)
def test_a_body_is_accepted_or_refused_with_a_typed_error(model: type[RequestModel], payload: Any) -> None:
    try:
        value = load_json(json_text(payload))
    except FlowlessError:
        return
    if not isinstance(value, dict):
        return  # the dependency answers "Invalid request payload" before the model
    try:
        request = parse_model(model, value)
    except FlowlessError as exc:
        assert int(exc.code) in (101, 102), exc
        utf8_json(exc.message)  # the message itself can be answered
        return
    utf8_json(request.model_dump(mode="json"))  # nothing unencodable gets past the reader
    check_accepted(request)


def check_accepted(request: RequestModel) -> None:
    """What the services take for granted about an accepted request."""
    if isinstance(request, AddChunkRequest):
        assert request.content.strip()
        assert all(isinstance(k, str) for k in request.important_keywords)
        assert all(q == q.strip() and q for q in request.questions)
    elif isinstance(request, UpdateChunkRequest):
        changes = request.changes()
        assert set(changes) <= {"content", "important_keywords", "questions", "available", "positions"}
        assert "content" not in changes or changes["content"].strip()
        assert "available" not in changes or isinstance(changes["available"], bool)
        assert all(len(position) == 5 for position in changes.get("positions", []))
    elif isinstance(request, DocumentIdsRequest):
        unique, duplicates = request.unique_ids()
        assert unique and len(set(unique)) == len(unique) and set(unique) == set(request.document_ids)
        repeated = [i for i in unique if request.document_ids.count(i) > 1]
        assert duplicates == [f"Duplicate document ids: {i}" for i in repeated]
    elif isinstance(request, DeleteChunksRequest | DeleteDocumentsRequest):
        ids = request.chunk_ids if isinstance(request, DeleteChunksRequest) else request.ids
        assert ids is None or all(isinstance(i, str) for i in ids)
    elif isinstance(request, UpdateDocumentRequest):
        assert request.name is None or (request.name.strip() and len(request.name.encode()) <= 255)
        assert request.enabled in (None, 0, 1)
        assert request.meta_fields is None or all(isinstance(k, str) and k.strip() for k in request.meta_fields)
    elif isinstance(request, MetadataUpdateRequest):
        updates, deletes = request.change_lists()
        assert all(isinstance(c["key"], str) and c["key"].strip() for c in updates + deletes)
        assert all(c.get("value") is not None for c in updates)
        assert all(isinstance(i, str) for i in request.selector.document_ids)


query_values = st.one_of(
    texts,
    st.integers().map(str),
    st.sampled_from(["0", "1", "30", str(PAGING_LIMIT), str(PAGING_LIMIT + 1), "DONE", "3", "create_time"]),
    json_values(keys).map(json_text),
)
query_keys = st.one_of(
    st.sampled_from(sorted({name for model in QUERY_MODELS for name in model.model_fields})), st.text(max_size=6)
)


@pytest.mark.parametrize("model", QUERY_MODELS, ids=lambda m: m.__name__)
@FUZZ
@given(args=st.dictionaries(query_keys, st.one_of(query_values, st.lists(query_values, min_size=1, max_size=3))))
def test_a_query_string_is_accepted_or_refused_with_a_typed_error(
    model: type[RequestModel], args: dict[str, Any]
) -> None:
    try:
        for value in args.values():
            for text in value if isinstance(value, list) else [value]:
                check_text(text)  # what the query reader applies to each parameter
        query = parse_model(model, args)
    except FlowlessError as exc:
        assert int(exc.code) in (101, 102), exc
        return
    assert isinstance(query, ListDocumentsQuery | ListChunksQuery)
    assert 1 <= query.page <= PAGING_LIMIT  # page 0 reads as the first page
    # page_size 0: an empty page of documents, the default page of chunks (RAGFlow's server)
    assert (0 if isinstance(query, ListDocumentsQuery) else 1) <= query.page_size <= PAGING_LIMIT
    assert (query.page - 1) * query.page_size <= INT64_MAX  # every offset fits the storage drivers
    if isinstance(query, ListDocumentsQuery):
        assert 0 <= query.create_time_from <= INT64_MAX and 0 <= query.create_time_to <= INT64_MAX


@FUZZ
@given(raw=st.one_of(st.binary(max_size=64), texts.map(lambda t: b"{" + t.encode("utf-8", "surrogatepass"))))
def test_any_bytes_are_read_or_refused_with_a_101(raw: bytes) -> None:
    try:
        load_json(raw)
    except FlowlessError as exc:
        assert int(exc.code) == 101
