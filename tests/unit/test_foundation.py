"""Pure pieces of the foundation: ids, validation messages, catalog, model access, health."""

from __future__ import annotations

import uuid

import pytest

from shared.catalog import BUILTIN_EMBEDDING_MODEL, get_catalog, split_model_id
from shared.errors import ArgumentError
from shared.ids import http_date, is_uuid1_hex, new_id
from shared.repos.tenants import Tenant, TenantModel, hash_api_key
from shared.schemas.common import deep_merge, parse_model
from shared.schemas.datasets import CreateDatasetRequest, ListDatasetsQuery
from shared.services.health import check_health
from shared.services.models import ModelAccess


def test_ids_are_uuid1_hex() -> None:
    value = new_id()
    assert is_uuid1_hex(value) and value == value.lower()
    assert not is_uuid1_hex(uuid.uuid4().hex) and not is_uuid1_hex("x" * 32)


def test_http_date_matches_ragflow() -> None:
    assert http_date(1745836841611) == "Mon, 28 Apr 2025 10:40:41 GMT"


def test_validation_message_names_every_field_and_truncates_values() -> None:
    with pytest.raises(ArgumentError) as failure:
        parse_model(CreateDatasetRequest, {"name": "", "description": 5, "avatar": "x" * 200})
    lines = failure.value.message.splitlines()
    assert "Field: <name> - Message: <String should have at least 1 character> - Value: <>" in lines
    assert any(line.startswith("Field: <description>") for line in lines)
    avatar = next(line for line in lines if line.startswith("Field: <avatar>"))
    assert avatar.endswith("...>") and len(avatar) < 260


def test_query_args_coerce_strings() -> None:
    query = parse_model(ListDatasetsQuery, {"page": "2", "desc": "false"})
    assert query.page == 2 and query.desc is False


def test_deep_merge_keeps_nested_defaults() -> None:
    assert deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}, "b": 1}


def test_catalog_lookups() -> None:
    catalog = get_catalog()
    assert split_model_id("BAAI/bge-large-zh-v1.5@BAAI") == ("BAAI/bge-large-zh-v1.5", "BAAI")
    builtin = catalog.find(BUILTIN_EMBEDDING_MODEL, "embedding")
    assert builtin is not None and builtin.dimension == 384
    assert catalog.find("text-embedding-3-small@OpenAI", "embedding") is not None
    assert catalog.find("text-embedding-3-small@OpenAI", "chat") is None
    # Known = RAGFlow's list; a factory listing none serves whatever name its users give.
    assert catalog.find("anything-goes@OpenAI-API-Compatible", "chat") is None
    assert catalog.lookup("anything-goes@OpenAI-API-Compatible", "chat") is not None
    assert catalog.lookup("anything-goes@OpenAI", "chat") is None
    assert catalog.find("BAAI/bge-small-en-v1.5@Builtin", "embedding") is not None
    assert catalog.shipped_builtin == ("all-MiniLM-L6-v2@Builtin", BUILTIN_EMBEDDING_MODEL)
    assert len(catalog.factories) == 53
    assert {"Builtin", "OpenAI", "Bedrock", "OpenAI-API-Compatible"} <= catalog.factories
    assert catalog.parse("glm-4") == ("glm-4", None)
    assert catalog.parse("a@b@ZHIPU-AI") == ("a@b", "ZHIPU-AI")
    assert catalog.parse("x@Nowhere") == ("x@Nowhere", None)


def test_model_access_distinguishes_unknown_and_unauthorized() -> None:
    access = ModelAccess(get_catalog())
    tenant = Tenant(id="t", name="t", create_time=0)
    access.check(tenant, BUILTIN_EMBEDDING_MODEL, "embedding")
    with pytest.raises(ArgumentError, match=r"^Unsupported model: <x@Nowhere>$"):
        access.check(tenant, "x@Nowhere", "embedding")
    with pytest.raises(ArgumentError, match=r"^Unauthorized model: <text-embedding-3-small@OpenAI>$"):
        access.check(tenant, "text-embedding-3-small@OpenAI", "embedding")
    tenant.models.append(TenantModel("OpenAI", "text-embedding-3-small", "embedding"))
    access.check(tenant, "text-embedding-3-small@OpenAI", "embedding")


def test_a_builtin_model_that_is_not_shipped_names_the_shipped_ones() -> None:
    access = ModelAccess(get_catalog())
    tenant = Tenant(id="t", name="t", create_time=0)
    access.check(tenant, "BAAI/bge-small-en-v1.5@Builtin", "embedding")
    shipped = "all-MiniLM-L6-v2@Builtin, BAAI/bge-small-en-v1.5@Builtin"
    with pytest.raises(ArgumentError) as raised:
        access.check(tenant, "BAAI/bge-m3@Builtin", "embedding")
    assert raised.value.message == (
        "Builtin model <BAAI/bge-m3@Builtin> is not shipped with this server; the builtin models are: " + shipped
    )
    with pytest.raises(ArgumentError, match=r"^Unsupported model: <x@Builtin>$"):  # no builtin chat model at all
        access.check(tenant, "x@Builtin", "chat")


def test_api_keys_are_stored_as_digests() -> None:
    digest = hash_api_key("ragflow-abc")
    assert len(digest) == 64 and "ragflow" not in digest


def test_health_reports_failures_with_meta() -> None:
    def broken() -> None:
        raise ConnectionError("Lost connection!")

    healthy, body = check_health({"db": lambda: None, "doc_engine": broken})
    assert not healthy
    assert body["db"] == "ok" and body["doc_engine"] == "nok" and body["status"] == "nok"
    assert body["_meta"]["doc_engine"]["error"] == "ConnectionError: Lost connection!"
    assert float(body["_meta"]["db"]["elapsed"]) >= 0


def test_authenticator_remembers_known_keys_briefly() -> None:
    from shared.access import KeyGrant
    from shared.adapters.local.sqlite_store import SqliteMetadataStore
    from shared.errors import AuthenticationError
    from shared.repos.tenants import TenantRepository
    from shared.services.auth import Authenticator

    class CountingTenants(TenantRepository):
        lookups = 0

        def grant_for_key(self, api_key: str) -> KeyGrant | None:
            CountingTenants.lookups += 1
            return super().grant_for_key(api_key)

    tenants = CountingTenants(SqliteMetadataStore(":memory:"))
    key = tenants.issue_api_key("tenant-1")
    auth = Authenticator(tenants, ttl_s=60)
    assert auth.tenant_for_header(f"Bearer {key}") == "tenant-1"
    assert auth.tenant_for_header(f"Bearer {key}") == "tenant-1"
    assert CountingTenants.lookups == 1
    for _ in range(2):  # unknown keys are never remembered
        with pytest.raises(AuthenticationError):
            auth.tenant_for_header("Bearer ragflow-nope")
    assert CountingTenants.lookups == 3
    expired = Authenticator(tenants, ttl_s=0)
    expired.tenant_for_header(f"Bearer {key}")
    expired.tenant_for_header(f"Bearer {key}")
    assert CountingTenants.lookups == 5
