"""Build the deployable zips of the pre- and post-annotation Lambdas.

Each zip holds `handler.py` at its root (handler `handler.lambda_handler`), the toolkit modules it
imports (plus the built-in label schemas), and its third-party dependencies installed for the
Lambda platform with `pip install --platform ... --only-binary=:all: --python-version ...
--target ...` (pydantic, pyyaml, aws-lambda-powertools; boto3 comes with the runtime).

Zips are deterministic: entries sorted, fixed timestamps and permissions, no `__pycache__`, so
the same sources give byte-identical zips and a deploy can skip unchanged code by comparing
hashes (`sha256()`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import toolkit
from toolkit.resources import resource_dir

TOOLKIT_DIR = Path(toolkit.__file__).resolve().parent
LAMBDAS_DIR = resource_dir("lambdas")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # earliest date a zip can hold

# Toolkit modules each handler needs (paths relative to toolkit/). Keep in step with the imports
# of lambdas/*/handler.py; tests/test_lambda_package.py imports each handler from its zip.
COMMON_MODULES = ["__init__.py", "py.typed", "models/", "schemas/"]
FUNCTIONS: dict[str, list[str]] = {
    "pre_annotation": [*COMMON_MODULES, "task_input.py"],
    "post_annotation": [*COMMON_MODULES, "answers.py", "consolidate.py"],
}
# Distributions installed into each zip; pinned to the versions this toolkit runs with so the
# Lambda behaves like the tests. pydantic-core comes along as pydantic's dependency.
DEPENDENCIES = ["pydantic", "pyyaml", "aws-lambda-powertools"]
# Never shipped: the runtime has boto3/botocore, and these are build leftovers.
EXCLUDED_TOP = {"bin", "boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil",
                "urllib3", "six.py"}


def pinned_requirements() -> list[str]:
    out = []
    for name in DEPENDENCIES:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def install_dependencies_into(target: Path, *, python_version: str, platform: str,
                              requirements: list[str] | None = None) -> None:
    """pip-install wheels for the Lambda platform into `target` (binary wheels only)."""
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--only-binary=:all:", "--implementation", "cp",
        "--platform", platform, "--python-version", python_version,
        "--target", str(target), *(requirements or pinned_requirements()),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"pip install for {platform} / Python {python_version} failed:\n"
                           f"{result.stderr.strip()[-2000:]}")


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
            continue
        yield path


def _entries(name: str, deps_dir: Path | None) -> dict[str, Path]:
    """Archive name -> source file, for one function."""
    handler = LAMBDAS_DIR / name / "handler.py"
    if not handler.is_file():
        raise FileNotFoundError(f"{handler} not found (package the Lambdas from a gtkit source checkout)")
    entries: dict[str, Path] = {"handler.py": handler}
    for item in FUNCTIONS[name]:
        src = TOOLKIT_DIR / item
        if item.endswith("/"):
            for path in _walk(src):
                entries[f"toolkit/{path.relative_to(TOOLKIT_DIR).as_posix()}"] = path
        else:
            entries[f"toolkit/{item}"] = src
    if deps_dir is not None:
        for path in _walk(deps_dir):
            rel = path.relative_to(deps_dir)
            if rel.parts[0] in EXCLUDED_TOP or rel.parts[0].split("-")[0] in EXCLUDED_TOP:
                continue
            entries.setdefault(rel.as_posix(), path)
    return entries


def write_zip(path: Path, entries: dict[str, Path]) -> None:
    """Deterministic zip: sorted names, fixed time and mode, fixed compression level."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for arcname in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3  # unix, so the mode bits above are honoured
            zf.writestr(info, entries[arcname].read_bytes(), compresslevel=9)
    os.replace(tmp, path)


def package_lambdas(
    out_dir: Path,
    *,
    python_version: str = "3.13",
    platform: str = "manylinux2014_x86_64",
    install_dependencies: bool = True,
) -> dict[str, Path]:
    """Build `<out_dir>/gtkit-pre-annotation.zip` and `gtkit-post-annotation.zip`.

    Returns {"pre_annotation": zip path, "post_annotation": zip path}. With
    `install_dependencies=False` the zips hold only our code (for tests, or a Lambda layer).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gtkit-lambda-") as tmp:
        deps_dir: Path | None = None
        if install_dependencies:
            deps_dir = Path(tmp) / "deps"
            install_dependencies_into(deps_dir, python_version=python_version, platform=platform)
        result = {}
        for name in FUNCTIONS:
            path = out_dir / f"gtkit-{name.replace('_', '-')}.zip"
            write_zip(path, _entries(name, deps_dir))
            result[name] = path
    return result


def sha256(path: Path) -> str:
    """Hex digest, for deploys that skip unchanged code (Lambda's CodeSha256 is base64 of this)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
