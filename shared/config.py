"""Settings, read once from the environment and validated at start.

A plain dataclass read from ``FLOWLESS_*`` variables: every function reads it at cold start, and a
settings library would cost each of them its import (pydantic-settings: ~12 ms of CPU) for a few dozen
fields. Numbers and flags are parsed by the field's type, lists and maps as JSON, and ranges are checked in
one table (``_BOUNDS``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

Backend = Literal["local", "aws"]
SearchEngine = Literal["opensearch", "embedded"]
ENV_PREFIX = "FLOWLESS_"
_TRUE = {"1", "true", "yes", "on"}
_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a JSON list",
    "dict": "a JSON object",
}
_FALSE = {"0", "false", "no", "off"}


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
    #: The search engine on AWS: OpenSearch Serverless, or the embedded engine's shards snapshotted in the
    #: documents bucket (``shared/adapters/aws/shard_index.py``), kept warm under ``shard_cache_dir``.
    search_engine: SearchEngine = "opensearch"
    shard_cache_dir: Path = Path("/tmp/flowless-shards")
    #: The KMS key objects of the documents bucket are encrypted with (SSE-KMS); None: SSE-S3.
    documents_kms_key: str | None = None
    #: Where tenants' model API keys are kept on AWS: SSM parameters under this path (``/flowless/<stage>/``),
    #: encrypted with ``secrets_kms_key`` (None: AWS's ``aws/ssm`` key).
    secrets_prefix: str | None = None
    secrets_kms_key: str | None = None
    ssm_endpoint: str | None = None
    aws_region: str = "us-east-1"

    # Largest request body the API accepts for uploads (bytes).
    max_upload_bytes: int = 128 * 1024 * 1024
    # Seconds an authorizer result may be cached by API Gateway.
    auth_cache_ttl: int = 300

    # Events (parse ends, knowledge builds): the EventBridge bus (name or ARN) on AWS; unset there: none.
    event_bus: str | None = None
    # Webhooks: the SQS queue of delivery attempts on AWS; the outbound URL policy; retries with backoff.
    webhook_queue_url: str | None = None
    # Plain http targets: None means allowed on the local server, refused on AWS.
    webhook_allow_http: bool | None = None
    # Private and loopback targets (never link-local or metadata addresses).
    webhook_allow_private: bool = False
    webhook_max_attempts: int = 10
    # Delay before the first retry; it doubles per attempt up to webhook_max_backoff_s.
    webhook_backoff_s: float = 30.0
    webhook_max_backoff_s: float = 3600.0
    webhook_timeout_s: float = 10.0

    # Presigned (multipart) uploads: the largest file, how long part URLs and unfinished uploads live.
    upload_max_bytes: int = 5 * 1024**3
    upload_url_ttl_s: int = 3600
    upload_expiry_s: int = 24 * 3600
    # Imports: buckets besides the documents bucket whose objects may become documents (AWS); on the local
    # server, bucket names mapped to folders (JSON: {"name": "/path"}) — the documents bucket is the blob folder.
    import_buckets: list[str] = field(default_factory=list)
    local_buckets: dict[str, Path] = field(default_factory=dict)

    @property
    def webhooks_allow_http(self) -> bool:
        return self.backend == "local" if self.webhook_allow_http is None else self.webhook_allow_http

    def __post_init__(self) -> None:
        if self.backend not in get_args(Backend):
            raise ValueError(f"FLOWLESS_BACKEND must be one of {', '.join(get_args(Backend))}, not {self.backend!r}")
        if self.search_engine not in get_args(SearchEngine):
            raise ValueError(
                f"FLOWLESS_SEARCH_ENGINE must be one of {', '.join(get_args(SearchEngine))}, not {self.search_engine!r}"
            )
        if self.backend == "aws" and not self.table_name:
            raise ValueError("FLOWLESS_TABLE_NAME is required when FLOWLESS_BACKEND=aws")
        for name, (low, high, open_low) in _BOUNDS.items():
            value = getattr(self, name)
            if value < low or (open_low and value == low) or (high is not None and value > high):
                shown = f"above {low}" if open_low else f"at least {low}"
                raise ValueError(
                    f"{_env_name(name)} must be {shown}" + (f" and at most {high}" if high is not None else "")
                )
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "local_buckets", {k: Path(v) for k, v in self.local_buckets.items()})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (the process's environment by default); unset variables keep defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for item in dataclasses.fields(cls):
            name = _env_name(item.name)
            raw = env.get(name)
            if raw is not None:
                values[item.name] = _parse(name, str(item.type), raw)
        return cls(**values)  # type: ignore[arg-type]  # parsed by type; the Literal is checked in __post_init__


#: Ranges of numeric settings: (lowest, highest or None, whether the lowest itself is refused).
_BOUNDS: dict[str, tuple[float, float | None, bool]] = {
    "max_upload_bytes": (1, None, False),
    "auth_cache_ttl": (0, 3600, False),
    "webhook_max_attempts": (1, 50, False),
    "webhook_backoff_s": (0, 3600, True),
    "webhook_max_backoff_s": (0, 43200, True),
    "webhook_timeout_s": (0, 60, True),
    "upload_max_bytes": (1, None, False),
    "upload_url_ttl_s": (60, 7 * 24 * 3600, False),
    "upload_expiry_s": (60, None, False),
}


def _env_name(field_name: str) -> str:
    return "AWS_REGION" if field_name == "aws_region" else ENV_PREFIX + field_name.upper()


def _parse(name: str, annotation: str, raw: str) -> Any:
    """``raw`` as the field's type (the annotation as written: the module uses postponed annotations)."""
    kind = annotation.replace(" | None", "")
    if raw == "" and annotation.endswith("| None"):
        return None
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.strip().lower() not in _TRUE | _FALSE:
                raise ValueError
            return raw.strip().lower() in _TRUE
        if kind == "Path":
            return Path(raw)
        if kind.startswith(("list[", "dict[")):
            value = json.loads(raw)
            if not isinstance(value, list if kind.startswith("list[") else dict):
                raise ValueError
            return value
    except ValueError:
        raise ValueError(f"{name} must be {_EXPECTED[kind.split('[')[0]]}, not {raw!r}") from None
    return raw


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; fails fast with a clear message when invalid."""
    return Settings.from_env()
