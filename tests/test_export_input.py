"""Bad bytes and bad values in `gtkit export` and `gtkit merge` inputs (issue 12, D7 and D10): one bad
line is reported (file:line, field, message) and the rest processed; a file in the wrong encoding is
one clear error; a UTF-8 BOM is accepted; label values are validated on read; a labelSchema named in
the data is a built-in name, never a path. Lines in = written + reported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.export import ExportOptions, ManifestReader, PresetError, export, merge
from toolkit.storage import Storage
from toolkit.storage.lines import InputEncodingError

FIXTURES = Path(__file__).parent / "fixtures" / "export"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"
CALLS = FIXTURES / "call_center.output.manifest"
GOOD = CALLS.read_bytes().splitlines()[:2]  # two labelled lines (int-0001, int-0002)
FEEDBACK = Path(__file__).resolve().parent.parent / "examples" / "feedback" / "processed_feedback.jsonl"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def label_line(**changes) -> bytes:
    """Line 1 of the fixture with `changes` applied: dotted paths under the line -> new JSON value."""
    line = json.loads(GOOD[0])
    for path, value in changes.items():
        node = line
        keys = [int(k) if k.isdigit() else k for k in path.split("/")]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return json.dumps(line).encode()


def read(path: Path) -> ManifestReader:
    reader = ManifestReader(Storage([MIRROR]), str(path))
    reader.items = list(reader)  # type: ignore[attr-defined]
    return reader


def accounted(reader: ManifestReader) -> None:
    s = reader.stats
    assert s.lines == s.labeled + sum(s.skipped.values()), "a line neither exported nor reported"
    assert len(s.problems) == sum(s.skipped.values())
    assert all(p.file == reader.uri for p in s.problems)


# -- D7: bytes ------------------------------------------------------------------------------------
def test_invalid_utf8_byte_is_one_line_with_its_field(tmp_path):
    bad = GOOD[0].replace(b"wants a callback", b"wants a \xffcallback", 1)
    path = write(tmp_path, "bad.manifest", bad + b"\n" + GOOD[1] + b"\n")
    reader = read(path)
    assert [i.interaction_id for i in reader.items] == ["int-0002"]
    (problem,) = reader.stats.problems
    assert (problem.line, problem.reason) == (1, "invalid-utf8")
    assert "byte 0xff" in problem.detail.lower() and "call-labels.content.summary.value" in problem.detail
    assert "callback" not in problem.detail
    accounted(reader)


def test_utf8_bom_on_the_first_line_is_accepted(tmp_path):
    path = write(tmp_path, "bom.manifest", b"\xef\xbb\xbf" + b"\n".join(GOOD) + b"\n")
    reader = read(path)
    assert [i.interaction_id for i in reader.items] == ["int-0001", "int-0002"]
    accounted(reader)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_utf16_or_utf32_file_is_one_clear_error(tmp_path, encoding):
    path = write(tmp_path, "wide.manifest", (b"\n".join(GOOD) + b"\n").decode().encode(encoding))
    with pytest.raises(InputEncodingError, match=r"wide\.manifest: .*UTF-(16|32).*UTF-8"):
        read(path)
    out = tmp_path / "out" / "o.jsonl"
    result = CliRunner().invoke(app, ["export", "--labels", str(path), "--preset", "sft-transcription",
                                      "--format", "jsonl", "--out", str(out), "-q"])
    assert result.exit_code == 1 and "UTF-8" in result.output and "Traceback" not in result.output
    assert result.output.startswith("error: ") and result.output.count("error:") == 1  # one message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("depth", [500, 5000])
def test_deep_nesting_is_read_or_reported_never_fatal(tmp_path, depth):
    deep = GOOD[0][:-1] + b', "extra": ' + b"[" * depth + b"]" * depth + b"}"
    path = write(tmp_path, "deep.manifest", deep + b"\n" + GOOD[1] + b"\n")
    reader = read(path)
    accounted(reader)
    if depth == 500:
        assert len(reader.items) == 2
    else:
        assert [i.interaction_id for i in reader.items] == ["int-0002"]
        assert "nested deeper than" in reader.stats.problems[0].detail
    summary = export(Storage([MIRROR]), str(path), ExportOptions(
        preset="reward-segments", format="jsonl", out=str(tmp_path / "o.jsonl")))
    assert summary.written == len(reader.items)


def test_problems_print_file_and_line(tmp_path):
    bad = GOOD[0].replace(b"this is Dana", b"this is \xffDana", 1)
    path = write(tmp_path, "bad.manifest", bad + b"\n" + GOOD[1] + b"\n")
    result = CliRunner().invoke(app, ["export", "--labels", str(path), "--preset", "sft-transcription",
                                      "--format", "jsonl", "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0
    assert f"{path}:1: invalid-utf8:" in result.output.replace("\n", "")


# -- D7: merge --------------------------------------------------------------------------------------
def merge_run(tmp_path: Path, feedback: Path, labels: Path = CALLS):
    out = tmp_path / "merged.jsonl"
    summary = merge(Storage([MIRROR]), str(feedback), str(labels), str(out))
    return summary, out


def test_merge_feedback_bad_byte_bom_and_depth(tmp_path):
    lines = FEEDBACK.read_bytes().splitlines()
    first = b"\xef\xbb\xbf" + lines[0]  # BOM on the first line
    bad = lines[3][:-1] + b', "note": "caf\xe9"}'  # latin-1 byte
    deep = lines[4][:-1] + b', "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    ok_deep = lines[5][:-1] + b', "deep": ' + b"[" * 500 + b"]" * 500 + b"}"
    source = [first, *lines[1:3], bad, deep, ok_deep, *lines[6:]]
    feedback = write(tmp_path, "fb.jsonl", b"\n".join(source) + b"\n")
    summary, out = merge_run(tmp_path, feedback)
    written = out.read_bytes().splitlines()
    assert len(written) == len(source) == summary.read == summary.written  # nothing dropped
    assert not written[0].startswith(b"\xef\xbb\xbf") and json.loads(written[0])["human_labels"]  # int-0001 merged
    assert written[3] == bad and written[4] == deep  # reported, copied unchanged
    assert json.loads(written[5])["deep"] == json.loads(ok_deep)["deep"]
    feedback_problems = [p for p in summary.problems if p.file == str(feedback)]
    assert [(p.line, p.reason) for p in feedback_problems] == [(4, "invalid-utf8"), (5, "malformed-json")]
    assert "note" in feedback_problems[0].detail and "nested deeper than" in feedback_problems[1].detail


@pytest.mark.parametrize("which", ["feedback", "labels"])
def test_merge_utf16_input_is_one_clear_error(tmp_path, which):
    wide = write(tmp_path, "wide.jsonl", (FEEDBACK if which == "feedback" else CALLS).read_text().encode("utf-16"))
    args = {"feedback": wide, "labels": CALLS} if which == "feedback" else {"feedback": FEEDBACK, "labels": wide}
    out = tmp_path / "o" / "merged.jsonl"
    result = CliRunner().invoke(app, ["merge", "--feedback", str(args["feedback"]), "--labels", str(args["labels"]),
                                      "--out", str(out), "--mirror", MIRROR, "-q"])
    assert result.exit_code == 1 and "UTF-16" in result.output and "Traceback" not in result.output
    assert not out.exists()


# -- D10: values ----------------------------------------------------------------------------------
BAD_VALUES = {
    "start after end": ({"call-labels/segments/0/start": 5.0, "call-labels/segments/0/end": 1.0},
                        "segments.0.end"),
    "agreement true": ({"call-labels/segments/0/agreement": True}, "segments.0.agreement"),
    "overall 1e30": ({"call-labels/agreement/overall": 1e30}, "agreement.overall"),
    "content agreement true": ({"call-labels/content/overall_rating/agreement": True}, "content.overall_rating"),
    "negative start": ({"call-labels/segments/0/start": -1.0}, "segments.0.start"),
    "support true": ({"call-labels/segments/0/support": True}, "segments.0.support"),
    "duration text": ({"duration-seconds": "21 s"}, "duration-seconds"),
    "duration negative": ({"duration-seconds": -3}, "duration-seconds"),
    "job name object": ({"call-labels-metadata/job-name": {"a": 1}}, "call-labels-metadata.job-name"),
    "schema path": ({"call-labels/labelSchema": "../../etc/passwd"}, "labelSchema"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_label_values_are_validated_on_read(tmp_path, case):
    changes, field = BAD_VALUES[case]
    path = write(tmp_path, "v.manifest", label_line(**changes) + b"\n" + GOOD[1] + b"\n")
    reader = read(path)
    assert [i.interaction_id for i in reader.items] == ["int-0002"], case
    (problem,) = reader.stats.problems
    assert problem.line == 1 and field in problem.detail, problem.detail
    accounted(reader)


def test_nan_literals_never_reach_a_record(tmp_path):
    raw = GOOD[0].replace(b'"agreement": 0.95', b'"agreement": NaN', 1)
    meta = GOOD[0].replace(b'"channel": "voice"', b'"channel": Infinity', 1)
    # In a worker's raw answer (audit data the exporter never reads) it costs nobody the label.
    audit = GOOD[0].replace(b'"mediaDuration": 21.0, "tracks"', b'"mediaDuration": NaN, "tracks"', 1)
    assert raw != GOOD[0] and meta != GOOD[0] and audit != GOOD[0]
    path = write(tmp_path, "nan.manifest", b"\n".join([raw, meta, audit, GOOD[1]]) + b"\n")
    reader = read(path)
    assert [i.interaction_id for i in reader.items] == ["int-0001", "int-0002"]
    assert [(p.line, p.reason) for p in reader.stats.problems] == [(1, "malformed-label"), (2, "invalid-field")]
    assert "metadata.channel: not a finite number" in reader.stats.problems[1].detail
    accounted(reader)


def test_a_schema_named_in_the_data_is_never_opened_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: [not, a, schema\n", encoding="utf-8")  # opening it would fail the run
    lines = [label_line(**{"call-labels/labelSchema": str(evil)}), GOOD[1]]
    path = write(tmp_path, "p.manifest", b"\n".join(lines) + b"\n")
    opened: list[str] = []
    real_open = Path.read_text

    def spy(self, *a, **kw):
        opened.append(str(self))
        return real_open(self, *a, **kw)

    monkeypatch.setattr(Path, "read_text", spy)
    summary = export(Storage([MIRROR]), str(path), ExportOptions(
        preset="sft-transcription", format="jsonl", out=str(tmp_path / "o.jsonl")))
    assert summary.written == 2 and summary.skipped == {"malformed-label": 1}  # int-0002 exported
    assert str(evil) not in opened and summary.extra["label schema"] == "call-center"


def test_a_custom_schema_name_needs_schema_and_is_not_read_from_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme-calls").write_text((FIXTURES.parent.parent.parent / "toolkit" / "schemas" /
                                          "call-center.yaml").read_text().replace("name: call-center",
                                                                                  "name: acme-calls"))
    path = write(tmp_path, "c.manifest", label_line(**{"call-labels/labelSchema": "acme-calls"}) + b"\n")
    with pytest.raises(PresetError, match=r"labelSchema 'acme-calls' of line 1 is not a built-in schema.*--schema"):
        export(Storage([MIRROR]), str(path), ExportOptions(
            preset="sft-transcription", format="jsonl", out=str(tmp_path / "o.jsonl")))
    summary = export(Storage([MIRROR]), str(path), ExportOptions(
        preset="sft-transcription", format="jsonl", out=str(tmp_path / "o.jsonl"),
        schema=str(tmp_path / "acme-calls")))
    assert summary.written == 4 and summary.extra["label schema"] == "acme-calls"
    assert os.path.exists(tmp_path / "o.jsonl")


def test_a_nan_where_nothing_reads_it_does_not_break_the_full_line(tmp_path):
    """The fast path (label attribute known from an earlier line) accepts a NaN literal in an opaque part (a
    worker id); reading the whole line later (transcription, pre-segments, pre-content) must not fail on
    it (found by test_export_fuzz)."""
    line = json.loads(GOOD[0])
    line["call-labels"]["workers"] = [{"workerId": "w1", "valid": True, "answer": {
        "schemaVersion": "1.0", "mediaDuration": 21.0, "tracks": [], "segments": []}}]
    text = json.dumps(line).replace('"workerId": "w1"', '"workerId": [NaN, 0.0]')
    manifest = tmp_path / "m.manifest"
    manifest.write_bytes(GOOD[1] + b"\n" + text.encode() + b"\n")
    items = list(ManifestReader(Storage(), str(manifest)))
    assert [i.interaction_id for i in items] == ["int-0002", "int-0001"]
    assert items[1].transcription.startswith("Northwind support")


def test_a_reader_option_out_of_its_choices_is_a_library_error(tmp_path):
    from toolkit.errors import GtkitError

    with pytest.raises(ValueError, match=r"^--cannot-annotate must be skip or keep, got 'drop'$") as caught:
        ManifestReader(Storage(), str(tmp_path / "none.manifest"), cannot_annotate="drop")
    assert isinstance(caught.value, GtkitError)
