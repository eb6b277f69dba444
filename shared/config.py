"""Settings, read once from the environment and validated at start.

A plain dataclass read from ``FLOWLESS_*`` variables: every function reads it at cold start, and a
settings library would cost each of them its import (pydantic-settings: ~12 ms of CPU) for a dozen fields.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

Backend = Literal["local", "aws"]
ENV_PREFIX = "FLOWLESS_"


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration. ``backend`` picks the adapters: ``local`` or ``aws``.

    Read from the environment by :meth:`from_env`: ``FLOWLESS_<FIELD>`` for each field (``AWS_REGION`` for
    ``aws_region``, as Lambda sets it). Invalid values raise ``ValueError`` naming the variable.
    """

    backend: Backend = "local"
    data_dir: Path = Path("data")

    table_name: str | None = None
    dynamodb_endpoint: str | None = None
    documents_bucket: str | None = None
    s3_endpoint: str | None = None
    state_machine_arn: str | None = None
    # The knowledge-graph / RAPTOR build state machine (the knowledge route group starts it).
    build_state_machine_arn: str | None = None
    opensearch_endpoint: str | None = None
    aws_region: str = "us-east-1"

    # Largest request body the API accepts for uploads (bytes).
    max_upload_bytes: int = 128 * 1024 * 1024
    # Seconds an authorizer result may be cached by API Gateway.
    auth_cache_ttl: int = 300

    def __post_init__(self) -> None:
        if self.backend not in get_args(Backend):
            raise ValueError(f"FLOWLESS_BACKEND must be one of {', '.join(get_args(Backend))}, not {self.backend!r}")
        if self.backend == "aws" and not self.table_name:
            raise ValueError("FLOWLESS_TABLE_NAME is required when FLOWLESS_BACKEND=aws")
        if self.max_upload_bytes < 1:
            raise ValueError("FLOWLESS_MAX_UPLOAD_BYTES must be at least 1")
        if not 0 <= self.auth_cache_ttl <= 3600:
            raise ValueError("FLOWLESS_AUTH_CACHE_TTL must be between 0 and 3600")
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (the process's environment by default); unset variables keep defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            name = "AWS_REGION" if field.name == "aws_region" else ENV_PREFIX + field.name.upper()
            raw = env.get(name)
            if raw is None:
                continue
            if field.name in ("max_upload_bytes", "auth_cache_ttl"):
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    raise ValueError(f"{name} must be an integer, not {raw!r}") from None
            elif field.name == "data_dir":
                values[field.name] = Path(raw)
            else:
                values[field.name] = raw
        return cls(**values)  # type: ignore[arg-type]  # str for the Literal: checked in __post_init__


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; fails fast with a clear message when invalid."""
    return Settings.from_env()
