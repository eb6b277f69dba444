"""Scoped API keys: the ONE table of route → required scope and the resource ids a route touches, derived
from the route registry, and the grant a key carries. Read by the local auth dependency, by every function
behind API Gateway and by the REQUEST authorizer, so the three cannot disagree.

Light on purpose (no heavy imports): the authorizer's cold start reads it.

* Scope: ``read`` may call the GET routes and the routes the registry marks as reads (retrieval,
  completions); ``write`` may call everything.
* Ids: a key may be restricted to lists of dataset, chat and agent ids. A restricted key may call only
  routes that name the resources they touch — in the path (``{dataset_id}``, ``{chat_id}``,
  ``{agent_id}``), or in the query/body fields listed in ``NAMED_IDS`` — and every id named must be in
  the key's list for its kind. A kind the key has no list for is closed to it, and routes that touch the
  whole tenant (create, list-all, delete-all, files, webhooks) are refused: a restricted key cannot reach
  anything beyond the resources it names.
* Anything out of scope answers RAGFlow's permission error (code 108).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from shared.errors import PermissionDenied
from shared.routes import ROUTE_GROUPS, Method, RouteGroup

Scope = Literal["read", "write"]
ResourceKind = Literal["dataset", "chat", "agent"]
SCOPES: tuple[Scope, ...] = ("read", "write")
RESOURCE_KINDS: tuple[ResourceKind, ...] = ("dataset", "chat", "agent")

#: Path parameters naming a resource a key may be restricted to.
PATH_PARAMETER_KINDS: Mapping[str, ResourceKind] = {"dataset_id": "dataset", "chat_id": "chat", "agent_id": "agent"}

#: RAGFlow's permission error (api/utils/api_utils.py get_error_permission_result), with the reason.
PERMISSION_DENIED = "Permission denied."


@dataclass(frozen=True)
class NamedIds:
    """A query or body field naming resources of ``kind`` (one id or a list of ids).

    ``all_when_absent``: a missing or empty value means "every resource of the kind" (a listing, a
    delete-all), refused to a key restricted on that kind; otherwise a missing value names nothing.
    """

    kind: ResourceKind
    where: Literal["query", "body"]
    name: str
    all_when_absent: bool = True


#: Query and body fields that name resources, per route of the registry (checked against it below).
NAMED_IDS: Mapping[tuple[Method, str], tuple[NamedIds, ...]] = {
    ("GET", "/api/v1/datasets"): (NamedIds("dataset", "query", "id"),),
    ("DELETE", "/api/v1/datasets"): (NamedIds("dataset", "body", "ids"),),
    ("POST", "/api/v1/retrieval"): (NamedIds("dataset", "body", "dataset_ids"),),
    ("GET", "/api/v1/chats"): (NamedIds("chat", "query", "id"),),
    ("DELETE", "/api/v1/chats"): (NamedIds("chat", "body", "ids"),),
    ("PUT", "/api/v1/chats/{chat_id}"): (NamedIds("dataset", "body", "dataset_ids", all_when_absent=False),),
    ("GET", "/api/v1/agents"): (NamedIds("agent", "query", "id"),),
}


@dataclass(frozen=True)
class RouteAccess:
    """What calling ``method path`` takes: a scope, and the resource ids it touches (path, query, body)."""

    method: Method
    path: str
    scope: Scope
    path_ids: tuple[tuple[str, ResourceKind], ...]
    named_ids: tuple[NamedIds, ...]

    @property
    def tenant_wide(self) -> bool:
        """Touches no named resource: creates, lists or deletes across the tenant."""
        return not self.path_ids and not self.named_ids

    @property
    def kinds(self) -> frozenset[ResourceKind]:
        return frozenset(kind for _, kind in self.path_ids) | {n.kind for n in self.named_ids}


_PARAMETER = re.compile(r"\{([^}]+)\}")


def _route_access(method: Method, path: str, reads: Sequence[Method]) -> RouteAccess:
    scope: Scope = "read" if method == "GET" or method in reads else "write"
    path_ids = tuple(
        (name, PATH_PARAMETER_KINDS[name]) for name in _PARAMETER.findall(path) if name in PATH_PARAMETER_KINDS
    )
    return RouteAccess(method, path, scope, path_ids, NAMED_IDS.get((method, path), ()))


def build_access_table(groups: Iterable[RouteGroup]) -> dict[tuple[str, str], RouteAccess]:
    """Every authenticated (method, path) of ``groups`` with what it takes. Fails on a ``NAMED_IDS`` entry
    the registry does not serve (the table would silently stop applying)."""
    table: dict[tuple[str, str], RouteAccess] = {}
    for group in groups:
        if not group.authenticated:
            continue
        for route in group.routes:
            for method in route.methods:
                table[(method, route.path)] = _route_access(method, route.path, route.reads)
    return table


@cache
def access_table() -> dict[tuple[str, str], RouteAccess]:
    """The table for the registry's route groups."""
    table = build_access_table(ROUTE_GROUPS)
    unknown = set(NAMED_IDS) - set(table)
    if unknown:
        raise ValueError(f"NAMED_IDS names routes the registry does not serve: {sorted(unknown)}")
    return table


def route_access(method: str, path: str) -> RouteAccess | None:
    """The entry for ``method path`` (the registry's path template), None for a route not in the registry."""
    return access_table().get((method.upper(), path))


def normalize_id(value: str) -> str:
    """Ids compare as RAGFlow stores them: 32 lowercase hex (a UUID written with dashes is the same id)."""
    return value.strip().replace("-", "").lower()


