"""Lambda functions of the service: one shared package (code + dependency layer), one function per route group."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra_cdk.bundling import layer_code, package_code
from infra_cdk.config import REPO_ROOT, LogSettings
from infra_cdk.nag import acknowledge, cfn_resource
from infra_cdk.storage_construct import StorageConstruct
from shared.constants import (
    ENV_BACKEND,
    ENV_DOCUMENTS_BUCKET,
    ENV_TABLE_NAME,
    METRICS_NAMESPACE,
    SERVICE_NAME,
)
from shared.routes import Backend, RouteGroup

#: CPython of every function; the layer's wheels are chosen for the same version and CPU.
PYTHON_VERSION = "3.13"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
_PIP_PLATFORM = "manylinux2014_aarch64"

#: Python packages of this repository deployed as the functions' code.
CODE_PACKAGES = ("shared", "functions")
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "runtime" / "requirements.txt"


class FunctionPackage(Construct):
    """The code asset and dependency layer every function of the service runs from.

    One asset for all functions: each group's handler is a different entry point into the same
    packages, so a deploy uploads the code once and the functions can't drift apart.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.code = package_code(REPO_ROOT, CODE_PACKAGES)
        self.layer = lambda_.LayerVersion(
            self,
            "RuntimeDependencies",
            code=layer_code(LAYER_REQUIREMENTS, platform=_PIP_PLATFORM, python_version=PYTHON_VERSION),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=f"{SERVICE_NAME} runtime dependencies (layers/runtime/requirements.txt)",
        )


class ServiceFunction(Construct):
    """One Lambda function of the service, with its own role and log group.

    The explicit role (instead of the default one with the AWSLambdaBasicExecutionRole managed
    policy) can write only to this function's log group; callers add grants for the data it needs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        package: FunctionPackage,
        storage: StorageConstruct,
        memory_mb: int,
        timeout_s: int,
        log_settings: LogSettings,
        log_level: str = "INFO",
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_settings.retention, removal_policy=log_settings.removal_policy
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (Lambda execution role)",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=package.code,
            layers=[package.layer],
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_s),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": log_level,
                ENV_BACKEND: "aws",
                ENV_TABLE_NAME: storage.table.table_name,
                ENV_DOCUMENTS_BUCKET: storage.documents_bucket.bucket_name,
            },
        )
        self._suppress_findings()

    def _suppress_findings(self) -> None:
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions, so "
            "active tracing needs Resource '*'.",
            "Resource::*",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "Lambda names the log streams itself; the grant covers the streams of this function's own log group only.",
            f"Resource::<{Stack.of(self).get_logical_id(cfn_resource(self.log_group))}.Arn>:*",
        )
        acknowledge(
            cfn_resource(self.function),
            "AwsSolutions-L1",
            f"Pinned to Python {PYTHON_VERSION}: the dependency layer's wheels are resolved for "
            "exactly this CPython, so runtime and layer move together.",
        )


def _grant_metadata(function: ServiceFunction, storage: StorageConstruct) -> None:
    storage.table.grant_read_write_data(function.function)
    storage.suppress_table_index_wildcard(function.role)


def _grant_blobs(function: ServiceFunction, storage: StorageConstruct) -> None:
    storage.documents_bucket.grant_read_write(function.function)
    storage.suppress_bucket_object_wildcard(function.role)


def _granted_elsewhere(function: ServiceFunction, storage: StorageConstruct) -> None:
    """Search, workflow and model access come with the constructs that create those resources."""


#: How each backend named in a group's ``needs`` becomes permissions. A new Backend must be added here.
_GRANTS: dict[Backend, Callable[[ServiceFunction, StorageConstruct], None]] = {
    "metadata": _grant_metadata,
    "blobs": _grant_blobs,
    "search": _granted_elsewhere,
    "workflow": _granted_elsewhere,
    "models": _granted_elsewhere,
}


class RouteGroupFunction(ServiceFunction):
    """The Lambda function serving one route group of the registry (``shared.routes``).

    Entry point ``<group.module>.handler.handler``, memory and timeout from the registry, access
    granted for exactly the backends the group ``needs``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group: RouteGroup,
        package: FunctionPackage,
        storage: StorageConstruct,
        log_settings: LogSettings,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            handler=f"{group.module}.handler.handler",
            description=f"{SERVICE_NAME} route group '{group.name}'",
            package=package,
            storage=storage,
            memory_mb=group.memory_mb,
            timeout_s=group.timeout_s,
            log_settings=log_settings,
        )
        self.group = group
        for backend in group.needs:
            _GRANTS[backend](self, storage)
