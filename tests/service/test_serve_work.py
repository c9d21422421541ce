"""Claim, submit and release: the places of an object, hold expiry, the submit rule, validation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_helpers import answer_for, make_people, manifest_lines, write_manifest
from sqlalchemy import event, func, select

from toolkit.contract import ANSWER_FIELD
from toolkit.errors import Problem
from toolkit.service import jobs, people, work
from toolkit.service.db import Database
from toolkit.service.errors import NotFound, NotInTeam, Refused, SubmissionInvalid
from toolkit.service.tables import Answer, DataObject, Hold


def create(db, tmp_path, schema, team_id, *, lines=None, name="calls-1", **options):
    manifest = write_manifest(tmp_path / f"{name}.jsonl", lines or manifest_lines(tmp_path))
    return jobs.create_job(db, name=name, manifest=str(manifest), schema=schema, team_id=team_id,
                           output_uri=str(tmp_path / "out"), **options)


def calls(n: int, prefix: str = "c") -> list[dict]:
    return [{"source-ref": f"s3://b/{prefix}{i}.wav", "media-type": "audio", "interaction-id": f"{prefix}-{i}",
             "duration-seconds": 10.0} for i in range(n)]


def test_places_go_to_distinct_workers_in_priority_then_age_order(db, tmp_path, schema, storage):
    team, users = make_people(db, 3)
    low = create(db, tmp_path, schema, team.id, lines=calls(2, "low"), name="low", workers_per_object=2)
    high = create(db, tmp_path, schema, team.id, lines=calls(1, "high"), name="high", workers_per_object=2,
                  priority=5)
    a, b, c = (work.claim(db, u.id) for u in users)
    assert (a.job_name, a.dataset_object_id) == ("high", "0")
    assert (b.job_name, b.dataset_object_id) == ("high", "0")  # 2 workers per object: the second place
    assert (c.job_name, c.dataset_object_id) == ("low", "0")  # the high one's places are all held
    again = work.claim(db, users[0].id)  # one hold per user: claiming again gives the same task back
    assert again.resumed and (again.object_id, again.expires_at) == (a.object_id, a.expires_at)
    work.submit(db, users[0].id, a.object_id, answer_for(a, schema, 1))
    nxt = work.claim(db, users[0].id)
    assert (nxt.job_id, nxt.dataset_object_id) == (low.id, "0")  # never the object they answered
    assert high.id != low.id


def test_jobs_of_one_priority_give_their_oldest_object_first_across_jobs(db, tmp_path, schema, storage):
    # The claim looks job by job; within one priority the oldest object of all those jobs wins.
    team, users = make_people(db, 3)
    first = create(db, tmp_path, schema, team.id, lines=calls(1, "a"), name="first", workers_per_object=1)
    second = create(db, tmp_path, schema, team.id, lines=calls(1, "b"), name="second", workers_per_object=1)
    jobs.add_objects(db, first.id, str(write_manifest(tmp_path / "more.jsonl", calls(1, "late"))), storage=storage)
    got = [work.claim(db, u.id) for u in users]
    assert [(t.job_id, t.dataset_object_id) for t in got] == [(first.id, "0"), (second.id, "0"), (first.id, "1")]
    assert got[0].object_id < got[1].object_id < got[2].object_id


def test_objects_added_to_a_job_of_one_object_come_after_it(db, tmp_path, schema, storage):
    team, _users = make_people(db, 1)
    job = create(db, tmp_path, schema, team.id, lines=calls(1, "a"), name="one")
    jobs.add_objects(db, job.id, str(write_manifest(tmp_path / "more.jsonl", calls(1, "late"))), storage=storage)
    with db.read() as session:
        positions = session.execute(select(DataObject.position).where(DataObject.job_id == job.id)
                                    .order_by(DataObject.position)).scalars().all()
    assert positions == [0, 1]


def test_hold_expiry_is_a_condition_not_a_timer(db, tmp_path, schema, clock):
    team, (ann, bob, cid) = make_people(db, 3)
    create(db, tmp_path, schema, team.id, lines=calls(1), workers_per_object=1, task_time_limit_s=60)
    task = work.claim(db, ann.id)
    assert work.claim(db, bob.id) is None  # the only place is held
    clock.advance(59)
    assert work.claim(db, bob.id) is None
    clock.advance(1)  # expires_at == now: no longer live
    taken = work.claim(db, bob.id)
    assert taken.object_id == task.object_id and taken.expires_at == clock() + timedelta(seconds=60)
    assert work.current_task(db, ann.id) is None  # ann's hold expired
    with pytest.raises(Refused, match="ran out"):  # bob holds the only place now
        work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
    assert work.submit(db, bob.id, taken.object_id, answer_for(taken, schema, 2)).complete
    assert work.claim(db, cid.id) is None


def test_a_late_submit_is_taken_while_a_place_is_free(db, tmp_path, schema, clock):
    team, (ann, bob) = make_people(db, 2)
    create(db, tmp_path, schema, team.id, lines=calls(1), workers_per_object=2, task_time_limit_s=60)
    task = work.claim(db, ann.id)
    clock.advance(120)
    result = work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
    assert result.answers_count == 1 and not result.complete and not result.duplicate
    with db.read() as session:
        answer = session.scalar(select(Answer))
        assert answer.acceptance_time == task.accepted_at and answer.time_spent_s == 120.0
    unclaimed = work.submit(db, bob.id, task.object_id, answer_for(task, schema, 2))  # never claimed, place free
    assert unclaimed.complete


def test_holds_survive_a_restart(db, tmp_path, schema, clock):
    team, (ann, bob) = make_people(db, 2)
    create(db, tmp_path, schema, team.id, lines=calls(1), workers_per_object=1)
    task = work.claim(db, ann.id)
    db.dispose()
    restarted = Database(db.url, clock=clock)
    try:
        assert work.claim(restarted, bob.id) is None
        again = work.claim(restarted, ann.id)
        assert again.resumed and again.object_id == task.object_id and again.expires_at == task.expires_at
    finally:
        restarted.dispose()


def test_double_submit_returns_the_stored_answer(db, tmp_path, schema):
    team, (ann,) = make_people(db, 1)
    create(db, tmp_path, schema, team.id, lines=calls(1), workers_per_object=2)
    task = work.claim(db, ann.id)
    first = work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
    second = work.submit(db, ann.id, task.object_id, answer_for(task, schema, 2))
    assert second == work.SubmitResult(first.answer_id, True, 1, False)
    with db.read() as session:
        rows = session.scalars(select(Answer)).all()
        assert len(rows) == 1 and rows[0].answer_json == json.dumps(answer_for(task, schema, 1),
                                                                     separators=(",", ":"))
        assert session.scalar(select(DataObject.answers_count).where(DataObject.id == task.object_id)) == 1
        assert session.scalar(select(Hold)) is None


def test_a_submit_that_passed_the_door_before_its_twin_was_stored_returns_the_stored_answer(db, tmp_path, schema):
    """Two submits of one answer at once both find nothing stored at the door (before the write):
    the second's write transaction, after the object's lock, finds the first's answer and keeps it."""
    team, (ann,) = make_people(db, 1)
    create(db, tmp_path, schema, team.id, lines=calls(1), workers_per_object=2)
    task = work.claim(db, ann.id)
    first = work._store(db, ann.id, task.object_id, answer_for(task, schema, 1), None)
    second = work._store(db, ann.id, task.object_id, answer_for(task, schema, 2), None)
    assert (first.duplicate, second) == (False, work.SubmitResult(first.answer_id, True, 1, False))
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 1
        assert session.scalar(select(Hold)) is None


