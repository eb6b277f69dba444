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
            shipped = self._catalog.models_of(factory, model_type) if self._catalog.is_builtin(model_id) else []
            if shipped:
                # RAGFlow also lists BAAI/bge-m3 and Qwen/Qwen3-Embedding-0.6B as builtin; they are not shipped.
                names = ", ".join(info.id for info in shipped)
                raise ArgumentError(
                    f"Unsupported model: <{model_id}>: not shipped with this server; its builtin {model_type} "
                    f"models are {names}"
                )
            raise ArgumentError(f"Unsupported model: <{model_id}>")
        if not (builtin or configured):
            raise ArgumentError(f"Unauthorized model: <{model_id}>")

    def default_embedding(self, tenant: Tenant) -> str:
        """The tenant's default embedding model, else the builtin one."""
        return tenant.embd_id or BUILTIN_EMBEDDING_MODEL
