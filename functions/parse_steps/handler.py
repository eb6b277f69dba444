"""Step Functions task handlers of the parse pipeline: one Lambda per step of shared.pipeline.

Each handler takes the state JSON and returns the next one. ``TaskSuperseded`` ends the execution
quietly (the state machine catches it by name); ``StepFailed`` carries the user-facing reason that the
``fail`` step writes into the document's progress_msg.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.tracing import trace_backends, tracer
from shared.constants import SERVICE_NAME
from shared.container import get_container
from shared.ports.embedder import EmbeddingServiceError
from shared.services.ingestion import StepFailed

logger = Logger(service=SERVICE_NAME)
trace_backends(get_container())
ingestion = get_container().ingestion

GENERIC_FAILURE = "Internal error while parsing; see the logs."


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def prepare(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.prepare(event)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def extract(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.extract(event)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def chunk(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.chunk(event)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def embed(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A provider's failure (EmbeddingServiceError) leaves under its own name: the state machine retries
    # it, and once retries are spent ``fail`` reports it as an embedding failure.
    return ingestion.embed(event)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def index(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.index(event)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def finish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.finish(event)


#: Errors whose message is fit for the user, and how the document's progress_msg words it.
_USER_FACING_ERRORS = {
    StepFailed.__name__: "{}",
    EmbeddingServiceError.__name__: "Embedding failed: {}",
}


def failure_message(error: dict[str, Any] | None) -> str:
    """The user-facing reason from a Step Functions Catch: StepFailed carries it, anything else is generic."""
    template = _USER_FACING_ERRORS.get(str((error or {}).get("Error")))
    if template is None:
        return GENERIC_FAILURE
    try:
        cause = json.loads((error or {}).get("Cause") or "{}")
    except ValueError:
        return GENERIC_FAILURE
    message = cause.get("errorMessage") if isinstance(cause, dict) else None
    return template.format(message) if message else GENERIC_FAILURE


@logger.inject_lambda_context(clear_state=True)
def fail(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    error = event.get("error")
    logger.warning("parse task failed", extra={"task_id": event.get("task_id"), "error": error})
    ingestion.fail(event, failure_message(error))
    return {**event, "failed": True}
