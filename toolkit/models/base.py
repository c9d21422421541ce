"""Shared pydantic configuration for the data contract."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


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
