"""What the functions that call models (``needs`` "models") may reach: Amazon Bedrock's models of the stage's list
in the stack's region, and the tenants' model API keys (SSM SecureStrings under the stage's prefix, encrypted
with the stack's KMS key).

Bedrock: ``Converse`` and ``InvokeModel`` are authorized as ``bedrock:InvokeModel``, ``ConverseStream`` and
``InvokeModelWithResponseStream`` as ``bedrock:InvokeModelWithResponseStream``. Resources: each model's
foundation-model ARN in the region, and the system-defined (cross-region) inference profiles of that model in
the account and region (``inference-profile/<geo>.<model id>``). A cross-region profile also routes requests to
other regions of its geography; those regions' foundation-model ARNs are not granted here (scoped to the stack's
region, as asked): a stage that uses one adds them deliberately.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra_cdk.nag import acknowledge
from shared.constants import ENV_SECRETS_KMS_KEY, ENV_SECRETS_PREFIX

if TYPE_CHECKING:
    from infra_cdk.function_construct import ServiceFunction

BEDROCK_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
#: Reading a tenant's key: one parameter by name (the adapter never lists or writes from a function).
SECRET_READ_ACTIONS = ("ssm:GetParameter",)


class ModelAccess(Construct):
    """Grants model access to a function (``grant``): Bedrock's ``bedrock_models`` and the tenants' keys."""

    def __init__(
        self, scope: Construct, construct_id: str, *, bedrock_models: Sequence[str], secrets_prefix: str, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.bedrock_models = tuple(bedrock_models)
        self.secrets_prefix = secrets_prefix
        self.key = key

    def bedrock_resources(self) -> list[str]:
        stack = Stack.of(self)
        resources = []
        for model in self.bedrock_models:
            resources.append(f"arn:{stack.partition}:bedrock:{stack.region}::foundation-model/{model}")
            resources.append(
                f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:inference-profile/*.{model}"
            )
        return resources

    def secrets_resource(self) -> str:
        stack = Stack.of(self)
        return f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{self.secrets_prefix}tenants/*"

    def grant(self, function: ServiceFunction) -> None:
        """Let ``function`` call the stage's Bedrock models and read tenants' keys, and tell it where those are."""
        role = function.role
        if self.bedrock_models:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=list(BEDROCK_ACTIONS), resources=self.bedrock_resources())
            )
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "Bedrock's system-defined inference profiles of a model are named <geography>.<model id> (us., eu., "
                "apac. ...): the wildcard stands for the geography only, in this account and region.",
                *(f"Resource::{resource}" for resource in self._unresolved_profile_findings()),
            )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(SECRET_READ_ACTIONS), resources=[self.secrets_resource()])
        )
        self.key.grant_decrypt(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Tenants' model API keys are SSM parameters created at run time, one per tenant and model, under "
            "this stage's prefix: the functions read them by name under that path only.",
            f"Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter{self.secrets_prefix}tenants/*",
        )
        function.function.add_environment(ENV_SECRETS_PREFIX, self.secrets_prefix)
        function.function.add_environment(ENV_SECRETS_KMS_KEY, self.key.key_arn)

    def _unresolved_profile_findings(self) -> list[str]:
        """The inference-profile resources as cdk-nag names them (tokens as ``<AWS::...>``)."""
        return [
            f"arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/*.{model}"
            for model in self.bedrock_models
        ]
