"""Key layout of the single table. Every tenant-owned record lives under its tenant's partition."""

from __future__ import annotations


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def time_sort_key(kind: str, ms: int, record_id: str) -> str:
    """Sort key of the by_create/by_update indexes: kind, zero-padded time, id (unique, ordered)."""
    return f"{kind}#{ms:015d}#{record_id}"
