"""Retrieval's ``top_k`` as RAGFlow's server applies it, over real HTTP on every backend: it bounds the
vector candidates only (RAGFlow's Elasticsearch k-NN clause); every text match still competes."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import create_dataset, eventually, upload_one


def test_top_k_does_not_cap_text_matches(api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "rocks.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
    pumice = [f"Pumice sample {n} floats on water." for n in range(4)]
    for content in [*pumice, "Granite is dense.", "Marble is metamorphic."]:
        assert api.post(url, json={"content": content}).json()["code"] == 0

    def retrieve(top_k: int) -> list[str]:
        body: dict[str, Any] = {"dataset_ids": [ds["id"]], "question": "pumice", "top_k": top_k}
        res = api.post("/api/v1/retrieval", json={**body, "similarity_threshold": 0}).json()
        assert res["code"] == 0, res
        return [c["content"] for c in res["data"]["chunks"]]

    eventually(lambda: retrieve(1024), lambda contents: len(contents) == 6)  # all six searchable
    found = retrieve(1)
    # the four text matches, and one more chunk at most: the nearest by vector
    assert set(pumice) <= set(found) and len(found) <= 5
