"""gtkit report: self-contained HTML (inline SVG, no external resources, everything escaped)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.export import report
from toolkit.export.report import _union_length, collect
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
CALLS = FIXTURES / "call_center.output.manifest"
TTS = FIXTURES / "tts.output.manifest"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_report_is_self_contained(tmp_path):
    out = tmp_path / "report.html"
    summary = report(Storage(), str(CALLS), str(out))
    page = out.read_text(encoding="utf-8")
    parser = Tags()
    parser.feed(page)
    names = [t for t, _ in parser.tags]
    assert "svg" in names and "rect" in names
    assert not {"script", "link", "img", "iframe", "object"} & set(names)
    for _, attrs in parser.tags:
        for key in ("src", "href"):
            assert key not in attrs
    assert "http://" not in page and "https://" not in page and "url(" not in page
    assert summary.read == 8 and summary.labeled == 2
    # Counts and sections present; annotation text never shown.
    for heading in ("Segments per label: speaker", "Segment duration", "Segment agreement",
                    "overall_rating (rating)", "background_noise (answers)", "per track category"):
        assert heading in page
    assert "Northwind" not in page and "maria.okafor" not in page
    assert "Skipped: malformed-json" in page


def test_report_aggregates():
    data = collect(Storage(), str(TTS))
    assert data.summary.labeled == 6
    assert data.labels[("pronunciation", "Mispronounced")] == 4
    assert data.content["naturalness"] == {"4.5": 1, "2": 1, "4": 1, "3": 1, "2.5": 1, "5": 1}
    assert data.jobs == {"tts-review-7": 6}
    assert _union_length([(0, 2), (1, 3), (5, 6)]) == 4


def test_report_escapes_everything(tmp_path):
    line = json.loads(CALLS.read_text().splitlines()[0])
    evil = '<script>alert("x")</script>'
    line["call-labels"]["segments"][0]["label"] = evil
    line["call-labels"]["content"]["background_noise"]["value"] = [evil]
    line["call-labels-metadata"]["job-name"] = evil
    manifest = tmp_path / "evil.manifest"
    manifest.write_text(json.dumps(line) + "\n")
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--labels", str(manifest), "--out", str(out), "-q",
                                      "--title", "<b>T</b>"])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<script" not in page and "<b>T" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert re.search(r"<title>&lt;b&gt;T&lt;/b&gt;</title>", page)


def test_default_title_names_the_jobs_and_the_label_attribute(tmp_path):
    """Issue 20: the title says what the labels are, not the file they came in."""
    out = tmp_path / "report.html"
    report(Storage(), str(CALLS), str(out))
    page = out.read_text(encoding="utf-8")
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    # the fixture's job-name and its (auto-detected) label attribute
    assert title == "Dataset report: cc-seg-1 (label attribute: call-labels)"
    assert "output.manifest" not in title
    assert f"<h1>{title}</h1>" in page


def test_default_title_for_many_jobs_and_none():
    from toolkit.export.report import ReportData, default_title
    from toolkit.export.summary import RunSummary

    data = ReportData(summary=RunSummary(command="report"))
    data.jobs.update({"a": 3, "b": 2, "c": 1, "d": 1, "e": 1})
    data.label_attributes.update({"segments": 6, "labels": 2})
    assert default_title(data, "x/out.manifest") == (
        "Dataset report: a, b, c and 2 more jobs (label attributes: segments, labels)")
    empty = ReportData(summary=RunSummary(command="report"))
    assert default_title(empty, "s3://b/job/output.manifest") == "Dataset report: output.manifest"
