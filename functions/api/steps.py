"""What every Step Functions task handler shares: the Lambda wrapping (logging context, X-Ray) and the reading
of a Catch's error into the message a user sees."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.tracing import tracer
from shared.constants import SERVICE_NAME

logger = Logger(service=SERVICE_NAME)

StepHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def step(handler: StepHandler) -> StepHandler:
    """A task handler: its logs carry the Lambda context, its invocation is an X-Ray segment."""
    traced: StepHandler = tracer.capture_lambda_handler(capture_response=False)(handler)
    wrapped: StepHandler = logger.inject_lambda_context(clear_state=True)(traced)
    return wrapped


def catch_message(error: Mapping[str, Any] | None, templates: Mapping[str, str], generic: str) -> str:
    """The user-facing reason of a Step Functions Catch (``{"Error", "Cause"}``): an error named in
    ``templates`` has its message worded by its template; anything else (or a cause without a message) is
    ``generic``, so no internal detail reaches the user."""
    template = templates.get(str((error or {}).get("Error")))
    if template is None:
        return generic
    try:
        cause = json.loads((error or {}).get("Cause") or "{}")
    except ValueError:
        return generic
    message = cause.get("errorMessage") if isinstance(cause, dict) else None
    return template.format(message) if message else generic
