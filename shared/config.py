"""Settings, read once from the environment and validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration. ``backend`` picks the adapters: ``local`` or ``aws``."""

    model_config = SettingsConfigDict(env_prefix="FLOWLESS_", extra="ignore")

    backend: Literal["local", "aws"] = "local"
    data_dir: Path = Path("data")

    table_name: str | None = None
    dynamodb_endpoint: str | None = None
    documents_bucket: str | None = None
    s3_endpoint: str | None = None
    state_machine_arn: str | None = None
    # The knowledge-graph / RAPTOR build state machine (the knowledge route group starts it).
    build_state_machine_arn: str | None = None
    opensearch_endpoint: str | None = None
    #: The search engine on AWS: OpenSearch Serverless, or the embedded engine's shards snapshotted in the
    #: documents bucket (``shared/adapters/aws/shard_index.py``), kept warm under ``shard_cache_dir``.
    search_engine: Literal["opensearch", "embedded"] = "opensearch"
    shard_cache_dir: Path = Path("/tmp/flowless-shards")
    #: The KMS key objects of the documents bucket are encrypted with (SSE-KMS); None: SSE-S3.
    documents_kms_key: str | None = None
    #: Where tenants' model API keys are kept on AWS: SSM parameters under this path (``/flowless/<stage>/``),
    #: encrypted with ``secrets_kms_key`` (None: AWS's ``aws/ssm`` key).
    secrets_prefix: str | None = None
    secrets_kms_key: str | None = None
    ssm_endpoint: str | None = None
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")

    # Largest request body the API accepts for uploads (bytes).
    max_upload_bytes: int = Field(default=128 * 1024 * 1024, ge=1)
    # Seconds an authorizer result may be cached by API Gateway.
    auth_cache_ttl: int = Field(default=300, ge=0, le=3600)

    @model_validator(mode="after")
    def _check_backend(self) -> Settings:
        if self.backend == "aws" and not self.table_name:
            raise ValueError("FLOWLESS_TABLE_NAME is required when FLOWLESS_BACKEND=aws")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; fails fast with a clear message when invalid."""
    return Settings()
