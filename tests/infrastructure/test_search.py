"""The search index in the template: the OpenSearch Serverless collection, its three policies, and which
functions reach it (endpoint, IAM, data access policy)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack

from infra_cdk.app import cdk_json_context
from infra_cdk.config import StageConfig
from infra_cdk.function_construct import route_group_handler
from infra_cdk.knowledge_construct import BUILD_HANDLER_MODULE
from infra_cdk.parsing_construct import STEP_HANDLER_MODULE
from infra_cdk.search_construct import INDEX_PATTERN, INDEX_PERMISSIONS, SearchConstruct
from shared.adapters.aws.opensearch_index import chunk_index_pattern
from shared.constants import ENV_OPENSEARCH_ENDPOINT, SERVICE_NAME
from shared.pipeline import ALL_BUILD_STEPS, ALL_STEPS
from shared.routes import ROUTE_GROUPS
from tests.infrastructure.conftest import SKIP_BUNDLING, Synthesized

pytestmark = pytest.mark.infrastructure

SEARCH_HANDLERS = (
    {route_group_handler(group) for group in ROUTE_GROUPS if "search" in group.needs}
    | {f"{STEP_HANDLER_MODULE}.{step.name}" for step in ALL_STEPS}
    | {f"{BUILD_HANDLER_MODULE}.{step.name}" for step in ALL_BUILD_STEPS}
)


# -- helpers -----------------------------------------------------------------------------------------
def _one(synth: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = synth.resources(resource_type).items()
    return logical_id, resource


def _security_policies(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """Policy type (encryption, network) -> properties."""
    return {
        resource["Properties"]["Type"]: resource["Properties"]
        for resource in synth.resources("AWS::OpenSearchServerless::SecurityPolicy").values()
    }


def _data_access_policy(synth: Synthesized) -> tuple[list[dict[str, Any]], list[str]]:
    """The data access policy document with its principals replaced by their roles' logical ids."""
    _, resource = _one(synth, "AWS::OpenSearchServerless::AccessPolicy")
    assert resource["Properties"]["Type"] == "data"
    parts = resource["Properties"]["Policy"]["Fn::Join"][1]
    roles = [part["Fn::GetAtt"][0] for part in parts if isinstance(part, dict)]
    text = "".join(part if isinstance(part, str) else f"<{part['Fn::GetAtt'][0]}>" for part in parts)
    return json.loads(text), roles


def _role_of(function: dict[str, Any]) -> str:
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def _functions_by_handler(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {fn["Properties"]["Handler"]: fn for fn in synth.resources("AWS::Lambda::Function").values()}


def _aoss_statements(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "aoss:" in json.dumps(statement["Action"])
    ]


# -- the collection and its policies ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stage", "replicas", "deletion"), [("prod", "ENABLED", "Retain"), ("dev", "DISABLED", "Delete")]
)
def test_one_vector_search_collection_per_stage(
    request: pytest.FixtureRequest, stage: str, replicas: str, deletion: str
) -> None:
    synth: Synthesized = request.getfixturevalue(stage)
    _, collection = _one(synth, "AWS::OpenSearchServerless::Collection")
    props = collection["Properties"]
    assert props["Type"] == "VECTORSEARCH"
    assert props["Name"] == StageConfig(stage).stack_name
    assert props["StandbyReplicas"] == replicas  # standby replicas double the minimum OCUs: production only
    assert collection["DeletionPolicy"] == deletion


def test_encryption_and_network_policies_cover_the_collection(prod: Synthesized) -> None:
    name = StageConfig("prod").stack_name
    policies = _security_policies(prod)
    assert set(policies) == {"encryption", "network"}
    encryption = json.loads(policies["encryption"]["Policy"])
    assert encryption == {
        "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}],
        "AWSOwnedKey": True,
    }
    (network,) = json.loads(policies["network"]["Policy"])
    assert network["Rules"] == [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}]
    assert network["AllowFromPublic"] is True  # no VPC in this stack: public endpoint, SigV4 + IAM + data policy
    assert all(len(p["Name"]) <= 32 for p in policies.values())


