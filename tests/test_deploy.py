"""`gtkit deploy` / `gtkit destroy` end to end without AWS.

S3 is moto (real uploads: keys, content types, cache headers); CloudFormation is a real botocore
client under botocore's Stubber, because moto's CloudFormation does not model CloudFront.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from toolkit.aws import deploy as deploy_mod
from toolkit.aws.assets import (
    IMMUTABLE_CACHE_CONTROL,
    assets_version,
    content_type,
    upload_assets,
)
from toolkit.aws.config import load_deploy_config
from toolkit.aws.deploy import AwsClients, DeployError, DeployOptions, deploy, destroy, normalise_origins
from toolkit.aws.stack import StackError, failures_in
from toolkit.cli import app

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "gtkit-test"
ORIGIN = "https://abcd1234.labeling.us-east-1.sagemaker.aws"
ASSETS_BUCKET = "gtkit-test-assets-assetsbucket-1"
LOGS_BUCKET = "gtkit-test-assets-logsbucket-1"
JOBS_BUCKET = "gtkit-test-jobsbucket-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stack_id(name: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/0000-{len(name)}"


def missing_error(stub: Stubber, name: str) -> None:
    stub.add_client_error("describe_stacks", service_error_code="ValidationError",
                          service_message=f"Stack with id {name} does not exist", http_status_code=400,
                          expected_params={"StackName": name})


ASSETS_OUTPUTS = {
    "AssetsBucketName": ASSETS_BUCKET, "LogsBucketName": LOGS_BUCKET, "DistributionId": "E2EXAMPLE",
    "DistributionDomainName": "d111111abcdef8.cloudfront.net", "AssetsBaseUrl": "https://d111111abcdef8.cloudfront.net/v/",
}
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:gtkit-test-"
LABELING_OUTPUTS = {
    "PreAnnotationLambdaArn": FUNCTION_ARN + "PreAnnotationLabelingFunction-A",
    "PostAnnotationLambdaArn": FUNCTION_ARN + "PostAnnotationLabelingFunction-B",
    "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/gtkit-test-GroundTruthExecutionRole-C",
    "JobsBucketName": JOBS_BUCKET,
}


def stack_desc(name: str, status: str, outputs: dict[str, str] | None = None,
               params: dict[str, str] | None = None, reason: str | None = None) -> dict[str, Any]:
    desc: dict[str, Any] = {"StackId": stack_id(name), "StackName": name, "CreationTime": T0, "StackStatus": status,
                            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in (outputs or {}).items()],
                            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in (params or {}).items()]}
    if reason:
        desc["StackStatusReason"] = reason
    return desc


class Events:
    """Stack events, newest first as describe_stack_events returns them."""

    def __init__(self) -> None:
        self.count = 0

    def make(self, name: str, items: list[tuple[str, str, str, str | None]]) -> list[dict[str, Any]]:
        out = []
        for logical, kind, status, reason in items:
            self.count += 1
            event = {"StackId": stack_id(name), "EventId": f"ev-{self.count}", "StackName": name,
                     "LogicalResourceId": logical, "ResourceType": kind, "ResourceStatus": status,
                     "Timestamp": T0 + timedelta(seconds=self.count),
                     "PhysicalResourceId": stack_id(name) if kind == "AWS::CloudFormation::Stack" else logical}
            if reason:
                event["ResourceStatusReason"] = reason
            out.append(event)
        return list(reversed(out))


def script_create(stub: Stubber, ev: Events, name: str, outputs: dict[str, str], params: dict[str, str],
                  expected_params: dict[str, Any] | None = None, capabilities: list[str] | None = None) -> None:
    """describe (missing) -> create -> in progress -> complete."""
    missing_error(stub, name)
    create_params = {"StackName": name, "TemplateBody": ANY, "Capabilities": capabilities or [], "Tags": ANY,
                     "Parameters": expected_params if expected_params is not None else ANY}
    stub.add_response("create_stack", {"StackId": stack_id(name)}, create_params)
    first = ev.make(name, [(name, "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "User Initiated")])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(name, "CREATE_IN_PROGRESS")]},
                      {"StackName": stack_id(name)})
    stub.add_response("describe_stack_events", {"StackEvents": first}, {"StackName": stack_id(name)})
    later = ev.make(name, [("Bucket", "AWS::S3::Bucket", "CREATE_COMPLETE", None),
                           (name, "AWS::CloudFormation::Stack", "CREATE_COMPLETE", None)])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(name, "CREATE_COMPLETE", outputs, params)]},
                      {"StackName": stack_id(name)})
    stub.add_response("describe_stack_events", {"StackEvents": later + first}, {"StackName": stack_id(name)})


@pytest.fixture
def static_files(tmp_path, monkeypatch) -> list[tuple[str, Path]]:
    """A small fake static/ tree standing in for toolkit.task.template.asset_files()."""
    root = tmp_path / "static"
    files = {"js/main.js": "export const x = 1;\n", "css/gtkit.css": "body{}\n",
             "schema/label-schema.schema.json": "{}\n", "vendor/wavesurfer/LICENSE": "BSD\n",
             "vendor/wavesurfer/wavesurfer.esm.js": "export default 1;\n"}
    out = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.append((rel, path))
    import toolkit.task.template

    monkeypatch.setattr(toolkit.task.template, "asset_files", lambda *a, **k: list(out))
    return out


@pytest.fixture
def zips(tmp_path) -> dict[str, Path]:
    out = {}
    for name in ("pre_annotation", "post_annotation"):
        path = tmp_path / f"gtkit-{name.replace('_', '-')}.zip"
        path.write_bytes(f"zip of {name}".encode())
        out[name] = path
    return out


@pytest.fixture
def clients(aws):
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (ASSETS_BUCKET, LOGS_BUCKET, JOBS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=ASSETS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    cfn = boto3.client("cloudformation", region_name=REGION)
    stub = Stubber(cfn)
    stub.activate()
    yield AwsClients(cloudformation=cfn, s3=s3), stub
    stub.deactivate()


def zip_key(path: Path, name: str) -> str:
    return f"lambda/{name.replace('_', '-')}-{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}.zip"


def labeling_params(zips: dict[str, Path], schema_json: str) -> dict[str, str]:
    return {"CodeBucket": ASSETS_BUCKET, "PreAnnotationCodeKey": zip_key(zips["pre_annotation"], "pre_annotation"),
            "PostAnnotationCodeKey": zip_key(zips["post_annotation"], "post_annotation"),
            "LabelSchema": schema_json, "InputBucketNames": "media-bucket", "LogsBucket": LOGS_BUCKET}


def schema_json(name: str = "call-center") -> str:
    from toolkit.contract import load_label_schema

    return deploy_mod.schema_parameter(load_label_schema(name))


# -- assets ----------------------------------------------------------------------------------------

def test_content_types():
    assert content_type("js/main.js") == "application/javascript; charset=utf-8"
    assert content_type("a/b.mjs") == "application/javascript; charset=utf-8"
    assert content_type("css/gtkit.css") == "text/css; charset=utf-8"
    assert content_type("schema/x.schema.json") == "application/json; charset=utf-8"
    assert content_type("vendor/wavesurfer/LICENSE") == "text/plain; charset=utf-8"
    assert content_type("img/logo.svg") == "image/svg+xml"


def test_assets_version_is_content_hash(static_files, tmp_path):
    first = assets_version(static_files)
    assert first == assets_version(list(reversed(static_files)))  # order-independent
    static_files[0][1].write_text("export const x = 2;\n")
    assert assets_version(static_files) != first
    with pytest.raises(ValueError, match="relative"):
        assets_version([("../etc/passwd", static_files[0][1])])


def test_upload_assets_keys_types_cache_and_idempotence(clients, static_files):
    aws_clients, _ = clients
    s3 = aws_clients.s3
    result = upload_assets(s3, ASSETS_BUCKET, static_files)
    assert (result.uploaded, result.skipped) == (len(static_files), 0)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=ASSETS_BUCKET)["Contents"]}
    assert keys == {f"v/{result.version}/{rel}" for rel, _ in static_files}
    head = s3.head_object(Bucket=ASSETS_BUCKET, Key=f"v/{result.version}/js/main.js")
    assert head["ContentType"] == "application/javascript; charset=utf-8"
    assert head["CacheControl"] == IMMUTABLE_CACHE_CONTROL
    css = s3.head_object(Bucket=ASSETS_BUCKET, Key=f"v/{result.version}/css/gtkit.css")
    assert css["ContentType"] == "text/css; charset=utf-8"
    body = s3.get_object(Bucket=ASSETS_BUCKET, Key=f"v/{result.version}/js/main.js")["Body"].read()
    assert body == b"export const x = 1;\n"
    again = upload_assets(s3, ASSETS_BUCKET, static_files)
    assert (again.version, again.uploaded, again.skipped) == (result.version, 0, len(static_files))


def test_origins_validation():
    assert normalise_origins([f"{ORIGIN}/", "https://B.example.com:8443"]) == [ORIGIN, "https://b.example.com:8443"]
    assert normalise_origins([f"{ORIGIN},{ORIGIN}"]) == [ORIGIN]
    assert normalise_origins(["*"]) == ["*"]  # any origin: the default, and the way back to it
    for bad in (f"*,{ORIGIN}", "https://*.sagemaker.aws", "http://example.com", "https://example.com/path",
                "example.com", ","):
        with pytest.raises(DeployError, match="--worker-origins"):
            normalise_origins([bad])


# -- deploy ----------------------------------------------------------------------------------------

def test_first_deploy_creates_both_stacks_uploads_and_saves_config(clients, static_files, zips, tmp_path):
    aws_clients, stub = clients
    ev = Events()
    schema = schema_json()
    script_create(stub, ev, f"{STACK}-assets", ASSETS_OUTPUTS,
                  {"WorkerPortalOrigins": ORIGIN, "PriceClass": "PriceClass_100"},
                  expected_params=[{"ParameterKey": "WorkerPortalOrigins", "ParameterValue": ORIGIN},
                                   {"ParameterKey": "PriceClass", "ParameterValue": "PriceClass_100"}])
    # The jobs bucket logs to the assets stack's logs bucket; its noncurrent versions live 30 days here.
    params = labeling_params(zips, schema) | {"NoncurrentVersionDays": "30"}
    script_create(stub, ev, STACK, LABELING_OUTPUTS, params, capabilities=["CAPABILITY_IAM"],
                  expected_params=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    messages: list[str] = []
    opts = DeployOptions(stack_name=STACK, worker_origins=[ORIGIN], schema="call-center",
                         input_buckets=["media-bucket"], lambda_zips=zips, poll_seconds=0,
                         config_path=tmp_path / "cfg" / "deploy.json", noncurrent_version_days=30)
    config, path = deploy(opts, aws_clients, report=messages.append)
    stub.assert_no_pending_responses()

    s3 = aws_clients.s3
    version = assets_version(static_files)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=ASSETS_BUCKET)["Contents"]}
    assert {zip_key(zips["pre_annotation"], "pre_annotation"), zip_key(zips["post_annotation"], "post_annotation"),
            f"v/{version}/js/main.js", f"v/{version}/css/gtkit.css"} <= keys
    zip_head = s3.head_object(Bucket=ASSETS_BUCKET, Key=zip_key(zips["pre_annotation"], "pre_annotation"))
    assert zip_head["ContentType"] == "application/zip"

    assert config.assets_base_url == f"https://d111111abcdef8.cloudfront.net/v/{version}/"
    assert config.pre_annotation_lambda_arn == LABELING_OUTPUTS["PreAnnotationLambdaArn"]
    assert config.execution_role_arn == LABELING_OUTPUTS["ExecutionRoleArn"]
    assert config.worker_origins == [ORIGIN] and config.input_buckets == ["media-bucket"]
    assert config.label_schema == "call-center"
    assert config.label_schema_sha256 == hashlib.sha256(schema.encode()).hexdigest()
    assert path == tmp_path / "cfg" / "deploy.json"
    assert load_deploy_config(path=path) == config
    # Readable progress: stack events are reported as they arrive, in order.
    progress = "\n".join(messages)
    assert f"creating stack {STACK}-assets" in progress and "CREATE_COMPLETE" in progress
    assert progress.index(f"creating stack {STACK}-assets") < progress.index(f"creating stack {STACK}\n")


def test_update_reuses_previous_values_and_handles_no_changes(clients, static_files, zips, tmp_path):
    aws_clients, stub = clients
    ev = Events()
    assets_name = f"{STACK}-assets"
    schema = schema_json()
    # assets stack: exists, nothing changed.
    old = ev.make(assets_name, [(assets_name, "AWS::CloudFormation::Stack", "CREATE_COMPLETE", None)])
    assets_params = {"WorkerPortalOrigins": ORIGIN, "PriceClass": "PriceClass_100"}
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(assets_name, "CREATE_COMPLETE", ASSETS_OUTPUTS,
                                                                  assets_params)]}, {"StackName": assets_name})
    stub.add_response("describe_stack_events", {"StackEvents": old}, {"StackName": stack_id(assets_name)})
    stub.add_client_error("update_stack", service_error_code="ValidationError",
                          service_message="No updates are to be performed.", http_status_code=400,
                          expected_params={"StackName": assets_name, "TemplateBody": ANY, "Capabilities": [],
                                           "Tags": ANY, "Parameters": [
                                               {"ParameterKey": "WorkerPortalOrigins", "UsePreviousValue": True},
                                               {"ParameterKey": "PriceClass", "UsePreviousValue": True}]})
    # labeling stack: updated with new code keys, previous schema/buckets/retention kept.
    params = labeling_params(zips, schema) | {"NoncurrentVersionDays": "30"}
    old_l = ev.make(STACK, [(STACK, "AWS::CloudFormation::Stack", "CREATE_COMPLETE", None)])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(STACK, "CREATE_COMPLETE", LABELING_OUTPUTS, params)]},
                      {"StackName": STACK})
    stub.add_response("describe_stack_events", {"StackEvents": old_l}, {"StackName": stack_id(STACK)})
    stub.add_response("update_stack", {"StackId": stack_id(STACK)}, {
        "StackName": STACK, "TemplateBody": ANY, "Capabilities": ["CAPABILITY_IAM"], "Tags": ANY, "Parameters": [
            {"ParameterKey": "CodeBucket", "ParameterValue": ASSETS_BUCKET},
            {"ParameterKey": "PreAnnotationCodeKey", "ParameterValue": params["PreAnnotationCodeKey"]},
            {"ParameterKey": "PostAnnotationCodeKey", "ParameterValue": params["PostAnnotationCodeKey"]},
            {"ParameterKey": "LabelSchema", "UsePreviousValue": True},
            {"ParameterKey": "InputBucketNames", "UsePreviousValue": True},
            {"ParameterKey": "LogsBucket", "ParameterValue": LOGS_BUCKET},
            {"ParameterKey": "NoncurrentVersionDays", "UsePreviousValue": True}]})
    new = ev.make(STACK, [("PreAnnotationLabelingFunction", "AWS::Lambda::Function", "UPDATE_COMPLETE", None),
                          (STACK, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE", None)])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(STACK, "UPDATE_COMPLETE", LABELING_OUTPUTS, params)]},
                      {"StackName": stack_id(STACK)})
    stub.add_response("describe_stack_events", {"StackEvents": new + old_l}, {"StackName": stack_id(STACK)})

    messages: list[str] = []
    config, _ = deploy(DeployOptions(stack_name=STACK, lambda_zips=zips, poll_seconds=0,
                                     config_path=tmp_path / "d.json"), aws_clients, report=messages.append)
    stub.assert_no_pending_responses()
    assert f"stack {assets_name}: no changes" in messages
    assert any("PreAnnotationLabelingFunction" in m and "UPDATE_COMPLETE" in m for m in messages)
    # Events from before the update are not replayed as progress.
    assert sum(f"{STACK}  " in m and "CREATE_COMPLETE" in m for m in messages) == 0
    assert config.worker_origins == [ORIGIN] and config.input_buckets == ["media-bucket"]
    assert config.label_schema == "call-center"


def test_first_deploy_without_origins_lets_any_origin_load_the_assets(clients, static_files, zips, tmp_path):
    """No --worker-origins: the assets stack is created with the template default `*` (public, SRI-pinned)."""
    aws_clients, stub = clients
    ev = Events()
    script_create(stub, ev, f"{STACK}-assets", ASSETS_OUTPUTS, {"WorkerPortalOrigins": "*"},
                  expected_params=[{"ParameterKey": "PriceClass", "ParameterValue": "PriceClass_100"}])
    params = labeling_params(zips, schema_json()) | {"InputBucketNames": ""}
    script_create(stub, ev, STACK, LABELING_OUTPUTS, params, capabilities=["CAPABILITY_IAM"],
                  expected_params=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    config, _ = deploy(DeployOptions(stack_name=STACK, lambda_zips=zips, poll_seconds=0,
                                     config_path=tmp_path / "d.json"), aws_clients)
    stub.assert_no_pending_responses()
    assert config.worker_origins == ["*"]


def test_parameters_keep_previous_values_only_where_the_stack_has_them():
    from toolkit.aws.stack import _parameters

    values = {"Kept": None, "New": None, "Given": "x"}
    # Update of a stack made from an older template, without "New": it gets the template default.
    assert _parameters(values, {"Kept", "Given"}) == [{"ParameterKey": "Kept", "UsePreviousValue": True},
                                                      {"ParameterKey": "Given", "ParameterValue": "x"}]
    assert _parameters(values, None) == [{"ParameterKey": "Given", "ParameterValue": "x"}]  # create


def test_bad_inputs_fail_before_any_aws_call(clients, static_files, zips):
    aws_clients, stub = clients  # no stubbed responses: any CloudFormation call would raise
    with pytest.raises(DeployError, match="--stack-name"):
        deploy(DeployOptions(stack_name="bad_name", worker_origins=[ORIGIN], lambda_zips=zips), aws_clients)
    with pytest.raises(DeployError, match="'\\*' already allows every origin"):
        deploy(DeployOptions(stack_name=STACK, worker_origins=["*", ORIGIN], lambda_zips=zips), aws_clients)
    with pytest.raises(DeployError, match="--input-bucket"):
        deploy(DeployOptions(stack_name=STACK, worker_origins=[ORIGIN], input_buckets=["Bad_Bucket"],
                             lambda_zips=zips), aws_clients)
    with pytest.raises(DeployError, match="post_annotation"):
        deploy(DeployOptions(stack_name=STACK, worker_origins=[ORIGIN], schema="call-center",
                             lambda_zips={"pre_annotation": zips["pre_annotation"]}), aws_clients)
    stub.assert_no_pending_responses()


def test_packages_lambdas_when_no_prebuilt_zips(clients, static_files, zips, tmp_path, monkeypatch):
    import toolkit.aws.lambda_package

    calls = []

    def fake_package(out_dir, **kwargs):
        calls.append((Path(out_dir), kwargs))
        return zips

    monkeypatch.setattr(toolkit.aws.lambda_package, "package_lambdas", fake_package)
    got = deploy_mod.package(DeployOptions(stack_name=STACK, build_dir=tmp_path / "build"), print)
    assert got == zips and calls == [(tmp_path / "build", {"install_dependencies": True})]


def _script_failed_update(stub: Stubber, ev: Events, name: str) -> None:
    old = ev.make(name, [(name, "AWS::CloudFormation::Stack", "CREATE_COMPLETE", None)])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(name, "CREATE_COMPLETE", ASSETS_OUTPUTS)]},
                      {"StackName": name})
    stub.add_response("describe_stack_events", {"StackEvents": old}, {"StackName": stack_id(name)})
    stub.add_response("update_stack", {"StackId": stack_id(name)})
    reason = ("Resource handler returned message: \"Invalid request provided: AWS::CloudFront::Distribution: "
              "The parameter Origin DomainName does not refer to a valid S3 bucket.\"")
    new = ev.make(name, [
        (name, "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", "User Initiated"),
        ("AssetsResponseHeadersPolicy", "AWS::CloudFront::ResponseHeadersPolicy", "UPDATE_COMPLETE", None),
        ("Distribution", "AWS::CloudFront::Distribution", "UPDATE_FAILED", reason),
        ("LogsBucket", "AWS::S3::Bucket", "UPDATE_FAILED", "Resource update cancelled"),
        (name, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_IN_PROGRESS",
         "The following resource(s) failed to update: [Distribution]."),
        (name, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_COMPLETE", None),
    ])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(name, "UPDATE_ROLLBACK_COMPLETE", ASSETS_OUTPUTS)]},
                      {"StackName": stack_id(name)})
    stub.add_response("describe_stack_events", {"StackEvents": new + old}, {"StackName": stack_id(name)})


def test_failed_update_names_failing_resource_and_reason(clients, static_files, zips):
    aws_clients, stub = clients
    ev = Events()
    _script_failed_update(stub, ev, f"{STACK}-assets")
    with pytest.raises(StackError) as info:
        deploy(DeployOptions(stack_name=STACK, worker_origins=[ORIGIN], lambda_zips=zips, poll_seconds=0),
               aws_clients)
    stub.assert_no_pending_responses()
    err = info.value
    assert err.status == "UPDATE_ROLLBACK_COMPLETE"
    assert err.failures[0].logical_id == "Distribution"  # the cause, not the cancellation
    assert "does not refer to a valid S3 bucket" in err.failures[0].reason
    assert "failing resource: Distribution (AWS::CloudFront::Distribution)" in str(err)
    # Nothing was uploaded after the failed assets stack.
    assert "Contents" not in aws_clients.s3.list_objects_v2(Bucket=ASSETS_BUCKET)


def test_failed_create_prints_failing_resource_on_cli(clients, static_files, zips, monkeypatch, tmp_path):
    aws_clients, stub = clients
    ev = Events()
    name = f"{STACK}-assets"
    missing_error(stub, name)
    stub.add_response("create_stack", {"StackId": stack_id(name)})
    events = ev.make(name, [
        (name, "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "User Initiated"),
        ("AssetsOriginAccessControl", "AWS::CloudFront::OriginAccessControl", "CREATE_FAILED",
         "Resource handler returned message: \"An origin access control with the same name already exists.\""),
        ("AssetsBucket", "AWS::S3::Bucket", "CREATE_FAILED", "Resource creation cancelled"),
        (name, "AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create"),
        (name, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", None),
    ])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(
        name, "ROLLBACK_COMPLETE", reason="The following resource(s) failed to create: [AssetsOriginAccessControl, "
                                          "AssetsBucket].")]}, {"StackName": stack_id(name)})
    stub.add_response("describe_stack_events", {"StackEvents": events}, {"StackName": stack_id(name)})
    import toolkit.aws.lambda_package
    import toolkit.cli.deploy as cli_deploy

    monkeypatch.setattr(cli_deploy, "make_clients", lambda region: aws_clients)
    monkeypatch.setattr(toolkit.aws.lambda_package, "package_lambdas", lambda out_dir, **kw: zips)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["deploy", "--stack-name", STACK, "--worker-origins", ORIGIN,
                                      "--schema", "call-center", "--poll", "0"])
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "deploy failed" in out and "ROLLBACK_COMPLETE" in out
    assert "failing resource: AssetsOriginAccessControl (AWS::CloudFront::OriginAccessControl)" in out
    assert "same name already exists" in out
    assert "[AssetsOriginAccessControl, AssetsBucket]" in out  # AWS text is not read as Rich markup
    assert not (tmp_path / ".gtkit" / f"deploy-{STACK}.json").exists()


def test_cli_deploy_success_prints_outputs_and_writes_config(clients, static_files, zips, monkeypatch, tmp_path):
    aws_clients, stub = clients
    ev = Events()
    schema = schema_json("tts-quality")
    script_create(stub, ev, f"{STACK}-assets", ASSETS_OUTPUTS, {"WorkerPortalOrigins": ORIGIN})
    params = labeling_params(zips, schema) | {"InputBucketNames": ""}
    script_create(stub, ev, STACK, LABELING_OUTPUTS, params, capabilities=["CAPABILITY_IAM"])
    import toolkit.cli.deploy as cli_deploy

    monkeypatch.setattr(cli_deploy, "make_clients", lambda region: aws_clients)
    monkeypatch.chdir(tmp_path)
    prebuilt = zips["pre_annotation"].parent
    result = CliRunner().invoke(app, ["deploy", "-s", STACK, "--worker-origins", ORIGIN, "--schema", "tts-quality",
                                      "--prebuilt", str(prebuilt), "--poll", "0"])
    assert result.exit_code == 0, result.output
    stub.assert_no_pending_responses()
    saved = json.loads((tmp_path / ".gtkit" / f"deploy-{STACK}.json").read_text())
    assert saved["label_schema"] == "tts-quality" and saved["jobs_bucket"] == JOBS_BUCKET
    assert saved["input_buckets"] == []
    assert "d111111abcdef8.cloudfront.net/v/" in result.output
    assert load_deploy_config(STACK, directory=tmp_path / ".gtkit").stack_name == STACK
    monkeypatch.chdir(tmp_path)
    assert load_deploy_config().stack_name == STACK  # the only deployment is found without a name


def test_failures_ignore_cancellations_and_stack_rows():
    ev = Events()
    events = list(reversed(ev.make("s", [
        ("A", "AWS::S3::Bucket", "CREATE_FAILED", "Resource creation cancelled"),
        ("B", "AWS::Lambda::Function", "CREATE_FAILED", "Error occurred while GetObject. S3 Error Code: NoSuchKey"),
        ("s", "AWS::CloudFormation::Stack", "ROLLBACK_FAILED", "x"),
    ])))
    failures = failures_in(events)
    assert [f.logical_id for f in failures] == ["B", "A"]


# -- destroy ---------------------------------------------------------------------------------------

def _script_delete(stub: Stubber, ev: Events, name: str, outputs: dict[str, str]) -> None:
    old = ev.make(name, [(name, "AWS::CloudFormation::Stack", "CREATE_COMPLETE", None)])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(name, "CREATE_COMPLETE", outputs)]},
                      {"StackName": name})
    stub.add_response("describe_stack_events", {"StackEvents": old}, {"StackName": stack_id(name)})
    stub.add_response("delete_stack", {}, {"StackName": stack_id(name)})
    new = ev.make(name, [(name, "AWS::CloudFormation::Stack", "DELETE_IN_PROGRESS", None),
                         (name, "AWS::CloudFormation::Stack", "DELETE_COMPLETE", None)])
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(name, "DELETE_COMPLETE")]},
                      {"StackName": stack_id(name)})
    stub.add_response("describe_stack_events", {"StackEvents": new + old}, {"StackName": stack_id(name)})


def _fill(s3, bucket: str) -> None:
    for i in range(3):
        s3.put_object(Bucket=bucket, Key="v/abc/js/main.js", Body=f"v{i}".encode())
    s3.put_object(Bucket=bucket, Key="lambda/x.zip", Body=b"z")
    s3.delete_object(Bucket=bucket, Key="lambda/x.zip")  # leaves a delete marker


def test_destroy_empties_all_versions_and_deletes_stacks(clients, tmp_path):
    aws_clients, stub = clients
    s3 = aws_clients.s3
    _fill(s3, ASSETS_BUCKET)
    s3.put_object(Bucket=LOGS_BUCKET, Key="cloudfront/E2.log.gz", Body=b"log")
    s3.put_object(Bucket=JOBS_BUCKET, Key="output/job/manifests/output/output.manifest", Body=b"{}\n")
    s3.put_bucket_policy(Bucket=LOGS_BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{LOGS_BUCKET}/*"}]}))
    s3.put_bucket_logging(Bucket=JOBS_BUCKET, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": LOGS_BUCKET, "TargetPrefix": f"s3-access/{STACK}/jobs/"}})
    ev = Events()
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(STACK, "CREATE_COMPLETE", LABELING_OUTPUTS)]},
                      {"StackName": STACK})
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(f"{STACK}-assets", "CREATE_COMPLETE",
                                                                  ASSETS_OUTPUTS)]}, {"StackName": f"{STACK}-assets"})
    _script_delete(stub, ev, STACK, LABELING_OUTPUTS)
    _script_delete(stub, ev, f"{STACK}-assets", ASSETS_OUTPUTS)
    config_file = tmp_path / "deploy.json"
    config_file.write_text("{}")
    messages: list[str] = []
    destroy(STACK, aws_clients, config_file=config_file, report=messages.append, poll_seconds=0)
    stub.assert_no_pending_responses()
    for bucket in (ASSETS_BUCKET, LOGS_BUCKET):
        listing = s3.list_object_versions(Bucket=bucket)
        assert not listing.get("Versions") and not listing.get("DeleteMarkers"), bucket
    assert f"emptied s3://{ASSETS_BUCKET} (5 object versions)" in messages  # 3 versions + 1 object + 1 marker
    # Job data is kept unless asked for.
    assert s3.list_objects_v2(Bucket=JOBS_BUCKET)["KeyCount"] == 1
    assert any("kept jobs bucket" in m for m in messages)
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=JOBS_BUCKET)  # its log bucket is gone
    assert not config_file.exists()


def test_destroy_cli_with_delete_data_removes_jobs_bucket(clients, monkeypatch, tmp_path):
    aws_clients, stub = clients
    s3 = aws_clients.s3
    s3.put_object(Bucket=JOBS_BUCKET, Key="jobs/j/input.manifest", Body=b"{}\n")
    ev = Events()
    stub.add_response("describe_stacks", {"Stacks": [stack_desc(STACK, "CREATE_COMPLETE", LABELING_OUTPUTS)]},
                      {"StackName": STACK})
    missing_error(stub, f"{STACK}-assets")
    _script_delete(stub, ev, STACK, LABELING_OUTPUTS)
    import toolkit.cli.deploy as cli_deploy

    monkeypatch.setattr(cli_deploy, "make_clients", lambda region: aws_clients)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["destroy", "-s", STACK, "--delete-data", "--yes", "--poll", "0"])
    assert result.exit_code == 0, result.output
    stub.assert_no_pending_responses()
    assert JOBS_BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_destroy_asks_for_confirmation(clients, monkeypatch):
    aws_clients, stub = clients
    import toolkit.cli.deploy as cli_deploy

    monkeypatch.setattr(cli_deploy, "make_clients", lambda region: aws_clients)
    result = CliRunner().invoke(app, ["destroy", "-s", STACK], input="n\n")
    assert result.exit_code == 1
    stub.assert_no_pending_responses()  # nothing called


def test_destroy_without_stacks_is_an_error(clients):
    aws_clients, stub = clients
    missing_error(stub, STACK)
    missing_error(stub, f"{STACK}-assets")
    with pytest.raises(DeployError, match="no stacks"):
        destroy(STACK, aws_clients, poll_seconds=0)


def test_deployed_assets_base_checks_local_files(static_files, tmp_path):
    from toolkit.aws.config import DeployConfig, deployed_assets_base, save_deploy_config

    version = assets_version(static_files)
    config = DeployConfig(
        stack_name=STACK, assets_stack_name=f"{STACK}-assets", region=REGION,
        assets_base_url=f"https://d111111abcdef8.cloudfront.net/v/{version}/", assets_version=version,
        distribution_id="E2", distribution_domain="d111111abcdef8.cloudfront.net", assets_bucket=ASSETS_BUCKET,
        logs_bucket=LOGS_BUCKET, jobs_bucket=JOBS_BUCKET, pre_annotation_lambda_arn=FUNCTION_ARN + "a",
        post_annotation_lambda_arn=FUNCTION_ARN + "b", execution_role_arn=LABELING_OUTPUTS["ExecutionRoleArn"],
        worker_origins=[ORIGIN], label_schema="call-center", label_schema_sha256="0" * 64,
        deployed_at="2026-01-01T00:00:00+00:00")
    path = save_deploy_config(config, tmp_path / "d.json")
    assert deployed_assets_base(path=path) == config.assets_base_url
    static_files[0][1].write_text("changed\n")
    with pytest.raises(ValueError, match="differ from the assets deployed"):
        deployed_assets_base(path=path)
    assert deployed_assets_base(path=path, check_local=False) == config.assets_base_url
    path.write_text('{"stack_name": 3}')
    with pytest.raises(ValueError, match="invalid deploy config: stack_name"):
        load_deploy_config(path=path)


def test_first_deploy_with_workteam_and_defaults(clients, static_files, zips, tmp_path):
    aws_clients, stub = clients
    sm = boto3.client("sagemaker", region_name=REGION)
    sm_stub = Stubber(sm)
    sm_stub.add_response("describe_workteam", {"Workteam": {
        "WorkteamName": "call-reviewers", "Description": "d", "MemberDefinitions": [{"CognitoMemberDefinition": {
            "UserPool": "us-east-1_abc", "UserGroup": "reviewers", "ClientId": "client"}}],
        "WorkteamArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/call-reviewers",
        "SubDomain": "abcd1234.labeling.us-east-1.sagemaker.aws"}}, {"WorkteamName": "call-reviewers"})
    sm_stub.activate()
    aws_clients.sagemaker = sm
    ev = Events()
    script_create(stub, ev, f"{STACK}-assets", ASSETS_OUTPUTS, {"WorkerPortalOrigins": ORIGIN},
                  expected_params=[{"ParameterKey": "WorkerPortalOrigins", "ParameterValue": ORIGIN},
                                   {"ParameterKey": "PriceClass", "ParameterValue": "PriceClass_100"}])
    params = labeling_params(zips, schema_json()) | {"InputBucketNames": ""}  # defaults: call-center, no buckets
    script_create(stub, ev, STACK, LABELING_OUTPUTS, params, capabilities=["CAPABILITY_IAM"],
                  expected_params=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    opts = DeployOptions(stack_name=STACK, lambda_zips=zips, poll_seconds=0, config_path=tmp_path / "d.json",
                         workteam_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/call-reviewers")
    messages: list[str] = []
    config, _ = deploy(opts, aws_clients, report=messages.append)
    stub.assert_no_pending_responses()
    sm_stub.assert_no_pending_responses()
    assert config.worker_origins == [ORIGIN] and config.label_schema == "call-center"
    assert any("default value for LabelSchema, InputBucketNames" in m for m in messages)


def test_render_reads_assets_base_from_deploy_config(tmp_path):
    """After `gtkit deploy`, `template render` takes the CloudFront URL from the deploy config, and
    refuses when the local static/ no longer matches what was deployed (SRI would fail)."""
    from toolkit.aws.assets import assets_version
    from toolkit.aws.config import DeployConfig, save_deploy_config
    from toolkit.cli import app
    from toolkit.task.template import asset_files

    def config(version):
        return DeployConfig(
            stack_name="demo", assets_stack_name="demo-assets", region="us-east-1",
            assets_base_url=f"https://d111.cloudfront.net/v/{version}/", assets_version=version,
            distribution_id="E1", distribution_domain="d111.cloudfront.net", assets_bucket="a", logs_bucket="l",
            jobs_bucket="j", pre_annotation_lambda_arn="arn:aws:lambda:us-east-1:111122223333:function:pre",
            post_annotation_lambda_arn="arn:aws:lambda:us-east-1:111122223333:function:post",
            execution_role_arn="arn:aws:iam::111122223333:role/x", worker_origins=[], label_schema="call-center",
            label_schema_sha256="0" * 64, deployed_at="2026-11-22T00:00:00Z")

    version = assets_version(asset_files())
    path = save_deploy_config(config(version), tmp_path / "deploy-demo.json")
    out = tmp_path / "t.liquid.html"
    result = CliRunner().invoke(app, ["template", "render", "--schema", "call-center", "--out", str(out),
                                      "--deploy-config", str(path)])
    assert result.exit_code == 0, result.output
    assert f'src="https://d111.cloudfront.net/v/{version}/js/main.js"' in out.read_text()

    stale = save_deploy_config(config("0000stale"), tmp_path / "deploy-stale.json")
    result = CliRunner().invoke(app, ["template", "render", "--schema", "call-center", "--out", str(out),
                                      "--deploy-config", str(stale)])
    assert result.exit_code == 1 and "differ from the assets deployed" in result.stderr.replace("\n", " ")
