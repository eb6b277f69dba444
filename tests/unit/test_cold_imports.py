"""What a Lambda function's import loads: each handler in a fresh interpreter with the environment Lambda
gives. Import time itself is a benchmark (benchmarks/bench_cold_start.py); this checks what it is made of."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.routes import ROUTE_GROUPS

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(name for name in sys.modules if name.startswith(("pydantic.v1", "shared.")))))
"""


def loaded_on_import(module: str) -> set[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FLOWLESS_BACKEND": "aws",
        "FLOWLESS_TABLE_NAME": "flowless-test",
        "FLOWLESS_DOCUMENTS_BUCKET": "flowless-test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "flowless-test",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], env=env, check=True, capture_output=True, text=True
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("group", [group.name for group in ROUTE_GROUPS if not group.streaming])
def test_no_route_group_imports_pydantic_v1(group: str) -> None:
    # FastAPI's probe for pydantic.v1 models would import the whole v1 package for each path parameter.
    assert not {name for name in loaded_on_import(f"functions.{group}.handler") if name.startswith("pydantic.v1")}


def test_the_datasets_function_loads_its_services_when_first_used() -> None:
    loaded = loaded_on_import("functions.datasets.handler")
    assert "shared.schemas.datasets" in loaded  # its routes declare their request models
    unused_at_import = {
        "shared.services.datasets",
        "shared.services.tenants",
        "shared.services.auth",
        "shared.catalog",
        "shared.ports.search",
        "shared.ports.uploads",
        "shared.ports.webhooks",
        "shared.ports.events",
    }
    assert not loaded & unused_at_import
