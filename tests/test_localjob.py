"""toolkit.service.local_job: the Ground Truth job emulation, end to end with simulated workers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from portal_client import portal_client
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import ConsolidatedLabel, SegmentationAnswer, load_label_schema, validate_answer
from toolkit.contract.output_manifest import output_line_problems
from toolkit.service.local_job import JobSource, LocalJobError, run_local_job
from toolkit.service.portal import SubmissionRejected, create_app
from toolkit.service.simulate import simulated_answer_content
from toolkit.storage import Storage

MEDIA = "s3://example-feedback-bucket/media"
PRE = [
    {"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.56, "text": "Northwind support."},
    {"id": "pre-2", "track": "speaker", "label": "Customer", "start": 3.9, "end": 8.2, "text": "My order is late."},
    {"id": "pre-3", "track": "speaker", "label": "Agent", "start": 9.0, "end": 11.5, "text": "Sorry about that."},
]


@pytest.fixture
def schema():
    return load_label_schema("call-center")


@pytest.fixture
def manifest(tmp_path) -> Path:
    lines = [
        {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
         "duration-seconds": 21.0, "pre-segments": PRE, "metadata": {"customer_id": "cust-1"}},
        {"source": "inline text cannot be segmented"},
        {"source-ref": f"{MEDIA}/call_003.wav", "media-type": "audio", "interaction-id": "int-0003",
         "duration-seconds": 60.0, "sidecar-ref": str(tmp_path / "int-0003.sidecar.json")},
    ]
    (tmp_path / "int-0003.sidecar.json").write_text(json.dumps({"interaction-id": "int-0003",
                                                                "pre-segments": PRE[:2]}))
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


@pytest.fixture
def storage(example_mirror) -> Storage:
    return Storage([example_mirror])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_simulated_job_writes_ground_truth_layout(tmp_path, manifest, schema, storage):
    out = tmp_path / "out"
    job = run_local_job(manifest, schema, workers=2, out=out, job_name="demo-job", storage=storage,
                        simulate_workers=True)
    root = out / "demo-job"
    assert job.summary()["labeled"] == 2 and job.summary()["skipped"] == 1 and job.summary()["waiting"] == 0

    lines = read_jsonl(root / "manifests" / "output" / "output.manifest")
    inputs = read_jsonl(manifest)
    assert len(lines) == 3
    assert lines[1] == inputs[1]  # the object the pre-annotation Lambda declined is copied unchanged
    for index in (0, 2):
        line = lines[index]
        assert output_line_problems(line, "segments", "demo-job") == []
        assert {k: v for k, v in line.items() if k not in ("segments", "segments-metadata")} == inputs[index]
        assert list(line)[-2:] == ["segments", "segments-metadata"]
        label = ConsolidatedLabel.model_validate(line["segments"])
        assert label.status == "ok" and label.worker_count == 2 and label.valid_worker_count == 2
        assert [w.worker_id for w in label.workers] == ["sim-worker-1", "sim-worker-2"]
        expected = {p["id"]: p for p in (PRE if index == 0 else PRE[:2])}
        # Every pre-segment found by at least one worker, near where the machine put it, text kept
        # (no corrections given); anything else is a worker's extra segment or the language span.
        from_pre = [s for s in label.segments if s.presegment_id]
        assert sorted(s.presegment_id for s in from_pre) == sorted(expected)
        for seg in from_pre:
            pre = expected[seg.presegment_id]
            assert (seg.category, seg.label) == ("speaker", pre["label"])
            assert abs(seg.start - pre["start"]) <= 0.6 and abs(seg.end - pre["end"]) <= 0.6
            assert seg.support in (1, 2) and seg.text == pre["text"]
        assert all(s.support == 1 or s.category == "language" for s in label.segments if not s.presegment_id)
        assert set(label.content["background_noise"].value) <= set(schema.content_field("background_noise").options)
        assert label.agreement.overall is not None and label.agreement.overall > 0.5

    responses = root / "annotations" / "worker-response" / "iteration-1"
    assert sorted(p.name for p in responses.iterdir()) == ["0", "2"]
    for folder in responses.iterdir():
        files = sorted(folder.glob("*.json"))
        assert len(files) == 2
        for f in files:
            (answer,) = json.loads(f.read_text())["answers"]
            assert set(answer) >= {"acceptanceTime", "submissionTime", "timeSpentInSeconds", "workerId",
                                   "answerContent"}
            assert answer["submissionTime"].endswith("Z")
            parsed = SegmentationAnswer.model_validate_json(answer["answerContent"]["answer"])
            assert validate_answer(parsed, schema) == []

    cons = root / "annotations" / "consolidated-annotation"
    (request,) = json.loads((cons / "consolidation-request" / "iteration-1" / "0.json").read_text())
    assert request["datasetObjectId"] == "0" and request["dataObject"] == {"s3Uri": f"{MEDIA}/call_001.wav"}
    assert [a["workerId"] for a in request["annotations"]] == ["sim-worker-1", "sim-worker-2"]
    assert isinstance(request["annotations"][0]["annotationData"]["content"], str)  # as Ground Truth sends it
    response = json.loads((cons / "consolidation-response" / "iteration-1" / "0.json").read_text())
    assert response[0]["consolidatedAnnotation"]["content"]["segments"] == lines[0]["segments"]


def test_simulation_is_deterministic(tmp_path, manifest, schema, storage):
    """Seeded answers and a simulated clock: two runs write the same bytes, file for file."""
    runs = []
    for run in ("a", "b"):
        run_local_job(manifest, schema, workers=2, out=tmp_path / run, job_name="j", storage=storage,
                      simulate_workers=True)
        root = tmp_path / run / "j"
        runs.append({str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})
    assert any("worker-response" in name for name in runs[0])
    assert runs[0] == runs[1]


def test_distinct_workers_and_resume_from_disk(tmp_path, manifest, schema, storage):
    out = tmp_path / "out"
    source = JobSource(manifest, schema, workers=2, out=out, job_name="resume", storage=storage)
    client = portal_client(create_app(source))
    content = simulated_answer_content(source.task_input("0"), schema, 1, storage)

    def submit(worker: str, task: str = "0"):
        client.set_cookie("gtkit_worker", worker)
        return client.post(f"/task/{task}/submit", json={"answerContent": content,
                                                          "acceptedAt": datetime.now(UTC).isoformat()})

    assert source.next_task_for("alice") == "0"
    assert submit("alice").status_code == 200
    again = submit("alice")
    assert again.status_code == 409 and "already answered" in again.get_json()["error"]
    assert source.next_task_for("alice") == "2" and source.next_task_for("bob") == "0"
    assert submit("bob", "1").status_code == 409  # the declined object is not a task
    assert not source.completed.is_set()

    # "Stop" and restart: state comes back from the files on disk.
    restarted = JobSource(manifest, schema, workers=2, out=out, job_name="resume", storage=storage)
    summary = {t.task_id: t for t in restarted.list_tasks()}
    assert summary["0"].responses == 1 and summary["0"].responded_by == frozenset({"alice"})
    assert summary["1"].status == "failed" and "source" in summary["1"].reason
    client = portal_client(create_app(restarted))
    assert submit("bob").status_code == 200
    assert submit("carol").status_code == 409  # already has its 2 responses
    line = read_jsonl(out / "resume" / "manifests" / "output" / "output.manifest")[0]
    assert ConsolidatedLabel.model_validate(line["segments"]).worker_count == 2
    assert restarted.summary()["labeled"] == 1 and restarted.summary()["waiting"] == 1

    # A crash between the last response and consolidation: the next start consolidates.
    response_file = (out / "resume" / "annotations" / "consolidated-annotation" / "consolidation-response"
                     / "iteration-1" / "0.json")
    kept = response_file.read_text()
    response_file.unlink()
    JobSource(manifest, schema, workers=2, out=out, job_name="resume", storage=storage)
    assert json.loads(response_file.read_text())[0]["datasetObjectId"] == "0"
    assert json.loads(kept)[0]["consolidatedAnnotation"]["content"]["segments"]["workerCount"] == 2

    # Finishing with simulated workers keeps the human answers already on disk.
    job = run_local_job(manifest, schema, workers=2, out=out, job_name="resume", storage=storage,
                        simulate_workers=True)
    assert job.completed.is_set()
    lines = read_jsonl(out / "resume" / "manifests" / "output" / "output.manifest")
    assert [w["workerId"] for w in lines[0]["segments"]["workers"]] == ["alice", "bob"]
    assert [w["workerId"] for w in lines[2]["segments"]["workers"]] == ["sim-worker-1", "sim-worker-2"]
    before = sorted(p.name for p in (out / "resume").rglob("*.json"))
    run_local_job(manifest, schema, workers=2, out=out, job_name="resume", storage=storage,
                  simulate_workers=True)
    assert sorted(p.name for p in (out / "resume").rglob("*.json")) == before  # nothing redone


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_opened_task_is_held_for_its_worker_until_submit_release_or_time_limit(tmp_path, manifest, schema,
                                                                                  storage):
    clock = Clock()
    source = JobSource(manifest, schema, workers=1, out=tmp_path / "out", job_name="held", storage=storage,
                       task_time_limit=600, clock=clock)
    client = portal_client(create_app(source))
    content = simulated_answer_content(source.task_input("0"), schema, 1, storage)

    def as_worker(name: str):
        client.set_cookie("gtkit_worker", name)
        return client

    def submit(name: str, task: str = "0"):
        return as_worker(name).post(f"/task/{task}/submit", json={
            "answerContent": content, "acceptedAt": datetime.now(UTC).isoformat()})

    # alice opens task 0: its only place is hers, so bob is sent to task 2 and refused task 0.
    assert as_worker("alice").get("/task/0").status_code == 200
    assert source.next_task_for("bob") == "2"
    refused = as_worker("bob").get("/task/0")
    assert refused.status_code == 409 and b"being labeled by 1 other worker" in refused.data
    tasks = {t.task_id: t for t in source.list_tasks()}
    assert tasks["0"].in_progress_by == frozenset({"alice"}) and tasks["2"].in_progress_by == frozenset()
    assert b"(1 in progress)" in as_worker("bob").get("/").data

    # Reopening keeps alice's deadline; /next brings her back to her open task.
    clock.now += 500
    assert as_worker("alice").get("/task/0").status_code == 200
    assert source.next_task_for("alice") == "0"
    clock.now += 101  # 601 s after she first opened it: the place is free again
    assert source.next_task_for("bob") == "0"
    assert as_worker("bob").get("/task/0").status_code == 200
    late = submit("alice")
    assert late.status_code == 409 and "time limit" in late.get_json()["error"]
    assert submit("bob").status_code == 200  # bob's hold ends with his answer
    assert source.completed.is_set() is False and source.next_task_for("bob") == "2"

    # Release gives the place back at once.
    assert as_worker("carol").get("/task/2").status_code == 200
    assert source.next_task_for("dave") is None
    assert as_worker("carol").post("/task/2/release").status_code == 302
    assert source.next_task_for("dave") == "2"
    assert as_worker("dave").get("/task/2").status_code == 200
    assert submit("dave", "2").status_code == 200
    assert source.completed.is_set()
    answered = as_worker("alice").get("/task/0")
    assert answered.status_code == 409 and b"already has its 1 responses" in answered.data


def test_late_submission_is_taken_while_a_place_is_free(tmp_path, manifest, schema, storage):
    clock = Clock()
    source = JobSource(manifest, schema, workers=2, out=tmp_path / "out", job_name="late", storage=storage,
                       task_time_limit=60, clock=clock)
    content = simulated_answer_content(source.task_input("0"), schema, 1, storage)
    source.accept("0", "alice")
    clock.now += 3600
    now = datetime.now(UTC)
    source.submit("0", "alice", content, now, now)  # past her limit, but nobody needed the place
    assert {t.task_id: t.responses for t in source.list_tasks()}["0"] == 1
    with pytest.raises(LocalJobError, match="task-time-limit"):
        JobSource(manifest, schema, workers=1, out=tmp_path / "x", task_time_limit=10)


@pytest.mark.parametrize("content, why", [
    (b'{"source-ref": "s3://b/a.wav", "media-type": "audio", "interaction-id": "a"}\n{"x": "\xff"}\n', "line 2"),
    ('{"source-ref": "s3://b/a.wav"}\n'.encode("utf-16"), "UTF-16"),
])
def test_undecodable_manifest_is_a_local_job_error_naming_file_and_line(tmp_path, schema, content, why):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    with pytest.raises(LocalJobError, match=why) as caught:
        JobSource(bad, schema, workers=1, out=tmp_path / "out")
    assert str(bad) in str(caught.value)


def test_bad_options_and_manifest(tmp_path, schema, manifest):
    with pytest.raises(LocalJobError, match="between 1 and 9"):
        JobSource(manifest, schema, workers=0, out=tmp_path)
    with pytest.raises(LocalJobError, match="-metadata"):
        JobSource(manifest, schema, workers=1, out=tmp_path, label_attribute="x-metadata")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source-ref": "s3://b/a.wav"}\n{not json\n')
    with pytest.raises(LocalJobError, match="line 2: not JSON"):
        JobSource(bad, schema, workers=1, out=tmp_path)


def test_cli_simulate(tmp_path, manifest, example_mirror):
    result = CliRunner().invoke(app, [
        "local-job", "run", "--manifest", str(manifest), "--schema", "call-center", "--workers", "2",
        "--out", str(tmp_path / "demo-out"), "--simulate", "--mirror", example_mirror,
        "--job-name", "cli-job", "--label-attribute", "labels"])
    assert result.exit_code == 0, result.output
    out_manifest = tmp_path / "demo-out" / "cli-job" / "manifests" / "output" / "output.manifest"
    assert str(out_manifest) in result.output.replace("\n", "")
    assert "2 of 3 objects labeled" in result.output
    line = read_jsonl(out_manifest)[0]
    assert output_line_problems(line, "labels", "cli-job") == []


def test_unreadable_worker_response_is_reported_not_skipped(tmp_path, manifest, schema, storage):
    folder = tmp_path / "out" / "j" / "annotations" / "worker-response" / "iteration-1" / "0"
    folder.mkdir(parents=True)
    (folder / "2024-11-05_10:00:00.json").write_text('{"answers": [{"workerId": ""}]}')
    source = JobSource(manifest, schema, workers=1, out=tmp_path / "out", job_name="j", storage=storage)
    (excluded,) = source.summary()["excluded_responses"]
    assert excluded["file"].endswith("2024-11-05_10:00:00.json")
    assert "answers.0.workerId" in excluded["reason"] and "answers.0.answerContent" in excluded["reason"]


def test_resume_after_a_kill_before_the_output_manifest_rewrite(tmp_path, manifest, example_mirror):
    """Issue 12 D1: kill -9 right after the last consolidation response is written, before
    output.manifest is rewritten. The resumed job must rewrite the manifest with every label."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    script = f"""
