"""The secrets port on both adapters (SSM Parameter Store under moto, the local store), and tenants' model API
keys kept out of the tenant's record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from shared.adapters.aws.ssm_secrets import SsmSecretStore
from shared.adapters.local.sqlite_store import SqliteMetadataStore
from shared.adapters.local.store_secrets import StoreSecretStore
from shared.ports.metadata import MetadataStore
from shared.ports.secrets import SecretNotFound, SecretStore
from shared.repos.keys import tenant_pk
from shared.repos.tenants import Tenant, TenantFactory, TenantModel, TenantRepository
from tests.support.dynamo import TEST_REGION, moto_dynamo_store

pytestmark = pytest.mark.integration

PREFIX = "/flowless/test/"


@pytest.fixture(params=["ssm", "local"])
def secrets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecretStore]:
    if request.param == "local":
        yield StoreSecretStore(SqliteMetadataStore(tmp_path / "meta.sqlite3"))
        return
    with moto_dynamo_store():  # fake credentials and a mocked account (SSM included)
        key = boto3.client("kms", region_name=TEST_REGION).create_key()["KeyMetadata"]["KeyId"]
        yield SsmSecretStore(PREFIX, region=TEST_REGION, kms_key_id=key, cache_ttl_s=0)


def test_put_get_replace_delete(secrets: SecretStore) -> None:
    reference = secrets.put("tenants/t1/models/abc", "sk-one")
    assert secrets.get(reference) == "sk-one"
    assert secrets.put("tenants/t1/models/abc", "sk-two") == reference
    assert secrets.get(reference) == "sk-two"
    secrets.delete(reference)
    secrets.delete(reference)  # already gone: no error
    with pytest.raises(SecretNotFound):
        secrets.get(reference)


def test_ssm_keeps_a_securestring_under_the_prefix_encrypted_with_the_key() -> None:
    with moto_dynamo_store():
        key = boto3.client("kms", region_name=TEST_REGION).create_key()["KeyMetadata"]["KeyId"]
        secrets = SsmSecretStore(PREFIX, region=TEST_REGION, kms_key_id=key)
        reference = secrets.put("tenants/t1/models/abc", "sk-secret")
        assert reference == f"{PREFIX}tenants/t1/models/abc"
        (parameter,) = boto3.client("ssm", region_name=TEST_REGION).describe_parameters()["Parameters"]
        assert parameter["Name"] == reference and parameter["Type"] == "SecureString"
        assert parameter["KeyId"] == key and parameter["Tier"] == "Standard"
        with pytest.raises(SecretNotFound):  # only this stack's parameters are read
            secrets.get("/elsewhere/tenants/t1/models/abc")


def test_ssm_reads_are_cached_for_their_ttl() -> None:
    with moto_dynamo_store():
        writer = SsmSecretStore(PREFIX, region=TEST_REGION)
        reader = SsmSecretStore(PREFIX, region=TEST_REGION, cache_ttl_s=3600)
        reference = writer.put("tenants/t1/models/abc", "sk-old")
        assert reader.get(reference) == "sk-old"
        writer.put("tenants/t1/models/abc", "sk-new")
        assert reader.get(reference) == "sk-old"  # within the TTL
        assert SsmSecretStore(PREFIX, region=TEST_REGION, cache_ttl_s=0).get(reference) == "sk-new"


def _keys_in_record(store: MetadataStore, tenant_id: str) -> list[object]:
    item = store.get(tenant_pk(tenant_id), "TENANT")
    assert item is not None
    return [model.get("api_key") for model in item["models"]]


def test_a_tenants_model_keys_live_in_the_secret_store_not_in_its_record() -> None:
    with moto_dynamo_store() as store:
        secrets = SsmSecretStore(PREFIX, region=TEST_REGION)
        tenants = TenantRepository(store, secrets=lambda: secrets)
        tenant = Tenant(id="t1", name="acme", create_time=1)
        tenant.models = [
            TenantModel("OpenAI", "gpt-4o-mini", "chat", api_key="sk-chat"),
            TenantModel("OpenAI", "text-embedding-3-small", "embedding", api_key="sk-embed"),
            TenantModel("Bedrock", "amazon.titan-embed-text-v2:0", "embedding"),  # no key: IAM
        ]
        tenants.create(tenant)
        assert _keys_in_record(store, "t1") == [None, None, None]
        assert "sk-chat" not in repr(store.get(tenant_pk("t1"), "TENANT"))

        read = tenants.get("t1")
        assert read is not None
        assert [m.api_key for m in read.models] == ["sk-chat", "sk-embed", None]
        assert "sk-chat" not in repr(read.models)

        read.models = [read.models[0], TenantModel("OpenAI", "gpt-4o", "chat", api_key="sk-other")]
        tenants.save(read)
        names = sorted(
            p["Name"] for p in boto3.client("ssm", region_name=TEST_REGION).describe_parameters()["Parameters"]
        )
        assert len(names) == 2  # the embedding model's key went with the model
        again = tenants.get("t1")
        assert again is not None and [m.api_key for m in again.models] == ["sk-chat", "sk-other"]


def test_a_tenants_factory_keys_live_in_the_secret_store_too() -> None:
    """A key set for a whole factory (RAGFlow's "set API key") is kept like a model's, and removed with it."""
    with moto_dynamo_store() as store:
        secrets = SsmSecretStore(PREFIX, region=TEST_REGION)
        tenants = TenantRepository(store, secrets=lambda: secrets)
        tenant = Tenant(id="t1", name="acme", create_time=1, factories=[TenantFactory("OpenAI", api_key="sk-fac")])
        tenant.models = [TenantModel("OpenAI", "gpt-4o", "chat", api_key="sk-own")]
        tenants.create(tenant)
        item = store.get(tenant_pk("t1"), "TENANT")
        assert item is not None and "sk-fac" not in repr(item) and "api_key" not in item["factories"][0]
        read = tenants.get("t1")
        assert read is not None and "sk-fac" not in repr(read.factories)
        assert read.credentials("gpt-4o-mini@OpenAI", "chat") == (None, "sk-fac")  # the factory's key
        assert read.credentials("gpt-4o@OpenAI", "chat") == (None, "sk-own")  # its own first
        ssm = boto3.client("ssm", region_name=TEST_REGION)
        assert len(ssm.describe_parameters()["Parameters"]) == 2
        read.factories = []
        tenants.save(read)
        assert len(ssm.describe_parameters()["Parameters"]) == 1


def test_a_record_written_with_its_key_inline_is_still_read(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "meta.sqlite3")
    legacy = Tenant(id="t1", name="old", create_time=1, models=[TenantModel("OpenAI", "gpt-4o", "chat", api_key="k")])
    TenantRepository(store).create(legacy)  # no secret store: the key in the record, as before
    assert _keys_in_record(store, "t1") == ["k"]
    read = TenantRepository(store, secrets=lambda: StoreSecretStore(store)).get("t1")
    assert read is not None and read.models[0].api_key == "k"
