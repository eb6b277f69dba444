"""The chunk list as RAGFlow's server answers it, over real HTTP: 30 chunks a page by default, and ``keywords``
as a full-text match that also finds a parsed chunk through its document's title."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, parse_and_wait, upload_one


@pytest.fixture
def parsed(api: httpx.Client) -> dict[str, Any]:
    ds = create_dataset(api, parser_config={"chunk_token_num": 8, "delimiter": "\n"})
    text = b"Basalt forms from cooling lava.\nGranite cools slowly underground.\nRivers carry sediment downstream.\n"
    doc = parse_and_wait(api, ds["id"], upload_one(api, ds["id"], "volcano-field-notes.txt", text)["id"])
    assert doc["run"] == "DONE" and doc["chunk_count"] == 3
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
    added = api.post(url, json={"content": "A hand-written note about oceans."}).json()["data"]["chunk"]
    return {"url": url, "added": added["id"]}


def _contents(api: httpx.Client, url: str, keywords: str) -> list[str]:
    res = api.get(url, params={"keywords": keywords}).json()
    assert res["code"] == 0, res
    assert res["data"]["total"] == len(res["data"]["chunks"])
    return [c["content"] for c in res["data"]["chunks"]]


def test_keywords_match_a_parsed_chunk_through_its_document_title(api: httpx.Client, parsed: dict[str, Any]) -> None:
    # "volcano" is only in the document's name: every parsed chunk matches, the hand-added one does not
    found = _contents(api, parsed["url"], "volcano")
    assert len(found) == 3 and not any("oceans" in content for content in found)
    assert _contents(api, parsed["url"], "oceans") == ["A hand-written note about oceans."]


def test_keywords_are_a_full_text_match(api: httpx.Client, parsed: dict[str, Any]) -> None:
    assert _contents(api, parsed["url"], "BASALT") == ["Basalt forms from cooling lava."]
    # analyzed as the search index does: stems and stopwords
    assert _contents(api, parsed["url"], "the rivers carried") == ["Rivers carry sediment downstream."]
    # a chunk matches when it holds 30% of the terms, not all of them
    assert _contents(api, parsed["url"], "granite marble quartz slate") == ["Granite cools slowly underground."]
    assert _contents(api, parsed["url"], "marble") == []
    # keywords without a term (only stopwords or punctuation) filter nothing
    assert len(_contents(api, parsed["url"], "the of ?!")) == 4


def test_the_default_page_holds_thirty_chunks(api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "a.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
    for n in range(31):
        assert api.post(url, json={"content": f"chunk number {n}"}).json()["code"] == 0
    data = api.get(url).json()["data"]
    assert data["total"] == 31 and len(data["chunks"]) == 30
    assert [c["content"] for c in api.get(url, params={"page": 2}).json()["data"]["chunks"]] == ["chunk number 30"]
