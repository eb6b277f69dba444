"""X-Ray for the Lambda functions: one tracer, and each backend's client library patched when the backend is
first used rather than at import (a patch imports its library: botocore alone is ~45 ms of a cold start)."""

from __future__ import annotations

from aws_lambda_powertools import Tracer

from shared.constants import SERVICE_NAME
from shared.container import Container

tracer = Tracer(service=SERVICE_NAME, auto_patch=False)

#: X-Ray patches (aws_xray_sdk module names) for the client libraries each backend talks through. Models
#: (Bedrock) go through botocore, which the metadata store, used by every function, has patched already.
TRACED_LIBRARIES: dict[str, tuple[str, ...]] = {
    "metadata": ("botocore", "pynamodb"),
    "blobs": ("botocore",),
    "workflow": ("botocore",),
    "builds": ("botocore",),
    "search": ("botocore", "requests"),
    "models": ("botocore",),
    "secrets": ("botocore",),
}


def trace_backends(container: Container) -> None:
    """Patch each backend's libraries for X-Ray just before ``container`` builds its adapter."""

    def patch(backend: str) -> None:
        libraries = TRACED_LIBRARIES.get(backend)
        if libraries:
            tracer.patch(list(libraries))  # idempotent: a library patched already is left as it is

    container.instrument = patch
