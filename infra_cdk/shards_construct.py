"""The stage setting ``search_engine=embedded``: the project's embedded engine on Lambda, with nothing running
while idle (``shared/adapters/aws/shard_index.py``).

Each (tenant, dataset) is a shard: its SQLite snapshot lives in the documents bucket under ``index/`` (encrypted
with the stack's key, replaced versions expiring after a day), its current version and its writer's lease are
an item of the metadata table (conditional writes), and the chunks in the table stay the truth a shard is
rebuilt from. Functions that use the index get read/write on exactly that prefix, the table, and more
``/tmp`` for the shards they keep warm.
"""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from infra_cdk.function_construct import ServiceFunction
from infra_cdk.nag import acknowledge, cfn_resource
from infra_cdk.storage_construct import INDEX_SNAPSHOT_PREFIX, StorageConstruct
from shared.constants import ENV_DOCUMENTS_KMS_KEY, ENV_SEARCH_ENGINE

#: /tmp of a function that keeps shards (snapshot files while they load, the loaded copies).
EPHEMERAL_STORAGE_MB = 2048


class ShardSnapshots(Construct):
    """Access to the shards for the functions that search or change the index."""

    def __init__(self, scope: Construct, construct_id: str, *, storage: StorageConstruct) -> None:
        super().__init__(scope, construct_id)
        self._storage = storage

    def grant_read_write(self, function: ServiceFunction) -> None:
        """Read and write the shard snapshots and their version items; ``/tmp`` to keep shards warm in."""
        storage = self._storage
        storage.documents_bucket.grant_read_write(function.function, f"{INDEX_SNAPSHOT_PREFIX}*")
        storage.table.grant_read_write_data(function.function)
        storage.suppress_table_index_wildcard(function.role)
        storage.suppress_key_wildcards(function.role)
        function.function.add_environment(ENV_SEARCH_ENGINE, "embedded")
        function.function.add_environment(ENV_DOCUMENTS_KMS_KEY, storage.key.key_arn)
        cfn_resource(function.function).add_property_override("EphemeralStorage.Size", EPHEMERAL_STORAGE_MB)
        bucket_id = Stack.of(self).get_logical_id(cfn_resource(storage.documents_bucket))
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "Shard snapshots have generated keys under the index/ prefix of this one bucket; the s3 action "
            "groups are grant_read_write's.",
            f"Resource::<{bucket_id}.Arn>/{INDEX_SNAPSHOT_PREFIX}*",
            "Action::s3:GetObject*",
            "Action::s3:GetBucket*",
            "Action::s3:List*",
            "Action::s3:DeleteObject*",
            "Action::s3:Abort*",
        )
