"""Uploads as a parse trigger: objects created under ``ingest/<tenant>/<dataset>/`` become parsed documents.

The documents bucket publishes its events to EventBridge natively (see ``StorageConstruct``); a rule
picks the "Object Created" events of that bucket under the ingest prefix and invokes the trigger
function. Deliveries that cannot be made, and invocations that still fail after Lambda's own retries,
land in one dead-letter queue.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.config import LogSettings
from infra_cdk.function_construct import Backends, FunctionPackage, ServiceFunction, grant_needs
from infra_cdk.nag import acknowledge, cfn_resource
from shared.constants import SERVICE_NAME
from shared.pipeline import INGEST_PREFIX
from shared.routes import Backend

INGEST_HANDLER = "functions.s3_ingest.handler.handler"
#: Registers the document and starts its parse: the table, the object's metadata, the state machine.
INGEST_NEEDS: tuple[Backend, ...] = ("metadata", "blobs", "workflow")
#: How long EventBridge, then Lambda's async queue, keep trying one event.
MAX_EVENT_AGE = Duration.hours(6)
#: Attempts EventBridge makes to hand an event to Lambda (throttled or unavailable) before the DLQ.
DELIVERY_ATTEMPTS = 8
#: Retries Lambda makes of a failed invocation (the handler is idempotent per object version).
INVOKE_RETRIES = 2


class S3IngestTrigger(Construct):
    """The EventBridge rule on the documents bucket, the trigger function and its dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: FunctionPackage,
        backends: Backends,
        log_settings: LogSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        bucket = backends.storage.documents_bucket
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.handler = ServiceFunction(
            self,
            "Handler",
            handler=INGEST_HANDLER,
            description=f"{SERVICE_NAME} S3 upload trigger ({INGEST_PREFIX}<tenant>/<dataset>/<file>)",
            package=package,
            storage=backends.storage,
            memory_mb=512,
            timeout_s=60,
            log_settings=log_settings,
            # The ingestion service it builds imports numpy (runtime layer); it never parses.
        )
        grant_needs(self.handler, INGEST_NEEDS, backends)
        # EventBridge invokes asynchronously: failures after Lambda's retries go to the same queue.
        self.handler.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
            retry_attempts=INVOKE_RETRIES,
            max_event_age=MAX_EVENT_AGE,
        )
        self.rule = events.Rule(
            self,
            "ObjectCreated",
            description=f"{SERVICE_NAME}: objects created under {INGEST_PREFIX} of the documents bucket",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": events.Match.prefix(INGEST_PREFIX)},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.handler.function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=DELIVERY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            ],
        )
        acknowledge(
            cfn_resource(self.dead_letter_queue),
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the S3 trigger (EventBridge target and Lambda "
            "on-failure destination); a queue behind it would only move the finding.",
        )