import os, signal
from pathlib import Path
import toolkit.service.local_job as lj
import toolkit.service.output as service_output  # the simulated job's files are written there
from toolkit.contract import load_label_schema
from toolkit.storage import Storage
responses = Path({str(out)!r}) / "killed" / "annotations" / "consolidated-annotation" / "consolidation-response"
real = service_output.write_manifest
def write_manifest(*args, **kwargs):
    if responses.is_dir() and len(list(responses.rglob("*.json"))) == 2:  # both labelable objects done
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
service_output.write_manifest = write_manifest
lj.run_local_job({str(manifest)!r}, load_label_schema("call-center"), workers=2, out={str(out)!r},
                 job_name="killed", storage=Storage([{example_mirror!r}]), simulate_workers=True)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    out_manifest = out / "killed" / "manifests" / "output" / "output.manifest"
    before = read_jsonl(out_manifest)
    assert sum("segments" in line for line in before) == 1  # the state the kill left

    result = CliRunner().invoke(app, [
        "local-job", "run", "--manifest", str(manifest), "--schema", "call-center", "--workers", "2",
        "--out", str(out), "--simulate", "--mirror", example_mirror, "--job-name", "killed"])
    assert result.exit_code == 0, result.output
    assert "2 of 3 objects labeled" in result.output
    lines = read_jsonl(out_manifest)
    assert [("segments" in line) for line in lines] == [True, False, True]
    for index in (0, 2):
        assert output_line_problems(lines[index], "segments", "killed") == []
    mtime = out_manifest.stat().st_mtime_ns
    JobSource(manifest, load_label_schema("call-center"), workers=2, out=out, job_name="killed",
              storage=Storage([example_mirror]))
    assert out_manifest.stat().st_mtime_ns == mtime  # in agreement: not rewritten again


