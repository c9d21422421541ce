"""Real gunicorn servers (`gtkit serve run`): two instances on one PostgreSQL with concurrent
annotators, and kill -9 of a server during submits then a restart, on SQLite and PostgreSQL.
Loopback only, bounded in time and count."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

from serve_processes import Crowd, Server, prepare, task_inputs
from service_helpers import PASSWORD, fresh_postgres_database, write_manifest
from sqlalchemy import select
from test_serve_crash import WORKERS, check_consistent, check_layout_matches, new_lines

from toolkit.service import jobs, queue
from toolkit.service.simulate import simulated_answer_content
from toolkit.service.tables import Answer, Consolidation
from toolkit.service.web.client import Annotator

OBJECTS = 75
ANNOTATORS = 50  # the 50 concurrent annotators, spread over both instances


def wait_for_queue(db, job_id: int, objects: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as session:
            done = len(session.scalars(select(Consolidation.object_id)).all())
        if done == objects and queue.pending(db, job_id) == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"queue not drained: {done} of {objects} consolidated, {queue.pending(db, job_id)} rows")


def answers(db) -> list[tuple[int, int]]:
    with db.read() as session:
        return [tuple(row) for row in session.execute(select(Answer.object_id, Answer.user_id))]


def test_two_gunicorn_instances_on_one_postgresql(postgres_server, tmp_path, schema):
    with fresh_postgres_database(postgres_server) as url:
        db, team, users = prepare(url, ANNOTATORS)
        job = jobs.create_job(db, name="two", manifest=str(write_manifest(tmp_path / "m.jsonl", new_lines(0, OBJECTS))),
                              schema=schema, team_id=team.id, output_uri=str(tmp_path / "out"),
                              workers_per_object=WORKERS)
        servers = [Server(tmp_path, url), Server(tmp_path, url)]
        try:
            for server in servers:
                server.start()
            crowd = Crowd([s.url for s in servers], users, task_inputs(db, job.id), schema,
                          deadline=time.monotonic() + 240).start()
            crowd.join()
            assert crowd.errors == []
            wait_for_queue(db, job.id, OBJECTS)
        finally:
            for server in servers:
                server.stop()
        stored = answers(db)
        assert len(stored) == len(set(stored)) == OBJECTS * WORKERS  # nothing lost, nothing twice
        assert set(stored) == crowd.acked
        for user, objects in crowd.given.items():
            assert len(objects) == len(set(objects)), user  # no place given twice to anyone
        assert all(n == WORKERS for n in Counter(o for o, _u in stored).values())
        served = Counter(u for _o, u in stored)
        assert len(served) >= 2  # the work really was shared
        check_consistent(db, job.id, crowd.acked)
        check_layout_matches(db, job.id, tmp_path / "out" / "two")
        db.dispose()


def test_kill_9_of_a_gunicorn_server_during_submits(db_url, tmp_path, schema):
    db, team, users = prepare(db_url, 6)
    job = jobs.create_job(db, name="crash", manifest=str(write_manifest(tmp_path / "m.jsonl", new_lines(0, 24))),
                          schema=schema, team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=WORKERS)
    server = Server(tmp_path, db_url, lease_s=5).start()
    rng = random.Random(14)
    crowd = Crowd([server.url], users, task_inputs(db, job.id), schema, deadline=time.monotonic() + 240).start()
    kills = 0
    try:
        for _trial in range(3):
            target = len(crowd.acked) + rng.randint(3, 8)
            limit = time.monotonic() + 60
            while len(crowd.acked) < target and time.monotonic() < limit and any(t.is_alive() for t in crowd.threads):
                time.sleep(0.01)
            if not any(t.is_alive() for t in crowd.threads):
                break
            time.sleep(rng.uniform(0, 0.05))
            server.kill9()
            kills += 1
            check_consistent(db, job.id, set(crowd.acked))  # right after the kill, before any restart
            server.start()
        crowd.join()
        assert crowd.errors == []
        wait_for_queue(db, job.id, 24)
    finally:
        server.stop()
    assert kills == 3
    stored = answers(db)
    assert len(stored) == len(set(stored)) == 24 * WORKERS and set(stored) == crowd.acked
    check_consistent(db, job.id, crowd.acked)
    check_layout_matches(db, job.id, tmp_path / "out" / "crash")
    print(f"\ngunicorn kill -9 ({db.dialect}): {kills} kills, {crowd.retries} requests cut off or refused and "
          f"retried, {len(stored)} answers, none lost or doubled")
    db.dispose()


def test_a_held_task_and_the_session_survive_a_kill_9_and_restart(db_url, tmp_path, schema):
    db, team, (ann,) = prepare(db_url, 1)
    job = jobs.create_job(db, name="held", manifest=str(write_manifest(tmp_path / "m.jsonl", new_lines(0, 3))),
                          schema=schema, team_id=team.id, output_uri=str(tmp_path / "out"))
    server = Server(tmp_path, db_url).start()
    client = Annotator(server.url)
    try:
        client.sign_in(ann.email, PASSWORD)
        held = client.next_task()
        server.kill9()
        server.start()
        assert client.next_task() == held  # same cookie, same place: both are rows
        content = simulated_answer_content(task_inputs(db, job.id)[held], schema, 1)
        assert client.submit(held, content)["ok"]
        assert client.next_task() not in (None, held)
    finally:
        client.close()
        server.stop()
        db.dispose()


def _queue_process(server: Server, start: int = 1, timeout: float = 30) -> int:
    """The pid the server's queue process logged at its `start`-th start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        starts = [json.loads(line)["pid"] for line in server.log.read_text(errors="replace").splitlines()
                  if line.startswith("{") and json.loads(line).get("msg") == "queue process started"]
        if len(starts) >= start:
            return int(starts[start - 1])
        time.sleep(0.2)
    raise AssertionError(f"no queue process logged: {server.log.read_text()[-2000:]}")


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):  # exited, not yet reaped
            return True
        time.sleep(0.1)
    return False


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])


