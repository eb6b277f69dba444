"""The API-key authorizer: a Lambda REQUEST authorizer reading ``Authorization: Bearer <key>``."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from infra_cdk.config import LogSettings
from infra_cdk.function_construct import FunctionPackage, ServiceFunction
from infra_cdk.storage_construct import StorageConstruct
from shared.constants import SERVICE_NAME

AUTHORIZER_HANDLER = "functions.authorizer.handler.handler"
AUTH_HEADER = "Authorization"
#: Seconds API Gateway reuses an authorizer answer for the same Authorization header.
AUTH_CACHE_TTL_S = 300


class ApiKeyAuthorizer(Construct):
    """The authorizer function (read-only on the table, where API keys live) and its API Gateway authorizer.

    The cached answer is keyed by the header alone and reused for every method of the API, so the
    function must return a policy covering the whole API (not only the method it was called for).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: FunctionPackage,
        storage: StorageConstruct,
        log_settings: LogSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = ServiceFunction(
            self,
            "Handler",
            handler=AUTHORIZER_HANDLER,
            description=f"{SERVICE_NAME} API-key authorizer",
            package=package,
            storage=storage,
            memory_mb=256,
            timeout_s=10,
            log_settings=log_settings,
        )
        storage.table.grant_read_data(self.handler.function)
        storage.suppress_table_index_wildcard(self.handler.role)
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "RequestAuthorizer",
            handler=self.handler.function,
            identity_sources=[apigw.IdentitySource.header(AUTH_HEADER)],
            results_cache_ttl=Duration.seconds(AUTH_CACHE_TTL_S),
        )
