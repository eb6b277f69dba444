"""What the service may call back: the outbound URL policy of webhooks (no SSRF into the VPC or the
instance metadata endpoint).

* Scheme: ``https``; ``http`` only where the stage allows it (the local server does by default).
* Host: every address the name resolves to must be public. Private, loopback and shared (CGNAT) ranges
  are refused unless the stage allows private targets; link-local (169.254.0.0/16 and fe80::/10, which
  hold the cloud metadata endpoints), multicast, reserved and unspecified addresses are always refused.
* The delivery connects to an address it checked (never resolves the name a second time), so a DNS
  answer that changes between check and connect (rebinding) cannot steer it elsewhere.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The metadata endpoints by name, refused before any resolution.
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"})
_MAX_URL_LENGTH = 2048
#: Carrier-grade NAT (RFC 6598): neither global nor "private" to the ipaddress module, but inside networks.
_SHARED_RANGE = ipaddress.ip_network("100.64.0.0/10")
#: EC2's IPv6 metadata endpoint sits in a unique-local range, not a link-local one: refused by address.
_METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("169.254.169.254")})


class OutboundRefused(Exception):
    """The URL or an address it resolves to is not allowed; the message says why."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect and what to ask for."""

    scheme: str
    host: str  # the name (or literal address) from the URL: Host header and TLS server name
    port: int
    path: str  # path and query, as sent in the request line


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_refusal(address: IPAddress, policy: OutboundPolicy) -> str | None:
    """Why ``address`` may not be called under ``policy`` (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA_ADDRESSES:
        return f"{address} is a metadata endpoint"
    if address.is_link_local:
        return f"{address} is link-local (metadata endpoints live there)"
    if address.is_multicast or address.is_unspecified:
        return f"{address} is not a unicast address"
    if address.is_global:
        return None
    if address.is_loopback or (address.is_private and not address.is_reserved) or address in _SHARED_RANGE:
        return None if policy.allow_private else f"{address} is a private or loopback address"
    return f"{address} is not a public address"


def parse_target(url: str, policy: OutboundPolicy) -> Target:
    """Check ``url``'s form, scheme and (for a literal address, or a metadata name) host under ``policy``.
    Names are checked again, address by address, when a delivery resolves them."""
    if len(url) > _MAX_URL_LENGTH:
        raise OutboundRefused(f"The URL is longer than {_MAX_URL_LENGTH} characters.")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"The URL is malformed: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise OutboundRefused("The URL must start with https://.")
    if scheme == "http" and not policy.allow_http:
        raise OutboundRefused("The URL must use https (plain http is not allowed here).")
    host = (parts.hostname or "").rstrip(".")
    if not host or any(ch.isspace() for ch in url):
        raise OutboundRefused("The URL has no valid host.")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("The URL may not carry credentials.")
    if parts.fragment:
        raise OutboundRefused("The URL may not carry a fragment.")
    if host.lower() in _METADATA_NAMES:
        raise OutboundRefused(f"{host} is a metadata endpoint.")
    literal = _literal_address(host)
    if literal is not None:
        why = address_refusal(literal, policy)
        if why:
            raise OutboundRefused(f"The URL's address is refused: {why}.")
    loopback_name = host.lower() == "localhost" or host.lower().endswith(".localhost")
    if loopback_name and not policy.allow_private:
        raise OutboundRefused("The URL's host is refused: localhost is a loopback address.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def checked_addresses(addresses: list[IPAddress], policy: OutboundPolicy) -> list[IPAddress]:
    """``addresses`` (what the host resolved to) when every one is allowed; refused when any is not, so a
    name that also points inside the network is never called."""
    if not addresses:
        raise OutboundRefused("The host did not resolve to any address.")
    for address in addresses:
        why = address_refusal(address, policy)
        if why:
            raise OutboundRefused(f"The host resolves to a refused address: {why}.")
    return addresses
