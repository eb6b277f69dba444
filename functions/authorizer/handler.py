"""API Gateway REQUEST authorizer: resolves ``Authorization: Bearer <key>`` to a tenant and its key's grant.

API Gateway caches the answer per Authorization header, so the policy covers every route of the stage the
key may call: all of them for an unrestricted write key; for a scoped key, the routes of
``shared.access``'s table it may call (the same table the functions enforce). A call outside the policy,
like a refused key, is answered from the context: RAGFlow's code and message (the gateway responses put
them in the body). The grant itself travels in the context, so the function checks the ids a request names.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.access import PERMISSION_DENIED, authorizer_resources
from shared.constants import SERVICE_NAME
from shared.container import get_container
from shared.errors import FlowlessError

logger = Logger(service=SERVICE_NAME)
container = get_container()


def _stage_prefix(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path → arn:...:api-id/stage
    arn_prefix, _, path = method_arn.partition("/")
    stage = path.split("/", 1)[0]
    return f"{arn_prefix}/{stage}"


def _policy(effect: str, resource: str | list[str], principal: str, context: dict[str, Any]) -> dict[str, Any]:
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
    stage = _stage_prefix(event["methodArn"])
    try:
        grant = container.authenticator.grant_for_header(headers.get("authorization"))
    except FlowlessError as refused:
        logger.info("api key refused", extra={"code": int(refused.code)})
        return _policy("Deny", f"{stage}/*/*", "anonymous", refusal_context(refused))
    resources = authorizer_resources(grant, stage)
    granted: dict[str, Any] = grant.to_context()
    if not grant.unlimited:
        # Answered by the ACCESS_DENIED gateway response for the routes outside ``resources``.
        denied = f"{PERMISSION_DENIED} This API key may not call this route ({grant.describe()})."
        granted.update(code=108, message=denied, data_field="")
    if not resources:  # a key restricted to nothing at all
        return _policy("Deny", f"{stage}/*/*", grant.tenant_id, granted)
    return _policy("Allow", resources[0] if len(resources) == 1 else resources, grant.tenant_id, granted)
