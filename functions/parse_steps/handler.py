"""Step Functions task handlers of the parse pipeline: one Lambda per step of shared.pipeline.

Each handler takes the state JSON and returns the next one. ``TaskSuperseded`` ends the execution
quietly (the state machine catches it by name); ``StepFailed`` carries the user-facing reason that the
``fail`` step writes into the document's progress_msg.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.steps import catch_message, logger, step
from functions.api.tracing import trace_backends
from shared.container import get_container
from shared.ports.embedder import EmbeddingServiceError
from shared.services.ingestion import StepFailed

trace_backends(get_container())
ingestion = get_container().ingestion

GENERIC_FAILURE = "Internal error while parsing; see the logs."


@step
def prepare(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.prepare(event)


@step
def extract(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.extract(event)


@step
def chunk(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.chunk(event)


@step
def embed(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A provider's failure (EmbeddingServiceError) leaves under its own name: the state machine retries
    # it, and once retries are spent ``fail`` reports it as an embedding failure.
    return ingestion.embed(event)


@step
def index(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.index(event)


@step
def finish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingestion.finish(event)


#: Errors whose message is fit for the user, and how the document's progress_msg words it.
_USER_FACING_ERRORS = {
    StepFailed.__name__: "{}",
    EmbeddingServiceError.__name__: "Embedding failed: {}",
}


def failure_message(error: dict[str, Any] | None) -> str:
    """The user-facing reason from a Step Functions Catch: StepFailed carries it, anything else is generic."""
    return catch_message(error, _USER_FACING_ERRORS, GENERIC_FAILURE)


@logger.inject_lambda_context(clear_state=True)
def fail(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    error = event.get("error")
    logger.warning("parse task failed", extra={"task_id": event.get("task_id"), "error": error})
    ingestion.fail(event, failure_message(error))
    return {**event, "failed": True}
