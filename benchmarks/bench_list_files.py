"""File manager listing latency: a folder's page, and the root whose sub-folder holds a big tree.

Starts `flowless serve` on a fresh data folder, uploads ``--files`` small files through the API into
``/big/part<n>/`` (100 files per request), then times GET /api/v1/file/list for the root (which shows
``big`` with its recursive size and has_child_folder) and for one part folder, against an empty tenant's
root. Recursive sizes are kept by the writes, so neither listing should grow with the tree below it.

    .venv/bin/python benchmarks/bench_list_files.py [--files 10000] [--requests 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_list_datasets import free_port, start_server

PER_REQUEST = 100
PER_FOLDER = 1000


def timed(client: httpx.Client, params: dict[str, str], requests: int) -> tuple[float, float]:
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        body = client.get("/api/v1/file/list", params=params).json()
        latencies.append(time.perf_counter() - started)
        assert body["code"] == 0, body
    latencies.sort()
    return statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        proc = start_server(data_dir, port)
        try:
            base = f"http://127.0.0.1:{port}"
            key = (data_dir / "api_key").read_text().strip()
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
                timed(client, {}, 20)  # warm-up, and the root of an empty tenant
                empty = timed(client, {}, args.requests)
                started = time.perf_counter()
                for start in range(0, args.files, PER_REQUEST):
                    parts = [
                        ("file", (f"big/part{i // PER_FOLDER}/file{i}.txt", b"x" * 100))
                        for i in range(start, min(start + PER_REQUEST, args.files))
                    ]
                    assert client.post("/api/v1/file/upload", files=parts).json()["code"] == 0
                upload_s = time.perf_counter() - started
                root = client.get("/api/v1/file/list").json()["data"]
                big = next(f for f in root["files"] if f["name"] == "big")
                assert big["size"] == args.files * 100 and big["has_child_folder"], big
                part = client.get("/api/v1/file/list", params={"parent_id": big["id"]}).json()["data"]["files"][0]
                full_root = timed(client, {}, args.requests)
                page = timed(client, {"parent_id": part["id"], "page": "3", "page_size": "15"}, args.requests)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"uploaded {args.files} files in {args.files // PER_REQUEST} requests: {upload_s:.1f} s")
    for label, (p50, p99) in (
        ("list the root of an empty tenant", empty),
        (f"list the root over {args.files} files", full_root),
        (f"list a {PER_FOLDER}-file folder, page 3", page),
    ):
        print(f"{label:<38} p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
