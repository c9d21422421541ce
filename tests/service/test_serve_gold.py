"""Gold objects mixed into jobs at a gold rate (revision 0006), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections import defaultdict

import pytest
from service_helpers import answer_for, make_people, manifest_lines, write_manifest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from toolkit.export.workers import collect_workers
from toolkit.service import jobs, migrate, runner, work
from toolkit.service.db import Database
from toolkit.service.errors import Invalid, Refused
from toolkit.service.tables import Answer, DataObject, Job

GOLD_ANSWER = {"mediaDuration": 21.0, "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
               "segments": [{"id": "g1", "track": "t1", "start": 0.4, "end": 3.1, "text": "gold text not for workers"}],
               "content": {"overall_rating": 4}}


def gold_manifest(tmp_path, regular: int, gold: int):
    """`regular` calls, then `gold` calls whose lines carry a gold answer (plus manifest_lines' declined line)."""
    lines = manifest_lines(tmp_path, regular + gold)
    calls = [line for line in lines if "source-ref" in line]
    for line in calls[regular:]:
        line["gold-answer"] = GOLD_ANSWER
    return write_manifest(tmp_path / "gold.jsonl", lines)


def gold_ids(db, job_id: int) -> set[int]:
    with db.read() as session:
        return set(session.scalars(select(DataObject.id).where(DataObject.job_id == job_id, DataObject.gold)))


def work_through(db, user, schema, storage, gold: set[int], worker: int = 0) -> list[bool]:
    """Claim and answer until nothing is left for the user: which of their tasks were gold, in order."""
    kinds = []
    while (task := work.claim(db, user.id)) is not None:
        assert "gold-answer" not in json.dumps(task.task_input)
        assert "gold text not for workers" not in json.dumps(task.task_input)
        kinds.append(task.object_id in gold)
        work.submit(db, user.id, task.object_id, answer_for(task, schema, worker, storage))
    return kinds


def expected_kinds(rate: float, tasks: int, gold_objects: int) -> list[bool]:
    kinds: list[bool] = []
    for k in range(tasks):
        kinds.append(work.gold_due(rate, k) and sum(kinds) < gold_objects)
    return kinds


def test_the_due_rule_is_exact():
    assert [k for k in range(1, 17) if work.gold_due(0.25, k - 1)] == [4, 8, 12, 16]
    assert sum(work.gold_due(0.1, k) for k in range(100)) == 10
    assert sum(work.gold_due(1 / 3, k) for k in range(30)) == 10
    assert not any(work.gold_due(0.0, k) for k in range(50)) and all(work.gold_due(1.0, k) for k in range(50))


def test_each_worker_gets_a_quarter_gold_and_gold_never_blocks_completion(db, tmp_path, schema, storage):
    team, users = make_people(db, 3)
    job = jobs.create_job(db, name="gold-mix", manifest=str(gold_manifest(tmp_path, 12, 4)), schema=schema,
                          team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=3, gold_rate=0.25,
                          storage=storage)
    assert job.gold_rate == 0.25
    gold = gold_ids(db, job.id)
    assert len(gold) == 4 and jobs.job_progress(db, job.id).gold == 4
    for worker, user in enumerate(users):  # one after the other: each answers all 12 ordinary objects
        kinds = work_through(db, user, schema, storage, gold, worker)
        assert kinds == [k % 4 == 3 for k in range(16)]  # tasks 4, 8, 12 and 16: exactly 25 %
    with db.read() as session:
        states = dict(session.execute(select(DataObject.id, DataObject.state)
                                      .where(DataObject.job_id == job.id)).all())
        assert all(session.get(DataObject, g).answers_count == 3 for g in gold)
    assert {states[g] for g in gold} == {"open"}  # every worker answered; never "answered" or consolidated
    runner.run_queue(db, storage=storage)
    progress = jobs.job_progress(db, job.id)
    assert jobs.get_job(db, job.id).status == "done"
    assert (progress.consolidated, progress.declined, progress.open, progress.gold_open) == (12, 1, 4, 4)
    assert work.claim(db, users[0].id) is None

    # The gold answers reach the worker-response files and score the workers; the gold lines of the
    # output manifest are the input lines (not exported as labels).
    root = tmp_path / "out" / "gold-mix"
    with db.read() as session:
        gold_positions = set(session.scalars(select(DataObject.dataset_object_id).where(DataObject.id.in_(gold))))
    for position in gold_positions:
        assert len(list((root / "annotations/worker-response/iteration-1" / position).glob("*.json"))) == 3
    out_lines = [json.loads(x) for x in (root / "manifests/output/output.manifest").read_text().splitlines()]
    for number, line in enumerate(out_lines):
        assert ("segments" in line) == (str(number) not in gold_positions and "source-ref" in line)
    report = collect_workers(storage, str(root)).as_dict()
    assert report["gold_objects"] == 4
    assert sorted(w["gold_tasks"] for w in report["workers"]) == [4, 4, 4]


def test_gold_does_not_block_completion_when_few_workers_answered_it(db, tmp_path, schema, storage):
    team, users = make_people(db, 2)
    job = jobs.create_job(db, name="gold-few", manifest=str(gold_manifest(tmp_path, 3, 2)), schema=schema,
                          team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=1, gold_rate=0.5,
                          storage=storage)
    gold = gold_ids(db, job.id)
    kinds = work_through(db, users[0], schema, storage, gold)
    assert kinds == [False, True, False, True, False]  # 3 ordinary objects, both gold
    other = work.claim(db, users[1].id)
    assert other is None  # ordinary objects all taken; gold is never handed out when not due
    runner.run_queue(db, storage=storage)
    assert jobs.get_job(db, job.id).status == "done"
    assert jobs.job_progress(db, job.id).gold_open == 2
    with db.read() as session:
        obj = session.get(DataObject, min(gold))
        task = work.Task(obj.id, job.id, job.name, obj.dataset_object_id, json.loads(obj.task_input_json),
                         db.now(), db.now())
    with pytest.raises(Refused, match="is done"):  # the done job's gold objects take no more answers
        work.submit(db, users[1].id, obj.id, answer_for(task, schema, 1, storage))


def test_gold_rate_zero_queues_gold_like_any_other_object(db, tmp_path, schema, storage):
    team, users = make_people(db, 1)
    job = jobs.create_job(db, name="gold-zero", manifest=str(gold_manifest(tmp_path, 2, 2)), schema=schema,
                          team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=1, storage=storage)
    assert job.gold_rate == 0
    gold = gold_ids(db, job.id)
    assert work_through(db, users[0], schema, storage, gold) == [False, False, True, True]  # in manifest order
    runner.run_queue(db, storage=storage)
    progress = jobs.job_progress(db, job.id)
    assert jobs.get_job(db, job.id).status == "done"
    assert (progress.consolidated, progress.gold_open, progress.gold) == (4, 0, 2)


def test_the_gold_rate_is_checked(db, tmp_path, schema, storage):
    team, _ = make_people(db, 1)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(Invalid, match="gold rate"):
            jobs.create_job(db, name="gold-bad", manifest=str(gold_manifest(tmp_path, 1, 1)), schema=schema,
                            team_id=team.id, output_uri=str(tmp_path / "out"), gold_rate=bad, storage=storage)
    jobs.create_job(db, name="gold-ok", manifest=str(gold_manifest(tmp_path, 1, 1)), schema=schema,
                    team_id=team.id, output_uri=str(tmp_path / "out"), gold_rate=1, storage=storage)
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(update(Job).values(gold_rate=2))  # the table's own constraint, too


THREADS = 8


def test_concurrent_claims_keep_the_rule_and_the_places(db, tmp_path, schema, storage):
    team, users = make_people(db, THREADS)
    regular, gold_count, wanted = 16, 6, 2
    job = jobs.create_job(db, name="gold-crowd", manifest=str(gold_manifest(tmp_path, regular, gold_count)),
                          schema=schema, team_id=team.id, output_uri=str(tmp_path / "out"),
                          workers_per_object=wanted, gold_rate=0.25, storage=storage)
    gold = gold_ids(db, job.id)
    busy = Database(db.url, clock=db.clock, pool_size=THREADS + 5)
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def annotate(index: int, user) -> None:
        try:
            start.wait()
            work_through(busy, user, schema, storage, gold, index)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(i, u)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    busy.dispose()
    assert errors == [] and not any(t.is_alive() for t in threads)
    with db.read() as session:
        rows = session.execute(select(Answer.user_id, Answer.object_id)
                               .join(DataObject, DataObject.id == Answer.object_id)
                               .where(DataObject.job_id == job.id).order_by(Answer.id)).all()
    per_user: dict[int, list[bool]] = defaultdict(list)
    per_object: dict[int, int] = defaultdict(int)
    for user_id, object_id in rows:
        per_user[user_id].append(object_id in gold)
        per_object[object_id] += 1
    for kinds in per_user.values():
        assert kinds == expected_kinds(0.25, len(kinds), gold_count)
    ordinary = {o: n for o, n in per_object.items() if o not in gold}
    assert len(ordinary) == regular and set(ordinary.values()) == {wanted}
    assert sum(len(k) for k in per_user.values()) == regular * wanted + sum(per_object[g] for g in gold)
    runner.run_queue(db, storage=storage)
    assert jobs.get_job(db, job.id).status == "done"


def test_migration_0006_up_and_down_keeps_gold(db_url, tmp_path, schema, storage):
    db = Database(db_url)
    migrate.upgrade(db)
    team, _ = make_people(db, 1)
    job = jobs.create_job(db, name="gold-mig", manifest=str(gold_manifest(tmp_path, 1, 1)), schema=schema,
                          team_id=team.id, output_uri=str(tmp_path / "out"), gold_rate=0.5, storage=storage)
    migrate.downgrade(db, "0005")
    assert migrate.current_revision(db) == "0005"
    with db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("objects")}
        assert "gold" not in columns
        assert sorted(conn.execute(text("SELECT state FROM objects")).scalars()) == ["declined", "open", "open"]
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        marked = conn.execute(text("SELECT line_json FROM objects WHERE gold = :t"), {"t": True}).scalars().all()
        rates = conn.execute(text("SELECT gold_rate FROM jobs WHERE id = :j"), {"j": job.id}).scalars().all()
    assert len(marked) == 1 and "gold-answer" in marked[0]  # marked again from the stored line
    assert rates == [0]  # the rate is not kept across a downgrade: 0 is today's behaviour
    db.dispose()
