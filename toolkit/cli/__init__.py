"""`gtkit`: a thin command line over the toolkit library.

Each module in this package adds its commands through `register(app)`, so a command group lives
next to nothing but itself. Modules are discovered, not listed, to keep this file stable.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer
from typer.core import TyperGroup

from toolkit import __version__
from toolkit.aws.errors import aws_error
from toolkit.errors import GtkitError


class GtkitGroup(TyperGroup):
    """The root command: the one place where the library's errors of any command become one line on
    stderr and an exit code: a GtkitError (its `exit_code`), a missing file, an AWS failure (exit 1).
    Commands catch only what they explain further (a prefix, another exit code)."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if isinstance(exc, GtkitError | FileNotFoundError):
                code = exc.exit_code if isinstance(exc, GtkitError) else 1
            elif aws_error(exc) is not None:
                code = 1
            else:
                raise
            from toolkit.cli.common import fail

            raise fail(exc, code) from None


app = typer.Typer(
    cls=GtkitGroup,
    name="gtkit",
    help="Audio and video segmentation labeling on Amazon SageMaker Ground Truth.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gtkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Build manifests, preview and run labeling jobs, consolidate, export training data."""


def _register_commands() -> None:
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_") or module.name == "common":
            continue
        mod = importlib.import_module(f"{__name__}.{module.name}")
        register = getattr(mod, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    from toolkit.storage.tempfiles import install_signal_handlers

    install_signal_handlers()  # SIGTERM/SIGHUP clean up temp files and scratch; dead runs' scratch goes
    app()
