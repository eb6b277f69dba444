"""Where the service keeps its state: the single DynamoDB table and the documents bucket, both encrypted with the
stack's own KMS key (which also encrypts tenants' model API keys in SSM)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra_cdk.nag import acknowledge, cfn_resource
from shared.constants import UPLOADS_PREFIX
from shared.ports.metadata import INDEX_KEYS

#: Days an unfinished presigned upload lives (the functions' FLOWLESS_UPLOAD_EXPIRY_S default is one day).
UPLOAD_EXPIRY_DAYS = 1

_LOCAL_INDEXES = ("by_create", "by_update")
#: Where the embedded search engine keeps its shard snapshots in the documents bucket (derived data: a
#: replaced snapshot is not worth keeping as a noncurrent version for long).
INDEX_SNAPSHOT_PREFIX = "index/"
#: Days a KMS key scheduled for deletion waits (7, the shortest: only non-production stages delete theirs).
_KEY_DELETION_WINDOW_DAYS = 7
_GLOBAL_INDEXES = ("gsi1",)


def _string_attribute(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class StorageConstruct(Construct):
    """The metadata table (key schema from ``shared.ports.metadata.INDEX_KEYS``), the documents bucket and the
    customer managed KMS key (rotated yearly) that encrypts both.

    Production keeps all three when the stack is deleted; other stages remove them (a non-empty bucket has
    to be emptied first: no auto-delete custom resource is deployed for that; the key waits 7 days).
    """

    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "DataKey",
            description=f"{Stack.of(self).stack_name}: the metadata table, the documents bucket, tenants' model keys",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=Duration.days(_KEY_DELETION_WINDOW_DAYS),
        )
        self.table = self._build_table(removal_policy)
        self.access_logs_bucket = self._build_access_logs_bucket(removal_policy)
        self.documents_bucket = s3.Bucket(
            self,
            "DocumentsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            # One data key per bucket and time window instead of a KMS request per object.
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="documents/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    noncurrent_version_expiration=Duration.days(30),
                ),
                s3.LifecycleRule(prefix=INDEX_SNAPSHOT_PREFIX, noncurrent_version_expiration=Duration.days(1)),
                # Presigned uploads not completed within a day (their expiry) are dropped with their parts.
                s3.LifecycleRule(
                    id="AbortUnfinishedUploads",
                    prefix=UPLOADS_PREFIX,
                    abort_incomplete_multipart_upload_after=Duration.days(UPLOAD_EXPIRY_DAYS),
                ),
            ],
            removal_policy=removal_policy,
        )
        self._send_events_to_eventbridge()

    def _send_events_to_eventbridge(self) -> None:
        """Publish the bucket's object events to EventBridge: S3 uploads start document parsing through a rule.

        Set on the CloudFormation bucket itself rather than with ``event_bridge_enabled=True``, which
        deploys a notifications custom resource (a Lambda function with a managed-policy role) for a
        setting CloudFormation has natively. Consequence: don't add ``add_event_notification`` targets
        to this bucket (that custom resource would rewrite the configuration); use EventBridge rules.
        """
        bucket = cfn_resource(self.documents_bucket)
        assert isinstance(bucket, s3.CfnBucket)
        bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
        )

    def _build_table(self, removal_policy: RemovalPolicy) -> dynamodb.Table:
        hash_key, range_key = INDEX_KEYS["main"]
        table = dynamodb.Table(
            self,
            "MetadataTable",
            partition_key=_string_attribute(hash_key),
            sort_key=_string_attribute(range_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )
        for name in _LOCAL_INDEXES:
            index_hash, index_range = INDEX_KEYS[name]
            if index_hash != hash_key:
                raise ValueError(f"local index {name} must share the table's partition key {hash_key}")
            table.add_local_secondary_index(index_name=name, sort_key=_string_attribute(index_range))
        for name in _GLOBAL_INDEXES:
            index_hash, index_range = INDEX_KEYS[name]
            table.add_global_secondary_index(
                index_name=name,
                partition_key=_string_attribute(index_hash),
                sort_key=_string_attribute(index_range),
            )
        unmapped = set(INDEX_KEYS) - {"main", *_LOCAL_INDEXES, *_GLOBAL_INDEXES}
        if unmapped:
            raise ValueError(f"INDEX_KEYS has indexes the table does not create: {sorted(unmapped)}")
        return table

    def _build_access_logs_bucket(self, removal_policy: RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # Server access log delivery writes only to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=removal_policy,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "This is the access-log destination itself; logging it into itself would loop and "
            "another bucket would only move the finding.",
        )
        return bucket

    def suppress_table_index_wildcard(self, role: iam.IRole) -> None:
        """Explain the ``<table>/index/*`` resource that ``grant_read_write_data`` adds to ``role``."""
        table_id = Stack.of(self).get_logical_id(cfn_resource(self.table))
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Queries use the table's own secondary indexes (by_create, by_update, gsi1); "
            "'/index/*' covers exactly the indexes of this one table.",
            f"Resource::<{table_id}.Arn>/index/*",
        )
        self.suppress_key_wildcards(role)

    def suppress_bucket_object_wildcard(self, role: iam.IRole) -> None:
        """Explain the object-level wildcards that ``grant_read_write`` adds to ``role``."""
        bucket_id = Stack.of(self).get_logical_id(cfn_resource(self.documents_bucket))
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Document objects have generated keys, so access is to '<bucket>/*' of this one "
            "bucket; the s3 action groups are grant_read_write's (object versions, tags, multipart "
            "aborts of the same objects).",
            f"Resource::<{bucket_id}.Arn>/*",
            "Action::s3:GetObject*",
            "Action::s3:GetBucket*",
            "Action::s3:List*",
            "Action::s3:DeleteObject*",
            "Action::s3:Abort*",
        )
        self.suppress_key_wildcards(role)

    def suppress_key_wildcards(self, role: iam.IRole) -> None:
        """Explain the KMS action groups the table's and bucket's grants add for their key."""
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "The table and the bucket are encrypted with the stack's KMS key: their grants add "
            "kms:GenerateDataKey*/ReEncrypt* on that one key (the data key variants S3 and DynamoDB ask for).",
            "Action::kms:GenerateDataKey*",
            "Action::kms:ReEncrypt*",
        )
