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


@dataclass(frozen=True)
class StageConfig:
    """What differs between stages: production keeps its data, and each stage picks its search engine, the
    Bedrock models its functions may call and the OpenSearch capacity it keeps warm.

    ``bedrock_models`` None: every Bedrock model of the region (RAGFlow's Bedrock factory lists no models: its
    users name theirs, so the stack cannot know them); a tuple of model ids narrows access to those (empty: no
    Bedrock access at all).
    ``search_min_ocu``: the OpenSearch collection group's minimum indexing and search capacity (0: it scales
    to zero when idle, and the first request after that waits while it wakes).
    """

    stage: str
    search_engine: str = "opensearch"
    bedrock_models: tuple[str, ...] | None = None
    search_min_ocu: float = 0

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
        value: object, *, search_engine: object = None, bedrock_models: object = None, search_min_ocu: object = None
    ) -> StageConfig:
        """The stage from CDK context: ``-c stage=prod -c search_engine=embedded -c bedrock_models=a,b``."""
        stage = str(value or DEFAULT_STAGE)
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", stage):
            # Becomes part of the stack name and the API Gateway stage name.
            raise ValueError(f"context 'stage' must be a lowercase letter then up to 15 letters/digits, got {stage!r}")
        engine = str(search_engine or SEARCH_ENGINES[0])
        if engine not in SEARCH_ENGINES:
            raise ValueError(f"context 'search_engine' must be one of {', '.join(SEARCH_ENGINES)}, got {engine!r}")
        return StageConfig(
            stage,
            search_engine=engine,
            bedrock_models=_bedrock_models(bedrock_models),
            search_min_ocu=_min_ocu(search_min_ocu),
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
