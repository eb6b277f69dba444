"""The whole API on the AWS adapters, on this machine: the ``aws`` backend of the API test suite.

``run_aws_server`` serves the local server's app with a container built as a deployed function builds its own
(``FLOWLESS_BACKEND=aws``), its backends replaced by stand-ins that speak the real protocols:

* DynamoDB, S3 and SSM Parameter Store (tenants' model API keys): moto's server over HTTP
  (``tests.support.moto_process``), reached by the real adapters through their endpoint settings;
* the search index: OpenSearch Serverless as the strict stand-in (``tests.support.aoss``) in front of
  osmem-server, or (``search_engine=embedded``) the embedded engine's shards snapshotted in moto's S3 with their
  heads and leases in its DynamoDB (``shared/adapters/aws/shard_index.py``);
* Step Functions: the real ``StepFunctionsWorkflow`` adapter calls moto's Step Functions (which records the
  executions), and each started execution is then *run* by the States Language interpreter
  (``tests.infrastructure.asl``) on the definition CDK synthesizes — parses and knowledge builds — invoking
  the real step handlers (``functions/parse_steps/handler.py``, ``functions/knowledge_steps/handler.py``) with
  JSON payloads, as Lambda would;
* the streaming route groups (completions) are not served by this app: requests to their paths are proxied to
  their own uvicorn running ``functions/completions/app.py`` — what the Lambda Web Adapter runs on AWS — with
  the response streamed back as it comes (API Gateway's ``responseTransferMode: STREAM``).

What it does not emulate: API Gateway itself (its gateway responses are checked on the synthesized template
in ``tests/infrastructure``; each buffered group's Mangum handler is invoked with ``events/*.json`` in
``tests/integration/test_lambda_handlers.py``), IAM, and Lambda's payload limits.

The handler modules bind the process's container when they are imported (``get_container()``); here they are
loaded as private copies bound to this server's container, so other tests that reload the real modules under
their own environment can't re-bind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.local.server import build_local_app
from shared.adapters.aws.dynamodb_store import DynamoMetadataStore
from shared.adapters.aws.stepfunctions_workflow import StepFunctionsWorkflow
from shared.config import Settings
from shared.container import Container
from shared.ports.search import SearchIndex
from shared.routes import ROUTE_GROUPS
from tests.infrastructure.asl import Execution, StateMachine
from tests.support.dynamo import TEST_REGION, fake_aws_env
from tests.support.server import RunningServer, serve_asgi

logger = logging.getLogger(__name__)

TABLE = "flowless-api"
BUCKET = "flowless-api-documents"
#: The synthesized state machines (by the construct their logical id starts with) and their step handlers.
STATE_MACHINES = ("Parsing", "Knowledge")
STEP_MODULES = ("functions.parse_steps.handler", "functions.knowledge_steps.handler")
ACCOUNT = "123456789012"
#: The streaming function's ASGI module (``uvicorn functions.completions.app:app`` in functions/completions/run.sh).
STREAMING_APP_MODULE = "functions.completions.app"
#: uvicorn settings of functions/completions/run.sh.
STREAMING_UVICORN = {"timeout_keep_alive": 60, "access_log": False}
#: Parse executions run side by side (Step Functions runs them all at once; this bounds the test machine).
EXECUTION_WORKERS = 4


@dataclass
class LambdaContext:
    """What powertools reads from a Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{TEST_REGION}:{ACCOUNT}:function:flowless-step"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"