def test_the_queue_runs_in_a_process_of_its_own_that_ends_with_the_server(tmp_path, schema):
    """One queue process beside gunicorn's workers consolidates, under a supervisor that starts it
    again when it is killed; both stop with a SIGTERM to the server, and by themselves when the
    server is killed -9 alone (no orphan working the queue)."""
    db_url = f"sqlite:///{tmp_path / 'data' / 'gtkit.db'}"
    (tmp_path / "data").mkdir()
    db, team, anns = prepare(db_url, 2)
    job = jobs.create_job(db, name="own", manifest=str(write_manifest(tmp_path / "m.jsonl", new_lines(0, 1))),
                          schema=schema, team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=2)
    server = Server(tmp_path, db_url).start()
    try:
        first = _queue_process(server)
        supervisor = _parent(first)
        assert supervisor != server.proc.pid and _parent(supervisor) == server.proc.pid
        # Background work: it yields the CPU to the request workers (the supervisor only waits).
        assert os.getpriority(os.PRIO_PROCESS, first) == os.getpriority(os.PRIO_PROCESS, server.proc.pid) + 10
        os.kill(first, signal.SIGKILL)  # a hard crash of the queue worker: the supervisor starts another
        second = _queue_process(server, start=2)
        assert second != first and _parent(second) == supervisor
        assert os.getpriority(os.PRIO_PROCESS, second) == os.getpriority(os.PRIO_PROCESS, server.proc.pid) + 10
        for ann in anns:
            client = Annotator(server.url)
            client.sign_in(ann.email, PASSWORD)
            held = client.next_task()
            assert client.submit(held, simulated_answer_content(task_inputs(db, job.id)[held], schema, 1))["ok"]
            client.close()
        wait_for_queue(db, job.id, 1)  # the second worker consolidated and wrote the output
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        assert _gone(second, 10) and _gone(supervisor, 10)

        server.start()
        third = _queue_process(server, start=3)
        supervisor = _parent(third)
        os.kill(server.proc.pid, signal.SIGKILL)  # the master alone: its workers and the queue see it go
        server.proc.wait(30)
        assert _gone(third, 10) and _gone(supervisor, 10)
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        db.dispose()


def test_the_crowd_retries_a_response_cut_off_by_a_kill_9():
    """kill -9 can land between a response's headers and its body: http.client then raises
    IncompleteRead (an HTTPException, not an OSError). It is the same outage as a refused connection."""
    crowd = Crowd([], [], {}, None, deadline=time.monotonic() + 10)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise http.client.IncompleteRead(b"", 72)
        if len(calls) == 2:
            raise http.client.RemoteDisconnected("closed")
        return "done"

    assert crowd._retry(flaky) == "done"
    assert (len(calls), crowd.retries) == (3, 2)