def _kind_label(kind: ResourceKind) -> str:
    return {"dataset": "datasets", "chat": "chats", "agent": "agents"}[kind]


@dataclass(frozen=True)
class KeyGrant:
    """What an API key may do: its tenant, its scope and, when restricted, the ids it may touch per kind
    (``None`` for every kind: unrestricted)."""

    tenant_id: str
    scope: Scope = "write"
    ids: Mapping[ResourceKind, frozenset[str]] | None = None
    key_id: str = field(default="", compare=False)

    @property
    def restricted(self) -> bool:
        return self.ids is not None

    @property
    def unlimited(self) -> bool:
        return self.scope == "write" and not self.restricted

    def describe(self) -> str:
        """The key's limits in words (the permission error's reason)."""
        parts = [f"scope '{self.scope}'"]
        if self.ids is not None:
            for kind in RESOURCE_KINDS:
                allowed = self.ids.get(kind)
                parts.append(f"{_kind_label(kind)}: {', '.join(sorted(allowed)) if allowed else 'none'}")
        return "; ".join(parts)

    def _denied(self, why: str) -> PermissionDenied:
        return PermissionDenied(f"{PERMISSION_DENIED} {why} (this API key: {self.describe()}).")

    # -- what the authorizer can decide from the route alone ----------------------------------------
    def may_call(self, access: RouteAccess) -> bool:
        """Whether some request to this route could be allowed (scope, kinds; not the ids' values)."""
        if access.scope == "write" and self.scope != "write":
            return False
        if self.ids is None:
            return True
        if access.tenant_wide:
            return False
        return all(kind in self.ids for kind in access.kinds)

    # -- per request -------------------------------------------------------------------------------
    def check_route(self, access: RouteAccess | None, path_params: Mapping[str, str]) -> None:
        """Refuse a route out of scope, or path ids out of the key's lists (PermissionDenied, code 108)."""
        if self.unlimited:
            return
        if access is None:
            raise self._denied("This route needs an unrestricted key")
        if access.scope == "write" and self.scope != "write":
            raise self._denied(f"{access.method} {access.path} needs the 'write' scope")
        if self.ids is None:
            return
        if access.tenant_wide:
            raise self._denied(f"{access.method} {access.path} reaches the whole tenant")
        for name, kind in access.path_ids:
            self.check_ids(kind, [path_params.get(name, "")])

    def check_ids(self, kind: ResourceKind, values: Iterable[str]) -> None:
        """Refuse ids of ``kind`` outside the key's list (every id when the key has no list for it)."""
        if self.ids is None:
            return
        allowed = self.ids.get(kind)
        for value in values:
            if allowed is None or normalize_id(value) not in allowed:
                raise self._denied(f"The {kind} {value} is out of reach")

    def check_named(self, named: NamedIds, value: Any) -> None:
        """Check one query/body field of ``named`` as the request gave it (after validation)."""
        if self.ids is None:
            return
        values = [value] if isinstance(value, str) else list(value or [])
        if not values:
            if named.all_when_absent:
                raise self._denied(f"Name the {_kind_label(named.kind)} ('{named.name}'): this key may not reach all")
            return
        self.check_ids(named.kind, [str(v) for v in values])

    # -- the authorizer's context (strings only) -----------------------------------------------------
    def to_context(self) -> dict[str, str]:
        context = {"tenant_id": self.tenant_id, "scope": self.scope, "key_id": self.key_id}
        if self.ids is not None:
            context["ids"] = json.dumps({kind: sorted(ids) for kind, ids in self.ids.items()}, separators=(",", ":"))
        return context

    @staticmethod
    def from_context(context: Mapping[str, Any]) -> KeyGrant:
        """The grant API Gateway passes from the authorizer (``requestContext.authorizer``)."""
        scope = context.get("scope") or "write"
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r} in the authorizer context")
        raw = context.get("ids")
        return KeyGrant(
            tenant_id=str(context["tenant_id"]),
            scope=scope,
            ids=None if not raw else ids_from_lists(json.loads(str(raw))),
            key_id=str(context.get("key_id") or ""),
        )


def ids_from_lists(lists: Mapping[ResourceKind, Any] | Mapping[str, Any]) -> dict[ResourceKind, frozenset[str]]:
    """``{"dataset": [...], ...}`` as a grant's ids (unknown kinds refused)."""
    ids: dict[ResourceKind, frozenset[str]] = {}
    for kind in RESOURCE_KINDS:
        if kind in lists and lists[kind] is not None:
            ids[kind] = frozenset(normalize_id(str(value)) for value in lists[kind])
    unknown = set(lists) - set(RESOURCE_KINDS)
    if unknown:
        raise ValueError(f"unknown resource kinds: {sorted(unknown)}")
    return ids


def authorizer_resources(grant: KeyGrant, method_arn_prefix: str) -> list[str]:
    """The execute-api resources the authorizer allows ``grant``: every route it may call, path parameters
    as ``*`` (``<api arn>/<stage>/<METHOD>/<path>``). A method whose every route is allowed collapses to
    ``<METHOD>/*``."""
    if grant.unlimited:
        return [f"{method_arn_prefix}/*/*"]
    table = access_table()
    resources: list[str] = []
    methods = sorted({access.method for access in table.values()})
    for method in methods:
        routes = [access for access in table.values() if access.method == method]
        allowed = [access for access in routes if grant.may_call(access)]
        if allowed and len(allowed) == len(routes):
            resources.append(f"{method_arn_prefix}/{method}/*")
            continue
        for access in allowed:
            resources.append(f"{method_arn_prefix}/{method}{_PARAMETER.sub('*', access.path)}")
    return resources
