"""EventBridge target for S3 "Object Created" events: objects under ingest/<tenant>/<dataset>/ become
documents and are parsed. Delivery is at least once; the object's key and version/etag dedupe it."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.constants import SERVICE_NAME
from shared.container import get_container

logger = Logger(service=SERVICE_NAME)
container = get_container()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") or {}
    obj = detail.get("object") or {}
    key = unquote_plus(str(obj.get("key", "")))
    version = str(obj.get("version-id") or obj.get("etag") or obj.get("sequencer") or "")
    outcome = container.ingestion.ingest_object(
        key, int(obj.get("size") or 0), version, register=container.documents.register_object
    )
    logger.info("s3 object", extra={"key": key, "outcome": outcome})
    return {"key": key, "outcome": outcome}