def test_a_bad_response_file_on_disk_is_reported_and_excluded(tmp_path, manifest, schema, storage):
    """Issue 12 D2 on restart: a response file the portal of an older version stored (nested 250
    deep, or not JSON) does not stop the job; it is named, left on disk and not counted."""
    out = tmp_path / "out"
    folder = out / "j" / "annotations" / "worker-response" / "iteration-1" / "0"
    folder.mkdir(parents=True)
    content = simulated_answer_content(JobSource(manifest, schema, workers=1, out=tmp_path / "probe",
                                                 storage=storage).task_input("0"), schema, 1, storage)
    deep: dict = {}
    for _ in range(250):
        deep = {"x": deep}
    record = {"acceptanceTime": "2024-11-05T10:00:00.000Z", "submissionTime": "2024-11-05T10:00:01.000Z",
              "workerId": "mallory", "answerContent": {**content, "content-x": deep}}
    (folder / "2024-11-05_10:00:01.json").write_text(json.dumps({"answers": [record]}))
    (folder / "2024-11-05_10:00:02.json").write_text("{not json")
    source = JobSource(manifest, schema, workers=1, out=out, job_name="j", storage=storage)
    excluded = source.summary()["excluded_responses"]
    assert [Path(e["file"]).name for e in excluded] == ["2024-11-05_10:00:01.json", "2024-11-05_10:00:02.json"]
    assert all(e["reason"] for e in excluded) and "mallory" not in json.dumps(excluded)
    assert {t.task_id: t.responses for t in source.list_tasks()}["0"] == 0
    source.accept("0", "bob")
    now = datetime.now(UTC)
    source.submit("0", "bob", content, now, now)  # the next worker's answer consolidates
    line = read_jsonl(out / "j" / "manifests" / "output" / "output.manifest")[0]
    label = ConsolidatedLabel.model_validate(line["segments"])
    assert label.status == "ok" and [w.worker_id for w in label.workers] == ["bob"]
    assert (folder / "2024-11-05_10:00:01.json").is_file()  # nothing deleted


