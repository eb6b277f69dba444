"""S3 driver of the blob port: one bucket, server-side encrypted objects, batched prefix deletes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.ports.blobs import BlobNotFound, BlobStore
from shared.ports.metadata import StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# DeleteObjects takes at most this many keys per call.
DELETE_BATCH: Final = 1000
_MISSING_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})


def _unavailable(action: str, exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"S3 {action} failed: {exc}")


class S3BlobStore(BlobStore):
    """Blobs as objects of one bucket, encrypted at rest (SSE-S3 by default, SSE-KMS with a key id).

    Errors other than a missing object are raised as ``StoreUnavailable``.
    """

    def __init__(
        self,
        bucket: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        client: S3Client | None = None,
        kms_key_id: str | None = None,
    ) -> None:
        self._bucket = bucket
        if client is None:
            config = Config(
                region_name=region,
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=3,
                read_timeout=30,
                # Emulators (MinIO, LocalStack) behind a custom endpoint want path-style URLs.
                s3={"addressing_style": "path"} if endpoint_url else {},
            )
            client = boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)
        self._client: S3Client = client
        self._encryption: dict[str, Any] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
            if kms_key_id
            else {"ServerSideEncryption": "AES256"}
        )

    @property
    def bucket(self) -> str:
        """The bucket this store writes to."""
        return self._bucket

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, **self._encryption
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("put", exc) from exc

    def get(self, key: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise BlobNotFound(key) from exc
            raise _unavailable("get", exc) from exc
        except BotoCoreError as exc:
            raise _unavailable("get", exc) from exc
        body = response["Body"]
        try:
            return body.read()
        except BotoCoreError as exc:
            raise _unavailable("get", exc) from exc
        finally:
            body.close()

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("delete", exc) from exc

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under ``prefix``; an empty prefix (the whole bucket) is refused."""
        if not prefix:
            raise ValueError("refusing to delete every blob: the prefix is empty")
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix, PaginationConfig={"PageSize": DELETE_BATCH}
            )
            for page in pages:
                keys = [entry["Key"] for entry in page.get("Contents", [])]
                for start in range(0, len(keys), DELETE_BATCH):
                    self._delete_batch(keys[start : start + DELETE_BATCH])
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("delete_prefix", exc) from exc

    def _delete_batch(self, keys: list[str]) -> None:
        response = self._client.delete_objects(
            Bucket=self._bucket,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        # DeleteObjects answers 200 even when single keys failed; they are listed under Errors.
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StoreUnavailable(
                f"S3 delete_prefix failed for {len(errors)} keys, e.g. {first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message')}"
            )

    def ping(self) -> None:
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(f"head_bucket {self._bucket}", exc) from exc
