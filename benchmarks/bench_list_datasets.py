"""Local server throughput: GET /api/v1/datasets (page_size 30) with 1,000 datasets in the tenant.

Starts `flowless serve` in its own process on a fresh data folder, creates 1,000 datasets through the
API, then drives the list endpoint from this process with keep-alive connections.

    .venv/bin/python benchmarks/bench_list_datasets.py [--requests 3000] [--concurrency 8]

Target (issue 2): >= 300 requests/s and p99 <= 50 ms on the 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "flowless"
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/system/ping", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


async def drive(base: str, key: str, total: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    remaining = total

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            res = await client.get("/api/v1/datasets", params={"page": 3, "page_size": 30})
            latencies.append(time.perf_counter() - started)
            body = res.json()
            assert body["code"] == 0 and len(body["data"]) == 30 and body["total"] == 1000, body

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        proc = start_server(data_dir, port)
        try:
            base = f"http://127.0.0.1:{port}"
            key = (data_dir / "api_key").read_text().strip()
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
                for i in range(1000):
                    assert client.post("/api/v1/datasets", json={"name": f"dataset {i}"}).json()["code"] == 0
            asyncio.run(drive(base, key, 200, args.concurrency))  # warm-up
            started = time.perf_counter()
            latencies = asyncio.run(drive(base, key, args.requests, args.concurrency))
            elapsed = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    rps = len(latencies) / elapsed
    print(
        f"list datasets (1,000 in tenant, page_size 30, concurrency {args.concurrency}, cores {os.cpu_count()}): "
        f"{rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} requests"
    )


if __name__ == "__main__":
    main()
