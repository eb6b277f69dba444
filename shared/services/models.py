"""Which models a tenant may use: the catalog says what exists, the tenant's settings what is authorized."""

from __future__ import annotations

from shared.catalog import BUILTIN_EMBEDDING_MODEL, ModelCatalog, ModelType, split_model_id
from shared.errors import ArgumentError
from shared.repos.tenants import Tenant


class ModelAccess:
    def __init__(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    def check(self, tenant: Tenant, model_id: str, model_type: ModelType) -> None:
        """Raise RAGFlow's "Unsupported model" (unknown) or "Unauthorized model" (known, not configured)."""
        name, factory = split_model_id(model_id)
        builtin = self._catalog.is_builtin(model_id) and self._catalog.find(model_id, model_type) is not None
        configured = tenant.has_model(name, factory, model_type)
        known = self._catalog.find(model_id, model_type) is not None
        if not (builtin or configured or known):
            raise ArgumentError(f"Unsupported model: <{model_id}>")
        if not (builtin or configured):
            raise ArgumentError(f"Unauthorized model: <{model_id}>")

    def default_embedding(self, tenant: Tenant) -> str:
        """The tenant's default embedding model, else the builtin one."""
        return tenant.embd_id or BUILTIN_EMBEDDING_MODEL
