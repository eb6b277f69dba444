"""The outbound URL policy, the delivery signature and the retry schedule of webhooks."""

from __future__ import annotations

import ipaddress

import pytest

from shared.services.webhooks import RetryPolicy, delivery_id
from shared.webhooks import signing
from shared.webhooks.policy import OutboundPolicy, OutboundRefused, address_refusal, checked_addresses, parse_target

STRICT = OutboundPolicy()
LOCAL = OutboundPolicy(allow_http=True, allow_private=True)


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fd00:ec2::254", "169.254.10.1", "fe80::1", "224.0.0.1", "0.0.0.0", "::", "240.0.0.1"],
)
def test_metadata_link_local_and_non_unicast_addresses_are_always_refused(address: str) -> None:
    for policy in (STRICT, LOCAL):
        assert address_refusal(ipaddress.ip_address(address), policy) is not None


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "::1", "100.64.0.1", "fc00::1"]
)
def test_private_addresses_only_where_the_stage_allows_them(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), STRICT) is not None
    assert address_refusal(ipaddress.ip_address(address), LOCAL) is None


def test_ipv4_mapped_ipv6_addresses_are_judged_as_ipv4() -> None:
    assert address_refusal(ipaddress.ip_address("::ffff:169.254.169.254"), LOCAL) is not None
    assert address_refusal(ipaddress.ip_address("::ffff:10.0.0.1"), STRICT) is not None
    assert address_refusal(ipaddress.ip_address("::ffff:8.8.8.8"), STRICT) is None


def test_every_address_a_name_resolves_to_must_pass() -> None:
    public, private = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")
    assert checked_addresses([public], STRICT) == [public]
    with pytest.raises(OutboundRefused, match=r"10\.0\.0\.7"):
        checked_addresses([public, private], STRICT)
    with pytest.raises(OutboundRefused, match="did not resolve"):
        checked_addresses([], STRICT)


def test_url_forms() -> None:
    target = parse_target("https://hooks.example.com:8443/in?x=1", STRICT)
    assert (target.scheme, target.host, target.port, target.path) == ("https", "hooks.example.com", 8443, "/in?x=1")
    assert parse_target("https://hooks.example.com", STRICT).path == "/"
    assert parse_target("http://hooks.example.com/x", LOCAL).port == 80
    for url, why in [
        ("http://hooks.example.com/x", "https"),
        ("gopher://hooks.example.com/", "https://"),
        ("https:///nohost", "no valid host"),
        ("https://a b.example.com/", "no valid host"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://metadata.google.internal/", "metadata"),
        ("https://localhost/", "localhost"),
        ("https://hooks.example.com:99999/", "malformed"),
        ("https://" + "a" * 2050 + ".com/", "longer"),
    ]:
        with pytest.raises(OutboundRefused, match=why):
            parse_target(url, STRICT)


def test_signatures_verify_only_for_the_secret_the_body_and_a_fresh_timestamp() -> None:
    body = b'{"id":"e1"}'
    header = signing.signature("secret-0123456789", 1_700_000_000, body)
    assert header.startswith("v1=") and len(header) == 3 + 64
    now = 1_700_000_100.0
    assert signing.verify("secret-0123456789", body, "1700000000", header, now=now)
    assert signing.verify("secret-0123456789", body, "1700000000", f"v1=00, {header}", now=now)  # rotated secrets
    assert not signing.verify("secret-other-000000", body, "1700000000", header, now=now)
    assert not signing.verify("secret-0123456789", body + b"x", "1700000000", header, now=now)
    assert not signing.verify("secret-0123456789", body, "1700000001", header, now=now)
    assert not signing.verify("secret-0123456789", body, "1700000000", header, now=now + signing.REPLAY_WINDOW_S)
    assert not signing.verify("secret-0123456789", body, None, header, now=now)
    assert not signing.verify("secret-0123456789", body, "17e8", header, now=now)


def test_backoff_doubles_up_to_its_cap_and_delivery_ids_are_stable() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_s=30, max_backoff_s=3600)
    assert [policy.delay_after(n) for n in (1, 2, 3, 7, 8, 9)] == [30, 60, 120, 1920, 3600, 3600]
    assert delivery_id("w", "e") == delivery_id("w", "e") != delivery_id("w", "e2")
