"""Deployment-stage settings read from CDK context (``-c stage=prod`` or cdk.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from shared.constants import SERVICE_NAME

#: The repository root: the code asset is built from its ``shared/`` and ``functions/`` packages.
REPO_ROOT = Path(__file__).resolve().parent.parent

PROD_STAGE = "prod"
DEFAULT_STAGE = "dev"


@dataclass(frozen=True)
class LogSettings:
    """How long the service's log groups keep events, and whether they outlive the stack."""

    retention: logs.RetentionDays
    removal_policy: RemovalPolicy


@dataclass(frozen=True)
class StageConfig:
    """What differs between a disposable stage and production."""

    stage: str

    @property
    def is_prod(self) -> bool:
        return self.stage == PROD_STAGE

    @property
    def stack_name(self) -> str:
        return f"{SERVICE_NAME}-{self.stage}"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """Production data outlives the stack; any other stage is torn down with it."""
        return RemovalPolicy.RETAIN if self.is_prod else RemovalPolicy.DESTROY

    @property
    def logs(self) -> LogSettings:
        retention = logs.RetentionDays.THREE_MONTHS if self.is_prod else logs.RetentionDays.TWO_WEEKS
        return LogSettings(retention=retention, removal_policy=self.removal_policy)

    @staticmethod
    def from_context(value: object) -> StageConfig:
        stage = str(value or DEFAULT_STAGE)
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", stage):
            # Becomes part of the stack name and the API Gateway stage name.
            raise ValueError(f"context 'stage' must be a lowercase letter then up to 15 letters/digits, got {stage!r}")
        return StageConfig(stage)
