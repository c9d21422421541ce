"""`gtkit bedrock submit|status|stop|list|fetch` without AWS.

Bedrock is a real botocore client under Stubber, so every request goes through botocore's parameter
validation against the real service model; the export and the job outputs live in moto S3.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from toolkit.aws import bedrock
from toolkit.cli import app
from toolkit.cli import bedrock as cli_bedrock
from toolkit.export import BatchQuotas, ExportOptions, export
from toolkit.storage import Storage

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "gtkit-test-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/BedrockBatch"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
CALLS = Path(__file__).parent / "fixtures" / "export" / "call_center.output.manifest"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def arn(job_id: str) -> str:
    return f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/{job_id}"


@pytest.fixture
def batch(s3_bucket) -> str:
    """An export of 6 sft-summary... records as 2 jobs of 3, in moto S3; returns its root."""
    root = f"s3://{s3_bucket}/exports/calls-0501/"
    export(Storage(), str(CALLS), ExportOptions(
        preset="sft-transcription", format="bedrock-batch", out=root,
        quotas=BatchQuotas(min_records=1, records_per_job=3)))
    return root


@pytest.fixture
def stub(aws):
    client = boto3.client("bedrock", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def describe_response(job_id: str = "abcdef123456", status: str = "InProgress", **extra) -> dict:
    return {"jobArn": arn(job_id), "jobName": "calls-0501-job-000", "modelId": MODEL, "roleArn": ROLE,
            "status": status, "submitTime": T0,
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/exports/calls-0501/job-000/"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}}, **extra}


def test_submit_sends_one_validated_request_per_shard(batch, stub):
    client, stubber = stub
    for n, job_id in enumerate(("aaaaaaaaaaa1", "aaaaaaaaaaa2")):
        expected = {
            "jobName": f"calls-0501-job-00{n}", "roleArn": ROLE, "clientRequestToken": ANY, "modelId": MODEL,
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"{batch}job-00{n}/", "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}},
            "tags": [{"key": "gtkit:export", "value": batch}, {"key": "gtkit:shard", "value": f"job-00{n}"},
                     {"key": "gtkit:preset", "value": "sft-transcription"}, {"key": "team", "value": "cx"}],
            "modelInvocationType": "InvokeModel",
        }
        stubber.add_response("create_model_invocation_job", {"jobArn": arn(job_id)}, expected)
    done = bedrock.submit(client, Storage(), batch, model=MODEL, role=ROLE, output=f"s3://{BUCKET}/out",
                          tags={"team": "cx"})
    assert [s.arn for s in done] == [arn("aaaaaaaaaaa1"), arn("aaaaaaaaaaa2")]
    # The same submit again asks for the same jobs: the token makes Bedrock create no second one.
    again = bedrock.submit(None, Storage(), batch, model=MODEL, role=ROLE, output=f"s3://{BUCKET}/out",
                           tags={"team": "cx"}, dry_run=True)
    assert [s.request["clientRequestToken"] for s in again] == [s.request["clientRequestToken"] for s in done]
    assert len({s.request["clientRequestToken"] for s in done}) == 2


def test_submit_one_prefix(batch, stub):
    client, stubber = stub
    stubber.add_response("create_model_invocation_job", {"jobArn": arn("aaaaaaaaaaa2")},
                         {"jobName": "nightly", "roleArn": ROLE, "clientRequestToken": ANY, "modelId": MODEL,
                          "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"{batch}job-001/",
                                                                    "s3InputFormat": "JSONL"}},
                          "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}},
                          "tags": ANY, "modelInvocationType": "InvokeModel"})
    done = bedrock.submit(client, Storage(), batch + "job-001", model=MODEL, role=ROLE,
                          output=f"s3://{BUCKET}/out/", name="nightly")
    assert done[0].request["tags"][1] == {"key": "gtkit:shard", "value": "job-001"}


def test_submit_names_the_option_the_service_model_rejects(batch):
    with pytest.raises(bedrock.BedrockRequestError) as err:
        bedrock.submit(None, Storage(), batch, model="not a model!", role="arn:aws:iam::1:user/x",
                       output=f"s3://{BUCKET}/out/", timeout_hours=12, tags={"bad": "{x}"}, dry_run=True)
    options = [problem.path for problem in err.value.problems]
    assert options == ["--role", "--model", "--timeout-hours", "--tag"]
    assert "[CreateModelInvocationJob roleArn]" in err.value.problems[0].message
    assert "must be at least 24" in err.value.problems[2].message


def test_job_names_fit_the_api():
    name = bedrock.job_name("calls_2026/05 (night)" + "x" * 80, "job-012")
    assert len(name) <= 63 and name.endswith("-job-012")
    assert bedrock.model_problems("CreateModelInvocationJob", {"jobName": name}) == []


def test_status_resolves_a_name_and_shows_counts(stub, monkeypatch):
    client, stubber = stub
    stubber.add_response("list_model_invocation_jobs", {"invocationJobSummaries": [
        {"jobArn": arn("abcdef123456"), "jobName": "calls-0501-job-000", "modelId": MODEL, "roleArn": ROLE,
         "submitTime": T0, "status": "Completed",
         "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/in/"}},
         "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}}}]},
        {"nameContains": "calls-0501-job-000", "sortBy": "CreationTime", "sortOrder": "Descending"})
    stubber.add_response("get_model_invocation_job", describe_response(
        status="Completed", totalRecordCount=3, processedRecordCount=3, successRecordCount=2, errorRecordCount=1),
        {"jobIdentifier": arn("abcdef123456")})
    monkeypatch.setattr(cli_bedrock, "make_clients", lambda region: cli_bedrock.BedrockClients(client, None, None))
    result = CliRunner().invoke(app, ["bedrock", "status", "calls-0501-job-000", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["status"], summary["failed_records"], summary["output"]) == (
        "Completed", 1, f"s3://{BUCKET}/out/abcdef123456/")


def test_wait_polls_until_the_end_with_an_injected_sleep(stub):
    client, stubber = stub
    for status, done in (("Validating", 0), ("InProgress", 2), ("Completed", 3)):
        stubber.add_response("get_model_invocation_job", describe_response(
            status=status, totalRecordCount=3, processedRecordCount=done), {"jobIdentifier": "abcdef123456"})
    slept, seen = [], []
    desc = bedrock.wait(client, "abcdef123456", poll_seconds=30, sleep=slept.append,
                        on_poll=lambda d: seen.append(d.get("processedRecordCount")))
    assert desc["status"] == "Completed" and slept == [30, 30] and seen == [0, 2, 3]


def test_failed_job_exits_2(stub, monkeypatch):
    client, stubber = stub
    stubber.add_response("get_model_invocation_job", describe_response(status="Failed", message="role cannot read"),
                         {"jobIdentifier": "abcdef123456"})
    monkeypatch.setattr(cli_bedrock, "make_clients", lambda region: cli_bedrock.BedrockClients(client, None, None))
    result = CliRunner().invoke(app, ["bedrock", "status", "abcdef123456"])
    assert result.exit_code == 2 and "job failed: role cannot read" in result.output


def test_stop_and_list(stub, monkeypatch):
    client, stubber = stub
    stubber.add_response("stop_model_invocation_job", {}, {"jobIdentifier": arn("abcdef123456")})
    stubber.add_response("list_model_invocation_jobs", {"invocationJobSummaries": [
        {"jobArn": arn("abcdef123456"), "jobName": "calls-0501-job-000", "modelId": MODEL, "roleArn": ROLE,
         "submitTime": T0, "status": "InProgress", "processedRecordCount": 5,
         "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/in/"}},
         "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}}}]},
        {"statusEquals": "InProgress", "sortBy": "CreationTime", "sortOrder": "Descending"})
    monkeypatch.setattr(cli_bedrock, "make_clients", lambda region: cli_bedrock.BedrockClients(client, None, None))
    runner = CliRunner()
    result = runner.invoke(app, ["bedrock", "stop", arn("abcdef123456")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["bedrock", "list", "--status", "InProgress", "--json"])
    assert result.exit_code == 0, result.output
    assert [(r["name"], r["processed"]) for r in json.loads(result.stdout)] == [("calls-0501-job-000", 5)]


def test_list_rejects_a_bad_status_before_calling():
    with pytest.raises(bedrock.BedrockRequestError, match="--status"):
        list(bedrock.list_jobs(None, status="Running"))


def test_fetch_copies_outputs_and_counts_failed_records(stub, s3_bucket, tmp_path, monkeypatch):
    client, stubber = stub
    s3 = boto3.client("s3", region_name=REGION)
    lines = [{"recordId": "R0000000001", "modelInput": {}, "modelOutput": {"content": []}},
             {"recordId": "R0000000002", "modelInput": {}, "error": {"errorCode": 400, "errorMessage": "bad"}}]
    s3.put_object(Bucket=s3_bucket, Key="out/abcdef123456/part-000.jsonl.out",
                  Body="".join(json.dumps(x) + "\n" for x in lines).encode())
    s3.put_object(Bucket=s3_bucket, Key="out/abcdef123456/manifest.json.out",
                  Body=json.dumps({"totalRecordCount": 2, "errorRecordCount": 1}).encode())
    s3.put_object(Bucket=s3_bucket, Key="out/abcdef123456/other.txt", Body=b"x")
    stubber.add_response("get_model_invocation_job", describe_response(status="PartiallyCompleted"),
                         {"jobIdentifier": "abcdef123456"})
    monkeypatch.setattr(cli_bedrock, "make_clients", lambda region: cli_bedrock.BedrockClients(client, None, s3))
    result = CliRunner().invoke(app, ["bedrock", "fetch", "abcdef123456", "--out", str(tmp_path / "got")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "got").iterdir()) == ["job.json", "manifest.json.out",
                                                                    "part-000.jsonl.out"]
    said = " ".join(result.output.split())
    assert "2 records, 1 failed" in said and "1 errors of 2" in said
    assert "failed records: R0000000002 (error 400)" in said
    info = json.loads((tmp_path / "got" / "job.json").read_text())
    assert (info["modelId"], info["jobArn"]) == (MODEL, arn("abcdef123456"))


def test_status_wait_shows_progress_until_the_end(stub, monkeypatch):
    client, stubber = stub
    for status, done in (("InProgress", 1), ("Completed", 3)):
        stubber.add_response("get_model_invocation_job", describe_response(
            status=status, totalRecordCount=3, processedRecordCount=done, successRecordCount=done),
            {"jobIdentifier": "abcdef123456"})
    monkeypatch.setattr(cli_bedrock, "make_clients", lambda region: cli_bedrock.BedrockClients(client, None, None))
    result = CliRunner().invoke(app, ["bedrock", "status", "abcdef123456", "--wait", "--poll-seconds", "0", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["processed_records"] == 3


@pytest.mark.parametrize("body, model, invocation", [
    ("anthropic", MODEL, "InvokeModel"), ("converse", "us.amazon.nova-lite-v1:0", "InvokeModel"),
    ("converse", "mistral.mistral-large-2407-v1:0", "Converse"), ("llama", "meta.llama3-1-8b-instruct-v1:0",
                                                                  "InvokeModel"),
    ("titan", "amazon.titan-text-express-v1", "InvokeModel")])
def test_each_body_goes_to_its_models(s3_bucket, body, model, invocation):
    root = f"s3://{s3_bucket}/exports/{body}/"
    export(Storage(), str(CALLS), ExportOptions(preset="sft-transcription", format="bedrock-batch", out=root,
                                                 quotas=BatchQuotas(min_records=1), batch_body=body))
    first = json.loads(Storage().read_bytes(f"{root}job-000/part-000.jsonl").splitlines()[0])["modelInput"]
    expected_keys = {"anthropic": "messages", "converse": "messages", "llama": "prompt", "titan": "inputText"}
    assert expected_keys[body] in first
    done = bedrock.submit(None, Storage(), root, model=model, role=ROLE, output=f"s3://{BUCKET}/out/", dry_run=True)
    assert done[0].request["modelInvocationType"] == invocation


def test_a_model_that_cannot_read_the_body_is_refused(batch):
    with pytest.raises(bedrock.BedrockRequestError, match=r"meta\.llama3-1-8b-instruct-v1:0 is a llama model, but "
                       r"the export wrote anthropic model inputs.*--batch-body llama"):
        bedrock.submit(None, Storage(), batch, model="meta.llama3-1-8b-instruct-v1:0", role=ROLE,
                       output=f"s3://{BUCKET}/out/", dry_run=True)
