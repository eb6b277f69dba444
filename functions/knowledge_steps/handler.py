"""Step Functions task handlers of the knowledge builds (graph and RAPTOR): one Lambda per step of
shared.pipeline.BUILD_STEPS, plus the failure step.

Each handler takes the state JSON and returns the next one. ``TaskSuperseded`` ends the execution quietly
(the state machine catches it by name); ``StepFailed`` carries the user-facing reason that ``fail`` writes
into the task's progress_msg, and a model's own failure is worded by its kind.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.steps import catch_message, logger, step
from functions.api.tracing import trace_backends
from shared.container import get_container
from shared.ports.chat_model import ChatModelServiceError, ChatModelTimeout
from shared.ports.embedder import EmbeddingServiceError
from shared.services.ingestion import StepFailed

trace_backends(get_container())
builder = get_container().knowledge_builds

GENERIC_FAILURE = "Internal error while building; see the logs."


@step
def prepare(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return builder.prepare(event)


@step
def document(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A model's transient failure (ChatModelServiceError, EmbeddingServiceError) leaves under its own name:
    # the state machine retries it, and once retries are spent ``fail`` reports it.
    return builder.document(event)


@step
def finish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return builder.finish(event)


#: Errors whose message is fit for the user, and how the task's progress_msg words it.
_USER_FACING_ERRORS = {
    StepFailed.__name__: "{}",
    ChatModelServiceError.__name__: "The chat model failed: {}",
    ChatModelTimeout.__name__: "The chat model failed: {}",
    EmbeddingServiceError.__name__: "Embedding failed: {}",
}


def failure_message(error: dict[str, Any] | None) -> str:
    """The user-facing reason from a Step Functions Catch: known errors carry it, anything else is generic."""
    return catch_message(error, _USER_FACING_ERRORS, GENERIC_FAILURE)


@logger.inject_lambda_context(clear_state=True)
def fail(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    error = event.get("error")
    logger.warning("knowledge build failed", extra={"task_id": event.get("task_id"), "error": error})
    builder.fail(event, failure_message(error))
    return {**event, "failed": True}
