"""Alarms on what an operator must look at: function errors, server-side API failures, stuck parses and
undelivered upload events."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

_PERIOD = Duration.minutes(5)


class MonitoringConstruct(Construct):
    """One errors alarm per function, one 5XX alarm for the API, one for parses and one for knowledge builds
    that timed out, and one per dead-letter queue holding messages (no notification target yet)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        rest_api: apigw.RestApi,
        state_machine: sfn.StateMachine | None = None,
        build_state_machine: sfn.StateMachine | None = None,
        dead_letter_queues: Mapping[str, sqs.IQueue] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        for name, function in functions.items():
            self.alarms.append(
                function.metric_errors(period=_PERIOD, statistic="Sum").create_alarm(
                    self,
                    f"{name}Errors",
                    alarm_description=f"Lambda function '{name}' raised errors",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        self.alarms.append(
            rest_api.metric_server_error(period=_PERIOD, statistic="Sum").create_alarm(
                self,
                "Api5xx",
                alarm_description="The API answered with 5XX (function failure, timeout or authorizer error)",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        if state_machine is not None:
            # A timed-out parse skipped the failure step, so its document is still RUNNING.
            self.alarms.append(
                state_machine.metric_timed_out(period=_PERIOD, statistic="Sum").create_alarm(
                    self,
                    "ParseTimedOut",
                    alarm_description="A parse execution timed out; its document is left RUNNING",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        if build_state_machine is not None:
            # A timed-out build skipped the failure step: its task shows running until it is abandoned.
            self.alarms.append(
                build_state_machine.metric_timed_out(period=_PERIOD, statistic="Sum").create_alarm(
                    self,
                    "BuildTimedOut",
                    alarm_description="A knowledge build execution timed out; its task is left running",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        for name, queue in (dead_letter_queues or {}).items():
            self.alarms.append(
                queue.metric_approximate_number_of_messages_visible(period=_PERIOD, statistic="Maximum").create_alarm(
                    self,
                    f"{name}DeadLetters",
                    alarm_description=f"Events of '{name}' could not be processed and wait in its dead-letter queue",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