def test_cli_names_excluded_response_files(tmp_path, manifest, example_mirror):
    folder = tmp_path / "out" / "j" / "annotations" / "worker-response" / "iteration-1" / "0"
    folder.mkdir(parents=True)
    (folder / "2024-11-05_10:00:02.json").write_text("{not json")
    result = CliRunner().invoke(app, [
        "local-job", "run", "--manifest", str(manifest), "--schema", "call-center", "--workers", "1",
        "--out", str(tmp_path / "out"), "--simulate", "--mirror", example_mirror, "--job-name", "j"])
    assert result.exit_code == 0, result.output
    assert "2 of 3 objects labeled" in result.output
    assert "excluded" in result.output and "2024-11-05_10:00:02.json" in result.output.replace("\n", "")


def test_refusal_for_a_task_held_by_others_names_the_real_reason(tmp_path, manifest, schema, storage):
    """Issue 12 D11: a worker who never opened the task is not told their time limit passed."""
    source = JobSource(manifest, schema, workers=1, out=tmp_path / "out", job_name="h", storage=storage)
    content = simulated_answer_content(source.task_input("0"), schema, 1, storage)
    source.accept("0", "alice")
    now = datetime.now(UTC)
    with pytest.raises(SubmissionRejected) as refused:
        source.submit("0", "eve", content, now, now)
    message = str(refused.value)
    assert "time limit" not in message
    assert "other worker" in message and "kept in this browser" in message


