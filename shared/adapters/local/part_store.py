"""Local drivers of the upload ports: a multipart part store under the data folder whose part URLs point at
the local server (signed like presigned URLs: no API key, an expiry), and folders standing in for buckets.

The part store keeps each upload in ``<root>/<upload id>/``: ``upload.json`` (key, expiry) and one file per
part, written through a temporary name. Completing concatenates the parts into a file beside them and moves it
into the blob store, so a 5 GB file never sits in memory. Expired uploads are removed by ``remove_expired``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from shared.adapters.local.fs_blobs import FilesystemBlobStore
from shared.ports.metadata import StoreUnavailable
from shared.ports.uploads import (
    MAX_PART_BYTES,
    MAX_PARTS,
    ObjectCatalog,
    ObjectNotFound,
    StoredObject,
    UploadedPart,
    UploadNotFound,
    UploadRejected,
    UploadStore,
)

#: Where the local server receives parts (``functions/local/parts.py``).
PART_ROUTE: Final = "api/v1/flowless/upload-parts"
_MANIFEST: Final = "upload.json"
_SECRET_FILE: Final = ".url-secret"
_COPY_BUFFER: Final = 8 * 1024 * 1024


class PartRefused(Exception):
    """A part URL that is not valid (signature, expiry, number) or a part too large; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _part_name(number: int) -> str:
    return f"part-{number:05d}"


def _etag_name(number: int) -> str:
    return f"etag-{number:05d}"


class LocalPartWriter:
    """One part being received: bytes go to a temporary file, hashed as they come (the ETag is their MD5, as
    S3's is for a part); ``commit`` renames it into place."""

    def __init__(self, folder: Path, number: int) -> None:
        self._target = folder / _part_name(number)
        self._etag_file = folder / _etag_name(number)
        self._temp = folder / f".{_part_name(number)}.{secrets.token_hex(4)}"
        self._handle = self._temp.open("wb")
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_PART_BYTES:
            raise PartRefused(400, "EntityTooLarge: a part may hold at most 5 GiB")
        self._md5.update(chunk)
        self._handle.write(chunk)

    def commit(self) -> str:
        self._handle.close()
        etag = self._md5.hexdigest()
        self._etag_file.write_text(etag, encoding="ascii")
        os.replace(self._temp, self._target)
        self._done = True
        return etag

    def discard(self) -> None:
        if not self._done:
            self._handle.close()
            with contextlib.suppress(FileNotFoundError):
                self._temp.unlink()


