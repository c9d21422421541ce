"""toolkit.task.liquid: Ground Truth's Liquid (autoescape on + its filters) emulated with python-liquid."""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from toolkit.contract import load_label_schema
from toolkit.task.liquid import make_environment, render_liquid
from toolkit.task.template import render_template

XSS = "<img src=x onerror=alert(1)>"


def render(source: str, task_input: dict, grant=lambda uri: f"https://signed.example/{uri[5:]}?X-Sig=a&b=c"):
    return render_liquid(source, task_input, grant)


def test_autoescape_is_on():
    assert render("{{ task.input.transcription }}", {"transcription": XSS}) == html.escape(XSS, quote=True) \
        .replace("&#x27;", "&#39;")
    assert "<img" not in render("<p>{{ task.input.transcription }}</p>", {"transcription": XSS})


def test_hyphenated_keys():
    task = {"source-ref": "s3://b/a.wav", "interaction-id": "int-1", "pre-segments": [{"id": "p1"}, {"id": "p2"}]}
    out = render("{{ task.input.interaction-id }}|{{ task.input.pre-segments.size }}|"
                 "{{ task.input.pre-segments[1].id }}", task)
    assert out == "int-1|2|p2"


def test_escape_and_escape_once():
    task = {"t": "Tom & Jerry &amp; <b>"}
    assert render("{{ task.input.t | escape }}", task) == "Tom &amp; Jerry &amp;amp; &lt;b&gt;"
    assert render("{{ task.input.t | escape_once }}", task) == "Tom &amp; Jerry &amp; &lt;b&gt;"
    # `escape` output is not escaped a second time by autoescape...
    assert render("{{ task.input.t | escape }}", task).count("&amp;amp;") == 1
    # ...but an explicit second `escape` does escape again (Liquid semantics).
    assert render("{{ task.input.t | escape | escape }}", {"t": "<"}) == "&amp;lt;"


def test_to_json_round_trips_through_an_attribute():
    task = {"source-ref": "s3://b/k.wav", "transcription": XSS + ' "quoted" \'single\' é',
            "pre-segments": [{"id": "p1", "start": 0.5, "end": 1.25, "text": "<script>x</script>"}]}
    out = render('<div data-x="{{ task.input | to_json | escape }}"></div>', task)
    assert "<script" not in out and "<img" not in out

    class Grab(HTMLParser):
        value = None

        def handle_starttag(self, tag, attrs):
            self.value = dict(attrs)["data-x"]

    parser = Grab()
    parser.feed(out)
    assert json.loads(parser.value) == task


def test_to_json_without_escape_is_escaped_once_by_autoescape():
    out = render("{{ task.input | to_json }}", {"a": "<&>"})
    assert json.loads(html.unescape(out)) == {"a": "<&>"}
    assert render("{{ task.input.missing | to_json }}", {}) == "null"


def test_skip_autoescape_emits_raw():
    assert render("{{ task.input.h | skip_autoescape }}", {"h": "<b>bold</b>"}) == "<b>bold</b>"


def test_grant_read_access():
    seen: list[str] = []

    def grant(uri: str) -> str:
        seen.append(uri)
        return "/media/tok?a=1&b=2"

    out = render_liquid("{{ task.input.source-ref | grant_read_access }}", {"source-ref": "s3://bkt/m/a.wav"}, grant)
    assert seen == ["s3://bkt/m/a.wav"]
    # Printed into HTML, the URL's `&` is escaped, as Ground Truth does with presigned URLs.
    assert out == "/media/tok?a=1&amp;b=2"
    assert render_liquid("[{{ task.input.nope | grant_read_access }}]", {}, grant) == "[]"
    assert seen == ["s3://bkt/m/a.wav"]  # nothing granted for a missing value


def test_environment_is_reusable_and_filters_registered():
    env = make_environment(lambda uri: "u")
    for name in ("grant_read_access", "to_json", "escape", "escape_once", "skip_autoescape"):
        assert name in env.filters
    assert env.autoescape is True


@pytest.fixture
def fake_static(tmp_path) -> Path:
    (tmp_path / "js").mkdir()
    (tmp_path / "css").mkdir()
    (tmp_path / "js" / "main.js").write_text("export {}\n")
    (tmp_path / "css" / "gtkit.css").write_text("body{}\n")
    return tmp_path


def test_rendered_template_through_liquid(fake_static):
    """The template `render_template` produces, rendered the way Ground Truth will render it."""
    schema = load_label_schema("call-center").model_copy(update={"instructions": "Use {{ braces }} & {% tags %}"})
    template = render_template(schema, "https://cdn.example/gtkit", static_dir=fake_static)
    task = {"source-ref": "s3://bkt/media/a b.wav", "media-type": "audio", "interaction-id": "int-9",
            "transcription": XSS, "peaks-ref": "s3://bkt/peaks/a.json",
            "spectrogram-ref": "s3://bkt/peaks/a.spectrogram.bin.gz",
            "pre-segments": [{"id": "p1", "track": "speaker", "label": "Agent", "start": 0, "end": 1,
                              "text": "<script>alert(2)</script>"}]}
    out = render_liquid(template, task, lambda uri: f"https://signed.example/{uri[5:]}?sig=1&exp=2")

    class App(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.attrs: dict[str, str | None] = {}
            self.tags: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if dict(attrs).get("id") == "gtkit-app":
                self.attrs = dict(attrs)

    parser = App()
    parser.feed(out)
    app = parser.attrs
    assert json.loads(app["data-task-input"]) == task
    assert json.loads(app["data-schema"])["instructions"] == "Use {{ braces }} & {% tags %}"
    assert app["data-media-url"] == "https://signed.example/bkt/media/a b.wav?sig=1&exp=2"
    assert app["data-peaks-url"] == "https://signed.example/bkt/peaks/a.json?sig=1&exp=2"
    assert app["data-spectrogram-url"] == "https://signed.example/bkt/peaks/a.spectrogram.bin.gz?sig=1&exp=2"
    assert "data-sidecar-url" not in app  # absent from the task input -> no attribute
    assert app["data-task-key"] == "gtkit:call-center:int-9:s3://bkt/media/a b.wav"
    assert "img" not in parser.tags  # the XSS payloads stayed text inside attributes
    # boot fail-safe, crowd elements, import map, entry module: nothing else
    assert parser.tags.count("script") == 4
