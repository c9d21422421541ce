"""kill -9 at random points while a process submits answers and works the queue: after each kill the
database is consistent, nothing acknowledged is lost, nothing is stored twice, and once the queue
has run the output layout on disk is exactly what the database says.

The child is forked from this test process (so a trial costs no interpreter start-up) and opens
its own engine; it ends with os._exit, never touching the parent's connections.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from service_helpers import FakeClock, make_people, write_manifest
from sqlalchemy import func, select

from toolkit.contract import load_label_schema
from toolkit.service import jobs, queue, runner, work
from toolkit.service.db import Database
from toolkit.service.output import load_answers, response_file_names, write_output
from toolkit.service.simulate import simulated_answer_content
from toolkit.service.tables import Answer, Consolidation, DataObject, Hold, WorkItem

TRIALS = 20
OBJECTS = 10
BATCH = 5  # objects added when a trial would start with fewer than 2 * BATCH open places
WORKERS = 2
USERS = 3
LEASE_S = 60


def child(url: str, moment, user_ids: list[int], acked_path: str, idle_path: str, ready, seed: int) -> None:
    """Claim and submit round-robin for the users while a thread works the queue, logging each
    acknowledged submit (after it returned) to `acked_path`, until killed. Out of work, it writes
    `idle_path` once and waits to be killed."""
    try:
        db = Database(url, clock=FakeClock(moment))
        schema = load_label_schema("call-center")

        def work_queue() -> None:
            while True:
                runner.run_queue(db, lease_s=LEASE_S)
                time.sleep(0.01)

        threading.Thread(target=work_queue, daemon=True).start()
        rng = random.Random(seed)
        fd = os.open(acked_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        ready.set()
        while True:
            user_id = rng.choice(user_ids)
            task = work.claim(db, user_id)
            if task is None:
                if not any(work.current_task(db, u) for u in user_ids) and not os.path.exists(idle_path):
                    Path(idle_path).touch()
                time.sleep(0.01)
                continue
            content = simulated_answer_content(task.task_input, schema, user_id)
            work.submit(db, user_id, task.object_id, content)
            os.write(fd, f"{task.object_id} {user_id}\n".encode())
    finally:
        os._exit(0)


def kill_after_acks(acked_path: Path, count: int, deadline: float) -> None:
    """Wait until the child has acknowledged `count` more submits (or the deadline passes)."""
    def acks() -> int:
        return acked_path.read_bytes().count(b"\n")
    target = acks() + count
    while acks() < target and time.monotonic() < deadline:
        time.sleep(0.002)


def open_places(db: Database, job_id: int) -> int:
    with db.read() as session:
        return session.scalar(select(func.coalesce(func.sum(WORKERS - DataObject.answers_count), 0))
                              .where(DataObject.job_id == job_id, DataObject.state == "open"))


def new_lines(start: int, count: int) -> list[dict]:
    return [{"source-ref": f"s3://b/c{i}.wav", "media-type": "audio", "interaction-id": f"c-{i}",
             "duration-seconds": 10.0} for i in range(start, start + count)]


def check_consistent(db: Database, job_id: int, acked: set[tuple[int, int]]) -> dict[str, int]:
    with db.read() as session:
        answers = [(a.object_id, a.user_id) for a in session.scalars(select(Answer))]
        rows = {o.id: o for o in session.scalars(select(DataObject).where(DataObject.job_id == job_id))}
        queued = {w.object_id for w in session.scalars(select(WorkItem).where(WorkItem.kind == queue.CONSOLIDATE))}
        consolidated = set(session.scalars(select(Consolidation.object_id)))
        holds = session.execute(select(Hold.object_id, Hold.user_id)).all()
    assert len(answers) == len(set(answers))  # nothing stored twice
    assert acked <= set(answers), acked - set(answers)  # nothing acknowledged lost
    per_object = Counter(o for o, _u in answers)
    for object_id, obj in rows.items():
        assert obj.answers_count == per_object[object_id] <= WORKERS, object_id
        if obj.answers_count < WORKERS:
            assert obj.state == "open", (object_id, obj.state)
        else:
            assert obj.state in ("answered", "consolidated"), (object_id, obj.state)
        if obj.state == "answered":
            assert object_id in queued, object_id  # its consolidation is still due
        assert (object_id in consolidated) == (obj.state == "consolidated")
    for object_id, _user in holds:
        assert rows[object_id].state == "open"
    return {"answers": len(answers), "consolidated": len(consolidated)}


def layout(root: Path) -> tuple[dict[str, bytes], int]:
    """The job's output files, and how many temp files killed writes left (ignored by readers)."""
    found, temps = {}, 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                temps += 1
            else:
                found[str(path.relative_to(root))] = path.read_bytes()
    return found, temps


