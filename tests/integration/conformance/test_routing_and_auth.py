"""RAGFlow's router: a trailing slash is ignored, ``//`` merges into ``/``, 405 for a path served with other
methods and 404 for an unknown one (both before authentication); and a missing Authorization header answered
with a code that is not success."""

from __future__ import annotations

import pytest

from tests.support.conformance import Backend

NOT_FOUND = {"code": 100, "message": "<NotFound '404: Not Found'>"}
NOT_ALLOWED = {"code": 100, "message": "<MethodNotAllowed '405: Method Not Allowed'>"}


def test_a_trailing_slash_is_ignored(ragflow: Backend) -> None:
    api = ragflow.tenant()
    created = api.post("/api/v1/chats/", json={"name": "slash"}).json()
    assert created["code"] == 0, created
    assert api.get("/api/v1/chats/").json() == api.get("/api/v1/chats").json()
    chat = created["data"]["id"]
    assert api.put(f"/api/v1/chats/{chat}/", json={"name": "renamed"}).json() == {"code": 0}
    assert api.post(f"/api/v1/chats/{chat}/sessions/", json={"name": "s"}).json()["code"] == 0
    assert [c["name"] for c in api.get("/api/v1/chats").json()["data"]] == ["renamed"]
    assert api.get("/api/v1/datasets/", params={"page": 1}).json() == {"code": 0, "data": [], "total": 0}


def test_double_slashes_merge(ragflow: Backend) -> None:
    api = ragflow.tenant()
    assert api.post("/api//v1/chats", json={"name": "merged"}).json()["code"] == 0
    assert [c["name"] for c in api.get("/api/v1//chats").json()["data"]] == ["merged"]
    # PUT /datasets//documents reaches PUT /datasets/{dataset_id} with the id "documents"...
    merged = api.put("/api/v1/datasets//documents", json={"name": "x"}).json()
    assert merged == api.put("/api/v1/datasets/documents", json={"name": "x"}).json()
    assert merged["code"] == 101 and "Invalid UUID1 format" in merged["message"]
    # ...and every other method there is one /datasets/{dataset_id} does not serve
    for method in ("GET", "POST", "DELETE"):
        assert api.request(method, "/api/v1/datasets//documents").json() == NOT_ALLOWED, method


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/v1/chats"),
        ("GET", "/api/v1/chats/abc"),
        ("PUT", "/api/v1/chats/abc/sessions"),
        ("GET", "/api/v1/retrieval"),
        ("POST", "/api/v1/datasets/abc"),
        ("DELETE", "/api/v1/chats/abc/sessions/def"),
        ("POST", "/v1/system/healthz"),
    ],
)
def test_a_path_served_with_other_methods_is_405_before_authentication(
    ragflow: Backend, method: str, path: str
) -> None:
    for client in (ragflow.tenant(), ragflow.anonymous()):
        response = client.request(method, path)
        assert response.status_code == 200 and response.json() == NOT_ALLOWED


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nothing"),
        ("POST", "/api/v2/chats"),
        ("GET", "/api/v1/chats/abc/nothing"),
        ("DELETE", "/api/v1/datasets/abc/documents/def/chunks/ghi/jkl"),
        ("GET", "/api/v1"),
    ],
)
def test_an_unknown_path_is_404_before_authentication(ragflow: Backend, method: str, path: str) -> None:
    for client in (ragflow.tenant(), ragflow.anonymous()):
        response = client.request(method, path)
        assert response.status_code == 200 and response.json() == NOT_FOUND


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/chats"),
        ("POST", "/api/v1/chats"),
        ("DELETE", "/api/v1/chats"),
        ("GET", "/api/v1/chats/abc/sessions"),
        ("GET", "/api/v1/datasets"),
        ("POST", "/api/v1/retrieval"),
    ],
)
def test_a_missing_authorization_header_is_code_109(ragflow: Backend, method: str, path: str) -> None:
    # RAGFlow answers code 0 here, which clients read as success: not copied.
    expected = {"code": 109, "message": "`Authorization` can't be empty"}
    assert ragflow.anonymous().request(method, path, json={}).json() == expected
    assert ragflow.anonymous({"Authorization": ""}).request(method, path, json={}).json() == expected


def test_malformed_and_unknown_keys_are_code_109(ragflow: Backend) -> None:
    malformed = ragflow.anonymous({"Authorization": "Bearer"}).get("/api/v1/chats").json()
    assert malformed == {"code": 109, "message": "Please check your authorization format."}
    unknown = ragflow.anonymous({"Authorization": "Bearer ragflow-nope"}).get("/api/v1/chats").json()
    assert unknown == {"code": 109, "message": "Authentication error: API key is invalid!"}