def test_submit_refusals(db, tmp_path, schema, clock):
    team, (ann, bob) = make_people(db, 2)
    job = create(db, tmp_path, schema, team.id, workers_per_object=1)
    task = work.claim(db, ann.id)
    outsider_team, (eve,) = make_people(db, 1, team="team-b")
    with pytest.raises(NotInTeam, match="not in the team"):
        work.submit(db, eve.id, task.object_id, answer_for(task, schema, 1))
    with pytest.raises(NotInTeam):  # before validation: an outsider learns nothing of the job's schema
        work.submit(db, eve.id, task.object_id, {"segments": "not a list"})
    with db.read() as session:
        declined = session.scalar(select(DataObject.id).where(DataObject.state == "declined"))
    with pytest.raises(Refused, match="declined"):
        work.submit(db, ann.id, declined, answer_for(task, schema, 1))
    jobs.pause_job(db, job.id)
    with pytest.raises(Refused, match="paused"):  # bob holds nothing: no new work while paused
        work.submit(db, bob.id, task.object_id + 1, answer_for(task, schema, 2))
    assert work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1)).complete  # held work is kept
    with pytest.raises(Refused, match="takes no answers"):
        work.submit(db, bob.id, task.object_id, answer_for(task, schema, 2))
    jobs.cancel_job(db, job.id)
    with pytest.raises(Refused, match="cancelled"):
        work.submit(db, bob.id, task.object_id + 1, answer_for(task, schema, 2))
    people.disable_user(db, bob.id)
    with pytest.raises(Refused, match="disabled"):
        work.claim(db, bob.id)
    assert outsider_team.id != team.id


