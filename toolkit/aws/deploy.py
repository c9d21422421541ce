"""`gtkit deploy` and `gtkit destroy`: two stacks, the assets between them, and the deploy config.

Flow (the Lambda zips must be in S3 before CloudFormation can create the functions):

1. package the Lambdas locally (fail fast, before touching AWS);
2. stack `<name>-assets` (cloudformation/ui-assets.yaml): assets bucket, CloudFront + OAC, log bucket;
3. upload the Lambda zips to `lambda/` and the UI assets to `v/<version>/` of the assets bucket;
4. stack `<name>` (cloudformation/labeling.yaml): Lambdas, roles, jobs bucket;
5. save the outputs to `.gtkit/deploy-<name>.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from toolkit.aws import stack as stacks
from toolkit.aws.assets import upload_assets, upload_lambda_zip
from toolkit.aws.config import DeployConfig, config_path, save_deploy_config
from toolkit.awsclient import RETRY_CONFIG
from toolkit.contract.schema import LabelSchema, load_label_schema
from toolkit.errors import GtkitError

Report = Callable[[str], None]

ASSETS_TEMPLATE = "ui-assets.yaml"
LABELING_TEMPLATE = "labeling.yaml"
ASSETS_SUFFIX = "-assets"
LAMBDA_NAMES = ("pre_annotation", "post_annotation")
DEFAULT_SCHEMA = "call-center"
# Resource names derived from the stack name (the OAC name is `<name>-assets-assets`, max 64) stay in limits.
STACK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
ORIGIN_RE = re.compile(
    r"^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d{1,5})?$"
    r"|^http://(localhost|127\.0\.0\.1)(:\d{1,5})?$"
)
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
SCHEMA_PARAMETER_MAX = 4000  # CloudFormation parameter values are limited to 4 KB
STACK_TAGS = {"gtkit:component": "labeling"}
# The assets stack's default CORS origin: the UI assets are public and SRI-pinned (docs/deploy.md, "CORS").
ANY_ORIGIN = "*"


class DeployError(GtkitError, RuntimeError):
    """A deploy or destroy that cannot proceed; the message says what to change."""


@dataclass
class AwsClients:
    cloudformation: Any
    s3: Any
    sagemaker: Any | None = None

    @classmethod
    def create(cls, region: str | None = None) -> AwsClients:
        session = boto3.Session(region_name=region)
        if not session.region_name:
            raise DeployError("no AWS region: pass --region or set AWS_REGION / a profile region")
        return cls(
            cloudformation=session.client("cloudformation", config=RETRY_CONFIG),
            s3=session.client("s3", config=RETRY_CONFIG),
            sagemaker=session.client("sagemaker", config=RETRY_CONFIG),
        )

    @property
    def region(self) -> str:
        return self.cloudformation.meta.region_name


@dataclass
class DeployOptions:
    stack_name: str
    worker_origins: list[str] | None = None
    workteam_arn: str | None = None  # derive the worker origin from the workteam's portal
    schema: str | None = None  # built-in name or YAML path; default: keep the deployed one
    input_buckets: list[str] | None = None
    price_class: str | None = None
    build_dir: Path | None = None
    lambda_zips: dict[str, Path] | None = None  # prebuilt zips: skip packaging
    install_dependencies: bool = True
    config_path: Path | None = None
    poll_seconds: float = 5.0
    tags: dict[str, str] = field(default_factory=dict)
    noncurrent_version_days: int | None = None  # jobs bucket: keep overwritten/deleted versions this long


# -- validation ------------------------------------------------------------------------------------

def check_stack_name(name: str) -> str:
    if not STACK_NAME_RE.match(name):
        raise DeployError(
            f"--stack-name {name!r}: use 1-40 letters, digits and hyphens, starting with a letter"
        )
    return name


def normalise_origins(origins: list[str]) -> list[str]:
    """Origins allowed to load the UI assets: `*` alone (any origin), or scheme + host (+ port), no paths."""
    out: list[str] = []
    for raw in origins:
        for item in raw.split(","):
            origin = item.strip().rstrip("/").lower()
            if not origin:
                continue
            if origin == ANY_ORIGIN:
                out.append(origin)
                continue
            if "*" in origin:
                raise DeployError(f"--worker-origins: {item.strip()!r}: wildcards are not origins; give '*' alone "
                                  "(any origin) or full origins")
            if not ORIGIN_RE.match(origin):
                raise DeployError(
                    f"--worker-origins: {item.strip()!r} is not an origin like "
                    "https://abcd1234.labeling.us-east-1.sagemaker.aws (https, host, optional port, no path)"
                )
            if origin not in out:
                out.append(origin)
    if not out:
        raise DeployError("--worker-origins: give at least one origin, or '*'")
    if ANY_ORIGIN in out and len(out) > 1:
        raise DeployError("--worker-origins: '*' already allows every origin; give it alone or list origins")
    return out


def check_buckets(names: list[str]) -> list[str]:
    out = []
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            if name.startswith("s3://"):
                name = name[5:].split("/", 1)[0]
            if not BUCKET_RE.match(name):
                raise DeployError(f"--input-bucket: {name!r} is not an S3 bucket name")
            if name not in out:
                out.append(name)
    return out


def schema_parameter(schema: LabelSchema) -> str:
    """The schema as compact JSON for GTKIT_LABEL_SCHEMA (the post-Lambda accepts inline JSON)."""
    text = json.dumps(schema.model_dump(mode="json", exclude_none=True), ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True)
    if len(text.encode("utf-8")) > SCHEMA_PARAMETER_MAX:
        raise DeployError(
            f"label schema {schema.name!r} is {len(text.encode('utf-8'))} bytes as JSON; a CloudFormation "
            f"parameter holds at most {SCHEMA_PARAMETER_MAX}. Shorten its instructions or help texts."
        )
    return text


def schema_digest(parameter: str) -> str:
    return hashlib.sha256(parameter.encode("utf-8")).hexdigest()


def origin_from_workteam(sagemaker: Any, workteam_arn: str) -> str:
    """`https://<portal subdomain>` of a private workteam."""
    name = workteam_arn.rsplit("/", 1)[-1]
    try:
        team = sagemaker.describe_workteam(WorkteamName=name)["Workteam"]
    except ClientError as exc:
        raise DeployError(f"--workteam-arn: cannot describe workteam {name!r}: {exc}") from exc
    sub = team.get("SubDomain")
    if not sub:
        raise DeployError(f"workteam {name!r} has no worker portal subdomain; pass --worker-origins instead")
    return normalise_origins([sub if sub.startswith("https://") else f"https://{sub}"])[0]


# -- deploy ----------------------------------------------------------------------------------------

def package(opts: DeployOptions, report: Report) -> dict[str, Path]:
    if opts.lambda_zips is not None:
        zips = {k: Path(v) for k, v in opts.lambda_zips.items()}
    else:
        from toolkit.aws.lambda_package import ClosureError, PackagingError, package_lambdas

        build_dir = opts.build_dir or Path(".gtkit") / "build" / opts.stack_name
        report(f"packaging Lambdas into {build_dir}")
        try:
            zips = package_lambdas(build_dir, install_dependencies=opts.install_dependencies)
        except (PackagingError, ClosureError) as exc:  # pip failed, or a handler import the zip cannot carry
            raise DeployError(f"packaging the Lambdas failed: {exc}") from exc
    for name in LAMBDA_NAMES:
        if name not in zips or not Path(zips[name]).is_file():
            raise DeployError(f"Lambda package {name!r} missing (got {sorted(zips)})")
    return zips


def deploy(opts: DeployOptions, clients: AwsClients, report: Report = lambda _m: None) -> tuple[DeployConfig, Path]:
    """Deploy or update everything; returns the saved config and where it was saved."""
    from toolkit.task.template import asset_files

    name = check_stack_name(opts.stack_name)
    origins = normalise_origins(opts.worker_origins) if opts.worker_origins else None
    input_buckets = check_buckets(opts.input_buckets) if opts.input_buckets is not None else None
    schema_json = schema_parameter(load_label_schema(opts.schema)) if opts.schema else None
    files = asset_files()
    zips = package(opts, report)

    cfn = clients.cloudformation
    if origins is None and opts.workteam_arn:
        if clients.sagemaker is None:
            raise DeployError("--workteam-arn needs a SageMaker client")
        origins = [origin_from_workteam(clients.sagemaker, opts.workteam_arn)]
        report(f"worker portal origin from workteam: {origins[0]}")
    origins_param = ",".join(origins) if origins else None

    assets_name = name + ASSETS_SUFFIX
    # Origins: None keeps the deployed value, and on a first deploy takes the template default `*`.
    assets_stack = stacks.deploy_stack(
        cfn, assets_name, stacks.template_body(ASSETS_TEMPLATE),
        {"WorkerPortalOrigins": origins_param, "PriceClass": opts.price_class},
        create_defaults={"PriceClass": "PriceClass_100"}, tags={**STACK_TAGS, **opts.tags}, report=report,
        poll_seconds=opts.poll_seconds,
    )
    assets_out = _require(stacks.outputs_of(assets_stack), assets_name,
                          "AssetsBucketName", "LogsBucketName", "DistributionId", "DistributionDomainName",
                          "AssetsBaseUrl")
    bucket = assets_out["AssetsBucketName"]

    keys = {n: upload_lambda_zip(clients.s3, bucket, n, zips[n]) for n in LAMBDA_NAMES}
    report(f"Lambda zips: {', '.join(keys.values())}")
    uploaded = upload_assets(clients.s3, bucket, files, report=report)

    labeling_stack = stacks.deploy_stack(
        cfn, name, stacks.template_body(LABELING_TEMPLATE),
        {
            "CodeBucket": bucket,
            "PreAnnotationCodeKey": keys["pre_annotation"],
            "PostAnnotationCodeKey": keys["post_annotation"],
            "LabelSchema": schema_json,
            "InputBucketNames": ",".join(input_buckets) if input_buckets is not None else None,
            "LogsBucket": assets_out["LogsBucketName"],  # the jobs bucket's S3 access logs
            "NoncurrentVersionDays": str(opts.noncurrent_version_days) if opts.noncurrent_version_days else None,
        },
        create_defaults={"LabelSchema": schema_parameter(load_label_schema(DEFAULT_SCHEMA)), "InputBucketNames": ""},
        capabilities=["CAPABILITY_IAM"], tags={**STACK_TAGS, **opts.tags}, report=report,
        poll_seconds=opts.poll_seconds,
    )
    out = _require(stacks.outputs_of(labeling_stack), name,
                   "PreAnnotationLambdaArn", "PostAnnotationLambdaArn", "ExecutionRoleArn", "JobsBucketName")
    params = stacks.parameters_of(labeling_stack)
    deployed_schema = params.get("LabelSchema") or schema_json or ""
    try:
        schema_name = json.loads(deployed_schema).get("name", "?")
    except (json.JSONDecodeError, AttributeError):
        schema_name = deployed_schema  # a stack deployed by hand with a schema name
    base_url = assets_out["AssetsBaseUrl"].rstrip("/") + "/" + uploaded.version + "/"
    config = DeployConfig(
        stack_name=name,
        assets_stack_name=assets_name,
        region=clients.region,
        assets_base_url=base_url,
        assets_version=uploaded.version,
        distribution_id=assets_out["DistributionId"],
        distribution_domain=assets_out["DistributionDomainName"],
        assets_bucket=bucket,
        logs_bucket=assets_out["LogsBucketName"],
        jobs_bucket=out["JobsBucketName"],
        pre_annotation_lambda_arn=out["PreAnnotationLambdaArn"],
        post_annotation_lambda_arn=out["PostAnnotationLambdaArn"],
        execution_role_arn=out["ExecutionRoleArn"],
        worker_origins=[o for o in (stacks.parameters_of(assets_stack).get("WorkerPortalOrigins") or origins_param
                                    or ANY_ORIGIN).split(",") if o],
        label_schema=schema_name,
        label_schema_sha256=schema_digest(deployed_schema),
        input_buckets=[b for b in params.get("InputBucketNames", "").split(",") if b],
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    path = save_deploy_config(config, opts.config_path)
    return config, path


def _require(outputs: dict[str, str], stack_name: str, *keys: str) -> dict[str, str]:
    missing = [k for k in keys if not outputs.get(k)]
    if missing:
        raise DeployError(f"stack {stack_name} has no output(s) {', '.join(missing)}: was it deployed by gtkit?")
    return outputs


# -- destroy ---------------------------------------------------------------------------------------

def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; returns how many were deleted (0 if no bucket)."""
    deleted = 0
    paginator = s3.get_paginator("list_object_versions")
    try:
        for page in paginator.paginate(Bucket=bucket):
            items = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                     for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for start in range(0, len(items), 1000):
                batch = items[start:start + 1000]
                result = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                errors = result.get("Errors", [])
                if errors:
                    first = errors[0]
                    raise DeployError(f"could not empty s3://{bucket}: {first.get('Key')}: {first.get('Message')}")
                deleted += len(batch)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return deleted
        raise
    return deleted


