"""Helpers for file manager tests (``/api/v1/file/*``)."""

from __future__ import annotations

from typing import Any

import httpx


def root(api: httpx.Client) -> dict[str, Any]:
    res = api.get("/api/v1/file/root_folder").json()
    assert res["code"] == 0, res
    folder: dict[str, Any] = res["data"]["root_folder"]
    return folder


def make_folder(api: httpx.Client, name: str, parent_id: str | None = None) -> dict[str, Any]:
    body = {"name": name, "type": "FOLDER", **({"parent_id": parent_id} if parent_id else {})}
    res = api.post("/api/v1/file/create", json=body).json()
    assert res["code"] == 0, res
    folder: dict[str, Any] = res["data"]
    return folder


def upload_files(api: httpx.Client, *files: tuple[str, bytes], parent_id: str | None = None) -> dict[str, Any]:
    parts = [("file", (name, data)) for name, data in files]
    result: dict[str, Any] = api.post(
        "/api/v1/file/upload", files=parts, data={"parent_id": parent_id} if parent_id else None
    ).json()
    return result


def put_file(api: httpx.Client, name: str, data: bytes, parent_id: str | None = None) -> dict[str, Any]:
    res = upload_files(api, (name, data), parent_id=parent_id)
    assert res["code"] == 0, res
    file: dict[str, Any] = res["data"][0]
    return file


def listing(api: httpx.Client, parent_id: str | None = None, **params: Any) -> dict[str, Any]:
    query = {**({"parent_id": parent_id} if parent_id else {}), **params}
    res = api.get("/api/v1/file/list", params=query).json()
    assert res["code"] == 0, res
    data: dict[str, Any] = res["data"]
    return data


def entry(api: httpx.Client, parent_id: str | None, name: str) -> dict[str, Any]:
    """The listed item called ``name`` in a folder."""
    files = listing(api, parent_id, page_size=1000)["files"]
    matches = [f for f in files if f["name"] == name]
    assert matches, [f["name"] for f in files]
    found: dict[str, Any] = matches[0]
    return found


def post(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = api.post(f"/api/v1/file/{path}", json=body).json()
    return result
