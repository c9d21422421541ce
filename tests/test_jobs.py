"""`gtkit job create|status|stop|list|fetch` without AWS.

SageMaker is a real botocore client under Stubber, so every request goes through botocore's
parameter validation against the real service model; S3 uploads go to moto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from typer.testing import CliRunner

from toolkit.aws import jobs
from toolkit.aws.assets import assets_version
from toolkit.aws.config import DeployConfig, save_deploy_config
from toolkit.aws.deploy import AwsClients, schema_digest, schema_parameter
from toolkit.cli import app
from toolkit.contract import load_label_schema
from toolkit.storage import Storage
from toolkit.task.template import asset_files

REGION = "us-east-1"
ACCOUNT = "123456789012"
JOBS_BUCKET = "gtkit-demo-jobsbucket-1"
MEDIA_BUCKET = "example-feedback-bucket"
WORKTEAM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/reviewers"
PRE_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:gtkit-demo-PreAnnotationLabelingFunction-A"
POST_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:gtkit-demo-PostAnnotationLabelingFunction-B"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/gtkit-demo-GroundTruthExecutionRole-C"
JOB = "call-center-batch-001"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:labeling-job/{JOB}"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
EXAMPLE_JOB = Path(__file__).resolve().parent.parent / "examples" / "job.yaml"


@pytest.fixture
def deployed() -> DeployConfig:
    version = assets_version(asset_files())
    return DeployConfig(
        stack_name="gtkit-demo", assets_stack_name="gtkit-demo-assets", region=REGION,
        assets_base_url=f"https://d111111abcdef8.cloudfront.net/v/{version}/", assets_version=version,
        distribution_id="E2EXAMPLE", distribution_domain="d111111abcdef8.cloudfront.net",
        assets_bucket="gtkit-demo-assets-assetsbucket-1", logs_bucket="gtkit-demo-assets-logsbucket-1",
        jobs_bucket=JOBS_BUCKET, pre_annotation_lambda_arn=PRE_ARN, post_annotation_lambda_arn=POST_ARN,
        execution_role_arn=ROLE_ARN, worker_origins=["https://abcd1234.labeling.us-east-1.sagemaker.aws"],
        label_schema="call-center",
        label_schema_sha256=schema_digest(schema_parameter(load_label_schema("call-center"))),
        input_buckets=[MEDIA_BUCKET], deployed_at="2026-01-01T00:00:00+00:00",
    )


def manifest_lines(n: int = 3) -> list[dict[str, Any]]:
    return [{"source-ref": f"s3://{MEDIA_BUCKET}/media/call_00{i}.wav", "media-type": "audio",
             "interaction-id": f"call-00{i}", "duration-seconds": 12.5, "language-code": "en-US"}
            for i in range(1, n + 1)]


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "batch.manifest").write_text(
        "".join(json.dumps(line) + "\n" for line in manifest_lines()), encoding="utf-8")
    return tmp_path


def job_data(**changes: Any) -> dict[str, Any]:
    data = {
        "job_name": JOB, "label_attribute_name": "segments", "manifest": "manifests/batch.manifest",
        "schema": "call-center", "workteam_arn": WORKTEAM, "workers_per_object": 2,
        "task_time_limit_seconds": 3600, "task_availability_lifetime_seconds": 864000,
        "max_concurrent_task_count": 100, "title": "Segment customer calls",
        "description": "Mark who speaks when, label each turn and correct the transcript.",
        "keywords": ["audio", "speaker diarization", "transcription"], "tags": {"team": "cx-analytics"},
        "stopping_conditions": {"max_percentage_of_input_dataset_labeled": 100},
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def clients(aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=JOBS_BUCKET)
    sm = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(sm)
    stub.activate()
    yield AwsClients(cloudformation=None, s3=s3, sagemaker=sm), stub
    stub.deactivate()


def expected_request(deployed: DeployConfig) -> dict[str, Any]:
    prefix = f"s3://{JOBS_BUCKET}/jobs/{JOB}"
    return {
        "LabelingJobName": JOB,
        "LabelAttributeName": "segments",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"{prefix}/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"s3://{JOBS_BUCKET}/output/"},
        "RoleArn": ROLE_ARN,
        "HumanTaskConfig": {
            "WorkteamArn": WORKTEAM,
            "UiConfig": {"UiTemplateS3Uri": f"{prefix}/template.liquid.html"},
            "PreHumanTaskLambdaArn": PRE_ARN,
            "TaskKeywords": ["audio", "speaker diarization", "transcription"],
            "TaskTitle": "Segment customer calls",
            "TaskDescription": "Mark who speaks when, label each turn and correct the transcript.",
            "NumberOfHumanWorkersPerDataObject": 2,
            "TaskTimeLimitInSeconds": 3600,
            "TaskAvailabilityLifetimeInSeconds": 864000,
            "MaxConcurrentTaskCount": 100,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": POST_ARN},
        },
        "StoppingConditions": {"MaxPercentageOfInputDatasetLabeled": 100},
        "Tags": [{"Key": "gtkit:stack", "Value": "gtkit-demo"}, {"Key": "gtkit:schema", "Value": "call-center"},
                 {"Key": "team", "Value": "cx-analytics"}],
    }


# -- create ----------------------------------------------------------------------------------------

def test_create_job_uploads_and_sends_validated_request(clients, deployed, workdir):
    aws_clients, stub = clients
    expected = expected_request(deployed)
    stub.add_response("create_labeling_job", {"LabelingJobArn": JOB_ARN},
                      expected)
    job = jobs.parse_job_config(job_data())
    messages: list[str] = []
    prepared = jobs.create_job(job, deployed, aws_clients.sagemaker, aws_clients.s3, base_dir=workdir,
                               report=messages.append)
    stub.assert_no_pending_responses()
    assert prepared.objects == 3 and prepared.request == expected
    s3 = aws_clients.s3
    manifest = s3.get_object(Bucket=JOBS_BUCKET, Key=f"jobs/{JOB}/input.manifest")["Body"].read().decode()
    assert [json.loads(line) for line in manifest.splitlines()] == manifest_lines()
    template = s3.get_object(Bucket=JOBS_BUCKET, Key=f"jobs/{JOB}/template.liquid.html")
    assert template["ContentType"] == "text/html; charset=utf-8"
    html = template["Body"].read().decode()
    assert deployed.assets_base_url + "js/main.js" in html  # the template loads the deployed assets
    assert "crowd-form" in html
    assert any("created labeling job" in m for m in messages)


def test_request_passes_botocore_validation_for_all_options(clients, deployed, workdir):
    """Every optional field we can emit is accepted by the real service model."""
    aws_clients, stub = clients
    job = jobs.parse_job_config(job_data(
        workteam_arn=f"arn:aws:sagemaker:{REGION}:394669845002:workteam/public-crowd/default",
        task_availability_lifetime_seconds=43200, public_task_price_usd="0.036",
        content_classifiers=["FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"],
        use_pre_annotation_lambda=False, output_kms_key_id="alias/gtkit", label_attribute_name=None,
        stopping_conditions={"max_human_labeled_object_count": 10, "max_percentage_of_input_dataset_labeled": 50},
        output_path=f"s3://{JOBS_BUCKET}/custom-output/"))
    prepared = jobs.create_job(job, deployed, aws_clients.sagemaker, aws_clients.s3, base_dir=workdir, dry_run=True)
    request = prepared.request
    assert request["HumanTaskConfig"]["PublicWorkforceTaskPrice"] == {
        "AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}}
    assert "PreHumanTaskLambdaArn" not in request["HumanTaskConfig"]
    assert request["LabelAttributeName"] == JOB
    assert request["OutputConfig"] == {"S3OutputPath": f"s3://{JOBS_BUCKET}/custom-output/", "KmsKeyId": "alias/gtkit"}
    stub.add_response("create_labeling_job", {"LabelingJobArn": "arn:aws:sagemaker:us-east-1:1:labeling-job/x"},
                      request)
    aws_clients.sagemaker.create_labeling_job(**request)
    stub.assert_no_pending_responses()
    # Dry run uploads nothing.
    assert aws_clients.s3.list_objects_v2(Bucket=JOBS_BUCKET)["KeyCount"] == 0


def test_stubbed_client_really_validates(clients):
    """Guard for the test above: a malformed request is refused by botocore before the stub."""
    from botocore.exceptions import ParamValidationError

    aws_clients, stub = clients
    stub.add_response("create_labeling_job", {"LabelingJobArn": "arn:aws:sagemaker:us-east-1:1:labeling-job/x"})
    with pytest.raises(ParamValidationError, match="TaskTitle"):
        aws_clients.sagemaker.create_labeling_job(LabelingJobName=JOB, HumanTaskConfig={"TaskTitle": ""})


@pytest.mark.parametrize(("changes", "field", "text"), [
    ({"job_name": "bad_name"}, "job_name", "'_' (U+005F LOW LINE) at position 4 is not allowed; use letters"),
    ({"job_name": "x" * 64}, "job_name", "at most 63"),
    ({"label_attribute_name": "segments-metadata"}, "label_attribute_name", "-metadata"),
    ({"label_attribute_name": "audio-ref"}, "label_attribute_name", "-ref"),
    ({"task_time_limit_seconds": 29}, "task_time_limit_seconds", "greater than or equal to 30"),
    ({"task_time_limit_seconds": 28801}, "task_time_limit_seconds", "less than or equal to 28800"),
    ({"task_availability_lifetime_seconds": 59}, "task_availability_lifetime_seconds", "60"),
    ({"task_availability_lifetime_seconds": 2_592_001}, "task_availability_lifetime_seconds", "2592000"),
    ({"task_availability_lifetime_seconds": 600, "task_time_limit_seconds": 3600}, "task_time_limit_seconds",
     "longer than"),
    ({"workers_per_object": 0}, "workers_per_object", "at least 1"),
    ({"workers_per_object": 10}, "workers_per_object", "at most 9"),
    ({"title": ""}, "title", "blank"),
    ({"title": "t" * 129}, "title", "at most 128"),
    ({"description": "d" * 256}, "description", "at most 255"),
    ({"keywords": ["a", "b", "c", "d", "e", "f"]}, "keywords", "at most 5"),
    ({"keywords": ["speaker-diarization"]}, "keywords[0]", "'-' (U+002D HYPHEN-MINUS) at position 8"),
    ({"tags": {"aws:owner": "x"}}, "tags", "reserved"),
    ({"tags": {"team": "x" * 257}}, "tags", "256"),
    ({"workteam_arn": "arn:aws:iam::123456789012:role/x"}, "workteam_arn", "a workteam ARN looks like"),
    ({"workers": 2}, "workers", "Extra inputs"),
    ({"output_path": "local/out"}, "output_path", "s3://"),
    ({"max_concurrent_task_count": 5001}, "max_concurrent_task_count", "5000"),
    ({"workteam_arn": f"arn:aws:sagemaker:{REGION}:394669845002:workteam/public-crowd/default",
      "task_availability_lifetime_seconds": 43200}, "public_task_price_usd", "required"),
    ({"workteam_arn": f"arn:aws:sagemaker:{REGION}:394669845002:workteam/public-crowd/default",
      "public_task_price_usd": "0.5"}, "task_availability_lifetime_seconds", "43200"),
    ({"public_task_price_usd": "0.5"}, "public_task_price_usd", "only for"),
    ({"stopping_conditions": {"max_percentage_of_input_dataset_labeled": 101}},
     "stopping_conditions.max_percentage_of_input_dataset_labeled", "100"),
])
def test_invalid_config_names_the_field(changes, field, text):
    with pytest.raises(jobs.JobConfigError) as info:
        jobs.parse_job_config(job_data(**changes), "job.yaml")
    fields = [p.path for p in info.value.problems]
    assert field in fields, info.value
    message = {p.path: p.message for p in info.value.problems}[field]
    assert text in message, message
    assert str(info.value).startswith("job.yaml: invalid job config")


@pytest.mark.parametrize(("mutate", "field", "text"), [
    (lambda d, w: {"schema": "tts-quality"}, "schema", "differs from the schema deployed"),
    (lambda d, w: {"output_path": "s3://someone-elses-bucket/out/"}, "output_path", "jobs bucket"),
    (lambda d, w: {"manifest": str(_write(w, [{"source-ref": "s3://other-bucket/a.wav", "media-type": "audio",
                                                "interaction-id": "a"}]))}, "manifest", "other-bucket"),
    (lambda d, w: {"manifest": str(_write(w, [{"source-ref": "not-s3", "media-type": "audio",
                                                "interaction-id": "a"}]))}, "manifest", "line 1 (a): source-ref"),
    (lambda d, w: {"manifest": str(_write(w, []))}, "manifest", "empty manifest"),
])
def test_preflight_errors_before_any_call(clients, deployed, workdir, mutate, field, text):
    aws_clients, stub = clients  # nothing stubbed: a SageMaker call would raise StubResponseError
    job = jobs.parse_job_config(job_data(**mutate(deployed, workdir)))
    with pytest.raises(jobs.JobConfigError) as info:
        jobs.create_job(job, deployed, aws_clients.sagemaker, aws_clients.s3, base_dir=workdir)
    problems = {p.path: p.message for p in info.value.problems}
    assert field in problems and text in problems[field], info.value
    assert aws_clients.s3.list_objects_v2(Bucket=JOBS_BUCKET)["KeyCount"] == 0
    stub.assert_no_pending_responses()


def test_s3_manifest_used_in_place_or_refused_when_unreadable(clients, deployed, workdir):
    aws_clients, _ = clients
    s3 = aws_clients.s3
    body = "".join(json.dumps(line) + "\n" for line in manifest_lines(2)).encode()
    s3.create_bucket(Bucket="private-other")
    s3.put_object(Bucket="private-other", Key="m.manifest", Body=body)
    s3.put_object(Bucket=JOBS_BUCKET, Key="manifests/m.manifest", Body=body)
    job = jobs.parse_job_config(job_data(manifest="s3://private-other/m.manifest"))
    with pytest.raises(jobs.JobConfigError, match="private-other is not readable"):
        jobs.create_job(job, deployed, aws_clients.sagemaker, s3, base_dir=workdir)
    job = jobs.parse_job_config(job_data(manifest=f"s3://{JOBS_BUCKET}/manifests/m.manifest"))
    prepared = jobs.create_job(job, deployed, aws_clients.sagemaker, s3, base_dir=workdir, dry_run=True)
    assert prepared.objects == 2
    assert prepared.manifest_uri == f"s3://{JOBS_BUCKET}/manifests/m.manifest"
    source = prepared.request["InputConfig"]["DataSource"]["S3DataSource"]
    assert source["ManifestS3Uri"] == prepared.manifest_uri


def test_changed_static_assets_are_refused(clients, deployed, workdir):
    aws_clients, _ = clients
    stale = deployed.model_copy(update={"assets_version": "0000000000000000"})
    with pytest.raises(jobs.JobConfigError, match="static/ files differ"):
        jobs.create_job(jobs.parse_job_config(job_data()), stale, aws_clients.sagemaker, aws_clients.s3,
                        base_dir=workdir)


# -- what the service model rejects -----------------------------------------------------------------

@pytest.mark.parametrize(("changes", "field", "text"), [
    ({"title": "Segment calls \U0001F4DE"}, "title", "'\U0001F4DE' (U+1F4DE TELEPHONE RECEIVER) at position 15"),
    ({"title": "Segment\x07calls"}, "title", "a control character (U+0007) at position 8 is not allowed"),
    ({"description": "Mark who speaks.\nThen label each turn."}, "description",
     "a line break (U+000A) at position 17 is not allowed"),
    ({"description": "Mark who speaks.\u2028Then label."}, "description", "a line break (U+2028"),  # Java `.`
    ({"tags": {"team": "cx\u00a0analytics", "bad": "semi;colon"}}, "tags", "';' (U+003B SEMICOLON) at position 5"),
    ({"output_kms_key_id": "alias/my key"}, "output_kms_key_id", "' ' (U+0020 SPACE) at position 9"),
    ({"manifest": "s3://bucket/" + "m" * 1020}, "manifest", "at most 1024 characters"),
    ({"keywords": ["audio", "x" * 31]}, "keywords[1]", "at most 30 characters"),
    ({"job_name": "ends-with-"}, "job_name", "cannot end like this"),
])
def test_request_strings_checked_against_the_service_model(changes, field, text):
    with pytest.raises(jobs.JobConfigError) as info:
        jobs.parse_job_config(job_data(**changes), "job.yaml")
    problems = {p.path: p.message for p in info.value.problems}
    assert field in problems, info.value
    assert text in problems[field], problems[field]
    assert "[CreateLabelingJob " in problems[field]  # the member the key ends up in


def test_model_constraints_come_from_botocore(monkeypatch):
    """Tightening the loaded model tightens the check: nothing is copied."""
    from toolkit.aws.service_model import operation_input

    shape = operation_input("sagemaker", "CreateLabelingJob").members["HumanTaskConfig"].members["TaskTitle"]
    assert shape.metadata["max"] == 128
    monkeypatch.setitem(shape.metadata, "max", 10)
    with pytest.raises(jobs.JobConfigError, match="at most 10 characters"):
        jobs.parse_job_config(job_data(title="Segment customer calls"))


def test_every_string_of_the_request_is_checked(deployed):
    """Break each string member the request carries, one at a time: each is caught and named."""
    job = jobs.parse_job_config(job_data(output_kms_key_id="alias/gtkit", output_path=f"s3://{JOBS_BUCKET}/o/"))
    schema = load_label_schema("call-center")
    request = jobs.build_request(job, deployed, schema, manifest_uri=f"s3://{JOBS_BUCKET}/m",
                                 template_uri=f"s3://{JOBS_BUCKET}/t.html")
    strings = list(_string_paths(request))
    assert len(strings) >= 20, strings
    for path in strings:
        broken = json.loads(json.dumps(request))
        _set(broken, path, "\x00" * 300)
        problems = [(p.path, p.message) for p in jobs.model_problems(broken, job)
                    if f"[CreateLabelingJob {path}]" in p.message]
        assert problems, path
        assert all(key != path for key, _ in problems), problems  # named by its config key, not the API's


def _string_paths(value: Any, prefix: str = "") -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _string_paths(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _string_paths(item, f"{prefix}[{i}]")
    elif isinstance(value, str):
        yield prefix


def _set(value: Any, path: str, new: str) -> None:
    import re

    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    for part in parts[:-1]:
        value = value[part]
    value[parts[-1]] = new


def test_schema_defaults_are_checked_and_named(deployed):
    job = jobs.parse_job_config(job_data(title=None, description=None))
    schema = load_label_schema("call-center").model_copy(
        update={"title": "Calls \U0001F4DE", "description": "Who speaks when.\nLabel each turn."})
    with pytest.raises(jobs.JobConfigError) as info:
        jobs.build_request(job, deployed, schema, manifest_uri=f"s3://{JOBS_BUCKET}/m",
                           template_uri=f"s3://{JOBS_BUCKET}/t.html")
    fields = [p.path for p in info.value.problems]
    assert fields == ["title (default: the schema's title)", "description (default: the schema's description)"]


def test_block_scalar_trailing_line_break_is_folded_with_a_note(tmp_path):
    data = job_data(title=None, description=None)
    text = yaml.safe_dump(data) + (
        "title: >\n  Segment customer\n  calls\n"
        "description: >\n  Mark who speaks when,\n  label each turn.\n")
    (tmp_path / "job.yaml").write_text(text, encoding="utf-8")
    assert yaml.safe_load(text)["description"].endswith("turn.\n")  # what YAML gives us
    notes: list[str] = []
    job, _ = jobs.load_job_config(tmp_path / "job.yaml", report=notes.append)
    assert job.title == "Segment customer calls"
    assert job.description == "Mark who speaks when, label each turn."
    assert len(notes) == 2 and all("`description: >-`" in n or "`title: >-`" in n for n in notes), notes
    # A literal block keeps its inner line breaks: those are refused, naming the key.
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(data) + "description: |\n  Mark who speaks.\n  Then label.\n",
                                       encoding="utf-8")
    with pytest.raises(jobs.JobConfigError) as info:
        jobs.load_job_config(tmp_path / "job.yaml")
    assert "a line break (U+000A) at position 17" in {p.path: p.message for p in info.value.problems}["description"]


def test_cli_folds_with_a_note_and_names_the_key(cli_env, workdir):
    data = job_data(description=None)
    (workdir / "job.yaml").write_text(yaml.safe_dump(data) + "description: >\n  Mark who speaks.\n",
                                      encoding="utf-8")
    result = CliRunner().invoke(app, ["job", "create", "--config", "job.yaml", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["HumanTaskConfig"]["TaskDescription"] == "Mark who speaks."
    assert "note: description: removed the line break" in result.stderr
    (workdir / "job.yaml").write_text(yaml.safe_dump(job_data(title="Calls \U0001F4DE")), encoding="utf-8")
    result = CliRunner().invoke(app, ["job", "create", "--config", "job.yaml", "--dry-run"])
    assert result.exit_code == 1
    assert "title: '\U0001F4DE' (U+1F4DE TELEPHONE RECEIVER) at position 7 is not allowed" in result.stderr


def _write(workdir: Path, lines: list[dict[str, Any]]) -> Path:
    path = workdir / "other.manifest"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_example_job_yaml_is_valid():
    job, base = jobs.load_job_config(EXAMPLE_JOB)
    assert job.job_name and job.workteam_arn.startswith("arn:aws:sagemaker:")
    assert base == EXAMPLE_JOB.parent


# -- CLI -------------------------------------------------------------------------------------------

@pytest.fixture
def cli_env(clients, deployed, workdir, monkeypatch):
    aws_clients, stub = clients
    import toolkit.cli.job as cli_job

    monkeypatch.setattr(cli_job, "make_clients", lambda region: aws_clients)
    monkeypatch.chdir(workdir)
    save_deploy_config(deployed)  # .gtkit/deploy-gtkit-demo.json
    (workdir / "job.yaml").write_text(yaml.safe_dump(job_data()), encoding="utf-8")
    return aws_clients, stub


def test_cli_create_dry_run_prints_request(cli_env):
    _, stub = cli_env
    result = CliRunner().invoke(app, ["job", "create", "--config", "job.yaml", "--dry-run"])
    assert result.exit_code == 0, result.output
    request = json.loads(result.stdout)
    assert request["HumanTaskConfig"]["PreHumanTaskLambdaArn"] == PRE_ARN
    assert request["RoleArn"] == ROLE_ARN
    stub.assert_no_pending_responses()


def test_cli_create_calls_api(cli_env, deployed):
    _, stub = cli_env
    stub.add_response("create_labeling_job", {"LabelingJobArn": JOB_ARN},
                      expected_request(deployed))
    result = CliRunner().invoke(app, ["job", "create", "-c", "job.yaml", "--stack-name", "gtkit-demo"])
    assert result.exit_code == 0, result.output
    stub.assert_no_pending_responses()
    assert "3 data objects" in result.output


def test_cli_create_invalid_config_names_field(cli_env, workdir):
    aws_clients, _ = cli_env
    (workdir / "job.yaml").write_text(yaml.safe_dump(job_data(task_time_limit_seconds=30000)), encoding="utf-8")
    result = CliRunner().invoke(app, ["job", "create", "--config", "job.yaml"])
    assert result.exit_code == 1
    assert "task_time_limit_seconds" in result.output
    assert aws_clients.s3.list_objects_v2(Bucket=JOBS_BUCKET)["KeyCount"] == 0


def test_cli_create_without_deployment_says_what_to_do(cli_env, workdir):
    (workdir / ".gtkit" / "deploy-gtkit-demo.json").unlink()
    result = CliRunner().invoke(app, ["job", "create", "--config", "job.yaml"])
    assert result.exit_code == 1
    assert "gtkit deploy" in " ".join(result.output.split())


# -- status, stop, list, fetch ---------------------------------------------------------------------

def describe_response(status: str = "InProgress", **extra: Any) -> dict[str, Any]:
    request = expected_request_static()
    resp = {
        "LabelingJobStatus": status,
        "LabelCounters": {"TotalLabeled": 2, "HumanLabeled": 2, "MachineLabeled": 0,
                          "FailedNonRetryableError": 1, "Unlabeled": 4},
        "CreationTime": T0, "LastModifiedTime": T0, "JobReferenceCode": "ref-123",
        "LabelingJobName": JOB, "LabelingJobArn": JOB_ARN,
        "LabelAttributeName": "segments", "InputConfig": request["InputConfig"],
        "OutputConfig": request["OutputConfig"], "RoleArn": ROLE_ARN, "HumanTaskConfig": request["HumanTaskConfig"],
    }
    resp.update(extra)
    return resp


def expected_request_static() -> dict[str, Any]:
    prefix = f"s3://{JOBS_BUCKET}/jobs/{JOB}"
    return {
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"{prefix}/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"s3://{JOBS_BUCKET}/output/"},
        "HumanTaskConfig": {"WorkteamArn": WORKTEAM, "UiConfig": {"UiTemplateS3Uri": f"{prefix}/t.html"},
                            "TaskTitle": "t", "TaskDescription": "d", "NumberOfHumanWorkersPerDataObject": 1,
                            "TaskTimeLimitInSeconds": 300,
                            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": POST_ARN}},
    }


def test_status_shows_counters_and_failure(clients, monkeypatch):
    aws_clients, stub = clients
    import toolkit.cli.job as cli_job

    monkeypatch.setattr(cli_job, "make_clients", lambda region: aws_clients)
    stub.add_response("describe_labeling_job", describe_response(), {"LabelingJobName": JOB})
    result = CliRunner().invoke(app, ["job", "status", JOB, "--json", "--region", REGION])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "InProgress" and summary["labeled"] == 2 and summary["failed"] == 1
    assert summary["unlabeled"] == 4
    assert summary["output_manifest"] == f"s3://{JOBS_BUCKET}/output/{JOB}/manifests/output/output.manifest"

    stub.add_response("describe_labeling_job", describe_response("Failed", FailureReason="ClientError: no access"),
                      {"LabelingJobName": JOB})
    result = CliRunner().invoke(app, ["job", "status", JOB, "--region", REGION])
    assert result.exit_code == 2
    assert "ClientError: no access" in result.output and "Failed" in result.output
    stub.assert_no_pending_responses()


def test_stop_and_list(clients, monkeypatch):
    aws_clients, stub = clients
    import toolkit.cli.job as cli_job

    monkeypatch.setattr(cli_job, "make_clients", lambda region: aws_clients)
    stub.add_response("stop_labeling_job", {}, {"LabelingJobName": JOB})
    result = CliRunner().invoke(app, ["job", "stop", JOB, "--region", REGION])
    assert result.exit_code == 0, result.output

    summaries = [{"LabelingJobName": f"job-{i}", "LabelingJobArn": f"{JOB_ARN}-{i}",
                  "CreationTime": T0, "LastModifiedTime": T0, "LabelingJobStatus": "Completed",
                  "LabelCounters": {"TotalLabeled": i, "Unlabeled": 0}, "WorkteamArn": WORKTEAM,
                  "PreHumanTaskLambdaArn": PRE_ARN} for i in range(3)]
    stub.add_response("list_labeling_jobs", {"LabelingJobSummaryList": summaries[:2], "NextToken": "t"},
                      {"SortBy": "CreationTime", "SortOrder": "Descending", "StatusEquals": "Completed"})
    stub.add_response("list_labeling_jobs", {"LabelingJobSummaryList": summaries[2:]},
                      {"SortBy": "CreationTime", "SortOrder": "Descending", "StatusEquals": "Completed",
                       "NextToken": "t"})
    result = CliRunner().invoke(app, ["job", "list", "--status", "Completed", "--json", "--region", REGION])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)] == ["job-0", "job-1", "job-2"]
    stub.assert_no_pending_responses()


def test_fetch_downloads_output_manifest(clients, monkeypatch, tmp_path):
    aws_clients, stub = clients
    import toolkit.cli.job as cli_job

    monkeypatch.setattr(cli_job, "make_clients", lambda region: aws_clients)
    lines = [json.dumps(line | {"segments": {"segments": []}}) for line in manifest_lines(2)]
    out_key = f"output/{JOB}/manifests/output/output.manifest"
    aws_clients.s3.put_object(Bucket=JOBS_BUCKET, Key=out_key, Body=("\n".join(lines) + "\n").encode())
    stub.add_response("describe_labeling_job", describe_response(
        "Completed", LabelingJobOutput={"OutputDatasetS3Uri": f"s3://{JOBS_BUCKET}/{out_key}"}),
        {"LabelingJobName": JOB})
    result = CliRunner().invoke(app, ["job", "fetch", JOB, "--out", str(tmp_path / "got"), "--region", REGION])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "got").read_text().splitlines() == lines
    assert "(2 lines)" in " ".join(result.output.split())

    # Without LabelingJobOutput (still running): the documented layout location, with a warning.
    stub.add_response("describe_labeling_job", describe_response("InProgress"), {"LabelingJobName": JOB})
    target, count = jobs.fetch_output(aws_clients.sagemaker, JOB, tmp_path, storage=Storage(client=aws_clients.s3))
    assert target == tmp_path / f"{JOB}.output.manifest" and count == 2


def test_fetch_missing_output_is_clear(clients, tmp_path):
    aws_clients, stub = clients
    stub.add_response("describe_labeling_job", describe_response("InProgress"), {"LabelingJobName": JOB})
    with pytest.raises(FileNotFoundError, match="no output manifest"):
        jobs.fetch_output(aws_clients.sagemaker, JOB, tmp_path / "x", storage=Storage(client=aws_clients.s3))


# -- review jobs: --review-of (docs/review.md) ------------------------------------------------------
REVIEW_JOB = "call-center-review-001"
PRIOR_ROOT = f"s3://{JOBS_BUCKET}/output/{JOB}"


def _answer(start: float, end: float, text: str, n_extra: int = 0) -> dict[str, Any]:
    segs = [{"id": "s1", "track": "t1", "start": start, "end": end, "text": text, "attributes": {"emotion": "Neutral"}}]
    segs += [{"id": f"x{i}", "track": "t1", "start": 13 + i * 0.5, "end": 13.2 + i * 0.5,
              "text": "word " * 12, "attributes": {}} for i in range(n_extra)]
    return {"schemaVersion": "1.0", "labelSchema": "call-center", "mediaDuration": 13 + n_extra * 0.5,
            "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}], "segments": segs,
            "content": {"background_noise": ["None"], "overall_rating": 4}}


def write_prior_layout(s3, *, big: bool = False) -> str:
    """A Ground Truth output layout of JOB: line 0 with full audit answers, line 1 with the answers
    omitted from the label (read from the worker-response files), line 2 with an error label."""
    from toolkit.contract.base import dump
    from toolkit.contract.worker_response import encode, new_answer
    from toolkit.labeling.consolidate import consolidate

    schema = load_label_schema("call-center")
    storage = Storage(client=s3)
    lines = []
    for index, base in enumerate(manifest_lines()):
        extra = 180 if big and index == 1 else 0
        answers = [("private.w1", _answer(0.5, 3.0, "hello", extra)), ("private.w2", _answer(0.6, 3.2, "hello", extra))]
        label = consolidate(answers, schema) if index < 2 else consolidate([], schema)
        wire = dump(label)
        if index == 1:
            for w in wire["workers"]:
                w.pop("answer")
                w["answerOmitted"] = True
        lines.append({**base, "segments": wire, "segments-metadata": {
            "job-name": f"labeling-job/{JOB}", "type": "groundtruth/custom", "human-annotated": "yes",
            "creation-date": "2026-01-01T00:00:00.000000"}})
        storage.write_json(f"{PRIOR_ROOT}/annotations/worker-response/iteration-1/{index}/2026-01-01_00:00:00.json",
                           encode([new_answer(w, {"answer": json.dumps(a)}, T0, T0) for w, a in answers]))
    uri = f"{PRIOR_ROOT}/manifests/output/output.manifest"
    storage.write_bytes(uri, "".join(json.dumps(line) + "\n" for line in lines).encode())
    return uri


def review_job_data(**changes: Any) -> dict[str, Any]:
    data = job_data(job_name=REVIEW_JOB, label_attribute_name="segments-review", workers_per_object=1,
                    title="Review segmented calls", manifest=None)
    data.update(changes)
    return data


def expected_review_request() -> dict[str, Any]:
    request = expected_request(None)  # type: ignore[arg-type]
    prefix = f"s3://{JOBS_BUCKET}/jobs/{REVIEW_JOB}"
    request.update(LabelingJobName=REVIEW_JOB, LabelAttributeName="segments-review",
                   InputConfig={"DataSource": {"S3DataSource": {"ManifestS3Uri": f"{prefix}/input.manifest"}}})
    human = request["HumanTaskConfig"]
    human.update(UiConfig={"UiTemplateS3Uri": f"{prefix}/template.liquid.html"}, TaskTitle="Review segmented calls",
                 NumberOfHumanWorkersPerDataObject=1)
    return request


def test_review_of_output_manifest_builds_chained_job(clients, deployed, tmp_path):
    aws_clients, stub = clients
    manifest = write_prior_layout(aws_clients.s3)
    job = jobs.parse_job_config({**review_job_data(), "manifest": "(review manifest)"})
    stub.add_response("create_labeling_job", {"LabelingJobArn": JOB_ARN.replace(JOB, REVIEW_JOB)},
                      expected_review_request())
    notes: list[str] = []
    prepared, built = jobs.create_review_job(job, deployed, aws_clients.sagemaker, aws_clients.s3, manifest,
                                             base_dir=tmp_path, report=notes.append)
    stub.assert_no_pending_responses()
    assert prepared.objects == 2 and built.skipped and built.skipped[0][0] == 3
    assert any("line 3 not reviewed" in n for n in notes)
    storage = Storage(client=aws_clients.s3)
    lines = [json.loads(t) for _n, t in storage.iter_lines(prepared.manifest_uri)]
    assert [line["interaction-id"] for line in lines] == ["call-001", "call-002"]
    for line in lines:  # chained form: prior label kept; review with the workers, pseudonymized
        assert line["segments"]["status"] == "ok" and line["review"]["of-job"] == JOB
        assert [w["worker"] for w in line["review"]["workers"]] == ["w1", "w2"]
        assert "private.w1" not in json.dumps(line["review"])
    # line 1's label had no audit answers: they came from the worker-response files
    assert lines[1]["review"]["workers"][0]["answer"]["segments"][0]["start"] == 0.5
    from toolkit.contract.review import ReviewPriors
    from toolkit.labeling.review import priors_name
    priors = ReviewPriors.model_validate(storage.read_json(
        f"s3://{JOBS_BUCKET}/output/{REVIEW_JOB}/gtkit-review/priors/{priors_name(lines[0]['source-ref'])}"))
    assert priors.priors[0].label_attribute == "segments" and priors.priors[0].label.workers == []


def test_review_line_over_100_kb_moves_review_to_a_sidecar(clients, deployed, tmp_path):
    aws_clients, _stub = clients
    manifest = write_prior_layout(aws_clients.s3, big=True)
    job = jobs.parse_job_config({**review_job_data(), "manifest": "(review manifest)"})
    _prepared, built = jobs.create_review_job(job, deployed, aws_clients.sagemaker, aws_clients.s3, manifest,
                                             base_dir=tmp_path, dry_run=True)
    assert built.sidecars == 1
    big = built.lines[1]
    assert "review" not in big and big["review-ref"].endswith(".review.json")
    assert len(json.dumps(big, separators=(",", ":")).encode()) <= 100_000
    assert built.uploads[big["review-ref"]]["of-job"] == JOB
    assert "review" in built.lines[0]
    assert aws_clients.s3.list_objects_v2(Bucket=JOBS_BUCKET, Prefix="jobs/")["KeyCount"] == 0  # dry run


def test_review_of_job_name_describes_the_job(clients, deployed, tmp_path):
    aws_clients, stub = clients
    write_prior_layout(aws_clients.s3)
    stub.add_response("describe_labeling_job", describe_response("Completed"), {"LabelingJobName": JOB})
    job = jobs.parse_job_config({**review_job_data(), "manifest": "(review manifest)"})
    _prepared, built = jobs.create_review_job(job, deployed, aws_clients.sagemaker, aws_clients.s3, JOB,
                                              base_dir=tmp_path, dry_run=True)
    stub.assert_no_pending_responses()
    assert len(built.lines) == 2 and built.lines[0]["review"]["label-attribute"] == "segments"


def test_review_job_needs_a_new_label_attribute(clients, deployed, tmp_path):
    aws_clients, _stub = clients
    manifest = write_prior_layout(aws_clients.s3)
    job = jobs.parse_job_config({**review_job_data(label_attribute_name="segments"), "manifest": "x"})
    with pytest.raises(jobs.JobConfigError, match="label_attribute_name"):
        jobs.create_review_job(job, deployed, aws_clients.sagemaker, aws_clients.s3, manifest, base_dir=tmp_path)


def test_cli_create_review_of_dry_run(cli_env, workdir):
    aws_clients, stub = cli_env
    manifest = write_prior_layout(aws_clients.s3)
    (workdir / "review.yaml").write_text(yaml.safe_dump(review_job_data()), encoding="utf-8")
    result = CliRunner().invoke(app, ["job", "create", "-c", "review.yaml", "--review-of", manifest, "--dry-run"])
    assert result.exit_code == 0, result.output
    request = json.loads(result.stdout)
    assert request["LabelAttributeName"] == "segments-review"
    assert "2 objects" in result.output and "line 3 not reviewed" in result.output
    stub.assert_no_pending_responses()


def test_review_line_size_limits_are_reported(clients, deployed, tmp_path):
    aws_clients, _stub = clients
    manifest = write_prior_layout(aws_clients.s3, big=True)
    job = jobs.parse_job_config({**review_job_data(), "manifest": "(review manifest)"})
    notes: list[str] = []
    _prepared, built = jobs.create_review_job(job, deployed, aws_clients.sagemaker, aws_clients.s3, manifest,
                                              base_dir=tmp_path, dry_run=True, report=notes.append)
    big = built.lines[1]
    assert "pre-segments" not in big and "segments" not in big and "segments-metadata" in big
    assert built.notes == ["line 2: pre-segments left out (review.answer has them)",
                           "line 2: prior label left out of the line (too big; the review and the priors hold it)"]
    assert all(n in notes for n in built.notes)
    sidecar = built.uploads[big["review-ref"]]
    assert len(sidecar["answer"]["segments"]) == 181  # the editable starting point travels in the sidecar
