"""Fuzz the feedback record parser of `gtkit manifest build` (JSON Lines and CSV) with hypothesis, over
raw bytes and JSON shapes: whatever the input, no exception escapes, and every record is written,
skipped or reported (records in = written + skipped + reported; nothing silently dropped)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.contract import FeedbackRecord
from toolkit.ingest.build import BuildOptions, build_manifest
from toolkit.storage import Storage
from toolkit.storage.lines import foreign_encoding, iter_text_lines

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MIRROR = f"s3://example-feedback-bucket/={EXAMPLES}"
SAMPLES = [json.loads(x) for x in (EXAMPLES / "feedback" / "processed_feedback.jsonl").read_text().splitlines()]
FIELDS = [*FeedbackRecord.model_fields, "nested", ""]
CASES: Counter = Counter()  # what was tried, printed at the end of each test (pytest -s shows it)
# GTKIT_FUZZ_EXAMPLES=5000 for a long local run; CI runs the default.
FUZZ = settings(max_examples=int(os.environ.get("GTKIT_FUZZ_EXAMPLES", "250")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)
hostile_uris = st.sampled_from([
    "s3://example-feedback-bucket/../../../../etc/passwd", "s3://example-feedback-bucket//x.wav",
    "s3://example-feedback-bucket/media/./call_001.wav", "s3://", "s3://b", "/etc/passwd", "",
    "s3://example-feedback-bucket/media/call_001.wav", "s3://example-feedback-bucket/transcribe/call_002.json",
])


def deep(depth: int) -> object:
    value: object = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@st.composite
def records(draw) -> object:
    """A sample record with a few fields replaced (by any JSON, a hostile URI, deep nesting) or removed."""
    record = dict(draw(st.sampled_from(SAMPLES)))
    record["interaction_id"] = draw(st.text(max_size=6) | st.sampled_from(["a/b", "a_b", "int-0001"]))
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(FIELDS))
        how = draw(st.sampled_from(["json", "uri", "deep", "drop"]))
        if how == "drop":
            record.pop(name, None)
        else:
            record[name] = (draw(json_values) if how == "json" else draw(hostile_uris) if how == "uri"
                            else deep(draw(st.integers(60, 1100))))
    return record if draw(st.integers(0, 9)) else draw(json_values)  # sometimes not even an object


@st.composite
def damaged(draw, text: bytes) -> bytes:
    """`text` with random bytes put in, cut short, or left alone."""
    how = draw(st.sampled_from(["none", "none", "insert", "truncate"]))
    if how == "insert" and text:
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.binary(min_size=1, max_size=3)) + text[at:]
    if how == "truncate" and text:
        return text[:draw(st.integers(0, len(text) - 1))]
    return text


@st.composite
def jsonl_files(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["record", "record", "record", "bytes", "blank"]))
        if kind == "record":
            lines.append(draw(damaged(json.dumps(draw(records()), ensure_ascii=draw(st.booleans())).encode())))
        elif kind == "bytes":
            lines.append(draw(st.binary(max_size=40)))
        else:
            lines.append(draw(st.sampled_from([b"", b"  ", b"\t", b"\r"])))
    data = draw(st.sampled_from([b"\n", b"\r\n"])).join(lines) + draw(st.sampled_from([b"", b"\n"]))
    if draw(st.booleans()):
        CASES["with a UTF-8 BOM"] += 1
        data = codecs.BOM_UTF8 + data
    return data


def record_lines(data: bytes) -> set[int]:
    """Numbers of the lines that are records: every line that is not blank (ASCII whitespace)."""
    if foreign_encoding(data.split(b"\n", 1)[0].rstrip(b"\r")):
        return set()
    return {n for n, raw in enumerate(data.removeprefix(codecs.BOM_UTF8).split(b"\n"), start=1) if raw.strip()}


def build(tmp_path: Path, name: str, data: bytes):
    src, out, errors = tmp_path / name, tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    src.write_bytes(data)
    # No exception may escape: a crash here fails the example.
    report = build_manifest([str(src)], str(out), Storage([MIRROR]), BuildOptions(), errors_out=str(errors))
    # JSON Lines split on \n only: str.splitlines() would also split inside strings at U+0085/U+2028.
    written = [x for x in out.read_bytes().split(b"\n") if x] if out.exists() else []
    problems = [json.loads(x) for x in errors.read_bytes().split(b"\n") if x]
    return report, written, problems


def check_accounting(report, written, problems, records: set[int] | None) -> None:
    """records in = written + skipped + reported; each reported line is a record; written lines are valid."""
    per_line = {p["line"] for p in problems if p["field"] != "(file)"}
    assert report.balanced
    assert report.lines_out == len(written)
    assert report.skipped + report.errors == len(per_line)
    assert report.records_in == len(written) + len(per_line)
    if records is not None:
        assert report.records_in == len(records) and per_line <= records
    for line in written:
        json.loads(line.decode("utf-8"))  # every written line is UTF-8 JSON


@FUZZ
@given(data=jsonl_files(), utf16=st.integers(0, 15))
def test_jsonl_fuzz_nothing_escapes_nothing_dropped(tmp_path, data, utf16):
    CASES["jsonl"] += 1
    if utf16 == 0 and data:  # now and then the whole file in UTF-16: one file error, no records
        data = data.decode("utf-8", "replace").encode("utf-16")
        CASES["utf16"] += 1
    report, written, problems = build(tmp_path, "f.jsonl", data)
    whole = [p for p in problems if p["field"] == "(file)"]
    if whole:
        assert report.unreadable_files == 1 and report.records_in == 0 and "UTF-16" in whole[0]["message"]
    check_accounting(report, written, problems, record_lines(data))
    CASES["written"] += len(written)
    CASES["reported"] += len(problems)


@st.composite
def csv_files(draw) -> bytes:
    text = io.StringIO()
    rows = [draw(records()) for _ in range(draw(st.integers(0, 4)))]
    rows = [r for r in rows if isinstance(r, dict)]
    columns = sorted({str(k) for r in rows for k in r} | {"interaction_id", "channel"})
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({str(k): json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()})
    return draw(damaged(text.getvalue().encode("utf-8")))


@FUZZ
@given(data=csv_files())
def test_csv_fuzz_nothing_escapes_nothing_dropped(tmp_path, data):
    CASES["csv"] += 1
    report, written, problems = build(tmp_path, "f.csv", data)
    check_accounting(report, written, problems, None)
    CASES["written"] += len(written)
    CASES["reported"] += len(problems)


@pytest.fixture(scope="module", autouse=True)
def _report_cases():
    yield
    print(f"\nmanifest fuzz: {dict(CASES)}")


def test_line_reader_basics():
    """The shared reader: BOM dropped, UTF-16/32 refused once, bad lines named and reading goes on."""
    rows = list(iter_text_lines(io.BytesIO(b'\xef\xbb\xbf{"a":1}\r\n{"b":"\xc3"}\n\n{"c":3}')))
    assert [n for n, _ in rows] == [1, 2, 3, 4]
    assert rows[0][1] == '{"a":1}' and rows[2][1] == "" and rows[3][1] == '{"c":3}'
    assert "not valid UTF-8" in rows[1][1].message and "C3" in rows[1][1].message
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        assert foreign_encoding('{"a": 1}\n'.encode(encoding)), encoding
    assert foreign_encoding(b'{"a": "\x00"}') is None  # one stray NUL is a bad line, not a bad file
