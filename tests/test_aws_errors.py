"""AWS failures of any command are one line that names the call or URI and what to do; exit 1, no traceback.

Each case goes through the CLI with real botocore clients: moto for S3 buckets that do not exist,
botocore's Stubber for service errors, a closed local port for the endpoint, and an environment
without credentials for the credential chain.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from typer.testing import CliRunner

import toolkit.storage.store
from toolkit.aws.deploy import AwsClients
from toolkit.awsclient.errors import AwsError, aws_error, is_global
from toolkit.cli import app

REGION = "us-east-1"
JOB = "call-center-batch-001"


def one_line_error(result, *parts: str) -> str:
    """The run failed with exit 1 and printed exactly one line, `error: ...`, containing `parts`."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """An environment where botocore's credential chain finds nothing (and asks no metadata service)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return dict(os.environ)


def test_manifest_build_with_peaks_and_no_credentials(no_credentials, tmp_path, examples, example_mirror):
    """The issue's case, as a user runs it: a real process, no traceback, the failing URI, what to do."""
    gtkit = Path(sys.executable).with_name("gtkit")
    proc = subprocess.run(
        [str(gtkit), "manifest", "build", str(examples / "feedback" / "processed_feedback.jsonl"),
         "--out", str(tmp_path / "manifest.jsonl"), "--mirror", example_mirror, "--peaks", "s3://bucket/peaks",
         "--quiet"], capture_output=True, text=True, timeout=300, env=no_credentials)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: S3 PutObject s3://bucket/peaks/") and ".peaks.bin.gz" in lines[0]
    assert "no AWS credentials found" in lines[0] and "aws configure" in lines[0]
    assert not (tmp_path / "manifest.jsonl").exists()  # nothing half-written


def test_missing_bucket_names_the_uri(aws, tmp_path, examples, example_mirror):
    result = CliRunner().invoke(app, [
        "manifest", "build", str(examples / "feedback" / "processed_feedback.jsonl"),
        "--out", "s3://no-such-bucket-gtkit/manifest.jsonl", "--mirror", example_mirror, "--quiet"])
    one_line_error(result, "S3 CreateMultipartUpload s3://no-such-bucket-gtkit/manifest.jsonl",
                   "bucket no-such-bucket-gtkit does not exist", "check the bucket name")


@pytest.fixture
def stubbed_s3(monkeypatch):
    """Every Storage in the CLI gets this S3 client, under Stubber."""
    client = boto3.client("s3", region_name=REGION)
    stub = Stubber(client)
    stub.activate()
    monkeypatch.setattr(toolkit.storage.store, "s3_client", lambda region=None: client)
    yield stub
    stub.deactivate()


def test_access_denied_on_read_names_uri_and_permission(stubbed_s3):
    stubbed_s3.add_client_error("get_object", service_error_code="AccessDenied", service_message="Access Denied",
                                http_status_code=403)
    result = CliRunner().invoke(app, ["manifest", "validate", "s3://private-bucket/in/batch.manifest"])
    one_line_error(result, "S3 GetObject s3://private-bucket/in/batch.manifest: access denied",
                   "needs s3:GetObject on s3://private-bucket/in/batch.manifest", "aws sts get-caller-identity")


def test_endpoint_error_after_retries(monkeypatch):
    with socket.socket() as sock:  # a local port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(toolkit.storage.store, "RETRY_CONFIG", Config(retries={"mode": "standard", "max_attempts": 1}))
    result = CliRunner().invoke(app, ["manifest", "validate", "s3://media-bucket/batch.manifest"])
    one_line_error(result, "S3 GetObject s3://media-bucket/batch.manifest: cannot reach AWS",
                   f"127.0.0.1:{port}", "AWS_ENDPOINT_URL")


@pytest.fixture
def sagemaker(monkeypatch):
    client = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(client)
    stub.activate()
    import toolkit.cli.job as cli_job

    monkeypatch.setattr(cli_job, "make_clients", lambda region: AwsClients(None, None, client))
    yield stub
    stub.deactivate()