def test_cli_max_submission_size(tmp_path, manifest, example_mirror):
    """Issue 12 D6: the body limit is a `local-job run` option (simulated answers are ~1 kB)."""
    args = ["local-job", "run", "--manifest", str(manifest), "--schema", "call-center", "--workers", "1",
            "--simulate", "--mirror", example_mirror, "--job-name", "small"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a"), "--max-submission-mb", "0.0005"])
    assert result.exit_code == 1
    # --simulate submits through work.submit (no HTTP): its size check refuses, naming size and limit.
    assert "answer too large" in result.output and "1190 bytes, at most 500" in result.output
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b"), "--max-submission-mb", "0.05"])
    assert result.exit_code == 0, result.output


def test_cli_corrections_are_fixed_by_simulated_workers(tmp_path, manifest, example_mirror, examples):
    fixes = tmp_path / "fixes.yaml"
    fixes.write_text("corrections:\n  - heard: My order is late.\n    said: My order is very late.\n")
    args = ["local-job", "run", "--manifest", str(manifest), "--schema", "call-center", "--workers", "3",
            "--out", str(tmp_path / "out"), "--mirror", example_mirror, "--job-name", "fix",
            "--corrections", str(fixes)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "--corrections: only applies with --simulate" in result.output
    result = CliRunner().invoke(app, [*args, "--simulate"])
    assert result.exit_code == 0, result.output
    line = read_jsonl(tmp_path / "out" / "fix" / "manifests" / "output" / "output.manifest")[0]
    texts = [s["text"] for s in line["segments"]["segments"] if s.get("presegmentId") == "pre-2"]
    assert texts == ["My order is very late."]
    fixes.write_text("corrections: nope\n")
    result = CliRunner().invoke(app, [*args, "--simulate", "--job-name", "fix2"])
    assert result.exit_code == 1 and "fixes.yaml: expected a mapping with a 'corrections' list" in result.output


@pytest.mark.parametrize(("workers", "shared", "expected"), [
    (1, False, "Open it in a browser and sign in with a worker name. Ctrl+C stops; rerun to resume."),
    (3, False, "Open it in 3 browsers (or private windows), each signed in with a different worker name: "
               "every task needs 3 distinct workers. Ctrl+C stops; rerun to resume."),
    (1, True, "Share this link (it carries the access token) with your annotators; each signs in with "
              "their own worker name. Ctrl+C stops; rerun to resume."),
    (2, True, "Share this link (it carries the access token) with your annotators; each signs in with "
              "their own worker name; every task goes to 2 of them. Ctrl+C stops; rerun to resume."),
])
def test_portal_hint_is_written_for_one_and_for_several_workers(workers, shared, expected):
    from toolkit.cli.localjob import portal_hint

    assert portal_hint(workers, shared=shared) == expected
    assert "(s)" not in expected


def test_cli_prints_the_portal_hint(tmp_path, manifest, monkeypatch):
    """Issue 20: no "1 browser(s)"; the hint comes out with the portal link."""
    import toolkit.service.local_job as local_job

    def fake_run(*args, on_ready, **kwargs):
        on_ready("http://127.0.0.1:8080/")
        return JobSource(manifest, load_label_schema("call-center"), workers=1, out=tmp_path / "o")

    monkeypatch.setattr(local_job, "run_local_job", fake_run)
    result = CliRunner().invoke(app, ["local-job", "run", "--manifest", str(manifest), "--schema",
                                      "call-center", "--workers", "1", "--out", str(tmp_path / "o")])
    assert "Open it in a browser and sign in with a worker name." in result.output.replace("\n", " ")
    assert "browser(s)" not in result.output


def test_opening_another_task_gives_the_first_back(tmp_path, manifest, schema, storage):
    """One hold per worker (work.hold): a worker who opens task 2 no longer holds task 0."""
    source = JobSource(manifest, schema, workers=1, out=tmp_path / "out", job_name="one", storage=storage)
    source.accept("0", "alice")
    assert source.next_task_for("bob") == "2"
    source.accept("2", "alice")
    assert {t.task_id: t.in_progress_by for t in source.list_tasks()} == {
        "0": frozenset(), "1": frozenset(), "2": frozenset({"alice"})}
    assert source.next_task_for("alice") == "2" and source.next_task_for("bob") == "0"
    source.close()


def test_a_folder_of_another_manifest_is_refused(tmp_path, manifest, schema, storage):
    """The answers on disk belong to the lines of the job's own manifest: resuming a folder with
    a different manifest would put them on other objects."""
    run_local_job(manifest, schema, workers=1, out=tmp_path / "out", job_name="mine", storage=storage,
                  simulate_workers=True)
    lines = read_jsonl(manifest)
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(json.dumps(x) for x in [lines[2], lines[0], lines[1]]) + "\n")
    with pytest.raises(LocalJobError, match=r"line 1: not the line 1 of .*another manifest"):
        JobSource(other, schema, workers=1, out=tmp_path / "out", job_name="mine", storage=storage)
    shorter = tmp_path / "short.jsonl"
    shorter.write_text(json.dumps(lines[0]) + "\n")
    with pytest.raises(LocalJobError, match=r"3 lines, .* has 1"):
        JobSource(shorter, schema, workers=1, out=tmp_path / "out", job_name="mine", storage=storage)
