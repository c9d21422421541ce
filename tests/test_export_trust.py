"""Export filters --exclude-workers, --min-agreement and per-record quality weights, loaded by `datasets`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_consolidate import W1 as A1
from test_consolidate import W2 as A2
from test_consolidate import W3 as A3
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import ConsolidatedLabel, load_label_schema
from toolkit.contract.base import dump
from toolkit.export import EmptyExportError, ExportOptions, export
from toolkit.export.trust import BELOW_MIN_AGREEMENT, EXCLUDED_WORKER, TrustOptions
from toolkit.export.workers import pseudonym
from toolkit.labeling.consolidate import consolidate
from toolkit.storage import Storage

W1, W2, W3 = "private.us-east-1.w1aaaa", "private.us-east-1.w2bbbb", "private.us-east-1.w3cccc"
SCHEMA = load_label_schema("call-center")
AGREEMENT = {"int-1": 0.721, "int-2": 0.875}  # int-1 without W3: 0.875 as well
THRESHOLD = 0.8


def labeled_line(number: int, answers) -> dict:
    """An output-manifest line whose label keeps the workers' answers (as the post-annotation Lambda writes it)."""
    line = {"source-ref": f"s3://media/call_{number}.wav", "media-type": "audio", "interaction-id": f"int-{number}",
            "duration-seconds": 21.0}
    line["call-labels"] = dump(consolidate(answers, SCHEMA, data_object=line))
    line["call-labels-metadata"] = {"type": "groundtruth/custom", "job-name": "cc-seg-1", "human-annotated": "yes",
                                    "creation-date": "2024-11-05T10:00:00.000000"}
    return line


@pytest.fixture
def manifest(tmp_path) -> Path:
    return write_labels(tmp_path)


def write_labels(tmp_path: Path) -> Path:
    # int-1: three workers (test_consolidate's answers W1-W3); int-2: two of them
    path = tmp_path / "labels.manifest"
    lines = [labeled_line(1, [(W1, A1), (W2, A2), (W3, A3)]), labeled_line(2, [(W1, A1), (W2, A2)])]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def run(tmp_path: Path, manifest: Path, trust: TrustOptions, preset: str = "sft-transcription", **kw):
    opts = ExportOptions(preset=preset, format="trl", out=str(tmp_path / "out.jsonl"), trust=trust, **kw)
    return export(Storage(), str(manifest), opts)


def load(tmp_path: Path):
    from datasets import load_dataset
    return load_dataset("json", data_files=str(tmp_path / "out.jsonl"), split="train",
                        cache_dir=str(tmp_path / "hf-cache"))


@pytest.fixture(autouse=True)
def hf_offline(tmp_path, monkeypatch):
    offline(tmp_path, monkeypatch)


