"""The webhook workers on AWS: ``fan_out`` (EventBridge target) turns an event into deliveries, one SQS message
each; ``deliver`` (SQS event source) attempts them. A failed attempt makes its message visible again after the
backoff and is reported as a batch item failure; a delivery that ended (delivered, failed for good, webhook
gone) deletes its message. Messages whose handling keeps crashing end in the queue's dead-letter queue."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.aws.sqs_delivery_queue import SqsDeliveryQueue
from shared.constants import SERVICE_NAME
from shared.container import get_container
from shared.ports.events import DomainEvent

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
container = get_container()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def fan_out(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    domain_event = DomainEvent.from_dict(event["detail"])
    queued = container.webhooks.fan_out(domain_event)
    logger.info("event fanned out", extra={"event_id": domain_event.id, "type": domain_event.type, "queued": queued})
    return {"event_id": domain_event.id, "queued": queued}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def deliver(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    queue = container.delivery_queue
    assert isinstance(queue, SqsDeliveryQueue)
    failures = []
    for record in event.get("Records", []):
        ref = json.loads(record["body"])
        outcome = container.webhooks.deliver(ref["webhook_id"], ref["delivery_id"])
        logger.info("webhook delivery attempted", extra={"delivery_id": ref["delivery_id"], "status": outcome.status})
        if outcome.retry_after is not None:
            queue.postpone(record["receiptHandle"], outcome.retry_after)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
