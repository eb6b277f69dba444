"""The dependency layers: pinned to what the tests run with, not stacked twice, enough for each function,
at import time and for what its requests (route groups) or its steps (parse steps) import when they run,
with byte code for every module the functions load (``layers/precompiled.txt``).

Lambda refuses a function whose code and layers exceed 250 MB unzipped (262,144,000 bytes); measured with
the bundlers (aarch64, CPython 3.13; bytes of the files; 2026-12-05): runtime ≈ 122.7 MB with its byte code
(13.7 MB; numpy's tests, f2py and the .pyi stubs pruned: 8.3 MB less), ingest ≈ 52.6 MB (byte code 3.9),
embed ≈ 126.5 MB after pruning (onnxruntime 56.3, the bge-small-en-v1.5 files 34.7, MiniLM's 23.7, tokenizers
11.3), graph ≈ 4.1 MB (networkx without its tests, and without byte code), code ≈ 5.1 MB (byte code 2.0).
The heaviest functions (runtime + embed: the embed step, chunks, retrieval, completions, the knowledge build
steps) come to ≈ 254.3 MB, the knowledge build's merge step (+ graph) to ≈ 258.4 MB (7.8 and 3.7 MB under
the limit), the parse steps (runtime + ingest) to ≈ 180 MB; runtime + ingest + embed would exceed it, so no
function may carry both ingest and embed, nor a distribution in two of its layers. The next room, if a pin
needs it: botocore's models of the services never called (its data is ≈ 23 MB). The Lambda Web Adapter's
layer (streaming groups) is a single binary of a few MB.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import get_args

import pytest
from packaging.requirements import Requirement

from infra_cdk.config import REPO_ROOT
from infra_cdk.function_construct import (
    EMBED_LAYER,
    GRAPH_LAYER,
    INGEST_LAYER,
    NEEDS_LAYERS,
    PRECOMPILED,
    RUNTIME_LAYER,
    DependencyLayer,
    needs_layers,
    route_group_handler,
)
from shared.constants import (
    ENV_BUILD_STATE_MACHINE_ARN,
    ENV_EVENT_BUS,
    ENV_OPENSEARCH_ENDPOINT,
    ENV_STATE_MACHINE_ARN,
    ENV_WEBHOOK_QUEUE_URL,
    SERVICE_NAME,
)
from shared.routes import ROUTE_GROUPS, Backend, RouteGroup
from tests.infrastructure.conftest import Synthesized

pytestmark = pytest.mark.infrastructure

LAYERS = {spec.name: spec for spec in (RUNTIME_LAYER, INGEST_LAYER, EMBED_LAYER, GRAPH_LAYER)}
#: PEP 508 environment of the functions (markers of the distributions' declared dependencies).
LAMBDA_MARKERS = {"python_version": "3.13", "python_full_version": "3.13.0", "sys_platform": "linux"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    pins = [line.split("==") for line in lines if line]
    assert all(len(pin) == 2 for pin in pins), (path, pins)
    return {_canonical(name): version for name, version in pins}


def _distributions(spec: DependencyLayer) -> dict[str, str]:
    """Every distribution a layer installs: its whole list (--no-deps) or its constraints (the resolved set)."""
    return _pins(spec.requirements if spec.no_deps else spec.constraints)


# -- pins ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [INGEST_LAYER, EMBED_LAYER, GRAPH_LAYER], ids=lambda spec: spec.name)
def test_no_deps_layers_pin_the_versions_the_tests_run_with(spec: DependencyLayer) -> None:
    assert spec.no_deps
    locked = _pins(REPO_ROOT / "requirements.lock")  # what `make setup` installs for the tests
    for name, version in _pins(spec.requirements).items():
        assert locked.get(name) == version, f"layers/{spec.name} pins {name}=={version}, the lock {locked.get(name)}"


def test_the_runtime_layer_resolves_to_the_versions_the_tests_run_with() -> None:
    locked = _pins(REPO_ROOT / "requirements.lock")
    for name, version in _pins(RUNTIME_LAYER.constraints).items():
        assert locked.get(name) == version, f"layers/runtime constrains {name}=={version}, the lock {locked.get(name)}"


#: Dependencies that distributions installed with --no-deps declare and the layer leaves out, and why.
#: ``test_dependencies_left_out_are_never_imported`` checks the declaring distribution never imports them.
_LEFT_OUT = {
    # Generated gRPC stubs, with grpcio and protobuf (≈ 19 MB unzipped); opensearch-py 3.2 speaks HTTP only.
    "opensearch-protobufs": "opensearch-py",
}


def test_what_the_runtime_layer_installs_without_dependencies_is_pinned_and_its_dependencies_are_there() -> None:
    no_deps = _pins(RUNTIME_LAYER.no_deps_requirements)
    constraints = _pins(RUNTIME_LAYER.constraints)
    assert no_deps, "layers/runtime/requirements-no-deps.txt lists nothing"
    assert {name: constraints.get(name) for name in no_deps} == no_deps  # the resolved set pins them too
    for name, version in no_deps.items():
        assert metadata.version(name) == version, f"the tests run {name} {metadata.version(name)}, the layer {version}"
        for declared in map(Requirement, metadata.requires(name) or []):
            if declared.marker is not None and not declared.marker.evaluate({**LAMBDA_MARKERS, "extra": ""}):
                continue  # another Python, or an extra
            dependency = _canonical(declared.name)
            if _LEFT_OUT.get(dependency) == name:
                continue
            assert dependency in constraints, f"{name} needs {dependency}: pin it in layers/runtime/requirements.txt"
            assert constraints[dependency] in declared.specifier, (name, declared, constraints[dependency])


def _top_level_imports(files: Iterable[Path]) -> set[str]:
    found: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("left_out", "declared_by"), sorted(_LEFT_OUT.items()))
def test_dependencies_left_out_are_never_imported(left_out: str, declared_by: str) -> None:
    provided = {top for top, dists in metadata.packages_distributions().items() if left_out in map(_canonical, dists)}
    assert provided, f"{left_out} is not installed in the test environment"
    sources = [Path(str(file.locate())) for file in metadata.files(declared_by) or [] if file.suffix == ".py"]
    assert sources, f"no Python files found for {declared_by}"
    assert not provided & _top_level_imports(sources), f"{declared_by} imports {left_out} ({sorted(provided)})"


# -- the functions' layers ------------------------------------------------------------------------------
def _function_layers(synth: Synthesized) -> dict[str, tuple[str, list[str]]]:
    """Logical id of each function -> (handler, names of its layers under layers/, sorted).

    Sorted because CDK renders them so; the order does not matter as long as no two of a function's
    layers hold the same distribution (later layers would overwrite earlier ones' files). Layers of other
    accounts (the Lambda Web Adapter's, referenced by ARN, not by Ref) hold no Python distribution.
    """
    names = {
        logical_id: re.search(r"layers/(\w+)/requirements\.txt", layer["Properties"]["Description"]).group(1)  # type: ignore[union-attr]
        for logical_id, layer in synth.resources("AWS::Lambda::LayerVersion").items()
    }
    return {
        logical_id: (
            fn["Properties"]["Handler"],
            sorted(names[layer["Ref"]] for layer in fn["Properties"]["Layers"] if "Ref" in layer),
        )
        for logical_id, fn in synth.resources("AWS::Lambda::Function").items()
    }


def _group_layers(synth: Synthesized, group: RouteGroup) -> list[str]:
    """The layers of a route group's function (found by its description, whatever its entry point)."""
    functions = synth.resources("AWS::Lambda::Function")
    (logical_id,) = [
        logical_id
        for logical_id, fn in functions.items()
        if fn["Properties"]["Description"] == f"{SERVICE_NAME} route group '{group.name}'"
    ]
    return _function_layers(synth)[logical_id][1]


def test_every_function_has_the_runtime_layer_and_no_distribution_twice(prod: Synthesized) -> None:
    for logical_id, (_, layers) in _function_layers(prod).items():
        assert RUNTIME_LAYER.name in layers, logical_id
        seen: dict[str, str] = {}
        for layer in layers:
            for name in _distributions(LAYERS[layer]):
                assert name not in seen, f"{logical_id}: {name} is in layers/{seen[name]} and layers/{layer}"
                seen[name] = layer


LAYER_SETS = ("runtime", "ingest+runtime", "embed+runtime", "embed+graph+runtime")


def test_every_function_runs_on_a_layer_set_that_fits_and_is_probed(prod: Synthesized) -> None:
    # Ingest and embed together would exceed Lambda's limit (see the module docstring).
    for logical_id, (_, layers) in _function_layers(prod).items():
        assert "+".join(layers) in LAYER_SETS, logical_id


@pytest.mark.parametrize("group", ROUTE_GROUPS, ids=lambda group: group.name)
def test_route_groups_get_the_layers_their_needs_call_for(prod: Synthesized, group: RouteGroup) -> None:
    expected = {RUNTIME_LAYER.name, *(spec.name for spec in needs_layers(group.needs))}
    assert set(_group_layers(prod, group)) == expected
    assert (EMBED_LAYER.name in expected) == ("models" in group.needs)


# -- what the functions import --------------------------------------------------------------------------
#: The container's adapter of each backend. A "+<backend>" argument makes the probe build it as the AWS
#: backend does on first use: the client (SigV4-signed OpenSearch, boto3, pynamodb) and what it imports.
_ADAPTERS: dict[Backend, str] = {
    "metadata": "metadata",
    "blobs": "blobs",
    "search": "search_index",
    "workflow": "workflow",
    "builds": "build_workflow",
    "events": "events",
    "uploads": "upload_store",
}

_PROBE = """
import json, os, sys
from importlib import import_module, metadata
os.environ.update({env})
ADAPTERS = {adapters}


def use(backend):
    if backend == "models":
        # The builtin models loaded and run (onnxruntime, tokenizers, the model packages' files); the
        # Bedrock adapters need boto3 alone, the OpenAI-compatible ones (embedders, chat models: any
        # tenant may configure them) openai. All are imported where the model is built (shared.rag).
        from shared.adapters.local.builtin_embedder import BUILTIN_MODELS
        from shared.rag.embedding import build_embedder

        for model_id in BUILTIN_MODELS:
            build_embedder(model_id).embed_documents(["probe"])
        for adapter in ("aws.bedrock_embedder", "aws.bedrock_chat", "openai_embedder", "openai_chat"):
            import_module("shared.adapters." + adapter)
    else:
        from shared.container import get_container

        getattr(get_container(), ADAPTERS[backend])


for arg in sys.argv[1:]:
    use(arg[1:]) if arg.startswith("+") else import_module(arg)
owners = metadata.packages_distributions()
tops = {{name.split(".")[0] for name in sys.modules}} - set(sys.stdlib_module_names)
files = {{
    module.__file__.split("site-packages/", 1)[1]
    for module in list(sys.modules.values())
    if (getattr(module, "__file__", None) or "").endswith(".py") and "site-packages/" in module.__file__
}}
print(json.dumps(sorted(files)))
print(json.dumps(sorted({{dist for top in tops for dist in owners.get(top, [])}})))
""".format(
    env=repr(
        {
            "FLOWLESS_BACKEND": "aws",
            "FLOWLESS_TABLE_NAME": "probe",
            "FLOWLESS_DOCUMENTS_BUCKET": "probe",
            ENV_OPENSEARCH_ENDPOINT: "https://probe.us-east-1.aoss.amazonaws.com",
            ENV_STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:probe",
            ENV_BUILD_STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:probe-builds",
            ENV_EVENT_BUS: "probe",
            ENV_WEBHOOK_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/probe",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            # Clients are built, never called: credentials that sign nothing, and no instance metadata lookup.
            "AWS_ACCESS_KEY_ID": "probe",
            "AWS_SECRET_ACCESS_KEY": "probe",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    ),
    adapters=repr(_ADAPTERS),
)


def _probe(modules: Iterable[str]) -> subprocess.Popen[str]:
    """A fresh interpreter importing ``modules`` (and building ``+<backend>`` adapters) with the AWS backend
    configured; prints the modules' files loaded from site-packages, then the distributions loaded."""
    return subprocess.Popen(
        [sys.executable, "-c", _PROBE, *modules],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(probe: subprocess.Popen[str]) -> tuple[int, str, set[str], set[str]]:
    """(exit code, end of stderr, distributions loaded, their modules' files relative to site-packages)."""
    stdout, stderr = probe.communicate(timeout=180)
    files, loaded = [json.loads(line) for line in stdout.splitlines()[-2:]] if probe.returncode == 0 else ([], [])
    return probe.returncode, stderr[-3000:], {_canonical(name) for name in loaded}, set(files)


def _loaded(probe: subprocess.Popen[str]) -> tuple[set[str], set[str]]:
    """The distributions and files a successful probe loaded."""
    returncode, stderr, distributions, files = _result(probe)
    assert returncode == 0, stderr
    return distributions, files


#: The backends whose clients each layer carries: those of NEEDS_LAYERS, the others' in the runtime layer.
_BACKENDS_OF_LAYER = {
    spec.name: [
        f"+{backend}"
        for backend, layers in NEEDS_LAYERS.items()
        if (spec in layers if spec != RUNTIME_LAYER else not layers)
    ]
    for spec in LAYERS.values()
}
#: What the functions on a layer import only when they run: the parse steps import parsers and chunkers
#: lazily, and every function builds its backends' clients on first use.
_LOADED_AT_RUN_TIME = {
    RUNTIME_LAYER.name: _BACKENDS_OF_LAYER[RUNTIME_LAYER.name],
    INGEST_LAYER.name: [
        "shared.rag.tokens",
        "shared.rag.chunkers",
        *(f"shared.rag.parsers.{fmt}" for fmt in ("pdf", "docx", "pptx", "xlsx", "xls", "txt", "html", "eml")),
        *_BACKENDS_OF_LAYER[INGEST_LAYER.name],
    ],
    EMBED_LAYER.name: _BACKENDS_OF_LAYER[EMBED_LAYER.name],
    # The knowledge build's merge step finds communities with networkx (imported when it runs).
    GRAPH_LAYER.name: ["shared.rag.graphrag.communities", "networkx"],
}
#: Imported when present, with a fallback when not (the test environment has them through dev tools).
_OPTIONAL = {
    "blinker": "pynamodb.signals falls back to a no-op namespace",
    # Without it pypdf cannot decrypt AES-encrypted PDFs; PDFium, the parser's fast path, decrypts them
    # itself, so only a PDF PDFium cannot open and pypdf must read would be answered that it uses an
    # encryption this server cannot decrypt (locally cryptography comes with moto).
    "cryptography": "pypdf's AES decryption (the PDF parser's fallback)",
    "cffi": "cryptography's dependency",
    "sniffio": "anyio assumes asyncio",
    # Only uvicorn's --reload supervisor uses it (else stat polling); the functions never reload.
    "watchfiles": "uvicorn.supervisors falls back to StatReload",
}


def test_every_backend_has_a_layer_and_a_probe() -> None:
    assert set(NEEDS_LAYERS) == set(get_args(Backend))
    assert set(_ADAPTERS) | {"models"} == set(get_args(Backend))
    assert sorted(b for backends in _BACKENDS_OF_LAYER.values() for b in backends) == sorted(
        f"+{b}" for b in get_args(Backend)
    )


def _streaming_handlers() -> set[str]:
    # Served by uvicorn under the Lambda Web Adapter (functions/<group>/run.sh), not by a handler module:
    # probed per group below.
    return {route_group_handler(group) for group in ROUTE_GROUPS if group.streaming}


@pytest.fixture(scope="module")
def loaded(prod: Synthesized) -> dict[str, tuple[list[str], set[str], set[str]]]:
    """For each layer set: the handler modules of the functions on it, and the distributions they load
    (imported with what they import when they run) and those modules' files, less what a bare interpreter
    loads (site hooks)."""
    modules = {
        layer_set: sorted(
            {
                handler.rsplit(".", 1)[0]
                for handler, layers in _function_layers(prod).values()
                if layers == layer_set.split("+") and handler not in _streaming_handlers()
            }
        )
        for layer_set in LAYER_SETS
    }
    # The interpreters run side by side: each spends seconds importing FastAPI, boto3, numpy ...
    baseline = _probe([])
    probes = {
        layer_set: _probe(
            [*modules[layer_set], *(m for layer in layer_set.split("+") for m in _LOADED_AT_RUN_TIME.get(layer, []))]
        )
        for layer_set in LAYER_SETS
        if modules[layer_set]
    }
    bare, bare_files = _loaded(baseline)
    results = {}
    for layer_set, probe in probes.items():
        distributions, files = _loaded(probe)
        results[layer_set] = (modules[layer_set], distributions - bare, files - bare_files)
    return results


def _allowed(layers: Iterable[str]) -> set[str]:
    return {name for layer in layers for name in _distributions(LAYERS[layer])}


def _unheld(distributions: set[str], layers: Iterable[str]) -> list[str]:
    """Distributions loaded that none of ``layers`` holds (flowless: the code asset itself)."""
    return sorted(distributions - _allowed(layers) - set(_OPTIONAL) - {"flowless"})


@pytest.mark.parametrize("layer_set", LAYER_SETS)
def test_functions_import_only_what_their_layers_hold(
    loaded: dict[str, tuple[list[str], set[str], set[str]]], layer_set: str
) -> None:
    assert layer_set in loaded, f"no function runs on {layer_set}"
    modules, distributions, _ = loaded[layer_set]
    missing = _unheld(distributions, layer_set.split("+"))
    assert not missing, f"{modules} on {layer_set} import distributions no layer holds: {missing}"


# -- what a route group's requests import ------------------------------------------------------------------
_CONTAINER = REPO_ROOT / "shared" / "container.py"


def _source(module: str) -> Path:
    path = REPO_ROOT / module.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imports(tree: ast.AST) -> set[str]:
    """The modules of this repository imported anywhere in ``tree`` (functions too), but for type checking."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {module for module in found if module.split(".")[0] in ("shared", "functions")}


def _container_members() -> dict[str, ast.FunctionDef]:
    (container,) = [
        node
        for node in ast.parse(_CONTAINER.read_text(encoding="utf-8")).body
        if isinstance(node, ast.ClassDef) and node.name == "Container"
    ]
    return {node.name: node for node in container.body if isinstance(node, ast.FunctionDef)}


def _attributes_of(tree: ast.AST, names: set[str]) -> set[str]:
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names
    }


def _container_uses(router: Path) -> set[str]:
    """The container members a router's endpoints use: attributes of their ``ContainerDep`` parameters."""
    tree = ast.parse(router.read_text(encoding="utf-8"))
    parameters = {
        arg.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for arg in (*node.args.args, *node.args.kwonlyargs)
        if isinstance(arg.annotation, ast.Name) and arg.annotation.id == "ContainerDep"
    }
    return _attributes_of(tree, parameters)


def request_time_imports(group: RouteGroup) -> tuple[list[str], set[Backend]]:
    """The modules a group's requests may import, and the backends they reach (the container's adapters).

    Read from the code, not listed by hand: the container members the group's router uses, the members
    those build (``self.<member>``, adapters aside), the modules the members import (the container imports
    where it builds), and what those modules import lazily, in their functions.
    """
    members = _container_members()
    adapter_of = {attribute: backend for backend, attribute in _ADAPTERS.items()}
    todo, seen = sorted(_container_uses(_source(f"{group.module}.router"))), set()
    modules: set[str] = set()
    backends: set[Backend] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in members:
            continue
        seen.add(name)
        if name in adapter_of:
            backends.add(adapter_of[name])
            continue
        modules |= _imports(members[name])
        todo.extend(_attributes_of(members[name], {"self"}))
    for module in list(modules):
        modules |= _imports(ast.parse(_source(module).read_text(encoding="utf-8")))
    return sorted(modules), backends


def _entry_modules(group: RouteGroup) -> list[str]:
    # A streaming group runs `python -m uvicorn` on <module>.app (functions/<group>/run.sh); the others a handler.
    return [f"{group.module}.app", "uvicorn.main"] if group.streaming else [f"{group.module}.handler"]


def test_request_time_imports_are_found() -> None:
    # The derivation reads the code: it must keep finding what the requests are known to use.
    imports = {group.name: request_time_imports(group) for group in ROUTE_GROUPS}
    assert {"shared.services.chunks", "shared.services.ingestion", "shared.rag.tokens"} <= set(imports["chunks"][0])
    assert "shared.services.retrieval" in imports["retrieval"][0]
    assert "shared.services.documents" in imports["datasets"][0]  # deleting a dataset purges its documents
    assert imports["system"][1] == {"metadata", "blobs", "search", "workflow"}  # the health check's probes


@pytest.mark.parametrize("group", ROUTE_GROUPS, ids=lambda group: group.name)
def test_what_a_groups_requests_reach_is_in_its_needs(group: RouteGroup) -> None:
    # A backend missing from the needs would leave the function without its endpoint and permissions.
    _, backends = request_time_imports(group)
    assert backends <= set(group.needs), f"{group.name} reaches {sorted(backends - set(group.needs))}"


RequestsLoaded = Mapping[str, tuple[list[str], list[str], tuple[int, str, set[str], set[str]]]]


@pytest.fixture(scope="module")
def requests_loaded(prod: Synthesized) -> RequestsLoaded:
    """For each route group: its function's layers, the probe's arguments, and what the probe loaded (less
    what a bare interpreter loads): the entry module, what its requests import, and its needs' clients."""
    plans = {
        group.name: (
            _group_layers(prod, group),
            [*_entry_modules(group), *request_time_imports(group)[0], *(f"+{backend}" for backend in group.needs)],
        )
        for group in ROUTE_GROUPS
    }
    baseline = _probe([])
    probes = {name: _probe(arguments) for name, (_, arguments) in plans.items()}
    bare, bare_files = _loaded(baseline)
    results = {}
    for name, probe in probes.items():
        returncode, stderr, distributions, files = _result(probe)
        results[name] = (*plans[name], (returncode, stderr, distributions - bare, files - bare_files))
    return results


@pytest.mark.parametrize("group", ROUTE_GROUPS, ids=lambda group: group.name)
def test_route_group_requests_import_only_what_their_layers_hold(
    requests_loaded: RequestsLoaded, group: RouteGroup
) -> None:
    layers, arguments, (returncode, stderr, distributions, _) = requests_loaded[group.name]
    assert returncode == 0, f"probe {arguments} failed:\n{stderr}"
    missing = _unheld(distributions, layers)
    assert not missing, (
        f"{group.name}'s requests ({arguments}) load distributions no layer of {layers} holds: {missing}"
    )


# -- byte code ---------------------------------------------------------------------------------------------
def test_the_layers_ship_byte_code_for_every_module_the_functions_load(
    loaded: dict[str, tuple[list[str], set[str], set[str]]], requests_loaded: RequestsLoaded
) -> None:
    # Without it a module is compiled at every cold start (infra_cdk.bundling.Bytecode); with
    # FLOWLESS_WRITE_PRECOMPILED=1 this test writes the list instead of checking it.
    needed = {file for _, _, files in loaded.values() for file in files}
    needed |= {file for *_, (_, _, _, files) in requests_loaded.values() for file in files}
    assert len(needed) > 300  # FastAPI, pydantic, boto3 ... at least
    if os.environ.get("FLOWLESS_WRITE_PRECOMPILED") == "1":
        PRECOMPILED.write_text("".join(f"{file}\n" for file in sorted(needed)), encoding="utf-8")
    listed = set(PRECOMPILED.read_text(encoding="utf-8").split())
    missing = sorted(needed - listed)
    assert not missing, (
        f"{len(missing)} modules the functions load have no byte code in their layer ({missing[:5]} ...): run "
        "FLOWLESS_WRITE_PRECOMPILED=1 .venv/bin/pytest tests/infrastructure/test_layers.py -k byte_code"
    )
