"""toolkit.task.template: the Ground Truth worker task template (Jinja2 now, Liquid at Ground Truth)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app as cli
from toolkit.contract import ANSWER_FIELD, load_label_schema
from toolkit.contract.schema import SchemaError
from toolkit.resources import SOURCE_ROOT
from toolkit.task.liquid import make_environment
from toolkit.task.template import (
    CROWD_ELEMENTS_URL,
    DEFAULT_BOOT_TIMEOUT,
    STATIC_DIR,
    TEMPLATES_DIR,
    asset_files,
    failsafe_csp_hash,
    failsafe_script,
    module_graph,
    render_template,
)

BASE = "https://assets.example.com/gtkit/0.1.0"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class StrictParser(HTMLParser):
    """html.parser plus the checks it does not make: every non-void element closed, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None], list[str]]] = []  # tag, attrs, ancestors
        self.script_bodies: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), list(self.stack)))
        if tag == "script":
            self._script = dict(attrs)
            self.script_bodies.append((self._script, ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), list(self.stack)))
        if tag not in VOID:
            self.errors.append(f"self-closed non-void <{tag}/>")

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"end tag for void element </{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> does not close {self.stack[-1:] or 'anything'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "script" and self.script_bodies:
            attrs, body = self.script_bodies[-1]
            self.script_bodies[-1] = (attrs, body + data)

    def close(self):
        super().close()
        if self.stack:
            self.errors.append(f"unclosed {self.stack}")