def test_another_teams_annotator_never_gets_the_jobs_objects(db, tmp_path, schema):
    team, (ann,) = make_people(db, 1)
    other, (eve,) = make_people(db, 1, team="team-b")
    create(db, tmp_path, schema, team.id, lines=calls(5), workers_per_object=3)
    assert work.claim(db, eve.id) is None
    create(db, tmp_path, schema, other.id, lines=calls(2, "b"), name="theirs")
    mine = [work.claim(db, eve.id)]
    assert {t.job_name for t in mine} == {"theirs"}
    assert work.claim(db, ann.id).job_name == "calls-1"
    people.remove_member(db, team.id, ann.id)  # leaving the team gives the held place back
    assert work.current_task(db, ann.id) is None and work.claim(db, ann.id) is None


def test_release_gives_the_place_back(db, tmp_path, schema):
    team, (ann, bob) = make_people(db, 2)
    create(db, tmp_path, schema, team.id, lines=calls(1), workers_per_object=1)
    task = work.claim(db, ann.id)
    assert work.claim(db, bob.id) is None
    assert work.release(db, ann.id, task.object_id) and not work.release(db, ann.id, task.object_id)
    assert work.claim(db, bob.id).object_id == task.object_id


def test_opening_a_given_task_holds_one_of_its_places(db, tmp_path, schema, clock):
    """work.hold (the local portal's /task/N): claim's rules for one object."""
    team, (ann, bob, cid) = make_people(db, 3)
    create(db, tmp_path, schema, team.id, lines=calls(2), workers_per_object=1, task_time_limit_s=60)
    with db.read() as session:
        first, second = session.scalars(select(DataObject.id).order_by(DataObject.position))
    held = work.hold(db, ann.id, second)
    assert not held.resumed and held.expires_at == clock() + timedelta(seconds=60)
    assert work.peek(db, ann.id) == second and work.peek(db, bob.id) == first  # peek holds nothing
    assert work.peek(db, cid.id) == first
    with pytest.raises(Refused, match="other workers hold"):
        work.hold(db, bob.id, second)
    clock.advance(30)
    again = work.hold(db, ann.id, second)  # reopening keeps the deadline
    assert again.resumed and again.expires_at == held.expires_at
    moved = work.hold(db, ann.id, first)  # one hold per user: the other place goes back
    assert moved.object_id == first and work.hold(db, bob.id, second).object_id == second
    assert work.claim(db, cid.id) is None  # both places held
    clock.advance(60)  # ann's hold lapsed: anyone may open it
    assert work.hold(db, cid.id, first).object_id == first
    with pytest.raises(Refused, match="ran out"):
        work.submit(db, ann.id, first, answer_for(moved, schema, 1))
    assert work.submit(db, cid.id, first, answer_for(moved, schema, 2)).complete
    with pytest.raises(Refused, match="takes no answers"):
        work.hold(db, ann.id, first)
    assert work.peek(db, ann.id) == second  # bob's hold (opened at +30 s) lapsed with ann's
    with pytest.raises(NotFound):
        work.hold(db, ann.id, second + 100)


def test_hold_refuses_what_claim_would_never_give(db, tmp_path, schema):
    team, (ann,) = make_people(db, 1)
    _other, (eve,) = make_people(db, 1, "team-b")
    job = create(db, tmp_path, schema, team.id, lines=[*calls(1), {"source": "inline text"}], workers_per_object=1)
    with db.read() as session:
        first, declined = session.scalars(select(DataObject.id).order_by(DataObject.position))
    with pytest.raises(NotInTeam, match="not in the team"):
        work.hold(db, eve.id, first)
    with pytest.raises(Refused, match="takes no answers"):
        work.hold(db, ann.id, declined)
    jobs.pause_job(db, job.id)
    with pytest.raises(Refused, match="paused"):
        work.hold(db, ann.id, first)
    jobs.resume_job(db, job.id)
    task = work.hold(db, ann.id, first)
    work.submit(db, ann.id, first, answer_for(task, schema, 1))
    assert work.peek(db, ann.id) is None


