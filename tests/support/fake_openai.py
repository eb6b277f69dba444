"""A real OpenAI-compatible HTTP server on loopback, for tests that must not mock the client.

It speaks HTTP/1.1 with keep-alive (the ``openai`` client's connection pool reuses connections), checks the
bearer key, records every request, and answers from a route table::

    with FakeOpenAI(api_key="sk-test") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        server.script("/v1/embeddings", Reply.error(500, "boom"))   # the next call fails once
        client.embeddings.create(model="m", input=["hello"])        # retried, then answered
        server.requests[-1].body                                    # what the client sent

Extending it: add a route with :meth:`FakeOpenAI.route` (or subclass and register in ``__init__``). A handler
takes a :class:`Request` and returns a :class:`Reply`; a reply with ``chunks`` is streamed with chunked
transfer encoding, which is how ``/v1/chat/completions`` with ``stream=true`` (server-sent events) will be
served. Chat is not implemented here yet.

Embeddings are deterministic and a little semantic: a hashed bag of words, so texts sharing words have a
positive cosine and a test can compute the expected vector with :meth:`FakeOpenAI.embedding`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_API_KEY = "sk-fake-openai"
DEFAULT_DIMENSION = 64

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Request:
    """One request as the server saw it. ``body`` is the decoded JSON (None when there was none)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any


@dataclass
class Reply:
    """What the server answers: a JSON ``body``, or ``chunks`` streamed as they are produced.

    ``delay`` seconds pass before anything is sent (to trigger client timeouts); ``stop()`` cuts it short.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] | None = None
    delay: float = 0.0

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        *,
        type: str = "server_error",
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Reply:
        """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

        ``headers`` may carry ``retry-after-ms``, which the openai client honours before retrying.
        """
        body = {"error": {"message": message, "type": type, "param": None, "code": code}}
        return cls(status=status, body=body, headers=dict(headers or {}), delay=delay)


Handler = Callable[[Request], Reply]


class FakeOpenAI:
    """An OpenAI-compatible server on ``127.0.0.1`` and a free port, run in a background thread.

    ``api_key``: the bearer key every request must carry (None accepts any). ``dimension``: length of the
    embedding vectors unless the request asks for ``dimensions``. ``models``: when given, the only model
    names served, each with its own dimension; other names get OpenAI's 404 ``model_not_found``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = DEFAULT_API_KEY,
        dimension: int = DEFAULT_DIMENSION,
        models: Mapping[str, int] | None = None,
    ) -> None:
        self.api_key = api_key
        self.dimension = dimension
        self.models = dict(models) if models is not None else None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply]] = {}
        self._routes: dict[tuple[str, str], Handler] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.route("POST", "/v1/embeddings", self.handle_embeddings)
        self.route("GET", "/v1/models", self.handle_models)
        # "/v1/chat/completions" joins here: self.route("POST", "/v1/chat/completions", self.handle_chat).

    # -- control ---------------------------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method path`` with ``handler`` (replacing any earlier one)."""
        self._routes[(method.upper(), path)] = handler

    def script(self, path: str, *replies: Reply) -> None:
        """Queue ``replies`` for ``path``: the next requests to it get them in order, then normal service."""
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(replies)

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    @property
    def base_url(self) -> str:
        """What to pass as the client's ``base_url`` (ends in ``/v1``)."""
        return f"{self.url}/v1"

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeOpenAI:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- behaviour -------------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        """The reply to ``request``: auth first, then a scripted reply if one is queued, else the route."""
        with self._lock:
            self.requests.append(request)
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply.error(401, "Incorrect API key provided.", type="invalid_request_error", code="invalid_api_key")
        with self._lock:
            queued = self._scripts.get(request.path)
            scripted = queued.popleft() if queued else None
        if scripted is not None:
            return scripted
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            return Reply.error(
                404, f"Unknown request URL: {request.method} {request.path}.", type="invalid_request_error"
            )
        return handler(request)

    def handle_embeddings(self, request: Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _invalid("you must provide a model parameter")
        dimension = self.dimension
        if self.models is not None:
            if model not in self.models:
                return Reply.error(
                    404,
                    f"The model `{model}` does not exist or you do not have access to it.",
                    type="invalid_request_error",
                    code="model_not_found",
                )
            dimension = self.models[model]
        requested = body.get("dimensions")
        if requested is not None:
            if not isinstance(requested, int) or not 0 < requested <= dimension:
                return _invalid(f"Invalid 'dimensions': must be between 1 and {dimension}.")
            dimension = requested
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            return _invalid("'$.input' is invalid: expected a non-empty string or list of non-empty strings.")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return _invalid("'encoding_format' must be 'float' or 'base64'.")
        data = []
        for index, text in enumerate(texts):
            vector = self.embedding(text, dimension)
            encoded: list[float] | str = vector
            if encoding == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(max(1, len(_WORD.findall(text))) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Reply(body={"object": "list", "data": data, "model": model, "usage": usage})

    def handle_models(self, request: Request) -> Reply:
        names = sorted(self.models) if self.models is not None else []
        models = [{"id": name, "object": "model", "created": 0, "owned_by": "fake-openai"} for name in names]
        return Reply(body={"object": "list", "data": models})

    @staticmethod
    def embedding(text: str, dimension: int = DEFAULT_DIMENSION) -> list[float]:
        """The unit vector served for ``text``: its lower-cased words hashed into ``dimension`` signed buckets."""
        vector = [0.0] * dimension
        for word in _WORD.findall(text.lower()) or [text]:
            digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            vector[digest % dimension] += 1.0 if (digest >> 32) & 1 else -1.0
        norm = math.sqrt(sum(value * value for value in vector))
        if norm == 0.0:  # the words cancelled out; fall back to the whole text's bucket
            digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            vector[digest % dimension], norm = 1.0, 1.0
        return [value / norm for value in vector]

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early when the server stops."""
        self._stopping.wait(seconds)


def _invalid(message: str) -> Reply:
    return Reply.error(400, message, type="invalid_request_error")


def _handler_class(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: every reply carries Content-Length or is chunked

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._send(_invalid("We could not parse the JSON body of your request."))
                return
            path = self.path.split("?", 1)[0]
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._send(fake.dispatch(Request(self.command, path, headers, body)))

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                fake.wait(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks is None:
                    payload = json.dumps(reply.body).encode() if reply.body is not None else b""
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                else:
                    if not any(name.lower() == "content-type" for name in reply.headers):
                        self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in reply.chunks:
                        if chunk:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return _Handler