def stop_access_logging(s3: Any, bucket: str) -> None:
    """Turn off a bucket's S3 server access logging (when its log bucket is deleted); no bucket is fine."""
    try:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


def destroy(
    stack_name: str,
    clients: AwsClients,
    *,
    delete_data: bool = False,
    config_file: Path | None = None,
    report: Report = lambda _m: None,
    poll_seconds: float = 5.0,
) -> None:
    """Delete the labeling stack, empty and delete the assets stack; the jobs bucket only with delete_data."""
    name = check_stack_name(stack_name)
    cfn = clients.cloudformation
    labeling = stacks.describe_stack(cfn, name)
    assets_name = name + ASSETS_SUFFIX
    assets = stacks.describe_stack(cfn, assets_name)
    if labeling is None and assets is None:
        raise DeployError(f"no stacks {name} / {assets_name} in {clients.region}")
    jobs_bucket = stacks.outputs_of(labeling).get("JobsBucketName") if labeling else None

    if labeling is not None:
        stacks.delete_stack(cfn, name, report=report, poll_seconds=poll_seconds)
    if assets is not None:
        if jobs_bucket and not delete_data:
            # The kept jobs bucket logs into the logs bucket, which goes with the assets stack: stop that
            # first, so no access log lands in it while it is emptied.
            stop_access_logging(clients.s3, jobs_bucket)
        out = stacks.outputs_of(assets)
        buckets = [b for b in (out.get("AssetsBucketName"), out.get("LogsBucketName")) if b]
        # CloudFront may still deliver a late log file after the bucket was emptied; then the
        # bucket delete fails and one more empty + delete finishes the job.
        for attempt in (1, 2):
            for bucket in buckets:
                count = empty_bucket(clients.s3, bucket)
                report(f"emptied s3://{bucket} ({count} object versions)")
            try:
                stacks.delete_stack(cfn, assets_name, report=report, poll_seconds=poll_seconds)
                break
            except stacks.StackError as exc:
                if attempt == 2 or exc.status != "DELETE_FAILED":
                    raise
                cause = exc.failures[0] if exc.failures else exc.status
                report(f"stack {assets_name}: delete failed ({cause}); emptying the buckets again")
    if jobs_bucket:
        if delete_data:
            count = empty_bucket(clients.s3, jobs_bucket)
            try:
                clients.s3.delete_bucket(Bucket=jobs_bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                    raise
            report(f"deleted jobs bucket s3://{jobs_bucket} ({count} object versions)")
        else:
            report(f"kept jobs bucket s3://{jobs_bucket} (job data); remove it with --delete-data")
    path = config_file or config_path(name)
    if path.exists():
        path.unlink()
        report(f"removed {path}")
