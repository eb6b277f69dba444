"""The service's one stack: composes the constructs, built from the route-group registry."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra_cdk.api_construct import RestApiConstruct
from infra_cdk.auth_construct import ApiKeyAuthorizer
from infra_cdk.config import StageConfig
from infra_cdk.events_construct import EventsConstruct
from infra_cdk.function_construct import Backends, FunctionPackage, RouteGroupFunction
from infra_cdk.knowledge_construct import KnowledgeBuilds
from infra_cdk.models_construct import ModelAccess
from infra_cdk.monitoring_construct import MonitoringConstruct
from infra_cdk.parsing_construct import ParsingWorkflow
from infra_cdk.s3_trigger_construct import S3IngestTrigger
from infra_cdk.search_construct import SearchConstruct
from infra_cdk.shards_construct import ShardSnapshots
from infra_cdk.storage_construct import StorageConstruct
from infra_cdk.webhooks_construct import WebhookDelivery
from shared.routes import FALLBACK_GROUP, ROUTE_GROUPS, WEBHOOKS


def _construct_id(group_name: str) -> str:
    return "".join(part.capitalize() for part in group_name.split("_")) + "Function"


class FlowlessStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        log_settings = config.logs

        self.storage = StorageConstruct(self, "Storage", removal_policy=config.removal_policy)
        package = FunctionPackage(self, "Package")
        self.events = EventsConstruct(self, "Events", bus=config.event_bus, stack_name=config.stack_name)
        import_buckets = tuple(
            s3.Bucket.from_bucket_name(self, f"ImportBucket{n}", name) for n, name in enumerate(config.import_buckets)
        )
        self.search: SearchConstruct | ShardSnapshots
        if config.search_engine == "embedded":
            self.search = ShardSnapshots(self, "Shards", storage=self.storage)
        else:
            self.search = SearchConstruct(
                self,
                "Search",
                collection_name=config.stack_name,
                removal_policy=config.removal_policy,
                standby_replicas=config.is_prod,
                min_ocu=config.search_min_ocu,
            )
        self.models = ModelAccess(
            self,
            "Models",
            bedrock_models=config.bedrock_models,
            secrets_prefix=config.secrets_prefix,
            key=self.storage.key,
        )
        self.parsing = ParsingWorkflow(
            self,
            "Parsing",
            package=package,
            backends=Backends(
                self.storage, search=self.search, models=self.models, events=self.events, import_buckets=import_buckets
            ),
            log_settings=log_settings,
        )
        self.knowledge = KnowledgeBuilds(
            self,
            "Knowledge",
            package=package,
            backends=Backends(self.storage, search=self.search, models=self.models, events=self.events),
            log_settings=log_settings,
        )
        backends = Backends(
            self.storage,
            state_machine=self.parsing.state_machine,
            search=self.search,
            build_state_machine=self.knowledge.state_machine,
            models=self.models,
            events=self.events,
            import_buckets=import_buckets,
        )
        self.auth = ApiKeyAuthorizer(self, "Auth", package=package, storage=self.storage, log_settings=log_settings)
        self.route_functions = {
            group.name: RouteGroupFunction(
                self,
                _construct_id(group.name),
                group=group,
                package=package,
                backends=backends,
                log_settings=log_settings,
            )
            for group in ROUTE_GROUPS
        }
        self.s3_trigger = S3IngestTrigger(
            self, "S3Ingest", package=package, backends=backends, log_settings=log_settings
        )
        self.webhooks = WebhookDelivery(
            self,
            "Webhooks",
            bus=self.events.bus,
            package=package,
            backends=backends,
            log_settings=log_settings,
            allow_private=config.webhook_allow_private,
        )
        self.webhooks.apply_outbound_policy(self.route_functions[WEBHOOKS.name])
        functions = {name: construct.function for name, construct in self.route_functions.items()}
        self.api = RestApiConstruct(
            self,
            "Api",
            groups=ROUTE_GROUPS,
            functions=functions,
            fallback=functions[FALLBACK_GROUP.name],
            authorizer=self.auth.authorizer,
            stage_name=config.stage,
            log_settings=log_settings,
        )
        MonitoringConstruct(
            self,
            "Monitoring",
            functions={
                **functions,
                "authorizer": self.auth.handler.function,
                "s3_ingest": self.s3_trigger.handler.function,
                # Of the parse steps only the failure step: the others raise by design (a superseded
                # task, a document that cannot be parsed) and the state machine handles it.
                "parse_failure": self.parsing.failure_function.function,
                "build_failure": self.knowledge.failure_function.function,
                "webhook_fan_out": self.webhooks.fan_out.function,
                "webhook_deliver": self.webhooks.deliver.function,
            },
            rest_api=self.api.rest_api,
            state_machine=self.parsing.state_machine,
            build_state_machine=self.knowledge.state_machine,
            dead_letter_queues={
                "s3_ingest": self.s3_trigger.dead_letter_queue,
                "parse_executions": self.parsing.dead_letter_queue,
                "build_executions": self.knowledge.dead_letter_queue,
                "webhook_fan_out": self.webhooks.fan_out_dead_letters,
                "webhook_deliveries": self.webhooks.delivery_dead_letters,
            },
        )

        # Clients use this as RAGFlow's base URL: the SDK appends /api/v1/... to it.
        CfnOutput(self, "ApiUrl", value=self.api.rest_api.url)
        CfnOutput(self, "TableName", value=self.storage.table.table_name)
        CfnOutput(self, "DocumentsBucketName", value=self.storage.documents_bucket.bucket_name)
        if isinstance(self.search, SearchConstruct):
            CfnOutput(self, "SearchCollectionEndpoint", value=self.search.endpoint)
        # For `flowless tenant create --table ... --secrets-prefix ... --secrets-kms-key ...`.
        CfnOutput(self, "ModelKeysPrefix", value=config.secrets_prefix)
        CfnOutput(self, "DataKeyArn", value=self.storage.key.key_arn)
        CfnOutput(self, "ParseStateMachineArn", value=self.parsing.state_machine.state_machine_arn)
        CfnOutput(self, "BuildStateMachineArn", value=self.knowledge.state_machine.state_machine_arn)
        CfnOutput(self, "EventBusName", value=self.events.bus.event_bus_name)
        CfnOutput(self, "WebhookDeliveryQueueUrl", value=self.webhooks.queue.queue_url)
