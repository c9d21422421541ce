"""Jobs: creation through the real pre-annotation handler, add-objects idempotence, status changes."""

from __future__ import annotations

import json

import boto3
import pytest
from service_helpers import make_people, manifest_lines, write_manifest
from sqlalchemy import func, select

from toolkit.service import jobs, queue, work
from toolkit.service.errors import Invalid, NotFound, Refused
from toolkit.service.tables import DataObject, WorkItem
from toolkit.task.task_input import build_task_input


def objects(db, job_id):
    with db.read() as session:
        return list(session.scalars(select(DataObject).where(DataObject.job_id == job_id)
                                    .order_by(DataObject.position)))


def new_job(db, manifest, schema, team_id, tmp_path, **options):
    return jobs.create_job(db, name=options.pop("name", "calls-1"), manifest=str(manifest), schema=schema,
                           team_id=team_id, output_uri=str(tmp_path / "out"), **options)


def test_create_runs_every_line_through_the_pre_annotation_handler(db, tmp_path, manifest, schema):
    team, _ = make_people(db, 1)
    job = new_job(db, manifest, schema, team.id, tmp_path, workers_per_object=2)
    assert job.status == "active" and job.workers_per_object == 2 and job.label_attribute == "segments"
    rows = objects(db, job.id)
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert [r.dataset_object_id for r in rows] == ["0", "1", "2"]
    assert [r.state for r in rows] == ["open", "open", "declined"]
    assert [json.loads(r.line_json) for r in rows] == lines
    assert json.loads(rows[0].task_input_json) == build_task_input(lines[0])[0]
    assert rows[2].task_input_json is None and rows[2].reason.startswith("line 3: data object has inline `source`")
    text = _schema_text(db, job.id)
    assert jobs.load_schema(text) == schema and job.schema_hash == jobs.schema_digest(text)
    assert jobs.get_job(db, "CALLS-1") == job  # names ignore case
    assert jobs.job_schema(db, job.id) == schema
    with db.read() as session:
        assert session.scalar(select(WorkItem.dedup_key)) == f"write_output:{job.id}"


def _schema_text(db, job_id):
    from toolkit.service.tables import Job

    with db.read() as session:
        return session.get(Job, job_id).schema_yaml


def test_create_refuses_bad_input_naming_it(db, tmp_path, manifest, schema):
    team, _ = make_people(db, 1)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(Invalid, match="empty"):
        new_job(db, empty, schema, team.id, tmp_path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"source-ref": "s3://b/a.wav"}\n{not json\n')
    with pytest.raises(Invalid, match="line 2: not JSON"):
        new_job(db, broken, schema, team.id, tmp_path)
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"source-ref": "s3://b/a.wav"}\n{"source-ref": "s3://b/caf\xe9.wav"}\n')
    with pytest.raises(Invalid, match="line 2"):
        new_job(db, latin1, schema, team.id, tmp_path)
    assert jobs.list_jobs(db) == []  # nothing half-created
    for options, message in [({"workers_per_object": 10}, "between 1 and 9"), ({"task_time_limit_s": 10}, "30"),
                             ({"name": "bad_name"}, "job name"), ({"label_attribute": "x-metadata"}, "attribute"),
                             ({"availability_s": 5}, "availability")]:
        with pytest.raises(Invalid, match=message):
            new_job(db, manifest, schema, team.id, tmp_path, **options)
    with pytest.raises(NotFound):
        new_job(db, manifest, schema, 999, tmp_path)
    new_job(db, manifest, schema, team.id, tmp_path)
    with pytest.raises(Refused, match="exists"):
        new_job(db, manifest, schema, team.id, tmp_path, name="Calls-1")
    assert [j.name for j in jobs.list_jobs(db)] == ["calls-1"]


def test_add_objects_is_idempotent(db, tmp_path, manifest, schema):
    team, _ = make_people(db, 1)
    job = new_job(db, manifest, schema, team.id, tmp_path)
    again = jobs.add_objects(db, job.id, str(manifest))
    assert again == jobs.AddResult(added=0, declined=0, duplicates=3)
    lines = manifest_lines(tmp_path, 4)  # calls 1-4: 1 and 2 are in the job already
    lines[0]["metadata"] = {"customer_id": "changed"}  # same interaction id: still the same object
    more = write_manifest(tmp_path / "more.jsonl", lines)
    result = jobs.add_objects(db, job.id, str(more))
    assert result == jobs.AddResult(added=2, declined=0, duplicates=3)
    assert jobs.add_objects(db, job.id, str(more)).added == 0
    rows = objects(db, job.id)
    assert [r.dataset_object_id for r in rows] == ["0", "1", "2", "3", "4"]
    assert [json.loads(r.line_json).get("interaction-id") for r in rows] == [
        "int-0001", "int-0002", None, "int-0003", "int-0004"]


def test_dedup_keys(db, tmp_path, schema):
    team, _ = make_people(db, 1)
    base = {"source-ref": "s3://b/a.wav", "media-type": "audio", "interaction-id": "i-1"}
    byo = {**base, "dataset-objectid-attribute-name": "msg-id", "msg-id": "m-1"}
    manifest = write_manifest(tmp_path / "m.jsonl", [base, base, byo])  # a repeated line in the first manifest
    job = new_job(db, manifest, schema, team.id, tmp_path)
    assert len(objects(db, job.id)) == 3  # a batch job labels a repeated line twice, as Ground Truth does
    more = write_manifest(tmp_path / "more.jsonl", [base, {**byo, "source-ref": "s3://b/other.wav"},
                                                    {**byo, "msg-id": "m-2"}, {**byo, "msg-id": "m-2"}])
    assert jobs.add_objects(db, job.id, str(more)) == jobs.AddResult(added=1, declined=0, duplicates=3)
    assert jobs.object_key(byo) == 'msg-id="m-1"'
    assert jobs.object_key({"interaction-id": "x" * 400}).startswith("sha256=")


