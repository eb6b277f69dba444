"""The file manager's service on both metadata drivers (SQLite, and DynamoDB under moto, whose transactions
hold at most 100 items): big requests cut into transactions, nesting limits, concurrent writers."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.config import Settings
from shared.container import Container
from shared.errors import DataError
from shared.repos.files import MAX_FOLDER_DEPTH
from shared.repos.tenants import Tenant
from shared.schemas.files import CreateFileRequest, ListFilesQuery, MoveFilesRequest, RemoveFilesRequest
from shared.services.documents import UploadedFile
from shared.services.files import FileService

TENANT = "3af81804241d11f0a6a79f24fc270c7f"


@dataclass
class Files:
    service: FileService

    def folder(self, name: str, parent_id: str | None = None) -> str:
        return str(self.service.create(TENANT, CreateFileRequest(name=name, type="folder", parent_id=parent_id))["id"])

    def move(self, ids: list[str], destination: str) -> bool:
        return self.service.move(TENANT, MoveFilesRequest(src_file_ids=ids, dest_file_id=destination))

    def listed(self, folder_id: str | None = None) -> list[dict[str, object]]:
        query = ListFilesQuery(parent_id=folder_id, page_size=10_000)
        files: list[dict[str, object]] = self.service.list_files(TENANT, query)["files"]
        return files

    def size_of(self, parent_id: str | None, name: str) -> object:
        return next(f["size"] for f in self.listed(parent_id) if f["name"] == name)


@pytest.fixture(params=["sqlite", "dynamodb"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Files]:
    container = Container(Settings(backend="local", data_dir=tmp_path))
    if request.param == "sqlite":
        container.tenants.create(Tenant(id=TENANT, name="t", create_time=1))
        yield Files(container.files)
        return
    from tests.support.dynamo import moto_dynamo_store

    with moto_dynamo_store() as store:
        container.overrides["metadata"] = store
        container.tenants.create(Tenant(id=TENANT, name="t", create_time=1))
        yield Files(container.files)


def test_an_upload_too_big_for_one_transaction_is_stored_whole(files: Files) -> None:
    folder = files.folder("bulk")
    uploads = [UploadedFile("same.txt", b"x" * (i + 1)) for i in range(60)]
    rows = files.service.upload(TENANT, folder, uploads)
    assert [row["name"] for row in rows] == ["same.txt", *(f"same({n}).txt" for n in range(1, 60))]
    assert len(files.listed(folder)) == 60
    assert files.size_of(None, "bulk") == sum(range(1, 61))


def test_removing_a_big_folder_goes_batch_by_batch(files: Files) -> None:
    top = files.folder("top")
    sub = files.folder("sub", top)
    # 60 rows of four items each: three transactions for the sub-folder's files.
    files.service.upload(TENANT, sub, [UploadedFile(f"f{i}.txt", b"abc") for i in range(60)])
    files.service.upload(TENANT, top, [UploadedFile(f"g{i}.txt", b"z") for i in range(10)])
    assert files.size_of(None, "top") == 60 * 3 + 10
    assert files.service.remove(TENANT, RemoveFilesRequest(file_ids=[top])) is True
    assert [f["name"] for f in files.listed() if f["name"] != ".knowledgebase"] == []
    assert files.service.root_folder(TENANT)["root_folder"]["size"] == 0


def test_moving_many_items_at_once(files: Files) -> None:
    source, target = files.folder("source"), files.folder("target")
    rows = files.service.upload(TENANT, source, [UploadedFile(f"m{i}.txt", b"12") for i in range(40)])
    assert files.move([row["id"] for row in rows], target) is True
    assert len(files.listed(target)) == 40 and files.listed(source) == []
    assert files.size_of(None, "target") == 80 and files.size_of(None, "source") == 0


def test_folders_nest_down_to_the_limit_and_moves_between_the_deepest_ones_fit_a_transaction(files: Files) -> None:
    chains = []
    for top in ("left", "right"):
        parent = None
        ids = []
        for level in range(MAX_FOLDER_DEPTH):
            parent = files.folder(f"{top}{level}", parent)
            ids.append(parent)
        chains.append(ids)
    left, right = chains
    with pytest.raises(DataError):
        files.folder("too-deep", left[-1])
    with pytest.raises(DataError):
        files.service.upload(TENANT, left[-1], [UploadedFile("dir/a.txt", b"x")])
    (deep,) = files.service.upload(TENANT, left[-1], [UploadedFile("deep.txt", b"x" * 5)])
    assert files.size_of(None, "left0") == 5
    # One move that changes every folder of both chains: 5 items for the file, 2 x 40 folder sizes.
    assert files.move([deep["id"]], right[-1]) is True
    assert files.size_of(None, "left0") == 0 and files.size_of(None, "right0") == 5
    assert files.size_of(left[-2], f"left{MAX_FOLDER_DEPTH - 1}") == 0
    # A folder with sub-folders can't go where its content would nest too deep.
    outer = files.folder("outer")
    files.folder("inner", outer)
    with pytest.raises(DataError):
        files.move([outer], right[-2])
    assert files.move([outer], right[-3]) is True


def test_concurrent_uploads_of_one_name_get_distinct_names_and_exact_sizes(files: Files) -> None:
    folder = files.folder("shared")

    def upload(n: int) -> str:
        (row,) = files.service.upload(TENANT, folder, [UploadedFile("same.txt", b"x" * n)])
        return str(row["name"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        names = list(pool.map(upload, range(1, 13)))
    assert len(set(names)) == 12
    assert sorted(f["name"] for f in files.listed(folder)) == sorted(names)
    assert files.size_of(None, "shared") == sum(range(1, 13))
