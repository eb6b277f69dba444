"""Filesystem driver of the blob port: one file per key under a root directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Final

from shared.ports.blobs import BlobNotFound, BlobStore
from shared.ports.metadata import StoreUnavailable

# Files being written are named with this prefix until renamed into place. No key segment may start
# with it, so a half-written file is never read as a blob, nor removed by a concurrent delete_prefix.
_TMP_PREFIX: Final = ".tmp-"
# A put retries when a concurrent delete_prefix prunes the directory it is about to write into.
_PUT_ATTEMPTS: Final = 5


def _check_segment(segment: str, what: str) -> None:
    if segment in ("", ".", "..") or segment.startswith(_TMP_PREFIX):
        raise ValueError(f"invalid {what}: segment {segment!r} is empty, relative or reserved")


def _check_chars(text: str, what: str) -> None:
    if not text:
        raise ValueError(f"invalid {what}: it is empty")
    if text.startswith("/") or "\\" in text or "\x00" in text:
        raise ValueError(f"invalid {what} {text!r}: keys are relative, '/'-separated paths")


class FilesystemBlobStore(BlobStore):
    """Blobs as files under ``root``; the key ``a/b/c.pdf`` is the file ``root/a/b/c.pdf``.

    Keys must stay inside the root: absolute keys, ``..``/``.``/empty segments and backslashes are
    refused with ValueError. Writes are atomic (a temporary file renamed over the target), so readers
    see the old or the new content, never a mix. I/O failures are raised as ``StoreUnavailable``.
    """

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root).resolve()
        self._root.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        """The directory holding the blobs."""
        return self._root

    def _path(self, key: str) -> Path:
        _check_chars(key, "blob key")
        segments = key.split("/")
        for segment in segments:
            _check_segment(segment, "blob key")
        path = self._root.joinpath(*segments)
        # Defence in depth: a symlink inside the root must not lead out of it.
        if not path.resolve().is_relative_to(self._root):
            raise ValueError(f"invalid blob key {key!r}: it leads outside the store")
        return path

    def _prune(self, directory: Path) -> None:
        """Remove ``directory`` and its parents while they are empty, up to (not including) the root."""
        while directory != self._root and directory.is_relative_to(self._root):
            try:
                directory.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                return
            directory = directory.parent

    # -- the port ----------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        # content_type is S3 metadata; files carry none (readers sniff or know the type).
        path = self._path(key)
        try:
            fd, tmp_name = self._temp_file_beside(path)
            try:
                # No fsync: like the SQLite store (synchronous=NORMAL), blobs survive process crashes
                # and restarts; an OS crash may lose the latest writes, which a local server accepts.
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp_name, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
                raise
        except OSError as exc:
            raise StoreUnavailable(f"cannot write blob {key!r}: {exc}") from exc

    def put_file(self, key: str, source: Path) -> None:
        """Move the file ``source`` (on the same filesystem) into place as the blob ``key``: a big blob is
        assembled beside the store and renamed in, never held in memory."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, path)  # a rename on one filesystem
        except OSError as exc:
            raise StoreUnavailable(f"cannot write blob {key!r}: {exc}") from exc

    def _temp_file_beside(self, path: Path) -> tuple[int, str]:
        for _ in range(_PUT_ATTEMPTS - 1):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                return tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
            except FileNotFoundError:  # the directory was pruned between mkdir and mkstemp
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise BlobNotFound(key) from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read blob {key!r}: {exc}") from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return  # no object under that key
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete blob {key!r}: {exc}") from exc
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> None:
        """Remove every blob whose key starts with ``prefix``; an empty prefix (everything) is refused."""
        _check_chars(prefix, "blob prefix")
        *folders, name_start = prefix.split("/")
        for segment in folders:
            _check_segment(segment, "blob prefix")
        base = self._root.joinpath(*folders)
        if not base.resolve().is_relative_to(self._root):
            raise ValueError(f"invalid blob prefix {prefix!r}: it leads outside the store")
        try:
            entries = [entry for entry in os.scandir(base) if entry.name.startswith(name_start)]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StoreUnavailable(f"cannot list blobs under {prefix!r}: {exc}") from exc
        try:
            for entry in entries:
                if entry.name.startswith(_TMP_PREFIX):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    self._remove_tree(Path(entry.path))
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete blobs under {prefix!r}: {exc}") from exc
        self._prune(base)

    @staticmethod
    def _remove_tree(top: Path) -> None:
        """Delete the blobs under ``top`` and the directories left empty (in-flight writes survive)."""
        for folder, _dirs, files in os.walk(top, topdown=False):
            for name in files:
                if not name.startswith(_TMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(folder, name))
            with contextlib.suppress(OSError):
                os.rmdir(folder)

    def ping(self) -> None:
        if not self._root.is_dir() or not os.access(self._root, os.W_OK | os.X_OK):
            raise StoreUnavailable(f"blob directory {self._root} is missing or not writable")
