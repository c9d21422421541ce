"""Numbered lines of a byte stream, decoded safely: the one line reader of every JSON Lines and CSV
input (feedback records, manifests, output manifests), for the manifest build and for the export.

- A whole file in another encoding (UTF-16/UTF-32: a byte order mark, or NUL bytes in the first
  line) raises `WrongEncoding` once, before any line: its lines would all be garbage.
- A UTF-8 byte order mark on the first line is dropped (Excel and PowerShell write one).
- A line that is not valid UTF-8 is one `LineError` (line number and where the bad byte is, never the
  text), and reading goes on with the next line.
- Lines are split on `\\n` only (as JSON Lines says); `\\r\\n` endings are removed with it.
- The exporter, which parses lines itself (orjson), takes the same checks line by line: `first_line`
  (encoding and BOM), `line_utf8_problem` (the bad byte and its field), `json_problem` (parser errors).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from toolkit.errors import GtkitError

UTF8_BOM = codecs.BOM_UTF8
# UTF-32 LE's mark starts with UTF-16 LE's: check the longer ones first.
WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32 LE"), (codecs.BOM_UTF32_BE, "UTF-32 BE"),
             (codecs.BOM_UTF16_LE, "UTF-16 LE"), (codecs.BOM_UTF16_BE, "UTF-16 BE"))
MAX_DEPTH = 1024  # orjson's nesting limit: NESTING_LIMITS["output-manifest"] in toolkit.contract.base
# The next key under these is a worker id: a field path stops before it (worker identities stay out).
ID_KEYED = frozenset({"texts", "values", "workers"})
# UTF-16 text is about half NUL bytes; one stray NUL in a UTF-8 line is just a bad line.
_NUL_SHARE = 0.25


class WrongEncoding(GtkitError, ValueError):
    """The whole input is not UTF-8 (one clear error instead of one per line)."""


class InputEncodingError(WrongEncoding):
    """WrongEncoding as the exporter raises it (`first_line`); the name its callers catch."""


class UndecodableLine(GtkitError, ValueError):
    """Raised by strict readers (`Storage.iter_lines`) for a line that is not UTF-8."""


@dataclass(frozen=True)
class LineError:
    """A line that cannot be decoded as UTF-8."""

    number: int
    message: str


def foreign_encoding(head: bytes) -> str | None:
    """The encoding `head` (the first line's bytes) is evidently in, when it is not UTF-8."""
    for bom, name in WIDE_BOMS:
        if head.startswith(bom):
            return f"{name} (byte order mark {bom.hex(' ').upper()})"
    if head and head.count(0) >= _NUL_SHARE * len(head):
        return "UTF-16 or UTF-32 (NUL bytes between the characters)"
    return None


def wrong_encoding_message(name: str, encoding: str) -> str:
    """The one message for a whole input in another encoding (manifest build, export, merge)."""
    return (f"{name}: the file is {encoding}, not UTF-8: nothing in it was read; convert it "
            "(e.g. iconv -f UTF-16 -t UTF-8) and run again")


def iter_raw_lines(fh: IO[bytes], name: str = "input", keepends: bool = False) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line bytes) of a binary stream, with the first line's UTF-8 BOM removed.

    Line endings are removed unless `keepends` (the csv module needs them for quoted newlines).
    Raises WrongEncoding before the first line when the stream is UTF-16/32.
    """
    for number, raw in enumerate(fh, start=1):
        if number == 1:
            encoding = foreign_encoding(raw.rstrip(b"\r\n"))
            if encoding:
                raise WrongEncoding(wrong_encoding_message(name, encoding))
            raw = raw.removeprefix(UTF8_BOM)
        yield number, raw if keepends else raw.rstrip(b"\r\n")


def decode_line(number: int, raw: bytes) -> str | LineError:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return LineError(number, utf8_problem(exc))


def utf8_problem(exc: UnicodeDecodeError) -> str:
    bad = exc.object[exc.start:exc.end]
    return f"not valid UTF-8 ({exc.reason}: byte {bad[:1].hex().upper()} at byte {exc.start + 1} of the line)"


def iter_text_lines(fh: IO[bytes], name: str = "input") -> Iterator[tuple[int, str | LineError]]:
    """(line number, text or LineError) per line of a binary stream; see the module docstring."""
    for number, raw in iter_raw_lines(fh, name):
        yield number, decode_line(number, raw)


def iter_record_lines(fh: IO[bytes], name: str = "input") -> Iterator[tuple[int, bytes, str | LineError]]:
    """(line number, raw bytes, text or LineError) of each line that is not blank (ASCII whitespace):
    the records of a JSON Lines stream. Raises WrongEncoding as `iter_raw_lines` does."""
    for number, raw in iter_raw_lines(fh, name):
        if raw.strip():
            yield number, raw, decode_line(number, raw)


def undecodable_field(raw: bytes) -> str | None:
    """The JSON path (`customer_id`, `entities[2].text`) of the first key or string holding bytes that
    are not UTF-8, when the line is otherwise JSON; None when that cannot be told. For reports."""
    return _bad_text_path(raw, has_surrogates, root="(line)", dotted_indices=False)


def bad_byte_field(raw: bytes) -> str | None:
    """Dotted path (`a.content.summary.value`) of the first key or string holding an invalid byte,
    worker ids left out of the path: how the exporter names fields."""
    return _bad_text_path(raw, _has_bad_byte, root="(root)", dotted_indices=True, stop_after=ID_KEYED)


def _has_bad_byte(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)  # surrogateescape's stand-ins for bad bytes


def _bad_text_path(raw: bytes, bad: Any, *, root: str, dotted_indices: bool,
                   stop_after: frozenset[str] = frozenset()) -> str | None:
    """The path of the first key or string (depth first, document order) for which `bad(text)` holds,
    once the line is decoded with surrogateescape (bad bytes become lone surrogates). Keys under a
    `stop_after` key are data (worker ids): the path stops at that key."""
    try:
        value = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any, bool]] = [("", value, False)]
    while stack:
        path, node, frozen = stack.pop()
        if isinstance(node, str):
            if bad(node):
                return path or root
            continue
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        children = []
        for key, child in items:
            if frozen:
                where = path
            elif isinstance(key, int) and not dotted_indices:
                where = f"{path}[{key}]"
            else:
                where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and bad(key):
                return where if dotted_indices else clean_text(where)
            children.append((where, child, frozen or (isinstance(key, str) and key in stop_after)))
        stack.extend(reversed(children))  # depth first, in document order
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """True when `text` holds lone surrogates: undecoded bytes (surrogateescape) or `\\ud800` escapes."""
    return _SURROGATE.search(text) is not None


def clean_text(text: str) -> str:
    """`text` with lone surrogates shown as U+FFFD, safe to write as UTF-8 (reports, file names)."""
    return _SURROGATE.sub("\ufffd", text)


def surrogate_problem(text: str) -> str:
    """What is wrong with a cell decoded with surrogateescape, naming the first bad byte."""
    found = _SURROGATE.search(text)
    byte = ord(found.group()) - 0xDC00 if found else -1
    return f"not valid UTF-8 (byte {byte:02X})" if 0x80 <= byte <= 0xFF else "not valid UTF-8"


# -- the exporter's line checks (it parses lines itself, with orjson) ------------------------------
def first_line(raw: bytes, uri: str) -> bytes:
    """Line 1 without a UTF-8 byte order mark; InputEncodingError if the file is UTF-16 or UTF-32."""
    encoding = foreign_encoding(raw.rstrip(b"\r\n"))
    if encoding:
        raise InputEncodingError(wrong_encoding_message(uri, encoding))
    return raw.removeprefix(UTF8_BOM)


def line_utf8_problem(raw: bytes) -> str | None:
    """None for valid UTF-8; else where the first invalid byte is, and in which field when the line
    parses once that byte is set aside."""
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        detail = f"invalid UTF-8 byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line"
    where = bad_byte_field(raw)
    return f"{detail}, in field {where}" if where else detail


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
