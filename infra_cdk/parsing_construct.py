"""Document parsing on AWS: a Lambda function per step of ``shared.pipeline`` and the state machine running them.

The definition is built from the step list: the steps before the per-range ones run once, the per-range
steps run in order inside a Map over the page ranges the first step planned, the steps after it run once
with the planned state. Each document is embedded on its own here; the local worker runs the same steps in
memory and embeds the ranges of many documents together (shared.adapters.local.worker). Failures go to
the pipeline's failure step, which marks the document FAIL; a superseded task (stopped, re-parsed or
deleted document) ends quietly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra_cdk.config import LogSettings
from infra_cdk.function_construct import (
    EMBED_LAYER,
    INGEST_LAYER,
    Backends,
    DependencyLayer,
    FunctionPackage,
    ServiceFunction,
    grant_needs,
)
from infra_cdk.nag import acknowledge, cfn_resource
from shared.constants import SERVICE_NAME
from shared.pipeline import ALL_STEPS, EMBED, FAIL, FINISH, PARSE_STEPS, PipelineStep
from shared.routes import Backend

#: Module whose function named after each step is that step's Lambda entry point.
STEP_HANDLER_MODULE = "functions.parse_steps.handler"

#: The fields of a parse task (``shared.ports.workflow.ParseTask``) every step needs; each Map
#: iteration gets them plus its page range.
TASK_FIELDS = ("tenant_id", "dataset_id", "document_id", "task_id")
#: Where an iteration's page range goes (the per-range steps read ``task["range"]``).
RANGE_FIELD = "range"
#: Where the first steps put the page ranges to fan out over.
RANGES_PATH = "$.ranges"
#: Where a caught error goes; the failure step reads ``event["error"]["Error"/"Cause"]``.
ERROR_PATH = "$.error"

#: Raised by a step when its task is no longer the document's current one (shared.services.ingestion).
TASK_SUPERSEDED = "TaskSuperseded"
#: Lambda's own transient failures (throttling, service errors), worth retrying quickly.
LAMBDA_TRANSIENT_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
#: Transient failures the steps report by exception name: the metadata/blob store
#: (shared.ports.metadata.StoreUnavailable), an embedding provider (shared.ports.embedder) or the event bus
#: (shared.ports.events: a retried finish/fail publishes its event again, under the same id).
BACKEND_TRANSIENT_ERRORS = ("StoreUnavailable", "EmbeddingServiceError", "EventPublishError")

#: Execution statuses that end a parse without the failure step (its document stays RUNNING).
UNFINISHED_STATUSES = ("TIMED_OUT", "ABORTED")
#: Page ranges parsed at once per document (each iteration runs the per-range steps in order).
MAX_RANGE_CONCURRENCY = 4
#: Longest a parse may take before Step Functions stops it. It then ends TIMED_OUT without the failure
#: step, so the document stays RUNNING until the user stops it (an alarm watches for this).
PARSE_TIMEOUT = Duration.hours(2)

#: What every parse step touches: the document and its chunks, its blob and the step artifacts, the
#: index, and (embed) the embedding model.
STEP_NEEDS: tuple[Backend, ...] = ("metadata", "blobs", "search", "models")
#: The steps where a parse ends (DONE, FAIL) announce it on the event bus.
ANNOUNCING_STEPS = (FINISH, FAIL)


def step_layers(step: PipelineStep) -> tuple[DependencyLayer, ...]:
    """The dependency layers of a step's function: only the embed step loads the embedding model."""
    return (EMBED_LAYER,) if step == EMBED else (INGEST_LAYER,)


def _state_id(step: PipelineStep) -> str:
    return step.name.replace("_", " ").title().replace(" ", "")


