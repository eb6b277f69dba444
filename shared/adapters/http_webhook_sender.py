"""The webhook sender over the standard library's http.client: resolve, check every address, connect to a
checked one (TLS verified against the URL's host name), POST once, no redirects, bounded time."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from shared.ports.webhooks import SendResult, WebhookSender
from shared.webhooks.policy import IPAddress, OutboundPolicy, OutboundRefused, checked_addresses, parse_target

Resolver = Callable[[str, int], list[IPAddress]]
#: Bytes of a receiver's answer read (and dropped): the status is what counts.
_MAX_ANSWER_BYTES = 64 * 1024


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal address resolves to itself)."""
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address; the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = str(address)

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """A TLS connection to a checked address, with SNI and certificate verification for the URL's host."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = str(address)
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class HttpWebhookSender(WebhookSender):
    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        timeout_s: float = 10.0,
        resolver: Resolver = resolve,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._policy = policy
        self._timeout_s = timeout_s
        self._resolve = resolver
        self._tls = tls or ssl.create_default_context()

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        try:
            target = parse_target(url, self._policy)
            addresses = checked_addresses(self._resolve(target.host, target.port), self._policy)
        except OutboundRefused as refused:
            return SendResult(error=str(refused), refused=True)
        except (OSError, UnicodeError) as exc:  # resolution failed: maybe transient
            return SendResult(error=f"Cannot resolve {url}: {exc}")
        connection: Any
        if target.scheme == "https":
            connection = _PinnedHTTPSConnection(target.host, target.port, addresses[0], self._timeout_s, self._tls)
        else:
            connection = _PinnedHTTPConnection(target.host, target.port, addresses[0], self._timeout_s)
        try:
            connection.request("POST", target.path, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read(_MAX_ANSWER_BYTES)
            return SendResult(status=response.status)
        except (OSError, http.client.HTTPException) as exc:
            return SendResult(error=f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()
