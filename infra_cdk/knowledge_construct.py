"""Knowledge builds on AWS (knowledge graph, RAPTOR): a Lambda function per step of ``shared.pipeline``'s
build steps and the state machine running them.

Like the local worker (``KnowledgeBuilder.run_task``): ``prepare`` lists the documents to process, a Map
runs ``document`` for each of them (a few at a time: each calls the chat model), then ``finish`` merges the
documents' subgraphs into the dataset's graph (or closes a RAPTOR task). Failures go to ``fail``, which marks
the task failed with the reason; a superseded task (its dataset deleted) ends quietly. The API (the
knowledge route group) starts one execution per task, named by the task id.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra_cdk.config import LogSettings
from infra_cdk.function_construct import (
    EMBED_LAYER,
    GRAPH_LAYER,
    Backends,
    DependencyLayer,
    FunctionPackage,
    ServiceFunction,
    grant_needs,
)
from infra_cdk.parsing_construct import (
    BACKEND_TRANSIENT_ERRORS,
    LAMBDA_TRANSIENT_ERRORS,
    TASK_SUPERSEDED,
    step_state_machine,
    unfinished_executions_queue,
)
from shared.constants import SERVICE_NAME
from shared.pipeline import (
    ALL_BUILD_STEPS,
    BUILD_DOCUMENT,
    BUILD_FAIL,
    BUILD_FINISH,
    BUILD_PREPARE,
    BUILD_TIMEOUT_S,
    BuildStep,
)
from shared.routes import Backend

#: Module whose function named after each step is that step's Lambda entry point.
BUILD_HANDLER_MODULE = "functions.knowledge_steps.handler"
#: The fields of a build's state every step needs (``shared.services.knowledge_builds.BUILD_TASK_FIELDS``);
#: each Map iteration gets them plus its document.
BUILD_FIELDS = ("tenant_id", "dataset_id", "task_id", "task_type")
DOCUMENT_FIELD = "document_id"
#: Where ``prepare`` puts the documents to fan out over.
DOCUMENTS_PATH = "$.documents"
ERROR_PATH = "$.error"
#: A model provider's transient failures, by exception name (shared.ports.chat_model / embedder), retried
#: a few times before the build fails.
MODEL_TRANSIENT_ERRORS = ("ChatModelServiceError", "ChatModelTimeout")
#: A Lambda that ran out of time (or memory) is reported as ``Lambda.Unknown`` (newer runtimes: the function
#: error ``Sandbox.Timedout``). The model-bound steps keep the model's answers as they come (see
#: shared.services.knowledge_builds), so a retry carries on where the cut-short invocation stopped.
CUT_SHORT_ERRORS = ("Lambda.Unknown", "Sandbox.Timedout")
CUT_SHORT_ATTEMPTS = 3
#: Documents processed at once per build (each makes a stream of model calls).
MAX_DOCUMENT_CONCURRENCY = 4
BUILD_TIMEOUT = Duration.seconds(BUILD_TIMEOUT_S)
#: What every build step touches: the documents and chunks, the graph's blobs and records, the index, the
#: models.
STEP_NEEDS: tuple[Backend, ...] = ("metadata", "blobs", "search", "models")


def step_layers(step: BuildStep) -> tuple[DependencyLayer, ...]:
    """The layers of a step's function beyond the runtime one: the builtin embedder for the steps that
    embed, networkx for the one that finds communities."""
    layers: list[DependencyLayer] = []
    if step.uses_models:
        layers.append(EMBED_LAYER)
    if step.uses_graph_library:
        layers.append(GRAPH_LAYER)
    return tuple(layers)


def _state_id(step: BuildStep) -> str:
    return "Build" + step.name.replace("_", " ").title().replace(" ", "")


class KnowledgeBuilds(Construct):
    """A function per build step and the Standard state machine that runs a build task through them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: FunctionPackage,
        backends: Backends,
        log_settings: LogSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.step_functions: dict[str, ServiceFunction] = {}
        for step in ALL_BUILD_STEPS:
            function = ServiceFunction(
                self,
                f"{_state_id(step)}Step",
                handler=f"{BUILD_HANDLER_MODULE}.{step.name}",
                description=f"{SERVICE_NAME} knowledge build step '{step.name}'",
                package=package,
                storage=backends.storage,
                memory_mb=step.memory_mb,
                timeout_s=step.timeout_s,
                log_settings=log_settings,
                extra_layers=step_layers(step),
            )
            # The steps where a build ends (done, failed) announce it on the event bus.
            ending = step in (BUILD_FINISH, BUILD_FAIL)
            grant_needs(function, (*STEP_NEEDS, "events") if ending else STEP_NEEDS, backends)
            self.step_functions[step.name] = function

        self.log_group, self.state_machine = step_state_machine(
            self,
            log_suffix="knowledge",
            comment=f"{SERVICE_NAME}: build a dataset's knowledge graph or RAPTOR summaries",
            definition=self._definition(),
            timeout=BUILD_TIMEOUT,
            log_settings=log_settings,
            step_functions=self.step_functions.values(),
        )
        self.dead_letter_queue = unfinished_executions_queue(self, self.state_machine, "knowledge build")

    @property
    def failure_function(self) -> ServiceFunction:
        """The function of the failure step: when it fails, a task stays running until it is abandoned."""
        return self.step_functions[BUILD_FAIL.name]

    # -- definition --------------------------------------------------------------------------------
    def _task(self, step: BuildStep) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            _state_id(step),
            lambda_function=self.step_functions[step.name].function,
            output_path="$.Payload",
            retry_on_service_exceptions=False,
        )
        task.add_retry(
            errors=list(LAMBDA_TRANSIENT_ERRORS),
            interval=Duration.seconds(2),
            max_attempts=6,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        task.add_retry(
            errors=[*BACKEND_TRANSIENT_ERRORS, *MODEL_TRANSIENT_ERRORS],
            interval=Duration.seconds(10),
            max_attempts=3,
            backoff_rate=2,
            max_delay=Duration.minutes(2),
            jitter_strategy=sfn.JitterType.FULL,
        )
        if step.uses_models:
            task.add_retry(errors=list(CUT_SHORT_ERRORS), interval=Duration.seconds(1), max_attempts=CUT_SHORT_ATTEMPTS)
        return task

    def _documents(self) -> sfn.Map:
        documents = sfn.Map(
            self,
            "Documents",
            comment="The document step for each document the prepare step listed",
            items_path=DOCUMENTS_PATH,
            item_selector={
                **{field: sfn.JsonPath.string_at(f"$.{field}") for field in BUILD_FIELDS},
                DOCUMENT_FIELD: sfn.JsonPath.string_at("$$.Map.Item.Value"),
            },
            max_concurrency=MAX_DOCUMENT_CONCURRENCY,
            # The finish step gets the prepared state (the documents listed), not the iterations' outputs.
            result_path=sfn.JsonPath.DISCARD,
        )
        documents.item_processor(self._task(BUILD_DOCUMENT))
        return documents

    def _definition(self) -> sfn.IChainable:
        superseded = sfn.Succeed(self, "BuildSuperseded", comment="The dataset was deleted meanwhile")
        mark_failed = self._task(BUILD_FAIL).next(
            sfn.Fail(self, "BuildFailed", error_path=f"{ERROR_PATH}.Error", cause_path=f"{ERROR_PATH}.Cause")
        )
        states: list[sfn.TaskStateBase | sfn.Map] = [
            self._task(BUILD_PREPARE),
            self._documents(),
            self._task(BUILD_FINISH),
        ]
        for state in states:
            state.add_catch(superseded, errors=[TASK_SUPERSEDED])
            state.add_catch(mark_failed, errors=["States.ALL"], result_path=ERROR_PATH)
        chain = sfn.Chain.start(states[0])
        for state in states[1:]:
            chain = chain.next(state)
        return chain.next(sfn.Succeed(self, "Built"))