@dataclass(frozen=True)
class PipelineShape:
    """``shared.pipeline``'s steps in the roles the state machine gives them."""

    before: tuple[PipelineStep, ...]
    per_range: tuple[PipelineStep, ...]
    after: tuple[PipelineStep, ...]
    failure: PipelineStep

    @staticmethod
    def of(parse_steps: Sequence[PipelineStep], all_steps: Sequence[PipelineStep]) -> PipelineShape:
        """Split the steps; the per-range ones must be one run between the others, with one failure step."""
        flags = [step.per_range for step in parse_steps]
        first = flags.index(True) if True in flags else len(flags)
        last = len(flags) - flags[::-1].index(True) if True in flags else first
        if not all(flags[first:last]):
            raise ValueError("the per-range steps of shared.pipeline must follow each other")
        failure = [step for step in all_steps if step not in parse_steps]
        if len(failure) != 1 or failure[0].per_range:
            raise ValueError("shared.pipeline must have exactly one failure step outside PARSE_STEPS")
        if not parse_steps[:first]:
            raise ValueError("shared.pipeline must start with a step that plans the page ranges")
        return PipelineShape(
            tuple(parse_steps[:first]), tuple(parse_steps[first:last]), tuple(parse_steps[last:]), failure[0]
        )


class ParsingWorkflow(Construct):
    """A function per pipeline step and the Standard state machine that runs a parse task through them.

    ``step_functions`` maps each step name to its function; ``state_machine`` is started once per task
    (execution name = task id) by the API and by the S3 trigger.
    """

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
        self.shape = PipelineShape.of(PARSE_STEPS, ALL_STEPS)
        self.step_functions: dict[str, ServiceFunction] = {}
        for step in ALL_STEPS:
            function = ServiceFunction(
                self,
                f"{_state_id(step)}Step",
                handler=f"{STEP_HANDLER_MODULE}.{step.name}",
                description=f"{SERVICE_NAME} parse step '{step.name}'",
                package=package,
                storage=backends.storage,
                memory_mb=step.memory_mb,
                timeout_s=step.timeout_s,
                log_settings=log_settings,
                extra_layers=step_layers(step),
            )
            grant_needs(function, (*STEP_NEEDS, "events") if step in ANNOUNCING_STEPS else STEP_NEEDS, backends)
            self.step_functions[step.name] = function

        self.log_group, self.state_machine = step_state_machine(
            self,
            log_suffix="parse",
            comment=f"{SERVICE_NAME}: parse one document (shared.pipeline)",
            definition=self._definition(),
            timeout=PARSE_TIMEOUT,
            log_settings=log_settings,
            step_functions=self.step_functions.values(),
        )
        self.dead_letter_queue = unfinished_executions_queue(self, self.state_machine, "parse")

    @property
    def failure_function(self) -> ServiceFunction:
        """The function of the failure step: when it fails, a document stays RUNNING."""
        return self.step_functions[self.shape.failure.name]

    # -- definition --------------------------------------------------------------------------------
    def _task(self, step: PipelineStep) -> tasks.LambdaInvoke:
        """Invoke the step's function with the state; the JSON it returns becomes the next state."""
        task = tasks.LambdaInvoke(
            self,
            _state_id(step),
            lambda_function=self.step_functions[step.name].function,
            # The step's JSON alone, not the invoke metadata around it.
            output_path="$.Payload",
            # Retries are declared below, for Lambda's and the backends' transient errors alike.
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
            errors=list(BACKEND_TRANSIENT_ERRORS),
            interval=Duration.seconds(5),
            max_attempts=4,
            backoff_rate=2,
            max_delay=Duration.minutes(1),
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def _range_fan_out(self) -> sfn.Map:
        """The per-range steps, in order, for each page range the first steps planned."""
        ranges = sfn.Map(
            self,
            "PageRanges",
            comment="The per-range steps for each page range",
            items_path=RANGES_PATH,
            item_selector={
                **{field: sfn.JsonPath.string_at(f"$.{field}") for field in TASK_FIELDS},
                RANGE_FIELD: sfn.JsonPath.list_at("$$.Map.Item.Value"),
            },
            max_concurrency=MAX_RANGE_CONCURRENCY,
            # The steps after the fan-out get the planned state, not the iterations' outputs.
            result_path=sfn.JsonPath.DISCARD,
        )
        first, *rest = self.shape.per_range
        iteration = sfn.Chain.start(self._task(first))
        for step in rest:
            iteration = iteration.next(self._task(step))
        ranges.item_processor(iteration)
        return ranges

    def _definition(self) -> sfn.IChainable:
        superseded = sfn.Succeed(self, "Superseded", comment="The document was stopped, re-parsed or deleted")
        # The failure step marks the document FAIL; the execution then fails with the step's error.
        mark_failed = self._task(self.shape.failure).next(
            sfn.Fail(self, "Failed", error_path=f"{ERROR_PATH}.Error", cause_path=f"{ERROR_PATH}.Cause")
        )
        states: list[sfn.TaskStateBase | sfn.Map] = [self._task(step) for step in self.shape.before]
        if self.shape.per_range:
            states.append(self._range_fan_out())
        states.extend(self._task(step) for step in self.shape.after)
        for state in states:
            state.add_catch(superseded, errors=[TASK_SUPERSEDED])
            # The failure step gets the state that failed, with the error beside it.
            state.add_catch(mark_failed, errors=["States.ALL"], result_path=ERROR_PATH)
        chain = sfn.Chain.start(states[0])
        for state in states[1:]:
            chain = chain.next(state)
        return chain.next(sfn.Succeed(self, "Parsed"))


def step_state_machine(
    scope: Construct,
    *,
    log_suffix: str,
    comment: str,
    definition: sfn.IChainable,
    timeout: Duration,
    log_settings: LogSettings,
    step_functions: Iterable[ServiceFunction],
) -> tuple[logs.LogGroup, sfn.StateMachine]:
    """A Standard state machine over step functions (parses, knowledge builds): traced, logging errors without
    execution data to its own log group, its findings acknowledged with their reasons."""
    log_group = logs.LogGroup(
        scope,
        "Logs",
        # Step Functions delivers through CloudWatch Logs' vended-logs path; names under this
        # prefix keep the account's logs resource policy from growing with every state machine.
        log_group_name=f"/aws/vendedlogs/states/{Stack.of(scope).stack_name}-{log_suffix}",
        retention=log_settings.retention,
        removal_policy=log_settings.removal_policy,
    )
    state_machine = sfn.StateMachine(
        scope,
        "StateMachine",
        comment=comment,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        state_machine_type=sfn.StateMachineType.STANDARD,
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ERROR, include_execution_data=False),
    )
    acknowledge(
        state_machine.role,
        "AwsSolutions-IAM5",
        "Step Functions invokes the step functions by ARN; CDK's LambdaInvoke grant adds '<arn>:*' so "
        "qualified invocations (versions, aliases) of the same functions are allowed too.",
        *(
            f"Resource::<{Stack.of(scope).get_logical_id(cfn_resource(step.function))}.Arn>:*"
            for step in step_functions
        ),
    )
    acknowledge(
        state_machine.role,
        "AwsSolutions-IAM5",
        "X-Ray tracing and CloudWatch Logs delivery (logs:*LogDelivery*, DescribeResourcePolicies, "
        "DescribeLogGroups) have no resource-level permissions, so they need Resource '*'.",
        "Resource::*",
    )
    acknowledge(
        state_machine,
        "AwsSolutions-SF1",
        "Logs at level ERROR without execution data: documents' text and the tenants' ids stay out "
        "of CloudWatch; a failed step's error and cause are logged, and the execution history "
        "keeps every state's input and output for 90 days.",
    )
    return log_group, state_machine


def unfinished_executions_queue(scope: Construct, state_machine: sfn.IStateMachine, what: str) -> sqs.Queue:
    """Executions that end without their failure step — timed out or stopped — leave their record running: their
    status-change events go to a queue an operator (and an alarm) watches, to stop or re-run them."""
    queue = sqs.Queue(
        scope,
        "UnfinishedExecutions",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    events.Rule(
        scope,
        "ExecutionEndedUnfinished",
        description=f"{SERVICE_NAME}: {what} executions that timed out or were stopped",
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=["Step Functions Execution Status Change"],
            detail={"status": list(UNFINISHED_STATUSES), "stateMachineArn": [state_machine.state_machine_arn]},
        ),
        targets=[targets.SqsQueue(queue)],
    )
    acknowledge(
        cfn_resource(queue),
        "AwsSolutions-SQS3",
        f"This queue is itself where unfinished {what} executions are parked for an operator; a queue behind it "
        "would only move the finding.",
    )
    return queue
