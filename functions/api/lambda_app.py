"""Lambda entry points for buffered route groups: Mangum around the group's FastAPI app, with powertools.

Built once at module scope by each ``functions/<group>/handler.py``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from functions.api.app import create_app
from functions.api.tracing import trace_backends, tracer
from shared.constants import METRICS_NAMESPACE, SERVICE_NAME
from shared.container import get_container
from shared.routes import group_by_name

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def build_handler(group_name: str) -> Any:
    """The Lambda handler serving the registered route group ``group_name``."""
    group = group_by_name(group_name)
    trace_backends(get_container())
    asgi = Mangum(create_app([group]), lifespan="off")

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        metrics.add_dimension(name="route_group", value=group.name)
        metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        return asgi(event, context)  # type: ignore[arg-type]

    return handler
