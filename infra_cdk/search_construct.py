"""The search index on AWS: an OpenSearch Serverless vector search collection in a NextGen collection group, and
its three policies.

Capacity: the collection group's minimum indexing and search capacity is the stage's ``search_min_ocu``
(default 0). At 0 the group scales to zero OCU when none of its collections had a request for 10 minutes
(not configurable) and bills nothing for compute then; the first search and the first write after that wait
while capacity comes back (AWS documents 10 to 30 seconds each: search and indexing wake independently). Writes
already wait for their copies to become searchable (``shared/adapters/aws/opensearch_index.py``, 20 s), so the
first parse after an idle spell may be retried once by the state machine; API Gateway gives the first search
29 s.

* encryption: an AWS-owned key (AOSS always encrypts at rest; a customer key would add a KMS key to run);
* network: the collection endpoint is public. The stack has no VPC, and every request is still signed
  (SigV4, service ``aoss``) and authorized twice: IAM (``aoss:APIAccessAll`` on this collection) and the
  data access policy below. A VPC endpoint would need a VPC for the functions, and NAT for their other calls;
* data access: only the roles of the functions that use the index (``grant_read_write``), only on the
  chunk indices (``flowless-chunks-*``), only what the engine does: create an index on first use,
  check indices, read and write documents (``shared/adapters/aws/opensearch_index.py``).

Encryption and network policies must exist before the collection (AOSS refuses to create it without a
matching encryption policy), so the collection depends on them, and on the data access policy so the
functions can use it as soon as it is active.
"""

from __future__ import annotations

import re

import jsii
from aws_cdk import IStableStringProducer, Lazy, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_opensearchserverless as aoss
from constructs import Construct, IValidation

from infra_cdk.function_construct import ServiceFunction
from shared.constants import ENV_OPENSEARCH_ENDPOINT, SERVICE_NAME

#: The engine's chunk indices (``chunk_index_pattern`` in the OpenSearch adapter, with its default prefix).
INDEX_PATTERN = f"{SERVICE_NAME}-chunks-*"
#: Everything the engine asks of its indices; no UpdateIndex (mappings never change) and no DeleteIndex.
INDEX_PERMISSIONS = ("aoss:CreateIndex", "aoss:DescribeIndex", "aoss:ReadDocument", "aoss:WriteDocument")
#: The most OCUs each of indexing and search may scale to (CloudFormation's lowest allowed maximum is 2).
DEFAULT_MAX_OCU = 4
#: Collection and policy names: lowercase letters, digits and hyphens, at most 32 characters; the
#: policies add a 5-character suffix.
_NAME = re.compile(r"[a-z][a-z0-9-]{2,26}")


@jsii.implements(IValidation)
class _HasPrincipals:
    def __init__(self, principals: list[str]) -> None:
        self._principals = principals

    def validate(self) -> list[str]:
        return [] if self._principals else ["the search collection's data access policy grants no function"]


class SearchConstruct(Construct):
    """The collection (type VECTORSEARCH) the functions reach at ``endpoint``; ``grant_read_write`` adds one.

    Standby replicas only in production: without them the group needs half the OCUs when it runs, but serves
    from one availability zone. ``max_ocu`` caps each of indexing and search capacity (a cost ceiling).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        collection_name: str,
        removal_policy: RemovalPolicy,
        standby_replicas: bool,
        min_ocu: float = 0,
        max_ocu: float = DEFAULT_MAX_OCU,
    ) -> None:
        super().__init__(scope, construct_id)
        if not _NAME.fullmatch(collection_name):
            raise ValueError(f"collection name {collection_name!r} must match {_NAME.pattern}")
        self.collection_name = collection_name
        self._principals: list[str] = []
        collection_resource = [f"collection/{collection_name}"]
        self.encryption_policy = aoss.CfnSecurityPolicy(
            self,
            "EncryptionPolicy",
            name=f"{collection_name}-enc",
            type="encryption",
            description=f"{SERVICE_NAME}: the search collection, encrypted with an AWS-owned key",
            policy=Stack.of(self).to_json_string(
                {"Rules": [{"ResourceType": "collection", "Resource": collection_resource}], "AWSOwnedKey": True}
            ),
        )
        self.network_policy = aoss.CfnSecurityPolicy(
            self,
            "NetworkPolicy",
            name=f"{collection_name}-net",
            type="network",
            description=f"{SERVICE_NAME}: the search collection's endpoint, SigV4-signed requests only",
            policy=Stack.of(self).to_json_string(
                [{"Rules": [{"ResourceType": "collection", "Resource": collection_resource}], "AllowFromPublic": True}]
            ),
        )
        self.access_policy = aoss.CfnAccessPolicy(
            self,
            "DataAccessPolicy",
            name=f"{collection_name}-data",
            type="data",
            description=f"{SERVICE_NAME}: the functions that read and write the chunk indices",
            policy=Lazy.string(_DataAccessPolicy(self, collection_name, self._principals)),
        )
        self.group = aoss.CfnCollectionGroup(
            self,
            "CollectionGroup",
            name=collection_name,
            description=f"{SERVICE_NAME}: capacity of the chunk index (scales to zero when idle at minimum 0)",
            generation="NEXTGEN",
            standby_replicas="ENABLED" if standby_replicas else "DISABLED",
            capacity_limits=aoss.CfnCollectionGroup.CapacityLimitsProperty(
                min_indexing_capacity_in_ocu=min_ocu,
                min_search_capacity_in_ocu=min_ocu,
                max_indexing_capacity_in_ocu=max_ocu,
                max_search_capacity_in_ocu=max_ocu,
            ),
        )
        self.group.apply_removal_policy(removal_policy)
        self.collection = aoss.CfnCollection(
            self,
            "Collection",
            name=collection_name,
            type="VECTORSEARCH",
            description=f"{SERVICE_NAME}: chunk index (BM25 and k-NN)",
            collection_group_name=self.group.name,
            standby_replicas="ENABLED" if standby_replicas else "DISABLED",
        )
        self.collection.add_dependency(self.group)
        for policy in (self.encryption_policy, self.network_policy, self.access_policy):
            self.collection.node.add_dependency(policy)
        self.collection.apply_removal_policy(removal_policy)
        self.node.add_validation(_HasPrincipals(self._principals))

    @property
    def endpoint(self) -> str:
        """The collection endpoint (``https://<id>.<region>.aoss.amazonaws.com``)."""
        return self.collection.attr_collection_endpoint

    def grant_read_write(self, function: ServiceFunction) -> None:
        """Let ``function`` use the chunk indices: IAM access to this collection, and its role in the data
        access policy (both are required by OpenSearch Serverless)."""
        function.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["aoss:APIAccessAll"], resources=[self.collection.attr_arn])
        )
        self._principals.append(function.role.role_arn)
        function.function.add_environment(ENV_OPENSEARCH_ENDPOINT, self.endpoint)


@jsii.implements(IStableStringProducer)
class _DataAccessPolicy:
    """The data access policy document, produced at synthesis: functions are granted after construction."""

    def __init__(self, scope: Construct, collection_name: str, principals: list[str]) -> None:
        self._scope = scope
        self._collection_name = collection_name
        self._principals = principals

    def produce(self) -> str:
        document = [
            {
                "Description": "Read and write the chunk indices",
                "Rules": [
                    {
                        "ResourceType": "index",
                        "Resource": [f"index/{self._collection_name}/{INDEX_PATTERN}"],
                        "Permission": list(INDEX_PERMISSIONS),
                    }
                ],
                "Principal": list(self._principals),
            }
        ]
        return Stack.of(self._scope).to_json_string(document)
