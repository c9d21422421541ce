"""Check a request against botocore's service model before sending it: what AWS would reject, we reject.

botocore validates types, required members and `min`, but not `max`, `pattern` or `enum`; the
service then fails the call (often after uploads). `request_problems` walks the operation's input
shape alongside the request and checks every string (length `min`/`max`, `pattern` as a full match,
`enum`), list (`min`/`max` items) and number (`min`/`max`), with the constraints read from the
loaded model, never copied.

Model patterns are Java regular expressions (the services are Java): `\\p{L}` classes, and `.` that
does not match line terminators. They run on the `regex` module with `.` narrowed accordingly.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from functools import cache
from typing import Any

import botocore.session
import regex

from toolkit.errors import Problem

# Java's `.` without DOTALL: anything but a line terminator.
JAVA_DOT = r"[^\n\r\u0085\u2028\u2029]"


@cache
def operation_input(service: str, operation: str) -> Any:
    """The input shape of `operation` from botocore's bundled model (loaded once)."""
    return botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape


def java_pattern(pattern: str) -> str:
    """The `regex` equivalent of a Java pattern: only an unescaped `.` outside a character class differs."""
    out, escaped, depth = [], False, 0
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "[":
            depth += 1
            out.append(ch)
        elif ch == "]" and depth:
            depth -= 1
            out.append(ch)
        elif ch == "." and not depth:
            out.append(JAVA_DOT)
        else:
            out.append(ch)
    return "".join(out)


@cache
def compiled(pattern: str) -> Any:
    return regex.compile(java_pattern(pattern))


def describe_char(ch: str) -> str:
    name = unicodedata.name(ch, "")
    if ch in "\n\r\u0085\u2028\u2029":
        kind = "a line break"
    elif unicodedata.category(ch).startswith("C"):
        kind = "a control character"
    else:
        kind = repr(ch)
    return f"{kind} (U+{ord(ch):04X}{' ' + name if name else ''})"


def pattern_problem(value: str, pattern: str) -> str | None:
    """None when `value` fully matches `pattern`; else which character (or the end) breaks it."""
    rx = compiled(pattern)
    if rx.fullmatch(value):
        return None
    for end in range(1, len(value) + 1):  # the shortest prefix that no completion can match
        if not rx.fullmatch(value[:end], partial=True):
            return f"{describe_char(value[end - 1])} at position {end} is not allowed"
    return "is incomplete (it cannot end like this)" if value else "must not be empty"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def check_value(value: Any, shape: Any) -> Iterator[tuple[str, str]]:
    """(relative path, message) for each constraint of `shape` that `value` breaks, recursively."""
    kind, meta = shape.type_name, shape.metadata
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                for path, message in check_value(value[name], member):
                    yield (f"{name}.{path}" if path and not path.startswith("[") else f"{name}{path}"), message
    elif kind == "list" and isinstance(value, list | tuple):
        if "min" in meta and len(value) < meta["min"]:
            yield "", f"at least {_plural(meta['min'], 'item')} (got {len(value)})"
        if "max" in meta and len(value) > meta["max"]:
            yield "", f"at most {_plural(meta['max'], 'item')} (got {len(value)})"
        for i, item in enumerate(value):
            for path, message in check_value(item, shape.member):
                yield f"[{i}]" + (f".{path}" if path and not path.startswith("[") else path), message
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            for path, message in check_value(key, shape.key):
                yield f"[{key!r}]{path}", f"key: {message}"
            for path, message in check_value(item, shape.value):
                yield f"[{key!r}]{path}", message
    elif kind == "string" and isinstance(value, str):
        length_ok = True
        if "min" in meta and len(value) < meta["min"]:
            length_ok = False
            yield "", f"at least {_plural(meta['min'], 'character')} (got {len(value)})"
        if "max" in meta and len(value) > meta["max"]:
            length_ok = False
            yield "", f"at most {_plural(meta['max'], 'character')} (got {len(value)})"
        if "enum" in meta and value not in meta["enum"]:
            yield "", f"must be one of {', '.join(meta['enum'])}"
        if "pattern" in meta and length_ok:  # patterns often repeat the length limit: one message is enough
            problem = pattern_problem(value, meta["pattern"])
            if problem:
                yield "", f"{problem} (the API requires a full match of {meta['pattern']})"
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "min" in meta and value < meta["min"]:
            yield "", f"must be at least {meta['min']} (got {value})"
        if "max" in meta and value > meta["max"]:
            yield "", f"must be at most {meta['max']} (got {value})"


def request_problems(service: str, operation: str, request: dict[str, Any]) -> list[Problem]:
    """A Problem (member path like `HumanTaskConfig.TaskTitle`, message) for every value the service model
    rejects."""
    return [Problem(path, message) for path, message in check_value(request, operation_input(service, operation))]
