"""Dataset use cases: create, list, update, delete, with RAGFlow's rules and answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import ArgumentError, DataError, PermissionDenied
from shared.ids import http_date, new_id, now_ms, record_times
from shared.repos.datasets import STORAGE_ATTRS, DatasetRepository, DuplicateName, Record
from shared.repos.keys import without
from shared.repos.tenants import Tenant, TenantRepository
from shared.schemas.common import deep_merge, path_uuid1
from shared.schemas.datasets import (
    CreateDatasetRequest,
    DeleteDatasetsRequest,
    ListDatasetsQuery,
    UpdateDatasetRequest,
)
from shared.schemas.parser_config import default_parser_config, resolve_parser_config
from shared.services.models import ModelAccess
from shared.services.naming import duplicate_name

#: How many taken names a create steps over before giving up (RAGFlow's ``duplicate_name`` tries 1000).
_NAME_ATTEMPTS = 1000


def dataset_view(record: Record) -> dict[str, Any]:
    """A stored dataset as the API shows it."""
    return without(record, STORAGE_ATTRS)


class DatasetService:
    def __init__(
        self,
        datasets: DatasetRepository,
        tenants: TenantRepository,
        models: ModelAccess,
        *,
        purge: Callable[[Record], None] | None = None,
    ) -> None:
        self._datasets = datasets
        self._tenants = tenants
        self._models = models
        self._purge = purge

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise PermissionDenied("Tenant not found")
        return tenant

    def _owned(self, tenant_id: str, dataset_id: str) -> Record:
        record = self._datasets.get(tenant_id, dataset_id)
        if record is None:
            raise PermissionDenied(f"User '{tenant_id}' lacks permission for dataset '{dataset_id}'")
        return record

    def get_owned(self, tenant_id: str, dataset_id: str) -> Record:
        """The tenant's dataset; another tenant's id is answered exactly like a missing one."""
        return self._owned(tenant_id, dataset_id)

    def create(self, tenant_id: str, request: CreateDatasetRequest) -> dict[str, Any]:
        """Create a dataset. Names are unique per tenant, compared case-insensitively: a taken name is not an
        error, the dataset is named ``name(1)``, ``name(2)``… as RAGFlow's server does."""
        tenant = self._tenant(tenant_id)
        embedding_model = request.embedding_model or self._models.default_embedding(tenant)
        if request.embedding_model:
            self._models.check(tenant, embedding_model, "embedding")
        now = now_ms()
        record: Record = {
            "id": new_id(),
            "tenant_id": tenant_id,
            "created_by": tenant_id,
            "name": request.name,
            "avatar": request.avatar,
            "description": request.description,
            "language": "English",
            "embedding_model": embedding_model,
            "permission": request.permission,
            "chunk_method": request.chunk_method or "naive",
            # The tenant's chat model, whatever the client sent (RAGFlow sets it after merging).
            "parser_config": {
                **resolve_parser_config(request.chunk_method or "naive", None, request.parser_config_overrides()),
                "llm_id": tenant.llm_id or "",
            },
            "pipeline_id": request.pipeline_id,
            "parse_type": request.parse_type,
            "pagerank": 0,
            "similarity_threshold": 0.2,
            "vector_similarity_weight": 0.3,
            "status": "1",
            "chunk_count": 0,
            "document_count": 0,
            "token_num": 0,
            **record_times(now),
        }
        name = request.name
        for _ in range(_NAME_ATTEMPTS):
            name = duplicate_name(name, lambda n: self._datasets.get_by_name(tenant_id, n) is not None)
            record["name"] = name
            try:
                self._datasets.create(record)
                return dataset_view(record)
            except DuplicateName:
                continue  # a concurrent create took the name: the next free one
        raise DataError(f"Dataset name '{request.name}' already exists")

    def list(self, tenant_id: str, query: ListDatasetsQuery) -> tuple[list[dict[str, Any]], int]:
        """One page of the tenant's datasets, optionally narrowed to one id and/or one name."""
        if query.id is None and query.name is None:
            offset = (query.page - 1) * query.page_size
            items, total = self._datasets.page(
                tenant_id, orderby=query.orderby, desc=query.desc, offset=offset, limit=query.page_size
            )
            return [dataset_view(item) for item in items], total
        matches: list[Record] = []
        if query.id is not None:
            matches = [self._owned(tenant_id, query.id)]
        if query.name is not None:  # an empty name is no filter (the query model reads it as None)
            named = self._datasets.get_by_name(tenant_id, query.name)
            if named is None:
                raise PermissionDenied(f"User '{tenant_id}' lacks permission for dataset '{query.name}'")
            matches = [named] if query.id is None or matches[0]["id"] == named["id"] else []
        start = (query.page - 1) * query.page_size
        return [dataset_view(item) for item in matches[start : start + query.page_size]], len(matches)

    def update(self, tenant_id: str, dataset_id: str, request: UpdateDatasetRequest) -> dict[str, Any]:
        """Change a dataset's settings; the embedding model is frozen once it has chunks."""
        dataset_id = path_uuid1("dataset_id", dataset_id)
        provided = set(request.model_fields_set)
        if not provided:
            raise ArgumentError("No properties were modified")
        current = self._owned(tenant_id, dataset_id)
        changes: dict[str, Any] = {
            field: getattr(request, field)
            for field in provided & {"name", "avatar", "description", "permission", "pagerank"}
        }
        overrides = request.parser_config_overrides()
        if overrides:
            changes["parser_config"] = deep_merge(current["parser_config"], overrides)
        if "chunk_method" in provided and request.chunk_method != current["chunk_method"]:
            changes["chunk_method"] = request.chunk_method
            if not overrides:
                # The new method's defaults; the dataset keeps its chat model.
                llm_id = current["parser_config"].get("llm_id", self._tenant(tenant_id).llm_id)
                changes["parser_config"] = default_parser_config(str(request.chunk_method), llm_id)
        if "embedding_model" in provided:
            embedding_model = request.embedding_model or current["embedding_model"]
            if current["chunk_count"] != 0 and embedding_model != current["embedding_model"]:
                raise DataError(
                    f"When chunk_num ({current['chunk_count']}) > 0, "
                    f"embedding_model must remain {current['embedding_model']}"
                )
            self._models.check(self._tenant(tenant_id), embedding_model, "embedding")
            changes["embedding_model"] = embedding_model
        now = now_ms()
        changes.update(update_time=now, update_date=http_date(now))
        try:
            updated = self._datasets.update(current, changes)
        except DuplicateName:
            raise DataError(f"Dataset name '{request.name}' already exists") from None
        return dataset_view(updated)

    def delete(self, tenant_id: str, request: DeleteDatasetsRequest) -> None:
        """Delete the listed datasets, all of them, or none (``request.scope()``). Unknown ids change nothing."""
        scope = request.scope()
        if scope == "none":
            return
        if scope == "all":
            targets = self._datasets.all_of_tenant(tenant_id)
        else:
            assert request.ids is not None
            targets = []
            missing = []
            for dataset_id in request.ids:
                record = self._datasets.get(tenant_id, dataset_id)
                if record is None:
                    missing.append(dataset_id)
                else:
                    targets.append(record)
            if missing:
                raise PermissionDenied(f"User '{tenant_id}' lacks permission for datasets: '{', '.join(missing)}'")
        for record in targets:
            if self._purge is not None:
                self._purge(record)  # documents, chunks, blobs and index entries go first
            self._datasets.delete(record)
