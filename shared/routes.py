"""The registry of route groups: read by the local server and by the CDK app, so the two can't drift.

Light on purpose (no heavy imports): the CDK app and every function's cold start read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Literal

Method = Literal["GET", "POST", "PUT", "DELETE"]
Backend = Literal["metadata", "blobs", "search", "workflow", "models", "builds", "events", "uploads"]


@dataclass(frozen=True)
class Route:
    """One path (API Gateway syntax, ``{param}``) and the methods served on it.

    ``reads``: methods among ``methods`` that only read although they are not GET (a search, an answer):
    a read-scoped API key may call them (``shared.access``).
    """

    path: str
    methods: tuple[Method, ...]
    reads: tuple[Method, ...] = ()

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regular expression: a ``{param}`` is one non-empty segment (werkzeug's default)."""
        parts = re.split(r"(\{[^}]+\})", self.path)
        return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts if p) + "$")

    @cached_property
    def static_segments(self) -> int:
        """How many segments are literal: among routes matching a path, the more literal one wins."""
        return sum(1 for segment in self.path.split("/") if segment and not segment.startswith("{"))


@dataclass(frozen=True)
class RouteGroup:
    """One Lambda function on AWS; one router in the local server.

    ``module`` is the importable package under ``functions/`` holding ``router.py`` (FastAPI router
    factory ``build_router``) and ``handler.py`` (the Lambda entry point ``handler``): ``functions.<name>``
    unless given.
    ``needs`` lists the backends the function is granted access to (``workflow``: starting parses;
    ``builds``: starting knowledge-graph / RAPTOR builds).
    """

    name: str
    routes: tuple[Route, ...]
    streaming: bool = False
    authenticated: bool = True
    needs: tuple[Backend, ...] = ()
    memory_mb: int = 512
    timeout_s: int = 29
    module: str = ""

    def __post_init__(self) -> None:
        if not self.module:
            object.__setattr__(self, "module", f"functions.{self.name}")


SYSTEM = RouteGroup(
    name="system",
    routes=(
        Route("/v1/system/healthz", ("GET",)),
        Route("/v1/system/ping", ("GET",)),
    ),
    authenticated=False,
    needs=("metadata", "blobs", "search", "workflow"),
    memory_mb=256,
)

DATASETS = RouteGroup(
    name="datasets",
    routes=(
        Route("/api/v1/datasets", ("GET", "POST", "DELETE")),
        Route("/api/v1/datasets/{dataset_id}", ("PUT",)),
    ),
    # Deleting a dataset removes its documents' blobs and index entries too. Embedding models are only
    # checked against the catalog shipped with the code: no "models".
    needs=("metadata", "blobs", "search"),
)

DOCUMENTS = RouteGroup(
    name="documents",
    routes=(
        Route("/api/v1/datasets/{dataset_id}/documents", ("GET", "POST", "DELETE")),
        Route("/api/v1/datasets/{dataset_id}/documents/{document_id}", ("GET", "PUT")),
        Route("/api/v1/datasets/{dataset_id}/chunks", ("POST", "DELETE")),
        Route("/api/v1/datasets/{dataset_id}/metadata/summary", ("GET",)),
        Route("/api/v1/datasets/{dataset_id}/metadata/update", ("POST",)),
    ),
    # "events": stopping a parse ends it (CANCEL), which is announced like any other end.
    needs=("metadata", "blobs", "search", "workflow", "events"),
    memory_mb=1024,
)

CHUNKS = RouteGroup(
    name="chunks",
    routes=(
        Route("/api/v1/datasets/{dataset_id}/documents/{document_id}/chunks", ("GET", "POST", "DELETE")),
        Route("/api/v1/datasets/{dataset_id}/documents/{document_id}/chunks/{chunk_id}", ("PUT",)),
    ),
    needs=("metadata", "search", "models"),
    memory_mb=2048,
)

RETRIEVAL = RouteGroup(
    name="retrieval",
    routes=(Route("/api/v1/retrieval", ("POST",), reads=("POST",)),),
    # blobs: use_kg reads the datasets' knowledge graphs.
    needs=("metadata", "blobs", "search", "models"),
    memory_mb=2048,
)

