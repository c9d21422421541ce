"""Amazon Nova's reserved words in Bedrock exports: rewritten reversibly by default and counted,
refused with --reserved-words fail (naming record and field), kept with keep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract.records import ProvenanceRecord
from toolkit.export import BatchQuotas, ExportError, ExportOptions, export
from toolkit.export.reserved import PATTERN, RESERVED_WORDS, RewritesMismatch, restore, rewrite
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
EDGE = FIXTURES / "edge.output.manifest"
CALLS = FIXTURES / "call_center.output.manifest"
# (format, bedrock schema, out, data files, provenance)
FORMATS = [
    ("bedrock", "messages", "o.jsonl", ["o.jsonl"], "o.provenance.jsonl"),
    ("bedrock", "prompt-completion", "o.jsonl", ["o.jsonl"], "o.provenance.jsonl"),
    ("bedrock-conversation-2024", "messages", "o.jsonl", ["o.jsonl"], "o.provenance.jsonl"),
    ("bedrock-batch", "messages", "batch", ["batch/job-000/part-000.jsonl"], "batch/provenance.jsonl"),
]
IDS = ["messages", "prompt-completion", "conversation-2024", "batch"]


def run(tmp_path: Path, fmt: str, schema: str, out: str, manifest: Path = EDGE, **kw):
    # Batch lines carry only the prompt: sft-summary's holds the transcript.
    preset = "sft-summary" if fmt == "bedrock-batch" else "sft-transcription"
    return export(Storage(), str(manifest), ExportOptions(
        preset=preset, format=fmt, bedrock_schema=schema, out=str(tmp_path / out),
        quotas=BatchQuotas(min_records=1), **kw))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def texts_at(row: dict, field: str) -> str:
    node = row
    for key in field.split("."):
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def reserved_in(value: object) -> list[str]:
    return PATTERN.findall(json.dumps(value, ensure_ascii=False))


@pytest.mark.parametrize(("fmt", "schema", "out", "data", "prov"), FORMATS, ids=IDS)
def test_every_bedrock_export_rewrites_them_reversibly(tmp_path, fmt, schema, out, data, prov):
    summary = run(tmp_path / "rw", fmt, schema, out)
    kept = run(tmp_path / "keep", fmt, schema, out, reserved_words="keep")
    rows = [r for name in data for r in lines(tmp_path / "rw" / name)]
    originals = [r for name in data for r in lines(tmp_path / "keep" / name)]
    assert all(not reserved_in(r) for r in rows)
    assert sum(len(reserved_in(r)) for r in originals) == sum(summary.reserved.values()) > 0
    assert summary.reserved == kept.reserved and summary.reserved_mode == "rewrite" and kept.reserved_mode == "keep"
    assert summary.reserved["User:"] >= 1 and summary.reserved["[EOS]"] >= 1  # counted per listed spelling
    assert ("reserved word rewritten: User:", str(summary.reserved["User:"])) in summary.rows()
    provenance = lines(tmp_path / "rw" / prov)
    assert len(provenance) == len(rows)
    for row, original, p in zip(rows, originals, provenance, strict=True):
        ProvenanceRecord.model_validate(p)
        rewrites = p.get("reserved") or []
        by_field: dict[str, list[tuple[int, str]]] = {}
        for r in rewrites:
            by_field.setdefault(r["field"], []).append((r["at"], r["word"]))
        for field, hits in by_field.items():  # exact restore from the provenance sidecar
            assert restore(texts_at(row, field), hits) == texts_at(original, field)
        restored = json.loads(restore(json.dumps(row, ensure_ascii=False)))  # and by the reverse mapping
        assert restored == original
        assert bool(rewrites) == bool(reserved_in(original))


def test_nothing_changes_where_there_is_no_reserved_word(tmp_path):
    summary = run(tmp_path, "bedrock-conversation-2024", "messages", "o.jsonl", manifest=CALLS)
    assert not summary.reserved and summary.written == 6
    assert all("reserved" not in p for p in lines(tmp_path / "o.provenance.jsonl"))


@pytest.mark.parametrize(("fmt", "schema", "out", "data", "prov"), FORMATS, ids=IDS)
def test_fail_mode_names_record_and_field_and_writes_nothing(tmp_path, fmt, schema, out, data, prov):
    with pytest.raises(ExportError) as err:
        run(tmp_path / "f", fmt, schema, out, reserved_words="fail")
    message = str(err.value)
    assert "record int-edge-1/" in message and "(manifest line 1)" in message
    assert "'User:'" in message and "Amazon Nova" in message
    field = message.split(": ")[1].split(" holds")[0]
    assert field.split(".")[-1] in ("text", "content", "prompt", "completion", "system")
    assert "I need help" not in message  # never the text itself
    assert not (tmp_path / "f").exists()  # not even the directories made for the outputs


def test_cli_option(tmp_path):
    base = ["export", "--labels", str(EDGE), "--preset", "sft-transcription", "--format", "bedrock-conversation-2024",
            "-q"]
    bad = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a.jsonl"), "--reserved-words", "fail"])
    assert bad.exit_code == 1 and "int-edge-1/s1" in bad.output
    wrong = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "b.jsonl"), "--reserved-words", "maybe"])
    assert wrong.exit_code == 1 and "rewrite, fail, keep" in wrong.output
    summary = tmp_path / "s.json"
    ok = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "c.jsonl"), "--summary-json", str(summary)])
    assert ok.exit_code == 0, ok.output
    data = json.loads(summary.read_text())
    assert data["reserved_words"]["mode"] == "rewrite" and data["reserved_words"]["counts"]["User:"] >= 1


text_with_words = st.lists(st.one_of(
    st.text(max_size=8),
    st.sampled_from(RESERVED_WORDS).flatmap(lambda w: st.sampled_from([w, w.upper(), w.lower(), w.swapcase()])),
), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(text_with_words)
def test_rewrite_leaves_none_and_restores_exactly(text):
    new, hits = rewrite(text)
    assert PATTERN.search(new) is None
    assert len(new) == len(text)
    assert restore(new, hits) == text
    if not any(ch in text for ch in "\uff1a\uff1c\uff1e\uff3b\uff3d"):
        assert restore(new) == text


def test_restore_with_rewrites_that_do_not_match_is_a_library_error():
    new, hits = rewrite("User: hello")
    with pytest.raises(RewritesMismatch, match=r"^offset 0: no rewritten 'User:' there$") as caught:
        restore("x" + new, hits)
    assert isinstance(caught.value, ValueError) and caught.value.exit_code == 1
