"""The JSON bytes of the codecs: orjson when it is installed, else the standard library, with the same
bytes either way.

The Lambda zips carry only the standard library and boto3 (no orjson), and a codec module they import
must still load there; this is the one module that makes that choice. `dumps` writes compact UTF-8
(`{"a":1}`, text as is, not \\u-escaped), floats spelled as orjson spells them (`1e-7`, `0.000025`: not
Python's `1e-07`, `2.5e-05`) and NaN/Infinity as `null`. `loads` takes UTF-8 bytes or str and refuses
NaN/Infinity literals and invalid UTF-8 with `JSONDecodeError` (orjson's is a subclass of json's).

Outside the fast path's domain the two differ and no codec relies on it: orjson refuses integers past
64 bits, non-str keys and nesting past 255, which the standard library writes.
"""

from __future__ import annotations

import json
import math
from typing import Any

JSONDecodeError = json.JSONDecodeError

try:  # the Lambda zips carry no orjson
    import orjson
except ImportError:  # pragma: no cover - exercised by tests/test_jsonio.py with orjson hidden
    orjson = None  # type: ignore[assignment]


def float_text(value: float) -> str:
    """`value` as orjson writes it: Python's shortest repr, but exponents not zero-padded (`1e-7`) and
    1e-5 <= |value| < 1e-4 in positional notation (`0.000025`); NaN and infinities as null."""
    if not math.isfinite(value):
        return "null"
    text = repr(value)
    if "e-0" not in text:
        return text
    mantissa, _, exponent = text.partition("e-")
    if int(exponent) != 5:
        return f"{mantissa}e-{int(exponent)}"
    sign, digits = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
    whole, _, fraction = digits.partition(".")
    return f"{sign}0.0000{(whole + fraction).rstrip('0') or '0'}"


class _Encoder(json.JSONEncoder):
    """The standard library's pure-Python encoder (its C one takes no float hook) with `float_text`."""

    def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
        return json.encoder._make_iterencode(  # type: ignore[attr-defined]
            {} if self.check_circular else None, self.default, json.encoder.py_encode_basestring,
            self.indent, float_text, self.key_separator, self.item_separator, self.sort_keys,
            self.skipkeys, _one_shot)(o, 0)


_FAST = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_EXACT = _Encoder(ensure_ascii=False, separators=(",", ":"))


def _std_dumps(value: Any) -> bytes:
    try:
        text = _FAST.encode(value)
    except ValueError:  # NaN or an infinity: null, as orjson writes them
        text = _EXACT.encode(value)
    else:
        if "e-0" in text:  # maybe a float Python spells differently (or just text): the float-exact path
            text = _EXACT.encode(value)
    return text.encode("utf-8")


def _refuse_constant(name: str) -> Any:
    raise JSONDecodeError(f"{name} is not valid JSON", name, 0)


def _std_loads(data: bytes | bytearray | memoryview | str) -> Any:
    if not isinstance(data, str):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONDecodeError(f"not valid UTF-8 ({exc.reason})", "", exc.start) from None
    return json.loads(data, parse_constant=_refuse_constant)


if orjson is not None:
    dumps = orjson.dumps
    loads = orjson.loads
else:  # pragma: no cover - the Lambda zips
    dumps = _std_dumps
    loads = _std_loads

__all__ = ["JSONDecodeError", "dumps", "float_text", "loads"]
