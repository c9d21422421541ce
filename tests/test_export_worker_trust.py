"""gtkit export --worker-report / --min-worker-f1: quality weights that reflect the trust in the workers
who made each label (their gold F1 in `gtkit report --workers --json`), loaded by `datasets`.

Hand-made report: W1 gold F1 0.9, W2 0.6, W3 0.3. int-1 is W1+W2+W3 (agreement 0.721), int-2 W1+W2
(0.875); see test_export_trust.py for the labels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from test_export_trust import W1, W2, W3, labels, load, offline, run, write_labels
from test_worker_report import ALICE, BOB, CAROL, gt_layout
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import records
from toolkit.export import EmptyExportError
from toolkit.export.trust import BELOW_MIN_WORKER_F1, EXCLUDED_WORKER, TrustOptions, WorkerTrust
from toolkit.export.workers import WorkerReportError, collect_workers, pseudonym, write_worker_report
from toolkit.labeling.consolidate import consolidate
from toolkit.storage import Storage

KEY = b"trust-key"


@pytest.fixture
def manifest(tmp_path) -> Path:
    return write_labels(tmp_path)


@pytest.fixture(autouse=True)
def hf_offline(tmp_path, monkeypatch):
    offline(tmp_path, monkeypatch)


def gold(f1: float | None) -> dict:
    return {"segments": 3, "reference_segments": 3, "matched": 3, "precision": f1, "recall": f1, "f1": f1,
            "boundary_error_ms": 10.0, "label_accuracy": 1.0, "attribute_accuracy": 1.0, "content_fields": 2,
            "content_accuracy": 1.0}


def row(name: str, f1: float | None) -> dict:
    """One worker of the report; f1=None: no gold task."""
    return {"worker": name, "tasks": 5, "invalid_answers": 0, "gold_tasks": 0 if f1 is None else 2,
            "gold": None if f1 is None else gold(f1), "gold_per_track": {}, "peer_agreement": 0.8,
            "peer_objects": 5, "seconds_per_task": 60.0, "time_to_media_ratio": 3.0, "tasks_per_hour": 40.0,
            "reviewed_tasks": 0, "review_rejection_rate": None}


def write_report(path: Path, scores: dict[str, float | None], key: bytes | None = None) -> Path:
    """A report as `gtkit report --workers --json` writes it: real ids, or pseudonyms under `key`."""
    workers = [row(pseudonym(w, key) if key else w, f1) for w, f1 in scores.items()]
    doc = {"version": 1, "root": "out/cc-seg-1", "objects": 2, "gold_objects": 1, "answers": 5,
           "reviewed_objects": 0, "worker_ids": "pseudonymized" if key else "real", "workers": workers,
           "problems": []}
    path.write_text(json.dumps(doc))
    return path


def trust_of(path: Path, key: bytes | None = None, default: float | None = None) -> WorkerTrust:
    return WorkerTrust.load(Storage(), str(path), key, default)


def rows_by_item(tmp_path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    ds = load(tmp_path)
    # One struct for every record's lineage: `datasets` reads its floats exactly (a mixed shape becomes Json)
    assert isinstance(ds.features["lineage"], dict), ds.features["lineage"]
    for row_ in ds:
        records.Lineage.model_validate(row_["lineage"])  # the contract knows every lineage key written
        out.setdefault(row_["lineage"]["interaction_id"], []).append(row_["lineage"])
    return out


# (report scores, --default-worker-f1) -> expected worker_trust of int-1 and int-2
GOLDEN = [
    ({W1: 0.9, W2: 0.6, W3: 0.3}, None, {"int-1": 0.6, "int-2": 0.75}),
    # W3 has no gold: the default is the mean of the scored workers, (0.9 + 0.6) / 2
    ({W1: 0.9, W2: 0.6, W3: None}, None, {"int-1": 0.75, "int-2": 0.75}),
    # W3 not in the report at all: the same default
    ({W1: 0.9, W2: 0.6}, None, {"int-1": 0.75, "int-2": 0.75}),
    # an explicit default for workers without gold
    ({W1: 0.9, W2: 0.6}, 0.0, {"int-1": 0.5, "int-2": 0.75}),
    # nobody scored on gold: trust 1, the weight is the agreement alone
    ({W1: None, W2: None, W3: None}, None, {"int-1": 1.0, "int-2": 1.0}),
]


@pytest.mark.parametrize(("scores", "default", "expected"), GOLDEN)
def test_weight_is_agreement_times_mean_gold_f1(tmp_path, manifest, scores, default, expected):
    report = write_report(tmp_path / "report.json", scores)
    summary = run(tmp_path, manifest, TrustOptions(workers=trust_of(report, default=default)))
    got = rows_by_item(tmp_path)
    assert set(got) == {"int-1", "int-2"} and summary.written == sum(len(v) for v in got.values())
    for item, lineages in got.items():
        for lineage in lineages:
            assert lineage["worker_trust"] == expected[item]
            agreement = 1.0 if lineage["agreement"] is None else lineage["agreement"]
            assert lineage["quality_weight"] == round(agreement * expected[item], 4)
            assert "excluded_answers" not in lineage
    assert "worker trust" in summary.extra


def test_hand_computed_weights(tmp_path, manifest):
    """sft-summary: one record per item, the summary field's agreement (int-1: 2 of 3 wrote "late order",
    0.667; int-2: both, 1.0) x the mean gold F1 of its workers."""
    report = write_report(tmp_path / "report.json", {W1: 0.9, W2: 0.6, W3: 0.3})
    run(tmp_path, manifest, TrustOptions(workers=trust_of(report)), preset="sft-summary")
    got = {k: v for k, (v,) in rows_by_item(tmp_path).items()}
    assert (got["int-1"]["agreement"], got["int-1"]["worker_trust"], got["int-1"]["quality_weight"]) == (
        0.667, 0.6, 0.4002)  # 0.667 x (0.9 + 0.6 + 0.3) / 3
    assert (got["int-2"]["agreement"], got["int-2"]["worker_trust"], got["int-2"]["quality_weight"]) == (
        1.0, 0.75, 0.75)     # 1.0 x (0.9 + 0.6) / 2


def test_pseudonymized_report_matches_with_its_key(tmp_path, manifest):
    scores = {W1: 0.9, W2: 0.6, W3: 0.3}
    run(tmp_path, manifest, TrustOptions(workers=trust_of(write_report(tmp_path / "real.json", scores))))
    real = list(load(tmp_path))
    hashed = write_report(tmp_path / "hashed.json", scores, key=KEY)
    assert W1 not in hashed.read_text()
    run(tmp_path, manifest, TrustOptions(workers=trust_of(hashed, KEY)))
    assert list(load(tmp_path)) == real
    with pytest.raises(WorkerReportError, match="pseudonyms: pass the --id-key"):
        trust_of(hashed)
    # The wrong key matches nobody: an error, not weights silently made of defaults.
    with pytest.raises(WorkerReportError, match=r"none of the 5 answers' workers is in this worker report"):
        run(tmp_path, manifest, TrustOptions(workers=trust_of(hashed, b"another key")))


def test_report_written_by_gtkit_report_workers_is_read_back(tmp_path):
    """The JSON `gtkit report --workers` writes (pseudonyms under --id-key) gives each worker their gold F1."""
    job = gt_layout(tmp_path)
    out = tmp_path / "workers.json"
    write_worker_report(Storage(), collect_workers(Storage(), str(job), id_key=KEY), None, str(out))
    trust = trust_of(out, KEY)
    assert (trust.gold_f1(ALICE), trust.gold_f1(BOB), trust.gold_f1(CAROL)) == (1.0, 0.571, None)
    assert trust.default == round((1.0 + 0.571) / 2, 4)
    counts: Counter[str] = Counter()
    assert trust.trust([ALICE, CAROL, "someone-else"], counts) == pytest.approx((1.0 + 2 * trust.default) / 3)
    assert counts == {"gold-f1": 1, "no-gold-f1": 1, "not-in-report": 1}


def test_min_worker_f1_consolidates_again_and_says_why_in_lineage(tmp_path, manifest):
    report = write_report(tmp_path / "report.json", {W1: 0.9, W2: 0.6, W3: 0.3})
    before = labels(manifest)["int-1"]
    again = consolidate([w for w in before.workers if w.worker_id != W3], None)
    run(tmp_path, manifest, TrustOptions(workers=trust_of(report), min_worker_f1=0.5))
    got = rows_by_item(tmp_path)
    assert {x["segment_id"]: x["agreement"] for x in got["int-1"]} == {
        s.id: round(s.agreement, 4) for s in again.segments if s.text}
    for lineage in got["int-1"]:
        assert lineage["excluded_answers"] == {BELOW_MIN_WORKER_F1: 1}
        assert lineage["worker_trust"] == 0.75  # W1 and W2 only
    assert all(x["excluded_answers"] == {BELOW_MIN_WORKER_F1: 0} and x["worker_trust"] == 0.75 for x in got["int-2"])
    # Both reasons at once: W1 by name, W3 by F1.
    run(tmp_path, manifest, TrustOptions(workers=trust_of(report), min_worker_f1=0.5,
                                         exclude_workers=frozenset({W1})))
    got = rows_by_item(tmp_path)
    assert all(x["excluded_answers"] == {EXCLUDED_WORKER: 1, BELOW_MIN_WORKER_F1: 1} for x in got["int-1"])
    assert all(x["excluded_answers"] == {EXCLUDED_WORKER: 1, BELOW_MIN_WORKER_F1: 0} for x in got["int-2"])
    assert {x["worker_trust"] for x in got["int-1"] + got["int-2"]} == {0.6}


def test_every_worker_below_min_f1_skips_with_the_reason(tmp_path, manifest):
    report = write_report(tmp_path / "report.json", {W1: 0.9, W2: 0.6, W3: 0.3})
    with pytest.raises(EmptyExportError) as caught:
        run(tmp_path, manifest, TrustOptions(workers=trust_of(report), min_worker_f1=0.95))
    summary = caught.value.summary.as_dict()
    assert caught.value.summary.skipped[BELOW_MIN_WORKER_F1] == 2
    assert "no valid answer left without the 3 worker(s) below --min-worker-f1" in json.dumps(summary)
    assert "w1aaaa" not in json.dumps(summary)
    with pytest.raises(WorkerReportError, match="needs --worker-report"):
        TrustOptions(min_worker_f1=0.5)


def test_reviewed_only_edit_is_trusted_accept_keeps_its_workers(tmp_path):
    """An edited review label is adjudicated (worker trust 1, never filtered); an accepted one is the prior
    label, whose workers' trust and --min-worker-f1 apply. test_export_review's review output: int-1 and int-6
    edited, int-2 and int-5 accepted (workers private.w1 and private.w2)."""
    import test_export_review

    path = tmp_path / "review.manifest"
    lines = [test_export_review.review_line(1, "accept", text="hello there"), test_export_review.review_line(2, "edit"),
             test_export_review.review_line(3, "reject"), test_export_review.review_line(5, "edit", provisional=True),
             test_export_review.review_line(6, "edit", text="hello there", provisional=True)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = write_report(tmp_path / "report.json", {"private.w1": 0.8, "private.w2": 0.4})
    for jobs in (1, 2):
        summary = run(tmp_path, path, TrustOptions(reviewed_only=True, workers=trust_of(report), min_worker_f1=0.5),
                      jobs=jobs)
        got = {k: v[0] for k, v in rows_by_item(tmp_path).items()}
        assert sorted(got) == ["int-1", "int-2", "int-5", "int-6"]
        for edited in ("int-1", "int-6"):
            assert got[edited]["worker_trust"] == 1.0 and got[edited]["excluded_answers"] == {BELOW_MIN_WORKER_F1: 0}
        for accepted in ("int-2", "int-5"):
            assert got[accepted]["worker_trust"] == 0.8
            assert got[accepted]["excluded_answers"] == {BELOW_MIN_WORKER_F1: 1}
        # the two accepted items' one answer each (w2's were left out); edited items are not counted
        assert summary.extra["worker trust"].startswith("answers by workers with a gold F1: 2,")


def test_cli(tmp_path, manifest):
    report = write_report(tmp_path / "report.json", {W1: 0.9, W2: 0.6, W3: 0.3}, key=b"k")
    out = tmp_path / "cli.jsonl"
    base = ["export", "--labels", str(manifest), "--preset", "sft-transcription", "--format", "trl", "--out",
            str(out)]
    result = CliRunner().invoke(app, [*base, "--worker-report", str(report), "--min-worker-f1", "0.5"],
                                env={"GTKIT_REPORT_ID_KEY": "k"})
    assert result.exit_code == 0, result.output
    assert "worker trust" in result.output
    rows = [json.loads(x)["lineage"] for x in out.read_text().splitlines()]
    assert rows and {r["worker_trust"] for r in rows} == {0.75}
    assert all(r["quality_weight"] == round(r["agreement"] * 0.75, 4) for r in rows)
    missing_key = CliRunner().invoke(app, [*base, "--worker-report", str(report)], env={"GTKIT_REPORT_ID_KEY": ""})
    assert missing_key.exit_code == 1 and "--id-key" in missing_key.output
    alone = CliRunner().invoke(app, [*base, "--min-worker-f1", "0.5"])
    assert alone.exit_code == 1 and "need --worker-report" in alone.output
    (tmp_path / "bad.json").write_text(json.dumps({"version": 1, "workers": [{"worker": "x"}]}))
    bad = CliRunner().invoke(app, [*base, "--worker-report", str(tmp_path / "bad.json")])
    assert bad.exit_code == 1 and "bad.json: not a `gtkit report --workers` JSON report" in bad.output


def test_docs_example_on_a_simulated_job(tmp_path):
    """docs/export.md's example, end to end: a local job of 3 simulated workers, one gold object
    (scripts/demo_gold.py), `gtkit report --workers --json` with pseudonyms, then the weighted export."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    mirror = f"s3://example-feedback-bucket/={repo / 'examples'}"
    env = {"GTKIT_REPORT_ID_KEY": "a key kept with the reports"}
    cli = CliRunner()

    def gtkit(*args: str) -> None:
        result = cli.invoke(app, [*args, "-q"], env=env)
        assert result.exit_code == 0, result.output

    gtkit("manifest", "build", str(repo / "examples/feedback/processed_feedback.jsonl"), "--out",
          str(tmp_path / "manifest.jsonl"), "--errors", str(tmp_path / "problems.jsonl"), "--mirror", mirror)
    gtkit("local-job", "run", "--manifest", str(tmp_path / "manifest.jsonl"), "--schema", "call-center",
          "--workers", "3", "--out", str(tmp_path), "--simulate", "--corrections",
          str(repo / "examples/asr-corrections.yaml"), "--mirror", mirror)
    job = tmp_path / "local-call-center"
    subprocess.run([sys.executable, str(repo / "scripts/demo_gold.py"), str(job), str(tmp_path / "gold.manifest")],
                   check=True, capture_output=True)
    gtkit("report", "--workers", str(job), "--manifest", str(tmp_path / "gold.manifest"), "--json",
          str(tmp_path / "workers.json"))
    report = json.loads((tmp_path / "workers.json").read_text())
    assert report["worker_ids"] == "pseudonymized" and report["gold_objects"] == 1
    assert sorted(w["gold"]["f1"] for w in report["workers"]) == [0.923, 0.923, 1.0]
    labels_uri = str(job / "manifests/output/output.manifest")
    for threshold, excluded, trust in (("0.95", 2, 1.0), ("0.9", 0, 0.9487)):
        gtkit("export", "--labels", labels_uri, "--preset", "sft-transcription", "--format", "trl", "--out",
              str(tmp_path / "out.jsonl"), "--worker-report", str(tmp_path / "workers.json"), "--min-worker-f1",
              threshold)
        lineages = [r["lineage"] for r in load(tmp_path)]
        assert lineages and all(x["excluded_answers"] == {BELOW_MIN_WORKER_F1: excluded} for x in lineages)
        assert {x["worker_trust"] for x in lineages} == {trust}


def test_preference_pairs_carry_each_sides_worker_trust(tmp_path):
    """preference-ratings pairs are made at the end of the run, from items seen earlier: each side keeps
    the trust of its own item's workers (here W1 0.9, W2 0.6 and W3 not in the report, default 0)."""
    from toolkit.export import ExportOptions, export

    tts = Path(__file__).parent / "fixtures" / "export" / "tts.output.manifest"
    report = write_report(tmp_path / "report.json", {W1: 0.9, W2: 0.6})
    opts = ExportOptions(preset="preference-ratings", format="trl", out=str(tmp_path / "out.jsonl"),
                         trust=TrustOptions(workers=trust_of(report, default=0.0)))
    summary = export(Storage(), str(tts), opts)
    ds = load(tmp_path)
    assert ds.num_rows == summary.written > 0
    for row_ in ds:
        for side in ("chosen", "rejected"):
            lineage = row_["lineage"][side]
            assert lineage["worker_trust"] == 0.5  # (0.9 + 0.6 + 0) / 3
            assert lineage["quality_weight"] == round((1.0 if lineage["agreement"] is None
                                                       else lineage["agreement"]) * 0.5, 4)