def offline(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def labels(manifest: Path) -> dict[str, ConsolidatedLabel]:
    return {x["interaction-id"]: ConsolidatedLabel.model_validate(x["call-labels"])
            for x in map(json.loads, manifest.read_text(encoding="utf-8").splitlines())}


def test_quality_weight_is_the_record_agreement(tmp_path, manifest):
    plain = run(tmp_path, manifest, TrustOptions())
    assert all("quality_weight" not in r["lineage"] for r in load(tmp_path))  # opt-in: other exports unchanged
    summary = run(tmp_path, manifest, TrustOptions(quality_weights=True))
    ds = load(tmp_path)
    assert ds.num_rows == summary.written == plain.written > 0
    for row in ds:
        lineage = row["lineage"]
        assert lineage["quality_weight"] == (1.0 if lineage["agreement"] is None else lineage["agreement"])


def test_min_agreement_keeps_only_trusted_items(tmp_path, manifest):
    agreement = {k: v.agreement.overall for k, v in labels(manifest).items()}
    assert agreement == AGREEMENT
    summary = run(tmp_path, manifest, TrustOptions(min_agreement=THRESHOLD))
    ds = load(tmp_path)
    assert {row["lineage"]["interaction_id"] for row in ds} == {"int-2"}
    assert summary.skipped[BELOW_MIN_AGREEMENT] == 1


def test_excluded_worker_items_are_consolidated_again_without_them(tmp_path, manifest):
    before = labels(manifest)["int-1"]
    again = consolidate([w for w in before.workers if w.worker_id != W3], SCHEMA)
    assert again.valid_worker_count == 2 and len(again.segments) < len(before.segments)  # W3's lone segment is gone
    run(tmp_path, manifest, TrustOptions(exclude_workers=frozenset({W3}), quality_weights=True))
    real = list(load(tmp_path))
    got = {row["lineage"]["segment_id"]: row["lineage"]["agreement"] for row in real
           if row["lineage"]["interaction_id"] == "int-1"}
    assert got == {s.id: round(s.agreement, 4) for s in again.segments if s.text}
    # The pseudonym from `gtkit report --workers` (same key) excludes the same worker.
    run(tmp_path, manifest, TrustOptions(exclude_workers=frozenset({pseudonym(W3, b"k")}), id_key=b"k",
                                         quality_weights=True))
    assert list(load(tmp_path)) == real


def test_excluding_every_worker_skips_with_a_reason(tmp_path, manifest):
    with pytest.raises(EmptyExportError) as caught:
        run(tmp_path, manifest, TrustOptions(exclude_workers=frozenset({W1, W2, W3})))
    assert caught.value.summary.skipped[EXCLUDED_WORKER] == 2
    text = json.dumps(caught.value.summary.as_dict())
    assert W1 not in text and "w1aaaa" not in text  # the reason counts workers, never names them


def test_cli_flags(tmp_path, manifest):
    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, [
        "export", "--labels", str(manifest), "--preset", "sft-transcription", "--format", "trl", "--out", str(out),
        "--min-agreement", str(THRESHOLD), "--exclude-workers", f"{pseudonym(W3, b'k')},nobody", "--quality-weights",
        "-q"], env={"GTKIT_REPORT_ID_KEY": "k"})
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows and all(0 <= r["lineage"]["quality_weight"] <= 1 for r in rows)
    # Without W3, int-1's agreement (0.875) passes the threshold: exclusion comes first.
    assert {r["lineage"]["interaction_id"] for r in rows} == {"int-1", "int-2"}


def test_preference_pairs_weigh_each_side(tmp_path):
    tts = Path(__file__).parent / "fixtures" / "export" / "tts.output.manifest"
    opts = ExportOptions(preset="preference-ratings", format="trl", out=str(tmp_path / "out.jsonl"),
                         trust=TrustOptions(quality_weights=True))
    summary = export(Storage(), str(tts), opts)
    ds = load(tmp_path)
    assert ds.num_rows == summary.written > 0
    for row in ds:
        for side in ("chosen", "rejected"):
            lineage = row["lineage"][side]
            assert lineage["quality_weight"] == (1.0 if lineage["agreement"] is None else lineage["agreement"])


def test_excluded_worker_with_a_preset_that_reads_the_transcript(tmp_path, manifest):
    """sft-summary's prompt reads the transcript, so the reader's fast path extracts the text keys: the
    label's workers must still be found for --exclude-workers on the lines after the first (they were not,
    and nobody was excluded there)."""
    before = labels(manifest)["int-1"]
    again = consolidate([w for w in before.workers if w.worker_id != W3], SCHEMA)
    assert again.content["summary"].agreement != before.content["summary"].agreement
    swapped = tmp_path / "swapped.manifest"  # int-1 second: read by the fast path
    swapped.write_text("".join(reversed(manifest.read_text(encoding="utf-8").splitlines(keepends=True))))
    run(tmp_path, swapped, TrustOptions(exclude_workers=frozenset({W3})), preset="sft-summary")
    got = {row["lineage"]["interaction_id"]: row["lineage"]["agreement"] for row in load(tmp_path)}
    assert got["int-1"] == round(again.content["summary"].agreement, 4)
