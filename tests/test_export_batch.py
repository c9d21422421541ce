"""bedrock-batch: jobs of balanced size within the quotas; a failed export leaves nothing at --out
and says what can help."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.contract.records import BatchPlan
from toolkit.export import BatchQuotas, ExportError, ExportOptions, export
from toolkit.export.formats.bedrock_batch import split_balanced
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
CALLS = FIXTURES / "call_center.output.manifest"


def write_manifest(path: Path, items: int, per_item: int) -> Path:
    seg = ('{{"id":"s{j}","category":"speaker","label":"Agent","start":{j},"end":{j}.5,"text":"t",'
           '"support":1,"agreement":1}}')
    with path.open("w", encoding="utf-8") as fh:
        for i in range(items):
            segs = ",".join(seg.format(j=j) for j in range(per_item))
            fh.write(f'{{"source-ref":"s3://b/{i}.wav","interaction-id":"i{i}","lab":{{"labelSchema":"call-center",'
                     f'"segments":[{segs}]}},"lab-metadata":{{"type":"groundtruth/custom","job-name":"j"}}}}\n')
    return path


def batch(tmp_path: Path, manifest: Path, out: Path, **quotas) -> object:
    return export(Storage(), str(manifest), ExportOptions(
        preset="sft-transcription", format="bedrock-batch", out=str(out), quotas=BatchQuotas(**quotas)))


def test_1240_records_at_300_per_job_make_5_jobs_of_248(tmp_path):
    manifest = write_manifest(tmp_path / "m.manifest", 124, 10)
    out = tmp_path / "batch"
    summary = batch(tmp_path, manifest, out, min_records=100, records_per_job=300, records_per_file=100)
    plan = BatchPlan.model_validate_json((out / "jobs.json").read_text())
    assert summary.written == 1240
    assert [j.records for j in plan.jobs] == [248] * 5
    assert [[f.records for f in j.files] for j in plan.jobs] == [[83, 83, 82]] * 5  # files balanced too
    ids = []
    for job in plan.jobs:
        for f in job.files:
            rows = [json.loads(line) for line in (out / f.path).read_text().splitlines()]
            assert len(rows) == f.records
            assert sum(len(json.dumps(r, separators=(",", ":"))) + 1 for r in rows) == f.bytes
            ids += [r["recordId"] for r in rows]
    assert ids == [f"R{n:010d}" for n in range(1, 1241)]  # every record once, in input order
    prov = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
    assert [p["recordId"] for p in prov] == ids
    assert (prov[83]["file"], prov[83]["row"]) == ("job-000/part-001.jsonl", 0)


@pytest.mark.parametrize("nested", [False, True])
def test_failed_batch_leaves_nothing_and_names_the_quota(tmp_path, nested):
    out = tmp_path / "a" / "b" / "batch" if nested else tmp_path / "batch"
    with pytest.raises(ExportError) as err:
        batch(tmp_path, CALLS, out, min_records=100)
    message = str(err.value)
    assert "6 records in total" in message and "minimum of 100" in message
    assert "--batch-records-per-job" not in message  # more records per job cannot help 6 records
    assert list(tmp_path.iterdir()) == []  # no OUT/, no OUT/job-000/, no parent made for it


def test_a_directory_that_was_there_stays(tmp_path):
    out = tmp_path / "batch"
    out.mkdir()
    with pytest.raises(ExportError):
        batch(tmp_path, CALLS, out, min_records=100)
    assert out.is_dir() and list(out.iterdir()) == []


def test_quotas_that_force_small_jobs_say_so(tmp_path):
    manifest = write_manifest(tmp_path / "m.manifest", 30, 10)
    with pytest.raises(ExportError, match=r"300 records into 2 jobs of 150 and 150; 2 below the minimum of 200"):
        batch(tmp_path, manifest, tmp_path / "batch", min_records=200, records_per_job=299)
    assert not (tmp_path / "batch").exists()


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(1, 50), max_size=300), max_count=st.integers(1, 60), extra=st.integers(0, 200))
def test_split_balanced_covers_everything_within_the_limits(sizes, max_count, extra):
    max_bytes = max(sizes, default=1) + extra
    parts = split_balanced(sizes, max_count, max_bytes)
    assert [i for a, b in parts for i in range(a, b)] == list(range(len(sizes)))  # in order, each once
    assert all(b - a <= max_count and sum(sizes[a:b]) <= max_bytes for a, b in parts)
    assert len(parts) >= max(math.ceil(len(sizes) / max_count), math.ceil(sum(sizes) / max_bytes))
    if max_bytes >= 50 * max_count:
        # Any max_count records fit the byte limit, so counts alone decide: the fewest parts, sizes
        # differing by one at most.
        counts = [b - a for a, b in parts]
        assert len(parts) == math.ceil(len(sizes) / max_count)
        assert not counts or max(counts) - min(counts) <= 1


def test_each_job_has_a_record_map_outside_its_prefix(tmp_path):
    """`records/job-NNN.jsonl` joins every recordId of the job back to its interaction and segment;
    it sits outside the prefix (Bedrock reads every file under the prefix it is given)."""
    from toolkit.contract.records import BatchRecordMapEntry

    manifest = write_manifest(tmp_path / "m.manifest", 30, 10)
    out = tmp_path / "batch"
    batch(tmp_path, manifest, out, min_records=100, records_per_job=150, records_per_file=100)
    plan = BatchPlan.model_validate_json((out / "jobs.json").read_text())
    assert plan.preset == "sft-transcription" and plan.body is not None and plan.body.body == "anthropic"
    assert [j.records_map for j in plan.jobs] == ["records/job-000.jsonl", "records/job-001.jsonl"]
    for job in plan.jobs:
        assert sorted(p.name for p in (out / job.prefix).iterdir()) == sorted(f.path.split("/")[1] for f in job.files)
        entries = [BatchRecordMapEntry.model_validate_json(line)
                   for line in (out / job.records_map).read_text().splitlines()]
        assert len(entries) == job.records
        for f in job.files:
            rows = [json.loads(line) for line in (out / f.path).read_text().splitlines()]
            mine = [e for e in entries if e.file == f.path]
            assert [e.record_id for e in mine] == [r["recordId"] for r in rows]
            assert [e.row for e in mine] == list(range(len(rows)))
    first = BatchRecordMapEntry.model_validate_json((out / "records" / "job-000.jsonl").read_text().split("\n")[0])
    assert (first.interaction_id, first.segment_id, first.line, first.source_ref) == ("i0", "s0", 1, "s3://b/0.wav")
