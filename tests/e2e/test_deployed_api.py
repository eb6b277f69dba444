"""Against a deployed stack: FLOWLESS_E2E_URL (the API's base URL) and FLOWLESS_E2E_API_KEY (a tenant key from
`flowless tenant create --table ...`). Skipped when they are not set, so CI never needs an AWS account."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

URL = os.environ.get("FLOWLESS_E2E_URL")
KEY = os.environ.get("FLOWLESS_E2E_API_KEY")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (URL and KEY), reason="set FLOWLESS_E2E_URL and FLOWLESS_E2E_API_KEY to run"),
]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    assert URL and KEY
    with httpx.Client(base_url=URL, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        yield http


def test_health_and_unknown_routes(client: httpx.Client) -> None:
    assert client.get("/v1/system/ping").text == "pong"
    assert client.get("/api/v1/nothing-here").json() == {"code": 100, "message": "<NotFound '404: Not Found'>"}


def test_dataset_round_trip(client: httpx.Client) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    created = client.post("/api/v1/datasets", json={"name": name}).json()
    assert created["code"] == 0, created
    dataset_id = created["data"]["id"]
    try:
        listed = client.get("/api/v1/datasets", params={"id": dataset_id}).json()
        assert listed["data"][0]["name"] == name
        updated = client.put(f"/api/v1/datasets/{dataset_id}", json={"description": "e2e"}).json()
        assert updated["code"] == 0
    finally:
        assert client.request("DELETE", "/api/v1/datasets", json={"ids": [dataset_id]}).json() == {"code": 0}
