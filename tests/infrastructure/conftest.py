"""Synthesizes the CDK app once per stage for the whole module; bundling is skipped and must stay skipped."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

from infra_cdk.app import build_app
from infra_cdk.bundling import PackageCopyBundler, PipLayerBundler

#: Construct ids of the stack's state machines (their logical ids start with them).
PARSING = "Parsing"
KNOWLEDGE = "Knowledge"
#: CDK bundles only the stacks matching these patterns; none means no pip, no copying.
SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}


@dataclass(frozen=True)
class Synthesized:
    template: Template
    template_json: dict[str, Any]
    template_path: Path
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def state_machine(self, construct: str = PARSING) -> tuple[str, dict[str, Any]]:
        """The logical id and resource of the state machine of a construct (``PARSING`` or ``KNOWLEDGE``)."""
        (found,) = [
            (logical_id, resource)
            for logical_id, resource in self.resources("AWS::StepFunctions::StateMachine").items()
            if logical_id.startswith(construct)
        ]
        return found


def _bundling_must_not_run(self: object, output_dir: str, *, image: object, **_: object) -> bool:
    raise AssertionError(f"bundling ran although the synth skips it (into {output_dir})")


def synthesize(stage: str, outdir: Path, **context: Any) -> Synthesized:
    """The app synthesized for ``stage``, with further CDK ``context`` (stage settings: ``search_engine=...``)."""
    with pytest.MonkeyPatch.context() as patch:
        # Called back from the CDK process: raising here fails the synth.
        patch.setattr(PackageCopyBundler, "try_bundle", _bundling_must_not_run)
        patch.setattr(PipLayerBundler, "try_bundle", _bundling_must_not_run)
        app, stack = build_app({"stage": stage, **SKIP_BUNDLING, **context}, outdir=str(outdir))
        assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    template_path = Path(artifact.template_full_path)
    template_json = json.loads(template_path.read_text(encoding="utf-8"))
    return Synthesized(Template.from_json(template_json), template_json, template_path, outdir)


# Package scope: each stage is synthesized once for all modules here (the first synth of a process
# takes several seconds).
@pytest.fixture(scope="package")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize("prod", tmp_path_factory.mktemp("cdk-prod"))


@pytest.fixture(scope="package")
def dev(synthesized_dev: Synthesized) -> Synthesized:
    return synthesized_dev  # the session's (the AWS backend of the API suite runs its state machine)


@pytest.fixture(scope="package")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A stage with ``search_engine=embedded`` (the shards in S3 instead of OpenSearch Serverless)."""
    return synthesize("emb", tmp_path_factory.mktemp("cdk-embedded"), search_engine="embedded")