def parse(text: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(text)
    parser.close()
    return parser


def sha384(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


@pytest.fixture(scope="module")
def schema():
    return load_label_schema("call-center")


@pytest.fixture(scope="module")
def rendered(schema) -> str:
    return render_template(schema, BASE)


def test_valid_html(rendered):
    parser = parse(rendered)
    assert parser.errors == []
    assert [t for t, _, _ in parser.elements].count("crowd-form") == 1


def test_liquid_expressions_preserved(rendered):
    for expr in ("{{ task.input.source-ref | grant_read_access }}",
                 "{{ task.input | to_json | escape }}",
                 "{{ task.input.peaks-ref | grant_read_access }}",
                 "{{ task.input.sidecar-ref | grant_read_access }}",
                 "{% if task.input.peaks-ref %}",
                 "{{ task.input.spectrogram-ref | grant_read_access }}",
                 "{% if task.input.spectrogram-ref %}",
                 "{{ task.input.interaction-id }}"):
        assert expr in rendered
    # ...and the whole file is valid Liquid that renders with Ground Truth's filters.
    out = make_environment(lambda uri: "https://signed/" + uri[5:]).from_string(rendered).render(
        task={"input": {"source-ref": "s3://b/a.wav", "interaction-id": "i-1"}})
    assert 'data-media-url="https://signed/b/a.wav"' in out and "{{" not in out and "{%" not in out


def test_crowd_elements(rendered):
    parser = parse(rendered)
    scripts = [a for t, a, _ in parser.elements if t == "script"]
    assert {"src": CROWD_ELEMENTS_URL} in scripts
    crowd = {t: (a, anc) for t, a, anc in parser.elements if t.startswith("crowd-")}
    assert "crowd-form" in crowd and "crowd-button" in crowd
    assert crowd["crowd-button"][0]["form-action"] == "submit"
    assert "crowd-form" in crowd["crowd-button"][1]
    answer = [(a, anc) for t, a, anc in parser.elements if t == "input" and a.get("name") == ANSWER_FIELD]
    assert len(answer) == 1
    assert answer[0][0]["type"] == "hidden" and "crowd-form" in answer[0][1]
    app = [(a, anc) for t, a, anc in parser.elements if a.get("id") == "gtkit-app"]
    assert len(app) == 1 and "crowd-form" in app[0][1]


def test_sri_hashes_match_files(rendered):
    parser = parse(rendered)
    files = dict(asset_files())
    (_imap_attrs, imap_body), = [(a, b) for a, b in parser.script_bodies if a.get("type") == "importmap"]
    imap = json.loads(imap_body)
    integrity = imap["integrity"]
    for url, value in integrity.items():
        assert url.startswith(BASE + "/")
        assert value == sha384(files[url[len(BASE) + 1:]])
    modules = {rel for rel in files if rel.endswith(".js") and rel.startswith(("js/", "vendor/wavesurfer/"))}
    assert modules and {u[len(BASE) + 1:] for u in integrity} == modules
    assert "js/main.js" in modules
    for target in imap["imports"].values():
        assert target in integrity
    entry = [a for t, a in [(t, a) for t, a, _ in parser.elements] if t == "script" and a.get("type") == "module"]
    assert entry == [{"type": "module", "data-gtkit-entry": None, "src": f"{BASE}/js/main.js",
                      "integrity": sha384(STATIC_DIR / "js/main.js"), "crossorigin": "anonymous"}]
    preload = [a for t, a, _ in parser.elements if t == "link" and a.get("rel") == "modulepreload"]
    graph = module_graph()
    assert graph[0] == "js/main.js" and "vendor/wavesurfer/wavesurfer.esm.js" in graph
    assert [a["href"] for a in preload] == [f"{BASE}/{rel}" for rel in graph[1:]]
    for a in preload:
        assert a["integrity"] == integrity[a["href"]] and a["crossorigin"] == "anonymous"
    css = [a for t, a, _ in parser.elements if t == "link" and a.get("rel") == "stylesheet"]
    assert css == [{"rel": "stylesheet", "href": f"{BASE}/css/gtkit.css",
                    "integrity": sha384(STATIC_DIR / "css/gtkit.css"), "crossorigin": "anonymous"}]


def test_no_absolute_local_paths(rendered):
    assert str(SOURCE_ROOT) not in rendered
    assert "file://" not in rendered
    # every URL-ish attribute points at the assets base or the crowd elements script
    for url in re.findall(r'(?:src|href)="([^"]+)"', rendered):
        assert url.startswith((BASE + "/", CROWD_ELEMENTS_URL)), url
    assert not re.search(r"/(home|tmp|work|root|Users)/|[A-Z]:\\", rendered)


def test_schema_embedded_and_braces_neutralised(schema, tmp_path):
    tricky = schema.model_copy(update={"instructions": "Type {{ task.input }} or {% raw %} & </div> <b>"})
    out = render_template(tricky, BASE)
    assert "{{ task.input }} or" not in out and "{% raw %}" not in out
    parser = parse(out)
    assert parser.errors == []
    app = next(a for t, a, _ in parser.elements if a.get("id") == "gtkit-app")
    assert json.loads(app["data-schema"])["instructions"] == tricky.instructions
    assert json.loads(app["data-schema"])["name"] == "call-center"


def test_variants(schema):
    audio = render_template(schema, BASE)
    video = render_template(schema, BASE, variant="video")
    assert 'data-variant="audio"' in audio and 'data-variant="video"' in video
    own = render_template(load_label_schema("video-generation"), BASE)
    assert 'data-variant="video"' in own  # defaults to the schema's media type
    with pytest.raises(ValueError):
        render_template(schema, BASE, variant="image")  # type: ignore[arg-type]


@pytest.mark.parametrize("base", ["", "assets/", "//cdn.example.com/x", "https://x/\"><script>", "ftp://x/"])
def test_bad_assets_base(schema, base):
    with pytest.raises(ValueError):
        render_template(schema, base)


def test_asset_files():
    files = asset_files()
    rels = [rel for rel, _ in files]
    assert "js/main.js" in rels and "css/gtkit.css" in rels
    assert any(rel.startswith("vendor/wavesurfer/") and rel.endswith("LICENSE") for rel in rels)
    assert all(not part.startswith(".") for rel in rels for part in rel.split("/"))
    assert all(path.is_file() and path.is_relative_to(STATIC_DIR) for _, path in files)
    assert all("\\" not in rel and not rel.startswith("/") for rel in rels)


def test_cli_render(tmp_path):
    out = tmp_path / "template.liquid.html"
    result = CliRunner().invoke(cli, ["template", "render", "--schema", "tts-quality", "--assets-base", BASE,
                                      "--out", str(out), "--variant", "audio"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "{{ task.input.source-ref | grant_read_access }}" in text
    assert parse(text).errors == []
    bad = CliRunner().invoke(cli, ["template", "render", "--schema", "no-such-schema", "--assets-base", BASE,
                                   "--out", str(tmp_path / "x.html")])
    assert bad.exit_code == 1


def test_module_graph_follows_imports(tmp_path):
    (tmp_path / "js").mkdir()
    (tmp_path / "vendor" / "wavesurfer" / "plugins").mkdir(parents=True)
    (tmp_path / "js" / "main.js").write_text(
        "import { a } from './a.js'\nimport WS from 'wavesurfer.js'\nexport * from \"./b.js\"\n"
        "/** @param {import('./typedef.js').T} x */\nconst lazy = () => import('./lazy.js')\n")
    (tmp_path / "js" / "a.js").write_text("import'../js/b.js';export const a=1")
    (tmp_path / "js" / "b.js").write_text("export const b = 2\n")
    (tmp_path / "js" / "lazy.js").write_text("export {}\n")
    (tmp_path / "js" / "typedef.js").write_text("export {}\n")
    (tmp_path / "vendor" / "wavesurfer" / "wavesurfer.esm.js").write_text("export default 1\n")
    (tmp_path / "vendor" / "wavesurfer" / "plugins" / "zoom.esm.js").write_text("export default 2\n")
    # breadth first, each module once; a literal dynamic import is followed, a JSDoc type import is not
    assert module_graph(tmp_path) == ["js/main.js", "js/a.js", "vendor/wavesurfer/wavesurfer.esm.js", "js/b.js",
                                      "js/lazy.js"]



def test_boot_failsafe_is_the_first_script_and_survives_liquid(rendered):
    """Issue 19: an inline classic script, before crowd-html-elements and the modules, that watches
    the entry module (data-gtkit-entry); its text is the file's, byte for byte, also after Liquid."""
    parser = parse(rendered)
    scripts = [(a, b) for a, b in parser.script_bodies]
    attrs, body = scripts[0]
    assert attrs == {"data-gtkit-failsafe": None, "data-assets-base": BASE + "/",
                     "data-boot-timeout": f"{DEFAULT_BOOT_TIMEOUT:g}"}
    assert body == failsafe_script() == (TEMPLATES_DIR / "boot-failsafe.js").read_text()
    assert scripts[1][0] == {"src": CROWD_ELEMENTS_URL}
    assert [a.get("type") for a, _ in scripts[2:]] == ["importmap", "module"]
    # the CSP hash covers exactly what the browser sees as the script's text
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    assert failsafe_csp_hash() == f"'sha256-{digest}'"
    out = make_environment(lambda uri: "https://signed/" + uri[5:]).from_string(rendered).render(
        task={"input": {"source-ref": "s3://b/a.wav", "interaction-id": "i-1"}})
    (_, after), *_ = parse(out).script_bodies
    assert after == body


def test_boot_timeout(schema):
    out = render_template(schema, BASE, boot_timeout=2.5)
    assert 'data-boot-timeout="2.5"' in out
    for bad in (0, -1, 301, float("nan")):
        with pytest.raises(ValueError, match="boot_timeout"):
            render_template(schema, BASE, boot_timeout=bad)


@pytest.mark.parametrize("token", ["{{ x }}", "{% raw %}", "{# note #}", "</script>", "<!-- x"])
def test_failsafe_script_must_not_carry_liquid_or_end_the_element(tmp_path, token):
    (tmp_path / "boot-failsafe.js").write_text(f"// {token}\nvar a = 1\n")
    with pytest.raises(ValueError, match=r"boot-failsafe\.js contains"):
        failsafe_script(tmp_path)


def test_cli_render_boot_timeout_and_csp_hash(tmp_path):
    out = tmp_path / "t.html"
    result = CliRunner().invoke(cli, ["template", "render", "--schema", "call-center", "--assets-base", BASE,
                                      "--out", str(out), "--boot-timeout", "4"])
    assert result.exit_code == 0, result.output
    assert 'data-boot-timeout="4"' in out.read_text()
    assert failsafe_csp_hash() in result.output.replace("\n", "")
    bad = CliRunner().invoke(cli, ["template", "render", "--schema", "call-center", "--assets-base", BASE,
                                   "--out", str(tmp_path / "x.html"), "--boot-timeout", "0"])
    assert bad.exit_code == 1 and "boot_timeout" in bad.output


@pytest.mark.parametrize(("args", "expected"), [
    (["--assets-base", "ftp://example.com/"], "assets_base must be an https:// URL"),        # TemplateError
    (["--assets-base", BASE, "--boot-timeout", "-1"], "boot_timeout must be between 0 and"),
    (["--stack-name", "no-such-stack"], "deploy config"),                                    # FileNotFoundError
])
def test_cli_render_refusals_are_one_line_from_the_cli_root(tmp_path, args, expected):
    """The library's errors reach the CLI root (GtkitGroup) as GtkitErrors: one `error:` line, exit 1,
    no traceback, with no except clause in the command."""
    result = CliRunner().invoke(cli, ["template", "render", "--schema", "tts-quality", "--out",
                                      str(tmp_path / "x.html"), *args], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and expected in result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit from the root's mapping, not the error itself
    assert not (tmp_path / "x.html").exists()


def test_cli_render_with_an_invalid_schema_file_names_its_fields(tmp_path):
    schema = tmp_path / "bad.yaml"
    schema.write_text("name: Bad Name\ntitle: X\ntracks: []\n")
    result = CliRunner().invoke(cli, ["template", "render", "--schema", str(schema), "--assets-base", BASE,
                                      "--out", str(tmp_path / "x.html")], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and result.output.startswith("error: ") and "name" in result.output
    with pytest.raises(SchemaError) as caught:
        load_label_schema(schema)
    assert "name" in [p.path for p in caught.value.problems]
    listed = tmp_path / "list.yaml"
    listed.write_text("- not a mapping\n")
    result = CliRunner().invoke(cli, ["schema", "check", str(listed)], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "a label schema must be a YAML mapping" in result.output, result.output


def _app_attrs(text: str) -> dict[str, str | None]:
    return next(attrs for tag, attrs, _ in parse(text).elements if tag == "div" and attrs.get("id") == "gtkit-app")


def test_review_variant(schema, rendered):
    """`--review`: the same page and the same SRI-pinned assets, marked as a review, with the review
    file's URL from `review-ref` and an autosave key of its own (not the labeling task's)."""
    review = render_template(schema, BASE, review=True)
    assert parse(review).errors == []
    attrs = _app_attrs(review)
    assert attrs["data-mode"] == "review"
    assert attrs["data-task-key"].startswith("gtkit:call-center:review:")
    assert "data-mode" not in _app_attrs(rendered) and "review-url" not in rendered
    assert "Submit review</crowd-button>" in review
    integrity = re.compile(r'(?:src|href)="([^"]+)"[^>]*integrity="([^"]+)"')
    assert sorted(integrity.findall(review)) == sorted(integrity.findall(rendered))  # same assets, same hashes
    env = make_environment(lambda uri: "https://signed/" + uri.split("://", 1)[-1])
    out = env.from_string(review).render(task={"input": {"source-ref": "s3://b/a.wav", "interaction-id": "i-1",
                                                         "review-ref": "s3://b/i-1.review.json"}})
    assert 'data-review-url="https://signed/b/i-1.review.json"' in out and "{{" not in out
    inline = env.from_string(review).render(task={"input": {"source-ref": "s3://b/a.wav", "review": {"iteration": 1}}})
    assert "data-review-url" not in inline
    with pytest.raises(ValueError, match="comparison"):
        render_template(load_label_schema("tts-compare"), BASE, review=True)


def test_cli_render_review(tmp_path):
    out = tmp_path / "review.liquid.html"
    result = CliRunner().invoke(cli, ["template", "render", "--schema", "call-center", "--assets-base", BASE,
                                      "--out", str(out), "--review"])
    assert result.exit_code == 0, result.output
    assert "review template" in result.output
    assert _app_attrs(out.read_text())["data-mode"] == "review"
