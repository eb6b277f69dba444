"""Webhook delivery signatures: HMAC-SHA256 over the timestamp and the raw body, with the webhook's secret.

Headers of every delivery::

    X-Flowless-Delivery:  <delivery id>       (the same on every attempt: dedupe on it)
    X-Flowless-Event:     <event type>        e.g. document.parse.done
    X-Flowless-Event-Id:  <event id>
    X-Flowless-Timestamp: <unix seconds>      when this attempt was signed
    X-Flowless-Signature: v1=<hex digest>     HMAC-SHA256(secret, "<timestamp>.<raw body>")

A receiver recomputes the digest over the timestamp header, a dot and the body bytes exactly as received,
compares in constant time, and refuses timestamps outside its replay window (5 minutes by default), so a
captured request cannot be replayed later. ``verify`` does all three.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_VERSION = "v1"
HEADER_DELIVERY = "X-Flowless-Delivery"
HEADER_EVENT = "X-Flowless-Event"
HEADER_EVENT_ID = "X-Flowless-Event-Id"
HEADER_TIMESTAMP = "X-Flowless-Timestamp"
HEADER_SIGNATURE = "X-Flowless-Signature"
#: Seconds a signed request stays acceptable to ``verify`` by default.
REPLAY_WINDOW_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Flowless-Signature`` value for ``body`` signed at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    *,
    window_s: int = REPLAY_WINDOW_S,
    now: float | None = None,
) -> bool:
    """Whether a received delivery is authentic and fresh (what a receiver should check)."""
    if not timestamp_header or not signature_header or not timestamp_header.isdigit():
        return False
    timestamp = int(timestamp_header)
    if abs((time.time() if now is None else now) - timestamp) > window_s:
        return False
    expected = signature(secret, timestamp, body)
    # Several signatures may be sent (a rotated secret): accept any that matches.
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in signature_header.split(","))
