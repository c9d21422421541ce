"""Every `gtkit ...` command shown in README.md and docs/ parses: names and options exist.

The commands are not run (some need AWS); click parses each one exactly as the shell would hand
it over, so a renamed option or command breaks this test instead of a reader's first try.
"""

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from toolkit.cli import app

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
COMMAND = re.compile(r"^\s*(?:\$\s+)?(?:\.venv/bin/|\$\(BIN\)/)?(gtkit\s.*)$")


def documented_commands():
    for doc in DOCS:
        in_code = False
        pending = ""
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
            if line.lstrip().startswith("```"):
                # shell blocks only: untagged blocks hold diagrams and file layouts
                in_code = not in_code and line.strip().removeprefix("```") in SHELL_BLOCKS
                continue
            if not in_code:
                continue
            if pending:
                pending += " " + line.strip()
            else:
                match = COMMAND.match(line)
                if not match:
                    continue
                pending, start = match.group(1), number
            if pending.endswith("\\"):
                pending = pending[:-1]
                continue
            yield pytest.param(pending.split("#")[0].strip(), id=f"{doc.name}:{start}")
            pending = ""


def is_group(command: Any) -> bool:
    # typer ships its own click: test by behaviour, not by click's classes
    return hasattr(command, "list_commands")


def resolve(args: list[str]) -> tuple[Any, list[str]]:
    command = typer.main.get_command(app)
    while is_group(command) and args:
        sub = command.get_command(command.context_class(command), args[0])
        if sub is None:
            break
        command, args = sub, args[1:]
    return command, args


@pytest.mark.parametrize("line", list(documented_commands()))
def test_documented_command_parses(line):
    words = shlex.split(line)[1:]
    # the command ends at the first redirection, pipe or command separator
    words = words[: next((i for i, w in enumerate(words) if w.startswith(("|", ">", "2>", "&&", ";"))), len(words))]
    command, rest = resolve(words)
    assert not is_group(command), f"{line!r}: unknown or incomplete command"
    with command.make_context(command.name, rest, resilient_parsing=False) as ctx:
        assert ctx.command is command


def test_docs_show_commands():
    assert len(list(documented_commands())) >= 30


@pytest.mark.parametrize("line, error", [
    ("gtkit manifest build x --output y", "No such option"),
    ("gtkit manifest bild x", "unknown or incomplete command"),
    ("gtkit export --labels", "requires an argument"),
    ("gtkit merge --labels x --out y", "Missing parameter: feedback"),
])
def test_a_wrong_command_is_caught(line, error):
    with pytest.raises(Exception, match=error):
        test_documented_command_parses(line)


def help_examples():
    """`gtkit ...` lines in every command's --help text (the docstring examples)."""
    def walk(command: Any, path: str):
        if is_group(command):
            ctx = command.context_class(command)
            for name in command.list_commands(ctx):
                yield from walk(command.get_command(ctx, name), f"{path} {name}")
            return
        text = (command.help or "").replace("\\\n", " ")
        for line in text.splitlines():
            match = COMMAND.match(line.replace("Example:", "").strip())
            if match:
                yield pytest.param(" ".join(match.group(1).split()), id=path.strip())

    yield from walk(typer.main.get_command(app), "")


@pytest.mark.parametrize("line", list(help_examples()))
def test_help_example_parses(line):
    test_documented_command_parses(line)


def test_every_command_has_a_help_example():
    examples = {p.id for p in help_examples()}
    def leaves(command: Any, path: str):
        if is_group(command):
            ctx = command.context_class(command)
            for name in command.list_commands(ctx):
                yield from leaves(command.get_command(ctx, name), f"{path} {name}")
        else:
            yield path.strip()
    missing = sorted(set(leaves(typer.main.get_command(app), "")) - examples)
    assert not missing, f"commands without a runnable example in --help: {missing}"
