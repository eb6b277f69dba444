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
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")

    # Largest request body the API accepts for uploads (bytes).
    max_upload_bytes: int = Field(default=128 * 1024 * 1024, ge=1)
    # Seconds an authorizer result may be cached by API Gateway.
    auth_cache_ttl: int = Field(default=300, ge=0, le=3600)

    # Events (parse ends, knowledge builds): the EventBridge bus (name or ARN) on AWS; unset there: none.
    event_bus: str | None = None
    # Webhooks: the SQS queue of delivery attempts on AWS; the outbound URL policy; retries with backoff.
    webhook_queue_url: str | None = None
    # Plain http targets: None means allowed on the local server, refused on AWS.
    webhook_allow_http: bool | None = None
    # Private and loopback targets (never link-local or metadata addresses).
    webhook_allow_private: bool = False
    webhook_max_attempts: int = Field(default=10, ge=1, le=50)
    # Delay before the first retry; it doubles per attempt up to webhook_max_backoff_s.
    webhook_backoff_s: float = Field(default=30.0, gt=0, le=3600)
    webhook_max_backoff_s: float = Field(default=3600.0, gt=0, le=43200)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)

    # Presigned (multipart) uploads: the largest file, how long part URLs and unfinished uploads live.
    upload_max_bytes: int = Field(default=5 * 1024**3, ge=1)
    upload_url_ttl_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    upload_expiry_s: int = Field(default=24 * 3600, ge=60)
    # Imports: buckets besides the documents bucket whose objects may become documents (AWS); on the local
    # server, bucket names mapped to folders (JSON: {"name": "/path"}) — the documents bucket is the blob folder.
    import_buckets: list[str] = Field(default_factory=list)
    local_buckets: dict[str, Path] = Field(default_factory=dict)

    @property
    def webhooks_allow_http(self) -> bool:
        return self.backend == "local" if self.webhook_allow_http is None else self.webhook_allow_http

    @model_validator(mode="after")
    def _check_backend(self) -> Settings:
        if self.backend == "aws" and not self.table_name:
            raise ValueError("FLOWLESS_TABLE_NAME is required when FLOWLESS_BACKEND=aws")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; fails fast with a clear message when invalid."""
    return Settings()
