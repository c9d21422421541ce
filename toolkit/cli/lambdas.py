"""`gtkit lambdas package`: build the pre/post-annotation Lambda zips."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import console

lambdas_app = typer.Typer(help="Ground Truth pre/post-annotation Lambdas.", no_args_is_help=True)


@lambdas_app.command("package")
def package(
    out: Annotated[Path, typer.Option("--out", help="Directory for the zips.")] = Path("dist/lambdas"),
    python_version: Annotated[str, typer.Option("--python-version", help="Lambda runtime Python.")] = "3.13",
    platform: Annotated[str, typer.Option("--platform", help="pip platform tag of the runtime.")] = (
        "manylinux2014_x86_64"),
    no_deps: Annotated[bool, typer.Option("--no-deps", help="Only our code (no pip install).")] = False,
) -> None:
    """Build gtkit-pre-annotation.zip and gtkit-post-annotation.zip (deterministic).

    Handler plus the toolkit modules it imports, and its dependencies built for the Lambda platform
    (pip --platform, needs PyPI). Byte-identical zips for identical inputs.

    Example: gtkit lambdas package --out dist/lambdas
    """
    from toolkit.aws.lambda_package import package_lambdas, sha256

    # pip failing (PackagingError) or an import the zip cannot carry (ClosureError): the root command's one line
    zips = package_lambdas(out, python_version=python_version, platform=platform, install_dependencies=not no_deps)
    for name, path in zips.items():
        size = path.stat().st_size / 2**20
        console.print(f"{name}: {path} ({size:.1f} MiB, sha256 {sha256(path)[:16]}...)", highlight=False)
    console.print("handler: handler.lambda_handler, runtime python" + python_version, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(lambdas_app, name="lambdas")
