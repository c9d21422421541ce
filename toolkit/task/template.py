"""Render the Ground Truth worker task template from a label schema (`gtkit template render`).

Two template languages meet here. Jinja2 (templates/*.html.j2, delimiters `[[ ]]`/`[% %]`) runs now,
on our machine: it embeds the label schema and the asset URLs with their Subresource Integrity
hashes. Liquid (`{{ }}`/`{% %}`) runs later, at Ground Truth, per task: it fills in the task input
and presigned media URLs. So the Jinja output must leave every Liquid expression intact and must
never introduce `{{` or `{%` of its own (schema text has its braces written as HTML entities).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jinja2
from markupsafe import Markup

from toolkit.contract import ANSWER_FIELD, LabelSchema
from toolkit.errors import GtkitError
from toolkit.resources import resource_dir

TEMPLATES_DIR = resource_dir("templates")
STATIC_DIR = resource_dir("static")
CROWD_ELEMENTS_URL = "https://assets.crowd.aws/crowd-html-elements.js"
ENTRY_MODULE = "js/main.js"
# Inlined as a classic <script>: watches the boot and fails safe when the assets cannot load.
FAILSAFE_SCRIPT = "boot-failsafe.js"
DEFAULT_BOOT_TIMEOUT = 10.0  # seconds before the fail-safe says the UI has not started
MAX_BOOT_TIMEOUT = 300.0
STYLESHEET = "css/gtkit.css"
# ES modules whose integrity goes into the import map: ours and the vendored wavesurfer build.
MODULE_DIRS = ("js", "vendor/wavesurfer")
VENDOR_DIR = "vendor/wavesurfer"

Variant = Literal["audio", "video"]


@dataclass(frozen=True)
class Asset:
    url: str
    integrity: str


def sri(path: Path) -> str:
    """Subresource Integrity value (sha384, as browsers and the spec recommend) of a file."""
    digest = hashlib.sha384(path.read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


def _visible(rel: Path) -> bool:
    return not any(part.startswith(".") or part == "__pycache__" for part in rel.parts)


def asset_files(static_dir: Path = STATIC_DIR) -> list[tuple[str, Path]]:
    """Everything to upload to the assets base: (URL path relative to the base, local file)."""
    static_dir = Path(static_dir)
    out: list[tuple[str, Path]] = []
    for path in sorted(static_dir.rglob("*")):
        rel = path.relative_to(static_dir)
        if path.is_file() and _visible(rel):
            out.append((rel.as_posix(), path))
    return out


def _module_files(static_dir: Path) -> list[tuple[str, Path]]:
    return [(rel, path) for rel, path in asset_files(static_dir)
            if rel.endswith((".js", ".mjs")) and rel.startswith(tuple(d + "/" for d in MODULE_DIRS))]


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


def import_map(assets_base: str, static_dir: Path = STATIC_DIR) -> dict:
    """The import map: bare `wavesurfer.js` specifiers -> vendored files, plus integrity per module."""
    modules = _module_files(static_dir)
    imports: dict[str, str] = {}
    for rel, _ in modules:
        if not rel.startswith(VENDOR_DIR + "/"):
            continue
        inner = rel[len(VENDOR_DIR) + 1:]
        url = _join(assets_base, rel)
        if inner == "wavesurfer.esm.js":
            imports["wavesurfer.js"] = url
        elif inner.startswith("plugins/") and inner.endswith(".esm.js"):
            name = inner[len("plugins/"):-len(".esm.js")]
            imports[f"wavesurfer.js/plugins/{name}"] = url
            imports[f"wavesurfer.js/dist/plugins/{name}.esm.js"] = url
    integrity = {_join(assets_base, rel): sri(path) for rel, path in modules}
    return {"imports": imports, "integrity": integrity}


# `import ... from "x"`, `import "x"`, `export ... from "x"` and `import("x")` with a literal.
_IMPORT = re.compile(r"""\b(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*|\(\s*)?["']([^"']+)["']""")
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)  # JSDoc `{import('./x.js').T}` is not an import


def module_graph(static_dir: Path = STATIC_DIR, entry: str = ENTRY_MODULE) -> list[str]:
    """Modules (paths relative to static/) the entry point imports, directly or not, entry first.

    Static imports and dynamic `import()` of a literal path are followed (main.js loads the bulk
    of the UI with `import('./app.js')` so that it can start the peaks download first). They get
    `<link rel="modulepreload">` so the browser fetches the whole graph at once instead of
    discovering it one import level at a time.
    """
    static_dir = Path(static_dir)
    bare = {spec: url for spec, url in import_map("/", static_dir)["imports"].items()}
    seen: list[str] = []
    todo = [entry]
    while todo:
        rel = todo.pop(0)
        if rel in seen or not (static_dir / rel).is_file():
            continue
        seen.append(rel)
        source = _BLOCK_COMMENT.sub("", (static_dir / rel).read_text(encoding="utf-8", errors="replace"))
        for spec in _IMPORT.findall(source):
            if spec.startswith(("./", "../")):
                todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(rel), spec)))
            elif spec in bare:
                todo.append(bare[spec].lstrip("/"))
    return seen


class TemplateError(GtkitError, ValueError):
    """A template that cannot be rendered as asked (assets URL, variant, boot timeout)."""


def _script_json(value: object) -> Markup:
    """JSON for a <script> element body. Entities are not decoded there, so braces stay braces;
    indenting keeps `}}` apart and `<` is escaped so nothing can close the element."""
    text = json.dumps(value, indent=1, ensure_ascii=False).replace("<", "\\u003c")
    if "{{" in text or "{%" in text:
        raise TemplateError("asset URLs must not contain Liquid markup ('{{' or '{%')")
    return Markup(text)


def failsafe_script(templates_dir: Path = TEMPLATES_DIR) -> str:
    """The inline boot fail-safe script's text, exactly as the template embeds it.

    It must survive both template languages and the HTML parser untouched: no Liquid (`{{`, `{%`,
    `{#`), nothing that ends or comments out a <script> element.
    """
    text = (Path(templates_dir) / FAILSAFE_SCRIPT).read_text(encoding="utf-8")
    bad = [token for token in ("{{", "{%", "{#", "</script", "<!--") if token in text.lower()]
    if bad:
        raise TemplateError(f"{FAILSAFE_SCRIPT} contains {', '.join(bad)}: it is inlined in a Liquid template")
    return text


def failsafe_csp_hash(templates_dir: Path = TEMPLATES_DIR) -> str:
    """CSP source (`'sha256-...'`) that allows the inline fail-safe script under `script-src`."""
    digest = hashlib.sha256(failsafe_script(templates_dir).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def brace_safe(value: object) -> Markup:
    """HTML-escape, then write braces as entities so Ground Truth's Liquid never sees `{{`/`{%`."""
    text = html.escape(str(value), quote=True)
    return Markup(text.replace("{", "&#123;").replace("}", "&#125;"))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        block_start_string="[%", block_end_string="%]",
        variable_start_string="[[", variable_end_string="]]",
        comment_start_string="[#", comment_end_string="#]",
        keep_trailing_newline=True,
    )
    env.filters["brace_safe"] = brace_safe
    env.filters["script_json"] = _script_json
    return env


