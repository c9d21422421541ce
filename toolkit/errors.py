"""The one error base of gtkit, and the problems it carries.

Every error the library raises for bad input or a refused operation is a `GtkitError` (classes keep
their own names, and their `ValueError` / `FileNotFoundError` / `RuntimeError` bases where callers
catch those). The CLI turns any of them into one line on stderr and `exit_code`, in one place
(`toolkit.cli.GtkitGroup`, the line from `toolkit.cli.common.error_text`); no command catches
them. What a command needs beyond that is said on the error class, not in an `except`:

- `exit_code` (1 unless the class says otherwise: 2 for invalid input such as a label schema or a
  `--mirror` value, 4 for an export that wrote nothing);
- `hint`: what to do about it, for the person at the terminal (a CLI option to pass), appended to
  the line; library callers read the message alone.

A message names the record and the field, never the value (PII).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong: `path` is the field (`segments.0.end`, "" for the whole record), `where` the
    place it was read from (`file:line`), when known."""

    path: str
    message: str
    where: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{self.where}: {text}" if self.where else text


class GtkitError(Exception):
    """Base of gtkit's errors. `problems` lists what is wrong when there is more than the message."""

    exit_code: int = 1
    hint: str | None = None
    problems: list[Problem]

    def __init__(self, *args: object, problems: Iterable[Problem] = ()) -> None:
        super().__init__(*args)
        if problems or "problems" not in self.__dict__:  # a subclass may have set its own first
            self.problems = list(problems)


__all__ = ["GtkitError", "Problem"]