def check_layout_matches(db: Database, job_id: int, root: Path) -> int:
    files, temps = layout(root)
    with db.read() as session:
        objects = list(session.scalars(select(DataObject).where(DataObject.job_id == job_id)
                                       .order_by(DataObject.position)))
        answers = load_answers(session, [o.id for o in objects])
        consolidated = session.scalar(select(func.count()).select_from(Consolidation))
    expected = {f"annotations/worker-response/iteration-1/{o.dataset_object_id}/{name}"
                for o in objects for name, _a in response_file_names(answers[o.id])}
    assert {k for k in files if "worker-response" in k} == expected
    assert len({k for k in files if "consolidation-response" in k}) == consolidated
    lines = [json.loads(x) for x in files["manifests/output/output.manifest"].decode().splitlines()]
    assert len(lines) == len(objects) and sum("segments" in x for x in lines) == consolidated
    write_output(db, job_id, full=True)  # a full re-derivation changes nothing
    assert layout(root)[0] == files
    return temps


def test_kill_9_during_submits_and_consolidation(db, tmp_path, schema, clock):
    team, users = make_people(db, USERS)
    job = jobs.create_job(db, name="crash", manifest=str(write_manifest(tmp_path / "m.jsonl", new_lines(0, OBJECTS))),
                          schema=schema, team_id=team.id, output_uri=str(tmp_path / "out"),
                          workers_per_object=WORKERS)
    added = OBJECTS
    acked_path = tmp_path / "acked.txt"
    acked_path.touch()
    rng = random.Random(20260302)
    context = multiprocessing.get_context("fork")
    stats = Counter()
    for trial in range(TRIALS):
        if open_places(db, job.id) < 2 * BATCH:  # keep work in front of every child (streaming input)
            more = write_manifest(tmp_path / f"more-{trial}.jsonl", new_lines(added, BATCH))
            assert jobs.add_objects(db, job.id, str(more)).added == BATCH
            added += BATCH
        ready, idle = context.Event(), tmp_path / f"idle-{trial}"
        process = context.Process(target=child, args=(db.url, clock(), [u.id for u in users], str(acked_path),
                                                      str(idle), ready, trial))
        process.start()
        assert ready.wait(30), "the child did not start"
        # Kill at a point counted in the child's own progress, not in wall time: a fixed sleep lands
        # after the child ran out of work on a fast machine and before it started on a loaded one.
        kill_after_acks(acked_path, rng.randint(0, 3), deadline=time.monotonic() + 30)
        time.sleep(rng.uniform(0, 0.03))
        os.kill(process.pid, signal.SIGKILL)
        process.join(30)
        stats["killed while working"] += not idle.exists()
        acked = {tuple(map(int, x.split())) for x in acked_path.read_text().splitlines() if x.strip()}
        with db.read() as session:  # queue rows the kill interrupted
            stats["queue rows cut short"] += session.scalar(
                select(func.count()).select_from(WorkItem).where(WorkItem.claimed_by.is_not(None)))
        # "Restart": the dead process's claims on queue rows are stale once their lease has passed.
        clock.advance(LEASE_S + 1)
        check_consistent(db, job.id, acked)
        runner.run_queue(db, lease_s=LEASE_S)
        assert queue.pending(db) == 0
        stats["temp files"] += check_layout_matches(db, job.id, tmp_path / "out" / "crash")
    # Finish the job here: every place filled exactly once, everything written.
    for index, user in enumerate(users, start=1):
        while (task := work.claim(db, user.id)) is not None:
            work.submit(db, user.id, task.object_id, simulated_answer_content(task.task_input, schema, index))
    runner.run_queue(db, lease_s=LEASE_S)
    acked = {tuple(map(int, x.split())) for x in acked_path.read_text().splitlines() if x.strip()}
    assert check_consistent(db, job.id, acked) == {"answers": added * WORKERS, "consolidated": added}
    check_layout_matches(db, job.id, tmp_path / "out" / "crash")
    assert jobs.get_job(db, job.id).status == "done"
    print(f"\ncrash trials ({db.dialect}): {TRIALS} kills, {stats['killed while working']} while the child "
          f"still had work, {stats['queue rows cut short']} queue rows cut short, {len(acked)} answers "
          f"acknowledged by killed processes (all found), {stats['temp files']} temp files left by cut writes, "
          f"{added} objects")
    assert stats["killed while working"] >= TRIALS // 2
    # The kills landed in the queue's work too, not only in submits (11-12 of 20 on the build machine).
    assert stats["queue rows cut short"] >= 2
