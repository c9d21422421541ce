"""Review rounds on gtkit serve (docs/review.md), on SQLite and PostgreSQL: a review job made from a
labeling job, claimable by reviewers only; a reviewer edits one object and rejects another; the
rejected one goes back to the annotators as iteration 2 with the note; the outputs of both jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from service_helpers import PASSWORD, answer_for, make_people, manifest_lines, write_manifest
from sqlalchemy import select

from toolkit.contract import ANSWER_FIELD
from toolkit.service import jobs, people, review, work
from toolkit.service.errors import Invalid, Refused, SubmissionInvalid
from toolkit.service.output import write_output
from toolkit.service.runner import run_queue
from toolkit.service.tables import Answer, DataObject

NOTE = "the second turn is the customer speaking"


def labeled_job(db, tmp_path, schema, storage, *, objects: int = 2):
    """A labeling job of `objects` calls, 2 annotators each, consolidated; plus a reviewer."""
    team, annotators = make_people(db, 2)
    reviewer = people.create_user(db, email="rev@example.org", display_name="Reviewer", password=PASSWORD,
                                  role="reviewer", team_ids=(team.id,))
    lines = [x for x in manifest_lines(tmp_path, objects) if "source-ref" in x]
    manifest = write_manifest(tmp_path / "calls.jsonl", lines)
    job = jobs.create_job(db, name="calls-1", manifest=str(manifest), schema=schema, team_id=team.id,
                          output_uri=str(tmp_path / "out"), workers_per_object=2)
    for n, user in enumerate(annotators, start=1):
        while (task := work.claim(db, user.id)) is not None:
            work.submit(db, user.id, task.object_id, answer_for(task, schema, n, storage))
    run_queue(db, storage=storage)
    return team, annotators, reviewer, job


def web_app(db, tmp_path, storage):
    """The web app on the test's database, its queue not running (the tests run it)."""
    from toolkit.service.web import ServeConfig, create_app

    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), storage=storage, secure_cookies=False,
                                 run_queue=False, media_roots=(tmp_path / "media",)))
    app.testing = True
    return app


def review_content(task, decision: str, note: str = "", mutate=None) -> dict:
    """What the review page sends: the editable starting point (`review.answer`), changed or not."""
    answer = json.loads(json.dumps(task.task_input["review"]["answer"]))
    if mutate:
        mutate(answer)
    answer["review"] = {"decision": decision, "note": note}
    return {ANSWER_FIELD: json.dumps(answer)}


