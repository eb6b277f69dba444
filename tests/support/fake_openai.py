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
transfer encoding, each chunk flushed as it is produced. Among the chunks, :class:`Pause` waits while
watching for the client to hang up, :class:`Hold` waits for the test (see gated answers below), and
:class:`Drop` cuts the connection mid-reply. Every streamed reply is logged in :attr:`FakeOpenAI.streams`
(what was sent, whether the client went away).

Chat completions (``/v1/chat/completions``), whole or streamed as OpenAI streams them (``chat.completion.chunk``
frames, a usage frame when ``stream_options.include_usage``, then ``data: [DONE]``). Unscripted, the answer
echoes the last user message (:meth:`FakeOpenAI.echo_answer`: ``"You said: <text>"``), one word per token.
Scripted, the next request gets the given tokens, paced, optionally breaking off::

    server.script_chat(["Hel", "lo", "!"], delay=0.2)                  # 200 ms between tokens
    server.script_chat(["a", "b", "c"], fail_after=2)                  # two tokens, then the connection drops
    server.script_chat(["a", "b"], fail_after=1, failure="error")      # one token, then an error event
    server.script("/v1/chat/completions", Reply.error(429, "slow down"))  # an error status
    server.last_chat_messages()                                        # the prompt the client sent
    server.script_tool_calls([("search", {"query": "yeast"})])          # the next answer calls a tool
    server.last_chat_tools()                                           # the tools the client offered
    server.streams[-1].wait_ended(1.0); server.streams[-1].disconnected   # did the client hang up?

Gated, the answer waits for the test instead of a clock, so a test can check what was forwarded before what,
never how fast: the fake holds the answer before it starts, before each further token and before its end
(a whole answer: once, before it is sent), and each :meth:`Gate.release` lets one of them go. A client that
hangs up while the answer is held ends the reply at once::

    gate = Gate(); server.script_chat(["a", "b"], gate=gate)   # nothing is sent yet
    gate.release()                                             # headers, the role frame and "a"; "b" is held
    gate.wait_holding(30.0); server.streams[-1].tokens         # True, ["a"]: the fake waits for the test
    gate.release(2)                                            # "b", then the end of the answer
    gate.wait_abandoned(30.0)     # instead of release(2): True once the client hung up while "b" was held

Tool calls come as OpenAI sends them (streamed: the call's id and name, then its arguments in pieces;
``finish_reason: "tool_calls"``). Models named in ``tool_less_models`` answer a request offering ``tools``
with a 400 saying they do not support tools, as Ollama does for models without function calling.

Unscripted chat answers can also come from a function of the prompt, until :meth:`FakeOpenAI.reset`: a test
that drives many model calls (a knowledge-graph build: extraction, gleaning, summaries) answers each by what
it asks::

    server.respond_with(lambda messages: "NO" if "YES or NO" in messages[-1]["content"] else None)  # None: echo

Embeddings are deterministic and a little semantic: a hashed bag of words, so texts sharing words have a
positive cosine and a test can compute the expected vector with :meth:`FakeOpenAI.embedding`.

