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


#: The stage setting ``search_engine``: OpenSearch Serverless, or the embedded engine's shards in S3.
SEARCH_ENGINES = ("opensearch", "embedded")

#: Where the service publishes its events: a bus of the stack's own, or the account's default bus.
EVENT_BUS_CHOICES = ("stack", "default")


@dataclass(frozen=True)
class StageConfig:
    """What differs between stages: production keeps its data, and the stage's settings (CDK context):

    * ``search_engine`` (``-c search_engine=embedded``): ``opensearch`` (OpenSearch Serverless, the default) or
      ``embedded`` (the embedded engine's shards in S3);
    * ``bedrock_models`` (``-c bedrock_models=a,b``): None, every Bedrock model of the region (RAGFlow's Bedrock
      factory lists no models: its users name theirs, so the stack cannot know them); a tuple of model ids
      narrows access to those (empty: no Bedrock access at all);
    * ``search_min_ocu``: the OpenSearch collection group's minimum indexing and search capacity (0: it scales
      to zero when idle, and the first request after that waits while it wakes);
    * ``event_bus`` (``-c event_bus=default``): ``stack`` (a bus of its own, the default) or ``default``;
    * ``import_buckets`` (``-c import_buckets=a,b``): buckets besides the documents bucket that imports may
      read (their objects become documents that point at them);
    * ``webhook_allow_private`` (``-c webhook_allow_private=true``): webhooks may target private addresses
      (a VPC endpoint of your own); never link-local or the metadata endpoint. Plain http stays refused.
    """

    stage: str
    search_engine: str = "opensearch"
    bedrock_models: tuple[str, ...] | None = None
    search_min_ocu: float = 0
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

    @property
    def secrets_prefix(self) -> str:
        """The SSM path under which tenants' model API keys are kept."""
        return f"/{SERVICE_NAME}/{self.stage}/"

    @staticmethod
    def from_context(
        value: object,
        *,
        search_engine: object = None,
        bedrock_models: object = None,
        search_min_ocu: object = None,
        event_bus: object = None,
        import_buckets: object = None,
        webhook_allow_private: object = None,
    ) -> StageConfig:
        """The stage from CDK context: ``-c stage=prod -c search_engine=embedded -c bedrock_models=a,b``."""
        stage = str(value or DEFAULT_STAGE)
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", stage):
            # Becomes part of the stack name and the API Gateway stage name.
            raise ValueError(f"context 'stage' must be a lowercase letter then up to 15 letters/digits, got {stage!r}")
        engine = str(search_engine or SEARCH_ENGINES[0])
        if engine not in SEARCH_ENGINES:
            raise ValueError(f"context 'search_engine' must be one of {', '.join(SEARCH_ENGINES)}, got {engine!r}")
        bus = str(event_bus or "stack")
        if bus not in EVENT_BUS_CHOICES:
            raise ValueError(f"context 'event_bus' must be one of {EVENT_BUS_CHOICES}, got {bus!r}")
        return StageConfig(
            stage,
            search_engine=engine,
            bedrock_models=_bedrock_models(bedrock_models),
            search_min_ocu=_min_ocu(search_min_ocu),
            event_bus=bus,
            import_buckets=_import_buckets(import_buckets),
            webhook_allow_private=str(webhook_allow_private).lower() in ("true", "1", "yes"),
        )


#: A Bedrock model id: ``<provider>.<model>[:<version>]`` (``amazon.nova-lite-v1:0``, ``cohere.embed-v4:0``).
BEDROCK_MODEL_ID = re.compile(r"[a-z0-9-]+\.[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?")


def _bedrock_models(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = value if isinstance(value, list | tuple) else [n for n in str(value).split(",") if n.strip()]
    chosen = tuple(dict.fromkeys(str(name).strip() for name in names))
    malformed = [name for name in chosen if not BEDROCK_MODEL_ID.fullmatch(name)]
    if malformed:
        raise ValueError(f"context 'bedrock_models' holds names that are not Bedrock model ids: {malformed}")
    return chosen


def _min_ocu(value: object) -> float:
    minimum = float(str(value)) if value is not None else 0.0
    if minimum < 0:
        raise ValueError(f"context 'search_min_ocu' must be 0 or more, got {minimum}")
    return minimum


def _import_buckets(value: object) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else value
    buckets = tuple(str(name).strip() for name in (names if isinstance(names, list | tuple) else []))
    buckets = tuple(name for name in buckets if name)
    for name in buckets:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
            raise ValueError(f"context 'import_buckets' holds an invalid bucket name: {name!r}")
    return buckets
