"""50 annotators at once on one job: no place is given twice, no answer is lost or stored twice."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict

from service_helpers import make_people, write_manifest
from sqlalchemy import select

from toolkit.service import jobs, runner, work
from toolkit.service.db import Database
from toolkit.service.simulate import simulated_answer_content
from toolkit.service.tables import Answer, DataObject, Hold

THREADS = 50
OBJECTS = 40
WORKERS = 3


def test_fifty_threads_claim_and_submit(db, tmp_path, schema):
    team, users = make_people(db, THREADS)
    lines = [{"source-ref": f"s3://b/c{i}.wav", "media-type": "audio", "interaction-id": f"c-{i}",
              "duration-seconds": 10.0} for i in range(OBJECTS)]
    job = jobs.create_job(db, name="crowd", manifest=str(write_manifest(tmp_path / "m.jsonl", lines)), schema=schema,
                          team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=WORKERS)
    busy = Database(db.url, clock=db.clock, pool_size=THREADS + 5)
    claims: dict[int, list[int]] = defaultdict(list)  # object id -> users given a place on it
    acked: list[tuple[int, int]] = []  # (object, user) of every submit that returned
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def annotate(index: int, user_id: int) -> None:
        try:
            start.wait()
            while (task := work.claim(busy, user_id)) is not None:
                with lock:
                    claims[task.object_id].append(user_id)
                content = simulated_answer_content(task.task_input, schema, index)
                result = work.submit(busy, user_id, task.object_id, content)
                assert not result.duplicate
                with lock:
                    acked.append((task.object_id, user_id))
        except BaseException as exc:  # reported below: a refused submit means a place was given twice
            errors.append(exc)

    queue_worker = runner.QueueWorker(busy, poll_s=0.05).start()  # consolidations run alongside
    threads = [threading.Thread(target=annotate, args=(i, u.id)) for i, u in enumerate(users)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        queue_worker.stop()
    assert errors == [] and not any(t.is_alive() for t in threads)

    with db.read() as session:
        stored = [(a.object_id, a.user_id) for a in session.scalars(select(Answer))]
        counts = dict(session.execute(select(DataObject.id, DataObject.answers_count)).all())
        assert session.scalar(select(Hold)) is None
    assert len(stored) == len(set(stored)) == OBJECTS * WORKERS  # nothing stored twice
    assert sorted(stored) == sorted(acked)  # nothing acknowledged and lost, nothing unacknowledged stored
    per_object = Counter(o for o, _u in stored)
    assert set(per_object.values()) == {WORKERS} and counts == dict(per_object)
    for object_id, holders in claims.items():  # every place handed out exactly once, to distinct users
        assert len(holders) == len(set(holders)) == WORKERS, object_id
    assert len({u for _o, u in stored}) > 10  # the work really was spread over the threads

    runner.run_queue(busy)
    busy.dispose()
    assert jobs.get_job(db, job.id).status == "done"
    out = [json.loads(x) for x in (tmp_path / "out" / "crowd" / "manifests/output/output.manifest").read_text()
           .splitlines()]
    assert len(out) == OBJECTS and all(x["segments"]["workerCount"] == WORKERS for x in out)