def _check_assets_base(assets_base: str) -> str:
    if not assets_base:
        raise TemplateError("assets_base is empty; give the URL the static/ files are served from")
    if not (assets_base.startswith(("https://", "http://", "/")) and not assets_base.startswith("//")):
        raise TemplateError(f"assets_base must be an https:// URL (or a root-relative path for local use), "
                           f"got {assets_base!r}")
    if any(c in assets_base for c in "\"'<> {}"):
        raise TemplateError(f"assets_base contains characters not allowed in a URL: {assets_base!r}")
    return assets_base.rstrip("/") + "/"


def render_template(schema: LabelSchema, assets_base: str, *, variant: Variant | None = None,
                    static_dir: Path = STATIC_DIR, boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
                    review: bool = False) -> str:
    """The worker task template (HTML + Liquid) for `schema`, loading our assets from `assets_base`.

    `variant` defaults to the schema's media type. `static_dir` is where the files to hash live;
    they must be byte-identical to what the assets base serves, or browsers refuse them.
    `boot_timeout`: seconds after which the inline fail-safe tells the worker the UI has not
    started and disables Submit (undone if it starts later).
    `review`: the review variant (docs/worker-ui.md, "Review tasks"): the same UI and assets, the
    page marked `data-mode="review"`, the task input's `review-ref` passed as `data-review-url`,
    an autosave key of its own and a "Submit review" button.
    """
    base = _check_assets_base(assets_base)
    if not 0 < boot_timeout <= MAX_BOOT_TIMEOUT:
        raise TemplateError(f"boot_timeout must be between 0 and {MAX_BOOT_TIMEOUT:g} seconds, got {boot_timeout!r}")
    variant = variant or schema.media
    if variant not in ("audio", "video"):
        raise TemplateError(f"variant must be 'audio' or 'video', got {variant!r}")
    if review and schema.mode == "compare":
        raise TemplateError(f"schema {schema.name!r} is a comparison (mode: compare): review tasks are for "
                            "segmentation schemas")
    static_dir = Path(static_dir)
    missing = [rel for rel in (ENTRY_MODULE, STYLESHEET) if not (static_dir / rel).is_file()]
    if missing:
        raise FileNotFoundError(f"{static_dir}: missing front-end file(s) {', '.join(missing)}")
    schema_json = json.dumps(schema.model_dump(mode="json", exclude_none=True), ensure_ascii=False,
                             separators=(",", ":"))
    context = {
        "schema": schema,
        "schema_json": schema_json,
        "variant": variant,
        "review": review,
        "answer_field": ANSWER_FIELD,
        "crowd_elements_url": CROWD_ELEMENTS_URL,
        "assets_base": base,
        "boot_timeout": f"{boot_timeout:g}",
        "failsafe_script": Markup(failsafe_script()),
        "import_map": import_map(base, static_dir),
        "entry": Asset(_join(base, ENTRY_MODULE), sri(static_dir / ENTRY_MODULE)),
        "css": Asset(_join(base, STYLESHEET), sri(static_dir / STYLESHEET)),
        "preload": [Asset(_join(base, rel), sri(static_dir / rel))
                    for rel in module_graph(static_dir)[1:]],
    }
    page = "compare" if schema.mode == "compare" else variant  # the compare page serves audio and video
    return _environment().get_template(f"{page}.html.j2").render(context)