Reranking (``/v1/rerank``, the Cohere/Jina/vLLM shape, not OpenAI's): each document's relevance is the share
of the query's distinct words it contains (:meth:`FakeOpenAI.relevance`), results best first, ``top_n`` of them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import math
import re
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

DEFAULT_API_KEY = "sk-fake-openai"
DEFAULT_DIMENSION = 64
CHAT_PATH = "/v1/chat/completions"
RERANK_PATH = "/v1/rerank"
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Request:
    """One request as the server saw it. ``body`` is the decoded JSON (None when there was none)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any


@dataclass(frozen=True)
class Pause:
    """Among a reply's chunks: wait ``seconds`` before the next one, ending the reply early if the client
    hangs up meanwhile (the server notices at once, not at its next write)."""

    seconds: float


class Gate:
    """Holds a scripted reply at set points until the test lets it go on (see the module docstring).

    The test calls :meth:`release`; the server's handler waits in :meth:`hold`. Releases given before the
    reply reaches a hold are kept, so a test may release ahead. One gate serves one reply.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._permits = 0
        self._waiting = False
        self._abandoned = False

    def release(self, steps: int = 1) -> None:
        """Let the reply go on past its next ``steps`` holds."""
        with self._changed:
            self._permits += steps
            self._changed.notify_all()

    def wait_holding(self, timeout: float) -> bool:
        """Wait until the reply is held here with no release pending, everything before the hold written;
        False if that did not happen within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._waiting and not self._permits, timeout)

    def wait_abandoned(self, timeout: float) -> bool:
        """Wait until the client has hung up while the reply was held; False if not within ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._abandoned, timeout)

    def hold(self, client_gone: Callable[[float], bool], stopping: threading.Event) -> bool:
        """Server side: wait for a release; False when ``client_gone(seconds)`` (which watches the connection
        that long) reports a hang-up first, or the server stops."""
        with self._changed:
            self._waiting = True
            self._changed.notify_all()
        try:
            while not stopping.is_set():
                with self._changed:
                    if self._changed.wait_for(lambda: self._permits > 0, 0.025):
                        self._permits -= 1
                        return True
                if client_gone(0.025):
                    with self._changed:
                        self._abandoned = True
                        self._changed.notify_all()
                    return False
            return False
        finally:
            with self._changed:
                self._waiting = False
                self._changed.notify_all()


@dataclass(frozen=True)
class Hold:
    """Among a reply's chunks: wait until the test releases ``gate``, ending the reply early if the client
    hangs up meanwhile."""

    gate: Gate


@dataclass(frozen=True)
class Drop:
    """Among a reply's chunks: close the connection here, without finishing the chunked body."""


Chunk = bytes | Pause | Hold | Drop


