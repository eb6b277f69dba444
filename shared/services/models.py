"""Which models a tenant may use, as RAGFlow decides: the catalog says what exists, the tenant's settings what is
authorized, and the tenant's defaults fill in what a request leaves out."""

from __future__ import annotations

from shared.catalog import BUILTIN_EMBEDDING_MODEL, BUILTIN_FACTORY, ModelCatalog, ModelType
from shared.errors import ArgumentError
from shared.repos.tenants import Tenant


def unsupported(model_id: str) -> ArgumentError:
    return ArgumentError(f"Unsupported model: <{model_id}>")


def unauthorized(model_id: str) -> ArgumentError:
    return ArgumentError(f"Unauthorized model: <{model_id}>")


def not_shipped(model_id: str, shipped: tuple[str, ...]) -> ArgumentError:
    return ArgumentError(
        f"Builtin model <{model_id}> is not shipped with this server; the builtin models are: {', '.join(shipped)}"
    )


class ModelAccess:
    def __init__(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    def authorized(self, tenant: Tenant, name: str, factory: str, model_type: str) -> bool:
        """The tenant configured the model, or holds a key for its factory and the factory offers it."""
        if tenant.has_model(name, factory, model_type):
            return True
        if tenant.factory_setting(factory) is None:
            return False
        listed = self._catalog.find(f"{name}@{factory}", model_type) is not None
        return listed or not self._catalog.lists_models(factory)

    def resolve(self, tenant: Tenant, model_id: str, model_type: ModelType) -> str:
        """The ``name@factory`` the tenant may use for ``model_id``; a bare name resolves against the tenant's
        factories. Raises RAGFlow's 101 answers: "Unsupported model" (absent from the catalog) or "Unauthorized
        model" (known, not configured for the tenant); a known builtin that is not shipped names those that are."""
        name, factory = self._catalog.parse(model_id)
        if factory is None:
            return self._resolve_bare(tenant, model_id, model_type)
        if factory == BUILTIN_FACTORY and model_type == "embedding":
            if model_id in self._catalog.shipped_builtin:
                return model_id
            if self._catalog.find(model_id, model_type) is None:
                raise unsupported(model_id)
            raise not_shipped(model_id, self._catalog.shipped_builtin)
        if self.authorized(tenant, name, factory, model_type):
            return model_id
        if self._catalog.find(model_id, model_type) is not None:
            raise unauthorized(model_id)
        raise unsupported(model_id)

    def _resolve_bare(self, tenant: Tenant, name: str, model_type: ModelType) -> str:
        configured = [m.llm_factory for m in tenant.models if m.llm_name == name and m.model_type == model_type]
        offered = [f.llm_factory for f in tenant.factories if self.authorized(tenant, name, f.llm_factory, model_type)]
        for factory in [*configured, *offered]:
            if factory in self._catalog.factories:
                return f"{name}@{factory}"
        if model_type == "embedding" and f"{name}@{BUILTIN_FACTORY}" in self._catalog.shipped_builtin:
            return f"{name}@{BUILTIN_FACTORY}"
        if self._catalog.factories_listing(name, model_type):
            raise unauthorized(name)
        raise unsupported(name)

    def check(self, tenant: Tenant, model_id: str, model_type: ModelType) -> None:
        """Raise RAGFlow's "Unsupported model" (unknown) or "Unauthorized model" (known, not configured)."""
        self.resolve(tenant, model_id, model_type)

    def default_embedding(self, tenant: Tenant) -> str:
        """The tenant's default embedding model (``embd_id``), else the builtin default."""
        return tenant.embd_id or BUILTIN_EMBEDDING_MODEL

    def default_chat(self, tenant: Tenant) -> str | None:
        """The tenant's default chat model (``llm_id``): a chat without ``llm.model_name`` uses it, and so does
        a dataset's ``parser_config.llm_id``. None when the tenant has none."""
        return tenant.llm_id or None