def test_full_review_round(db, tmp_path, schema, storage):
    _team, (ann1, ann2), reviewer, job = labeled_job(db, tmp_path, schema, storage)
    made = review.create_review_job(db, job.id)
    assert (made.kind, made.review_of, made.name, made.label_attribute) == ("review", job.id, "calls-1-review",
                                                                            "segments-review")
    assert work.claim(db, ann1.id) is None  # annotators never get review tasks
    first = work.claim(db, reviewer.id)
    review_input = first.task_input["review"]
    assert review_input["of-job"] == "calls-1" and [w["worker"] for w in review_input["workers"]] == ["w1", "w2"]
    assert "segments" not in first.task_input  # the prior label (real worker ids) stays off the page
    assert ann1.worker_id not in json.dumps(first.task_input)
    with pytest.raises(Refused, match="only reviewers"):
        work.submit(db, ann2.id, first.object_id, review_content(first, "accept"))
    with pytest.raises(SubmissionInvalid, match="needs a decision"):
        work.submit(db, reviewer.id, first.object_id, {ANSWER_FIELD: json.dumps(review_input["answer"])})

    def move(answer):
        answer["segments"][0]["start"] = round(answer["segments"][0]["start"] + 0.25, 3)
    work.submit(db, reviewer.id, first.object_id, review_content(first, "accept", mutate=move))  # -> edit
    second = work.claim(db, reviewer.id)
    work.submit(db, reviewer.id, second.object_id, review_content(second, "reject", NOTE))
    run_queue(db, storage=storage)
    assert review.review_counts(db, made.id) == {"edit": 1, "reject": 1}

    # The rejected object is open again, iteration 2, its task carrying the note.
    with db.read() as session:
        reopened = session.scalar(select(DataObject).where(DataObject.job_id == job.id, DataObject.position == 1))
        assert (reopened.iteration, reopened.state, reopened.answers_count) == (2, "open", 0)
    assert jobs.get_job(db, job.id).status == "active"
    again = work.claim(db, ann1.id)
    assert again.object_id == reopened.id and again.task_input["review-note"] == {"note": NOTE, "iteration": 2}
    held = work.claim(db, reviewer.id)  # nothing left to review; a reviewer may label, though
    assert held.job_id == job.id and work.release(db, reviewer.id, held.object_id)
    work.submit(db, ann1.id, again.object_id, answer_for(again, schema, 1, storage))
    other = work.claim(db, ann2.id)
    work.submit(db, ann2.id, other.object_id, answer_for(other, schema, 2, storage))
    run_queue(db, storage=storage)
    with db.read() as session:
        assert [a.iteration for a in session.scalars(select(Answer).where(Answer.object_id == reopened.id)
                                                     .order_by(Answer.id))] == [1, 1, 2, 2]

    # Labeled again: the review job gets a task for iteration 2 (once), and its accept ends the round.
    again_review = work.claim(db, reviewer.id)
    assert again_review is not None and again_review.job_id == made.id
    assert again_review.task_input["review"]["iteration"] == 2
    assert "review-note" not in again_review.task_input
    work.submit(db, reviewer.id, again_review.object_id, review_content(again_review, "accept"))
    run_queue(db, storage=storage)
    assert review.review_counts(db, made.id) == {"edit": 1, "reject": 1, "accept": 1}
    assert work.claim(db, reviewer.id) is None or work.current_task(db, reviewer.id).job_id != made.id
    with db.read() as session:
        assert session.get(DataObject, reopened.id).state == "consolidated"

    # Outputs: the labeling job keeps iteration-1 answers beside iteration-2; the review job's lines
    # carry the reviewed label in the chained form.
    write_output(db, job.id, storage=storage, full=True)
    write_output(db, made.id, storage=storage, full=True)
    root = Path(tmp_path / "out" / "calls-1")
    responses = root / "annotations" / "worker-response"
    assert len(list((responses / "iteration-1" / "1").glob("*.json"))) == 2
    assert len(list((responses / "iteration-2" / "1").glob("*.json"))) == 2
    labeled = [json.loads(t) for t in (root / "manifests/output/output.manifest").read_text().splitlines()]
    assert labeled[1]["review-note"]["iteration"] == 2 and labeled[1]["segments"]["status"] == "ok"
    reviewed = [json.loads(t) for t in
                (tmp_path / "out" / "calls-1-review" / "manifests/output/output.manifest").read_text().splitlines()]
    edit, reject, accept = (line["segments-review"] for line in reviewed)
    assert accept["decision"] == "accept"
    assert edit["decision"] == "edit" and edit["reviewer"] == reviewer.worker_id
    assert [m["id"] for m in edit["changes"]["moved"]] == [review_input["answer"]["segments"][0]["id"]]
    assert reject["decision"] == "reject" and reject["note"] == NOTE
    metas = [line["segments-review-metadata"] for line in reviewed]
    assert [(m["adjustment-status"], m["review-decision"]) for m in metas] == [
        ("adjusted", "edit"), ("unadjusted", "reject"), ("unadjusted", "accept")]

    # Export of the reviewed labels.
    from toolkit.export import ExportOptions, export
    from toolkit.export.trust import TrustOptions
    from toolkit.storage import Storage
    summary = export(Storage(), str(tmp_path / "out" / "calls-1-review" / "manifests/output/output.manifest"),
                     ExportOptions(preset="sft-transcription", format="jsonl", out=str(tmp_path / "r.jsonl"),
                                   trust=TrustOptions(reviewed_only=True)))
    assert summary.skipped == {"rejected-in-review": 1}
    records = [json.loads(t) for t in (tmp_path / "r.jsonl").read_text().splitlines()]
    reviews = {r["lineage"]["line"]: r["lineage"]["review"] for r in records}  # a record per segment
    assert [(r["decision"], r["adjustment_status"], r["reviewer"], r["review_job"]) for r in reviews.values()] == [
        ("edit", "adjusted", reviewer.worker_id, "calls-1-review"),
        ("accept", "unadjusted", reviewer.worker_id, "calls-1-review")]
    assert [m["id"] for m in reviews[1]["changes"]["moved"]] == [review_input["answer"]["segments"][0]["id"]]
    assert reviews[3]["changes"] == {}
    assert summary.extra["reviewed"] == "accept: 1, edit: 1, reject: 1"


def test_a_reviewer_never_reviews_what_they_labeled(db, tmp_path, schema, storage):
    _team, (ann1, _ann2), _reviewer, job = labeled_job(db, tmp_path, schema, storage, objects=1)
    people.set_role(db, ann1.id, "reviewer")
    review.create_review_job(db, job.id)
    assert work.claim(db, ann1.id) is None
    with db.read() as session:
        review_object = session.scalar(select(DataObject).where(DataObject.review_of.is_not(None)))
    from types import SimpleNamespace
    shown = SimpleNamespace(task_input=json.loads(review_object.task_input_json))
    with pytest.raises(Refused, match="you labeled"):
        work.submit(db, ann1.id, review_object.id, review_content(shown, "accept"))


