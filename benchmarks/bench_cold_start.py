"""Cold-start share we control: importing each Lambda function's handler in a fresh interpreter.

Every function the CDK app deploys: the route groups of shared.routes (a streaming group: uvicorn and the
app it serves), the authorizer, the parse and knowledge-build step handlers and the S3 ingest trigger.
Each import runs in a new interpreter with the environment Lambda gives (backend aws, the function's name
and memory), ``--runs`` times, alternating the functions so that other load on the machine hits all alike.
Medians of the wall-clock time and of the process's CPU time (the latter shifts less when other programs
compete for the cores); beside them, in the same run, ``import fastapi`` alone, the floor every API function
stands on, and each function's CPU time beyond it.

Then a cold request of the datasets function: the import and its first request (events/datasets_list.json)
in one fresh interpreter, against a local DynamoDB stand-in (moto's server, in this process): what a
user waits for in Python, import and first-use imports together.

    .venv/bin/python benchmarks/bench_cold_start.py [--runs 7] [--function datasets ...] [--from-source]

``--from-source`` also times each import compiling every module but the standard library's, as a function
did on Lambda before the bundles shipped byte code (``infra_cdk/bundling.py``), beside the import with it.

Target (issue 15): the datasets function's import <= 300 ms.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Handler modules that are not route groups (see infra_cdk: auth, parsing, knowledge and S3 trigger constructs).
OTHER_FUNCTIONS = ("authorizer", "parse_steps", "knowledge_steps", "s3_ingest")

PROBE = """
import time
wall, cpu = time.perf_counter(), time.process_time()
import {module}
print((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
"""

COLD_REQUEST = """
import json, time
wall, cpu = time.perf_counter(), time.process_time()
import functions.datasets.handler as module
imported = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
event = json.loads(open({event!r}).read())
class Context:
    function_name = "flowless-datasets"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:flowless-datasets"
    aws_request_id = "52fdfc07-2182-154f-163f-5f0f9a621d72"
response = module.handler(event, Context())
total = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
assert json.loads(response["body"])["code"] == 0, response
print(*imported, *total)
"""

TENANT = "3af81804241d11f0a6a79f24fc270c7f"  # the tenant the sample events carry
TABLE = "flowless-bench"


def lambda_env(function: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FLOWLESS_BACKEND": "aws",
        "FLOWLESS_TABLE_NAME": TABLE,
        "FLOWLESS_DOCUMENTS_BUCKET": "flowless-bench",
        "FLOWLESS_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:flowless-parse",
        "FLOWLESS_BUILD_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:flowless-build",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "flowless",
        "POWERTOOLS_METRICS_NAMESPACE": "Flowless",
        # What the Lambda runtime sets: the X-Ray SDK then samples locally (as on Lambda) instead of
        # building a botocore X-Ray client for centralized sampling rules at import.
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": f"flowless-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    }


def run(code: str, env: dict[str, str]) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return [float(x) for x in out.stdout.splitlines()[-1].split()]  # after any metrics the handler printed


def functions() -> list[str]:
    from shared.routes import ROUTE_GROUPS

    return [group.name for group in ROUTE_GROUPS] + list(OTHER_FUNCTIONS)


def module_of(function: str) -> str:
    """What the function imports at start: the handler, or for a streaming group uvicorn and the app that
    uvicorn serves (functions/<group>/run.sh)."""
    from shared.routes import ROUTE_GROUPS

    if function == "(fastapi alone)":
        return "fastapi"
    if any(group.name == function and group.streaming for group in ROUTE_GROUPS):
        return f"uvicorn.main, functions.{function}.app"
    return f"functions.{function}.handler"


def imports(names: list[str], runs: int) -> None:
    names = ["(fastapi alone)", *names]
    for name in names:  # compile and cache .pyc files first
        run(PROBE.format(module=module_of(name)), lambda_env(name))
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(runs):
        for name in names:
            w, c = run(PROBE.format(module=module_of(name)), lambda_env(name))
            wall[name].append(w)
            cpu[name].append(c)
    print(f"import of each function's handler, fresh interpreter, median of {runs} ({load()})")
    print(f"{'function':22}{'wall ms':>9}{'CPU ms':>9}{'min wall':>10}")
    for name in names:
        print(
            f"{name:22}{statistics.median(wall[name]):9.0f}{statistics.median(cpu[name]):9.0f}{min(wall[name]):10.0f}"
        )


def cold_request(runs: int) -> None:
    from moto.server import ThreadedMotoServer

    from shared.adapters.aws.dynamodb_store import DynamoMetadataStore
    from shared.repos.tenants import Tenant, TenantRepository

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the stand-in's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        store = DynamoMetadataStore(TABLE, region="us-east-1", host=endpoint)
        store.create_table()
        TenantRepository(store).create(Tenant(id=TENANT, name="bench", create_time=1))
        # Traced as on Lambda: the runtime hands the trace id over in this variable (segments go to a daemon
        # address nobody listens on, over UDP).
        trace = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1"
        env = {**lambda_env("datasets"), "FLOWLESS_DYNAMODB_ENDPOINT": endpoint, "_X_AMZN_TRACE_ID": trace}
        code = COLD_REQUEST.format(event=str(ROOT / "events" / "datasets_list.json"))
        run(code, env)
        results = [run(code, env) for _ in range(runs)]
    finally:
        server.stop()
    med = [statistics.median(r[i] for r in results) for i in range(4)]
    print(
        f"datasets cold request (import, then GET /datasets against moto's DynamoDB server), median of {runs}: "
        f"import {med[0]:.0f} ms ({med[1]:.0f} CPU), import + first request {med[2]:.0f} ms ({med[3]:.0f} CPU)"
    )


def compiling_env(prefix: Path) -> dict[str, str]:
    """What a function's interpreter meets on Lambda without shipped byte code: the standard library compiled
    (the runtime's is), every other module (the layers', the code's) compiled at import and never written.

    The standard library's byte code is compiled into ``prefix`` once (``PYTHONPYCACHEPREFIX`` then makes the
    interpreter read byte code from there only, so the venv's own ``__pycache__`` folders are ignored)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(prefix)}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", stdlib], env=env, check=False, capture_output=True
    )
    return {"PYTHONPYCACHEPREFIX": str(prefix), "PYTHONDONTWRITEBYTECODE": "1"}


def bytecode_gain(names: list[str], runs: int) -> None:
    """Each function's import with its modules' byte code (what the bundles ship, infra_cdk.bundling.Bytecode)
    and compiling them, alternating, in the same run."""
    with tempfile.TemporaryDirectory(prefix="pycache-") as prefix:
        compiling = compiling_env(Path(prefix))
        shipped: dict[str, list[float]] = {name: [] for name in names}
        source: dict[str, list[float]] = {name: [] for name in names}
        for name in names:
            run(PROBE.format(module=module_of(name)), lambda_env(name))  # the venv's byte code is there
        for _ in range(runs):
            for name in names:
                probe = PROBE.format(module=module_of(name))
                shipped[name].append(run(probe, lambda_env(name))[0])
                source[name].append(run(probe, {**lambda_env(name), **compiling})[0])
    print(f"import with the byte code shipped vs compiled at import (as before), wall ms, median of {runs} ({load()})")
    print(f"{'function':22}{'byte code':>10}{'compiling':>11}{'ratio':>7}")
    for name in names:
        with_code, without = statistics.median(shipped[name]), statistics.median(source[name])
        print(f"{name:22}{with_code:10.0f}{without:11.0f}{without / with_code:7.1f}")


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f", {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--function", action="append", help="only this function (repeatable; default: all)")
    parser.add_argument("--no-request", action="store_true", help="skip the datasets cold request")
    parser.add_argument(
        "--from-source", action="store_true", help="also each import compiling its modules (no byte code shipped)"
    )
    args = parser.parse_args()
    imports(args.function or functions(), args.runs)
    if args.from_source:
        bytecode_gain(args.function or functions(), args.runs)
    if not args.no_request:
        cold_request(args.runs)
    print("target: the datasets function's import <= 300 ms")


if __name__ == "__main__":
    main()
