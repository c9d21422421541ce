"""Issue 20: `--help` reads well at 80 columns: flags as flags, click-style usage, prose reflowed to
the terminal, example commands intact. `gtkit manifest build --help` is also a golden file
(regenerate: GTKIT_UPDATE_GOLDEN=1 pytest tests/test_cli_help.py)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from typer.testing import CliRunner

from toolkit.cli import app, reflow

GOLDEN = Path(__file__).parent / "fixtures" / "cli" / "manifest-build-help.txt"


def commands() -> list[tuple[list[str], Any]]:
    out = []

    def walk(command: Any, path: list[str]) -> None:
        out.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def help_text(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=lambda p: " ".join(p) or "gtkit")
def test_help_at_80_columns(path):
    text = help_text(path)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "<bool>" not in text  # a flag takes no value
    assert "…" not in text  # nothing cut short to fit: names whole, long words folded
    usage = next(line for line in lines if "Usage:" in line)
    assert "{" not in usage and "}" not in usage
    command = dict((tuple(p), c) for p, c in commands())[tuple(path)]
    # Example commands (indented docstring lines) come out whole, one line each.
    shown = {line.strip() for line in lines}
    for line in inspect.cleandoc(command.help or "").splitlines():
        if line.startswith(" "):
            assert line.strip() in shown, f"example line re-wrapped: {line.strip()!r}"


def test_usage_names_arguments_as_click_does():
    usage = next(line for line in help_text(["manifest", "build"]).splitlines() if "Usage:" in line)
    assert usage.split() == ["Usage:", "gtkit", "manifest", "build", "[OPTIONS]", "INPUT..."]


def assert_golden(text: str, name: str) -> None:
    """`text` is the golden file `name` (GTKIT_UPDATE_GOLDEN=1 rewrites it instead)."""
    golden = GOLDEN.with_name(name)
    if os.environ.get("GTKIT_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_reflow_joins_prose_and_keeps_examples_and_lists():
    text = "Title line.\n\nProse that was\nwrapped by hand.\n- item one\n- item two\n\n    gtkit x \\\n        --y z"
    assert reflow(text) == ("Title line.\n\nProse that was wrapped by hand.\n- item one\n- item two\n\n"
                            "    gtkit x \\\n        --y z")


def test_manifest_build_help_says_csv_and_matches_the_golden():
    text = help_text(["manifest", "build"])
    assert "CSV when" in text and ".csv" in text
    assert_golden(click.unstyle(text), GOLDEN.name)


def test_serve_user_reset_password_help_matches_the_golden():
    """The operator's reset link: what it is, that it works once, and a runnable example."""
    text = help_text(["serve", "user", "reset-password"])
    assert "single-use password-reset link" in text and "gtkit serve user reset-password ann@example.org" in text
    assert_golden(click.unstyle(text), "serve-user-reset-password-help.txt")


def test_serve_user_unlink_sso_help_matches_the_golden():
    """The operator's Unlink SSO: what it removes, that sessions end, --issuer, a runnable example."""
    text = help_text(["serve", "user", "unlink-sso"])
    assert "sessions end" in text and "--issuer" in text and "gtkit serve user unlink-sso ann@example.org" in text
    assert_golden(click.unstyle(text), "serve-user-unlink-sso-help.txt")


def test_export_help_has_the_trust_options_and_matches_the_golden():
    """`gtkit export --help`: the filters for training on what you trust, the worker report among them."""
    text = click.unstyle(help_text(["export"]))
    for flag in ("--worker-report", "--min-worker-f1", "--default-worker-f1", "--quality-weights", "--id-key"):
        assert flag in text
    assert "--worker-report workers.json" in text
    assert_golden(text, "export-help.txt")