def test_selection_all_below_agreement_and_seeded_sample(db, tmp_path, schema, storage):
    _team, _anns, _reviewer, job = labeled_job(db, tmp_path, schema, storage, objects=4)
    with db.read() as session:
        from toolkit.service.tables import Consolidation
        rows = session.execute(select(DataObject.id, Consolidation.agreement)
                               .join(Consolidation, Consolidation.object_id == DataObject.id)
                               .where(DataObject.job_id == job.id).order_by(DataObject.position)).all()
    ids = [r[0] for r in rows]
    assert review.select_objects(rows) == ids
    threshold = sorted(r[1] for r in rows)[2]
    assert review.select_objects(rows, below_agreement=threshold) == [r[0] for r in rows if r[1] < threshold]
    half = review.select_objects(rows, sample_pct=50, seed=7)
    assert len(half) == 2 and half == review.select_objects(rows, sample_pct=50, seed=7)
    with pytest.raises(Invalid, match="not both"):
        review.select_objects(rows, below_agreement=0.5, sample_pct=10)
    made = review.create_review_job(db, job.id, sample_pct=50, seed=7, name="calls-sample")
    with db.read() as session:
        reviewed = sorted(session.scalars(select(DataObject.review_of).where(DataObject.job_id == made.id)))
    assert reviewed == half
    with pytest.raises(Invalid, match="no consolidated object"):
        review.create_review_job(db, job.id, below_agreement=0.0, name="calls-none")
    with pytest.raises(Refused, match="is a review job"):
        review.create_review_job(db, made.id, name="calls-sample-2")


def test_the_review_task_page_and_submit_through_the_web(db, tmp_path, schema, storage):
    from web_helpers import claim, sign_in, submit

    from toolkit.service.web.app import stop

    _team, (ann1, _ann2), reviewer, job = labeled_job(db, tmp_path, schema, storage, objects=1)
    review.create_review_job(db, job.id)
    app = web_app(db, tmp_path, storage)
    try:
        annotator = app.test_client()
        assert sign_in(annotator, ann1.email, PASSWORD).status_code == 302
        assert claim(annotator).status_code == 200  # "nothing left": the review task is not theirs
        client = app.test_client()
        assert sign_in(client, reviewer.email, PASSWORD).status_code == 302
        resp = claim(client)
        object_id = int(resp.location.rsplit("/", 1)[1])
        page = client.get(f"/task/{object_id}").get_data(as_text=True)
        assert "<crowd-form" in page and "of-job" in page and "disagreements" in page
        assert ann1.worker_id not in page  # the prior label's real worker ids stay off the page
        task = work.current_task(db, reviewer.id)
        done = submit(client, object_id, review_content(task, "reject", NOTE))
        assert done.status_code == 200, done.get_data(as_text=True)
    finally:
        stop(app)
    run_queue(db, storage=storage)
    assert review.review_counts(db, jobs.get_job(db, "calls-1-review").id) == {"reject": 1}


