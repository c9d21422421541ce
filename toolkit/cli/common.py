"""Options and output helpers shared by every command."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from toolkit.awsclient.errors import aws_error
from toolkit.errors import GtkitError
from toolkit.storage import Mirror, Storage

# Human-facing output goes to stderr so stdout stays clean for pipes.
console = Console(stderr=True)

MirrorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--mirror",
        help="Resolve reads under an s3:// prefix to a local directory: s3://BUCKET/PREFIX=DIR. Repeatable.",
        metavar="S3PREFIX=DIR",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary table.")]


def make_storage(mirrors: Iterable[str] | None) -> Storage:
    """The command's Storage; a malformed --mirror is a MirrorSpecError (exit 2, like a usage error)."""
    return Storage(mirrors or ())


def say(message: str) -> None:
    """Plain progress/status line on stderr (never Rich markup: AWS messages contain brackets)."""
    console.print(message, highlight=False, markup=False)


def error_text(exc: BaseException) -> str:
    """What the user reads for `exc`: the one-line AWS explanation when AWS is behind it, else its
    message, followed by the error's `hint` (what to do, in CLI terms) when it has one."""
    aws = aws_error(exc)
    if aws is not None:
        return str(aws)
    hint = exc.hint if isinstance(exc, GtkitError) else None
    return f"{exc} {hint}" if hint else str(exc)


def fail(message: str | BaseException, code: int = 1) -> typer.Exit:
    """Print an error (an exception is explained with `error_text`) and return an Exit to raise."""
    text = error_text(message) if isinstance(message, BaseException) else message
    # soft_wrap: one logical line stays one line in logs and pipes, however narrow the terminal.
    console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def parse_tags(tags: list[str] | None) -> dict[str, str]:
    """Repeated `--tag KEY=VALUE` options as a dict."""
    out = {}
    for item in tags or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--tag")
        out[key] = value
    return out


def show_summary(title: str, summary: dict[str, object]) -> None:
    """A status summary as a two-column table on stderr (keys with None values left out)."""
    table = Table(show_header=False, title=title)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in summary.items():
        if value is not None:
            table.add_row(key.replace("_", " "), escape(str(value)))
    console.print(table)


__all__ = ["Mirror", "MirrorOpt", "QuietOpt", "console", "error_text", "fail", "make_storage",
           "parse_tags", "say", "show_summary"]
