"""Builds the adapters and services from settings, once per process (a cached factory)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import cast

from shared.catalog import ModelCatalog, get_catalog
from shared.config import Settings, get_settings
from shared.constants import LOCAL_BLOB_DIR, LOCAL_DB_FILE, LOCAL_INDEX_DIR
from shared.ports.blobs import BlobStore
from shared.ports.metadata import MetadataStore
from shared.ports.search import SearchIndex
from shared.ports.workflow import Workflow
from shared.repos.datasets import DatasetRepository
from shared.repos.tenants import TenantRepository
from shared.services.auth import Authenticator
from shared.services.datasets import DatasetService
from shared.services.models import ModelAccess
from shared.services.tenants import TenantService


@dataclass
class Container:
    """The process's adapters and services. Adapters are built lazily so a function builds only what it uses."""

    settings: Settings
    overrides: dict[str, object] = field(default_factory=dict)

    # -- adapters ----------------------------------------------------------------------------------
    @cached_property
    def metadata(self) -> MetadataStore:
        if "metadata" in self.overrides:
            return cast(MetadataStore, self.overrides["metadata"])
        if self.settings.backend == "local":
            from shared.adapters.local.sqlite_store import SqliteMetadataStore

            return SqliteMetadataStore(self.settings.data_dir / LOCAL_DB_FILE)
        from shared.adapters.aws.dynamodb_store import DynamoMetadataStore

        assert self.settings.table_name is not None
        return DynamoMetadataStore(
            self.settings.table_name, region=self.settings.aws_region, host=self.settings.dynamodb_endpoint
        )

    @cached_property
    def blobs(self) -> BlobStore:
        if "blobs" in self.overrides:
            return cast(BlobStore, self.overrides["blobs"])
        if self.settings.backend == "local":
            from shared.adapters.local.fs_blobs import FilesystemBlobStore

            return FilesystemBlobStore(self.settings.data_dir / LOCAL_BLOB_DIR)
        from shared.adapters.aws.s3_blobs import S3BlobStore

        if not self.settings.documents_bucket:
            raise RuntimeError("FLOWLESS_DOCUMENTS_BUCKET is not set")
        return S3BlobStore(
            self.settings.documents_bucket,
            region=self.settings.aws_region,
            endpoint_url=self.settings.s3_endpoint,
        )

    @cached_property
    def search_index(self) -> SearchIndex | None:
        if self.settings.backend == "local":
            from shared.adapters.local.index_dir import LocalIndexDirectory

            return LocalIndexDirectory(self.settings.data_dir / LOCAL_INDEX_DIR)
        return None  # OpenSearch Serverless arrives with the retrieval work

    @cached_property
    def workflow(self) -> Workflow | None:
        if self.settings.backend == "local":
            from shared.adapters.local.worker import InProcessWorkflow

            return InProcessWorkflow()
        return None  # the parsing state machine arrives with the ingestion work

    @cached_property
    def catalog(self) -> ModelCatalog:
        return get_catalog()

    # -- repositories and services -----------------------------------------------------------------
    @cached_property
    def tenants(self) -> TenantRepository:
        return TenantRepository(self.metadata)

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.tenants)

    @cached_property
    def tenant_service(self) -> TenantService:
        return TenantService(self.tenants, self.catalog)

    @cached_property
    def datasets(self) -> DatasetService:
        return DatasetService(DatasetRepository(self.metadata), self.tenants, ModelAccess(self.catalog))

    def health_probes(self) -> dict[str, Callable[[], None]]:
        """RAGFlow's health names: db, storage, doc_engine, plus our workflow; only backends this process has."""
        probes: dict[str, Callable[[], None]] = {"db": self.metadata.ping}
        if self.settings.backend == "local" or self.settings.documents_bucket:
            probes["storage"] = self.blobs.ping
        if self.search_index is not None:
            probes["doc_engine"] = self.search_index.ping
        if self.workflow is not None:
            probes["workflow"] = self.workflow.ping
        return probes


@lru_cache(maxsize=1)
def get_container() -> Container:
    """The process-wide container built from the environment's settings."""
    return Container(get_settings())
