"""API-key authentication with RAGFlow's answers for missing, malformed and unknown keys."""

from __future__ import annotations

from shared.errors import AuthenticationError, AuthorizationHeaderError
from shared.repos.tenants import TenantRepository


class Authenticator:
    def __init__(self, tenants: TenantRepository) -> None:
        self._tenants = tenants

    def tenant_for_header(self, authorization: str | None) -> str:
        """The tenant id behind an ``Authorization: Bearer <key>`` header value."""
        if not authorization:
            raise AuthorizationHeaderError("`Authorization` can't be empty")
        parts = authorization.split()
        if len(parts) < 2:
            raise AuthorizationHeaderError("Please check your authorization format.")
        tenant_id = self._tenants.tenant_for_key(parts[1])
        if tenant_id is None:
            raise AuthenticationError("Authentication error: API key is invalid!")
        return tenant_id
