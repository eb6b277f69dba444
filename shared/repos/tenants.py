"""Tenants, their model and factory settings (their API keys in the secret store), and their API keys (stored as
SHA-256 digests, never in clear)."""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.access import KeyGrant, ResourceKind, Scope, ids_from_lists
from shared.catalog import split_model_id
from shared.constants import API_KEY_PREFIX
from shared.ids import new_id, now_ms
from shared.ports.metadata import ITEM_EXISTS, ITEM_NOT_EXISTS, ConditionFailed, Delete, MetadataStore, Put
from shared.ports.secrets import SecretStore
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


class _KeyHolder(ABC):
    """A setting whose API key is not part of the tenant's record: the repository writes it to the secret store
    and keeps ``api_key_ref``; reading ``api_key`` fetches it from there the first time (only functions that build
    model clients ever do). A key just set is held in memory until the repository stores it."""

    __slots__ = ("_api_key", "_reveal", "_stored", "api_base", "api_key_ref")

    def __init__(self, api_base: str | None, api_key: str | None, api_key_ref: str | None) -> None:
        self.api_base = api_base
        self.api_key_ref = api_key_ref
        self._api_key = api_key
        self._stored = api_key is None
        self._reveal: Callable[[str], str] | None = None

    @property
    def api_key(self) -> str | None:
        if self._api_key is None and self.api_key_ref is not None and self._reveal is not None:
            self._api_key = self._reveal(self.api_key_ref)
        return self._api_key

    @property
    def unstored_key(self) -> str | None:
        """The key set in memory and not yet written to the secret store."""
        return None if self._stored else self._api_key

    def stored_as(self, reference: str) -> None:
        self.api_key_ref = reference
        self._stored = True

    def read_key_with(self, reveal: Callable[[str], str]) -> None:
        """How ``api_key`` reads the key behind ``api_key_ref``."""
        self._reveal = reveal

    @abstractmethod
    def _identity(self) -> tuple[str, ...]:
        """What the setting is (its kind, then its names): the secret's name is derived from it."""

    def secret_name(self, tenant_id: str) -> str:
        """Where the key goes in the secret store: one name per tenant and setting."""
        kind, *names = self._identity()
        digest = hashlib.sha256("\0".join(names).encode()).hexdigest()
        return f"tenants/{tenant_id}/{kind}/{digest[:32]}"

    def _key_fields(self, with_key: bool) -> dict[str, Any]:
        if self.api_key_ref is not None:
            return {"api_key_ref": self.api_key_ref}
        return {"api_key": self._api_key} if with_key else {}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _KeyHolder)
        mine = (self._identity(), self.api_base, self.api_key_ref, self._api_key)
        return mine == (other._identity(), other.api_base, other.api_key_ref, other._api_key)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclasses these replace


class TenantModel(_KeyHolder):
    """A model the tenant has configured: ``llm_factory``/``llm_name``/``model_type`` as RAGFlow names them."""

    __slots__ = ("llm_factory", "llm_name", "model_type")

    def __init__(
        self,
        llm_factory: str,
        llm_name: str,
        model_type: str,
        api_base: str | None = None,
        api_key: str | None = None,
        *,
        api_key_ref: str | None = None,
    ) -> None:
        super().__init__(api_base, api_key, api_key_ref)
        self.llm_factory = llm_factory
        self.llm_name = llm_name
        self.model_type = model_type

    def _identity(self) -> tuple[str, ...]:
        return ("models", self.llm_factory, self.llm_name, self.model_type)

    def to_item(self, *, with_key: bool = False) -> dict[str, Any]:
        """The stored form: the key's reference, or (``with_key``, no secret store) the key itself."""
        item: dict[str, Any] = {
            "llm_factory": self.llm_factory,
            "llm_name": self.llm_name,
            "model_type": self.model_type,
            "api_base": self.api_base,
        }
        return item | self._key_fields(with_key)

    def __repr__(self) -> str:  # never the key itself
        return (
            f"TenantModel({self.llm_factory!r}, {self.llm_name!r}, {self.model_type!r}, api_base={self.api_base!r}, "
            f"api_key_ref={self.api_key_ref!r})"
        )


class TenantFactory(_KeyHolder):
    """A factory the tenant holds an API key (and maybe an endpoint) for: every model of it the catalog lists
    is authorized (RAGFlow's "set API key" on a factory), and any model of a factory whose users name theirs."""

    __slots__ = ("llm_factory",)

    def __init__(
        self,
        llm_factory: str,
        api_base: str | None = None,
        api_key: str | None = None,
        *,
        api_key_ref: str | None = None,
    ) -> None:
        super().__init__(api_base, api_key, api_key_ref)
        self.llm_factory = llm_factory

    def _identity(self) -> tuple[str, ...]:
        return ("factories", self.llm_factory)

    def to_item(self, *, with_key: bool = False) -> dict[str, Any]:
        """The stored form: the key's reference, or (``with_key``, no secret store) the key itself."""
        return {"llm_factory": self.llm_factory, "api_base": self.api_base} | self._key_fields(with_key)

    def __repr__(self) -> str:  # never the key itself
        return f"TenantFactory({self.llm_factory!r}, api_base={self.api_base!r}, api_key_ref={self.api_key_ref!r})"


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

    def key_holders(self) -> list[TenantModel | TenantFactory]:
        """Every setting that may carry an API key."""
        return [*self.models, *self.factories]

    def to_item(self, *, with_keys: bool = False) -> dict[str, Any]:
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
            "models": [m.to_item(with_key=with_keys) for m in self.models],
            "factories": [f.to_item(with_key=with_keys) for f in self.factories],
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
    """Tenants and their API keys. ``secrets`` (built when first needed) keeps the tenants' model API keys;
    without one they are stored in the tenant's record (tests of the storage contract alone)."""

    def __init__(self, store: MetadataStore, secrets: Callable[[], SecretStore] | None = None) -> None:
        self._store = store
        self._secrets = secrets

    def get(self, tenant_id: str) -> Tenant | None:
        item = self._store.get(tenant_pk(tenant_id), _TENANT_SK)
        if item is None:
            return None
        tenant = Tenant.from_item(item)
        if self._secrets is not None:
            vault = self._secrets
            for holder in tenant.key_holders():
                holder.read_key_with(lambda reference: vault().get(reference))
        return tenant

    def create(self, tenant: Tenant) -> None:
        self._store.put(self._stored_form(tenant), ITEM_NOT_EXISTS)

    def save(self, tenant: Tenant) -> None:
        previous = self._store.get(tenant_pk(tenant.id), _TENANT_SK)
        self._store.put(self._stored_form(tenant))
        if self._secrets is not None and previous is not None:
            kept = {holder.api_key_ref for holder in tenant.key_holders()}
            for setting in [*previous.get("models", []), *previous.get("factories", [])]:
                if setting.get("api_key_ref") and setting["api_key_ref"] not in kept:
                    self._secrets().delete(setting["api_key_ref"])

    def _stored_form(self, tenant: Tenant) -> dict[str, Any]:
        """The tenant's item, its models' and factories' new keys written to the secret store first."""
        if self._secrets is None:
            return tenant.to_item(with_keys=True)
        for holder in tenant.key_holders():
            key = holder.unstored_key
            if key is not None:
                holder.stored_as(self._secrets().put(holder.secret_name(tenant.id), key))
        return tenant.to_item()

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
