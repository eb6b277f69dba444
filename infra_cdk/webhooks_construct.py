"""Webhook delivery on AWS: an EventBridge rule on the service's bus → the fan-out function (one delivery per
matching webhook, each an SQS message) → the delivery queue → the delivery function (signed POSTs, retried by
making the message visible again after the backoff). Both stages have a dead-letter queue: events the fan-out
could not take after EventBridge's and Lambda's retries, and delivery messages whose handling kept crashing.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.config import LogSettings
from infra_cdk.function_construct import Backends, FunctionPackage, ServiceFunction, grant_needs
from infra_cdk.nag import acknowledge, cfn_resource
from shared.config import Settings
from shared.constants import ENV_WEBHOOK_ALLOW_HTTP, ENV_WEBHOOK_ALLOW_PRIVATE, ENV_WEBHOOK_QUEUE_URL, SERVICE_NAME
from shared.ports.events import EVENT_SOURCE
from shared.routes import Backend

FAN_OUT_HANDLER = "functions.webhook_worker.handler.fan_out"
DELIVER_HANDLER = "functions.webhook_worker.handler.deliver"
#: Both read the webhooks and write the delivery log.
WORKER_NEEDS: tuple[Backend, ...] = ("metadata",)
#: Deliveries attempted per invocation; each POST may take the webhook timeout (10 s by default).
DELIVERY_BATCH = 5
DELIVER_TIMEOUT_S = 90
#: AWS's advice for a Lambda event source: the queue's visibility timeout at least 6x the function's timeout.
QUEUE_VISIBILITY = Duration.seconds(6 * DELIVER_TIMEOUT_S)
#: Receives of one message before the DLQ: the service's attempts, plus a few for crashes of the handler.
MAX_RECEIVES = Settings().webhook_max_attempts + 3
#: How long EventBridge, then Lambda's async queue, keep trying to hand an event to the fan-out.
MAX_EVENT_AGE = Duration.hours(6)


class WebhookDelivery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        package: FunctionPackage,
        backends: Backends,
        log_settings: LogSettings,
        allow_private: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.fan_out_dead_letters = self._queue("FanOutDeadLetterQueue", retention=Duration.days(14))
        self.delivery_dead_letters = self._queue("DeliveryDeadLetterQueue", retention=Duration.days(14))
        self.queue = sqs.Queue(
            self,
            "DeliveryQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=QUEUE_VISIBILITY,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.delivery_dead_letters, max_receive_count=MAX_RECEIVES),
        )

        self.fan_out = self._function(
            "FanOut", FAN_OUT_HANDLER, "fan-out of events to webhooks", 60, backends, log_settings, package
        )
        self.queue.grant_send_messages(self.fan_out.function)
        self.fan_out.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.fan_out_dead_letters),
            retry_attempts=2,
            max_event_age=MAX_EVENT_AGE,
        )
        self.rule = events.Rule(
            self,
            "EventsToWebhooks",
            description=f"{SERVICE_NAME}: every event of the service, to the webhook fan-out",
            event_bus=bus,
            event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
            targets=[
                targets.LambdaFunction(
                    self.fan_out.function,
                    dead_letter_queue=self.fan_out_dead_letters,
                    retry_attempts=8,
                    max_event_age=MAX_EVENT_AGE,
                )
            ],
        )

        self.deliver = self._function(
            "Deliver", DELIVER_HANDLER, "webhook deliveries", DELIVER_TIMEOUT_S, backends, log_settings, package
        )
        self.allow_private = allow_private
        self.apply_outbound_policy(self.deliver)
        self.deliver.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=DELIVERY_BATCH, report_batch_item_failures=True)
        )
        for queue in (self.fan_out_dead_letters, self.delivery_dead_letters):
            acknowledge(
                cfn_resource(queue),
                "AwsSolutions-SQS3",
                "This queue is itself a dead-letter queue (of the webhook fan-out or of the delivery queue); a "
                "queue behind it would only move the finding.",
            )

    def apply_outbound_policy(self, function: ServiceFunction) -> None:
        """The stage's outbound URL policy (https only; private targets only where the stage allows them) for
        ``function``: the deliverer and the webhooks API, which refuses a URL at registration, judge alike."""
        function.function.add_environment(ENV_WEBHOOK_ALLOW_HTTP, "false")
        function.function.add_environment(ENV_WEBHOOK_ALLOW_PRIVATE, "true" if self.allow_private else "false")

    def _queue(self, construct_id: str, *, retention: Duration) -> sqs.Queue:
        return sqs.Queue(
            self, construct_id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=retention
        )

    def _function(
        self,
        construct_id: str,
        handler: str,
        what: str,
        timeout_s: int,
        backends: Backends,
        log_settings: LogSettings,
        package: FunctionPackage,
    ) -> ServiceFunction:
        function = ServiceFunction(
            self,
            construct_id,
            handler=handler,
            description=f"{SERVICE_NAME} {what}",
            package=package,
            storage=backends.storage,
            memory_mb=256,
            timeout_s=timeout_s,
            log_settings=log_settings,
        )
        grant_needs(function, WORKER_NEEDS, backends)
        function.function.add_environment(ENV_WEBHOOK_QUEUE_URL, self.queue.queue_url)
        return function
