"""Entry point of the CDK app (``cdk synth`` runs ``python -m infra_cdk.app``, see cdk.json)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra_cdk.config import REPO_ROOT, StageConfig
from infra_cdk.stack import FlowlessStack
from shared.constants import SERVICE_NAME


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` block of cdk.json (feature flags, default stage).

    Given to App as defaults, so running the module directly or from tests synthesizes what
    ``cdk synth`` does; context from the CLI still takes precedence.
    """
    with (REPO_ROOT / "cdk.json").open(encoding="utf-8") as fh:
        context: dict[str, Any] = json.load(fh).get("context", {})
    return context


def build_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None) -> tuple[App, FlowlessStack]:
    """The app with its one stack and the cdk-nag AwsSolutions checks applied."""
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    node = app.node
    config = StageConfig.from_context(
        node.try_get_context("stage"),
        search_engine=node.try_get_context("search_engine"),
        bedrock_models=node.try_get_context("bedrock_models"),
        search_min_ocu=node.try_get_context("search_min_ocu"),
        event_bus=node.try_get_context("event_bus"),
        import_buckets=node.try_get_context("import_buckets"),
        webhook_allow_private=node.try_get_context("webhook_allow_private"),
    )
    stack = FlowlessStack(
        app,
        config.stack_name,
        config=config,
        description=f"{SERVICE_NAME}: RAGFlow-compatible RAG API ({config.stage})",
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    Tags.of(app).add("project", SERVICE_NAME)
    Tags.of(app).add("stage", config.stage)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True))
    return app, stack


def main() -> None:
    # The CDK CLI passes CDK_OUTDIR; run directly, the module writes to ./cdk.out (not a temp dir) too.
    app, _ = build_app(outdir=os.environ.get("CDK_OUTDIR") or "cdk.out")
    app.synth()


if __name__ == "__main__":
    main()
