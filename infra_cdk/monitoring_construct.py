"""Alarms on what an operator must look at: function errors and server-side API failures."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

_PERIOD = Duration.minutes(5)


class MonitoringConstruct(Construct):
    """One errors alarm per function and one 5XX alarm for the API (no notification target yet)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        rest_api: apigw.RestApi,
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
