"""Settings read from FLOWLESS_* variables: parsed by the field's type, ranges checked, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings


def test_values_are_parsed_by_their_field_type() -> None:
    settings = Settings.from_env(
        {
            "FLOWLESS_MAX_UPLOAD_BYTES": "10",
            "FLOWLESS_WEBHOOK_BACKOFF_S": "0.5",
            "FLOWLESS_WEBHOOK_ALLOW_PRIVATE": "true",
            "FLOWLESS_WEBHOOK_ALLOW_HTTP": "0",
            "FLOWLESS_IMPORT_BUCKETS": '["a", "b"]',
            "FLOWLESS_LOCAL_BUCKETS": '{"inbox": "/srv/inbox"}',
            "FLOWLESS_DATA_DIR": "/tmp/x",
            "AWS_REGION": "eu-west-1",
            "FLOWLESS_SEARCH_ENGINE": "embedded",
            "FLOWLESS_SHARD_CACHE_DIR": "/tmp/shards",
            "FLOWLESS_SECRETS_PREFIX": "/flowless/dev/",
        }
    )
    assert settings.max_upload_bytes == 10 and settings.webhook_backoff_s == 0.5
    assert settings.webhook_allow_private is True and settings.webhooks_allow_http is False
    assert settings.import_buckets == ["a", "b"] and settings.local_buckets == {"inbox": Path("/srv/inbox")}
    assert settings.data_dir == Path("/tmp/x") and settings.aws_region == "eu-west-1"
    assert settings.search_engine == "embedded" and settings.shard_cache_dir == Path("/tmp/shards")
    assert settings.secrets_prefix == "/flowless/dev/" and settings.secrets_kms_key is None


def test_unset_keeps_the_defaults_and_http_follows_the_backend() -> None:
    local = Settings.from_env({})
    assert local == Settings() and local.webhooks_allow_http
    assert not Settings.from_env({"FLOWLESS_BACKEND": "aws", "FLOWLESS_TABLE_NAME": "t"}).webhooks_allow_http


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLOWLESS_AUTH_CACHE_TTL": "x"}, "FLOWLESS_AUTH_CACHE_TTL must be an integer, not 'x'"),
        ({"FLOWLESS_AUTH_CACHE_TTL": "3601"}, "FLOWLESS_AUTH_CACHE_TTL must be at least 0 and at most 3600"),
        ({"FLOWLESS_WEBHOOK_BACKOFF_S": "0"}, "FLOWLESS_WEBHOOK_BACKOFF_S must be above 0 and at most 3600"),
        ({"FLOWLESS_WEBHOOK_ALLOW_HTTP": "maybe"}, "FLOWLESS_WEBHOOK_ALLOW_HTTP must be true or false"),
        ({"FLOWLESS_IMPORT_BUCKETS": "{}"}, "FLOWLESS_IMPORT_BUCKETS must be a JSON list"),
        ({"FLOWLESS_UPLOAD_URL_TTL_S": "59"}, "FLOWLESS_UPLOAD_URL_TTL_S must be at least 60"),
        ({"FLOWLESS_BACKEND": "gcp"}, "FLOWLESS_BACKEND must be one of local, aws"),
        ({"FLOWLESS_SEARCH_ENGINE": "solr"}, "FLOWLESS_SEARCH_ENGINE must be one of opensearch, embedded"),
        ({"FLOWLESS_BACKEND": "aws"}, "FLOWLESS_TABLE_NAME is required"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        Settings.from_env(env)
