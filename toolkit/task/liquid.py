"""Render Ground Truth worker templates locally: python-liquid with Ground Truth's filters.

Ground Truth renders the worker task template with Liquid, autoescape ON, and adds filters of its
own. We emulate them so the local portal shows exactly the page a worker would get:

- `grant_read_access`: s3:// URI -> a short-lived HTTPS URL. Here a callable supplied by the caller
  (the portal maps it to one of its own media URLs).
- `to_json`: the value as JSON text (escaped on output like any other value).
- `escape`: explicit HTML escape (always escapes, even an escaped value).
- `escape_once`: escape without double-escaping existing entities.
- `skip_autoescape`: emit the value raw (trusted content only).

Hyphenated keys (`task.input.source-ref`) are plain identifiers to python-liquid 2, as in Ground
Truth; `tests/test_liquid.py` pins that.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from typing import Any

from liquid import Environment, Markup, is_undefined
from markupsafe import escape as markup_escape

GrantFn = Callable[[str], str]


def _text(value: object) -> str:
    if value is None or is_undefined(value):
        return ""
    return str(value)


def _json_default(value: object) -> Any:
    if is_undefined(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: object) -> str:
    """Liquid `to_json`: JSON text of any value; an undefined value is `null`.

    Returns a plain string, so autoescape escapes it once on output (as in Ground Truth).
    """
    if is_undefined(value):
        return "null"
    if isinstance(value, Markup):
        value = str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def escape(value: object) -> Markup:
    """Liquid `escape`: always escapes (an already escaped value is escaped again)."""
    return Markup(html.escape(_text(value), quote=True).replace("&#x27;", "&#39;"))


def escape_once(value: object) -> Markup:
    """Liquid `escape_once`: `&amp;` stays `&amp;`, a bare `&` becomes `&amp;`."""
    return Markup(markup_escape(html.unescape(_text(value))))


def skip_autoescape(value: object) -> Markup:
    """Ground Truth's opt-out of autoescape. Only for trusted content: it is an XSS hole otherwise."""
    return Markup(_text(value))


def make_environment(grant_read_access: GrantFn) -> Environment:
    """A Liquid environment that behaves like Ground Truth's: autoescape on, GT filters added."""
    env = Environment(autoescape=True)

    def _grant(value: object) -> str:
        uri = _text(value)
        # A URL string, escaped on output: a presigned URL printed into HTML carries `&amp;`,
        # exactly the trap Ground Truth sets (browsers decode it in attributes).
        return grant_read_access(uri) if uri else ""

    env.add_filter("grant_read_access", _grant)
    env.add_filter("to_json", to_json)
    env.add_filter("escape", escape)
    env.add_filter("escape_once", escape_once)
    env.add_filter("skip_autoescape", skip_autoescape)
    return env


def render_liquid(source: str, task_input: Mapping[str, Any], grant_read_access: GrantFn,
                  *, env: Environment | None = None) -> str:
    """Render a worker task template the way Ground Truth does, with `task.input` = `task_input`."""
    env = env or make_environment(grant_read_access)
    return env.from_string(source).render(task={"input": dict(task_input)})
