"""The webhook sender connects only to an address it checked: a name is resolved once, every address is
judged, and the connection goes to a checked address with the URL's host in the Host header (a DNS answer
that changes between check and connect cannot steer it)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from shared.adapters.http_webhook_sender import HttpWebhookSender
from shared.webhooks.policy import IPAddress, OutboundPolicy
from tests.support.webhook_receiver import Receiver, run_receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with run_receiver() as running:
        yield running


class Resolver:
    def __init__(self, *answers: str) -> None:
        self.answers = [ipaddress.ip_address(a) for a in answers]
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls += 1
        return list(self.answers)


def test_the_connection_goes_to_the_checked_address_with_the_urls_host(receiver: Receiver) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    resolver = Resolver("127.0.0.1")
    sender = HttpWebhookSender(OutboundPolicy(allow_http=True, allow_private=True), resolver=resolver)
    result = sender.send(f"http://hooks.example.test:{port}/pinned?x=1", b"{}", {"Content-Type": "application/json"})
    assert result.ok and result.status == 200 and resolver.calls == 1
    (request,) = receiver.to("/pinned?x=1")
    assert request.headers["Host"] == f"hooks.example.test:{port}" and request.body == b"{}"


def test_a_name_that_also_resolves_inside_the_network_is_refused_without_connecting(receiver: Receiver) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    sender = HttpWebhookSender(OutboundPolicy(allow_http=True), resolver=Resolver("93.184.216.34", "127.0.0.1"))
    result = sender.send(f"http://rebind.example.test:{port}/rebind", b"{}", {})
    assert result.refused and not result.ok and "127.0.0.1" in (result.error or "")
    assert receiver.to("/rebind") == []


def test_unreachable_receivers_are_network_errors_not_refusals() -> None:
    sender = HttpWebhookSender(OutboundPolicy(allow_http=True, allow_private=True), timeout_s=2)
    result = sender.send("http://127.0.0.1:9/closed", b"{}", {})
    assert not result.ok and not result.refused and result.status is None and result.error