def load_private_module(name: str, container: Container) -> ModuleType:
    """Module ``name`` executed afresh (not registered in ``sys.modules``) with ``get_container()``
    answering ``container``: the module-level container a handler binds is this one."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(name)
    module = importlib.util.module_from_spec(spec)
    with mock.patch("shared.container.get_container", return_value=container):
        spec.loader.exec_module(module)
    return module


def step_invoker(
    template: Mapping[str, Any], modules: Mapping[str, ModuleType]
) -> Callable[[str, dict[str, Any]], Any]:
    """Calls the step handler a Task's FunctionName (a function's logical id) names, as Lambda would: the
    handler ``module.function`` of the template, in ``modules`` (the private copies of the step modules)."""
    handlers = {
        logical_id: resource["Properties"]["Handler"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }

    def invoke(function: str, payload: dict[str, Any]) -> Any:
        module, name = handlers[function].rsplit(".", 1)
        if module not in modules:
            raise AssertionError(f"a state machine invokes {handlers[function]}, not a step handler")
        return getattr(modules[module], name)(payload, LambdaContext(function_name=name))

    return invoke


@dataclass
class ExecutingStepFunctions:
    """A Step Functions client whose executions run: calls go to ``client`` (moto, which records them), and
    each execution started is then run by the States Language interpreter, in the background, on the
    definition of the state machine it names (``definitions``: ARN -> definition)."""

    client: Any
    definitions: Mapping[str, Mapping[str, Any]]
    invoke: Callable[[str, dict[str, Any]], Any]
    executions: list[Execution] = field(default_factory=list)
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(EXECUTION_WORKERS, thread_name_prefix="step-functions")
    )
    _running: set[Future[None]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start_execution(self, **request: Any) -> Any:
        started = self.client.start_execution(**request)
        definition = self.definitions[request["stateMachineArn"]]
        future = self._pool.submit(self._run, definition, json.loads(request["input"]))
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._done)
        return started

    def describe_state_machine(self, **request: Any) -> Any:
        return self.client.describe_state_machine(**request)

    def _run(self, definition: Mapping[str, Any], execution_input: dict[str, Any]) -> None:
        execution = StateMachine(definition, self.invoke).run(execution_input)
        with self._lock:
            self.executions.append(execution)
        if execution.status != "SUCCEEDED":
            logger.info("execution %s: %s %s", execution.status, execution.error, execution.cause)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._running.discard(future)
        if future.exception() is not None:  # the interpreter itself failed: a bug of the definition or the test
            logger.error("execution crashed", exc_info=future.exception())

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class StreamingProxy:
    """ASGI: requests to a streaming route group's paths go to ``upstream`` (the streaming function's own
    uvicorn), everything else to ``app``. The upstream answer is streamed back as it arrives, and a client
    that hangs up closes the upstream request."""

    def __init__(self, app: ASGIApp, upstream: str, patterns: list[re.Pattern[str]]) -> None:
        self._app = app
        self._upstream = upstream
        self._patterns = patterns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not any(p.fullmatch(scope["path"]) for p in self._patterns):
            await self._app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        url = self._upstream + scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP and k.lower() != b"host"]
        async with httpx.AsyncClient(timeout=httpx.Timeout(None)) as client:
            request = client.build_request(scope["method"], url, headers=headers, content=bytes(body))
            response = await client.send(request, stream=True)
            try:
                await self._relay(response, receive, send)
            finally:
                await response.aclose()

    async def _relay(self, response: httpx.Response, receive: Receive, send: Send) -> None:
        async def pump() -> None:
            headers = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.multi_items()
                if k.lower().encode() not in _HOP_BY_HOP
            ]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def hang_up() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    return

        tasks = {asyncio.ensure_future(pump()), asyncio.ensure_future(hang_up())}
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            task.result()


_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"te", b"upgrade"})


def route_pattern(path: str) -> re.Pattern[str]:
    """A registry path (``{param}`` segments) as a regular expression over request paths."""
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))


@dataclass
class AwsBackend:
    """What ``run_aws_server`` built, for tests that look behind the API."""

    server: RunningServer
    step_functions: ExecutingStepFunctions


@contextmanager
def run_aws_server(
    data_dir: Path,
    *,
    moto_url: str,
    template: Mapping[str, Any],
    search_index: SearchIndex | None = None,
    opensearch_url: str | None = None,
) -> Iterator[AwsBackend]:
    """The local server's app on the AWS adapters (see the module docstring). ``template`` is the synthesized
    CloudFormation template whose state machine runs the parses; each server gets its own table and bucket.
    Search: OpenSearch through ``search_index`` (the engine on the stand-in at ``opensearch_url``), or without
    one the stage setting ``search_engine=embedded`` — shards snapshotted in S3, as the container builds them."""
    with fake_aws_env():
        yield from _serve(data_dir, moto_url, search_index, opensearch_url, template)


def _serve(
    data_dir: Path,
    moto_url: str,
    search_index: SearchIndex | None,
    opensearch_url: str | None,
    template: Mapping[str, Any],
) -> Iterator[AwsBackend]:
    from tests.infrastructure.asl import definition_in_template

    sfn = boto3.client("stepfunctions", region_name=TEST_REGION, endpoint_url=moto_url)
    suffix = data_dir.name.lower().replace("_", "-")[-20:]
    arns: dict[str, str] = {}  # construct -> state machine ARN
    definitions: dict[str, dict[str, Any]] = {}  # ARN -> definition
    for construct in STATE_MACHINES:
        (logical_id,) = [
            key
            for key, resource in template["Resources"].items()
            if resource["Type"] == "AWS::StepFunctions::StateMachine" and key.startswith(construct)
        ]
        definition = definition_in_template(template, logical_id)
        arn = sfn.create_state_machine(
            name=f"flowless-{construct.lower()}-{suffix}",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/flowless-{construct.lower()}",
        )["stateMachineArn"]
        arns[construct], definitions[arn] = arn, definition
    settings = Settings(
        backend="aws",
        data_dir=data_dir,
        table_name=f"{TABLE}-{suffix}",
        dynamodb_endpoint=moto_url,
        documents_bucket=f"{BUCKET}-{suffix}",
        s3_endpoint=moto_url,
        state_machine_arn=arns["Parsing"],
        build_state_machine_arn=arns["Knowledge"],
        opensearch_endpoint=opensearch_url,
        search_engine="opensearch" if search_index is not None else "embedded",
        shard_cache_dir=data_dir / "shards",
        secrets_prefix=f"/flowless/{suffix}/",
        ssm_endpoint=moto_url,
    )
    container = Container(settings)
    if search_index is not None:
        container.overrides["search_index"] = search_index
    assert isinstance(container.metadata, DynamoMetadataStore)
    container.metadata.create_table()
    boto3.client("s3", region_name=TEST_REGION, endpoint_url=moto_url).create_bucket(Bucket=settings.documents_bucket)

    steps = {name: load_private_module(name, container) for name in STEP_MODULES}
    step_functions = ExecutingStepFunctions(sfn, definitions, step_invoker(template, steps))
    for workflow in ("workflow", "build_workflow"):  # the container's two, as a function builds them
        container.overrides[workflow] = StepFunctionsWorkflow(
            arns["Parsing"], region=TEST_REGION, client=step_functions, build_state_machine_arn=arns["Knowledge"]
        )
    streaming = load_private_module(STREAMING_APP_MODULE, container)
    streaming.app.state.container = container
    patterns = [route_pattern(route.path) for group in ROUTE_GROUPS if group.streaming for route in group.routes]
    try:
        with serve_asgi(streaming.app, **STREAMING_UVICORN) as streaming_url:
            front = StreamingProxy(build_local_app(container), streaming_url, patterns)
            with serve_asgi(front) as base_url:
                yield AwsBackend(RunningServer(base_url, data_dir, container), step_functions)
    finally:
        step_functions.close()
