"""S3 drivers of the upload ports: multipart uploads with presigned part URLs (the bytes go from the client
to S3, never through Lambda), and the object catalog imports read (list, HEAD, GET)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.ports.metadata import StoreUnavailable
from shared.ports.uploads import (
    ObjectCatalog,
    ObjectNotFound,
    StoredObject,
    UploadedPart,
    UploadNotFound,
    UploadRejected,
    UploadStore,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_REJECTED_CODES: Final = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "EntityTooLarge"})
_MISSING_CODES: Final = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})
#: ListParts answers at most this many parts a page.
_PARTS_PAGE: Final = 1000


def s3_client(region: str, endpoint_url: str | None = None) -> S3Client:
    """A client whose presigned URLs are regional virtual-hosted ones (``<bucket>.s3.<region>.amazonaws.com``),
    signed with SigV4: a global-endpoint URL would be redirected, and a redirected PUT fails."""
    config = Config(
        region_name=region,
        signature_version="s3v4",
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=3,
        read_timeout=30,
        s3={"addressing_style": "path" if endpoint_url else "virtual"},
    )
    client: S3Client = boto3.client(
        "s3", region_name=region, endpoint_url=endpoint_url or f"https://s3.{region}.amazonaws.com", config=config
    )
    return client


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(value: str) -> str:
    return value.strip('"')


#: What an S3 error code means to a call (an exception of the port), or None: the store is unavailable.
Refusal = Callable[[str], Exception | None]


def _unavailable(code: str) -> None:
    return None


@contextmanager
def _failures(operation: str, refusal: Refusal = _unavailable, *, done: frozenset[str] = frozenset()) -> Iterator[None]:
    """S3's failures in the port's terms: a code ``refusal`` recognizes raises its exception, a code in ``done``
    means there is nothing left to do, any other failure is :class:`StoreUnavailable` naming ``operation``."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code in done:
            return
        refused = refusal(code)
        if refused is not None:
            raise refused from exc
        raise StoreUnavailable(f"S3 {operation} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"S3 {operation} failed: {exc}") from exc


def _no_upload(upload_id: str) -> Refusal:
    return lambda code: UploadNotFound(upload_id) if code == "NoSuchUpload" else None


def _missing(uri: str) -> Refusal:
    return lambda code: ObjectNotFound(uri) if code in _MISSING_CODES else None


class S3UploadStore(UploadStore):
    """Multipart uploads to ``bucket`` (SSE-S3, or SSE-KMS with ``kms_key_id``: the key the bucket's other
    objects are written with). Unfinished uploads are removed by the bucket's lifecycle rule
    (AbortIncompleteMultipartUpload on the uploads prefix), so ``remove_expired`` has nothing to do."""

    def __init__(self, bucket: str, client: S3Client, *, kms_key_id: str | None = None) -> None:
        self._bucket = bucket
        self._client = client
        # Parts uploaded through presigned URLs take the upload's encryption: it is chosen here, once.
        self._encryption: dict[str, Any] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
            if kms_key_id
            else {"ServerSideEncryption": "AES256"}
        )

    def create(self, key: str, content_type: str, *, expires_at_ms: int) -> str:
        with _failures("create_multipart_upload"):
            answer = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=key, ContentType=content_type, **self._encryption
            )
        return answer["UploadId"]

    def part_urls(
        self, key: str, upload_id: str, part_numbers: Sequence[int], *, expires_in_s: int, base_url: str
    ) -> dict[int, str]:
        # Presigning is local computation (no request), so thousands of URLs cost nothing but CPU.
        return {
            number: self._client.generate_presigned_url(
                "upload_part",
                Params={"Bucket": self._bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                ExpiresIn=expires_in_s,
                HttpMethod="PUT",
            )
            for number in part_numbers
        }

    def parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        parts: list[UploadedPart] = []
        marker = 0
        with _failures("list_parts", _no_upload(upload_id)):
            while True:
                page: Any = self._client.list_parts(
                    Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker, MaxParts=_PARTS_PAGE
                )
                parts.extend(
                    UploadedPart(int(p["PartNumber"]), int(p["Size"]), _etag(p["ETag"])) for p in page.get("Parts", [])
                )
                if not page.get("IsTruncated"):
                    return parts
                marker = int(page["NextPartNumberMarker"])

    def complete(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> None:
        def refusal(code: str) -> Exception | None:
            if code in _REJECTED_CODES:
                return UploadRejected(f"S3 refused the parts: {code}")
            return _no_upload(upload_id)(code)

        with _failures("complete_multipart_upload", refusal):
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'} for p in parts]},
            )

    def abort(self, key: str, upload_id: str) -> None:
        # An upload S3 no longer knows is already aborted (or completed).
        with _failures("abort_multipart_upload", done=frozenset({"NoSuchUpload"})):
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)

    def remove_expired(self, now_ms: int) -> int:
        return 0


class S3ObjectCatalog(ObjectCatalog):
    """Objects of any bucket the function's role may read (IAM grants the documents bucket and the stage's
    import buckets; the service refuses other buckets before asking)."""

    def __init__(self, client: S3Client) -> None:
        self._client = client

    def head(self, bucket: str, key: str) -> StoredObject:
        with _failures("head_object", _missing(f"s3://{bucket}/{key}")):
            answer = self._client.head_object(Bucket=bucket, Key=key)
        return StoredObject(bucket, key, int(answer["ContentLength"]), _etag(answer.get("ETag", "")))

    def list_objects(
        self, bucket: str, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> tuple[list[StoredObject], bool]:
        with _failures("list_objects_v2", _missing(f"s3://{bucket}/")):
            answer: Any = self._client.list_objects_v2(
                Bucket=bucket, Prefix=prefix, StartAfter=start_after, MaxKeys=limit
            )
        objects = [
            StoredObject(bucket, entry["Key"], int(entry["Size"]), _etag(entry.get("ETag", "")))
            for entry in answer.get("Contents", [])
        ]
        return objects, bool(answer.get("IsTruncated"))

    def read(self, bucket: str, key: str) -> bytes:
        with _failures("get_object", _missing(f"s3://{bucket}/{key}")):
            answer = self._client.get_object(Bucket=bucket, Key=key)
            body = answer["Body"]
            try:
                return body.read()
            finally:
                body.close()
