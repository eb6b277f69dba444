"""flowless's own features on a `flowless serve` process: presigned multipart upload throughput, and how soon
a webhook hears that a parse ended.

    .venv/bin/python benchmarks/bench_beyond.py [--upload-mib 512] [--parses 20]

* upload: a file of --upload-mib MiB in 64 MiB parts, PUT four at a time to the part URLs, then completed;
  reported in MiB/s from the first PUT to the completed document (loopback: this measures the server's part
  store, not a network).
* webhook: --parses tiny files parsed one after the other; for each, the time from the document's DONE
  (the event's ``at``) to the receiver on 127.0.0.1 holding the verified delivery (p50 / max).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_list_datasets import free_port, start_server

from shared.webhooks import signing

PART = 64 * 1024 * 1024


def bench_upload(client: httpx.Client, mib: int, folder: Path) -> float:
    path = folder / "big.txt"
    line = b"Presigned uploads carry big files straight to storage, part by part.\n"
    with path.open("wb") as out:
        block = line * (1024 * 1024 // len(line) + 1)
        for _ in range(mib):
            out.write(block[: 1024 * 1024])
    ds = client.post("/api/v1/datasets", json={"name": "upload-bench"}).json()["data"]["id"]
    size = path.stat().st_size
    up = client.post(
        f"/api/v1/flowless/datasets/{ds}/uploads", json={"filename": "big.txt", "size": size, "part_size": PART}
    ).json()["data"]

    def put(part: dict[str, Any]) -> None:
        with path.open("rb") as source:
            source.seek((part["part_number"] - 1) * PART)
            data = source.read(part["size"])
        httpx.put(part["url"], content=data, timeout=300).raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(put, up["parts"]))
    done = client.post(f"/api/v1/flowless/datasets/{ds}/uploads/{up['upload_id']}/complete", timeout=300).json()
    elapsed = time.perf_counter() - started
    assert done["code"] == 0 and done["data"]["size"] == size, done
    return mib / elapsed


def bench_webhook(client: httpx.Client, parses: int) -> list[float]:
    latencies: list[float] = []
    secret = "bench-secret-0123456789"
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received = time.time()
            ok = signing.verify(
                secret, body, self.headers["X-Flowless-Timestamp"], self.headers["X-Flowless-Signature"]
            )
            with lock:
                latencies.append(received - json.loads(body)["at"] / 1000 if ok else float("nan"))
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    created = client.post("/api/v1/flowless/webhooks", json={"url": url, "secret": secret}).json()
    assert created["code"] == 0, created
    ds = client.post("/api/v1/datasets", json={"name": "webhook-bench"}).json()["data"]["id"]
    for i in range(parses):
        body = f"Parse number {i} ends with a webhook delivery.\n".encode()
        doc = client.post(f"/api/v1/datasets/{ds}/documents", files=[("file", (f"n{i}.txt", body))]).json()
        client.post(f"/api/v1/datasets/{ds}/chunks", json={"document_ids": [doc["data"][0]["id"]]})
        deadline = time.monotonic() + 60
        while len(latencies) <= i:
            if time.monotonic() > deadline:
                raise SystemExit("no delivery within 60 s")
            time.sleep(0.005)
    receiver.shutdown()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upload-mib", type=int, default=512)
    parser.add_argument("--parses", type=int, default=20)
    args = parser.parse_args()
    # The receiver is on loopback: allow private targets, as a stage setting would.
    os.environ["FLOWLESS_WEBHOOK_ALLOW_PRIVATE"] = "true"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        proc = start_server(data_dir, port)
        try:
            key = (data_dir / "api_key").read_text().strip()
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=60
            ) as client:
                rate = bench_upload(client, args.upload_mib, Path(tmp))
                print(f"presigned upload, {args.upload_mib} MiB in 64 MiB parts: {rate:.0f} MiB/s")
                latencies = bench_webhook(client, args.parses)
                print(
                    f"DONE -> verified webhook delivery over {args.parses} parses: "
                    f"p50 {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