def test_a_review_too_big_for_a_line_goes_to_a_sidecar(db, tmp_path, schema, storage):
    """Ground Truth's limits (100 KB a line, 20,000 characters an attribute) hold for the service's
    review tasks too: with many prior answers, `review` moves to a sidecar under the review job's
    output (`gtkit-review/sidecars/`), the task carries `review-ref`, and the reviewer's page can
    read it through its signed media link; the review still consolidates."""
    import re
    from html import unescape

    from web_helpers import claim, sign_in, submit

    from toolkit.contract.manifest import MAX_ATTRIBUTE_CHARS, MAX_LINE_BYTES
    from toolkit.contract.review import ReviewInput
    from toolkit.service.web.app import stop

    team, annotators = make_people(db, 2)
    reviewer = people.create_user(db, email="rev@example.org", display_name="Reviewer", password=PASSWORD,
                                  role="reviewer", team_ids=(team.id,))
    many = [{"id": f"pre-{i}", "track": "speaker", "label": "Agent" if i % 2 else "Customer", "start": i * 1.0,
             "end": i * 1.0 + 0.8, "text": f"turn {i} of a long call, words words words"} for i in range(300)]
    (line,) = [x for x in manifest_lines(tmp_path, 1) if "source-ref" in x]
    line.update({"duration-seconds": 400.0, "pre-segments": many})
    manifest = write_manifest(tmp_path / "long.jsonl", [line])
    job = jobs.create_job(db, name="long-1", manifest=str(manifest), schema=schema, team_id=team.id,
                          output_uri=str(tmp_path / "out"), workers_per_object=2)
    for n, user in enumerate(annotators, start=1):
        task = work.claim(db, user.id)
        work.submit(db, user.id, task.object_id, answer_for(task, schema, n, storage))
    run_queue(db, storage=storage)

    made = review.create_review_job(db, job.id, storage=storage)
    with db.read() as session:
        (review_object,) = session.scalars(select(DataObject).where(DataObject.job_id == made.id))
        line_text, input_text = review_object.line_json, review_object.task_input_json
    assert len(line_text.encode()) <= MAX_LINE_BYTES
    stored = json.loads(line_text)
    assert "review" not in stored and all(len(json.dumps(v)) <= MAX_ATTRIBUTE_CHARS for v in stored.values())
    ref = stored["review-ref"]
    assert ref.startswith(str(tmp_path / "out" / "long-1-review" / "gtkit-review" / "sidecars"))
    assert ref.endswith(".review.json")
    sidecar = ReviewInput.model_validate_json(Path(ref).read_text())
    assert [w.worker for w in sidecar.workers] == ["w1", "w2"] and len(sidecar.answer.segments) >= 300
    assert json.loads(input_text)["review-ref"] == ref and "review" not in json.loads(input_text)
    assert annotators[0].worker_id not in Path(ref).read_text()

    app = web_app(db, tmp_path, storage)
    try:
        client = app.test_client()
        assert sign_in(client, reviewer.email, PASSWORD).status_code == 302
        object_id = int(claim(client).location.rsplit("/", 1)[1])
        page = client.get(f"/task/{object_id}").get_data(as_text=True)
        url = unescape(re.search(r'data-review-url="([^"]+)"', page).group(1))
        got = client.get(url)
        assert got.status_code == 200 and json.loads(got.get_data()) == json.loads(Path(ref).read_text())
        # The link is the reviewer's: an annotator of another team gets nothing.
        _other_team, (outsider,) = make_people(db, 1, team="team-b")
        other = app.test_client()
        assert sign_in(other, outsider.email, PASSWORD).status_code == 302
        assert other.get(url).status_code == 404
        answer = sidecar.answer.model_dump(by_alias=True, mode="json", exclude_none=True)
        answer["review"] = {"decision": "accept", "note": ""}
        done = submit(client, object_id, {ANSWER_FIELD: json.dumps(answer)})
        assert done.status_code == 200, done.get_data(as_text=True)
    finally:
        stop(app)
    run_queue(db, storage=storage)
    assert review.review_counts(db, made.id) == {"accept": 1}


def test_the_admin_creates_a_review_job_on_the_job_page(db, tmp_path, schema, storage):
    from web_helpers import sign_in, token

    from toolkit.service.web.app import stop

    _team, (ann1, _ann2), _reviewer, job = labeled_job(db, tmp_path, schema, storage, objects=4)
    admin = people.create_user(db, email="boss@example.org", display_name="Boss", password=PASSWORD, role="admin")
    app = web_app(db, tmp_path, storage)
    try:
        client = app.test_client()
        assert sign_in(client, admin.email, PASSWORD).status_code == 302
        page = f"/admin/jobs/{job.id}"
        assert 'id="create-review"' in client.get(page).get_data(as_text=True)

        def post(**form):
            return client.post(f"{page}/create-review", data={"csrf_token": token(client, page), **form})
        assert post(select="sometimes").status_code == 400
        assert "not a number" in post(select="below", below_agreement="lots").get_data(as_text=True)
        made = post(select="sample", sample="50", seed="7", workers="1")
        assert made.status_code == 302
        review_job = jobs.get_job(db, "calls-1-review")
        assert made.location.endswith(f"/admin/jobs/{review_job.id}") and review_job.kind == "review"
        assert jobs.job_progress(db, review_job.id).objects == 2
        # Not on a review job's page; an annotator cannot post it.
        assert 'id="create-review"' not in client.get(made.location).get_data(as_text=True)
        other = app.test_client()
        assert sign_in(other, ann1.email, PASSWORD).status_code == 302
        refused = other.post(f"{page}/create-review", data={"csrf_token": token(other, "/"), "select": "all"})
        assert refused.status_code in (403, 404)
    finally:
        stop(app)


def test_a_cancelled_review_job_gets_no_new_round(db, tmp_path, schema, storage):
    _team, (ann1, ann2), reviewer, job = labeled_job(db, tmp_path, schema, storage, objects=1)
    admin = people.create_user(db, email="boss@example.org", display_name="Boss", password=PASSWORD, role="admin")
    made = review.create_review_job(db, job.id)
    task = work.claim(db, reviewer.id)
    work.submit(db, reviewer.id, task.object_id, review_content(task, "reject", NOTE))
    run_queue(db, storage=storage)
    jobs.cancel_job(db, made.id, actor_id=admin.id)
    for n, user in enumerate((ann1, ann2), start=1):
        again = work.claim(db, user.id)
        work.submit(db, user.id, again.object_id, answer_for(again, schema, n, storage))
    run_queue(db, storage=storage)
    assert jobs.job_progress(db, made.id).objects == 1
    with db.read() as session:
        assert session.scalar(select(DataObject.state).where(DataObject.job_id == job.id)) == "consolidated"