class LocalUploadStore(UploadStore):
    def __init__(self, root: Path, blobs: FilesystemBlobStore) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self._blobs = blobs
        self._secret = self._load_secret()

    def _load_secret(self) -> bytes:
        path = self._root / _SECRET_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32))
        return path.read_text(encoding="ascii").strip().encode("ascii")

    def _folder(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise UploadNotFound(upload_id)
        return self._root / upload_id

    def _manifest(self, upload_id: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self._folder(upload_id) / _MANIFEST).read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
            raise UploadNotFound(upload_id) from exc
        return data

    def _sign(self, upload_id: str, number: int, expires: int) -> str:
        return hmac.new(self._secret, f"{upload_id}:{number}:{expires}".encode(), hashlib.sha256).hexdigest()

    # -- the port ----------------------------------------------------------------------------------
    def create(self, key: str, content_type: str, *, expires_at_ms: int) -> str:
        upload_id = secrets.token_hex(16)
        folder = self._folder(upload_id)
        try:
            folder.mkdir()
            manifest = {"key": key, "content_type": content_type, "expires_at_ms": expires_at_ms}
            (folder / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        except OSError as exc:
            raise StoreUnavailable(f"cannot create upload folder: {exc}") from exc
        return upload_id

    def part_urls(
        self, key: str, upload_id: str, part_numbers: Sequence[int], *, expires_in_s: int, base_url: str
    ) -> dict[int, str]:
        expires = int(time.time()) + expires_in_s
        base = base_url.rstrip("/")
        return {
            number: (
                f"{base}/{PART_ROUTE}/{upload_id}/{number}"
                f"?expires={expires}&signature={self._sign(upload_id, number, expires)}"
            )
            for number in part_numbers
        }

    def part_writer(self, upload_id: str, number: int, expires: int, signature: str) -> LocalPartWriter:
        """Check a part URL (signature, expiry, number, upload) and open the part for writing."""
        if not hmac.compare_digest(self._sign(upload_id, number, expires), signature):
            raise PartRefused(403, "SignatureDoesNotMatch")
        if expires < time.time():
            raise PartRefused(403, "Request has expired")
        if not 1 <= number <= MAX_PARTS:
            raise PartRefused(400, "InvalidArgument: part number must be between 1 and 10000")
        try:
            self._manifest(upload_id)
        except UploadNotFound:
            raise PartRefused(404, "NoSuchUpload") from None
        return LocalPartWriter(self._folder(upload_id), number)

    def parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        self._manifest(upload_id)
        folder = self._folder(upload_id)
        found = []
        for entry in sorted(folder.glob("part-*")):
            number = int(entry.name.removeprefix("part-"))
            etag = (folder / _etag_name(number)).read_text(encoding="ascii")
            found.append(UploadedPart(number, entry.stat().st_size, etag))
        return found

    def complete(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> None:
        manifest = self._manifest(upload_id)
        if manifest["key"] != key:
            raise UploadNotFound(upload_id)
        folder = self._folder(upload_id)
        assembled = folder / ".assembled"
        try:
            with assembled.open("wb") as out:
                for part in parts:
                    path = folder / _part_name(part.number)
                    if not path.exists():
                        raise UploadRejected(f"InvalidPart: part {part.number} was not uploaded")
                    with path.open("rb") as source:
                        shutil.copyfileobj(source, out, _COPY_BUFFER)
            self._blobs.put_file(key, assembled)
        except OSError as exc:
            raise StoreUnavailable(f"cannot assemble upload {upload_id}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                assembled.unlink()
        shutil.rmtree(folder, ignore_errors=True)

    def abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(UploadNotFound):
            shutil.rmtree(self._folder(upload_id), ignore_errors=True)

    def remove_expired(self, now_ms: int) -> int:
        removed = 0
        for folder in self._root.iterdir():
            if not folder.is_dir():
                continue
            try:
                expired = self._manifest(folder.name)["expires_at_ms"] < now_ms
            except UploadNotFound:
                expired = True  # a folder without a manifest: a create that never finished
            if expired:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed


class FolderCatalog(ObjectCatalog):
    """Buckets as folders: ``buckets`` maps a bucket name to its folder. Keys are '/'-separated paths inside
    it; symbolic links that lead out of the folder are not followed."""

    def __init__(self, buckets: dict[str, Path]) -> None:
        self._buckets = {name: Path(folder).resolve() for name, folder in buckets.items()}

    def _root(self, bucket: str) -> Path:
        root = self._buckets.get(bucket)
        if root is None or not root.is_dir():
            raise ObjectNotFound(f"s3://{bucket}/")
        return root

    def _path(self, bucket: str, key: str) -> Path:
        root = self._root(bucket)
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") for part in parts):
            raise ObjectNotFound(f"s3://{bucket}/{key}")
        path = root.joinpath(*parts)
        if not path.resolve().is_relative_to(root) or not path.is_file():
            raise ObjectNotFound(f"s3://{bucket}/{key}")
        return path

    @staticmethod
    def _object(bucket: str, key: str, path: Path) -> StoredObject:
        stat = path.stat()
        return StoredObject(bucket, key, stat.st_size, f"{stat.st_size:x}-{stat.st_mtime_ns:x}")

    def head(self, bucket: str, key: str) -> StoredObject:
        return self._object(bucket, key, self._path(bucket, key))

    def list_objects(
        self, bucket: str, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> tuple[list[StoredObject], bool]:
        root = self._root(bucket)
        # Walk only the folder the prefix names, as S3 would list only keys under it.
        folder = root.joinpath(*[p for p in prefix.split("/")[:-1] if p]) if "/" in prefix else root
        if not folder.resolve().is_relative_to(root) or not folder.is_dir():
            return [], False
        keys = []
        for directory, _dirs, files in os.walk(folder):
            for name in files:
                path = Path(directory) / name
                if not path.resolve().is_relative_to(root):
                    continue
                key = path.relative_to(root).as_posix()
                if key.startswith(prefix) and key > start_after and not name.startswith("."):
                    keys.append((key, path))
        keys.sort()
        page = keys[:limit]
        return [self._object(bucket, key, path) for key, path in page], len(keys) > limit

    def read(self, bucket: str, key: str) -> bytes:
        try:
            return self._path(bucket, key).read_bytes()
        except OSError as exc:
            raise StoreUnavailable(f"cannot read s3://{bucket}/{key}: {exc}") from exc
