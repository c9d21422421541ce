"""Comparison tasks end to end: a simulated local job (real post-annotation consolidation) ->
`preference-compare` pairs, loaded by datasets + TRL's data utilities; NeMo DPO lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.contract import load_label_schema
from toolkit.contract.records import ComparePairRecord
from toolkit.export.exporter import EmptyExportError, ExportOptions, export
from toolkit.service.local_job import run_local_job
from toolkit.storage import Storage

SYSTEMS = ("tts-v1", "tts-v2", "tts-v3")


def compare_manifest(path: Path, items: int = 24) -> Path:
    lines = []
    for k in range(items):
        n = 2 + k % 2  # A/B and A/B/N
        lines.append({"source-ref": f"s3://cmp/p{k}/ref.wav", "media-type": "audio", "interaction-id": f"cmp-{k:03d}",
                      "duration-seconds": 4.0, "prompt": {"text": f"Sentence number {k}."},
                      "candidates": [{"source-ref": f"s3://cmp/p{k}/{s}.wav", "system-id": s} for s in SYSTEMS[:n]]})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def compare_job(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compare-job")
    manifest = compare_manifest(root / "manifest.jsonl")
    run_local_job(manifest=str(manifest), schema=load_label_schema("tts-compare"), workers=3, out=str(root / "out"),
                  simulate_workers=True, storage=Storage([f"s3://cmp/={root}"]))
    (output,) = (root / "out").glob("*/manifests/output/output.manifest")
    return output


def run(tmp_path: Path, labels: Path, fmt: str, **kw):
    opts = ExportOptions(preset="preference-compare", format=fmt, out=str(tmp_path / "out.jsonl"),
                         schema="tts-compare", **kw)
    return export(Storage([]), str(labels), opts)


def rows(path: Path) -> list[dict]:
    return [json.loads(t) for t in path.read_text().splitlines()]


def test_pairs_by_system_with_strength_and_position_lineage(tmp_path, compare_job):
    summary = run(tmp_path, compare_job, "jsonl")
    got = rows(tmp_path / "out.jsonl")
    assert summary.written == len(got) > 10
    labels = [json.loads(t) for t in compare_job.read_text().splitlines()]
    by_id = {d["interaction-id"]: d for d in labels}
    for row in got:
        record = ComparePairRecord.model_validate(row)
        data = by_id[record.lineage.interaction_id]
        comp = data["segments"]["comparison"]
        systems = {str(i + 1): c["system-id"] for i, c in enumerate(data["candidates"])}
        pos = record.lineage.comparison
        assert pos.chosen_candidate == comp["preferred"] != pos.rejected_candidate
        assert (record.chosen_system, record.rejected_system) == (systems[pos.chosen_candidate],
                                                                    systems[pos.rejected_candidate])
        assert record.chosen == record.chosen_media == data["candidates"][int(pos.chosen_candidate) - 1]["source-ref"]
        assert record.strength == comp["strength"] and record.agreement == comp["agreement"]
        assert len(pos.chosen_positions) == 3 and set(pos.chosen_positions) <= set("ABC")
        assert record.prompt == f"Read aloud: {data['prompt']['text']}"
        assert "sim-worker" not in json.dumps(row)  # no worker identities in training records
    # an A/B/N winner gives one pair per other candidate
    n_pairs = {}
    for row in got:
        n_pairs[row["lineage"]["interaction_id"]] = n_pairs.get(row["lineage"]["interaction_id"], 0) + 1
    for iid, n in n_pairs.items():
        assert n == len(by_id[iid]["candidates"]) - 1
    no_winner = sum(1 for d in labels if d["segments"]["comparison"].get("preferred") is None)
    assert len(n_pairs) == len(labels) - no_winner


def test_trl_loads_the_compare_pairs(tmp_path, compare_job, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset
    from trl.data_utils import is_conversational, maybe_extract_prompt, maybe_unpair_preference_dataset

    summary = run(tmp_path, compare_job, "trl")
    ds = load_dataset("json", data_files=str(tmp_path / "out.jsonl"), split="train", cache_dir=str(tmp_path / "c"))
    assert ds.num_rows == summary.written > 0
    assert set(ds.column_names) == {"prompt", "chosen", "rejected", "lineage"}
    for row in ds:
        assert is_conversational(row) and maybe_extract_prompt(row) == row
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
    unpaired = maybe_unpair_preference_dataset(ds)
    assert unpaired.num_rows == 2 * ds.num_rows and set(unpaired["label"]) == {True, False}


def test_nemo_dpo_lines(tmp_path, compare_job):
    run(tmp_path, compare_job, "nemo-dpo")
    got = rows(tmp_path / "out.jsonl")
    assert got and all(r["prompt"].startswith("<extra_id_0>System\nYou are a text-to-speech model.") for r in got)
    assert all(r["chosen_response"].startswith("s3://cmp/") for r in got)


def test_a_segmentation_label_gives_no_compare_pair(tmp_path):
    fixtures = Path(__file__).resolve().parent / "fixtures" / "export"
    manifest = next(fixtures.glob("*.output.manifest"))
    opts = ExportOptions(preset="preference-compare", format="jsonl", out=str(tmp_path / "o.jsonl"))
    with pytest.raises(EmptyExportError, match="not-a-comparison: 3"):
        export(Storage([]), str(manifest), opts)


def test_report_shows_per_job_system_scores(tmp_path, compare_job):
    from toolkit.export import report
    from toolkit.export.system_scores import outcomes_from_votes, system_scores

    report(Storage([]), str(compare_job), str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    assert "Comparisons: system scores" in page and "local-tts-compare: 24 tasks" in page
    outcomes = []
    for text in compare_job.read_text().splitlines():
        data = json.loads(text)
        systems = {str(i + 1): c["system-id"] for i, c in enumerate(data["candidates"])}
        outcomes += outcomes_from_votes(data["segments"]["comparison"]["votes"], systems)
    scores = system_scores(outcomes)
    assert {s.system for s in scores} == set(SYSTEMS)
    for s in scores:
        assert (f"<tr><th>{s.system}</th><td>{s.games:g}</td><td>{s.wins:g}</td><td>{s.win_rate:.3f}</td>"
                f"<td>{s.ci_low:.3f} - {s.ci_high:.3f}</td><td>{s.strength:.3f}</td></tr>") in page
    assert "shown position of the preferred candidate" in page
    # every preference's position is counted, next to its expectation without position bias (1/N each)
    preferred: dict[str, float] = {}
    expected: dict[str, float] = {}
    for text in compare_job.read_text().splitlines():
        comp = json.loads(text)["segments"]["comparison"]
        n = len(json.loads(text)["candidates"])
        for letter, count in comp["preferredPositions"].items():
            preferred[letter] = preferred.get(letter, 0) + count
        for letter in "ABCD"[:n]:
            expected[letter] = expected.get(letter, 0) + sum(comp["preferredPositions"].values()) / n
    for letter in expected:
        assert (f"<tr><th>Position {letter}: preferred / expected without position bias</th>"
                f"<td>{preferred.get(letter, 0)} / {expected[letter]:.1f}</td></tr>") in page


def test_dense_preference_from_compare_span_marks(tmp_path):
    from toolkit.contract.records import DensePreferenceRecord

    fixture = Path(__file__).resolve().parent / "fixtures" / "export" / "compare.output.manifest"
    opts = ExportOptions(preset="dense-preference", format="jsonl", out=str(tmp_path / "d.jsonl"))
    summary = export(Storage([]), str(fixture), opts)
    got = [DensePreferenceRecord.model_validate(r) for r in rows(tmp_path / "d.jsonl")]
    assert summary.dropped == {"no-spans": 1}  # the tied task has no span marks
    ab = next(r for r in got if r.id == "cmp-0001/1-2")
    assert [(c.key, c.system) for c in ab.candidates] == [("a", "model-a"), ("b", "model-b")]
    assert ab.candidates[0].uri != ab.candidates[1].uri and ab.preferred == "a"
    (span,) = ab.spans
    assert (span.preferred, span.reason, span.agreement) == ("a", "Prosody", pytest.approx(2 / 3, abs=1e-3))
    assert ab.prompt.startswith("Read aloud: Your order ships tomorrow. Call [PHONE]")
    # A/B/N: the winner (3, model-c) marked better in a span: pairs 1-3 and 2-3, b preferred
    abn = sorted(r.id for r in got if r.id.startswith("cmp-0002/"))
    assert abn == ["cmp-0002/1-3", "cmp-0002/2-3"]
    assert all(r.preferred == "b" and r.spans[0].preferred == "b" for r in got if r.id.startswith("cmp-0002/"))
