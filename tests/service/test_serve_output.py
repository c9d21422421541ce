"""The output layout: the same files `gtkit local-job run` writes, re-derivable from the database,
read unchanged by `gtkit export`, `merge` and `report`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from service_helpers import EXAMPLE_MIRROR, EXAMPLES, answer_for, make_people
from sqlalchemy import update
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract.output_manifest import output_line_problems
from toolkit.service import jobs, people, runner, work
from toolkit.service.local_job import run_local_job
from toolkit.service.output import write_output
from toolkit.service.simulate import SimulatedClock, load_corrections, simulate_service
from toolkit.service.tables import User
from toolkit.storage import Storage

JOB = "calls"
FEEDBACK = EXAMPLES / "feedback" / "processed_feedback.jsonl"


@pytest.fixture(scope="module")
def demo_manifest(tmp_path_factory) -> Path:
    """The bundled examples as a Ground Truth manifest (what `make demo` builds)."""
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["manifest", "build", str(FEEDBACK), "--out", str(out / "manifest.jsonl"),
                                      "--errors", str(out / "problems.jsonl"), "--mirror", EXAMPLE_MIRROR],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out / "manifest.jsonl"


def read_lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def without_dates(line: dict) -> dict:
    line = json.loads(json.dumps(line))
    for key, value in line.items():
        if key.endswith("-metadata"):
            value.pop("creation-date")
    return line


def strip_dates(value):
    """The records without their creation dates (the only field that differs between two runs)."""
    if isinstance(value, dict):
        return {k: strip_dates(v) for k, v in value.items() if k not in ("creation-date", "creation_date")}
    if isinstance(value, list):
        return [strip_dates(v) for v in value]
    return value


def label_the_job(db, schema, storage, manifest: Path, out: Path, workers: int = 2):
    """The service labels `manifest` as the local job's simulated workers do: the same answers,
    worker 1 through every task, then worker 2; the accounts carry the local job's worker ids."""
    team, users = make_people(db, workers)
    with db.write() as session:
        for index, user in enumerate(users, start=1):
            session.execute(update(User).where(User.id == user.id).values(worker_id=f"sim-worker-{index}"))
    job = jobs.create_job(db, name=JOB, manifest=str(manifest), schema=schema, team_id=team.id, output_uri=str(out),
                          workers_per_object=workers, storage=storage)
    for index, user in enumerate(users, start=1):
        while (task := work.claim(db, user.id)) is not None:
            db.clock.advance(7)
            work.submit(db, user.id, task.object_id, answer_for(task, schema, index, storage))
    stats = runner.run_queue(db, storage=storage)
    assert stats.retried == 0 and stats.failed == 0
    return job


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_layout_is_what_the_local_job_writes(db, tmp_path, schema, storage, demo_manifest):
    run_local_job(demo_manifest, schema, workers=2, out=tmp_path / "local", job_name=JOB, storage=storage,
                  simulate_workers=True)
    label_the_job(db, schema, storage, demo_manifest, tmp_path / "served")
    local, served = tmp_path / "local" / JOB, tmp_path / "served" / JOB

    local_lines = read_lines(local / "manifests/output/output.manifest")
    served_lines = read_lines(served / "manifests/output/output.manifest")
    assert len(served_lines) == len(read_lines(demo_manifest)) == 4
    assert [without_dates(x) for x in served_lines] == [without_dates(x) for x in local_lines]
    assert all(output_line_problems(x, "segments", JOB) == [] for x in served_lines)
    # creation-date is the last submission, to the millisecond, from the fake clock
    assert served_lines[0]["segments-metadata"]["creation-date"].endswith(".123000")

    local_files, served_files = files(local), files(served)
    consolidation = {k for k in local_files if "consolidated-annotation" in k}
    assert consolidation and consolidation == {k for k in served_files if "consolidated-annotation" in k}
    for name in consolidation:  # request and response files: byte for byte
        assert served_files[name] == local_files[name], name

    def responses(all_files: dict[str, bytes]) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for name, data in all_files.items():
            if "worker-response" in name:
                answer = json.loads(data)["answers"][0]
                out.setdefault(name.split("/")[-2], []).append(
                    {k: v for k, v in answer.items() if k not in ("acceptanceTime", "submissionTime",
                                                                  "timeSpentInSeconds")})
        return out

    assert responses(served_files) == responses(local_files)
    assert len([k for k in served_files if "worker-response" in k]) == 8
    first = json.loads(next(v for k, v in served_files.items() if "worker-response/iteration-1/0/" in k))
    assert first["answers"][0]["timeSpentInSeconds"] == 7.0
    assert first["answers"][0]["submissionTime"].endswith(".123Z")