KNOWLEDGE = RouteGroup(
    name="knowledge",
    routes=(
        Route("/api/v1/datasets/{dataset_id}/knowledge_graph", ("GET", "DELETE")),
        Route("/api/v1/datasets/{dataset_id}/run_graphrag", ("POST",)),
        Route("/api/v1/datasets/{dataset_id}/trace_graphrag", ("GET",)),
        Route("/api/v1/datasets/{dataset_id}/run_raptor", ("POST",)),
        Route("/api/v1/datasets/{dataset_id}/trace_raptor", ("GET",)),
    ),
    # The builds run in the knowledge-build workflow ("builds"); the graph is a blob, its records are in the
    # store and the index (deleted with it).
    needs=("metadata", "blobs", "search", "builds"),
    memory_mb=1024,
)

CHATS = RouteGroup(
    name="chats",
    routes=(
        Route("/api/v1/chats", ("GET", "POST", "DELETE")),
        Route("/api/v1/chats/{chat_id}", ("PUT",)),
        Route("/api/v1/chats/{chat_id}/sessions", ("GET", "POST", "DELETE")),
        Route("/api/v1/chats/{chat_id}/sessions/{session_id}", ("PUT",)),
    ),
    # Model names are checked against the catalog shipped with the code and the tenant's settings.
    needs=("metadata",),
)

AGENTS = RouteGroup(
    name="agents",
    routes=(
        Route("/api/v1/agents", ("GET", "POST")),
        Route("/api/v1/agents/{agent_id}", ("PUT", "DELETE")),
        Route("/api/v1/agents/{agent_id}/sessions", ("GET", "POST", "DELETE")),
    ),
    # Agents, their versions and sessions live in the table; a DSL is checked without calling any model.
    needs=("metadata",),
)

COMPLETIONS = RouteGroup(
    name="completions",
    routes=(
        # Answers are reads for scoped API keys (they store the turn in the session, as RAGFlow does).
        Route("/api/v1/chats/{chat_id}/completions", ("POST",), reads=("POST",)),
        Route("/api/v1/chats_openai/{chat_id}/chat/completions", ("POST",), reads=("POST",)),
        Route("/api/v1/sessions/related_questions", ("POST",), reads=("POST",)),
        # Agent runs: the agent store (the table) and the retrieval backends the chats already need.
        Route("/api/v1/agents/{agent_id}/completions", ("POST",), reads=("POST",)),
        Route("/api/v1/agents_openai/{agent_id}/chat/completions", ("POST",), reads=("POST",)),
    ),
    # Answers stream: Lambda Web Adapter + uvicorn, REST integration with responseTransferMode STREAM.
    streaming=True,
    # blobs: a chat with use_kg reads its datasets' knowledge graphs.
    needs=("metadata", "blobs", "search", "models"),
    memory_mb=2048,
    timeout_s=900,
)

FILES = RouteGroup(
    name="files",
    routes=(
        Route("/api/v1/file/upload", ("POST",)),
        Route("/api/v1/file/create", ("POST",)),
        Route("/api/v1/file/list", ("GET",)),
        Route("/api/v1/file/root_folder", ("GET",)),
        Route("/api/v1/file/parent_folder", ("GET",)),
        Route("/api/v1/file/all_parent_folder", ("GET",)),
        Route("/api/v1/file/rm", ("POST",)),
        Route("/api/v1/file/rename", ("POST",)),
        Route("/api/v1/file/get/{file_id}", ("GET",)),
        Route("/api/v1/file/mv", ("POST",)),
        Route("/api/v1/file/convert", ("POST",)),
    ),
    # Files keep their bytes in the blob store; rm and convert remove documents' chunks and index entries.
    needs=("metadata", "blobs", "search"),
    memory_mb=1024,
)

