"""Comparison tasks in `gtkit serve`: the service labels the example compare manifest through its
work queue and the real post-annotation handler; the output manifest carries the comparison."""

from __future__ import annotations

import json

from service_helpers import EXAMPLES
from test_serve_output import JOB, label_the_job, read_lines

from toolkit.contract import ConsolidatedLabel, load_label_schema
from toolkit.contract.output_manifest import output_line_problems


def test_served_compare_job_consolidates_comparisons(db, tmp_path, storage):
    schema = load_label_schema("tts-compare")
    manifest = EXAMPLES / "compare" / "manifest.jsonl"
    label_the_job(db, schema, storage, manifest, tmp_path / "served")
    lines = read_lines(tmp_path / "served" / JOB / "manifests/output/output.manifest")
    assert [x["interaction-id"] for x in lines] == ["cmp-0001", "cmp-0002"]
    for line, given in zip(lines, manifest.read_text().splitlines(), strict=True):
        assert output_line_problems(line, "segments", JOB) == []
        assert line["candidates"] == json.loads(given)["candidates"]  # system ids kept for the exporter
        label = ConsolidatedLabel.model_validate(line["segments"])
        assert label.status == "ok" and label.valid_worker_count == 2
        comp = label.comparison
        assert sum(comp.votes.values()) == 2 and len(comp.orders) == 2
        # the Lambda's payload names only the source-ref: systems are joined later, from the line
        assert set(comp.systems) == {str(i + 1) for i in range(len(line["candidates"]))}
