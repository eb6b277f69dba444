"""RAGFlow server conformance of datasets, documents and chunks through the Lambda handlers: API Gateway events
on DynamoDB and S3 under moto (the search index is the embedded one; OpenSearch has no moto backend). The same
cases as the test_conformance_* modules over HTTP. Parses are recorded by a stand-in for Step Functions and
then run with the steps the state machine runs."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

from shared.container import Container
from shared.repos.tenants import Tenant
from tests.integration.test_parse_step_handlers import FakeLambdaContext, aws_backend, load_event, reload_handler
from tests.integration.test_s3_trigger import RecordingWorkflow

CHAT_MODEL = "conformance-chat@OpenAI-API-Compatible"
MALFORMED = "Malformed JSON syntax: Missing commas/brackets or invalid encoding"
BOUNDARY = "flowless-boundary"


def _group(path: str) -> str:
    parts = path.strip("/").split("/")  # api v1 datasets {id} documents {id} chunks
    if parts[2] == "retrieval":
        return "retrieval"
    if len(parts) <= 4:
        return "datasets"
    return "chunks" if len(parts) >= 7 else "documents"


@dataclass
class Gateway:
    """Sends requests as API Gateway events to the route group's Lambda handler."""

    container: Container
    workflow: RecordingWorkflow
    tenant_id: str
    handlers: dict[str, ModuleType]

    def event(self, method: str, path: str, *, body: bytes | None, content_type: str, query: dict[str, Any]) -> Any:
        event = load_event("datasets_list.json")
        event.update(httpMethod=method, path=path, resource=path, isBase64Encoded=body is not None)
        event["requestContext"].update(httpMethod=method, resourcePath=path, path=f"/api{path}")
        event["requestContext"]["authorizer"].update(principalId=self.tenant_id, tenant_id=self.tenant_id)
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
        multi = {key: value if isinstance(value, list) else [str(value)] for key, value in query.items()}
        event["multiValueQueryStringParameters"] = multi or None
        event["queryStringParameters"] = {key: values[-1] for key, values in multi.items()} or None
        event["body"] = None if body is None else base64.b64encode(body).decode()
        return event

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        **query: Any,
    ) -> dict[str, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        event = self.event(method, path, body=data, content_type=content_type, query=query)
        group = _group(path)
        if group not in self.handlers:
            self.handlers[group] = reload_handler(f"functions.{group}.handler")
        response = self.handlers[group].handler(copy.deepcopy(event), FakeLambdaContext())
        assert response["statusCode"] == 200, response
        answer: dict[str, Any] = json.loads(response["body"])
        return answer

    def upload(self, dataset_id: str, *files: tuple[str, bytes]) -> dict[str, Any]:
        parts = b"".join(
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{quote(name)}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
            for name, data in files
        )
        return self.call(
            "POST",
            f"/api/v1/datasets/{dataset_id}/documents",
            raw=parts + f"--{BOUNDARY}--\r\n".encode(),
            content_type=f"multipart/form-data; boundary={BOUNDARY}",
        )

    def dataset(self, name: str = "docs", **fields: Any) -> dict[str, Any]:
        res = self.call("POST", "/api/v1/datasets", {"name": name, **fields})
        assert res["code"] == 0, res
        data: dict[str, Any] = res["data"]
        return data

    def document(self, dataset_id: str, name: str, data: bytes) -> dict[str, Any]:
        res = self.upload(dataset_id, (name, data))
        assert res["code"] == 0, res
        doc: dict[str, Any] = res["data"][0]
        return doc

    def run_parses(self) -> None:
        """Run the parses started so far, step by step as the state machine does."""
        while self.workflow.started:
            self.container.ingestion.run_task(self.workflow.started.pop(0))

    def docs(self, dataset_id: str, **query: Any) -> list[dict[str, Any]]:
        res = self.call("GET", f"/api/v1/datasets/{dataset_id}/documents", **query)
        assert res["code"] == 0, res
        docs: list[dict[str, Any]] = res["data"]["docs"]
        return docs


@dataclass
class Backend:
    container: Container
    workflow: RecordingWorkflow
    handlers: dict[str, ModuleType]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One moto backend for the module (tests keep apart as tenants of their own)."""
    with aws_backend(tmp_path_factory.mktemp("lambda-conformance") / "index") as container:
        workflow = RecordingWorkflow()
        container.overrides["workflow"] = workflow
        yield Backend(container, workflow, {})


@pytest.fixture
def gw(backend: Backend) -> Gateway:
    """A gateway for a new tenant whose default chat model is set."""
    from shared.repos.tenants import TenantModel

    tenant_id = uuid.uuid1().hex
    model = TenantModel("OpenAI-API-Compatible", "conformance-chat", "chat", "http://127.0.0.1:9/v1", "sk-x")
    tenant = Tenant(id=tenant_id, name="conformance", create_time=1, llm_id=CHAT_MODEL, models=[model])
    backend.container.tenants.create(tenant)
    backend.workflow.started.clear()
    return Gateway(backend.container, backend.workflow, tenant_id, backend.handlers)


# -- defaults -----------------------------------------------------------------------------------------


def test_default_parser_config_reset_and_unknown_keys(gw: Gateway) -> None:
    ds = gw.dataset()
    config = ds["parser_config"]
    assert config["delimiter"] == "\n" and config["topn_tags"] == 3 and config["llm_id"] == CHAT_MODEL
    assert config["image_context_size"] == config["table_context_size"] == 0
    assert config["raptor"]["use_raptor"] is True and config["graphrag"]["use_graphrag"] is True
    qa = gw.dataset("qa", chunk_method="qa")["parser_config"]
    assert qa["raptor"] == {"use_raptor": False} and qa["graphrag"] == {"use_graphrag": False}
    newer = gw.dataset("newer", parser_config={"chunk_token_num": 64, "parent_child": {}, "ext": 1})
    assert newer["parser_config"]["chunk_token_num"] == 64 and "ext" not in newer["parser_config"]
    doc = gw.document(ds["id"], "a.txt", b"text")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}"
    assert gw.call("PUT", url, {"parser_config": doc["parser_config"]})["data"]["parser_config"] == config
    changed = gw.call("PUT", url, {"parser_config": {"chunk_token_num": 9}})["data"]["parser_config"]
    assert changed == {**config, "chunk_token_num": 9}
    assert gw.call("PUT", url, {"parser_config": {}})["data"]["parser_config"] == config


# -- partial success ----------------------------------------------------------------------------------


def test_partial_document_delete_and_parse(gw: Gateway) -> None:
    ds = gw.dataset()
    a = gw.document(ds["id"], "a.txt", b"Alpha text.")
    b = gw.document(ds["id"], "b.txt", b"Beta text.")
    missing = uuid.uuid1().hex
    url = f"/api/v1/datasets/{ds['id']}/documents"
    assert gw.call("DELETE", url, {"ids": [a["id"], missing]}) == {
        "code": 102,
        "message": f"Documents not found: ['{missing}']",
    }
    assert [d["id"] for d in gw.docs(ds["id"])] == [b["id"]]
    parse = gw.call("POST", f"/api/v1/datasets/{ds['id']}/chunks", {"document_ids": [missing, b["id"]]})
    assert parse == {"code": 102, "message": f"Documents not found: ['{missing}']"}
    assert [task["document_id"] for task in gw.workflow.started] == [b["id"]]
    gw.run_parses()
    assert gw.docs(ds["id"])[0]["run"] == "DONE"


def test_partial_chunk_delete_and_clearing_one_document(gw: Gateway) -> None:
    ds = gw.dataset(parser_config={"chunk_token_num": 8, "delimiter": "\n"})
    kept = gw.document(ds["id"], "kept.txt", b"Volcanoes erupt basalt.\nLava cools to rock.\n")
    cleared = gw.document(ds["id"], "cleared.txt", b"Glaciers carve fjords.\nIce sheets retreat.\n")
    gw.call("POST", f"/api/v1/datasets/{ds['id']}/chunks", {"document_ids": [kept["id"], cleared["id"]]})
    gw.run_parses()
    kept_url = f"/api/v1/datasets/{ds['id']}/documents/{kept['id']}/chunks"
    cleared_url = f"/api/v1/datasets/{ds['id']}/documents/{cleared['id']}/chunks"
    kept_ids = [c["id"] for c in gw.call("GET", kept_url)["data"]["chunks"]]
    cleared_ids = [c["id"] for c in gw.call("GET", cleared_url)["data"]["chunks"]]
    assert len(kept_ids) == len(cleared_ids) == 2
    res = gw.call("DELETE", cleared_url, {"chunk_ids": [cleared_ids[0], "nope"]})
    assert res == {"code": 102, "message": "rm_chunk deleted chunks 1, expect 2"}
    assert gw.call("DELETE", cleared_url, {"chunk_ids": []}) == {"code": 0}
    assert gw.call("GET", cleared_url)["data"]["total"] == 0
    assert [c["id"] for c in gw.call("GET", kept_url)["data"]["chunks"]] == kept_ids
    found = gw.call("POST", "/api/v1/retrieval", {"dataset_ids": [ds["id"]], "question": "basalt lava"})
    assert found["code"] == 0 and {c["document_id"] for c in found["data"]["chunks"]} == {kept["id"]}


# -- leniency and strictness --------------------------------------------------------------------------


def test_leniency(gw: Gateway) -> None:
    ds = gw.dataset()
    res = gw.upload(ds["id"], ("empty.txt", b""), ("Report.txt", b"report"), ("draft.txt", b"draft"))
    assert res["code"] == 0 and res["data"][0]["size"] == 0
    names = [d["name"] for d in gw.docs(ds["id"], page=0, page_size=10, unknown="x")]
    assert sorted(names) == ["Report.txt", "draft.txt", "empty.txt"]
    assert gw.docs(ds["id"], page_size=0) == []
    draft = next(d for d in res["data"] if d["name"] == "draft.txt")
    url = f"/api/v1/datasets/{ds['id']}/documents/{draft['id']}"
    assert gw.call("PUT", url, {"name": "REPORT.txt"})["data"]["name"] == "REPORT.txt"
    graph = gw.call("PUT", url, {"chunk_method": "knowledge_graph"})
    assert graph["code"] == 0 and graph["data"]["parser_config"]["chunk_token_num"] == 8192
    gw.call("POST", f"/api/v1/datasets/{ds['id']}/chunks", {"document_ids": [res["data"][0]["id"], draft["id"]]})
    gw.run_parses()
    runs = {d["name"]: (d["run"], d["progress_msg"]) for d in gw.docs(ds["id"])}
    assert runs["REPORT.txt"][0] == "DONE"
    assert runs["empty.txt"][0] == "FAIL" and "empty.txt: the file is empty" in runs["empty.txt"][1]
    chunks = f"{url}/chunks"
    assert gw.call("GET", chunks, page=0, page_size=0)["data"]["total"] == 1
    added = gw.call("POST", chunks, {"content": "c", "important_keywords": [""]})
    assert added["data"]["chunk"]["important_keywords"] == [""]
    assert gw.call("POST", chunks, {"content": "c", "important_keywords": [1]})["code"] == 101
    gw.dataset("other")
    listed = gw.call("GET", "/api/v1/datasets", name="")
    assert listed["code"] == 0 and listed["total"] == 2
    for permission in ("ME", " me ", None):
        refused = gw.call("POST", "/api/v1/datasets", {"name": "p", "permission": permission})
        assert refused["code"] == 101 and "Input should be 'me' or 'team'" in refused["message"]


# -- messages -----------------------------------------------------------------------------------------


def test_messages(gw: Gateway) -> None:
    ds = gw.dataset("Papers")
    assert gw.dataset("papers")["name"] == "papers(1)"
    assert gw.dataset("PAPERS")["name"] == "PAPERS(2)"
    clash = gw.call("PUT", f"/api/v1/datasets/{ds['id']}", {"name": "PAPERS(1)"})
    assert clash == {"code": 102, "message": "Dataset name 'PAPERS(1)' already exists"}
    bad = gw.call("DELETE", "/api/v1/datasets", {"ids": [uuid.uuid4().hex]})
    assert bad["code"] == 101 and "Message: <Invalid UUID1 format>" in bad["message"]
    assert gw.call("DELETE", "/api/v1/datasets", raw=b"") == {"code": 101, "message": MALFORMED}
    assert gw.call("PUT", f"/api/v1/datasets/{ds['id']}", raw=b"") == {"code": 101, "message": MALFORMED}
    doc = gw.document(ds["id"], "a.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents"
    assert gw.call("PUT", f"{url}/{doc['id']}", {"name": ""}) == {
        "code": 101,
        "message": "The extension of file can't be changed",
    }
    gw.tenant_id = uuid.uuid1().hex  # another tenant
    gw.container.tenants.create(Tenant(id=gw.tenant_id, name="other", create_time=1))
    assert gw.call("GET", url) == {"code": 102, "message": f"You don't own the dataset {ds['id']}. "}
    assert gw.call("DELETE", url, {"ids": [doc["id"]]}) == {
        "code": 102,
        "message": f"You don't own the dataset {ds['id']}. ",
    }
    assert gw.call("PUT", f"{url}/{doc['id']}", {"name": "b.txt"}) == {
        "code": 102,
        "message": "You don't own the dataset.",
    }
    download = gw.call("GET", f"{url}/{doc['id']}")
    assert download == {"code": 102, "message": f"You do not own the dataset {ds['id']}."}


# -- newer clients ------------------------------------------------------------------------------------


def test_delete_all_false_never_wipes(gw: Gateway) -> None:
    ds = gw.dataset()
    doc = gw.document(ds["id"], "a.txt", b"x")
    chunks = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
    chunk = gw.call("POST", chunks, {"content": "kept"})["data"]["chunk"]
    v027_default = {"ids": None, "delete_all": False}
    assert gw.call("DELETE", "/api/v1/datasets", v027_default) == {"code": 0}
    assert gw.call("DELETE", f"/api/v1/datasets/{ds['id']}/documents", v027_default) == {"code": 0}
    assert gw.call("DELETE", chunks, {"chunk_ids": None, "delete_all": False}) == {"code": 0}
    assert [c["id"] for c in gw.call("GET", chunks)["data"]["chunks"]] == [chunk["id"]]
    assert gw.call("DELETE", chunks, {"delete_all": True}) == {"code": 0}
    assert gw.call("GET", chunks)["data"]["total"] == 0
    assert gw.call("DELETE", "/api/v1/datasets", {"delete_all": True}) == {"code": 0}
    assert gw.call("GET", "/api/v1/datasets")["total"] == 0


# -- chunk listing ------------------------------------------------------------------------------------


def test_chunk_listing_keywords_and_page_size(gw: Gateway) -> None:
    ds = gw.dataset(parser_config={"chunk_token_num": 8, "delimiter": "\n"})
    text = "Basalt forms from lava.\nRivers carry sediment.\n" + "".join(f"Filler line {n}.\n" for n in range(30))
    doc = gw.document(ds["id"], "volcano-notes.txt", text.encode())
    gw.call("POST", f"/api/v1/datasets/{ds['id']}/chunks", {"document_ids": [doc["id"]]})
    gw.run_parses()
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
    gw.call("POST", url, {"content": "A hand-written note."})
    page = gw.call("GET", url)["data"]
    assert page["total"] == 33 and len(page["chunks"]) == 30  # 30 a page by default
    by_title = gw.call("GET", url, keywords="volcano", page_size=100)["data"]
    assert by_title["total"] == 32 and "A hand-written note." not in [c["content"] for c in by_title["chunks"]]
    assert [c["content"] for c in gw.call("GET", url, keywords="rivers")["data"]["chunks"]] == [
        "Rivers carry sediment."
    ]


def test_retrieval_top_k_bounds_the_vector_candidates_only(gw: Gateway) -> None:
    ds = gw.dataset()
    doc = gw.document(ds["id"], "rocks.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
    pumice = [f"Pumice sample {n} floats on water." for n in range(4)]
    for content in [*pumice, "Granite is dense.", "Marble is metamorphic."]:
        gw.call("POST", url, {"content": content})
    body = {"dataset_ids": [ds["id"]], "question": "pumice", "top_k": 1, "similarity_threshold": 0}
    found = [c["content"] for c in gw.call("POST", "/api/v1/retrieval", body)["data"]["chunks"]]
    assert set(pumice) <= set(found) and len(found) <= 5
