"""The work queue: consolidation with the real post-annotation handler, isolation of bad answers and
failing rows, re-enqueue while running, leases, availability expiry."""

from __future__ import annotations

import json
import time

from service_helpers import answer_for, make_people, write_manifest
from sqlalchemy import func, select

from toolkit.contract import ANSWER_FIELD
from toolkit.labeling import post_annotation
from toolkit.service import jobs, queue, runner, work
from toolkit.service.consolidation import consolidate_object
from toolkit.service.output import write_output
from toolkit.service.tables import Answer, Consolidation, DataObject, WorkItem


def calls(n: int) -> list[dict]:
    return [{"source-ref": f"s3://b/c{i}.wav", "media-type": "audio", "interaction-id": f"c-{i}",
             "duration-seconds": 10.0} for i in range(n)]


def setup_job(db, tmp_path, schema, n_objects=2, workers=1, n_users=1, **options):
    team, users = make_people(db, n_users)
    manifest = write_manifest(tmp_path / "m.jsonl", calls(n_objects))
    job = jobs.create_job(db, name="q", manifest=str(manifest), schema=schema, team_id=team.id,
                          output_uri=str(tmp_path / "out"), workers_per_object=workers, **options)
    return job, users


def state_of(db, job_id):
    with db.read() as session:
        return [r for r in session.execute(select(DataObject.dataset_object_id, DataObject.state)
                                           .where(DataObject.job_id == job_id).order_by(DataObject.position))]


def queued(db):
    with db.read() as session:
        return sorted(session.scalars(select(WorkItem.dedup_key)))


def output_lines(tmp_path):
    return [json.loads(x) for x in (tmp_path / "out" / "q" / "manifests/output/output.manifest").read_text()
            .splitlines()]


def label_all(db, schema, users):
    for index, user in enumerate(users, start=1):
        while (task := work.claim(db, user.id)) is not None:
            work.submit(db, user.id, task.object_id, answer_for(task, schema, index))


def test_consolidation_runs_the_handler_and_is_idempotent(db, tmp_path, schema):
    job, users = setup_job(db, tmp_path, schema, workers=2, n_users=2)
    label_all(db, schema, users)
    assert queued(db) == ["consolidate:1", "consolidate:2", f"write_output:{job.id}"]
    stats = runner.run_queue(db)
    assert (stats.done, stats.retried, stats.failed) == (3, 0, 0) and queued(db) == []
    assert [s for _i, s in state_of(db, job.id)] == ["consolidated", "consolidated"]
    assert jobs.get_job(db, job.id).status == "done"
    with db.read() as session:
        first = {c.object_id: (c.response_json, c.label_json, c.status) for c in session.scalars(select(Consolidation))}
    label = json.loads(first[1][1])
    assert first[1][2] == "ok" and label["workerCount"] == 2 and label["validWorkerCount"] == 2
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert consolidate_object(db, 1) == "consolidated"  # once more: the same result
    runner.run_queue(db)
    with db.read() as session:
        again = {c.object_id: (c.response_json, c.label_json, c.status) for c in session.scalars(select(Consolidation))}
    assert again == first
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before


def test_a_bad_answer_fails_alone(db, tmp_path, schema):
    """An answer that is not valid (stored before a schema change, or imported) gets the handler's
    invalid-answer marking; the other answers and objects are consolidated as usual."""
    _job, (ann,) = setup_job(db, tmp_path, schema, n_objects=3, workers=1)
    tasks = []
    while (task := work.claim(db, ann.id)) is not None:
        work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
        tasks.append(task)
    with db.write() as session:  # the second object's answer goes bad behind the service's back
        session.execute(Answer.__table__.update().where(Answer.object_id == tasks[1].object_id)
                        .values(answer_json=json.dumps({ANSWER_FIELD: "{not json"})))
    stats = runner.run_queue(db)
    assert (stats.retried, stats.failed) == (0, 0) and queued(db) == []
    lines = output_lines(tmp_path)
    assert [x["segments"]["status"] for x in lines] == ["ok", "error", "ok"]
    bad = lines[1]["segments"]
    assert bad["validWorkerCount"] == 0 and bad["workers"][0]["valid"] is False
    assert "not valid JSON" in bad["workers"][0]["problems"][0]


