"""API-key authentication with RAGFlow's answers for missing, malformed and unknown keys."""

from __future__ import annotations

import threading
import time

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
        self._known: dict[str, tuple[str, float]] = {}  # key digest -> (tenant id, expiry)
        self._lock = threading.Lock()

    def _lookup(self, api_key: str) -> str | None:
        digest = hash_api_key(api_key)
        now = time.monotonic()
        hit = self._known.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        tenant_id = self._tenants.tenant_for_key(api_key)
        if tenant_id is not None:
            with self._lock:
                if len(self._known) >= _KEY_CACHE_SIZE:
                    self._known.clear()
                self._known[digest] = (tenant_id, now + self._ttl_s)
        return tenant_id

    def tenant_for_header(self, authorization: str | None) -> str:
        """The tenant id behind an ``Authorization: Bearer <key>`` header value."""
        if not authorization:
            raise AuthorizationHeaderError("`Authorization` can't be empty")
        parts = authorization.split()
        if len(parts) < 2:
            raise AuthorizationHeaderError("Please check your authorization format.")
        tenant_id = self._lookup(parts[1])
        if tenant_id is None:
            raise AuthenticationError("Authentication error: API key is invalid!")
        return tenant_id
