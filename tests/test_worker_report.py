"""gtkit report --workers: per-worker figures read from a Ground Truth-style output layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_quality import GOLD, WORKER
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import ANSWER_FIELD
from toolkit.contract.base import dump
from toolkit.export.workers import WorkerReportError, collect_workers, pseudonym
from toolkit.storage import Storage

# Worker ids as Ground Truth writes them for a private workforce.
ALICE = "private.us-east-1.a1a1a1a1a1a1a1a1"
BOB = "private.us-east-1.b2b2b2b2b2b2b2b2"
CAROL = "private.us-east-1.c3c3c3c3c3c3c3c3"
KEY = b"report-key"


def content(answer) -> dict:
    """answerContent as a crowd-form submission of the gtkit template stores it: the answer as a JSON string."""
    return {ANSWER_FIELD: json.dumps(dump(answer))}


def response(worker: str, accepted: str, submitted: str, answer_content: dict, spent: float | None = None) -> dict:
    item = {"acceptanceTime": accepted, "submissionTime": submitted, "workerId": worker,
            "answerContent": answer_content,
            "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "sub": worker}}}
    if spent is not None:
        item["timeSpentInSeconds"] = spent
    return item


def gt_layout(root: Path) -> Path:
    """`<out>/<job>/`: output manifest (line 0 is a gold object) and worker-response files, one per answer."""
    job = root / "calls-job"
    (job / "manifests/output").mkdir(parents=True)
    lines = [{"source-ref": f"s3://media/call_{i}.wav", "media-type": "audio", "interaction-id": f"int-{i}",
              "duration-seconds": 20.0} for i in range(3)]
    lines[0]["gold-answer"] = dump(GOLD)
    (job / "manifests/output/output.manifest").write_text("".join(json.dumps(x) + "\n" for x in lines))
    day = "2024-11-05T"
    answers = {
        "0": [response(ALICE, day + "10:00:00.000Z", day + "10:01:00.000Z", content(GOLD)),
              response(BOB, day + "10:00:00.000Z", day + "10:00:30.000Z", content(WORKER))],
        "1": [response(ALICE, day + "10:01:00.000Z", day + "10:02:00.000Z", content(GOLD)),
              response(BOB, day + "10:00:30.000Z", day + "10:01:00.000Z", content(GOLD)),
              response(CAROL, day + "11:00:00.000Z", day + "11:02:00.000Z", content(GOLD))],
        # Alice holds this task while she does object 1: tasks per hour counts the time once.
        "2": [response(ALICE, day + "10:01:30.000Z", day + "10:04:00.000Z", content(GOLD)),
              response(BOB, day + "10:01:00.000Z", day + "10:01:30.000Z", content(GOLD)),
              response(CAROL, "", "", {"not": "an answer"}, spent=90.0)],
    }
    for object_id, items in answers.items():
        folder = job / "annotations/worker-response/iteration-1" / object_id
        folder.mkdir(parents=True)
        for n, item in enumerate(items):  # Ground Truth writes one file per submission
            (folder / f"2024-11-05_10:0{n}:00.json").write_text(json.dumps({"answers": [item]}))
    # A later iteration's second answer by Alice to object 0 is not counted again.
    again = job / "annotations/worker-response/iteration-2/0"
    again.mkdir(parents=True)
    (again / "2024-11-05_12:00:00.json").write_text(
        json.dumps({"answers": [response(ALICE, day + "12:00:00.000Z", day + "12:00:10.000Z", content(WORKER))]}))
    (job / "annotations/worker-response/iteration-1/2/broken.json").write_text('{"answers": [')
    return job


@pytest.fixture
def job(tmp_path) -> Path:
    return gt_layout(tmp_path)


def by_worker(report) -> dict:
    return {w["worker"]: w for w in report.as_dict()["workers"]}


def test_figures_per_worker(job):
    report = collect_workers(Storage(), str(job), id_key=KEY, real_ids=True)
    assert (report.objects, report.gold_objects, report.answers) == (3, 1, 8)
    assert report.problems == [f"{job}/annotations/worker-response/iteration-1/2/broken.json: UnreadableResponse"]
    w = by_worker(report)
    alice, bob, carol = w[ALICE], w[BOB], w[CAROL]
    assert alice["gold_tasks"] == 1 and alice["gold"]["f1"] == 1.0 and alice["gold"]["boundary_error_ms"] == 0.0
    # Bob's gold answer is test_quality.WORKER: pooled F1 4/7, 150 ms, label accuracy 1/2, content 2/3
    assert bob["gold"] == {"segments": 3, "reference_segments": 4, "matched": 2, "precision": 0.667,
                           "recall": 0.5, "f1": 0.571, "boundary_error_ms": 150.0, "label_accuracy": 0.5,
                           "attribute_accuracy": 1.0, "content_fields": 3, "content_accuracy": 0.667}
    assert bob["gold_per_track"]["speaker"]["f1"] == 0.667 and bob["gold_per_track"]["language"]["f1"] == 0.0
    assert carol["gold_tasks"] == 0 and carol["gold"] is None
    # Object 0: Alice and Bob agree 13/21; objects 1 and 2 all the same answer (Carol's 2nd is invalid).
    assert alice["peer_agreement"] == pytest.approx((13 / 21 + 1 + 1) / 3, abs=1e-3)
    assert carol["peer_agreement"] == 1.0 and carol["peer_objects"] == 1 and carol["invalid_answers"] == 1
    # Alice: 60, 60 and 150 s; worked 10:00-10:04 = 240 s for 3 tasks -> 45 tasks/hour; media 20 s
    assert (alice["seconds_per_task"], alice["tasks_per_hour"], alice["time_to_media_ratio"]) == (60.0, 45.0, 3.0)
    assert (bob["seconds_per_task"], bob["tasks_per_hour"]) == (30.0, 120.0)
    # Carol's second task has no times, only timeSpentInSeconds: it counts in s/task, not in tasks/hour.
    assert (carol["tasks"], carol["seconds_per_task"], carol["tasks_per_hour"]) == (2, 105.0, 30.0)


def test_worker_ids_are_pseudonymized_stably(job):
    first = collect_workers(Storage(), str(job), id_key=KEY).as_dict()
    again = collect_workers(Storage(), str(job), id_key=KEY).as_dict()
    other = collect_workers(Storage(), str(job), id_key=b"another key").as_dict()
    names = [w["worker"] for w in first["workers"]]
    assert names == [w["worker"] for w in again["workers"]]
    assert set(names) == {pseudonym(x, KEY) for x in (ALICE, BOB, CAROL)}
    assert set(names).isdisjoint(w["worker"] for w in other["workers"])
    text = json.dumps(first)
    assert first["worker_ids"] == "pseudonymized"
    assert not any(x in text for x in (ALICE, BOB, CAROL, "a1a1a1", "b2b2b2"))


def test_cli_writes_html_and_json(job, tmp_path):
    html, data = tmp_path / "workers.html", tmp_path / "workers.json"
    result = CliRunner().invoke(app, ["report", "--workers", str(job), "--out", str(html), "--json", str(data)],
                                env={"GTKIT_REPORT_ID_KEY": "k1"})
    assert result.exit_code == 0, result.output
    assert "3 workers, 8 answers on 3 objects (1 gold)" in result.output
    page = html.read_text()
    figures = json.loads(data.read_text())
    for text in (page, json.dumps(figures), result.output):
        assert not any(x in text for x in (ALICE, BOB, CAROL))
    assert {w["worker"] for w in figures["workers"]} == {pseudonym(x, b"k1") for x in (ALICE, BOB, CAROL)}
    assert "Gold F1" in page and pseudonym(BOB, b"k1") in page and "0.571" in page
    assert "<script" not in page
    shown = CliRunner().invoke(app, ["report", "--workers", str(job), "--json", str(data), "--real-worker-ids", "-q"])
    assert shown.exit_code == 0 and {w["worker"] for w in json.loads(data.read_text())["workers"]} == {
        ALICE, BOB, CAROL}


def test_input_manifest_and_bad_gold(job, tmp_path):
    manifest = tmp_path / "input.manifest"
    lines = (job / "manifests/output/output.manifest").read_text().splitlines()
    bad = json.loads(lines[1])
    bad["gold-answer"] = {"mediaDuration": 20.0, "segments": [{"id": "s", "track": "nope", "start": 0, "end": 1}]}
    manifest.write_text("\n".join([lines[0], json.dumps(bad), lines[2]]) + "\n")
    with pytest.raises(WorkerReportError, match=r"input.manifest line 2: invalid gold-answer.*segments"):
        collect_workers(Storage(), str(job), manifest=str(manifest), id_key=KEY)
    result = CliRunner().invoke(app, ["report", "--workers", str(tmp_path / "nothing"), "--json", "x.json"])
    assert result.exit_code == 1 and "no manifest" in result.output


def test_same_figures_from_an_s3_layout(job, s3_bucket):
    import boto3

    s3 = boto3.client("s3")
    for path in job.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), s3_bucket, f"out/calls-job/{path.relative_to(job)}")
    local = collect_workers(Storage(), str(job), id_key=KEY).as_dict()
    remote = collect_workers(Storage(client=s3), f"s3://{s3_bucket}/out/calls-job", id_key=KEY).as_dict()
    assert remote["workers"] == local["workers"] and remote["answers"] == 8 and len(remote["problems"]) == 1


def review_layout(root: Path) -> Path:
    """A review job's output of calls-job: object int-0 accepted, int-1 rejected (the prior label on the
    line names its workers), int-2 rejected with the prior label left out (the workers are found by
    interaction id in calls-job's answers)."""
    job = root / "calls-review"
    (job / "manifests/output").mkdir(parents=True)
    meta = {"type": "groundtruth/custom", "job-name": "calls-review", "human-annotated": "yes",
            "creation-date": "2024-11-06T10:00:00.000000"}
    prior_meta = {**meta, "job-name": "calls-job"}

    def line(i: int, decision: str, workers: list[str] | None) -> dict:
        out = {"source-ref": f"s3://media/call_{i}.wav", "media-type": "audio", "interaction-id": f"int-{i}",
               "calls-review": {"decision": decision, "reviewer": "private.us-east-1.rrr",
                                "note": "no" if decision == "reject" else ""},
               "calls-review-metadata": {**meta, "adjustment-status": "unadjusted", "review-decision": decision}}
        if workers is not None:
            out["calls"] = {"schemaVersion": "1.0", "status": "ok",
                            "workers": [{"workerId": w, "valid": True, "answerOmitted": True} for w in workers]}
            out["calls-metadata"] = prior_meta
        return out

    lines = [line(0, "accept", [ALICE, BOB]), line(1, "reject", [ALICE, BOB, CAROL]), line(2, "reject", None)]
    (job / "manifests/output/output.manifest").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return job


def test_rejection_rate_in_review(tmp_path, job):
    review = review_layout(tmp_path)
    report = collect_workers(Storage(), str(job), id_key=KEY, review=str(review))
    workers = by_worker(report)
    alice, bob, carol = (workers[pseudonym(w, KEY)] for w in (ALICE, BOB, CAROL))
    assert (alice["reviewed_tasks"], alice["review_rejection_rate"]) == (3, 0.667)
    assert (bob["reviewed_tasks"], bob["review_rejection_rate"]) == (3, 0.667)
    assert (carol["reviewed_tasks"], carol["review_rejection_rate"]) == (2, 1.0)
    assert report.as_dict()["reviewed_objects"] == 3
    without = by_worker(collect_workers(Storage(), str(job), id_key=KEY))
    assert without[pseudonym(ALICE, KEY)]["review_rejection_rate"] is None


def test_cli_workers_review(tmp_path, job):
    review = review_layout(tmp_path)
    out = tmp_path / "w.json"
    result = CliRunner().invoke(app, ["report", "--workers", str(job), "--review", str(review), "--json", str(out),
                                      "--out", str(tmp_path / "w.html"), "--id-key", "k"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert {w["review_rejection_rate"] for w in data["workers"]} == {0.667, 1.0}
    assert "Rejected in review" in (tmp_path / "w.html").read_text()


def test_charts_draw_each_workers_figures(job):
    """The HTML report's SVG bars, read back: values as in the JSON, bar lengths in proportion."""
    from chart_helpers import parse_charts

    from toolkit.export.workers import render_workers_html

    data = collect_workers(Storage(), str(job), id_key=KEY, real_ids=True).as_dict()
    charts = parse_charts(render_workers_html(data, "t"))
    assert list(charts) == ["Gold F1 per worker", "Agreement with peers", "Tasks per hour",
                            "Time per task relative to media duration (median)"]  # nobody reviewed: no 4th
    # Carol has no gold answer: no bar. Full scale (640 - 200 - 80 px) is the largest value.
    assert charts["Gold F1 per worker"] == [(ALICE, "1", 360.0), (BOB, "0.571", 205.6)]
    assert charts["Tasks per hour"] == [(ALICE, "45", 135.0), (BOB, "120", 360.0), (CAROL, "30", 90.0)]
    # Median task time / 20 s of media: Alice 60 s -> 3, Bob 30 s -> 1.5, Carol (120, 90) s -> 5.25
    assert charts["Time per task relative to media duration (median)"] == [
        (ALICE, "3 ×", 205.7), (BOB, "1.50 ×", 102.9), (CAROL, "5.25 ×", 360.0)]
    peers = {w["worker"]: w["peer_agreement"] for w in data["workers"]}
    assert [(name, float(v)) for name, v, _ in charts["Agreement with peers"]] == list(peers.items())