def test_a_failing_row_is_retried_then_fails_its_object_only(db, tmp_path, schema, clock, monkeypatch):
    job, (ann,) = setup_job(db, tmp_path, schema, n_objects=3, workers=1)
    label_all(db, schema, [ann])
    handler = post_annotation
    real = handler.handle

    def flaky(event, read_text=None, schema=None):
        payload = json.loads(read_text(event["payload"]["s3Uri"]))
        if payload[0]["datasetObjectId"] == "1":
            raise OSError("disk on fire")
        return real(event, read_text=read_text, schema=schema)

    monkeypatch.setattr(handler, "handle", flaky)
    first = runner.run_queue(db, max_attempts=3)
    assert (first.retried, first.failed) == (1, 0)
    assert [s for _i, s in state_of(db, job.id)] == ["consolidated", "answered", "consolidated"]
    with db.read() as session:
        row = session.scalar(select(WorkItem).where(WorkItem.kind == "consolidate"))
    assert row.last_error == "OSError: disk on fire" and row.not_before > clock()
    assert runner.run_queue(db, max_attempts=3).done == 0  # backing off: not due yet
    for _ in range(2):
        clock.advance(60)
        last = runner.run_queue(db, max_attempts=3)
    assert last.failed == 1
    assert [s for _i, s in state_of(db, job.id)] == ["consolidated", "failed", "consolidated"]
    assert queued(db) == [] and jobs.get_job(db, job.id).status == "done"
    lines = output_lines(tmp_path)
    assert "segments" in lines[0] and "segments" not in lines[1] and "segments" in lines[2]  # failed: copied as is
    with db.read() as session:
        assert "OSError" in session.scalar(select(DataObject.reason).where(DataObject.dataset_object_id == "1"))


def test_work_enqueued_while_it_runs_runs_again(db, tmp_path, schema):
    job, (ann,) = setup_job(db, tmp_path, schema, n_objects=2, workers=1)
    item = queue.claim_next(db, "w1")
    assert item.kind == "write_output"
    task = work.claim(db, ann.id)
    work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))  # enqueues write_output again
    write_output(db, job.id)
    with db.write() as session:
        queue.finish(session, item)
    with db.read() as session:
        row = session.scalar(select(WorkItem).where(WorkItem.kind == "write_output"))
    assert row is not None and row.claimed_by is None  # handed back, not deleted
    runner.run_queue(db)
    assert queued(db) == []


def test_a_claim_is_leased(db, tmp_path, schema, clock):
    setup_job(db, tmp_path, schema)
    item = queue.claim_next(db, "killed-worker", lease_s=30)
    assert queue.claim_next(db, "w2", lease_s=30) is None
    clock.advance(31)
    again = queue.claim_next(db, "w2", lease_s=30)
    assert again.id == item.id and again.attempts == 2
    with db.write() as session:
        queue.finish(session, item)  # the old claimant's late finish does not delete w2's claim
    assert queued(db) != []
    with db.write() as session:
        queue.finish(session, again)
    assert queued(db) == []


def test_availability_expiry(db, tmp_path, schema, clock):
    job, (ann, bob) = setup_job(db, tmp_path, schema, n_objects=2, workers=2, n_users=2, availability_s=600)
    task = work.claim(db, ann.id)
    work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
    held = work.claim(db, bob.id)
    assert held.object_id == task.object_id
    clock.advance(600)
    assert work.claim(db, ann.id) is None  # past the lifetime: not handed out
    stats = runner.run_queue(db)
    assert stats.expired == 2
    assert [s for _i, s in state_of(db, job.id)] == ["consolidated", "failed"]
    assert work.current_task(db, bob.id) is None
    lines = output_lines(tmp_path)
    assert lines[0]["segments"]["workerCount"] == 1 and "segments" not in lines[1]
    assert jobs.get_job(db, job.id).status == "done"
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(WorkItem)) == 0


def test_run_queue_takes_at_most_max_items(db, tmp_path, schema):
    setup_job(db, tmp_path, schema)
    assert runner.run_queue(db, max_items=0).done == 0 and queued(db) != []


def test_background_worker(db, tmp_path, schema):
    job, (ann,) = setup_job(db, tmp_path, schema, n_objects=1)
    worker = runner.QueueWorker(db, poll_s=0.05).start()
    try:
        task = work.claim(db, ann.id)
        work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and [s for _i, s in state_of(db, job.id)] != ["consolidated"]:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert [s for _i, s in state_of(db, job.id)] == ["consolidated"]


