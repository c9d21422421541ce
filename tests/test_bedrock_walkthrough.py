"""docs/bedrock.md end to end on the bundled examples, offline: model summaries imported from a batch job's
output, pre-filled in the manifest, corrected by (simulated) workers, exported as preference pairs about the
model and loaded with TRL's data utilities. Also `manifest build --model-outputs` on its own."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import ManifestLine

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
OUTPUT = "s3://example-feedback-bucket/bedrock/output/abcdef123456/part-000.jsonl.out"
BATCH = "s3://example-feedback-bucket/bedrock/batch/"


def gtkit(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_model_outputs_prefill_the_manifest(tmp_path, examples, example_mirror):
    imported = tmp_path / "imported.jsonl"
    said = gtkit("bedrock", "import", OUTPUT, "--records", BATCH, "--model", MODEL, "--out", str(imported),
                 "--mirror", example_mirror)
    assert "4 records (1 error, 3 ok)" in said and "record R0000000003" in said
    assert "206 555" not in imported.read_text()  # the model's text is masked on import
    said = gtkit("manifest", "build", str(examples / "feedback" / "processed_feedback.jsonl"), "--model-outputs",
                 str(imported), "--out", str(tmp_path / "manifest.jsonl"), "--mirror", example_mirror)
    assert "lines with model answers │ 3" in said and "1 (status error)" in said
    lines = [ManifestLine.model_validate_json(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    pre = {line.interaction_id: line.pre_content for line in lines}
    assert pre["int-0004"] is None  # its output failed: the workers start from an empty summary
    summary = pre["int-0003"]["summary"]
    assert summary.value == "The customer asks about a charge on their bill and wants a call back on [PHONE]."
    assert (summary.model_id, summary.record_id, summary.params["max_tokens"]) == (MODEL, "R0000000002", 512)
    assert summary.prompt.startswith("Summarise the customer's issue")


def test_walkthrough_from_model_outputs_to_a_preference_dataset(tmp_path, examples, example_mirror):
    from datasets import load_dataset
    from trl.data_utils import is_conversational, maybe_unpair_preference_dataset

    imported, manifest, review = tmp_path / "imported.jsonl", tmp_path / "review.jsonl", tmp_path / "review"
    gtkit("bedrock", "import", OUTPUT, "--records", BATCH, "--model", MODEL, "--out", str(imported),
          "--mirror", example_mirror)
    gtkit("manifest", "build", str(examples / "feedback" / "processed_feedback.jsonl"), "--model-outputs",
          str(imported), "--out", str(manifest), "--mirror", example_mirror)
    gtkit("local-job", "run", "--manifest", str(manifest), "--schema", "call-center", "--workers", "2",
          "--out", str(review), "--simulate", "--mirror", example_mirror)
    labels = review / "local-call-center" / "manifests" / "output" / "output.manifest"
    first = json.loads(labels.read_text().splitlines()[0])
    summary = first["segments"]["content"]["summary"]
    assert summary["prefill"]["modelId"] == MODEL  # the label keeps both texts
    assert summary["value"] != summary["prefill"]["value"]
    out = tmp_path / "model-preferences.trl.jsonl"
    gtkit("export", "--labels", str(labels), "--preset", "preference-model", "--format", "trl", "--out", str(out))
    ds = load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 3
    row = ds[0]
    assert is_conversational(row)
    assert row["rejected"][0]["content"] == summary["prefill"]["value"]
    assert row["chosen"][0]["content"] == summary["value"]
    assert row["lineage"]["model"]["model_id"] == MODEL
    assert maybe_unpair_preference_dataset(ds).num_rows == 6


def test_the_bundled_batch_is_what_step_1_writes(tmp_path, examples, example_mirror):
    """examples/bedrock/batch/ (what the walk-through's later steps read) comes out of its first step."""
    manifest, first = tmp_path / "manifest.jsonl", tmp_path / "first"
    gtkit("manifest", "build", str(examples / "feedback" / "processed_feedback.jsonl"), "--out", str(manifest),
          "--mirror", example_mirror)
    gtkit("local-job", "run", "--manifest", str(manifest), "--schema", "call-center", "--workers", "2",
          "--out", str(first), "--simulate", "--mirror", example_mirror)
    gtkit("export", "--labels", str(first / "local-call-center" / "manifests" / "output" / "output.manifest"),
          "--preset", "sft-summary", "--format", "bedrock-batch", "--out", str(tmp_path / "batch"),
          "--batch-min-records", "1")
    for name in ("job-000/part-000.jsonl", "records/job-000.jsonl", "jobs.json"):
        assert (tmp_path / "batch" / name).read_bytes() == (examples / "bedrock" / "batch" / name).read_bytes(), name


def test_a_long_prompt_leaves_the_pre_content_within_ground_truths_limits(tmp_path, examples, example_mirror):
    from toolkit.contract.manifest import MAX_ATTRIBUTE_CHARS

    imported = tmp_path / "imported.jsonl"
    gtkit("bedrock", "import", OUTPUT, "--records", BATCH, "--model", MODEL, "--out", str(imported),
          "--mirror", example_mirror)
    rows = [json.loads(x) for x in imported.read_text().splitlines()]
    rows[0]["prompt"]["prompt"] = "Summarise the customer's issue in this call transcript.\n\n" + "word " * 5000
    imported.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "manifest.jsonl"
    gtkit("manifest", "build", str(examples / "feedback" / "processed_feedback.jsonl"), "--model-outputs",
          str(imported), "--out", str(out), "--mirror", example_mirror)
    line = json.loads(out.read_text().splitlines()[0])
    assert line["interaction-id"] == rows[0]["interaction_id"]
    assert line["pre-content"]["summary"]["prompt"] == "" and line["pre-content"]["summary"]["value"]
    assert len(json.dumps(line["pre-content"])) <= MAX_ATTRIBUTE_CHARS