@dataclass
class Reply:
    """What the server answers: a JSON ``body``, or ``chunks`` streamed as they are produced.

    ``delay`` seconds pass before anything is sent (to trigger client timeouts); ``stop()`` cuts it short.
    With a ``gate``, the reply is then held until the test releases it (or the client hangs up).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[Chunk] | None = None
    delay: float = 0.0
    gate: Gate | None = None

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
#: Answers a chat request from its messages (None: fall back to the echo answer).
Responder = Callable[[list[dict[str, Any]]], "str | None"]


@dataclass
class StreamRecord:
    """One streamed reply as it went: the chunks written so far and how it ended."""

    request: Request
    sent: list[bytes] = field(default_factory=list)
    #: The client hung up before the reply ended (seen while pausing, or as a failed write).
    disconnected: bool = False
    #: The reply was written to its end (a :class:`Drop` or a hang-up is not an end).
    completed: bool = False
    ended: threading.Event = field(default_factory=threading.Event)

    def wait_ended(self, timeout: float) -> bool:
        """Wait until the server is done with this reply, however it ended; False on timeout."""
        return self.ended.wait(timeout)

    @property
    def tokens(self) -> list[str]:
        """The content pieces of the ``chat.completion.chunk`` frames sent so far."""
        pieces = []
        for chunk in self.sent:
            for line in chunk.decode().splitlines():
                if not line.startswith("data: {"):
                    continue
                frame = json.loads(line[len("data: ") :])
                for choice in frame.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        pieces.append(content)
        return pieces


@dataclass(frozen=True)
class ChatScript:
    """How to answer one chat request; see :meth:`FakeOpenAI.script_chat`."""

    tokens: tuple[str, ...] | None = None
    delay: float = 0.0
    first_delay: float = 0.0
    fail_after: int | None = None
    failure: Literal["disconnect", "error"] = "disconnect"
    error_message: str = "The server had an error while processing your request."
    usage: Mapping[str, int] | None = None
    send_usage: bool = True
    #: Answer with these calls (name, arguments) instead of text.
    tool_calls: tuple[tuple[str, Mapping[str, Any]], ...] | None = None
    #: Hold the answer for the test; see :meth:`FakeOpenAI.script_chat`.
    gate: Gate | None = None


class FakeOpenAI:
    """An OpenAI-compatible server on ``127.0.0.1`` and a free port, run in a background thread.

    ``api_key``: the bearer key every request must carry (None accepts any). ``dimension``: length of the
    embedding vectors unless the request asks for ``dimensions``. ``models``: when given, the only embedding
    model names served, each with its own dimension; other names get OpenAI's 404 ``model_not_found``.
    ``chat_models``: the same for chat (None serves any name). ``tool_less_models``: chat models that refuse
    requests offering ``tools``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = DEFAULT_API_KEY,
        dimension: int = DEFAULT_DIMENSION,
        models: Mapping[str, int] | None = None,
        chat_models: Iterable[str] | None = None,
        tool_less_models: Iterable[str] = (),
    ) -> None:
        self.api_key = api_key
        self.tool_less_models = set(tool_less_models)
        self.dimension = dimension
        self.models = dict(models) if models is not None else None
        self.chat_models = set(chat_models) if chat_models is not None else None
        self.requests: list[Request] = []
        self.streams: list[StreamRecord] = []
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply | Handler]] = {}
        self._routes: dict[tuple[str, str], Handler] = {}
        self._responder: Responder | None = None
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.route("POST", "/v1/embeddings", self.handle_embeddings)
        self.route("GET", "/v1/models", self.handle_models)
        self.route("POST", CHAT_PATH, self.handle_chat)
        self.route("POST", RERANK_PATH, self.handle_rerank)

    # -- control ---------------------------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method path`` with ``handler`` (replacing any earlier one)."""
        self._routes[(method.upper(), path)] = handler

    def script(self, path: str, *replies: Reply | Handler) -> None:
        """Queue ``replies`` for ``path``: the next requests to it get them in order, then normal service.

        A queued handler is called with the request it answers (so a scripted reply can depend on it).
        """
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(replies)

    def script_chat(
        self,
        tokens: Sequence[str] | None = None,
        *,
        delay: float = 0.0,
        first_delay: float = 0.0,
        fail_after: int | None = None,
        failure: Literal["disconnect", "error"] = "disconnect",
        error_message: str = "The server had an error while processing your request.",
        usage: Mapping[str, int] | None = None,
        send_usage: bool = True,
        times: int = 1,
        gate: Gate | None = None,
    ) -> None:
        """Script the next ``times`` chat requests (each request consumes one; a client's retry is a request).

        ``tokens``: the answer's pieces (None: the echo answer). ``delay``: seconds between two streamed
        tokens. ``first_delay``: seconds before the server answers at all. A whole (non-streamed) answer
        comes after ``first_delay + delay * (len(tokens) - 1)``, when its last token would have streamed.
        ``fail_after``: break off after that many tokens, by dropping the connection (``"disconnect"``) or
        by sending OpenAI's ``data: {"error": ...}`` frame (``"error"``); a whole answer then gets a dropped
        connection or a 500. ``usage``: the prompt/completion/total token counts to report (default: words
        of the prompt, tokens of the answer). ``send_usage=False``: never send usage in a stream, like
        servers that ignore ``stream_options``. Model checks and auth still apply. ``gate``: hold the answer
        until the test releases it: before it starts, before each token after the first and before its end
        (a whole answer: once, before it is sent); pacing by ``delay`` applies as well. A gate holds one
        answer, so it needs ``times=1``.
        """
        if gate is not None and times != 1:
            raise ValueError("a gate holds one answer: script gated requests one at a time")
        script = ChatScript(
            tokens=tuple(tokens) if tokens is not None else None,
            delay=delay,
            first_delay=first_delay,
            fail_after=fail_after,
            failure=failure,
            error_message=error_message,
            usage=dict(usage) if usage is not None else None,
            send_usage=send_usage,
            gate=gate,
        )

        def scripted(request: Request) -> Reply:
            return self.handle_chat(request, script)

        self.script(CHAT_PATH, *[scripted] * times)

    def respond_with(self, responder: Responder | None) -> None:
        """Answer unscripted chat requests with ``responder(messages)`` (its None: the echo answer)."""
        with self._lock:
            self._responder = responder

    def script_tool_calls(
        self, calls: Sequence[tuple[str, Mapping[str, Any]]], *, usage: Mapping[str, int] | None = None
    ) -> None:
        """The next chat request is answered with these tool calls (name, arguments), streamed or whole."""
        script = ChatScript(tool_calls=tuple((name, dict(arguments)) for name, arguments in calls), usage=usage)

        def scripted(request: Request) -> Reply:
            return self.handle_chat(request, script)

        self.script(CHAT_PATH, scripted)

    def reset(self) -> None:
        """Forget recorded requests and streams, and drop scripts and the responder (between tests)."""
        with self._lock:
            self.requests.clear()
            self.streams.clear()
            self._scripts.clear()
            self._responder = None

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    @property
    def chat_requests(self) -> list[Request]:
        """Every chat completion request so far, in order."""
        return self.requests_to(CHAT_PATH)

    def last_chat_messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of the latest chat completion request: the prompt as the client assembled it."""
        requests = self.chat_requests
        if not requests:
            raise AssertionError("no chat completion request was received")
        messages: list[dict[str, Any]] = requests[-1].body["messages"]
        return messages

    def last_chat_tools(self) -> list[dict[str, Any]]:
        """The ``tools`` the latest chat completion request offered (empty when it offered none)."""
        requests = self.chat_requests
        if not requests:
            raise AssertionError("no chat completion request was received")
        tools: list[dict[str, Any]] = requests[-1].body.get("tools") or []
        return tools

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
        """The reply to ``request``: auth first (and a tool-less model's refusal of tools), then a scripted reply
        if one is queued, else the route."""
        with self._lock:
            self.requests.append(request)
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply.error(401, "Incorrect API key provided.", type="invalid_request_error", code="invalid_api_key")
        body = request.body if isinstance(request.body, dict) else {}
        if request.path == CHAT_PATH and body.get("tools") is not None and body.get("model") in self.tool_less_models:
            # Refused like a bad key, before any scripted answer is used up.
            return _invalid(f"registry.fake/{body['model']} does not support tools")
        with self._lock:
            queued = self._scripts.get(request.path)
            scripted = queued.popleft() if queued else None
        if isinstance(scripted, Reply):
            return scripted
        if scripted is not None:
            return scripted(request)
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

    def handle_rerank(self, request: Request) -> Reply:
        """``{"model", "query", "documents", "top_n"}`` -> ``{"results": [{"index", "relevance_score"}]}``."""
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _invalid("you must provide a model parameter")
        query = body.get("query")
        if not isinstance(query, str) or not query:
            return _invalid("'query' must be a non-empty string.")
        documents = body.get("documents")
        if not isinstance(documents, list) or not documents:
            return _invalid("'documents' must be a non-empty array.")
        texts: list[str] = []
        for document in documents:
            text = document.get("text") if isinstance(document, dict) else document
            if not isinstance(text, str):
                return _invalid("'documents' must hold strings or {'text': ...} objects.")
            texts.append(text)
        top_n = body.get("top_n", len(texts))
        if not isinstance(top_n, int) or top_n < 1:
            return _invalid("'top_n' must be a positive integer.")
        results = [{"index": i, "relevance_score": self.relevance(query, t)} for i, t in enumerate(texts)]
        results.sort(key=lambda r: (-r["relevance_score"], r["index"]))
        return Reply(body={"id": f"rerank-fake-{next(self._ids)}", "results": results[:top_n], "meta": {}})

    @staticmethod
    def relevance(query: str, document: str) -> float:
        """The served relevance: the share of the query's distinct lower-cased words found in ``document``."""
        words = set(_WORD.findall(query.lower()))
        if not words:
            return 0.0
        return len(words & set(_WORD.findall(document.lower()))) / len(words)

    def handle_models(self, request: Request) -> Reply:
        names = sorted(set(self.models or ()) | (self.chat_models or set()))
        models = [{"id": name, "object": "model", "created": 0, "owned_by": "fake-openai"} for name in names]
        return Reply(body={"object": "list", "data": models})

    def handle_chat(self, request: Request, script: ChatScript | None = None) -> Reply:
        """A chat completion: the scripted answer, else the echo of the last user message."""
        script = script or ChatScript()
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _invalid("you must provide a model parameter")
        if self.chat_models is not None and model not in self.chat_models:
            return Reply.error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                type="invalid_request_error",
                code="model_not_found",
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _invalid("'messages' must be a non-empty array.")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
                return _invalid(f"Invalid 'messages[{index}].role'.")
            calls_only = message.get("role") == "assistant" and message.get("tool_calls")
            if not isinstance(message.get("content"), str | list) and not (calls_only and message["content"] is None):
                return _invalid(f"Invalid 'messages[{index}].content': expected a string or an array.")
            if message.get("role") == "tool" and not isinstance(message.get("tool_call_id"), str):
                return _invalid(f"Missing 'messages[{index}].tool_call_id'.")
        tools = body.get("tools", [])
        if not isinstance(tools, list) or not all(
            isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict) for t in tools
        ):
            return _invalid("Invalid 'tools': expected an array of function tools.")
        if script.tool_calls is not None:
            return self._tool_call_reply(body, model, script)
        if script.tokens is not None:
            tokens = list(script.tokens)
        else:
            responder = self._responder
            answer = responder(messages) if responder is not None else None
            tokens = self.split_tokens(answer if answer is not None else self.echo_answer(messages))
        prompt_tokens = sum(max(1, len(_WORD.findall(_text(message["content"])))) for message in messages)
        usage = dict(script.usage) if script.usage is not None else {}
        usage.setdefault("prompt_tokens", prompt_tokens)
        usage.setdefault("completion_tokens", len(tokens))
        usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
        completion_id = f"chatcmpl-fake-{next(self._ids)}"
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True and script.send_usage
            frames = self._chat_frames(completion_id, model, tokens, script, usage if include_usage else None)
            return Reply(chunks=frames, delay=script.first_delay, gate=script.gate)
        generating = script.first_delay + script.delay * max(0, len(tokens) - 1)
        if script.fail_after is not None:
            if script.failure == "error":
                failed = Reply.error(500, script.error_message, delay=generating)
                failed.gate = script.gate
                return failed
            return Reply(chunks=iter([Drop()]), delay=generating, gate=script.gate)
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(tokens), "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
        completion = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
            "choices": [choice],
            "usage": usage,
        }
        return Reply(body=completion, delay=generating, gate=script.gate)

    def _tool_call_reply(self, body: Mapping[str, Any], model: str, script: ChatScript) -> Reply:
        """An answer calling tools: one ``chat.completion`` message, or OpenAI's stream of call fragments."""
        assert script.tool_calls is not None
        calls = [
            {"id": f"call_fake_{next(self._ids)}", "name": name, "arguments": json.dumps(arguments)}
            for name, arguments in script.tool_calls
        ]
        usage = dict(script.usage) if script.usage is not None else {}
        usage.setdefault("prompt_tokens", 1)
        usage.setdefault("completion_tokens", sum(max(1, len(_WORD.findall(c["arguments"]))) for c in calls))
        usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
        completion_id = f"chatcmpl-fake-{next(self._ids)}"
        created = int(time.time())
        if body.get("stream") is not True:
            message = {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls
                ],
            }
            completion = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}],
                "usage": usage,
            }
            return Reply(body=completion)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True

        def frame(delta: dict[str, Any] | None, finish: str | None = None, frame_usage: Any = None) -> bytes:
            chunk: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                chunk["usage"] = frame_usage
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        def frames() -> Iterator[Chunk]:
            yield frame({"role": "assistant", "content": None})
            for index, call in enumerate(calls):
                start = {"index": index, "id": call["id"], "type": "function"}
                yield frame({"tool_calls": [{**start, "function": {"name": call["name"], "arguments": ""}}]})
                half = len(call["arguments"]) // 2
                for part in (call["arguments"][:half], call["arguments"][half:]):
                    yield frame({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            yield frame({}, finish="tool_calls")
            if include_usage:
                yield frame(None, frame_usage=usage)
            yield b"data: [DONE]\n\n"

        return Reply(chunks=frames())

    def _chat_frames(
        self,
        completion_id: str,
        model: str,
        tokens: list[str],
        script: ChatScript,
        usage: Mapping[str, int] | None,
    ) -> Iterator[Chunk]:
        """OpenAI's stream: a role frame, a frame per token, a finish frame, the usage frame, ``[DONE]``."""
        created = int(time.time())
        with_usage = usage is not None  # OpenAI sends "usage": null in every frame once usage is asked for

        def frame(delta: dict[str, Any] | None, finish: str | None = None, frame_usage: Any = None) -> bytes:
            chunk: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if with_usage:
                chunk["usage"] = frame_usage
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        yield frame({"role": "assistant", "content": "", "refusal": None})
        for index, token in enumerate(tokens):
            if index == script.fail_after:
                break
            if index and script.delay:
                yield Pause(script.delay)
            if index and script.gate is not None:
                yield Hold(script.gate)
            yield frame({"content": token})
        if script.gate is not None:  # the end (or the break-off) waits for the test too
            yield Hold(script.gate)
        if script.fail_after is not None and script.fail_after <= len(tokens):
            if script.failure == "disconnect":
                yield Drop()
                return
            error = {"message": script.error_message, "type": "server_error", "param": None, "code": None}
            yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
            return
        yield frame({}, finish="stop")
        if usage is not None:
            yield frame(None, frame_usage=dict(usage))
        yield b"data: [DONE]\n\n"

    @staticmethod
    def echo_answer(messages: Sequence[Mapping[str, Any]]) -> str:
        """The unscripted answer: ``"You said: "`` and the text of the last user message."""
        said = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        return f"You said: {said}"

    @staticmethod
    def split_tokens(text: str) -> list[str]:
        """``text`` cut into the pieces the server streams: each word with the whitespace before it."""
        return re.findall(r"\s*\S+|\s+", text)

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


def _text(content: Any) -> str:
    """A message's text: its string, or the text parts of a multi-part content joined by spaces."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _handler_class(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: every reply carries Content-Length or is chunked
        disable_nagle_algorithm = True  # a streamed token leaves at once, not when the previous one is acked

        def handle(self) -> None:
            try:
                super().handle()
            except (ConnectionResetError, BrokenPipeError):
                # A client that abandons a reply (a stream it stopped reading) resets the kept-alive
                # connection; that is an ordinary end of the connection, not a server error to print.
                self.close_connection = True

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
            request = Request(self.command, path, headers, body)
            self._send(fake.dispatch(request), request)

        def _send(self, reply: Reply, request: Request | None = None) -> None:
            if reply.delay:
                fake.wait(reply.delay)
            if reply.chunks is not None:
                self._stream(reply, reply.chunks, request or Request(self.command, self.path, {}, None))
                return
            if reply.gate is not None and not reply.gate.hold(self._client_gone, fake._stopping):
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                payload = json.dumps(reply.body).encode() if reply.body is not None else b""
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
                self.close_connection = True

        def _stream(self, reply: Reply, chunks: Iterable[Chunk], request: Request) -> None:
            """Send ``chunks`` one by one, logging the reply in ``fake.streams``."""
            record = StreamRecord(request)
            with fake._lock:
                fake.streams.append(record)
            try:
                if reply.gate is not None and not reply.gate.hold(self._client_gone, fake._stopping):
                    record.disconnected = not fake._stopping.is_set()
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if not any(name.lower() == "content-type" for name in reply.headers):
                    self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in chunks:
                    if isinstance(chunk, Pause):
                        if self._client_left_during(chunk.seconds):
                            record.disconnected = True
                            self.close_connection = True
                            return
                        if fake._stopping.is_set():
                            self.close_connection = True
                            return
                    elif isinstance(chunk, Hold):
                        if not chunk.gate.hold(self._client_gone, fake._stopping):
                            record.disconnected = not fake._stopping.is_set()
                            self.close_connection = True
                            return
                    elif isinstance(chunk, Drop):
                        self.close_connection = True
                        with contextlib.suppress(OSError):  # the client may have gone already
                            self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    elif chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                        record.sent.append(chunk)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                record.completed = True
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
                record.disconnected = True
                self.close_connection = True
            finally:
                record.ended.set()

        def _client_left_during(self, seconds: float) -> bool:
            """Wait ``seconds`` (less if the server stops); True as soon as the client closes the connection."""
            deadline = time.monotonic() + seconds
            while not fake._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._client_gone(min(remaining, 0.05)):
                    return True
            return False

        def _client_gone(self, seconds: float) -> bool:
            """Watch the connection for up to ``seconds``; True if the client has closed it."""
            readable, _, _ = select.select([self.connection], [], [], seconds)
            if not readable:
                return False
            try:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return True  # end of file: the client closed its side
            except OSError:
                return True
            time.sleep(seconds)  # bytes of a next request: not ours to read yet
            return False

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return _Handler
