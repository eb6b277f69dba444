"""API-key authentication with RAGFlow's answers for missing, malformed and unknown keys; a key's grant
(tenant, scope, id lists: ``shared.access``)."""

from __future__ import annotations

import threading
import time

from shared.access import KeyGrant
from shared.errors import AuthenticationError, AuthorizationHeaderError
from shared.repos.tenants import TenantRepository, hash_api_key

#: Seconds a resolved key is remembered in-process (API Gateway's authorizer caches for 300 s).
KEY_CACHE_TTL_S = 60.0
_KEY_CACHE_SIZE = 4096


class Authenticator:
    """Resolves API keys; known keys are remembered briefly so most requests cost no storage read."""

    def __init__(self, tenants: TenantRepository, *, ttl_s: float = KEY_CACHE_TTL_S) -> None:
        self._tenants = tenants
        self._ttl_s = ttl_s
        self._known: dict[str, tuple[KeyGrant, float]] = {}  # key digest -> (grant, expiry)
        self._lock = threading.Lock()

    def _lookup(self, api_key: str) -> KeyGrant | None:
        digest = hash_api_key(api_key)
        now = time.monotonic()
        hit = self._known.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        grant = self._tenants.grant_for_key(api_key)
        if grant is not None:
            with self._lock:
                if len(self._known) >= _KEY_CACHE_SIZE:
                    self._known.clear()
                self._known[digest] = (grant, now + self._ttl_s)
        return grant

    def grant_for_header(self, authorization: str | None) -> KeyGrant:
        """What the key in an ``Authorization: Bearer <key>`` header value may do (tenant, scope, ids)."""
        if not authorization:
            raise AuthorizationHeaderError("`Authorization` can't be empty")
        parts = authorization.split()
        if len(parts) < 2:
            raise AuthorizationHeaderError("Please check your authorization format.")
        grant = self._lookup(parts[1])
        if grant is None:
            raise AuthenticationError("Authentication error: API key is invalid!")
        return grant

    def tenant_for_header(self, authorization: str | None) -> str:
        """The tenant id behind an ``Authorization: Bearer <key>`` header value."""
        return self.grant_for_header(authorization).tenant_id
