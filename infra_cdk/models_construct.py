"""What the functions that call models (``needs`` "models") may reach: Amazon Bedrock's models in the stack's
region (all of them, or the stage's ``bedrock_models`` list), and the tenants' model API keys (SSM SecureStrings
under the stage's prefix, encrypted with the stack's KMS key).

Bedrock: ``Converse`` and ``InvokeModel`` are authorized as ``bedrock:InvokeModel``, ``ConverseStream`` and
``InvokeModelWithResponseStream`` as ``bedrock:InvokeModelWithResponseStream``. Resources: each model's
foundation-model ARN in the region, and the system-defined (cross-region) inference profiles of that model in
the account and region (``inference-profile/<geo>.<model id>``). A cross-region profile also routes requests to
other regions of its geography; those regions' foundation-model ARNs are not granted here (scoped to the stack's
region, as asked): a stage that uses one adds them deliberately. Without a list every foundation model and
system inference profile of the region is granted: RAGFlow's Bedrock factory lists no models (tenants name
theirs), so a stage that does not narrow the list cannot know them in advance.
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
        self,
        scope: Construct,
        construct_id: str,
        *,
        bedrock_models: Sequence[str] | None,
        secrets_prefix: str,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        #: None: every model of the region; otherwise these model ids only (empty: no Bedrock access).
        self.bedrock_models = None if bedrock_models is None else tuple(bedrock_models)
        self.secrets_prefix = secrets_prefix
        self.key = key

    def bedrock_resources(self) -> list[str]:
        stack = Stack.of(self)
        resources = []
        for model in self.bedrock_models if self.bedrock_models is not None else ("*",):
            resources.append(f"arn:{stack.partition}:bedrock:{stack.region}::foundation-model/{model}")
            resources.append(
                f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:inference-profile/*"
                if self.bedrock_models is None
                else f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:inference-profile/*.{model}"
            )
        return resources

    def secrets_resource(self) -> str:
        stack = Stack.of(self)
        return f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{self.secrets_prefix}tenants/*"

    def grant(self, function: ServiceFunction) -> None:
        """Let ``function`` call the stage's Bedrock models and read tenants' keys, and tell it where those are."""
        role = function.role
        if self.bedrock_models is None:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=list(BEDROCK_ACTIONS), resources=self.bedrock_resources())
            )
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "Tenants name their Bedrock models (RAGFlow's Bedrock factory lists none), so a stage without a "
                "bedrock_models list may call any foundation model or system inference profile of its own region "
                "and account; set bedrock_models to narrow this to named models.",
                *(f"Resource::{resource}" for resource in self._unresolved_findings()),
            )
        elif self.bedrock_models:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=list(BEDROCK_ACTIONS), resources=self.bedrock_resources())
            )
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "Bedrock's system-defined inference profiles of a model are named <geography>.<model id> (us., eu., "
                "apac. ...): the wildcard stands for the geography only, in this account and region.",
                *(
                    f"Resource::{resource}"
                    for resource in self._unresolved_findings()
                    if "inference-profile" in resource
                ),
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

    def _unresolved_findings(self) -> list[str]:
        """The Bedrock resources as cdk-nag names them (tokens as ``<AWS::...>``)."""
        return [
            resource.replace(stack.partition, "<AWS::Partition>")
            .replace(stack.region, "<AWS::Region>")
            .replace(stack.account, "<AWS::AccountId>")
            for stack in (Stack.of(self),)
            for resource in self.bedrock_resources()
        ]
