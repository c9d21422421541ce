"""Fuzzing the output-manifest reader (toolkit/export/reader.py) and the export behind it: random
bytes, mutated JSON shapes, BOMs, wide encodings, deep nesting, non-finite numbers. No exception
escapes (a whole file in a wide encoding is the one InputEncodingError, and only then), every line
is either an item or reported (lines in = items + reported), the fast path never accepts a line the
exact path rejects, and every item holds only validated values.

`GTKIT_FUZZ_EXAMPLES=N` multiplies the number of cases; `pytest --hypothesis-show-statistics` shows
how many were tried and how they ended (hypothesis events).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from toolkit.contract.schema import SCHEMA_NAME_PATTERN as SCHEMA_NAME
from toolkit.export import BatchQuotas, EmptyExportError, ExportOptions, PresetError, export
from toolkit.export.reader import ItemFieldError, ManifestReader
from toolkit.storage import Storage
from toolkit.storage.lines import UTF8_BOM, WIDE_BOMS, InputEncodingError

FIXTURES = Path(__file__).parent / "fixtures" / "export"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"
SEEDS = [json.loads(line) for name in ("call_center.output.manifest", "tts.output.manifest", "edge.output.manifest")
         for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()[:2]]
SCALE = float(os.environ.get("GTKIT_FUZZ_EXAMPLES", "1"))


def examples(n: int) -> settings:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- strategies ---------------------------------------------------------------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e30, -0.0, 0.5, 2.0, 1.0]),
                    st.text(max_size=12), st.sampled_from(["call-center", "../../etc/passwd", "/tmp/x.yaml", ""]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def paths_of(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths_of(v, (*prefix, i))
    return out


def set_path(node: Any, path: tuple, value: Any, delete: bool) -> None:
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def mutated_line(draw) -> bytes:
    line = json.loads(json.dumps(draw(st.sampled_from(SEEDS))))
    for _ in range(draw(st.integers(0, 4))):
        paths = paths_of(line)
        if not paths:
            break
        set_path(line, draw(st.sampled_from(paths)), draw(json_values), draw(st.booleans()))
    text = json.dumps(line, ensure_ascii=draw(st.booleans()), allow_nan=True)
    if draw(st.integers(0, 9)) == 0:  # a non-finite literal, not JSON
        text = text.replace("0.", draw(st.sampled_from(["NaN, 0.", "Infinity, 0.", "-Infinity, 0."])), 1)
    if draw(st.integers(0, 14)) == 0:  # deep nesting somewhere
        depth = draw(st.sampled_from([300, 500, 1023, 1030, 5000]))
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    raw = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:  # an invalid UTF-8 byte
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"])) + raw[at:]
    if draw(st.integers(0, 19)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]  # truncated
    return raw


any_line = st.one_of(mutated_line(), mutated_line(), st.binary(max_size=120),
                     st.sampled_from([b"", b"  ", b"{}", b"[]", b"null", b'"x"', b"\x00\x00"]))


@st.composite
def manifest_bytes(draw) -> bytes:
    lines = draw(st.lists(any_line, min_size=1, max_size=6))
    data = b"\n".join(line.replace(b"\n", b" ") for line in lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"]))
    prefix = draw(st.integers(0, 9))
    if prefix == 0:
        data = UTF8_BOM + data
    elif prefix == 1:
        data = data.decode("utf-8", errors="replace").encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    return data


# -- checks ---------------------------------------------------------------------------------------
def wide(data: bytes) -> bool:
    first = data.split(b"\n", 1)[0]
    body = first.rstrip(b"\r\n")
    return any(first.startswith(bom) for bom, _ in WIDE_BOMS) or bool(body and body.count(0) * 4 >= len(body))


def check_item(item: Any) -> None:
    """What every builder may rely on."""
    assert isinstance(item.source_ref, str) and item.source_ref
    assert isinstance(item.interaction_id, str) and item.interaction_id
    assert item.media_type is None or isinstance(item.media_type, str)
    assert item.duration is None or (math.isfinite(item.duration) and item.duration >= 0)
    assert isinstance(item.metadata, dict)
    assert item.job_name is None or isinstance(item.job_name, str)
    assert item.creation_date is None or isinstance(item.creation_date, str)
    label = item.label
    assert label.label_schema is None or re.fullmatch(SCHEMA_NAME, label.label_schema)
    for seg in label.segments:
        assert 0 <= seg.start <= seg.end and math.isfinite(seg.end)
        assert 0 <= seg.agreement <= 1 and type(seg.agreement) is float and seg.support >= 1
    for c in label.content.values():
        assert 0 <= c.agreement <= 1 and (c.mean is None or math.isfinite(c.mean))
    for a in (label.agreement.overall, label.agreement.segments, label.agreement.content):
        assert a is None or (type(a) is float and 0 <= a <= 1)
    try:  # read when a preset uses them; a wrong type skips the item then (ItemFieldError, reported)
        assert item.transcription is None or isinstance(item.transcription, str)
        assert all(isinstance(s, dict) for s in item.pre_segments())
    except ItemFieldError:
        pass


def labels(reader: ManifestReader) -> list[tuple[int, dict]]:
    """(line, label) per item; raw worker answers left out (the fast path never parses them)."""
    return [(i.line, i.label.model_dump(exclude={"workers"})) for i in reader.items]  # type: ignore[attr-defined]


def read_all(path: Path, exact_only: bool = False) -> ManifestReader:
    reader = ManifestReader(Storage([MIRROR]), str(path))
    if exact_only:
        reader._fast_item = lambda number, raw: None  # type: ignore[method-assign]
    reader.items = list(reader)  # type: ignore[attr-defined]
    return reader


@examples(700)
@given(data=manifest_bytes())
def test_reader_never_raises_and_accounts_for_every_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "m.manifest"
    path.write_bytes(data)
    try:
        reader = read_all(path)
    except InputEncodingError:
        assert wide(data), "InputEncodingError for a file that is not in a wide encoding"
        event("whole-file encoding error")
        return
    assert not wide(data)
    s = reader.stats
    assert s.lines == len(reader.items) + sum(s.skipped.values()), "a line neither read nor reported"
    assert s.labeled == len(reader.items)
    assert s.lines == sum(1 for line in data.removeprefix(UTF8_BOM).split(b"\n") if line.strip())
    for item in reader.items:
        check_item(item)
    # The fast path never accepts what the exact path rejects, and both read the same label.
    exact = read_all(path, exact_only=True)
    assert labels(reader) == labels(exact)
    assert s.skipped == exact.stats.skipped
    event(f"lines: {min(s.lines, 6)}, items: {len(reader.items)}")
    for reason in s.skipped:
        event(f"reported: {reason}")


PRESET_FORMATS = [("sft-transcription", "trl"), ("sft-summary", "bedrock-conversation-2024"),
                  ("reward-segments", "webvtt"), ("preference-correction", "jsonl"), ("kto", "bedrock-batch"),
                  ("reward-segments", "rttm")]


@examples(120)
@given(data=manifest_bytes(), case=st.sampled_from(PRESET_FORMATS))
def test_export_never_raises_and_accounts_for_every_line(tmp_path_factory, data, case):
    preset, fmt = case
    root = tmp_path_factory.mktemp("fuzz")
    path = root / "m.manifest"
    path.write_bytes(data)
    out = root / ("o" if fmt in ("webvtt", "bedrock-batch") else "o.jsonl")
    try:
        summary = export(Storage([MIRROR]), str(path), ExportOptions(
            preset=preset, format=fmt, out=str(out), quotas=BatchQuotas(min_records=1)))
    except InputEncodingError:
        assert wide(data)
        event("export: whole-file encoding error")
        return
    except EmptyExportError as exc:
        summary = exc.summary
        assert not out.exists()
        event("export: empty (exit 4)")
    except PresetError as exc:  # the first item names no schema, or one not built in: the run's error
        assert "is not a built-in schema" in str(exc) or "needs the label schema" in str(exc)
        event("export: needs --schema")
        return
    assert summary.read == summary.labeled + sum(summary.skipped.values()), "a line neither exported nor reported"
    event(f"export: {min(summary.written, 5)} written")


FEEDBACK = [json.loads(line) for line in (Path(__file__).resolve().parent.parent / "examples" / "feedback" /
                                          "processed_feedback.jsonl").read_text(encoding="utf-8").splitlines()]


@st.composite
def feedback_line(draw) -> bytes:
    record = json.loads(json.dumps(draw(st.sampled_from(FEEDBACK))))
    if draw(st.booleans()):
        record[draw(st.sampled_from([*record, "human_labels", "x"]))] = draw(json_values)
    raw = json.dumps(record, ensure_ascii=draw(st.booleans())).encode()
    kind = draw(st.integers(0, 5))
    if kind == 0:
        depth = draw(st.sampled_from([500, 990, 1100, 5000]))
        raw = raw[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == 1:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80"])) + raw[at:]
    return raw


@examples(150)
@given(lines=st.lists(st.one_of(feedback_line(), st.binary(max_size=60)), min_size=1, max_size=5),
       bom=st.booleans())
def test_merge_never_raises_and_writes_every_line(tmp_path_factory, lines, bom):
    from toolkit.export import merge

    root = tmp_path_factory.mktemp("fuzz")
    data = (UTF8_BOM if bom else b"") + b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n"
    feedback = root / "fb.jsonl"
    feedback.write_bytes(data)
    try:
        summary = merge(Storage([MIRROR]), str(feedback), str(FIXTURES / "call_center.output.manifest"),
                        str(root / "out.jsonl"))
    except InputEncodingError:
        assert wide(data)
        event("merge: whole-file encoding error")
        return
    written = (root / "out.jsonl").read_bytes()
    assert written.count(b"\n") == data.count(b"\n")  # every line in is a line out
    assert summary.read == summary.written == sum(1 for line in data.removeprefix(UTF8_BOM).split(b"\n")
                                                  if line.strip())
    copied = sum(v for k, v in summary.skipped.items() if k.startswith("feedback:"))
    event(f"merge: {copied} reported")
