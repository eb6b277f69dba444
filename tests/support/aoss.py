"""A strict stand-in for an OpenSearch Serverless (AOSS) VECTORSEARCH collection, in front of osmem-server.

osmem-server accepts everything a self-managed OpenSearch accepts; AOSS does not. ``StrictAoss`` is a small
HTTP proxy (threaded, loopback, keep-alive) that answers the requests AOSS refuses the way AOSS answers
them, forwards the rest to osmem-server, and makes writes searchable only after a delay.

What it refuses, and how (sources: AWS "Supported operations and plugins in Amazon OpenSearch Serverless"
and the client reports named below; where no AOSS body could be found the choice is marked *inferred*):

* a chosen ``_id`` on index/create (``PUT/POST <index>/_doc/<id>``, ``<index>/_create/<id>``, a bulk
  ``index``/``create`` line with ``_id``): 400 ``illegal_argument_exception`` "Document ID is not
  supported in create/index operation request" — the whole request for the single-document APIs
  (opensearch-py #792), a 400 item in an otherwise 200 bulk answer (langchainjs #4346);
* updates, which always name an ``_id`` (``POST <index>/_update/<id>``, bulk ``update`` lines, and with
  them update scripts): the same error with "update operation request" (*inferred* wording);
* ``refresh=true`` / ``refresh`` / ``refresh=wait_for`` on any request: 400 ``status_exception``
  "true refresh policy is not supported." (opensearch-ruby #131; the ``wait_for`` wording is *inferred*);
* any API off AOSS's supported list — ``_delete_by_query`` (opensearch-java #1112), ``_refresh``
  (opensearch-py #646), ``_search/scroll`` (opensearch-hadoop #691), ``_update_by_query``, ``_msearch``
  (not confirmed on the list from a source we could read, so refused until it is), ``GET /`` …: 404 with
  an empty body, as AOSS answers them;
* the ``scroll`` parameter of a search: AOSS *ignores* it and fails only the continuation (opensearch-hadoop
  #691), which silently truncates a scan after its first page; the stand-in refuses the first request with
  the same 404 so such a client fails at once (stricter than AOSS, on purpose);
* a script anywhere in a search body (script query, ``script_score``, script fields, script sort): 400
  ``illegal_argument_exception`` "cannot execute [inline] scripts", OpenSearch's own answer when scripts
  are disabled (the AOSS body is *inferred*);
* a request body over 10 MiB: 413 ``{"Message": "Request size exceeded 10485760 bytes"}``, the AWS front
  end's answer to an oversized payload (reported for Amazon OpenSearch Service, e.g. open-metadata #15258).

Write visibility. AOSS makes writes searchable after a refresh the client can't ask for. Here a write is
visible ``visibility_delay_s`` after it was accepted (default ``DEFAULT_VISIBILITY_DELAY_S``):

* indexed documents are written to osmem-server at once — so mapping errors come back in the answer, as on
  AOSS — under an ``_id`` the stand-in assigns (osmem-server then needs no id of its own), and every search
  or count until the delay has passed carries ``must_not: ids[...]`` around its query (a ``bool`` with one
  ``must`` clause scores exactly as the query alone), so hits, ``size``/``k`` and totals are those of a
  collection without them. (Term statistics still count them: BM25 scores may differ slightly meanwhile;
  a URI search's ``q=`` parameter is not wrapped.)
  A search holds a shared lock from reading the hidden ids to its answer, a write an exclusive one from
  hiding its ids to osmem-server's answer, so no search sees a document its hidden ids didn't cover.
* deletes are answered at once (``deleted``, or ``not_found`` for a document that doesn't exist or is
  already being deleted) and applied to osmem-server when their delay has passed (checked before every
  request), so the document stays searchable until then.

``settle()`` waits until every write accepted so far is visible (the tests' stand-in for AOSS's refresh
interval having passed); ``refusals`` lists what was refused, so a suite can assert its client never asked
for anything AOSS refuses.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit

#: AOSS refuses request bodies above 10 MiB.
MAX_BODY_BYTES: Final = 10 * 1024 * 1024
#: How long a write takes to become searchable unless told otherwise (AOSS: seconds, not milliseconds).
DEFAULT_VISIBILITY_DELAY_S: Final = 3.0

ID_NOT_SUPPORTED: Final = "Document ID is not supported in create/index operation request"
UPDATE_ID_NOT_SUPPORTED: Final = "Document ID is not supported in update operation request"
TOO_LARGE: Final = {"Message": f"Request size exceeded {MAX_BODY_BYTES} bytes"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any) -> Answer:
        return cls(status, json.dumps(payload).encode(), {"content-type": "application/json; charset=UTF-8"})


@dataclass(frozen=True)
class Refusal:
    """A request the stand-in refused as AOSS would (kept for assertions and diagnostics)."""

    method: str
    path: str
    status: int
    reason: str


def error_body(status: int, kind: str, reason: str) -> dict[str, Any]:
    """OpenSearch's error envelope."""
    return {
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status,
    }


