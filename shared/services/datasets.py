"""Dataset use cases: create, list, update, delete, with RAGFlow's rules and answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import ArgumentError, DataError, PermissionDenied
from shared.ids import http_date, new_id, now_ms
from shared.repos.datasets import STORAGE_ATTRS, DatasetRepository, DuplicateName, Record
from shared.repos.tenants import Tenant, TenantRepository
from shared.schemas.common import deep_merge, path_uuid1
from shared.schemas.datasets import (
    PARSER_CONFIG_DEFAULTS,
    CreateDatasetRequest,
    DeleteDatasetsRequest,
    ListDatasetsQuery,
    UpdateDatasetRequest,
)
from shared.services.models import ModelAccess


def dataset_view(record: Record) -> dict[str, Any]:
    """A stored dataset as the API shows it."""
    return {key: value for key, value in record.items() if key not in STORAGE_ATTRS}


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
        """Create a dataset; the name is unique per tenant, compared case-insensitively."""
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
            "parser_config": request.resolved_parser_config(),
            "pipeline_id": request.pipeline_id,
            "parse_type": request.parse_type,
            "pagerank": 0,
            "similarity_threshold": 0.2,
            "vector_similarity_weight": 0.3,
            "status": "1",
            "chunk_count": 0,
            "document_count": 0,
            "token_num": 0,
            "create_time": now,
            "create_date": http_date(now),
            "update_time": now,
            "update_date": http_date(now),
        }
        try:
            self._datasets.create(record)
        except DuplicateName:
            raise ArgumentError(f"Dataset name '{request.name}' already exists") from None
        return dataset_view(record)

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
        if query.name is not None:
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
                changes["parser_config"] = PARSER_CONFIG_DEFAULTS[str(request.chunk_method)]
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
        """Delete the listed datasets (``ids: null`` means all). Unknown ids change nothing."""
        if request.ids is None:
            targets = self._datasets.all_of_tenant(tenant_id)
        else:
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
