"""Tenants, their model settings, and their API keys (stored as SHA-256 digests, never in clear)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from shared.catalog import split_model_id
from shared.constants import API_KEY_PREFIX
from shared.ids import new_id, now_ms
from shared.ports.metadata import ITEM_NOT_EXISTS, ConditionFailed, MetadataStore, Put
from shared.repos.keys import tenant_pk

_TENANT_SK = "TENANT"


def hash_api_key(api_key: str) -> str:
    """Digest under which a key is stored. Keys carry 256 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _key_pk(digest: str) -> str:
    return f"APIKEY#{digest}"


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
class Tenant:
    id: str
    name: str
    create_time: int
    llm_id: str | None = None
    embd_id: str | None = None
    rerank_id: str | None = None
    img2txt_id: str | None = None
    models: list[TenantModel] = field(default_factory=list)

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

    def issue_api_key(self, tenant_id: str) -> str:
        """Create a new key for the tenant and return it in clear (the only time it is visible)."""
        api_key = API_KEY_PREFIX + secrets.token_hex(16)
        digest = hash_api_key(api_key)
        created = now_ms()
        self._store.transact(
            [
                Put(
                    {"pk": _key_pk(digest), "sk": "APIKEY", "tenant_id": tenant_id, "create_time": created},
                    ITEM_NOT_EXISTS,
                ),
                Put(
                    {
                        "pk": tenant_pk(tenant_id),
                        "sk": f"APIKEY#{digest}",
                        "digest": digest,
                        "hint": api_key[-4:],
                        "create_time": created,
                    }
                ),
            ]
        )
        return api_key

    def tenant_for_key(self, api_key: str) -> str | None:
        """The id of the tenant owning ``api_key``, or None."""
        item = self._store.get(_key_pk(hash_api_key(api_key)), "APIKEY")
        return None if item is None else str(item["tenant_id"])

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


def new_tenant(name: str) -> Tenant:
    return Tenant(id=new_id(), name=name, create_time=now_ms())
