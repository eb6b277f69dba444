"""Every conformance case runs three times: on the local server over real HTTP (on the embedded backend, and
on the AWS adapters: the ``aws`` backend of tests/conftest.py), and through the Lambda handlers under moto
behind the emulated API Gateway (tests/support/conformance.py).

One backend per module and parameter (a moto table takes seconds to build); cases stay independent because
each works as tenants of its own, and another tenant's data is invisible to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.conformance import Backend, LocalBackend, lambda_backend

BACKENDS = ("local", "aws", "lambda")


@pytest.fixture(scope="module", params=BACKENDS)
def ragflow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if request.param in ("local", "aws"):
        fixture = "server" if request.param == "local" else "aws_server"
        local = LocalBackend(request.getfixturevalue(fixture), name=request.param)
        yield local
        local.close()
    else:
        with lambda_backend(tmp_path_factory.mktemp("lambda-index")) as deployed:
            yield deployed
