"""An export that writes 0 records fails (exit 4) with the skip reasons, says when the input looks like
an input manifest, and leaves nothing at --out; --allow-empty for pipelines that expect it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.export import EmptyExportError, ExportOptions, export
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
CALLS = FIXTURES / "call_center.output.manifest"


@pytest.fixture
def input_manifest(tmp_path) -> Path:
    path = tmp_path / "input.manifest"
    path.write_text("".join(json.dumps({"source-ref": f"s3://b/m/{i}.wav", "interaction-id": f"i{i}",
                                        "media-type": "audio"}) + "\n" for i in range(3)), encoding="utf-8")
    return path


@pytest.fixture
def all_skipped(tmp_path) -> Path:
    """An output manifest whose lines all give no record (failed, malformed, unlabelled...)."""
    path = tmp_path / "skipped.manifest"
    path.write_text("".join(CALLS.read_text(encoding="utf-8").splitlines(keepends=True)[2:]), encoding="utf-8")
    return path


def cli(*args: str):
    return CliRunner().invoke(app, ["export", *args])


@pytest.mark.parametrize("fmt", ["jsonl", "trl", "bedrock", "bedrock-batch", "rttm", "webvtt"])
def test_input_manifest_exits_4_says_so_and_writes_nothing(tmp_path, input_manifest, fmt):
    out = tmp_path / "out" / ("o.jsonl" if fmt not in ("bedrock-batch", "webvtt") else "dir")
    summary = tmp_path / "s.json"
    result = cli("--labels", str(input_manifest), "--preset", "sft-transcription", "--format", fmt,
                 "--out", str(out), "--summary-json", str(summary))
    assert result.exit_code == 4, result.output
    assert "0 records" in result.output or "0 files" in result.output or "0 lines" in result.output
    assert "no-label: 3" in result.output
    assert "input manifest" in result.output and "output.manifest" in result.output
    assert "--allow-empty" in result.output
    assert "--batch-min-records" not in result.output  # no option that cannot help
    assert not (tmp_path / "out").exists()
    data = json.loads(summary.read_text())
    assert data["written"] == 0 and data["skipped"] == {"no-label": 3}


def test_all_lines_skipped_lists_the_reasons_without_the_input_manifest_hint(tmp_path, all_skipped):
    result = cli("--labels", str(all_skipped), "--preset", "sft-transcription", "--format", "trl",
                 "--out", str(tmp_path / "o.jsonl"), "-q")
    assert result.exit_code == 4
    for reason in ("failed: 2", "malformed-json: 1", "malformed-label: 1", "no-label: 1", "unconsolidated: 1"):
        assert reason in result.output
    assert "input manifest" not in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_records_dropped_by_the_preset_are_reasons_too(tmp_path):
    # sft-summary of int-0002 only: its summary is empty, so the one item gives no record.
    line = CALLS.read_text(encoding="utf-8").splitlines()[1]
    manifest = tmp_path / "m.manifest"
    manifest.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(EmptyExportError) as err:
        export(Storage(), str(manifest), ExportOptions(preset="sft-summary", format="jsonl", out=str(tmp_path / "o")))
    assert err.value.summary.labeled == 1 and err.value.summary.dropped == {"no-summary": 1}
    assert "no-summary: 1" in str(err.value) and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("fmt", "out", "files"), [
    ("jsonl", "o.jsonl", ["o.jsonl"]),
    ("bedrock", "o.jsonl", ["o.jsonl", "o.provenance.jsonl"]),
    ("bedrock-batch", "batch", ["batch/jobs.json", "batch/provenance.jsonl"]),
    ("webvtt", "vtt", []),
])
def test_allow_empty(tmp_path, input_manifest, fmt, out, files):
    result = cli("--labels", str(input_manifest), "--preset", "sft-transcription", "--format", fmt,
                 "--out", str(tmp_path / out), "--allow-empty", "-q")
    assert result.exit_code == 0, result.output
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and p != input_manifest)
    assert made == sorted(files)
    if fmt == "bedrock-batch":
        assert json.loads((tmp_path / "batch" / "jobs.json").read_text())["jobs"] == []
