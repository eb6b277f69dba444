"""Docker-free asset bundling: the code asset is a copy of two packages, the layer a cross-platform pip install.

Both implement ``ILocalBundling``; CDK calls ``try_bundle`` before it would ever start Docker, and the
Docker image given next to them is a placeholder that is never pulled. When a synth skips bundling
(context ``aws:cdk:bundling-stacks`` = ``[]``, as the tests do) neither runs.

Both can ship byte code (``Bytecode``): Lambda's code and layers are read-only, so a module without a
usable ``.pyc`` is compiled again at every cold start (the datasets function's import: 571 ms compiling
against 249 ms from byte code on a 2-core machine, ``benchmarks/bench_cold_start.py --from-source``). The ``.pyc`` files
are *checked-hash* ones (PEP 552): valid while the source's hash matches, whatever the timestamps the
asset's zip gives the files, and compiled by the runtime's own Python version (another version's files
would be ignored).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, BundlingOutput, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

logger = logging.getLogger(__name__)

#: Placeholder required by BundlingOptions; the local bundlers always succeed or fail loudly, so it is never used.
_UNUSED_IMAGE = DockerImage.from_registry("scratch-not-used")

#: Beside a layer's requirements.txt: the pins of its whole resolved set (pip -c), and what is installed
#: after it with --no-deps (see ``PipLayerBundler``).
CONSTRAINTS_FILE = "constraints.txt"
NO_DEPS_REQUIREMENTS_FILE = "requirements-no-deps.txt"

#: Left out of the code asset: build and test by-products that Lambda never imports.
_CODE_IGNORE = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests")


#: Run by the runtime's interpreter: compile the files listed in argv[2] (paths under argv[1]), checked-hash.
_COMPILE = """
import py_compile, sys
root, listing = sys.argv[1], sys.argv[2]
for relative in open(listing, encoding="utf-8").read().split():
    py_compile.compile(
        f"{root}/{relative}", doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
    )
