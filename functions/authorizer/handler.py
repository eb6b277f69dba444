"""API Gateway REQUEST authorizer: resolves ``Authorization: Bearer <key>`` to a tenant.

API Gateway caches the answer per Authorization header, so the policy covers every route of the stage.
A refused key carries RAGFlow's message in the context, which the gateway responses put in the body.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.constants import SERVICE_NAME
from shared.container import get_container
from shared.errors import FlowlessError

logger = Logger(service=SERVICE_NAME)
container = get_container()


def _stage_wildcard(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path → every method and path of the stage
    arn_prefix, _, path = method_arn.partition("/")
    stage = path.split("/", 1)[0]
    return f"{arn_prefix}/{stage}/*/*"


def _policy(effect: str, resource: str, principal: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


def refusal_context(refused: FlowlessError) -> dict[str, Any]:
    """What the ACCESS_DENIED gateway response renders RAGFlow's answer from (infra_cdk/api_construct.py):
    code, message, and ``data_field`` — the envelope's ``data`` member as JSON text, or nothing (a context
    holds only strings, numbers and booleans, and RAGFlow's answer has ``data`` for some refusals only)."""
    data_field = "" if refused.data is None else f', "data": {json.dumps(refused.data)}'
    return {"code": int(refused.code), "message": refused.message, "data_field": data_field}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    resource = _stage_wildcard(event["methodArn"])
    try:
        tenant_id = container.authenticator.tenant_for_header(headers.get("authorization"))
    except FlowlessError as refused:
        logger.info("api key refused", extra={"code": int(refused.code)})
        return _policy("Deny", resource, "anonymous", refusal_context(refused))
    return _policy("Allow", resource, tenant_id, {"tenant_id": tenant_id})