def test_on_the_simulated_clock_the_layout_is_the_local_jobs_byte_for_byte(db, tmp_path, schema, storage,
                                                                           demo_manifest):
    """Issue 14, local-job on the service: `make demo`'s job (3 workers, corrections) run through
    work.claim / work.submit, the queue and write_output, with the simulated workers and clock,
    writes every file `gtkit local-job run --simulate` writes, byte for byte."""
    corrections = load_corrections(EXAMPLES / "asr-corrections.yaml")
    run_local_job(demo_manifest, schema, workers=3, out=tmp_path / "local", job_name=JOB, storage=storage,
                  simulate_workers=True, corrections=corrections)
    clock = SimulatedClock()
    db.clock = clock
    team = people.create_team(db, "local")
    users = people.named_workers(db, team.id, ["sim-worker-1", "sim-worker-2", "sim-worker-3"])
    job = jobs.create_job(db, name=JOB, manifest=str(demo_manifest), schema=schema, team_id=team.id,
                          output_uri=str(tmp_path / "served"), workers_per_object=3, storage=storage)
    assert simulate_service(db, clock, users, schema, storage=storage, corrections=corrections) == 12
    stats = runner.run_queue(db, storage=storage)
    assert stats.retried == 0 and stats.failed == 0
    write_output(db, job.id, storage=storage, full=True)
    local, served = files(tmp_path / "local" / JOB), files(tmp_path / "served" / JOB)
    assert len([k for k in local if "worker-response" in k]) == 12
    assert sorted(served) == sorted(local)
    for name, data in local.items():
        assert served[name] == data, name


def test_export_merge_and_report_read_it_unchanged(db, tmp_path, schema, storage, demo_manifest):
    run_local_job(demo_manifest, schema, workers=2, out=tmp_path / "local", job_name=JOB, storage=storage,
                  simulate_workers=True)
    label_the_job(db, schema, storage, demo_manifest, tmp_path / "served")
    outputs = {}
    for run in ("local", "served"):
        labels = str(tmp_path / run / JOB / "manifests/output/output.manifest")
        runner_ = CliRunner()
        for args in (["export", "--labels", labels, "--preset", "sft-transcription", "--format", "trl",
                      "--out", str(tmp_path / run / "sft.jsonl")],
                     ["export", "--labels", labels, "--preset", "reward-segments", "--format", "jsonl",
                      "--out", str(tmp_path / run / "reward.jsonl")],
                     ["merge", "--feedback", str(FEEDBACK), "--labels", labels,
                      "--out", str(tmp_path / run / "merged.jsonl")],
                     ["report", "--labels", labels, "--out", str(tmp_path / run / "report.html")]):
            result = runner_.invoke(app, args, catch_exceptions=False)
            assert result.exit_code == 0, (args, result.output)
        outputs[run] = {name: strip_dates(read_lines(tmp_path / run / name))
                        for name in ("sft.jsonl", "reward.jsonl", "merged.jsonl")}
        assert (tmp_path / run / "report.html").stat().st_size > 1000
    assert len(outputs["served"]["sft.jsonl"]) > 4 and len(outputs["served"]["merged.jsonl"]) >= 4
    assert outputs["served"] == outputs["local"]


def test_the_layout_is_rederived_from_the_database(db, tmp_path, schema, storage, manifest):
    job = label_the_job(db, schema, storage, manifest, tmp_path / "out")
    root = tmp_path / "out" / JOB
    before = files(root)
    assert len(before) == 4 + 2 * 2 + 1  # 4 worker responses, 2 requests + 2 responses, the manifest
    again = write_output(db, job.id, storage=storage)
    assert again.object_files_written == 0 and files(root) == before  # nothing was dirty
    shutil.rmtree(root)
    stats = write_output(db, job.id, storage=storage, full=True)
    assert (stats.objects, stats.labeled, stats.object_files_written) == (3, 2, 3)
    assert files(root) == before


def test_output_to_s3(db, tmp_path, schema, storage, manifest, s3_bucket):
    job = label_the_job(db, schema, storage, manifest, tmp_path / "local-out")
    local = files(tmp_path / "local-out" / JOB)
    with db.write() as session:
        from toolkit.service.tables import Job

        session.execute(update(Job).where(Job.id == job.id).values(output_uri=f"s3://{s3_bucket}/gt"))
    write_output(db, job.id, storage=Storage(), full=True)
    client = boto3.client("s3")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == sorted(f"gt/{JOB}/{name}" for name in local)
    for name, data in local.items():
        assert client.get_object(Bucket=s3_bucket, Key=f"gt/{JOB}/{name}")["Body"].read() == data
