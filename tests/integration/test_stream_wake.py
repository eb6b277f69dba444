"""Waking a read blocked on a model's HTTP response from another thread (shared/adapters/chat_streaming.py),
over a real loopback socket: what the chat adapters register with a StreamAbort."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from shared.adapters.chat_streaming import shut_down

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("client", ["httpx", "urllib3"])
def test_shutting_a_connection_down_wakes_a_read_blocked_on_it(client: str) -> None:
    # What the adapters register: the OpenAI client reads through httpx, botocore (Bedrock) through urllib3.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def serve() -> None:  # the headers and one piece of a chunked body, then silence
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        held.append(connection)

    threading.Thread(target=serve, daemon=True).start()
    read: list[object] = []
    if client == "httpx":
        import openai

        http = openai.DefaultHttpxClient()
        response: Any = http.send(http.build_request("GET", f"http://127.0.0.1:{port}/"), stream=True)
        chunks = response.iter_raw()
    else:
        import urllib3

        response = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{port}/", preload_content=False)
        chunks = response.stream(1)

    def consume() -> None:
        try:
            read.extend(chunks)
        except Exception as exc:
            read.append(exc)
        read.append("ended")

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not read and time.monotonic() < deadline:  # the first piece arrived: the next read blocks
        time.sleep(0.01)
    shut_down(response)
    worker.join(10.0)
    listener.close()
    for connection in held:
        connection.close()
    assert not worker.is_alive() and read[-1] == "ended"


def test_a_closed_response_is_left_alone_its_connection_serves_the_next_request() -> None:
    import openai

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served: list[int] = []

    def serve() -> None:  # one keep-alive connection, two whole answers
        connection, _ = listener.accept()
        with connection:
            for _ in range(2):
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                served.append(1)

    threading.Thread(target=serve, daemon=True).start()
    http = openai.DefaultHttpxClient()
    first = http.send(http.build_request("GET", f"http://127.0.0.1:{port}/"), stream=True)
    assert first.read() == b"ok" and first.is_closed  # read to the end: the connection went back to the pool
    shut_down(first)  # a late abort: must not touch the pooled connection
    assert http.get(f"http://127.0.0.1:{port}/", timeout=5).content == b"ok"  # the same connection: one accepted
    listener.close()
    assert len(served) == 2
