"""Secrets in SSM Parameter Store: one SecureString parameter per secret, under the stack's prefix.

Why Parameter Store rather than Secrets Manager: a standard parameter costs nothing at rest (Secrets Manager
bills every secret each month, which a tenant-per-secret layout multiplies), values here are small (model API
keys, under the standard tier's 4 KB), and rotation is the tenant's own (a new key is written over the old).
Values are encrypted with the KMS key given (the stack's customer managed key), or AWS's ``aws/ssm`` key.

Reads are cached in-process for ``cache_ttl_s`` (a warm function asks SSM once per key and TTL, far below
the API's default throughput of 40 requests per second); a changed key is picked up within that time.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.ports.metadata import StoreUnavailable
from shared.ports.secrets import SecretNotFound, SecretStore

#: Seconds a value read is reused before SSM is asked again.
DEFAULT_CACHE_TTL_S: Final = 300.0


class SsmSecretStore(SecretStore):
    """``prefix`` (``/flowless/<stage>/``) is prepended to every name; a reference is the full parameter name."""

    def __init__(
        self,
        prefix: str,
        *,
        region: str,
        kms_key_id: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
    ) -> None:
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ValueError(f"an SSM prefix starts and ends with '/', got {prefix!r}")
        self._prefix = prefix
        self._kms_key_id = kms_key_id
        self._client = client or boto3.client(
            "ssm",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10),
        )
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def put(self, name: str, value: str) -> str:
        reference = self._prefix + name.strip("/")
        request: dict[str, Any] = {
            "Name": reference,
            "Value": value,
            "Type": "SecureString",
            "Overwrite": True,
            "Tier": "Standard",
        }
        if self._kms_key_id:
            request["KeyId"] = self._kms_key_id
        try:
            self._client.put_parameter(**request)
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"SSM: could not store a secret: {exc}") from exc
        with self._lock:
            self._cache[reference] = (value, time.monotonic() + self._ttl)
        return reference

    def get(self, reference: str) -> str:
        self._check(reference)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(reference)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            value = str(self._client.get_parameter(Name=reference, WithDecryption=True)["Parameter"]["Value"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                raise SecretNotFound(reference) from exc
            raise StoreUnavailable(f"SSM: could not read a secret: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"SSM: could not read a secret: {exc}") from exc
        with self._lock:
            self._cache[reference] = (value, now + self._ttl)
        return value

    def delete(self, reference: str) -> None:
        self._check(reference)
        with self._lock:
            self._cache.pop(reference, None)
        try:
            self._client.delete_parameter(Name=reference)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise StoreUnavailable(f"SSM: could not delete a secret: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"SSM: could not delete a secret: {exc}") from exc

    def _check(self, reference: str) -> None:
        # The functions may read only their stack's parameters: a reference elsewhere is a bug or tampering.
        if not reference.startswith(self._prefix):
            raise SecretNotFound(reference)
