"""cdk-nag v3 acknowledgments: every one names its finding and says why it is acceptable here."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str, *findings: str) -> None:
    """Acknowledge ``rule`` on ``scope`` and its children.

    ``findings`` narrow it to single findings of a rule that reports several per resource (IAM5's
    ``Resource::*``, ``Action::s3:List*`` ...): each becomes ``<rule>[<finding>]``; none means the rule.
    """
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a reason")
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))


def cfn_resource(construct: IConstruct) -> CfnResource:
    """The CloudFormation resource of an L2 construct: acknowledge on it to leave its children out."""
    child = construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return child
