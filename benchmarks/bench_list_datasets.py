"""Local server throughput: GET /api/v1/datasets (page_size 30) with 1,000 datasets in the tenant.

Starts `flowless serve` in its own process on a fresh data folder, creates 1,000 datasets through the
API, then drives the list endpoint from this process with keep-alive connections.

    .venv/bin/python benchmarks/bench_list_datasets.py [--requests 3000] [--concurrency 4]

Besides requests per wall-clock second, the server's and this client's CPU time per request (from /proc):
on a machine other programs load, those say what the server costs (1,000 / its CPU ms a request = what its
one event loop serves on an idle core) where wall-clock rates mostly measure the load.

A same-run floor follows: the ping route over the same connections (the HTTP stack and the client alone).

Targets: issue 2: >= 300 requests/s and p99 <= 50 ms on the 2-core machine; issue 15: >= 1,000 requests/s
at 4 connections.
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


async def drive(base: str, key: str, total: int, concurrency: int, *, ping: bool = False) -> list[float]:
    """``total`` requests over ``concurrency`` keep-alive connections: the list, or (``ping``) the server's
    ping route — the same HTTP stack without authentication or store reads, the same run's floor."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    remaining = total

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            if ping:
                res = await client.get("/v1/system/ping")
                latencies.append(time.perf_counter() - started)
                assert res.status_code == 200, res.text
                continue
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
    parser.add_argument("--concurrency", type=int, default=4)
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
            server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
            started = time.perf_counter()
            latencies = asyncio.run(drive(base, key, args.requests, args.concurrency))
            elapsed = time.perf_counter() - started
            server_cpu, client_cpu = cpu_seconds(proc.pid) - server_cpu, time.process_time() - client_cpu
            started = time.perf_counter()
            pings = asyncio.run(drive(base, key, args.requests, args.concurrency, ping=True))
            ping_rps = len(pings) / (time.perf_counter() - started)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    rps = len(latencies) / elapsed
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    server_ms = server_cpu / len(latencies) * 1000
    print(
        f"list datasets (1,000 in tenant, page_size 30, concurrency {args.concurrency}, cores {os.cpu_count()}, "
        f"load average {load}): {rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} requests"
    )
    print(
        f"CPU a request: server {server_ms:.2f} ms ({1000 / server_ms:.0f} req per server CPU-second), "
        f"client {client_cpu / len(latencies) * 1000:.2f} ms   (target >= 1,000 req/s)"
    )
    print(
        f"same run, GET /v1/system/ping (no auth, no store): {ping_rps:.0f} req/s, p50 "
        f"{statistics.median(pings) * 1000:.1f} ms; the list runs at {rps / ping_rps:.0%} of it"
    )


if __name__ == "__main__":
    main()