def test_an_invalid_answer_is_refused_before_anything_is_stored(db, tmp_path, schema, storage):
    team, (ann,) = make_people(db, 1)
    create(db, tmp_path, schema, team.id)
    task = work.claim(db, ann.id)
    answer = json.loads(answer_for(task, schema, 1, storage)[ANSWER_FIELD])
    answer["tracks"][0]["label"] = "Martian"
    with pytest.raises(SubmissionInvalid) as caught:
        work.submit(db, ann.id, task.object_id, {ANSWER_FIELD: json.dumps(answer)})
    assert any(p.path.startswith("tracks[0].label") for p in caught.value.problems)
    with db.read() as session:
        assert session.scalar(select(Answer)) is None and session.scalar(select(Hold)) is not None


def valid_content(schema) -> dict:
    from toolkit.service.simulate import simulated_answer_content

    return simulated_answer_content({"interaction-id": "i-1", "duration-seconds": 5.0}, schema, 1)


def test_validate_submission_limits(schema):
    content = valid_content(schema)
    assert work.validate_submission(content, schema) == content
    with pytest.raises(SubmissionInvalid, match="too large"):
        work.validate_submission({**content, "padding": "x" * 3_000_000}, schema)
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(SubmissionInvalid, match="deeply"):
        work.validate_submission({**content, "extra": deep}, schema)
    for field in (ANSWER_FIELD, "annotations"):  # JSON text in a field (our template, the aws-sample one)
        for text in ("[" * 50_000 + "]" * 50_000, json.dumps(deep)):
            with pytest.raises(SubmissionInvalid, match="deeply"):
                work.validate_submission({field: text}, schema)
    with pytest.raises(SubmissionInvalid, match="object"):
        work.validate_submission(["not", "an", "object"], schema)
    with pytest.raises(SubmissionInvalid, match="schema") as caught:
        work.validate_submission({ANSWER_FIELD: "{not json"}, schema)
    assert "not valid JSON" in str(caught.value.problems[0])


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.dictionaries(st.sampled_from([ANSWER_FIELD, "annotations", "segments", "x"]),
                               json_values | st.text().map(lambda t: t), max_size=4))
def test_validate_submission_never_crashes(schema, content):
    try:
        assert work.validate_submission(content, schema) == content
    except SubmissionInvalid as exc:
        assert exc.problems and all(isinstance(p, Problem) for p in exc.problems)


def test_a_claim_does_not_give_up_while_the_only_free_object_is_locked(db, tmp_path, schema, postgres_lock_holder):
    """PostgreSQL: SKIP LOCKED skips an object another transaction has locked for a moment (a submit
    in progress); the claim must wait for it, not report that nothing is left."""
    team, (ann,) = make_people(db, 1)
    create(db, tmp_path, schema, team.id, lines=calls(1), workers_per_object=2)
    with db.read() as session:
        object_id = session.scalar(select(DataObject.id))
    release = postgres_lock_holder(db, object_id, seconds=0.5)
    try:
        task = work.claim(db, ann.id)
    finally:
        release()
    assert task is not None and task.object_id == object_id


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_round_trips_of_a_claim_a_task_page_and_a_submit_on_postgresql(db, tmp_path, schema):
    """On PostgreSQL a request's cost is mostly its round trips (about 1 ms each once the server
    process has gone idle): a claim is 8 (BEGIN with its SET LOCAL, 6 statements, COMMIT), the
    task page's read 1, a submit 9 (the read at the door, BEGIN, 6 statements, COMMIT). Adding one
    should be a decision."""
    team, (ann,) = make_people(db, 1)
    create(db, tmp_path, schema, team.id, lines=calls(3), workers_per_object=2)
    trips: list[str] = []
    listen = [(db.engine, "before_cursor_execute", lambda *args: trips.append(args[2].split()[0])),
              (db.engine, "commit", lambda conn: trips.append("COMMIT"))]
    for target, name, fn in listen:
        event.listen(target, name, fn)
    try:
        task = work.claim(db, ann.id)
        claim_trips, trips[:] = list(trips), []
        assert work.current_task(db, ann.id).object_id == task.object_id  # the task page's read
        page_trips, trips[:] = list(trips), []
        work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
        submit_trips = list(trips)
    finally:
        for target, name, fn in listen:
            event.remove(target, name, fn)
    assert page_trips == ["SELECT"]
    assert claim_trips == ["BEGIN;", "SELECT", "SELECT", "SELECT", "SELECT", "SELECT", "INSERT", "COMMIT"]
    assert submit_trips == ["SELECT", "BEGIN", "SELECT", "SELECT", "INSERT", "DELETE", "UPDATE", "INSERT", "COMMIT"]