def assigned_id() -> str:
    """An id shaped like the ones OpenSearch assigns (20 URL-safe base64 characters)."""
    return base64.urlsafe_b64encode(os.urandom(15)).decode()


class StrictAoss:
    """The proxy. ``upstream`` is an osmem-server (clone) URL; ``url`` is where clients connect."""

    def __init__(self, upstream: str, *, visibility_delay_s: float = DEFAULT_VISIBILITY_DELAY_S) -> None:
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"not an upstream URL: {upstream!r}")
        self._upstream = (parts.hostname, parts.port)
        self.visibility_delay_s = visibility_delay_s
        self.refusals: list[Refusal] = []
        self._hidden: dict[str, float] = {}  # _id of an indexed document -> when it becomes visible
        self._pending: dict[tuple[str, str], float] = {}  # (index, _id) being deleted -> when that happens
        self._state = threading.Lock()
        self._applying = threading.Lock()
        self._visibility = _ReadWriteLock()
        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="strict-aoss", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StrictAoss:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- time -----------------------------------------------------------------------------------------
    def settle(self) -> None:
        """Wait until every write accepted so far is searchable (and every delete has happened)."""
        while True:
            with self._state:
                due = max([*self._hidden.values(), *self._pending.values()], default=None)
            if due is None:
                return
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._apply_due()

    def _apply_due(self) -> None:
        """Forget documents that became visible and carry out the deletes whose time has come (in order,
        before the request that triggered this is served, so it can't see a document that is gone)."""
        with self._applying:
            now = time.monotonic()
            with self._state:
                self._hidden = {doc_id: at for doc_id, at in self._hidden.items() if at > now}
                due = [key for key, at in self._pending.items() if at <= now]
            if not due:
                return
            lines = "".join(json.dumps({"delete": {"_index": index, "_id": doc_id}}) + "\n" for index, doc_id in due)
            self._upstream_request("POST", "/_bulk", lines.encode(), {"content-type": "application/x-ndjson"})
            with self._state:
                for key in due:
                    self._pending.pop(key, None)

    def _hidden_ids(self) -> list[str]:
        now = time.monotonic()
        with self._state:
            return sorted(doc_id for doc_id, at in self._hidden.items() if at > now)

    # -- the request path -----------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one request: refuse it as AOSS would, or serve it (through osmem-server)."""
        split = urlsplit(target)
        path = split.path
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        refused = self._refusal(method, path, params, body)
        if refused is not None:
            answer, reason = refused
            with self._state:
                self.refusals.append(Refusal(method, path, answer.status, reason))
            return answer
        self._apply_due()
        parts = [part for part in path.split("/") if part]
        return self._route(method, parts, target, params, headers, body)

    def _refusal(self, method: str, path: str, params: Mapping[str, str], body: bytes) -> tuple[Answer, str] | None:
        if len(body) > MAX_BODY_BYTES:
            return Answer.json(413, TOO_LARGE), "request body over 10 MiB"
        if "refresh" in params and params["refresh"].lower() != "false":
            policy = "wait_for" if params["refresh"].lower() == "wait_for" else "true"
            reason = f"{policy} refresh policy is not supported."
            return Answer.json(400, error_body(400, "status_exception", reason)), reason
        if "scroll" in params:
            return Answer(404), "scroll"
        parts = [part for part in path.split("/") if part]
        if not _supported(method, parts):
            return Answer(404), f"{method} {path} is not a supported operation"
        if len(parts) == 3 and parts[1] in ("_doc", "_create") and method in ("PUT", "POST"):
            return Answer.json(400, error_body(400, "illegal_argument_exception", ID_NOT_SUPPORTED)), ID_NOT_SUPPORTED
        if len(parts) == 3 and parts[1] == "_update":
            reason = UPDATE_ID_NOT_SUPPORTED
            return Answer.json(400, error_body(400, "illegal_argument_exception", reason)), reason
        if parts and parts[-1] in ("_search", "_count") and body:
            script = _find_script(_json(body))
            if script is not None:
                reason = f"cannot execute [{script}] scripts"
                return Answer.json(400, error_body(400, "illegal_argument_exception", reason)), reason
        return None

    def _route(
        self,
        method: str,
        parts: Sequence[str],
        target: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        if parts[-1] == "_bulk":
            return self._bulk(parts[0] if len(parts) == 2 else None, target, body)
        if parts[-1] in ("_search", "_count"):
            return self._search(method, target, headers, body)
        if len(parts) == 2 and parts[1] == "_doc":  # POST <index>/_doc: an id is assigned
            return self._index_one(parts[0], params, body)
        if len(parts) == 3 and parts[1] == "_doc" and method == "DELETE":
            return self._delete_one(parts[0], parts[2])
        if len(parts) == 3 and parts[1] == "_doc" and (parts[0], parts[2]) in self._pending:  # GET: being deleted
            return Answer.json(404, {"_index": parts[0], "_id": parts[2], "found": False})
        if len(parts) == 1 and method == "DELETE":
            with self._state:
                self._pending = {key: at for key, at in self._pending.items() if key[0] != parts[0]}
        return self._forward(method, target, headers, body)

    # -- writes ---------------------------------------------------------------------------------------
    def _bulk(self, default_index: str | None, target: str, body: bytes) -> Answer:
        lines = [line for line in body.split(b"\n") if line.strip()]
        items: list[dict[str, Any] | None] = []  # None: filled from osmem-server's answer, in order
        forwarded: list[bytes] = []
        deletes: list[tuple[int, str, str]] = []
        position = 0
        while position < len(lines):
            action = _json(lines[position])
            if not isinstance(action, dict) or len(action) != 1:
                return _bad_request(f"Malformed action/metadata line [{position + 1}]")
            op, meta = next(iter(action.items()))
            index = meta.get("_index") or default_index if isinstance(meta, dict) else None
            if op not in ("index", "create", "update", "delete") or not isinstance(meta, dict):
                return _bad_request(
                    f"Malformed action/metadata line [{position + 1}], expected one of [create, delete, index, "
                    f"update] but found [{op}]"
                )
            if not index:
                return _bad_request("Validation Failed: 1: index is missing;", "action_request_validation_exception")
            position += 1
            if op == "delete":
                if "_id" not in meta:
                    return _bad_request("Validation Failed: 1: id is missing;", "action_request_validation_exception")
                deletes.append((len(items), str(index), str(meta["_id"])))
                items.append({})
                continue
            if position >= len(lines):
                return _bad_request(f"The bulk request must be terminated by a newline [{op} without a source]")
            source = lines[position]
            position += 1
            if op == "update" or "_id" in meta:
                reason = UPDATE_ID_NOT_SUPPORTED if op == "update" else ID_NOT_SUPPORTED
                with self._state:
                    self.refusals.append(Refusal("POST", target, 400, reason))
                items.append(
                    {
                        op: {
                            "_index": index,
                            "_id": str(meta.get("_id", "")),
                            "status": 400,
                            "error": {"type": "illegal_argument_exception", "reason": reason},
                        }
                    }
                )
                continue
            doc_id = assigned_id()
            forwarded += [json.dumps({op: {**meta, "_index": index, "_id": doc_id}}).encode(), source]
            items.append(None)
        started = time.monotonic()
        upstream_items: Iterator[dict[str, Any]] = iter(())
        if forwarded:
            with self._visibility.writing():
                for line in forwarded[0::2]:
                    self._hide(next(iter(json.loads(line).values()))["_id"])
                answer = self._upstream_request(
                    "POST", "/_bulk", b"\n".join(forwarded) + b"\n", {"content-type": "application/x-ndjson"}
                )
            if answer.status != 200:
                return answer
            upstream_items = iter(_json(answer.body)["items"])
        for slot, item in self._delete_many([(index, doc_id) for _, index, doc_id in deletes]):
            items[deletes[slot][0]] = item
        merged = [item if item is not None else next(upstream_items) for item in items]
        errors = any("error" in next(iter(item.values())) for item in merged)
        took = int((time.monotonic() - started) * 1000)
        return Answer.json(200, {"took": took, "errors": errors, "items": merged})

    def _index_one(self, index: str, params: Mapping[str, str], body: bytes) -> Answer:
        doc_id = assigned_id()
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
        target = f"/{index}/_doc/{doc_id}" + (f"?{query}" if query else "")
        with self._visibility.writing():
            self._hide(doc_id)
            return self._upstream_request("PUT", target, body, {"content-type": "application/json"})

    def _delete_one(self, index: str, doc_id: str) -> Answer:
        ((_, item),) = self._delete_many([(index, doc_id)])
        result = item["delete"]
        return Answer.json(result.pop("status"), result)

    def _delete_many(self, targets: Sequence[tuple[str, str]]) -> list[tuple[int, dict[str, Any]]]:
        """Answer deletes now and schedule them for when the delay has passed; (slot, bulk item) each."""
        if not targets:
            return []
        existing = self._existing(targets)
        answers = []
        with self._state:
            due = time.monotonic() + self.visibility_delay_s
            for slot, key in enumerate(targets):
                found = key in existing and key not in self._pending
                if found:
                    self._pending[key] = due
                answers.append((slot, _delete_item(key, found)))
        return answers

    def _existing(self, targets: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        by_index: dict[str, list[str]] = {}
        for index, doc_id in targets:
            by_index.setdefault(index, []).append(doc_id)
        found: set[tuple[str, str]] = set()
        for index, ids in by_index.items():
            body = {"size": len(ids), "_source": False, "query": {"ids": {"values": ids}}}
            answer = self._upstream_request(
                "POST",
                f"/{quote(index)}/_search?ignore_unavailable=true&allow_no_indices=true",
                json.dumps(body).encode(),
                {"content-type": "application/json"},
            )
            if answer.status == 200:
                found.update((hit["_index"], hit["_id"]) for hit in _json(answer.body)["hits"]["hits"])
        return found

    def _hide(self, doc_id: str) -> None:
        with self._state:
            self._hidden[doc_id] = time.monotonic() + self.visibility_delay_s

    # -- reads ----------------------------------------------------------------------------------------
    def _search(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        with self._visibility.reading():
            hidden = self._hidden_ids()
            request = _json(body) if body else {}
            if hidden and isinstance(request, dict):
                query = request.get("query") or {"match_all": {}}
                request["query"] = {"bool": {"must": [query], "must_not": [{"ids": {"values": hidden}}]}}
                body = json.dumps(request).encode()
                method = "POST"  # a GET with a body is forwarded as the same search
            return self._forward(method, target, headers, body)

    # -- upstream -------------------------------------------------------------------------------------
    def _forward(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        kept = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
        return self._upstream_request(method, target, body, kept)

    def _upstream_request(self, method: str, target: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(method, target, body=body or None, headers=dict(headers))
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, ConnectionError):
                self._local.connection = None  # the keep-alive connection went away: one new try
                if attempt == 2:
                    raise
                continue
            kept = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "content-length")}
            return Answer(response.status, data, kept)
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(*self._upstream, timeout=30)
            self._local.connection = connection
        return connection


class _ReadWriteLock:
    """Shared for searches, exclusive for writes; a waiting writer goes before new readers."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._condition:
            while self._writing or self._writers_waiting:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._condition.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._condition:
                self._writing = False
                self._condition.notify_all()


# == what AOSS serves ==================================================================================
def _supported(method: str, parts: Sequence[str]) -> bool:
    """Whether AOSS serves this method and path at all (its list of supported operations)."""
    if not parts:
        return False  # GET / (cluster info) is not served
    first = parts[0]
    if first == "_cat":
        return method == "GET" and len(parts) >= 2 and parts[1] in ("indices", "aliases", "templates")
    if first == "_bulk":
        return method == "POST" and len(parts) == 1
    if first == "_search":
        return method in ("GET", "POST") and len(parts) == 1
    if first.startswith("_"):
        return False  # _msearch, _refresh, _delete_by_query, _search/scroll, _cluster, _nodes, _tasks ...
    if len(parts) == 1:
        return method in ("GET", "HEAD", "PUT", "DELETE")
    action = parts[1]
    if len(parts) == 2:
        if action in ("_search", "_count"):
            return method in ("GET", "POST")
        if action == "_bulk":
            return method == "POST"
        if action == "_doc":
            return method == "POST"
        if action in ("_mapping", "_mappings", "_settings"):
            return method in ("GET", "PUT")
        return False  # _refresh, _delete_by_query, _update_by_query, _msearch, _flush, _forcemerge ...
    if len(parts) == 3 and action == "_doc":
        return method in ("GET", "HEAD", "PUT", "POST", "DELETE")
    if len(parts) == 3 and action in ("_create", "_update"):
        return method in ("PUT", "POST") if action == "_create" else method == "POST"
    return False


def _find_script(node: Any) -> str | None:
    """``inline`` or ``stored`` when a script appears anywhere in a request body, else None."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "script" and isinstance(value, dict) and "script" in value:
                return _find_script(value)  # the script query: {"script": {"script": {...}}}
            if key == "script":
                return "stored" if isinstance(value, dict) and "id" in value else "inline"
            found = _find_script(value)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _find_script(value)
            if found is not None:
                return found
    return None


def _delete_item(key: tuple[str, str], found: bool) -> dict[str, Any]:
    index, doc_id = key
    return {
        "delete": {
            "_index": index,
            "_id": doc_id,
            "_version": 2 if found else 1,
            "result": "deleted" if found else "not_found",
            "_shards": {"total": 2, "successful": 1, "failed": 0},
            "_seq_no": 0,
            "_primary_term": 1,
            "status": 200 if found else 404,
        }
    }


def _bad_request(reason: str, kind: str = "illegal_argument_exception") -> Answer:
    return Answer.json(400, error_body(400, kind, reason))


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _handler_for(stand_in: StrictAoss) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as two writes: without this, Nagle's algorithm holds the second until
            # the client's delayed ACK (40 ms a response).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("content-encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            answer = stand_in.handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            length_header = answer.headers.get("content-length") if self.command == "HEAD" else None
            self.send_header("content-length", length_header or str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD" and answer.body:
                self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows failures, not every request

    return Handler


@contextmanager
def run_strict_aoss(upstream: str, *, visibility_delay_s: float = DEFAULT_VISIBILITY_DELAY_S) -> Iterator[StrictAoss]:
    """A ``StrictAoss`` in front of ``upstream`` for the duration of the block."""
    stand_in = StrictAoss(upstream, visibility_delay_s=visibility_delay_s).start()
    try:
        yield stand_in
    finally:
        stand_in.close()