def test_output_writes_wait_for_the_delay_and_more_answers_do_not_postpone_them(db, tmp_path, schema, clock):
    job, (ann,) = setup_job(db, tmp_path, schema, n_objects=3, workers=1)  # creating it queues write_output
    runner.run_queue(db)  # the first layout, at once (delay 0)
    assert queued(db) == []

    def answer_one() -> None:
        task = work.claim(db, ann.id)
        work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))

    answer_one()  # queues its consolidation and an output write
    stats = runner.run_queue(db, output_delay_s=5)
    assert stats.done == 1 and queued(db) == [f"write_output:{job.id}"]  # consolidated; the write waits
    clock.advance(3)
    answer_one()  # enqueued again: due still 5 s after the first enqueue, not after this one
    assert runner.run_queue(db, output_delay_s=5).done == 1 and queued(db) == [f"write_output:{job.id}"]
    clock.advance(2)
    assert runner.run_queue(db, output_delay_s=5).done == 1 and queued(db) == []
    assert sum("segments" in line for line in output_lines(tmp_path)) == 2  # both answers in one write


def test_a_raced_output_write_waits_ten_times_its_duration_or_the_delay(db, tmp_path, schema, clock):
    assert runner.next_write_after(5, 0.2) == 5 and runner.next_write_after(5, 2.0) == 20
    assert runner.next_write_after(0, 2.0) == 0  # delay 0 flushes: nothing is left waiting
    job, (ann,) = setup_job(db, tmp_path, schema, n_objects=2, workers=1)
    item = queue.claim_next(db, "w1")
    task = work.claim(db, ann.id)
    work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))  # races the write
    write_output(db, job.id)
    with db.write() as session:
        queue.finish(session, item, now=clock(), again_after_s=runner.next_write_after(5, 2.0))
    runner.run_queue(db, output_delay_s=5)  # the consolidation; the write is handed back for 20 s
    assert queued(db) == [f"write_output:{job.id}"]
    clock.advance(19)
    runner.run_queue(db, output_delay_s=5)
    assert queued(db) == [f"write_output:{job.id}"]
    clock.advance(1)
    runner.run_queue(db, output_delay_s=5)
    assert queued(db) == []


def test_a_consolidation_is_due_at_once_whatever_the_output_delay(db, tmp_path, schema):
    _job, (ann,) = setup_job(db, tmp_path, schema, n_objects=1, workers=1)
    runner.run_queue(db)
    task = work.claim(db, ann.id)
    work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
    item = queue.claim_next(db, "w1", output_delay_s=3600)
    assert item is not None and item.kind == "consolidate"


def test_the_queue_state_counts_waiting_leased_and_failing_rows(db, tmp_path, schema, clock):
    job, (ann,) = setup_job(db, tmp_path, schema, n_objects=3, workers=1)
    label_all(db, schema, [ann])
    clock.advance(10)
    assert queue.queue_state(db) == queue.QueueState(rows=4, waiting=4, oldest_waiting_s=10.0, failing=0)
    assert queue.claim_next(db, "w1", lease_s=30) is not None
    failing = queue.claim_next(db, "w1", lease_s=30)
    with db.write() as session:
        queue.retry_later(session, db.now(), failing, "OSError: disk on fire")
    state = queue.queue_state(db, lease_s=30)
    assert (state.rows, state.waiting, state.failing, state.last_error) == (4, 2, 1, None)  # no error text here
    assert queue.job_state(db, job.id, lease_s=30).last_error == "OSError: disk on fire"
    clock.advance(31)  # the first claimant's lease ran out (it was killed), the failing row's backoff (2 s) too
    state = queue.queue_state(db, lease_s=30)
    assert (state.waiting, state.oldest_waiting_s, state.failing) == (4, 41.0, 1)
    assert queue.job_state(db, job.id + 1) == queue.QueueState(rows=0, waiting=0, oldest_waiting_s=None, failing=0)
    clock.advance(60)
    runner.run_queue(db, lease_s=30)
    assert queue.job_state(db, job.id) == queue.QueueState(rows=0, waiting=0, oldest_waiting_s=None, failing=0)
