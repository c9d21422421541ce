"""Bytes of a JSON Lines input (an output manifest, a feedback file): what can be wrong with them.

A file in a wide encoding (UTF-16/UTF-32, with or without a byte order mark) is one error for the
whole file, found on its first line; a UTF-8 byte order mark on the first line is dropped; a line
with an invalid UTF-8 byte or nested past the parser's depth limit is a problem of that line alone,
described by position and field path, never by its text.
"""

from __future__ import annotations

import json
from typing import Any

UTF8_BOM = b"\xef\xbb\xbf"
WIDE_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"), (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
             (b"\xfe\xff", "UTF-16 (big-endian)"), (b"\xff\xfe", "UTF-16 (little-endian)"))
MAX_DEPTH = 1024  # orjson's nesting limit
# The next key under these is a worker id: a field path stops before it (worker identities stay out).
ID_KEYED = frozenset({"texts", "values", "workers"})


class InputEncodingError(ValueError):
    """The whole file is not UTF-8 (e.g. UTF-16): nothing is read from it."""


def first_line(raw: bytes, uri: str) -> bytes:
    """Line 1 without a UTF-8 byte order mark; InputEncodingError if the file is UTF-16 or UTF-32."""
    for bom, name in WIDE_BOMS:
        if raw.startswith(bom):
            raise InputEncodingError(
                f"{uri}: the file is {name} (byte order mark {bom.hex(' ')}); JSON Lines must be UTF-8: "
                f"convert it first (e.g. iconv -f {name.split()[0]} -t UTF-8)")
    body = raw.rstrip(b"\r\n")
    if body and body.count(0) * 4 >= len(body):  # ASCII text in UTF-16/32 is mostly NUL bytes
        raise InputEncodingError(
            f"{uri}: line 1 is mostly NUL bytes, as UTF-16 or UTF-32 text without a byte order mark is; JSON "
            f"Lines must be UTF-8: convert it first (e.g. iconv -f UTF-16LE -t UTF-8)")
    return raw[len(UTF8_BOM):] if raw.startswith(UTF8_BOM) else raw


def utf8_problem(raw: bytes) -> str | None:
    """None for valid UTF-8; else where the first invalid byte is, and in which field when the line
    parses once that byte is set aside."""
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        detail = f"invalid UTF-8 byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line"
    where = bad_byte_field(raw)
    return f"{detail}, in field {where}" if where else detail


def _has_bad_byte(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)  # surrogateescape's stand-ins for bad bytes


def bad_byte_field(raw: bytes) -> str | None:
    """Dotted path of the first key or string holding an invalid byte (worker ids left out)."""
    try:
        value = json.loads(raw.decode("utf-8", errors="surrogateescape"))
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if _has_bad_byte(node):
                return path or "(root)"
            continue
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        children = []
        for key, child in items:
            parent = path.rsplit(".", 1)[-1]
            where = path if parent in ID_KEYED else (f"{path}.{key}" if path else str(key))
            if isinstance(key, str) and _has_bad_byte(key):
                return where
            children.append((child, where))
        stack.extend(reversed(children))  # depth first, in document order
    return None


def lenient_json(raw: bytes, msg: str) -> Any:
    """The line by Python's parser when only orjson refuses it (`NaN`/`Infinity` literals, integers
    past 64 bits), as the fast path's parser accepts them; None if it does not parse either. What
    the exporter reads is validated afterwards (label numbers must be finite), so such a literal
    only passes where nothing reads it, e.g. a worker's raw answer kept for audit."""
    if "depth limit" in msg:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def json_problem(msg: str, pos: int) -> str:
    """orjson's JSONDecodeError, said plainly."""
    if "depth limit" in msg:
        return f"not valid JSON: nested deeper than {MAX_DEPTH} levels (at char {pos})"
    return f"not valid JSON ({msg} at char {pos})"
