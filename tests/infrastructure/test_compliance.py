"""cdk-nag (AwsSolutions) and cfn-lint on the synthesized template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import lint_file

from tests.infrastructure.conftest import Synthesized

pytestmark = pytest.mark.infrastructure

#: cfn-lint warnings accepted, with why. W3005: CDK makes each function DependsOn its role and the role's
#: policy (so the policy exists before the function runs); the role is also a GetAtt, so half is redundant.
ACCEPTED_CFN_LINT_WARNINGS = {"W3005"}


def _nag_violations(synth: Synthesized) -> list[dict[str, Any]]:
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    return [
        violation
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == "AwsSolutions"
        for violation in plugin["violations"]
    ]


def _acknowledgments(synth: Synthesized) -> list[tuple[str, dict[str, str]]]:
    return [
        (logical_id, rule)
        for logical_id, resource in synth.template_json["Resources"].items()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]


@pytest.mark.parametrize("stage", ["prod", "dev"])
def test_cdk_nag_reports_no_unacknowledged_finding(stage: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(stage)
    # Errors fail the synth itself; warnings would only be reported, so check both here.
    assert _nag_violations(synth) == []


def test_cdk_nag_ran_and_every_acknowledgment_has_a_reason(prod: Synthesized) -> None:
    acknowledgments = _acknowledgments(prod)
    # The AwsSolutions pack writes its acknowledgments into the template: none means it did not run.
    assert acknowledgments
    for logical_id, rule in acknowledgments:
        assert rule["id"].startswith("AwsSolutions-"), (logical_id, rule)
        assert len(rule.get("reason", "").strip()) >= 20, (logical_id, rule)


def test_public_methods_are_the_only_unauthenticated_ones(prod: Synthesized) -> None:
    acknowledged = {logical_id for logical_id, rule in _acknowledgments(prod) if rule["id"] == "AwsSolutions-APIG4"}
    public = {
        logical_id
        for logical_id, method in prod.resources("AWS::ApiGateway::Method").items()
        if method["Properties"]["AuthorizationType"] == "NONE"
    }
    assert acknowledged == public


def test_cfn_lint_finds_no_errors(prod: Synthesized) -> None:
    matches = lint_file(prod.template_path)
    errors = [str(m) for m in matches if m.rule.severity == "error"]
    assert errors == []
    unexpected_warnings = [
        str(m) for m in matches if m.rule.id not in ACCEPTED_CFN_LINT_WARNINGS and m.rule.severity == "warning"
    ]
    assert unexpected_warnings == []


def test_cdk_reports_no_warning_or_error(prod: Synthesized) -> None:
    manifest = json.loads((prod.outdir / "manifest.json").read_text(encoding="utf-8"))
    annotations = [
        (path, entry["data"])
        for artifact in manifest["artifacts"].values()
        for path, entries in (artifact.get("metadata") or {}).items()
        for entry in entries
        if entry["type"] in ("aws:cdk:warning", "aws:cdk:error")
    ]
    assert annotations == []
