"""Every conformance case runs twice: on the local server over real HTTP, and through the Lambda handlers
under moto behind the emulated API Gateway (tests/support/conformance.py).

One backend per module and parameter (a moto table takes seconds to build); cases stay independent because
each works as tenants of its own, and another tenant's data is invisible to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.conformance import Backend, LocalBackend, lambda_backend

BACKENDS = ("local", "lambda")


@pytest.fixture(scope="module", params=BACKENDS)
def ragflow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if request.param == "local":
        local = LocalBackend(request.getfixturevalue("server"))
        yield local
        local.close()
    else:
        with lambda_backend(tmp_path_factory.mktemp("lambda-index")) as deployed:
            yield deployed
