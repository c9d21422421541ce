"""What the exporter accepts from an output manifest line: the item fields, checked on read, and the
label schema a line may name. The label itself is read by its codec (`toolkit.contract.consolidated`
`decode`, as `LabelOnRead`). A line that breaks one is reported with the field, and the rest of the
file goes on.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import ConfigDict, Field, create_model

from toolkit.contract import LabelSchema, load_label_schema
from toolkit.contract.consolidated import Seconds
from toolkit.contract.schema import BUILTIN_DIR, builtin_schema_names

Text = Annotated[str, Field(strict=True)]


# The item fields of a line that the exporter reads (types only; source-ref and interaction-id are
# also checked for presence by the reader).
ITEM_TYPES: dict[str, Any] = {
    "source-ref": Text | None, "interaction-id": Text | None, "media-type": Text | None,
    "duration-seconds": Seconds | None, "language-code": Text | None, "sidecar-ref": Text | None,
    "metadata": dict[str, Any] | None, "transcription": Text | None, "pre-segments": list[Any] | None,
    "prompt": dict[str, Any] | None, "candidates": list[Any] | None,  # comparison lines
    "pre-content": dict[str, Any] | None,
}
ItemFields = create_model(  # type: ignore[call-overload]
    "ItemFields", __config__=ConfigDict(extra="ignore", allow_inf_nan=False),
    **{key.replace("-", "_"): (kind, Field(None, alias=key)) for key, kind in ITEM_TYPES.items()})
META_TEXT_KEYS = ("job-name", "creation-date")  # <attr>-metadata values that go into the lineage


def non_finite(value: Any, path: str) -> str | None:
    """Path of the first NaN/Infinity in a JSON value (both parsers accept those literals), else None."""
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return where
        if isinstance(node, dict):
            stack += [(v, f"{where}.{k}") for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, f"{where}.{i}") for i, v in enumerate(node)]
    return None


def metadata_problem(attribute: str, meta: dict[str, Any]) -> str | None:
    """`<attr>-metadata` values the lineage takes must be strings (meta: normalised keys)."""
    for key in META_TEXT_KEYS:
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return f"{attribute}-metadata.{key}: expected a string"
    return None


def builtin_schema(name: str) -> LabelSchema | None:
    """The built-in label schema called `name`, None for any other name. A name read from the data
    is only ever looked up among the built-in schemas: never opened as a path."""
    if name not in builtin_schema_names():
        return None
    return load_label_schema(BUILTIN_DIR / f"{name}.yaml")
