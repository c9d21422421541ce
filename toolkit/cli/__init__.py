"""`gtkit`: a thin command line over the toolkit library.

Each module in this package adds its commands through `register(app)`, so a command group lives
next to nothing but itself. Modules are discovered, not listed, to keep this file stable.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import click
import typer
import typer.rich_utils
from rich.table import Table
from typer.core import TyperArgument, TyperGroup, TyperOption

from toolkit import __version__
from toolkit.awsclient.errors import aws_error
from toolkit.errors import GtkitError


class _Flag(TyperOption):
    """A flag takes no value: no `<bool>` in its help row."""

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None if self.is_flag or self.count else super().display_type_rich(ctx)


class _Argument(TyperArgument):
    """Usage line as click and man pages write it: `INPUTS...`, `[NAME]`, not `{inputs}...`; in
    the Arguments panel the name says it all (its help says what it is), no `<list[str]>`."""

    def _usage_display_name(self) -> str:
        name = self.metavar or self.name.upper()
        name = name if self.required else f"[{name}]"
        return f"{name}..." if self.nargs != 1 and not name.endswith("...") else name

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None


class _HelpTable(Table):
    """The tables of `--help` (options, arguments, commands). typer lays an option out over seven
    columns (required, long, short, --no-long, --no-short, type, help) and rich shrinks them all on
    a narrow terminal: at 80 columns names came out cut ("--sidecar-pref…") beside a help column a
    few words wide. Here a `--no-x` name goes under its `--x`, names never shrink, the type wraps
    within 14 columns, and the help column takes the rest, folding a word longer than itself."""

    def add_row(self, *cells, **kwargs):  # type: ignore[no-untyped-def]
        cells = list(cells)
        if len(cells) in (6, 7):  # an options/arguments row: [required,] long, short, no-long, no-short, type, help
            lead = cells[:-6]
            long, short, no_long, no_short, kind, help_ = cells[-6:]
            cells = [*lead, _stack(long, no_long), _stack(short, no_short), kind, help_]
        for part in getattr(cells[-1], "renderables", []):  # the help: a Columns of Texts
            if hasattr(part, "overflow"):
                part.overflow = "fold"
        if not self.columns:
            last = len(cells) - 1
            for index in range(len(cells)):
                if index == last:
                    self.add_column(ratio=1, overflow="fold")
                elif index == last - 1 and last >= 3:
                    self.add_column(max_width=14, overflow="fold")
                else:
                    self.add_column(no_wrap=True)
        super().add_row(*cells, **kwargs)


def _stack(top, bottom):  # type: ignore[no-untyped-def]
    """Two cells' names in one cell, one name a line (typer joins a cell's names with commas)."""
    from rich.text import Text

    if not isinstance(top, Text) or not isinstance(bottom, Text):
        return top
    names = [*top.split(","), *bottom.split(",")]
    return Text("\n").join([n for n in names if n.plain])


# typer builds these tables itself (typer.rich_utils._print_options_panel / _print_commands_panel)
# with rich's Table as a module global: the one place to set their column rules.
typer.rich_utils.Table = _HelpTable  # type: ignore[misc]

_LIST_ITEM = re.compile(r"^\s*([-*]|\d+[.)])\s")


def reflow(help_text: str) -> str:
    """Docstring help for rich's wrapping: each prose paragraph becomes one line (rich wraps it to
    the terminal), while a paragraph with indented lines (an example command) and list items keep
    their line breaks, so examples stay intact instead of being re-wrapped at the docstring's width."""
    import inspect

    out = []
    for para in inspect.cleandoc(help_text).split("\n\n"):
        lines = para.split("\n")
        if any(line.startswith((" ", "\t")) for line in lines) or para.startswith("\b"):
            out.append(para)
            continue
        joined: list[str] = []
        for line in lines:
            if joined and not _LIST_ITEM.match(line):
                joined[-1] += " " + line.strip()
            else:
                joined.append(line.strip())
        out.append("\n".join(joined))
    return "\n\n".join(out)


def polish(command: click.Command) -> None:
    """One pass over the built command tree: flags shown as flags, click-style usage, reflowed help."""
    if command.help:
        command.help = reflow(command.help)
    for param in command.params:
        if type(param) is TyperOption and param.is_flag:
            param.__class__ = _Flag
        elif type(param) is TyperArgument:
            param.__class__ = _Argument
            if param.metavar is None:  # the panel's name: INPUTS... like the usage line
                param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
    make_help_option = command.get_help_option

    def help_option(ctx: click.Context) -> click.Option | None:
        option = make_help_option(ctx)
        if type(option) is TyperOption:
            option.__class__ = _Flag
        return option

    command.get_help_option = help_option  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        polish(sub)


class GtkitGroup(TyperGroup):
    """The root command: the one place where the library's errors of any command become one line on
    stderr and an exit code (`exit_code_of`). No command catches a library error: what one needs
    beyond the line (another exit code, a hint, every problem listed) is said on the error class
    (toolkit.errors)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        polish(self)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except Exception as exc:
            code = exit_code_of(exc)
            if code is None:
                raise
            from toolkit.cli.common import fail

            raise fail(exc, code) from None


def exit_code_of(exc: BaseException) -> int | None:
    """The exit code of an error the CLI explains in one line, None for a bug (the traceback shows).

    A GtkitError: its class's `exit_code`. A missing file, or an operating-system error on a named
    file (permission denied, a directory where a file was expected): 1. An AWS failure: 1."""
    if isinstance(exc, GtkitError):
        return exc.exit_code
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, OSError) and exc.filename is not None):
        return 1
    return 1 if aws_error(exc) is not None else None


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
