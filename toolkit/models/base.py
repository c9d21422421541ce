"""Shared pydantic configuration for the data contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

# Containers (objects, lists) one field of a record may nest. Real records nest a few levels;
# pydantic and orjson refuse to serialise past 255, and recursive readers (json) die near 1000.
MAX_NESTING = 64


def to_dashed(name: str) -> str:
    """Ground Truth manifest convention: `source_ref` -> `source-ref`."""
    return name.replace("_", "-")


class CamelModel(BaseModel):
    """Models exchanged with the browser and the Lambdas use camelCase JSON keys."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class DashedModel(BaseModel):
    """Manifest lines use Ground Truth's dashed keys (`source-ref`, `pre-segments`)."""

    model_config = ConfigDict(alias_generator=to_dashed, populate_by_name=True, extra="allow")


def dump(model: BaseModel) -> dict:
    """JSON-ready dict with the wire (alias) keys and without unset optionals."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class NestingTooDeep(ValueError):
    """Raised by model validators; `field` names the top-level field (reports put it in the field column)."""

    def __init__(self, field: str, limit: int):
        self.field = field
        self.detail = f"nested more than {limit} levels deep"
        super().__init__(f"field {field!r} is {self.detail}")


def too_deep_field(data: Any, limit: int = MAX_NESTING) -> str | None:
    """The first top-level key of `data` whose value nests more than `limit` containers deep.
    Iterative, so it is safe on any depth orjson can parse."""
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        stack = [(value, 1)]
        while stack:
            node, depth = stack.pop()
            children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
            if children is None:
                continue
            if depth > limit:
                return str(key)
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return None


def refuse_deep_nesting(data: Any, limit: int = MAX_NESTING) -> Any:
    """A `model_validator(mode="before")` body: refuse input nested past `limit`, naming the field."""
    field = too_deep_field(data, limit)
    if field is not None:
        raise NestingTooDeep(field, limit)
    return data