def test_create_from_s3_and_stream_it(db, s3_bucket, tmp_path, schema):
    from toolkit.storage import Storage

    team, _ = make_people(db, 1)
    lines = manifest_lines(tmp_path, 3)
    body = "".join(json.dumps(x) + "\n" for x in lines)
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="in/manifest.jsonl", Body=body.encode())
    job = jobs.create_job(db, name="from-s3", manifest=f"s3://{s3_bucket}/in/manifest.jsonl", schema=schema,
                          team_id=team.id, output_uri=f"s3://{s3_bucket}/out", storage=Storage())
    assert [json.loads(r.line_json) for r in objects(db, job.id)] == lines


def test_large_manifests_go_in_batches(db, tmp_path, schema, monkeypatch):
    monkeypatch.setattr(jobs, "BATCH", 7)
    team, _ = make_people(db, 1)
    lines = [{"source-ref": f"s3://b/{i}.wav", "media-type": "audio", "interaction-id": f"i-{i}"} for i in range(30)]
    job = new_job(db, write_manifest(tmp_path / "m.jsonl", lines), schema, team.id, tmp_path)
    rows = objects(db, job.id)
    assert [r.position for r in rows] == list(range(30))
    assert jobs.add_objects(db, job.id, str(tmp_path / "m.jsonl")).duplicates == 30
    bad = tmp_path / "bad.jsonl"
    bad.write_text((tmp_path / "m.jsonl").read_text() + "{cut off\n")
    with pytest.raises(Invalid, match="line 31: not JSON"):  # in the 5th batch
        new_job(db, bad, schema, team.id, tmp_path, name="late-error")
    assert [j.name for j in jobs.list_jobs(db)] == ["calls-1"]


def test_pause_resume_cancel(db, tmp_path, manifest, schema, clock):
    team, (ann, bob) = make_people(db, 2)
    job = new_job(db, manifest, schema, team.id, tmp_path, workers_per_object=2)
    held = work.claim(db, ann.id)
    assert jobs.pause_job(db, job.id).status == "paused"
    assert work.claim(db, bob.id) is None  # no new tasks while paused
    with pytest.raises(Refused, match="paused"):
        jobs.pause_job(db, job.id)
    assert jobs.resume_job(db, job.id).status == "active"
    assert work.claim(db, bob.id).object_id == held.object_id
    assert jobs.job_progress(db, job.id).in_progress == 1
    assert jobs.cancel_job(db, job.id).status == "cancelled"
    assert jobs.job_progress(db, job.id).in_progress == 0  # holds are gone
    with pytest.raises(Refused, match="cancel"):
        jobs.resume_job(db, job.id)
    with pytest.raises(Refused, match="cancelled"):
        jobs.add_objects(db, job.id, str(manifest))


def test_progress_counts(db, tmp_path, manifest, schema, clock, storage):
    from service_helpers import answer_for

    team, (ann, bob) = make_people(db, 2)
    job = new_job(db, manifest, schema, team.id, tmp_path, workers_per_object=1)
    task = work.claim(db, ann.id)
    clock.advance(30)
    work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1, storage))
    work.claim(db, bob.id)
    progress = jobs.job_progress(db, job.id)
    assert progress == jobs.JobProgress(objects=3, declined=1, open=1, in_progress=1, answered=1, consolidated=0,
                                        failed=0, answers=1, answers_last_hour=1, median_time_spent_s=30.0)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.kind == queue.CONSOLIDATE)) == 1


def test_progress_answer_figures_come_from_the_database_with_statistics_median_rule(db, tmp_path, manifest, schema,
                                                                                    clock):
    """The median of an odd and an even number of times (the mean of the middle two), the last
    hour's count, and only this job's answers, on both databases."""
    import statistics
    from datetime import timedelta

    from toolkit.service.tables import Answer

    team, (ann,) = make_people(db, 1)
    job = new_job(db, manifest, schema, team.id, tmp_path, workers_per_object=1)
    other = new_job(db, manifest, schema, team.id, tmp_path, workers_per_object=1, name="other")
    with db.read() as session:
        mine = session.scalars(select(DataObject.id).where(DataObject.job_id == job.id)).first()
        theirs = session.scalars(select(DataObject.id).where(DataObject.job_id == other.id)).first()
    now = clock()
    times = [7.5, 300.0, 12.0, 41.0, 3.25]

    def add(object_id, iteration, spent, hours_ago):
        with db.write() as session:
            session.add(Answer(object_id=object_id, user_id=ann.id, answer_json="{}", iteration=iteration,
                               acceptance_time=now, submission_time=now - timedelta(hours=hours_ago),
                               time_spent_s=spent))

    for iteration, spent in enumerate(times, start=1):
        add(mine, iteration, spent, hours_ago=iteration - 1)  # the last hour: only the first (1 h ago is not after it)
    add(theirs, 1, 10_000.0, hours_ago=0)
    progress = jobs.job_progress(db, job.id)
    assert (progress.answers, progress.answers_last_hour) == (5, 1)
    assert progress.median_time_spent_s == statistics.median(times) == 12.0
    add(mine, 6, 20.0, hours_ago=0)
    progress = jobs.job_progress(db, job.id)
    assert (progress.answers, progress.answers_last_hour) == (6, 2)
    assert progress.median_time_spent_s == statistics.median([*times, 20.0]) == 16.0
    assert jobs.job_progress(db, other.id).median_time_spent_s == 10_000.0
