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


#: Where the service publishes its events: a bus of the stack's own, or the account's default bus.
EVENT_BUS_CHOICES = ("stack", "default")


@dataclass(frozen=True)
class StageConfig:
    """What differs between a disposable stage and production, and the stage's settings (CDK context):

    * ``event_bus`` (``-c event_bus=default``): ``stack`` (a bus of its own, the default) or ``default``;
    * ``import_buckets`` (``-c import_buckets=a,b``): buckets besides the documents bucket that imports may
      read (their objects become documents that point at them);
    * ``webhook_allow_private`` (``-c webhook_allow_private=true``): webhooks may target private addresses
      (a VPC endpoint of your own); never link-local or the metadata endpoint. Plain http stays refused.
    """

    stage: str
    event_bus: str = "stack"
    import_buckets: tuple[str, ...] = ()
    webhook_allow_private: bool = False

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
    def from_context(
        value: object, *, event_bus: object = None, import_buckets: object = None, webhook_allow_private: object = None
    ) -> StageConfig:
        stage = str(value or DEFAULT_STAGE)
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", stage):
            # Becomes part of the stack name and the API Gateway stage name.
            raise ValueError(f"context 'stage' must be a lowercase letter then up to 15 letters/digits, got {stage!r}")
        bus = str(event_bus or "stack")
        if bus not in EVENT_BUS_CHOICES:
            raise ValueError(f"context 'event_bus' must be one of {EVENT_BUS_CHOICES}, got {bus!r}")
        names = import_buckets.split(",") if isinstance(import_buckets, str) else import_buckets
        buckets = tuple(str(name).strip() for name in (names if isinstance(names, list | tuple) else []))
        buckets = tuple(name for name in buckets if name)
        for name in buckets:
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
                raise ValueError(f"context 'import_buckets' holds an invalid bucket name: {name!r}")
        allow_private = str(webhook_allow_private).lower() in ("true", "1", "yes")
        return StageConfig(stage, event_bus=bus, import_buckets=buckets, webhook_allow_private=allow_private)
