"""Tenant administration (used by the CLI): create tenants, issue keys, set default models."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.access import ResourceKind, Scope
from shared.catalog import BUILTIN_EMBEDDING_MODEL, ModelCatalog, ModelType, split_model_id
from shared.errors import ArgumentError
from shared.repos.tenants import Tenant, TenantFactory, TenantModel, TenantRepository, new_tenant
from shared.services.models import not_shipped


@dataclass(frozen=True)
class ModelSetting:
    """A model to configure for a tenant, with the endpoint and key its provider needs (if any)."""

    model_id: str
    model_type: ModelType
    api_base: str | None = None
    api_key: str | None = None


#: Whether the tenant owns the resource of that kind (restricted keys may only name resources that exist).
ResourceCheck = Callable[[str, ResourceKind, str], bool]


@dataclass(frozen=True)
class FactorySetting:
    """An API key (and maybe an endpoint) for a whole factory: it authorizes every model the factory offers."""

    factory: str
    api_base: str | None = None
    api_key: str | None = None


class TenantService:
    def __init__(self, tenants: TenantRepository, catalog: ModelCatalog, owns: ResourceCheck | None = None) -> None:
        self._tenants = tenants
        self._catalog = catalog
        self._owns = owns

    def _configure(self, tenant: Tenant, setting: ModelSetting) -> None:
        # Any model of a factory whose users name theirs (Ollama, VLLM ...); a listed one elsewhere.
        if self._catalog.lookup(setting.model_id, setting.model_type) is None:
            raise ArgumentError(f"Unsupported model: <{setting.model_id}>")
        name, factory = split_model_id(setting.model_id)
        if self._catalog.is_builtin(setting.model_id) and setting.model_id not in self._catalog.shipped_builtin:
            raise not_shipped(setting.model_id, self._catalog.shipped_builtin)
        tenant.models = [
            m
            for m in tenant.models
            if not (m.llm_name == name and m.llm_factory == factory and m.model_type == setting.model_type)
        ]
        tenant.models.append(TenantModel(factory, name, setting.model_type, setting.api_base, setting.api_key))
        if setting.model_type == "chat":
            tenant.llm_id = setting.model_id
        elif setting.model_type == "embedding":
            tenant.embd_id = setting.model_id
        elif setting.model_type == "rerank":
            tenant.rerank_id = setting.model_id
        else:
            tenant.img2txt_id = setting.model_id

    def _configure_factory(self, tenant: Tenant, setting: FactorySetting) -> None:
        if setting.factory not in self._catalog.factories:
            raise ArgumentError(f"Unknown model factory: {setting.factory}")
        tenant.factories = [f for f in tenant.factories if f.llm_factory != setting.factory]
        tenant.factories.append(TenantFactory(setting.factory, setting.api_base, setting.api_key))

    def create(
        self, name: str, models: list[ModelSetting] | None = None, *, embd_id: str = BUILTIN_EMBEDDING_MODEL
    ) -> tuple[Tenant, str]:
        """Create a tenant with its default models and one API key; returns the key in clear.
        A new tenant's default embedding model is the builtin default unless ``embd_id`` names another."""
        tenant = new_tenant(name, embd_id=embd_id)
        for setting in models or []:
            self._configure(tenant, setting)
        self._tenants.create(tenant)
        return tenant, self._tenants.issue_api_key(tenant.id)

    def set_models(self, tenant_id: str, models: list[ModelSetting]) -> Tenant:
        """Configure (or reconfigure) models and defaults of an existing tenant."""
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise ArgumentError(f"Tenant '{tenant_id}' not found")
        for setting in models:
            self._configure(tenant, setting)
        self._tenants.save(tenant)
        return tenant

    def set_factory(self, tenant_id: str, setting: FactorySetting) -> Tenant:
        """Set (or replace) the tenant's API key and endpoint for a whole factory."""
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise ArgumentError(f"Tenant '{tenant_id}' not found")
        self._configure_factory(tenant, setting)
        self._tenants.save(tenant)
        return tenant

    def issue_key(
        self, tenant_id: str, scope: Scope = "write", ids: Mapping[ResourceKind, Sequence[str]] | None = None
    ) -> str:
        """A new API key for the tenant, with a scope and, when ``ids`` is given, restricted to those
        resources (each must be the tenant's). Returned in clear once; stored as a digest."""
        if self._tenants.get(tenant_id) is None:
            raise ArgumentError(f"Tenant '{tenant_id}' not found")
        if scope not in ("read", "write"):
            raise ArgumentError(f"Unknown scope '{scope}': use read or write")
        for kind, values in (ids or {}).items():
            for value in values:
                if not value or (self._owns is not None and not self._owns(tenant_id, kind, value)):
                    raise ArgumentError(f"The tenant has no {kind} '{value}'")
        return self._tenants.issue_api_key(tenant_id, scope=scope, ids=ids)

    def list_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's keys with their scopes and id lists (digest prefixes, never the keys)."""
        if self._tenants.get(tenant_id) is None:
            raise ArgumentError(f"Tenant '{tenant_id}' not found")
        return self._tenants.list_api_keys(tenant_id)

    def revoke_key(self, tenant_id: str, key_id: str) -> None:
        """Delete the key ``flowless tenant keys`` lists under ``key_id`` (or an unambiguous start of it)."""
        if not self._tenants.revoke_api_key(tenant_id, key_id):
            raise ArgumentError(f"No single key of tenant '{tenant_id}' has the id '{key_id}'")

    def ensure_default_tenant(self) -> tuple[str, str | None]:
        """The first-start tenant: ``(tenant_id, api_key)`` when created now, ``(tenant_id, None)`` after."""
        existing = self._tenants.default_tenant_id()
        if existing is not None:
            return existing, None
        tenant, api_key = self.create("default")
        if not self._tenants.set_default_tenant(tenant.id):
            winner = self._tenants.default_tenant_id()
            assert winner is not None
            return winner, None
        return tenant.id, api_key