def test_expired_credentials(sagemaker):
    sagemaker.add_client_error("describe_labeling_job", service_error_code="ExpiredTokenException",
                               service_message="The security token included in the request is expired",
                               http_status_code=400)
    result = CliRunner().invoke(app, ["job", "status", JOB, "--region", REGION])
    one_line_error(result, f"SageMaker DescribeLabelingJob {JOB}: the AWS credentials are expired or invalid",
                   "aws sso login")


def test_throttled_after_retries(sagemaker):
    sagemaker.add_client_error("list_labeling_jobs", service_error_code="ThrottlingException",
                               service_message="Rate exceeded", http_status_code=400,
                               response_meta={"RetryAttempts": 9})
    result = CliRunner().invoke(app, ["job", "list", "--region", REGION])
    one_line_error(result, "SageMaker ListLabelingJobs: AWS throttled the request (ThrottlingException), "
                           "still after 9 retries", "wait a minute")


def test_cloudformation_access_denied_on_deploy(monkeypatch, tmp_path):
    cfn = boto3.client("cloudformation", region_name=REGION)
    stub = Stubber(cfn)
    stub.add_client_error("describe_stacks", service_error_code="AccessDenied", http_status_code=403,
                          service_message="User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
                                          "cloudformation:DescribeStacks")
    stub.activate()
    import toolkit.cli.deploy as cli_deploy

    monkeypatch.setattr(cli_deploy, "make_clients", lambda region: AwsClients(cfn, boto3.client("s3", REGION)))
    for name in ("gtkit-pre-annotation.zip", "gtkit-post-annotation.zip"):
        (tmp_path / name).write_bytes(b"zip")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["deploy", "--stack-name", "gtkit-demo", "--prebuilt", str(tmp_path),
                                      "--poll", "0"])
    one_line_error(result, "CloudFormation DescribeStacks gtkit-demo-assets: access denied",
                   "needs cloudformation:DescribeStacks on gtkit-demo-assets")
    stub.deactivate()


def test_errors_are_recognised_through_wrappers_and_classified():
    s3 = boto3.client("s3", region_name=REGION)
    stub = Stubber(s3)
    stub.add_client_error("head_object", service_error_code="SlowDown", http_status_code=503)
    stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
    with stub:
        try:
            s3.head_object(Bucket="b", Key="k")
        except Exception as exc:
            try:
                raise ValueError("wrapped by someone") from exc
            except ValueError as wrapped:
                error = aws_error(wrapped)
        assert isinstance(error, AwsError) and error.kind == "throttled" and is_global(error)
        assert str(error).startswith("S3 HeadObject s3://b/k: AWS throttled")
        try:
            s3.get_object(Bucket="b", Key="missing")
        except Exception as exc:
            missing = aws_error(exc)
        assert missing.kind == "no-object" and not is_global(missing)
        assert "\n" not in str(missing)
    assert aws_error(ValueError("not AWS")) is None


def test_a_record_that_cannot_be_read_fails_alone(aws, tmp_path, examples):
    """A missing or forbidden object concerns one record: it is reported (exit 2), the batch goes on."""
    errors = tmp_path / "problems.jsonl"
    result = CliRunner().invoke(app, [
        "manifest", "build", str(examples / "feedback" / "processed_feedback.jsonl"),
        "--out", str(tmp_path / "manifest.jsonl"), "--errors", str(errors), "--quiet"])
    assert result.exit_code == 2, result.output
    problems = [json.loads(line) for line in errors.read_text().splitlines()]
    transcribe = [p for p in problems if p["field"] == "transcribe_output_uri"]
    assert len(transcribe) == 4  # every media record, each named
    assert transcribe[0]["message"] == (
        "cannot read Transcribe output: S3 GetObject s3://example-feedback-bucket/transcribe/call_001.json: "
        "bucket example-feedback-bucket does not exist; check the bucket name (and the account and Region of "
        "your credentials)")
