"""Importing a Ground Truth job's output layout to continue or review it in the service: one written
by `gtkit local-job run` (which writes the Ground Truth layout), and the same reshaped as Ground
Truth writes it for a private workforce (workforce worker ids, Cognito metadata, time-named response
files, the doc's metadata spelling, intermediate files)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from service_helpers import answer_for, make_people
from sqlalchemy import select

from toolkit.service import gt_import, jobs, runner, work
from toolkit.service.errors import Invalid
from toolkit.service.local_job import run_local_job
from toolkit.service.tables import Answer, DataObject, User
from toolkit.storage import Storage


def read_lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_a_finished_job_comes_in_labeled(db, tmp_path, schema, storage, manifest):
    run_local_job(manifest, schema, workers=2, out=tmp_path / "gt", job_name="gt-job", storage=storage,
                  simulate_workers=True)
    team, _ = make_people(db, 1)
    result = gt_import.import_gt_output(db, str(tmp_path / "gt" / "gt-job"), name="review-1", schema=schema,
                                        team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=2,
                                        storage=storage)
    assert (result.objects, result.labeled, result.answers) == (3, 2, 4)
    assert result.job.status == "done"
    with db.read() as session:
        states = list(session.scalars(select(DataObject.state).order_by(DataObject.position)))
        workers = set(session.scalars(select(User.worker_id).join(Answer, Answer.user_id == User.id)))
        imported = session.scalars(select(User).where(User.external.is_(True))).all()
    assert states == ["consolidated", "consolidated", "declined"]
    assert workers == {"sim-worker-1", "sim-worker-2"}  # the original workerIds are kept
    assert all(u.disabled and u.password_hash is None for u in imported)
    runner.run_queue(db, storage=storage)
    theirs = read_lines(tmp_path / "gt" / "gt-job" / "manifests/output/output.manifest")
    ours = read_lines(tmp_path / "out" / "review-1" / "manifests/output/output.manifest")
    assert [x.get("segments") for x in ours] == [x.get("segments") for x in theirs]
    assert ours[2] == theirs[2] and ours[0]["segments-metadata"]["job-name"] == "review-1"
    theirs_root, ours_root = tmp_path / "gt" / "gt-job", tmp_path / "out" / "review-1"
    theirs_files = sorted(p.relative_to(theirs_root) for p in theirs_root.rglob("*.json"))
    ours_files = sorted(p.relative_to(ours_root) for p in ours_root.rglob("*.json"))
    assert [p for p in ours_files if "worker-response" in str(p)] == [p for p in theirs_files
                                                                      if "worker-response" in str(p)]
    for path in (p for p in ours_files if "worker-response" in str(p)):  # answers, times and all
        assert (ours_root / path).read_bytes() == (theirs_root / path).read_bytes()


def test_a_partly_labeled_job_is_continued_here(db, tmp_path, schema, storage, manifest, s3_bucket):
    run_local_job(manifest, schema, workers=1, out=tmp_path / "gt", job_name="half", storage=storage,
                  simulate_workers=True)
    root = tmp_path / "gt" / "half"
    for label in (root / "annotations" / "consolidated-annotation").rglob("*.json"):
        label.unlink()  # as if Ground Truth stopped before consolidating: answers but no labels
    lines = read_lines(root / "manifests/output/output.manifest")
    (root / "manifests/output/output.manifest").write_text("".join(
        json.dumps({k: v for k, v in x.items() if not k.startswith("segments")}) + "\n" for x in lines))
    client = boto3.client("s3")
    for path in root.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), s3_bucket, f"gt/half/{path.relative_to(root)}")
    team, (ann,) = make_people(db, 1)
    result = gt_import.import_gt_output(db, f"s3://{s3_bucket}/gt/half", name="continued", schema=schema,
                                        team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=2,
                                        storage=Storage([*storage.mirrors]))
    assert (result.objects, result.labeled, result.answers) == (3, 0, 2)
    labeled = []
    while (task := work.claim(db, ann.id)) is not None:  # the second place of each object
        work.submit(db, ann.id, task.object_id, answer_for(task, schema, 2, storage))
        labeled.append(task.dataset_object_id)
    assert labeled == ["0", "1"]
    runner.run_queue(db, storage=storage)
    assert jobs.get_job(db, result.job.id).status == "done"
    out = read_lines(tmp_path / "out" / "continued" / "manifests/output/output.manifest")
    # in submission order: the imported answer carries the simulated workers' clock (from
    # 2024-06-03, toolkit.service.simulate), ann's the fake clock's later 2026-03-02
    assert [w["workerId"] for w in out[0]["segments"]["workers"]] == ["sim-worker-1", ann.worker_id]


def test_in_place_with_unreadable_files_reported(db, tmp_path, schema, storage, manifest):
    """What `gtkit local-job run --simulate` resumes with: its own output folder imported in place
    (the files on disk are not rewritten) and an unreadable response reported and left out."""
    run_local_job(manifest, schema, workers=1, out=tmp_path / "gt", job_name="own", storage=storage,
                  simulate_workers=True)
    root = tmp_path / "gt" / "own"
    bad = root / "annotations/worker-response/iteration-1/2/2024-01-01_00:00:00.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.json") if p != bad}
    team, _ = make_people(db, 1)
    reported: list[str] = []
    result = gt_import.import_gt_output(db, str(root), name="own", schema=schema, team_id=team.id,
                                        output_uri=str(tmp_path / "gt"), storage=storage, in_place=True,
                                        unreadable=lambda uri, exc: reported.append(uri))
    assert reported == [str(bad)] and bad.read_text() == "{not json"
    assert (result.objects, result.labeled, result.answers) == (3, 2, 2)
    stats = runner.run_queue(db, storage=storage)
    assert stats.failed == stats.retried == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing rewritten
    with pytest.raises(Invalid, match="unreadable worker response of object 2"):  # without the hook
        gt_import.import_gt_output(db, str(root), name="own-2", schema=schema, team_id=team.id,
                                   output_uri=str(tmp_path / "gt"), storage=storage)


def test_import_refuses_what_is_not_a_job_output(db, tmp_path, schema):
    team, _ = make_people(db, 1)
    with pytest.raises(Invalid, match="no output manifest"):
        gt_import.import_gt_output(db, str(tmp_path), name="x", schema=schema, team_id=team.id,
                                   output_uri=str(tmp_path / "out"))
    root = tmp_path / "job"
    (root / "manifests/output").mkdir(parents=True)
    (root / "manifests/output/output.manifest").write_text('{"source-ref": "s3://b/a.wav", "interaction-id": "a"}\n')
    bad = root / "annotations/worker-response/iteration-1/0/2024-01-01_00:00:00.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"answers": [{"workerId": ""}]}')
    with pytest.raises(Invalid, match="unreadable worker response of object 0"):
        gt_import.import_gt_output(db, str(root), name="y", schema=schema, team_id=team.id,
                                   output_uri=str(tmp_path / "out"))
    bad.unlink()
    (root / "manifests/output/output.manifest").write_bytes(b'{"source-ref": "s3://b/caf\xe9.wav"}\n')
    with pytest.raises(Invalid, match="line 1"):
        gt_import.import_gt_output(db, str(root), name="z", schema=schema, team_id=team.id,
                                   output_uri=str(tmp_path / "out"))
    assert jobs.list_jobs(db) == []  # a refused import leaves no half-imported job


def as_ground_truth_wrote_it(root: Path) -> dict[str, str]:
    """Reshape a layout gtkit wrote into what a Ground Truth job on a private workforce writes: worker
    ids of the workforce (`private.<region>.<hash>`) with Cognito `workerMetadata`, response files
    named by time with colons, the label's metadata as the custom-workflow doc spells it
    (`groundTruth/custom`, `job_name`), and the files Ground Truth adds that gtkit does not read
    (intermediate manifests, consolidation requests). Returns the new worker id of each old one."""
    renamed: dict[str, str] = {}
    for number, path in enumerate(sorted((root / "annotations" / "worker-response").rglob("*.json"))):
        body = json.loads(path.read_text())
        for answer in body["answers"]:
            old = answer["workerId"]
            answer["workerId"] = renamed.setdefault(old, f"private.us-east-1.{len(renamed):04d}c2b7d1e9f3a5")
            answer["workerMetadata"] = {"identityData": {
                "identityProviderType": "Cognito", "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x",
                "sub": f"5f0c{len(renamed):04d}-aaaa-bbbb-cccc-0123456789ab"}}
        path.unlink()
        (path.parent / f"2024-11-05_09:5{number % 10}:40.json").write_text(json.dumps(body))
    manifest = root / "manifests" / "output" / "output.manifest"
    lines = read_lines(manifest)
    for line in lines:
        meta = line.get("segments-metadata")
        if meta is not None:
            line["segments-metadata"] = {"type": "groundTruth/custom", "job_name": meta["job-name"],
                                         "human-annotated": "yes", "creation_date": meta["creation-date"]}
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    extra = root / "annotations" / "intermediate" / "1"
    extra.mkdir(parents=True)
    (extra / "annotations.json").write_text(json.dumps(lines[0]) + "\n")
    (root / "manifests" / "intermediate" / "1").mkdir(parents=True)
    (root / "manifests" / "intermediate" / "1" / "output.manifest").write_text(json.dumps(lines[0]) + "\n")
    return renamed


def test_a_job_as_ground_truth_writes_it_comes_in_with_its_workforce_ids_and_metadata(db, tmp_path, schema, storage,
                                                                                      manifest):
    run_local_job(manifest, schema, workers=2, out=tmp_path / "gt", job_name="gt-job", storage=storage,
                  simulate_workers=True)
    root = tmp_path / "gt" / "gt-job"
    renamed = as_ground_truth_wrote_it(root)
    assert len(renamed) == 2
    team, _ = make_people(db, 1)
    result = gt_import.import_gt_output(db, str(root), name="from-gt", schema=schema, team_id=team.id,
                                        output_uri=str(tmp_path / "out"), workers_per_object=2, storage=storage)
    assert (result.objects, result.labeled, result.answers) == (3, 2, 4)
    with db.read() as session:
        workers = set(session.scalars(select(User.worker_id).join(Answer, Answer.user_id == User.id)))
        metadata = [json.loads(m) for m in session.scalars(select(Answer.worker_metadata_json))]
    assert workers == set(renamed.values())
    assert all(m["identityData"]["identityProviderType"] == "Cognito" for m in metadata)
    runner.run_queue(db, storage=storage)
    ours = tmp_path / "out" / "from-gt"
    theirs = read_lines(root / "manifests/output/output.manifest")
    mine = read_lines(ours / "manifests/output/output.manifest")
    assert [x.get("segments") for x in mine] == [x.get("segments") for x in theirs]
    responses = sorted((ours / "annotations" / "worker-response").rglob("*.json"))
    assert len(responses) == 4  # the answers are written back, with their workforce ids and metadata
    written = [a for p in responses for a in json.loads(p.read_text())["answers"]]
    assert {a["workerId"] for a in written} == set(renamed.values())
    assert all(a["workerMetadata"]["identityData"]["issuer"].startswith("https://cognito-idp.") for a in written)
