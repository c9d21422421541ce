"""Build the deployable zips of the pre- and post-annotation Lambdas.

Each zip holds `handler.py` at its root (handler `handler.lambda_handler`), the toolkit modules it
really imports, the package data of those packages (the built-in label schemas), and its
third-party dependencies installed for the Lambda platform with `pip install --platform ...
--only-binary=:all: --python-version ... --target ...` (pydantic, pyyaml, aws-lambda-powertools;
boto3 comes with the runtime).

Which toolkit files go in is computed, never listed: `import_closure` walks the `import` / `from`
statements of the handler and of every toolkit module it reaches (relative imports and imports
inside functions included, `if TYPE_CHECKING:` blocks excluded). A toolkit module that imports a
third-party package the zip does not carry and the runtime does not have stops the build with the
chain of modules that leads to it, instead of a `ModuleNotFoundError` at the first invocation.

Zips are deterministic: entries sorted, fixed timestamps and permissions, no `__pycache__`, so
the same sources give byte-identical zips and a deploy can skip unchanged code by comparing
hashes (`sha256()`).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import toolkit
from toolkit.errors import GtkitError
from toolkit.resources import PACKAGE_DIR, resource_dir

TOOLKIT_DIR = Path(toolkit.__file__).resolve().parent
LAMBDAS_DIR = resource_dir("lambdas")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # earliest date a zip can hold

# One folder per function under lambdas/, each with a handler.py.
FUNCTIONS = ("pre_annotation", "post_annotation")
# Distributions installed into each zip; pinned to the versions this toolkit runs with so the
# Lambda behaves like the tests. pydantic-core comes along as pydantic's dependency.
DEPENDENCIES = ["pydantic", "pyyaml", "aws-lambda-powertools"]
# Import names the Lambda Python runtime provides: boto3, botocore and their own dependencies.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"})
# Never shipped: the runtime has them (pip installs them as dependencies), and build leftovers.
EXCLUDED_TOP = {*RUNTIME_PROVIDED, "bin", "python_dateutil", "six.py"}
# toolkit/_data/ holds the non-Python resources of a wheel install (static/, lambdas/, ...), not package data.
RESOURCE_COPIES = PACKAGE_DIR / "_data"


class PackagingError(GtkitError, RuntimeError):
    """pip could not install the Lambdas' dependencies for the runtime's platform."""


class ClosureError(GtkitError, RuntimeError):
    """A handler whose imports cannot be satisfied inside its zip; the message names the import chain."""


@dataclass
class Closure:
    """What one handler needs: module name -> source, archive name -> file, third-party import names."""

    modules: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    third_party: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Import:
    name: str  # absolute dotted name
    candidates: tuple[str, ...]  # `from X import a, b`: X.a, X.b if they are modules
    optional: bool  # inside `try: ... except ImportError`


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _catches_import_error(node: ast.Try) -> bool:
    names = set()
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {k.id for k in kinds if isinstance(k, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def _imports(source: Path, module: str, is_package: bool) -> Iterator[_Import]:
    """Every import `source` can execute, wherever it stands (functions, branches), except type-only ones."""
    tree = ast.parse(source.read_bytes(), filename=str(source))
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST, optional: bool) -> Iterator[_Import]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from visit(child, optional)
            return
        if isinstance(node, ast.Try | ast.TryStar):
            guarded = optional or _catches_import_error(node)
            for child in node.body:
                yield from visit(child, guarded)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                yield from visit(child, optional)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _Import(alias.name, (), optional)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts) or not parts:
                    raise ClosureError(f"{source}: relative import beyond the top-level package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name != "__future__":
                yield _Import(name, tuple(f"{name}.{a.name}" for a in node.names if a.name != "*"), optional)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, optional)

    yield from visit(tree, False)


def import_closure(handler: Path, package_dir: Path, *, allowed: set[str] | frozenset[str]) -> Closure:
    """The modules and package data `handler` needs from `package_dir` (and from its own folder).

    `allowed`: third-party import names the zip will carry; the runtime's (`RUNTIME_PROVIDED`) are
    always allowed. Anything else imported outside a `try/except ImportError` raises ClosureError.
    """
    handler, package_dir = Path(handler).resolve(), Path(package_dir).resolve()
    package, root, local_dir = package_dir.name, package_dir.parent, handler.parent

    def locate(name: str) -> tuple[Path, str, bool] | None:
        """(file, archive name, is_package) of a first-party module, or None if `name` is not ours."""
        top = name.split(".")[0]
        if top == package:
            base, where = root, root
        elif (local_dir / f"{top}.py").is_file() or (local_dir / top / "__init__.py").is_file():
            base, where = local_dir, local_dir
        else:
            return None
        path = base.joinpath(*name.split("."))
        if (path / "__init__.py").is_file():
            return path / "__init__.py", (path / "__init__.py").relative_to(where).as_posix(), True
        if path.with_suffix(".py").is_file():
            return path.with_suffix(".py"), path.with_suffix(".py").relative_to(where).as_posix(), False
        return None

    closure = Closure(files={"handler.py": handler})
    parents: dict[str, str] = {}

    def chain(name: str) -> str:
        names = [name]
        while names[-1] in parents:
            names.append(parents[names[-1]])
        return " -> ".join(reversed(names))

    queue: deque[tuple[str, Path, bool]] = deque([("handler", handler, False)])
    while queue:
        current, source, is_package = queue.popleft()
        for imp in _imports(source, current, is_package):
            parts = imp.name.split(".")
            top = parts[0]
            first_party = top == package or locate(top) is not None
            if not first_party:
                if top in sys.stdlib_module_names:
                    continue
                if top in allowed or top in RUNTIME_PROVIDED:
                    closure.third_party.add(top)
                elif not imp.optional:
                    carried = ", ".join(sorted(set(allowed) | RUNTIME_PROVIDED))
                    raise ClosureError(
                        f"{chain(current)} imports {imp.name}, which the Lambda zip does not carry (its "
                        f"dependencies and the runtime provide: {carried}); add the distribution to "
                        "toolkit.aws.lambda_package.DEPENDENCIES or keep the import out of the Lambda's modules")
                continue
            # `import a.b.c` runs a/__init__, a/b/__init__ and a/b/c; `from a import b` may name module a.b.
            wanted = [".".join(parts[: i + 1]) for i in range(len(parts))]
            found = [(n, locate(n)) for n in wanted]
            missing = [n for n, hit in found if hit is None]
            if missing and not imp.optional:
                raise ClosureError(f"{chain(current)} imports {imp.name}, but there is no module {missing[0]}")
            found += [(n, hit) for n in imp.candidates if (hit := locate(n)) is not None]
            for name, hit in found:
                if hit is None or name in closure.modules:
                    continue
                path, arcname, pkg = hit
                closure.modules[name] = path
                closure.files[arcname] = path
                parents[name] = current
                queue.append((name, path, pkg))
    for arcname, path in _package_data(package_dir, set(closure.modules)):
        closure.files[arcname] = path
    return closure


def _package_data(package_dir: Path, modules: set[str]) -> Iterator[tuple[str, Path]]:
    """Non-Python files of the packages in `modules` (e.g. toolkit/schemas/*.yaml belongs to `toolkit`)."""
    root = package_dir.parent
    for path in _walk(package_dir):
        if path.suffix == ".py" or path.is_relative_to(RESOURCE_COPIES):
            continue
        owner = path.parent
        while owner != package_dir and not (owner / "__init__.py").is_file():
            owner = owner.parent
        if ".".join(owner.relative_to(root).parts) in modules:
            yield path.relative_to(root).as_posix(), path


def _requirement_name(spec: str) -> str | None:
    """Distribution name of a `Requires-Dist` line, None for extras-only requirements."""
    if re.search(r"\bextra\s*==", spec):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
    return match.group(0) if match else None


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_modules(deps_dir: Path | None) -> set[str]:
    """Top-level import names the zip's dependencies provide.

    From the directory pip installed them into, or (for zips without dependencies) from the
    installed distributions of DEPENDENCIES and everything they require.
    """
    if deps_dir is not None:
        names = set()
        for item in Path(deps_dir).iterdir():
            if item.name.endswith((".dist-info", ".data")) or item.name in ("bin", "__pycache__"):
                continue
            if item.is_dir():
                names.add(item.name)
            elif item.suffix in (".py", ".so", ".pyd"):
                names.add(item.name.split(".")[0])
        return names - EXCLUDED_TOP
    by_dist: dict[str, set[str]] = {}
    for top, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(_normalise(dist), set()).add(top)
    names: set[str] = set()
    todo, seen = [_normalise(d) for d in DEPENDENCIES], set()
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        names |= by_dist.get(dist, set())
        try:
            requires = importlib.metadata.requires(dist) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_normalise(n) for n in map(_requirement_name, requires) if n]
    return names - EXCLUDED_TOP


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
        raise PackagingError(f"pip install for {platform} / Python {python_version} failed:\n"
                             f"{result.stderr.strip()[-2000:]}")


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
            continue
        yield path


def closure_of(name: str, deps_dir: Path | None) -> Closure:
    handler = LAMBDAS_DIR / name / "handler.py"
    if not handler.is_file():
        raise FileNotFoundError(f"{handler} not found (package the Lambdas from a gtkit source checkout)")
    return import_closure(handler, TOOLKIT_DIR, allowed=dependency_modules(deps_dir))


def _entries(name: str, deps_dir: Path | None) -> dict[str, Path]:
    """Archive name -> source file, for one function."""
    entries = dict(closure_of(name, deps_dir).files)
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
    for name in FUNCTIONS:
        closure_of(name, None)  # fail on an unshippable import before spending time in pip
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
