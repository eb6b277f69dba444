"""Step Functions driver of the workflow port: one execution of the parse state machine per task."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shared.ports.metadata import StoreUnavailable
from shared.ports.workflow import ParseTask, Workflow


class StepFunctionsWorkflow(Workflow):
    def __init__(self, state_machine_arn: str, *, region: str, client: Any = None) -> None:
        self._arn = state_machine_arn
        self._client = client or boto3.client("stepfunctions", region_name=region)

    def start_parse(self, task: ParseTask) -> None:
        # The task id names the execution: a retried start of the same task is refused, not run twice.
        try:
            self._client.start_execution(stateMachineArn=self._arn, name=task["task_id"], input=json.dumps(task))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return
            raise StoreUnavailable(f"could not start the parse workflow: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"could not start the parse workflow: {exc}") from exc

    def ping(self) -> None:
        self._client.describe_state_machine(stateMachineArn=self._arn)
