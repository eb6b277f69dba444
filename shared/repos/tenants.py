"""Tenants, their model settings, and their API keys (stored as SHA-256 digests, never in clear)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.access import KeyGrant, ResourceKind, Scope, ids_from_lists
from shared.catalog import split_model_id
from shared.constants import API_KEY_PREFIX
from shared.ids import new_id, now_ms
from shared.ports.metadata import ITEM_EXISTS, ITEM_NOT_EXISTS, ConditionFailed, Delete, MetadataStore, Put
from shared.repos.keys import tenant_pk

_TENANT_SK = "TENANT"


def hash_api_key(api_key: str) -> str:
    """Digest under which a key is stored. Keys carry 256 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _key_pk(digest: str) -> str:
    return f"APIKEY#{digest}"


def key_id(digest: str) -> str:
    """How a key is named in listings and revocations: the start of its digest (never the key)."""
    return digest[:12]


@dataclass
class TenantModel:
    """A model the tenant has configured: ``llm_factory``/``llm_name``/``model_type`` as RAGFlow names them."""

    llm_factory: str
    llm_name: str
    model_type: str
    api_base: str | None = None
    api_key: str | None = None

    def to_item(self) -> dict[str, Any]:
        return {
            "llm_factory": self.llm_factory,
            "llm_name": self.llm_name,
            "model_type": self.model_type,
            "api_base": self.api_base,
            "api_key": self.api_key,
        }


@dataclass
class TenantFactory:
    """A factory the tenant holds an API key (and maybe an endpoint) for: every model of it the catalog lists
    is authorized (RAGFlow's "set API key" on a factory), and any model of a factory whose users name theirs."""

    llm_factory: str
    api_base: str | None = None
    api_key: str | None = None

    def to_item(self) -> dict[str, Any]:
        return {"llm_factory": self.llm_factory, "api_base": self.api_base, "api_key": self.api_key}


@dataclass
class Tenant:
    id: str
    name: str
    create_time: int
    llm_id: str | None = None
    embd_id: str | None = None
    rerank_id: str | None = None
    img2txt_id: str | None = None
    models: list[TenantModel] = field(default_factory=list)
    factories: list[TenantFactory] = field(default_factory=list)

    def has_model(self, name: str, factory: str, model_type: str) -> bool:
        return self.model_setting(f"{name}@{factory}", model_type) is not None

    def model_setting(self, model_id: str, *model_types: str) -> TenantModel | None:
        """The tenant's entry (endpoint, key) for ``model_id`` (``name@factory``), trying ``model_types`` in order."""
        name, factory = split_model_id(model_id)
        for model_type in model_types:
            for model in self.models:
                if model.llm_name == name and model.llm_factory == factory and model.model_type == model_type:
                    return model
        return None

    def factory_setting(self, factory: str) -> TenantFactory | None:
        """The tenant's key and endpoint for a whole factory, if it set them."""
        return next((f for f in self.factories if f.llm_factory == factory), None)

    def credentials(self, model_id: str, *model_types: str) -> tuple[str | None, str | None]:
        """``(api_base, api_key)`` for ``model_id``: its own entry (the first of ``model_types`` found), else its
        factory's, field by field; ``(None, None)`` when the tenant set neither."""
        own = self.model_setting(model_id, *model_types)
        shared = self.factory_setting(split_model_id(model_id)[1])
        api_base = (own.api_base if own else None) or (shared.api_base if shared else None)
        api_key = (own.api_key if own else None) or (shared.api_key if shared else None)
        return api_base or None, api_key or None

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": tenant_pk(self.id),
            "sk": _TENANT_SK,
            "id": self.id,
            "name": self.name,
            "create_time": self.create_time,
            "llm_id": self.llm_id,
            "embd_id": self.embd_id,
            "rerank_id": self.rerank_id,
            "img2txt_id": self.img2txt_id,
            "models": [m.to_item() for m in self.models],
            "factories": [f.to_item() for f in self.factories],
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Tenant:
        return cls(
            id=item["id"],
            name=item["name"],
            create_time=item["create_time"],
            llm_id=item.get("llm_id"),
            embd_id=item.get("embd_id"),
            rerank_id=item.get("rerank_id"),
            img2txt_id=item.get("img2txt_id"),
            models=[TenantModel(**m) for m in item.get("models", [])],
            factories=[TenantFactory(**f) for f in item.get("factories", [])],
        )


class TenantRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, tenant_id: str) -> Tenant | None:
        item = self._store.get(tenant_pk(tenant_id), _TENANT_SK)
        return None if item is None else Tenant.from_item(item)

    def create(self, tenant: Tenant) -> None:
        self._store.put(tenant.to_item(), ITEM_NOT_EXISTS)

    def save(self, tenant: Tenant) -> None:
        self._store.put(tenant.to_item())

    def issue_api_key(
        self,
        tenant_id: str,
        *,
        scope: Scope = "write",
        ids: Mapping[ResourceKind, Sequence[str]] | None = None,
    ) -> str:
        """Create a new key for the tenant and return it in clear (the only time it is visible).

        ``scope`` and ``ids`` (resource ids per kind the key is restricted to; None: unrestricted) are
        stored beside the digest (``shared.access``)."""
        api_key = API_KEY_PREFIX + secrets.token_hex(16)
        digest = hash_api_key(api_key)
        created = now_ms()
        limits: dict[str, Any] = {"scope": scope}
        if ids is not None:
            limits["ids"] = {kind: sorted(values) for kind, values in ids_from_lists(ids).items()}
        self._store.transact(
            [
                Put(
                    {"pk": _key_pk(digest), "sk": "APIKEY", "tenant_id": tenant_id, "create_time": created, **limits},
                    ITEM_NOT_EXISTS,
                ),
                Put(
                    {
                        "pk": tenant_pk(tenant_id),
                        "sk": f"APIKEY#{digest}",
                        "digest": digest,
                        "hint": api_key[-4:],
                        "create_time": created,
                        **limits,
                    }
                ),
            ]
        )
        return api_key

    def grant_for_key(self, api_key: str) -> KeyGrant | None:
        """What ``api_key`` may do (its tenant, scope and id lists), or None for an unknown key. Keys issued
        before scopes existed are unrestricted write keys."""
        digest = hash_api_key(api_key)
        item = self._store.get(_key_pk(digest), "APIKEY")
        if item is None:
            return None
        raw_ids = item.get("ids")
        return KeyGrant(
            tenant_id=str(item["tenant_id"]),
            scope=item.get("scope") or "write",
            ids=None if raw_ids is None else ids_from_lists(raw_ids),
            key_id=key_id(digest),
        )

    def tenant_for_key(self, api_key: str) -> str | None:
        """The id of the tenant owning ``api_key``, or None."""
        grant = self.grant_for_key(api_key)
        return None if grant is None else grant.tenant_id

    def list_api_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's keys as they are stored (digests, never the keys), oldest first."""
        items = self._store.query(tenant_pk(tenant_id), sk_prefix="APIKEY#")
        keys = [
            {
                "id": key_id(item["digest"]),
                "hint": item.get("hint", ""),
                "create_time": item.get("create_time"),
                "scope": item.get("scope") or "write",
                "ids": item.get("ids"),
            }
            for item in items
        ]
        return sorted(keys, key=lambda key: (key["create_time"] or 0, key["id"]))

    def revoke_api_key(self, tenant_id: str, key_id_prefix: str) -> bool:
        """Delete the tenant's key whose id starts with ``key_id_prefix``; False when none (or several) match."""
        items = self._store.query(tenant_pk(tenant_id), sk_prefix=f"APIKEY#{key_id_prefix.lower()}")
        if len(items) != 1 or not key_id_prefix:
            return False
        digest = items[0]["digest"]
        self._store.transact(
            [Delete(_key_pk(digest), "APIKEY", ITEM_EXISTS), Delete(tenant_pk(tenant_id), f"APIKEY#{digest}")]
        )
        return True

    def default_tenant_id(self) -> str | None:
        """The tenant created on a local server's first start, if any."""
        item = self._store.get("SYSTEM", "DEFAULT_TENANT")
        return None if item is None else str(item["tenant_id"])

    def set_default_tenant(self, tenant_id: str) -> bool:
        """Record the first-start tenant; False when another process recorded one first."""
        try:
            self._store.put({"pk": "SYSTEM", "sk": "DEFAULT_TENANT", "tenant_id": tenant_id}, ITEM_NOT_EXISTS)
        except ConditionFailed:
            return False
        return True


def new_tenant(name: str, *, embd_id: str | None = None) -> Tenant:
    return Tenant(id=new_id(), name=name, create_time=now_ms(), embd_id=embd_id)
