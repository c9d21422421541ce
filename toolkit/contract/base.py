"""Shared pydantic configuration for the data contract: key styles, the one `dump()`, the one
pydantic-error flattener (`problems_from`) and the nesting guard."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from toolkit.errors import GtkitError, Problem

# The media a task shows: the manifest line says it, a label schema asks for it.
MediaType = Literal["audio", "video"]

# How many containers (objects, lists) deep a value may nest, per format, and why. One guard
# (`deeper_than`) checks them all, iteratively, so it is safe at any depth a parser returns.
NESTING_LIMITS = {
    # a record field (feedback record, manifest line): real records nest a few levels; pydantic and
    # orjson refuse to serialise past 255, and recursive readers (json) die near 1000
    "record": 64,
    # a worker's submission through the Lambda core: ours nest 5 levels (answerContent > answer >
    # segments > segment > attributes), aws-samples ones 4; far deeper is hostile, and deep enough
    # breaks parsers (pydantic's stops at 200)
    "submission": 32,
    # a submission at gtkit serve's door, before anything is stored: ~6 levels are real
    "served-submission": 16,
    # an output-manifest line read by the exporter: orjson's own parse limit (its parser refuses deeper)
    "output-manifest": 1024,
}
MAX_NESTING = NESTING_LIMITS["record"]


def deeper_than(value: Any, limit: int) -> bool:
    """True when `value` holds a container more than `limit` containers deep (`value` itself is 1)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


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
    """JSON-ready dict with the wire (alias) keys and without unset optionals: what every codec writes."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


# pydantic's error types in plain words, for people fixing their input files (`plain=True`).
PLAIN_TYPES = {
    "string_type": "expected text", "float_type": "expected a number", "int_type": "expected an integer",
    "dict_type": "expected an object", "model_type": "expected an object", "list_type": "expected a list",
    "bool_type": "expected true or false", "missing": "required field is missing",
}


def problems_from(exc: ValidationError, *, root: str = "(record)", where: str | None = None, plain: bool = False,
                  stop_after: frozenset[str] | set[str] = frozenset()) -> list[Problem]:
    """One Problem per pydantic error: the field path (`root` when the error is the whole model's) and
    pydantic's message, never the offending value (it may be PII).

    `stop_after`: keys whose next key is data (a worker id), cut from the path. `plain`: plain-word
    messages with the JSON type that was given (`expected a number (got text)`), and a model-level
    NestingTooDeep reported under the field it names."""
    out = []
    for err in exc.errors(include_url=False):
        cause = err.get("ctx", {}).get("error")
        if plain and isinstance(cause, NestingTooDeep):  # a model-level check that knows its field
            out.append(Problem(cause.field, cause.detail, where))
            continue
        path: list[str] = []
        for part in err["loc"]:
            path.append(str(part))
            if part in stop_after:
                break
        message = err["msg"]
        if plain:
            message = PLAIN_TYPES.get(err["type"], message)
            if err["type"] != "missing" and "input" in err:
                message += f" (got {json_type(err['input'])})"
        out.append(Problem(".".join(path) or root, message, where))
    return out


def json_type(value: Any) -> str:
    """The JSON type of a value in words (`a number`, `text`): what a problem names instead of the value."""
    return {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


class NestingTooDeep(GtkitError, ValueError):
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
    return next((str(key) for key, value in data.items() if deeper_than(value, limit)), None)


def refuse_deep_nesting(data: Any, limit: int = MAX_NESTING) -> Any:
    """A `model_validator(mode="before")` body: refuse input nested past `limit`, naming the field."""
    field = too_deep_field(data, limit)
    if field is not None:
        raise NestingTooDeep(field, limit)
    return data
