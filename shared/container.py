"""Builds the adapters and services from settings, once per process (a cached factory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, cast

from shared.access import ResourceKind, normalize_id
from shared.config import Settings, get_settings
from shared.constants import LOCAL_BLOB_DIR, LOCAL_BUCKET_NAME, LOCAL_DB_FILE, LOCAL_INDEX_DIR, LOCAL_UPLOAD_DIR

if TYPE_CHECKING:  # imported where built: a function loads only the ports and services it uses, when first used
    from shared.catalog import ModelCatalog
    from shared.ports.blobs import BlobStore
    from shared.ports.chat_model import ChatModel
    from shared.ports.embedder import Embedder
    from shared.ports.events import DomainEvent, EventPublisher
    from shared.ports.metadata import MetadataStore
    from shared.ports.search import IndexedChunk, SearchIndex
    from shared.ports.secrets import SecretStore
    from shared.ports.uploads import ObjectCatalog, UploadStore
    from shared.ports.webhooks import DeliveryQueue, WebhookSender
    from shared.ports.workflow import Workflow
    from shared.repos.datasets import DatasetRepository
    from shared.repos.documents import DocumentRepository
    from shared.repos.files import FileRepository
    from shared.repos.tenants import Tenant, TenantRepository
    from shared.services.agent_completions import AgentCompletionService
    from shared.services.agents import AgentService
    from shared.services.auth import Authenticator
    from shared.services.chats import ChatService
    from shared.services.chunks import ChunkService
    from shared.services.completions import CompletionService
    from shared.services.datasets import DatasetService
    from shared.services.documents import DocumentService
    from shared.services.file_mirror import KnowledgebaseMirror
    from shared.services.files import FileService
    from shared.services.graph_search import GraphSearch
    from shared.services.ingestion import IngestionService
    from shared.services.knowledge import GraphStore, KnowledgeService
    from shared.services.knowledge_builds import KnowledgeBuilder
    from shared.services.models import ModelAccess
    from shared.services.retrieval import RetrievalService
    from shared.services.tenants import TenantService
    from shared.services.uploads import UploadService
    from shared.services.webhooks import WebhookService
    from shared.webhooks.policy import OutboundPolicy


@dataclass
class Container:
    """The process's adapters and services. Adapters are built lazily so a function builds only what it uses."""

    settings: Settings
    overrides: dict[str, object] = field(default_factory=dict)
    #: Called with a backend's name (the route registry's needs: metadata, blobs, search, workflow, builds)
    #: just before its AWS adapter is built. The Lambda functions patch the backend's client library for
    #: X-Ray then, so a function imports a library when a request first uses it (never, if none does).
    instrument: Callable[[str], None] = field(default=lambda backend: None, repr=False)

    # -- adapters ----------------------------------------------------------------------------------
    @cached_property
    def metadata(self) -> MetadataStore:
        if "metadata" in self.overrides:
            return cast("MetadataStore", self.overrides["metadata"])
        if self.settings.backend == "local":
            from shared.adapters.local.sqlite_store import SqliteMetadataStore

            return SqliteMetadataStore(self.settings.data_dir / LOCAL_DB_FILE)
        self.instrument("metadata")
        from shared.adapters.aws.dynamodb_store import DynamoMetadataStore

        assert self.settings.table_name is not None
        return DynamoMetadataStore(
            self.settings.table_name, region=self.settings.aws_region, host=self.settings.dynamodb_endpoint
        )

    @cached_property
    def blobs(self) -> BlobStore:
        if "blobs" in self.overrides:
            return cast("BlobStore", self.overrides["blobs"])
        if self.settings.backend == "local":
            from shared.adapters.local.fs_blobs import FilesystemBlobStore

            return FilesystemBlobStore(self.settings.data_dir / LOCAL_BLOB_DIR)
        self.instrument("blobs")
        from shared.adapters.aws.s3_blobs import S3BlobStore

        if not self.settings.documents_bucket:
            raise RuntimeError("FLOWLESS_DOCUMENTS_BUCKET is not set")
        return S3BlobStore(
            self.settings.documents_bucket,
            region=self.settings.aws_region,
            endpoint_url=self.settings.s3_endpoint,
            kms_key_id=self.settings.documents_kms_key,
        )

    @cached_property
    def search_index(self) -> SearchIndex:
        if "search_index" in self.overrides:
            return cast("SearchIndex", self.overrides["search_index"])
        if self.settings.backend == "local":
            from shared.adapters.local.embedded_index import EmbeddedSearchIndex

            return cast("SearchIndex", EmbeddedSearchIndex(self.settings.data_dir / LOCAL_INDEX_DIR))
        if self.settings.search_engine == "embedded":
            from shared.adapters.aws.shard_index import ShardSnapshotIndex

            return ShardSnapshotIndex(
                store=self.metadata, blobs=self.blobs, truth=self._shard_truth, cache_dir=self.settings.shard_cache_dir
            )
        if not self.settings.opensearch_endpoint:
            raise RuntimeError("FLOWLESS_OPENSEARCH_ENDPOINT is not set")
        self.instrument("search")
        from shared.adapters.aws.opensearch_index import OpenSearchIndex

        return cast("SearchIndex", OpenSearchIndex(self.settings.opensearch_endpoint, region=self.settings.aws_region))

    def _shard_truth(self, tenant_id: str, dataset_id: str) -> Iterator[IndexedChunk]:
        """What a shard of the embedded engine on AWS is rebuilt from: the dataset's chunks and graph records."""
        from shared.repos.knowledge import RECORD_PREFIX, GraphRepository
        from shared.services.ingestion import dataset_indexed_chunks
        from shared.services.knowledge import record_to_indexed

        yield from dataset_indexed_chunks(self.document_repo, tenant_id, dataset_id)
        graphs = GraphRepository(self.metadata)
        for kind in RECORD_PREFIX:
            for record in graphs.records(dataset_id, kind):
                if record.get("tenant_id") == tenant_id:
                    yield record_to_indexed(record)

    @cached_property
    def workflow(self) -> Workflow:
        if "workflow" in self.overrides:
            return cast("Workflow", self.overrides["workflow"])
        if self.settings.backend == "local":
            from shared.adapters.local.worker import PipelineWorkflow

            return PipelineWorkflow(self.ingestion)
        if not self.settings.state_machine_arn:
            raise RuntimeError("FLOWLESS_STATE_MACHINE_ARN is not set")
        self.instrument("workflow")
        from shared.adapters.aws.stepfunctions_workflow import StepFunctionsWorkflow

        return StepFunctionsWorkflow(self.settings.state_machine_arn, region=self.settings.aws_region)

    @cached_property
    def secrets(self) -> SecretStore:
        """Where tenants' model API keys are kept (built only by a process that reads or writes one)."""
        if "secrets" in self.overrides:
            return cast("SecretStore", self.overrides["secrets"])
        if self.settings.backend == "local":
            from shared.adapters.local.store_secrets import StoreSecretStore

            return StoreSecretStore(self.metadata)
        if not self.settings.secrets_prefix:
            raise RuntimeError("FLOWLESS_SECRETS_PREFIX is not set: tenants' model API keys are kept in SSM")
        self.instrument("secrets")
        from shared.adapters.aws.ssm_secrets import SsmSecretStore

        return SsmSecretStore(
            self.settings.secrets_prefix,
            region=self.settings.aws_region,
            kms_key_id=self.settings.secrets_kms_key,
            endpoint_url=self.settings.ssm_endpoint,
        )

    @cached_property
    def document_blobs(self) -> BlobStore:
        """The blob store as documents see it: imported documents point at objects read through the catalog."""
        from shared.adapters.blob_references import BlobsWithReferences

        return BlobsWithReferences(self.blobs, lambda: self.object_catalog)

    @cached_property
    def upload_store(self) -> UploadStore:
        if "upload_store" in self.overrides:
            return cast("UploadStore", self.overrides["upload_store"])
        if self.settings.backend == "local":
            from shared.adapters.local.fs_blobs import FilesystemBlobStore
            from shared.adapters.local.part_store import LocalUploadStore

            return LocalUploadStore(self.settings.data_dir / LOCAL_UPLOAD_DIR, cast(FilesystemBlobStore, self.blobs))
        from shared.adapters.aws.s3_uploads import S3UploadStore, s3_client

        return S3UploadStore(
            self.documents_bucket,
            s3_client(self.settings.aws_region, self.settings.s3_endpoint),
            kms_key_id=self.settings.documents_kms_key,
        )

    @cached_property
    def object_catalog(self) -> ObjectCatalog:
        if "object_catalog" in self.overrides:
            return cast("ObjectCatalog", self.overrides["object_catalog"])
        if self.settings.backend == "local":
            from shared.adapters.local.part_store import FolderCatalog

            return FolderCatalog(
                {**self.settings.local_buckets, self.documents_bucket: self.settings.data_dir / LOCAL_BLOB_DIR}
            )
        from shared.adapters.aws.s3_uploads import S3ObjectCatalog, s3_client

        return S3ObjectCatalog(s3_client(self.settings.aws_region, self.settings.s3_endpoint))

    @property
    def documents_bucket(self) -> str:
        """The documents bucket's name (locally a name for the blob folder, so imports name it alike)."""
        if self.settings.documents_bucket:
            return self.settings.documents_bucket
        if self.settings.backend == "local":
            return LOCAL_BUCKET_NAME
        raise RuntimeError("FLOWLESS_DOCUMENTS_BUCKET is not set")

    @cached_property
    def events(self) -> EventPublisher:
        """Where ends of work are announced: EventBridge on AWS (none without a bus), the in-process
        dispatcher locally, whose subscriber is the webhook fan-out."""
        if "events" in self.overrides:
            return cast("EventPublisher", self.overrides["events"])
        if self.settings.backend == "local":
            from shared.adapters.local.event_dispatcher import LocalEventDispatcher

            dispatcher = LocalEventDispatcher()
            dispatcher.subscribe(self._fan_out)
            return dispatcher
        if not self.settings.event_bus:
            from shared.ports.events import DisabledEventPublisher

            return DisabledEventPublisher()
        from shared.adapters.aws.eventbridge_events import EventBridgePublisher

        return EventBridgePublisher(self.settings.event_bus, region=self.settings.aws_region)

    def _fan_out(self, event: DomainEvent) -> None:
        self.webhooks.fan_out(event)

    @cached_property
    def delivery_queue(self) -> DeliveryQueue:
        if "delivery_queue" in self.overrides:
            return cast("DeliveryQueue", self.overrides["delivery_queue"])
        if self.settings.backend == "local":
            from shared.adapters.local.delivery_queue import LocalDeliveryQueue

            return LocalDeliveryQueue(self.webhooks.deliver)
        if not self.settings.webhook_queue_url:
            raise RuntimeError("FLOWLESS_WEBHOOK_QUEUE_URL is not set")
        from shared.adapters.aws.sqs_delivery_queue import SqsDeliveryQueue

        return SqsDeliveryQueue(self.settings.webhook_queue_url, region=self.settings.aws_region)

    @cached_property
    def webhook_sender(self) -> WebhookSender:
        if "webhook_sender" in self.overrides:
            return cast("WebhookSender", self.overrides["webhook_sender"])
        from shared.adapters.http_webhook_sender import HttpWebhookSender

        return HttpWebhookSender(self.outbound_policy, timeout_s=self.settings.webhook_timeout_s)

    @property
    def outbound_policy(self) -> OutboundPolicy:
        from shared.webhooks.policy import OutboundPolicy

        return OutboundPolicy(
            allow_http=self.settings.webhooks_allow_http, allow_private=self.settings.webhook_allow_private
        )

    @cached_property
    def build_workflow(self) -> Workflow:
        """Where knowledge-graph / RAPTOR builds run: a worker of their own locally, their state machine on AWS."""
        if "build_workflow" in self.overrides:
            return cast("Workflow", self.overrides["build_workflow"])
        if self.settings.backend == "local":
            from shared.adapters.local.worker import InProcessWorkflow

            return InProcessWorkflow(run_build=lambda task: self.knowledge_builds.run_task(task))
        if not self.settings.build_state_machine_arn:
            raise RuntimeError("FLOWLESS_BUILD_STATE_MACHINE_ARN is not set")
        self.instrument("builds")
        from shared.adapters.aws.stepfunctions_workflow import StepFunctionsWorkflow

        return StepFunctionsWorkflow(
            None, region=self.settings.aws_region, build_state_machine_arn=self.settings.build_state_machine_arn
        )

    @cached_property
    def catalog(self) -> ModelCatalog:
        from shared.catalog import get_catalog

        return get_catalog()

    def _models(self) -> ModelAccess:
        from shared.services.models import ModelAccess

        return ModelAccess(self.catalog)

    # -- repositories and services -----------------------------------------------------------------
    @cached_property
    def tenants(self) -> TenantRepository:
        from shared.repos.tenants import TenantRepository

        return TenantRepository(self.metadata, secrets=lambda: self.secrets)

    @cached_property
    def authenticator(self) -> Authenticator:
        from shared.services.auth import Authenticator

        return Authenticator(self.tenants)

    @cached_property
    def tenant_service(self) -> TenantService:
        from shared.services.tenants import TenantService

        return TenantService(self.tenants, self.catalog, owns=self._owns)

    def _owns(self, tenant_id: str, kind: ResourceKind, resource_id: str) -> bool:
        """Whether ``tenant_id`` has that dataset, chat or agent (a scoped key may only name its own)."""
        from shared.repos.agents import AgentRepository
        from shared.repos.chats import ChatRepository

        resource_id = normalize_id(resource_id)
        if kind == "dataset":
            return self.dataset_repo.get(tenant_id, resource_id) is not None
        if kind == "chat":
            return ChatRepository(self.metadata).get(tenant_id, resource_id) is not None
        return AgentRepository(self.metadata).get(tenant_id, resource_id) is not None

    @cached_property
    def dataset_repo(self) -> DatasetRepository:
        from shared.repos.datasets import DatasetRepository

        return DatasetRepository(self.metadata)

    @cached_property
    def document_repo(self) -> DocumentRepository:
        from shared.repos.documents import DocumentRepository

        return DocumentRepository(self.metadata)

    @cached_property
    def datasets(self) -> DatasetService:
        from shared.services.datasets import DatasetService

        return DatasetService(
            self.dataset_repo,
            self.tenants,
            self._models(),
            purge=self._purge_dataset,
        )

    def _purge_dataset(self, dataset: dict[str, Any]) -> None:
        from shared.repos.knowledge import BuildTaskRepository

        self.documents.purge_dataset(dataset)
        # Its knowledge graph and build tasks too (a running build then stops at its next step).
        self.graph_store.delete(dataset["tenant_id"], dataset["id"], with_work=True)
        BuildTaskRepository(self.metadata).delete_all(dataset["id"])

    @cached_property
    def documents(self) -> DocumentService:
        from shared.services.documents import DocumentService

        return DocumentService(
            self.dataset_repo,
            self.document_repo,
            self.document_blobs,
            lambda: self.search_index,
            max_file_bytes=self.settings.max_upload_bytes,
            # Deleted documents leave the knowledge graph (their RAPTOR chunks went with their chunks).
            on_deleted=lambda tenant_id, dataset_id, ids: self.graph_store.forget(tenant_id, dataset_id, ids),
            mirror=self.file_mirror,
        )

    @cached_property
    def file_repo(self) -> FileRepository:
        from shared.repos.files import FileRepository

        return FileRepository(self.metadata)

    @cached_property
    def file_mirror(self) -> KnowledgebaseMirror:
        from shared.services.file_mirror import KnowledgebaseMirror

        return KnowledgebaseMirror(self.file_repo, self.dataset_repo, self.document_repo)

    @cached_property
    def files(self) -> FileService:
        from shared.services.files import FileService

        return FileService(
            self.file_repo,
            self.file_mirror,
            self.dataset_repo,
            self.document_repo,
            lambda record: self.documents.remove_document(record),
            self.blobs,
            max_file_bytes=self.settings.max_upload_bytes,
        )

    @cached_property
    def chunks(self) -> ChunkService:
        from shared.services.chunks import ChunkService

        return ChunkService(
            datasets=self.dataset_repo,
            documents=self.document_repo,
            tenants=self.tenants,
            index=lambda: self.search_index,
            embedder_for=tenant_embedder,
        )

    @cached_property
    def chats(self) -> ChatService:
        from shared.repos.chats import ChatRepository, SessionRepository
        from shared.services.chats import ChatService

        return ChatService(
            chats=ChatRepository(self.metadata),
            sessions=SessionRepository(self.metadata),
            datasets=self.dataset_repo,
            tenants=self.tenants,
            models=self._models(),
        )

    @cached_property
    def retrieval(self) -> RetrievalService:
        from shared.services.retrieval import RetrievalService

        return RetrievalService(
            store=self.metadata,
            datasets=self.dataset_repo,
            documents=self.document_repo,
            tenants=self.tenants,
            index=lambda: self.search_index,
            embedder_for=tenant_embedder,
            models=self._models(),
            chat_model_for=tenant_chat_model,
            graph_search=lambda: self.graph_search,
        )

    @cached_property
    def graph_search(self) -> GraphSearch:
        from shared.services.graph_search import GraphSearch

        return GraphSearch(self.graph_store, lambda: self.search_index)

    @cached_property
    def completions(self) -> CompletionService:
        from shared.repos.chats import ChatRepository, SessionRepository
        from shared.services.completions import CompletionService

        return CompletionService(
            chats=ChatRepository(self.metadata),
            sessions=SessionRepository(self.metadata),
            datasets=self.dataset_repo,
            tenants=self.tenants,
            retrieval=self.retrieval,
            chat_model_for=tenant_chat_model,
        )

    @cached_property
    def agents(self) -> AgentService:
        from shared.repos.agents import AgentRepository, AgentSessionRepository
        from shared.services.agents import AgentService

        return AgentService(AgentRepository(self.metadata), AgentSessionRepository(self.metadata))

    @cached_property
    def agent_completions(self) -> AgentCompletionService:
        from shared.repos.agents import AgentRepository, AgentSessionRepository
        from shared.services.agent_completions import AgentCompletionService

        return AgentCompletionService(
            agents=AgentRepository(self.metadata),
            sessions=AgentSessionRepository(self.metadata),
            datasets=self.dataset_repo,
            tenants=self.tenants,
            retrieval=self.retrieval,
            chat_model_for=tenant_chat_model,
        )

    @cached_property
    def ingestion(self) -> IngestionService:
        from shared.services.ingestion import IngestionService

        return IngestionService(
            store=self.metadata,
            datasets=self.dataset_repo,
            documents=self.document_repo,
            tenants=self.tenants,
            blobs=self.document_blobs,
            index=lambda: self.search_index,
            workflow=lambda: self.workflow,
            embedder_for=tenant_embedder,
            chat_model_for=tenant_chat_model,
            events=lambda: self.events,
        )

    @cached_property
    def uploads(self) -> UploadService:
        from shared.repos.uploads import UploadRepository
        from shared.services.uploads import UploadLimits, UploadService

        settings = self.settings
        return UploadService(
            uploads=UploadRepository(self.metadata),
            datasets=self.dataset_repo,
            documents=self.document_repo,
            store=lambda: self.upload_store,
            catalog=lambda: self.object_catalog,
            start_parse=self._start_parse,
            mirror=self.file_mirror,
            documents_bucket=self.documents_bucket,
            import_buckets=[*settings.import_buckets, *settings.local_buckets],
            limits=UploadLimits(settings.upload_max_bytes, settings.upload_url_ttl_s, settings.upload_expiry_s),
        )

    def _start_parse(self, document: dict[str, Any]) -> None:
        from shared.services.ingestion import start_parse

        start_parse(self.document_repo, self.workflow, document)

    @cached_property
    def webhooks(self) -> WebhookService:
        from shared.repos.webhooks import WebhookRepository
        from shared.services.webhooks import RetryPolicy, WebhookService

        settings = self.settings
        return WebhookService(
            WebhookRepository(self.metadata),
            self.dataset_repo,
            sender=lambda: self.webhook_sender,
            queue=lambda: self.delivery_queue,
            policy=self.outbound_policy,
            retry=RetryPolicy(
                settings.webhook_max_attempts, settings.webhook_backoff_s, settings.webhook_max_backoff_s
            ),
        )

    @property
    def _shards_searched(self) -> bool:
        return self.settings.search_engine == "embedded" and bool(self.settings.documents_bucket)

    @cached_property
    def graph_store(self) -> GraphStore:
        from shared.repos.knowledge import GraphRepository
        from shared.services.knowledge import GraphStore

        return GraphStore(GraphRepository(self.metadata), self.blobs, lambda: self.search_index)

    @cached_property
    def knowledge(self) -> KnowledgeService:
        from shared.repos.knowledge import BuildTaskRepository
        from shared.services.knowledge import KnowledgeService

        return KnowledgeService(
            datasets=self.dataset_repo,
            documents=self.document_repo,
            tasks=BuildTaskRepository(self.metadata),
            graphs=self.graph_store,
            workflow=lambda: self.build_workflow,
        )

    @cached_property
    def knowledge_builds(self) -> KnowledgeBuilder:
        from shared.repos.knowledge import BuildTaskRepository
        from shared.services.knowledge_builds import KnowledgeBuilder

        return KnowledgeBuilder(
            datasets=self.dataset_repo,
            documents=self.document_repo,
            tenants=self.tenants,
            tasks=BuildTaskRepository(self.metadata),
            graphs=self.graph_store,
            blobs=self.blobs,
            index=lambda: self.search_index,
            workflow=lambda: self.build_workflow,
            embedder_for=tenant_embedder,
            chat_model_for=tenant_chat_model,
            catalog=self.catalog,
            events=lambda: self.events,
        )

    def health_probes(self) -> dict[str, Callable[[], None]]:
        """RAGFlow's health names: db, storage, doc_engine, plus our workflow; only backends this process has."""
        probes: dict[str, Callable[[], None]] = {"db": self.metadata.ping}
        if self.settings.backend == "local" or self.settings.documents_bucket:
            probes["storage"] = self.blobs.ping
        if self.settings.backend == "local" or self.settings.opensearch_endpoint or self._shards_searched:
            probes["doc_engine"] = lambda: self.search_index.ping()
        if self.settings.backend == "local" or self.settings.state_machine_arn:
            probes["workflow"] = lambda: self.workflow.ping()
        return probes


def tenant_chat_model(tenant: Tenant, model_id: str | None) -> ChatModel:
    """The tenant's chat model (its default when ``model_id`` is None), with its endpoint and key."""
    from shared.rag.chat_models import chat_model_for_tenant

    return chat_model_for_tenant(tenant, model_id)


def tenant_embedder(model_id: str, tenant: Tenant) -> Embedder:
    """The embedder for ``model_id`` with the tenant's endpoint and key for it, or for its factory (if set)."""
    from shared.rag.embedding import build_embedder

    api_base, api_key = tenant.credentials(model_id, "embedding")
    return build_embedder(model_id, api_base=api_base, api_key=api_key)


@lru_cache(maxsize=1)
def get_container() -> Container:
    """The process-wide container built from the environment's settings."""
    return Container(get_settings())
