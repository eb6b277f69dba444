"""The Docker-free bundlers, run directly (the synth tests skip bundling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from aws_cdk import DockerImage

from infra_cdk.bundling import Bytecode, PackageCopyBundler, PipLayerBundler
from infra_cdk.config import REPO_ROOT
from infra_cdk.function_construct import (
    CODE_PACKAGES,
    EMBED_LAYER,
    INGEST_LAYER,
    LAYER_REQUIREMENTS,
    PIP_PLATFORMS,
    PYTHON_VERSION,
    RUNTIME_LAYER,
)
from tests.infrastructure.conftest import Synthesized

pytestmark = pytest.mark.infrastructure

_IMAGE = DockerImage.from_registry("scratch-not-used")
#: The Python running the tests: a runtime version the bundler can always compile for.
_HERE = "{}.{}".format(*sys.version_info[:2])


def test_code_bundle_holds_the_packages_without_tests_or_caches(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    for relative in [
        "shared/__init__.py",
        "shared/data/catalog.json",
        "shared/__pycache__/x.cpython-311.pyc",
        "functions/datasets/handler.py",
        "functions/tests/test_x.py",
        "tests/unit/test_y.py",
        ".venv/lib/site.py",
    ]:
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text("x", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()

    assert PackageCopyBundler(source, CODE_PACKAGES).try_bundle(str(out), image=_IMAGE)

    bundled = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert bundled == ["functions/datasets/handler.py", "shared/__init__.py", "shared/data/catalog.json"]


def test_layer_bundle_installs_lambda_wheels_into_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda command, check: calls.append(command))
    constraints = LAYER_REQUIREMENTS.parent / "constraints.txt"
    bundler = PipLayerBundler(
        LAYER_REQUIREMENTS, platforms=PIP_PLATFORMS, python_version=PYTHON_VERSION, constraints=constraints
    )

    assert bundler.try_bundle(str(tmp_path), image=_IMAGE)

    (command,) = calls
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == ["manylinux2014_aarch64", "manylinux_2_28_aarch64"]
    assert command[command.index("--python-version") + 1] == PYTHON_VERSION
    assert "--only-binary=:all:" in command
    assert "--no-deps" not in command
    assert command[command.index("-c") + 1] == str(constraints)
    assert command[-2:] == ["-r", str(LAYER_REQUIREMENTS)]


def test_a_resolved_layer_then_installs_its_no_deps_list_without_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda command, check: calls.append(command))
    bundler = PipLayerBundler(
        RUNTIME_LAYER.requirements,
        platforms=PIP_PLATFORMS,
        python_version=PYTHON_VERSION,
        constraints=RUNTIME_LAYER.constraints,
        no_deps_requirements=RUNTIME_LAYER.no_deps_requirements,
    )

    assert bundler.try_bundle(str(tmp_path), image=_IMAGE)

    resolved, unresolved = calls
    assert "--no-deps" not in resolved and resolved[-2:] == ["-r", str(RUNTIME_LAYER.requirements)]
    assert "--no-deps" in unresolved and unresolved[-2:] == ["-r", str(RUNTIME_LAYER.no_deps_requirements)]
    for command in calls:  # the same target and pins, wheels for the same platform
        assert command[command.index("--target") + 1] == str(tmp_path / "python")
        assert command[command.index("-c") + 1] == str(RUNTIME_LAYER.constraints)
        assert command[command.index("--python-version") + 1] == PYTHON_VERSION


def _fake_pip(files: list[str], calls: list[list[str]] | None = None) -> Callable[[list[str], bool], None]:
    """Stands in for pip: "installs" ``files`` under the --target folder (and records the command)."""

    def run(command: list[str], check: bool) -> None:
        if calls is not None:
            calls.append(command)
        target = Path(command[command.index("--target") + 1])
        for relative in files:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).write_text("x", encoding="utf-8")

    return run


def test_no_deps_layer_installs_exactly_its_list_and_prunes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = ["model_pkg/model/tokenizer.json", "model_pkg/model/model.safetensors", "model_pkg/__init__.py"]
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", _fake_pip(installed, calls))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("model-pkg==1.0\n", encoding="utf-8")
    bundler = PipLayerBundler(
        requirements,
        platforms=PIP_PLATFORMS,
        python_version=PYTHON_VERSION,
        no_deps=True,
        prune=("model_pkg/model/*.safetensors",),
    )
    out = tmp_path / "out"

    assert bundler.try_bundle(str(out), image=_IMAGE)

    assert "--no-deps" in calls[0]
    kept = sorted(str(p.relative_to(out / "python")) for p in out.rglob("*") if p.is_file())
    assert kept == ["model_pkg/__init__.py", "model_pkg/model/tokenizer.json"]


def test_a_prune_pattern_that_matches_nothing_fails_the_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", _fake_pip(["pkg/__init__.py"]))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pkg==1.0\n", encoding="utf-8")
    bundler = PipLayerBundler(
        requirements, platforms=PIP_PLATFORMS, python_version=PYTHON_VERSION, prune=("pkg/weights.bin",)
    )
    with pytest.raises(FileNotFoundError, match=r"pkg/weights\.bin"):
        bundler.try_bundle(str(tmp_path / "out"), image=_IMAGE)


def _pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    assert all(len(pin) == 2 for pin in pins), pins
    return {name.lower(): version for name, version in pins}


def test_layer_requirements_are_pinned_and_constrained_alike() -> None:
    requirements = _pins(LAYER_REQUIREMENTS)
    constraints = _pins(LAYER_REQUIREMENTS.parent / "constraints.txt")
    assert requirements
    assert {name: constraints.get(name) for name in requirements} == requirements


def test_layer_fingerprint_follows_the_pins(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastapi==0.165.0\n", encoding="utf-8")
    arm = ["manylinux2014_aarch64"]
    bundler = PipLayerBundler(requirements, platforms=arm, python_version="3.13")
    before = bundler.fingerprint
    assert PipLayerBundler(requirements, platforms=arm, python_version="3.13").fingerprint == before
    assert (
        PipLayerBundler(requirements, platforms=["manylinux2014_x86_64"], python_version="3.13").fingerprint != before
    )
    assert PipLayerBundler(requirements, platforms=PIP_PLATFORMS, python_version="3.13").fingerprint != before
    assert PipLayerBundler(requirements, platforms=arm, python_version="3.13", no_deps=True).fingerprint != before
    assert PipLayerBundler(requirements, platforms=arm, python_version="3.13", prune=("x/*",)).fingerprint != before
    requirements.write_text("fastapi==0.166.0\n", encoding="utf-8")
    assert bundler.fingerprint != before
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("starlette==1.10.0\n", encoding="utf-8")
    constrained = PipLayerBundler(requirements, platforms=arm, python_version="3.13", constraints=constraints)
    assert constrained.fingerprint != bundler.fingerprint
    no_deps = tmp_path / "requirements-no-deps.txt"
    no_deps.write_text("opensearch-py==3.2.0\n", encoding="utf-8")
    with_no_deps = PipLayerBundler(
        requirements, platforms=arm, python_version="3.13", constraints=constraints, no_deps_requirements=no_deps
    )
    before = with_no_deps.fingerprint
    assert before != constrained.fingerprint
    no_deps.write_text("opensearch-py==3.3.0\n", encoding="utf-8")
    assert with_no_deps.fingerprint != before


def test_synth_without_bundling_stages_no_asset(prod: Synthesized) -> None:
    # The bundlers are also replaced by failing spies during the synth (see conftest).
    assert not list(prod.outdir.glob("asset.*"))
    assets = json.loads(next(prod.outdir.glob("*.assets.json")).read_text(encoding="utf-8"))
    sources = {Path(asset["source"]["path"]) for asset in assets["files"].values()}
    layers = {spec.requirements.parent for spec in (RUNTIME_LAYER, INGEST_LAYER, EMBED_LAYER)}
    assert {REPO_ROOT, *layers} <= sources


# -- byte code ---------------------------------------------------------------------------------------------
def _loaded_from_byte_code(root: Path, module: str) -> bool:
    """Whether a fresh interpreter that may not write byte code (as on Lambda) imports ``module`` from a .pyc."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(root)}
    command = [sys.executable, "-v", "-c", f"import {module}"]
    out = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    source = root / (module.replace(".", "/") + ".py")
    return f"code object from '{source.parent / '__pycache__' / source.stem}." in out.stderr


