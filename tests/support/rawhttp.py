"""HTTP/1.1 by hand on a socket: for what an HTTP client refuses to send (a 600 KB URL) and for watching one
keep-alive connection across requests."""

from __future__ import annotations

import socket


def exchange(sock: socket.socket, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send one HTTP/1.1 request on ``sock`` and read one response (Content-Length framed)."""
    sock.sendall(request)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buffer += chunk
    head, body = buffer.split(b"\r\n\r\n", 1)
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    return status, headers, body[:length]


def get(base_url: str, target: str, api_key: str) -> tuple[str, bytes]:
    """One GET of ``target`` (path and query, sent as given) on a fresh connection: the status line and body."""
    host, port = base_url.removeprefix("http://").split(":")
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        status, _, body = exchange(sock, request)
    return status, body
