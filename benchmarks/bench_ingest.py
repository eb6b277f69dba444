"""Local ingestion latency: upload + parse to DONE through the API of a `flowless serve` process.

    .venv/bin/python benchmarks/bench_ingest.py [--files 100]

Targets (issue 3): a 39-byte txt reaches DONE in <= 2 s; 100 small files in <= 60 s.
The server process is started fresh, so the first parse includes loading the builtin embedder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_list_datasets import free_port, start_server

TEXT_39 = b"flowless parses this tiny file quickly\n"
assert len(TEXT_39) == 39


def wait_all_done(client: httpx.Client, dataset_id: str, count: int, timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        docs = client.get(
            f"/api/v1/datasets/{dataset_id}/documents", params={"page_size": count, "run": ["DONE", "FAIL"]}
        ).json()["data"]["docs"]
        failed = [d for d in docs if d["run"] == "FAIL"]
        if failed:
            raise SystemExit(f"parse failed: {failed[0]['progress_msg']}")
        if len(docs) == count:
            return time.perf_counter()
        time.sleep(0.01)
    raise SystemExit("timed out")


def one_file(client: httpx.Client, name: str) -> float:
    ds = client.post("/api/v1/datasets", json={"name": name}).json()["data"]["id"]
    started = time.perf_counter()
    doc = client.post(f"/api/v1/datasets/{ds}/documents", files=[("file", ("tiny.txt", TEXT_39))]).json()
    doc_id = doc["data"][0]["id"]
    client.post(f"/api/v1/datasets/{ds}/chunks", json={"document_ids": [doc_id]})
    return wait_all_done(client, ds, 1, 30) - started


def many_files(client: httpx.Client, count: int) -> float:
    ds = client.post("/api/v1/datasets", json={"name": "many"}).json()["data"]["id"]
    started = time.perf_counter()
    ids = []
    for i in range(count):
        body = f"Small file number {i}. It has a couple of sentences about topic {i % 7}.\n".encode()
        res = client.post(f"/api/v1/datasets/{ds}/documents", files=[("file", (f"f{i}.txt", body))]).json()
        ids.append(res["data"][0]["id"])
    client.post(f"/api/v1/datasets/{ds}/chunks", json={"document_ids": ids})
    return wait_all_done(client, ds, count, 300) - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        proc: subprocess.Popen[bytes] = start_server(data_dir, port)
        try:
            key = (data_dir / "api_key").read_text().strip()
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
                cold = one_file(client, "cold")
                warm = one_file(client, "warm")
                many = many_files(client, args.files)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"39-byte txt upload+parse to DONE: {cold:.2f} s (fresh server, embedder loading), {warm:.2f} s warm")
    print(f"{args.files} small files uploaded and parsed to DONE: {many:.1f} s")


if __name__ == "__main__":
    main()