# -- beyond RAGFlow: flowless's own routes, under /api/v1/flowless ------------------------------------
WEBHOOKS = RouteGroup(
    name="webhooks",
    routes=(
        Route("/api/v1/flowless/webhooks", ("GET", "POST")),
        Route("/api/v1/flowless/webhooks/{webhook_id}", ("GET", "PUT", "DELETE")),
        Route("/api/v1/flowless/webhooks/{webhook_id}/deliveries", ("GET",)),
    ),
    # Subscriptions and their delivery logs live in the table; deliveries are made by the webhook workers.
    needs=("metadata",),
    memory_mb=256,
)

UPLOADS = RouteGroup(
    name="uploads",
    routes=(
        Route("/api/v1/flowless/datasets/{dataset_id}/uploads", ("POST",)),
        Route("/api/v1/flowless/datasets/{dataset_id}/uploads/{upload_id}", ("GET", "DELETE")),
        Route("/api/v1/flowless/datasets/{dataset_id}/uploads/{upload_id}/complete", ("POST",)),
        Route("/api/v1/flowless/datasets/{dataset_id}/imports", ("POST",)),
    ),
    # "uploads": presigned multipart uploads under the uploads prefix and reading (listing, HEAD) the objects
    # an import names; no bytes pass through the function. "workflow": a completed upload may be parsed.
    needs=("metadata", "uploads", "workflow"),
)

ROUTE_GROUPS: tuple[RouteGroup, ...] = (
    SYSTEM,
    DATASETS,
    DOCUMENTS,
    CHUNKS,
    RETRIEVAL,
    KNOWLEDGE,
    CHATS,
    AGENTS,
    COMPLETIONS,
    FILES,
    WEBHOOKS,
    UPLOADS,
)


FALLBACK_GROUP = SYSTEM
"""The public group whose function also answers, behind API Gateway, what no route serves: a method a path
is not served with (405), a path API Gateway did not match (404, or a redirect to the path RAGFlow's router
would have matched after merging slashes)."""


@dataclass(frozen=True)
class RouteMatch:
    """Where RAGFlow's router sends ``(method, path)``: the serving group, else the methods the path has."""

    group: RouteGroup | None
    route: Route | None
    allowed: tuple[Method, ...]


def normalize_path(path: str) -> str:
    """The path as RAGFlow's router reads it: ``//`` merges into ``/`` and a trailing ``/`` is ignored."""
    merged = re.sub("/{2,}", "/", path)
    return merged.rstrip("/") or "/"


@cache
def _routes_by_depth() -> dict[int, tuple[tuple[RouteGroup, Route], ...]]:
    by_depth: dict[int, list[tuple[RouteGroup, Route]]] = {}
    for group in ROUTE_GROUPS:
        for route in group.routes:
            by_depth.setdefault(route.path.count("/"), []).append((group, route))
    return {depth: tuple(routes) for depth, routes in by_depth.items()}


def _routes_of_depth(depth: int) -> tuple[tuple[RouteGroup, Route], ...]:
    """The routes whose paths have ``depth`` segments: a ``{param}`` is one segment, so only those can match
    a path of that depth (every request is routed here: today at most 15 of the 47 patterns are tried)."""
    return _routes_by_depth().get(depth, ())


def match_route(method: str, path: str) -> RouteMatch:
    """Route ``method path`` (normalized) as RAGFlow's router would over the registry: the route serving the
    method (the most literal one when several match), else no group and the methods the path is served
    with (405 when there are some, 404 when there are none)."""
    path = normalize_path(path)
    matches = [(group, route) for group, route in _routes_of_depth(path.count("/")) if route.pattern.match(path)]
    serving = [(group, route) for group, route in matches if method in route.methods]
    if serving:
        group, route = max(serving, key=lambda pair: pair[1].static_segments)
        return RouteMatch(group, route, route.methods)
    allowed = tuple(dict.fromkeys(m for _, route in matches for m in route.methods))
    return RouteMatch(None, None, allowed)


def group_by_name(name: str) -> RouteGroup:
    """The registered group called ``name``; KeyError when there is none."""
    for group in ROUTE_GROUPS:
        if group.name == name:
            return group
    raise KeyError(name)