"""


class Bytecode:
    """Compiles a bundle's modules for the Lambda runtime's Python: every module, or those of ``manifest``.

    ``manifest`` lists paths relative to a layer's ``python/`` folder (``pydantic/main.py``), one per line:
    a layer ships byte code only for the modules its functions load (compiling whole layers would not fit
    Lambda's size limit); paths the bundle does not hold are skipped. The compiler must be the runtime's
    Python version (``interpreter``); without one the bundle ships without byte code and a warning says
    so (the functions then compile at cold start).
    """

    def __init__(self, python_version: str, manifest: Path | None = None) -> None:
        self.python_version = python_version
        self.manifest = manifest

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"checked-hash {self.python_version}".encode())
        if self.manifest is not None:
            digest.update(self.manifest.read_bytes())
        return digest.hexdigest()

    def interpreter(self) -> str | None:
        """The first of ``$FLOWLESS_BYTECODE_PYTHON``, the bundling Python, ``python<version>`` on ``PATH`` and
        pyenv's ``<version>.*`` installs that runs as the runtime's version."""
        pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
        candidates = [
            os.environ.get("FLOWLESS_BYTECODE_PYTHON"),
            sys.executable,
            shutil.which(f"python{self.python_version}"),
            *(str(path) for path in sorted(pyenv.glob(f"{self.python_version}.*/bin/python{self.python_version}"))),
        ]
        for candidate in candidates:
            if candidate and self._runs_as_runtime(candidate):
                return candidate
        return None

    def _runs_as_runtime(self, python: str) -> bool:
        try:
            probe = subprocess.run(
                [python, "-c", "import sys; print('{}.{}'.format(*sys.version_info[:2]))"],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return probe.returncode == 0 and probe.stdout.strip() == self.python_version

    def compile(self, root: Path) -> None:
        python = self.interpreter()
        if python is None:
            logger.warning(
                "no Python %s to compile byte code with: %s ships without it (its functions compile at cold "
                "start)",
                self.python_version,
                root,
            )
            return
        if self.manifest is None:
            files = sorted(str(path.relative_to(root)) for path in root.rglob("*.py"))
        else:
            listed = self.manifest.read_text(encoding="utf-8").split()
            files = [relative for relative in listed if (root / relative).is_file()]
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as listing:
            listing.write("\n".join(files))
            listing.flush()
            logger.info("compiling %d modules under %s with %s", len(files), root, python)
            subprocess.run([python, "-c", _COMPILE, str(root), listing.name], check=True)


@jsii.implements(ILocalBundling)
class PackageCopyBundler:
    """Copies whole Python packages (``shared``, ``functions``) from the repository into the asset root, then
    compiles them (``bytecode``), when given."""

    def __init__(self, source_dir: Path, packages: Sequence[str], *, bytecode: Bytecode | None = None) -> None:
        self._source_dir = source_dir
        self._packages = tuple(packages)
        self._bytecode = bytecode

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        for package in self._packages:
            shutil.copytree(
                self._source_dir / package,
                Path(output_dir) / package,
                ignore=shutil.ignore_patterns(*_CODE_IGNORE),
                dirs_exist_ok=True,
            )
        if self._bytecode is not None:
            self._bytecode.compile(Path(output_dir))
        return True


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Installs a requirements file into ``<out>/python`` as wheels built for the Lambda platform.

    ``--platform``/``--only-binary`` make pip choose prebuilt manylinux wheels for the target CPU and
    CPython version whatever the host is, so nothing is compiled and no container is needed; several
    platforms widen the choice (newer wheels are often only tagged ``manylinux_2_28``).
    ``--no-compile``: pip would compile with the bundling Python (not the runtime's) and timestamp-checked
    ``.pyc`` files, stale once the asset's zip fixes the timestamps; ``bytecode`` compiles instead.
    ``no_deps``: install exactly the listed distributions (the file must then list the whole closure);
    for packages whose declared dependencies are not needed at run time and would not fit in Lambda.
    ``no_deps_requirements``: a second file installed after ``requirements`` with ``--no-deps``, for the
    few distributions of a resolved layer whose declared dependencies are partly never imported (the
    needed ones go in ``requirements``).
    ``prune``: glob patterns under ``python/`` removed after the install (files shipped in a wheel that
    the service never reads), so the layer stays within Lambda's size limit.
    ``bytecode``: compiles (after the pruning) the modules its manifest lists.
    """

    def __init__(
        self,
        requirements: Path,
        *,
        platforms: Sequence[str],
        python_version: str,
        constraints: Path | None = None,
        no_deps: bool = False,
        no_deps_requirements: Path | None = None,
        prune: Sequence[str] = (),
        bytecode: Bytecode | None = None,
    ) -> None:
        if not platforms:
            raise ValueError("at least one pip platform is needed")
        self._requirements = requirements
        self._constraints = constraints
        self._no_deps_requirements = no_deps_requirements
        self._prune = tuple(prune)
        self._bytecode = bytecode
        self._pip_args = (
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--no-compile",
            *(arg for platform in platforms for arg in ("--platform", platform)),
            "--implementation",
            "cp",
            "--python-version",
            python_version,
            "--only-binary=:all:",
            *(["--no-deps"] if no_deps else []),
        )

    @property
    def fingerprint(self) -> str:
        """Changes exactly when the layer's content would: the pins, the pip target or what is pruned."""
        digest = hashlib.sha256(self._requirements.read_bytes())
        if self._constraints is not None:
            digest.update(self._constraints.read_bytes())
        if self._no_deps_requirements is not None:
            digest.update(b"\0no-deps\0" + self._no_deps_requirements.read_bytes())
        digest.update("\0".join(self._pip_args).encode())
        if self._prune:
            digest.update(("\0prune\0" + "\0".join(self._prune)).encode())
        if self._bytecode is not None:
            digest.update(("\0bytecode\0" + self._bytecode.fingerprint).encode())
        return digest.hexdigest()

    def _pip(self, target: Path, requirements: Path, *extra: str) -> None:
        command = [
            sys.executable,
            "-m",
            "pip",
            *self._pip_args,
            *extra,
            "--target",
            str(target),
            *(["-c", str(self._constraints)] if self._constraints is not None else []),
            "-r",
            str(requirements),
        ]
        logger.info("building layer: %s", " ".join(command))
        subprocess.run(command, check=True)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        target = Path(output_dir) / "python"
        self._pip(target, self._requirements)
        if self._no_deps_requirements is not None:
            self._pip(target, self._no_deps_requirements, *([] if "--no-deps" in self._pip_args else ["--no-deps"]))
        for pattern in self._prune:
            matches = sorted(target.glob(pattern))
            if not matches:
                # A pattern that matches nothing means a pin moved the file: fail rather than ship it.
                raise FileNotFoundError(f"prune pattern {pattern!r} matched nothing under {target}")
            for path in matches:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        if self._bytecode is not None:
            self._bytecode.compile(target)
        return True


def package_code(source_dir: Path, packages: Sequence[str], *, bytecode: Bytecode | None = None) -> lambda_.Code:
    """The functions' code asset: ``packages`` copied from ``source_dir`` (and compiled, with ``bytecode``),
    hashed by what was copied."""
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=_UNUSED_IMAGE,
            local=PackageCopyBundler(source_dir, packages, bytecode=bytecode),
            output_type=BundlingOutput.NOT_ARCHIVED,
        ),
    )


def layer_code(
    requirements: Path,
    *,
    platforms: Sequence[str],
    python_version: str,
    no_deps: bool = False,
    prune: Sequence[str] = (),
    bytecode: Bytecode | None = None,
) -> lambda_.Code:
    """A layer asset installed from ``requirements`` (with ``constraints.txt`` beside it, when there is one),
    then from ``requirements-no-deps.txt`` beside it without dependencies, when there is one.

    Hashed by the pins and pip's target (not by the installed files), so unchanged pins reuse the
    bundle already in cdk.out instead of running pip again.
    """
    constraints = requirements.parent / CONSTRAINTS_FILE
    no_deps_requirements = requirements.parent / NO_DEPS_REQUIREMENTS_FILE
    bundler = PipLayerBundler(
        requirements,
        platforms=platforms,
        python_version=python_version,
        constraints=constraints if constraints.exists() else None,
        no_deps=no_deps,
        no_deps_requirements=no_deps_requirements if no_deps_requirements.exists() else None,
        prune=prune,
        bytecode=bytecode,
    )
    return lambda_.Code.from_asset(
        str(requirements.parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundler.fingerprint,
        bundling=BundlingOptions(
            image=_UNUSED_IMAGE,
            local=bundler,
            output_type=BundlingOutput.NOT_ARCHIVED,
        ),
    )