def test_code_bundle_ships_byte_code_the_runtime_uses_whatever_the_zip_does_to_timestamps(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    for relative, text in [("shared/__init__.py", ""), ("shared/mod.py", "VALUE = 1\n"), ("functions/__init__.py", "")]:
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()

    assert PackageCopyBundler(source, CODE_PACKAGES, bytecode=Bytecode(_HERE)).try_bundle(str(out), image=_IMAGE)

    module = out / "shared" / "mod.py"
    os.utime(module, (315532800, 315532800))  # the asset's zip: 1980-01-01 on every file
    (cached,) = (out / "shared" / "__pycache__").glob("mod.*.pyc")
    assert int.from_bytes(cached.read_bytes()[4:8], "little") == 0b11  # PEP 552: hash-based, checked
    assert _loaded_from_byte_code(out, "shared.mod")
    module.write_text("VALUE = 2\n", encoding="utf-8")  # a changed source is never shadowed by old byte code
    assert not _loaded_from_byte_code(out, "shared.mod")


def test_a_layer_compiles_only_the_modules_of_its_manifest_after_pruning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = ["pkg/__init__.py", "pkg/used.py", "pkg/unused.py", "pkg/tests/test_x.py"]
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pkg==1.0\n", encoding="utf-8")
    manifest = tmp_path / "precompiled.txt"
    manifest.write_text("pkg/__init__.py\npkg/used.py\npkg/tests/test_x.py\nother/absent.py\n", encoding="utf-8")
    fake_pip = _fake_pip(installed)
    real_run = subprocess.run
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda command, **kw: fake_pip(command, True) if "--target" in command else real_run(command, **kw),
    )
    bundler = PipLayerBundler(
        requirements,
        platforms=PIP_PLATFORMS,
        python_version=_HERE,
        prune=("pkg/tests",),
        bytecode=Bytecode(_HERE, manifest),
    )
    out = tmp_path / "out"

    assert bundler.try_bundle(str(out), image=_IMAGE)

    compiled = sorted(p.name.split(".")[0] for p in (out / "python").rglob("*.pyc"))
    assert compiled == ["__init__", "used"]  # pruned and unlisted modules have none; absent ones are skipped


def test_without_the_runtimes_python_a_bundle_ships_no_byte_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "mod.py").write_text("VALUE = 1\n", encoding="utf-8")
    Bytecode("2.1").compile(tmp_path)
    assert not list(tmp_path.rglob("*.pyc"))
    assert "no Python 2.1 to compile byte code with" in caplog.text


def test_layer_fingerprint_follows_its_byte_code(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastapi==0.165.0\n", encoding="utf-8")
    manifest = tmp_path / "precompiled.txt"
    manifest.write_text("fastapi/__init__.py\n", encoding="utf-8")
    arm = ["manylinux2014_aarch64"]

    def fingerprint(bytecode: Bytecode | None) -> str:
        return PipLayerBundler(requirements, platforms=arm, python_version="3.13", bytecode=bytecode).fingerprint

    plain, compiled = fingerprint(None), fingerprint(Bytecode("3.13", manifest))
    assert compiled != plain and fingerprint(Bytecode("3.13", manifest)) == compiled
    assert fingerprint(Bytecode("3.12", manifest)) != compiled
    manifest.write_text("fastapi/__init__.py\nfastapi/routing.py\n", encoding="utf-8")
    assert fingerprint(Bytecode("3.13", manifest)) != compiled