def test_the_collection_is_created_after_its_policies(prod: Synthesized) -> None:
    _, collection = _one(prod, "AWS::OpenSearchServerless::Collection")
    policies = {
        *prod.resources("AWS::OpenSearchServerless::SecurityPolicy"),
        *prod.resources("AWS::OpenSearchServerless::AccessPolicy"),
    }
    assert len(policies) == 3 and policies <= set(collection["DependsOn"])


def test_the_data_access_policy_grants_the_search_functions_the_chunk_indices_only(prod: Synthesized) -> None:
    (rule_set,), principals = _data_access_policy(prod)
    functions = _functions_by_handler(prod)
    assert set(functions) >= SEARCH_HANDLERS
    assert sorted(principals) == sorted(_role_of(functions[handler]) for handler in SEARCH_HANDLERS)
    (rule,) = rule_set["Rules"]
    assert rule == {
        "ResourceType": "index",
        "Resource": [f"index/{StageConfig('prod').stack_name}/{INDEX_PATTERN}"],
        "Permission": list(INDEX_PERMISSIONS),
    }
    assert not {"aoss:DeleteIndex", "aoss:UpdateIndex", "aoss:*"} & set(rule["Permission"])
    assert chunk_index_pattern(SERVICE_NAME) == INDEX_PATTERN  # the names the engine gives its indices


# -- the functions ------------------------------------------------------------------------------------
def test_search_functions_get_the_collection_endpoint_and_the_others_do_not(prod: Synthesized) -> None:
    collection_id, _ = _one(prod, "AWS::OpenSearchServerless::Collection")
    for handler, function in _functions_by_handler(prod).items():
        env = function["Properties"]["Environment"]["Variables"]
        if handler in SEARCH_HANDLERS:
            assert env[ENV_OPENSEARCH_ENDPOINT] == {"Fn::GetAtt": [collection_id, "CollectionEndpoint"]}, handler
        else:
            assert ENV_OPENSEARCH_ENDPOINT not in env, handler


def test_api_access_is_granted_on_the_collection_arn_to_the_search_functions_only(prod: Synthesized) -> None:
    collection_id, _ = _one(prod, "AWS::OpenSearchServerless::Collection")
    for handler, function in _functions_by_handler(prod).items():
        statements = _aoss_statements(prod, _role_of(function))
        if handler in SEARCH_HANDLERS:
            assert statements == [
                {"Action": "aoss:APIAccessAll", "Effect": "Allow", "Resource": {"Fn::GetAtt": [collection_id, "Arn"]}}
            ], handler
        else:
            assert statements == [], handler


def test_cdk_nag_reports_nothing_on_the_search_resources(prod: Synthesized) -> None:
    report = json.loads((prod.outdir / "validation-report.json").read_text(encoding="utf-8"))
    findings = [
        violation
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        if "/Search/" in json.dumps(violation)
    ]
    assert findings == []


# -- the construct on its own ----------------------------------------------------------------------------
def _bare_stack() -> Stack:
    return Stack(App(context={**cdk_json_context(), **SKIP_BUNDLING}), "Parts")


def test_a_collection_nobody_may_use_fails_synthesis() -> None:
    stack = _bare_stack()
    SearchConstruct(
        stack, "Search", collection_name="flowless-test", removal_policy=RemovalPolicy.DESTROY, standby_replicas=False
    )
    with pytest.raises(RuntimeError, match="grants no function"):
        App.of(stack).synth()  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["Flowless", "ab", "flowless-a-stage-name-far-too-long", "9lives"])
def test_collection_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="collection name"):
        SearchConstruct(
            _bare_stack(), "Search", collection_name=name, removal_policy=RemovalPolicy.DESTROY, standby_replicas=False
        )
