"""Step Functions driver of the workflow port: one execution per task — of the parse state machine for a
document, of the knowledge-build state machine for a graph / RAPTOR build."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shared.ports.metadata import StoreUnavailable
from shared.ports.workflow import BuildTask, ParseTask, Workflow


class StepFunctionsWorkflow(Workflow):
    """``state_machine_arn`` runs parses, ``build_state_machine_arn`` knowledge builds; a function is given
    the ARNs of the machines it may start (None: it starts none of that kind)."""

    def __init__(
        self,
        state_machine_arn: str | None,
        *,
        region: str,
        client: Any = None,
        build_state_machine_arn: str | None = None,
    ) -> None:
        self._arn = state_machine_arn
        self._build_arn = build_state_machine_arn
        self._client = client or boto3.client("stepfunctions", region_name=region)

    def start_parse(self, task: ParseTask) -> None:
        self._start(self._arn, task, "parse")

    def start_build(self, task: BuildTask) -> None:
        self._start(self._build_arn, task, "knowledge build")

    def _start(self, arn: str | None, task: dict[str, Any], what: str) -> None:
        if arn is None:
            raise RuntimeError(f"no state machine for the {what} workflow is configured")
        # The task id names the execution: a retried start of the same task is refused, not run twice.
        try:
            self._client.start_execution(stateMachineArn=arn, name=task["task_id"], input=json.dumps(task))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return
            raise StoreUnavailable(f"could not start the {what} workflow: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"could not start the {what} workflow: {exc}") from exc

    def ping(self) -> None:
        for arn in (self._arn, self._build_arn):
            if arn is not None:
                self._client.describe_state_machine(stateMachineArn=arn)
