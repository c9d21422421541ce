"""Ground Truth labeling jobs: validated `CreateLabelingJob` requests, status, stop, list, fetch.

`JobConfig` (the YAML of `gtkit job create --config`) is checked before anything is uploaded or
called, with errors that name the config key: every value that ends up in the request is checked
against botocore's service model for CreateLabelingJob (string length and full-match pattern, list
and number bounds: `toolkit.aws.service_model`), plus the documented rules the model does not carry
(custom-task time limits, Mechanical Turk rules, reserved suffixes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from toolkit.aws.assets import assets_version
from toolkit.aws.config import DeployConfig
from toolkit.aws.deploy import schema_digest, schema_parameter
from toolkit.aws.service_model import request_problems
from toolkit.contract.base import problems_from
from toolkit.contract.schema import LabelSchema, load_label_schema
from toolkit.errors import GtkitError, Problem
from toolkit.storage import Storage, is_s3, join_uri, split_s3

Report = Callable[[str], None]

PUBLIC_CROWD = "workteam/public-crowd/default"
# Documented limits the service model does not carry (CreateLabelingJob / HumanTaskConfig pages).
TASK_TIME_MIN, TASK_TIME_MAX_CUSTOM = 30, 28_800
LIFETIME_MIN, LIFETIME_MAX_PUBLIC, LIFETIME_MAX_PRIVATE = 60, 43_200, 2_592_000
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})
# Free text a YAML block scalar (`description: >`) ends with a line break.
FOLDED_KEYS = ("title", "description")
# Which job.yaml key (or deploy-config value) each CreateLabelingJob member comes from.
REQUEST_SOURCES = {
    "LabelingJobName": "job_name",
    "LabelAttributeName": "label_attribute_name",
    "InputConfig.DataSource.S3DataSource.ManifestS3Uri": "manifest",
    "InputConfig.DataAttributes.ContentClassifiers": "content_classifiers",
    "OutputConfig.S3OutputPath": "output_path",
    "OutputConfig.KmsKeyId": "output_kms_key_id",
    "RoleArn": "execution_role_arn (deploy config)",
    "HumanTaskConfig.WorkteamArn": "workteam_arn",
    "HumanTaskConfig.UiConfig.UiTemplateS3Uri": "job_name (template location)",
    "HumanTaskConfig.PreHumanTaskLambdaArn": "pre_annotation_lambda_arn (deploy config)",
    "HumanTaskConfig.TaskKeywords": "keywords",
    "HumanTaskConfig.TaskTitle": "title",
    "HumanTaskConfig.TaskDescription": "description",
    "HumanTaskConfig.NumberOfHumanWorkersPerDataObject": "workers_per_object",
    "HumanTaskConfig.TaskTimeLimitInSeconds": "task_time_limit_seconds",
    "HumanTaskConfig.TaskAvailabilityLifetimeInSeconds": "task_availability_lifetime_seconds",
    "HumanTaskConfig.MaxConcurrentTaskCount": "max_concurrent_task_count",
    "HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn":
        "post_annotation_lambda_arn (deploy config)",
    "HumanTaskConfig.PublicWorkforceTaskPrice": "public_task_price_usd",
    "StoppingConditions.MaxHumanLabeledObjectCount": "stopping_conditions.max_human_labeled_object_count",
    "StoppingConditions.MaxPercentageOfInputDatasetLabeled":
        "stopping_conditions.max_percentage_of_input_dataset_labeled",
    "Tags": "tags",
}


# How to read a pattern failure for the keys whose patterns are not obvious.
PATTERN_HINTS = {
    "job_name": "use letters, digits and hyphens, starting and ending with a letter or digit (no '_', '.' or spaces)",
    "label_attribute_name": "use letters, digits and hyphens, starting and ending with a letter or digit",
    "workteam_arn": "a workteam ARN looks like arn:aws:sagemaker:REGION:ACCOUNT:workteam/private-crowd/NAME",
    "keywords": "letters and digits, words separated by single spaces",
}


class JobConfigError(GtkitError, ValueError):
    """An invalid job config: one `field: message` per problem."""

    def __init__(self, source: str, problems: list[Problem]):
        super().__init__(f"{source}: invalid job config\n" + "\n".join(f"  {p.path}: {p.message}" for p in problems),
                         problems=problems)


class StoppingConditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_human_labeled_object_count: int | None = None
    max_percentage_of_input_dataset_labeled: int | None = None


class JobConfig(BaseModel):
    """One labeling job (examples/job.yaml). Relative local paths are relative to the YAML file.

    Lengths, patterns and bounds of what goes into the request come from the service model
    (`parse_job_config` applies them); the rules here are the ones the model does not know.
    """

    model_config = ConfigDict(extra="forbid")

    job_name: str
    label_attribute_name: str | None = Field(default=None, description="Output manifest key; default: job_name")
    manifest: str = Field(min_length=1, description="Input manifest: local path or s3:// URI")
    schema_: str | None = Field(default=None, alias="schema", description="Label schema (default: deployed one)")
    variant: Literal["audio", "video"] | None = None
    output_path: str | None = Field(default=None, description="s3:// prefix; default s3://<jobs bucket>/output/")
    workteam_arn: str
    workers_per_object: int = 1
    task_time_limit_seconds: int = Field(default=3600, ge=TASK_TIME_MIN, le=TASK_TIME_MAX_CUSTOM)
    task_availability_lifetime_seconds: int = Field(default=864_000, ge=LIFETIME_MIN, le=LIFETIME_MAX_PRIVATE)
    max_concurrent_task_count: int | None = None
    title: str | None = Field(default=None, description="Default: schema title")
    description: str | None = Field(default=None, description="Default: schema description")
    keywords: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    content_classifiers: list[Literal["FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"]] = Field(
        default_factory=list)
    stopping_conditions: StoppingConditions | None = None
    use_pre_annotation_lambda: bool = True
    public_task_price_usd: Decimal | None = Field(default=None, ge=0, le=Decimal("2.999"),
                                                  description="Mechanical Turk only: price per task")
    output_kms_key_id: str | None = None
    stack: str | None = Field(default=None, description="Deployment to use (.gtkit/deploy-<stack>.json)")

    @field_validator("label_attribute_name")
    @classmethod
    def _attribute(cls, value: str | None) -> str | None:
        for suffix in ("-metadata", "-ref"):
            if value is not None and value.endswith(suffix):
                raise ValueError(f"{value!r} must not end with {suffix!r} (reserved by Ground Truth)")
        return value

    @field_validator("manifest", "output_path")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and is_s3(value):
            split_s3(value)
        return value

    @field_validator("output_path")
    @classmethod
    def _output_s3(cls, value: str | None) -> str | None:
        if value is not None and not is_s3(value):
            raise ValueError(f"must be an s3:// prefix, got {value!r}")
        return value

    @field_validator("title", "description")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if key.lower().startswith("aws:"):
                raise ValueError(f"key {key!r}: the aws: prefix is reserved")
            if not isinstance(val, str):
                raise ValueError(f"value of {key!r}: must be text (quote numbers in YAML)")
        return value

    @model_validator(mode="after")
    def _workforce_rules(self) -> JobConfig:
        public = self.workteam_arn.endswith(PUBLIC_CROWD)
        if public:
            if self.task_availability_lifetime_seconds > LIFETIME_MAX_PUBLIC:
                raise ValueError(f"task_availability_lifetime_seconds: at most {LIFETIME_MAX_PUBLIC} for the "
                                 "Mechanical Turk workforce")
            if self.public_task_price_usd is None:
                raise ValueError("public_task_price_usd: required for the Mechanical Turk workforce")
            if "FreeOfPersonallyIdentifiableInformation" not in self.content_classifiers:
                raise ValueError("content_classifiers: Mechanical Turk jobs must declare "
                                 "FreeOfPersonallyIdentifiableInformation (do not send PII to a public crowd)")
        elif self.public_task_price_usd is not None:
            raise ValueError("public_task_price_usd: only for the Mechanical Turk (public-crowd) workteam")
        if self.task_time_limit_seconds > self.task_availability_lifetime_seconds:
            raise ValueError("task_time_limit_seconds: longer than task_availability_lifetime_seconds")
        return self

    @property
    def attribute(self) -> str:
        return self.label_attribute_name or self.job_name


def _problems(exc: ValidationError) -> list[Problem]:
    out = []
    for problem in problems_from(exc, root="(config)"):
        where, message = problem.path, problem.message.removeprefix("Value error, ")
        # Model-level rules name their field at the start of the message.
        if where == "(config)" and ": " in message:
            where, message = message.split(": ", 1)
        out.append(Problem(where, message))
    return out


def fold_trailing_line_breaks(data: dict[str, Any], report: Report | None = None) -> dict[str, Any]:
    """`description: >` (a YAML block scalar) ends with a line break, which TaskDescription's pattern
    rejects: drop trailing line breaks of one-line free text, and say so. Inner line breaks stay (and
    are reported by the model check)."""
    out = dict(data)
    for key in FOLDED_KEYS:
        value = out.get(key)
        if not isinstance(value, str):
            continue
        stripped = value.rstrip("\r\n")
        if stripped != value and stripped and "\n" not in stripped and "\r" not in stripped:
            out[key] = stripped
            if report:
                report(f"note: {key}: removed the line break at its end (a YAML block scalar like `{key}: >` "
                       f"adds one; write `{key}: >-` to avoid it)")
    return out


def _source_of(path: str, job: JobConfig | None = None) -> str:
    """The job.yaml key (or deploy-config value) behind a request member path."""
    for member, key in sorted(REQUEST_SOURCES.items(), key=lambda kv: -len(kv[0])):
        if path == member or path.startswith((member + ".", member + "[")):
            rest = path[len(member):]
            if member == "Tags" and job is not None and rest.startswith("["):
                return "tags"
            if member == "HumanTaskConfig.TaskKeywords" and rest.startswith("["):
                return f"keywords{rest.split('.')[0]}"
            if job is not None and key in ("title", "description") and getattr(job, key) is None:
                return f"{key} (default: the schema's {key})"
            return key
    return path


def model_problems(request: dict[str, Any], job: JobConfig | None = None) -> list[Problem]:
    """(config key, message) for every value of `request` the SageMaker service model rejects."""
    out = []
    for problem in request_problems("sagemaker", "CreateLabelingJob", request):
        path, message = problem.path, problem.message
        key = _source_of(path, job)
        if path == "Tags":
            message += " (gtkit adds two of its own: gtkit:stack and gtkit:schema)"
        hint = PATTERN_HINTS.get(key.split("[")[0])
        if hint and "full match" in message:
            message = f"{message.split(' (the API requires')[0]}; {hint}"
        out.append(Problem(key, f"{message} [CreateLabelingJob {path}]"))
    return out


def parse_job_config(data: Any, source: str = "job config", report: Report | None = None) -> JobConfig:
    if not isinstance(data, dict):
        raise JobConfigError(source, [Problem("(config)", "expected a YAML mapping of settings")])
    try:
        job = JobConfig.model_validate(fold_trailing_line_breaks(data, report))
    except ValidationError as exc:
        raise JobConfigError(source, _problems(exc)) from exc
    # What the config alone puts into the request, checked now: before the manifest is even read.
    problems = model_problems(config_request(job), job)
    if problems:
        raise JobConfigError(source, problems)
    return job


def load_job_config(path: str | Path, report: Report | None = None, defaults: dict[str, Any] | None = None
                    ) -> tuple[JobConfig, Path]:
    """The job config and the directory its relative paths are relative to. `defaults` fill keys the
    YAML leaves out (a review job's manifest is generated: `create_review_job`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"job config {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise JobConfigError(str(path), [Problem("(yaml)", str(exc).splitlines()[0])]) from exc
    if defaults and isinstance(data, dict):
        data = {**defaults, **data}
    return parse_job_config(data, str(path), report), path.resolve().parent


# -- building the request --------------------------------------------------------------------------

def _price(amount: Decimal) -> dict[str, int]:
    tenths = int((amount * 1000).to_integral_value())
    return {"Dollars": tenths // 1000, "Cents": (tenths // 10) % 100, "TenthFractionsOfACent": tenths % 10}


def job_prefix(deploy: DeployConfig, job_name: str) -> str:
    return f"s3://{deploy.jobs_bucket}/jobs/{job_name}"


def _drop_none(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None and v != {} and v != []}


def config_request(job: JobConfig) -> dict[str, Any]:
    """The part of the CreateLabelingJob request that comes from the job config alone."""
    human = _drop_none({
        "WorkteamArn": job.workteam_arn,
        "TaskTitle": job.title,
        "TaskDescription": job.description,
        "TaskKeywords": list(job.keywords),
        "NumberOfHumanWorkersPerDataObject": job.workers_per_object,
        "TaskTimeLimitInSeconds": job.task_time_limit_seconds,
        "TaskAvailabilityLifetimeInSeconds": job.task_availability_lifetime_seconds,
        "MaxConcurrentTaskCount": job.max_concurrent_task_count,
        "PublicWorkforceTaskPrice": (
            {"AmountInUsd": _price(job.public_task_price_usd)} if job.public_task_price_usd is not None else None),
    })
    input_config: dict[str, Any] = {}
    if is_s3(job.manifest):
        input_config["DataSource"] = {"S3DataSource": {"ManifestS3Uri": job.manifest}}
    if job.content_classifiers:
        input_config["DataAttributes"] = {"ContentClassifiers": list(job.content_classifiers)}
    stop = job.stopping_conditions
    return _drop_none({
        "LabelingJobName": job.job_name,
        "LabelAttributeName": job.attribute,
        "InputConfig": input_config,
        "OutputConfig": _drop_none({"S3OutputPath": job.output_path, "KmsKeyId": job.output_kms_key_id}),
        "HumanTaskConfig": human,
        "StoppingConditions": _drop_none({
            "MaxHumanLabeledObjectCount": stop.max_human_labeled_object_count,
            "MaxPercentageOfInputDatasetLabeled": stop.max_percentage_of_input_dataset_labeled,
        }) if stop else None,
        "Tags": [{"Key": k, "Value": v} for k, v in job.tags.items()],
    })


def build_request(
    job: JobConfig, deploy: DeployConfig, schema: LabelSchema, *, manifest_uri: str, template_uri: str
) -> dict[str, Any]:
    """The CreateLabelingJob request for a custom task with our Lambdas and template.

    Raises JobConfigError, naming the config key, for anything the service model would reject.
    """
    request = config_request(job)
    human = request["HumanTaskConfig"]
    human.setdefault("TaskTitle", schema.title)
    human.setdefault("TaskDescription", schema.description or schema.title)
    human["UiConfig"] = {"UiTemplateS3Uri": template_uri}
    human["AnnotationConsolidationConfig"] = {"AnnotationConsolidationLambdaArn": deploy.post_annotation_lambda_arn}
    if job.use_pre_annotation_lambda:
        human["PreHumanTaskLambdaArn"] = deploy.pre_annotation_lambda_arn
    request.setdefault("InputConfig", {})["DataSource"] = {"S3DataSource": {"ManifestS3Uri": manifest_uri}}
    request.setdefault("OutputConfig", {}).setdefault("S3OutputPath", f"s3://{deploy.jobs_bucket}/output/")
    request["RoleArn"] = deploy.execution_role_arn
    gtkit_tags = [{"Key": "gtkit:stack", "Value": deploy.stack_name}, {"Key": "gtkit:schema", "Value": schema.name}]
    request["Tags"] = gtkit_tags + request.get("Tags", [])
    problems = model_problems(request, job)
    if problems:
        raise JobConfigError("job config", problems)
    return request


# -- creating a job --------------------------------------------------------------------------------

@dataclass
class ManifestSummary:
    objects: int
    buckets: set[str]


def check_manifest(uri: str, storage: Storage) -> ManifestSummary:
    """Validate every line (contract, duplicates, size limits) and collect the buckets it references."""
    from toolkit.ingest.build import validate_manifest

    problems = list(validate_manifest(uri, storage))
    errors = [p for p in problems if p.kind == "error"]
    if errors:
        shown = "\n".join(f"  line {p.line} ({p.interaction_id or '?'}): {p.field}: {p.message}" for p in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise JobConfigError(f"manifest {uri}", [Problem("manifest", f"{len(errors)} invalid line(s)\n{shown}{more}")])
    objects = 0
    buckets: set[str] = set()
    for _, text in storage.iter_lines(uri):
        if not text.strip():
            continue
        objects += 1
        line = json.loads(text)
        for key in ("source-ref", "sidecar-ref", "peaks-ref", "spectrogram-ref", "review-ref"):
            value = line.get(key)
            if isinstance(value, str) and is_s3(value):
                buckets.add(split_s3(value)[0])
    if objects == 0:
        raise JobConfigError(f"manifest {uri}", [Problem("manifest", "no data objects (empty manifest)")])
    return ManifestSummary(objects, buckets)


def _local(base_dir: Path, value: str) -> str:
    if is_s3(value) or Path(value).is_absolute():
        return value
    return str(base_dir / value)


def resolve_schema(job: JobConfig, deploy: DeployConfig, base_dir: Path) -> LabelSchema:
    source = job.schema_ or deploy.label_schema
    candidate = base_dir / source
    return load_label_schema(candidate if candidate.is_file() else source)


def preflight(job: JobConfig, deploy: DeployConfig, schema: LabelSchema, manifest: ManifestSummary,
              *, check_buckets: bool = True) -> None:
    """Cross-checks between the job, the deployment and the local files, before any AWS call."""
    problems: list[Problem] = []
    if schema_digest(schema_parameter(schema)) != deploy.label_schema_sha256:
        problems.append(Problem("schema", f"{schema.name!r} differs from the schema deployed to the post-annotation "
                                          f"Lambda ({deploy.label_schema!r}); run `gtkit deploy --stack-name "
                                          f"{deploy.stack_name} --schema ...` or use the deployed schema"))
    from toolkit.task.template import asset_files

    if assets_version(asset_files()) != deploy.assets_version:
        problems.append(Problem("(assets)", "the local static/ files differ from the deployed UI assets (their "
                                            "integrity hashes would not match); run `gtkit deploy` again"))
    readable = {deploy.jobs_bucket, *deploy.input_buckets}
    unknown = sorted(manifest.buckets - readable)
    if check_buckets and unknown:
        problems.append(Problem("manifest", f"references bucket(s) {', '.join(unknown)} the execution role cannot "
                                            f"read; redeploy with --input-bucket {' --input-bucket '.join(unknown)}"))
    if check_buckets and is_s3(job.manifest) and split_s3(job.manifest)[0] not in readable:
        problems.append(Problem("manifest", f"s3://{split_s3(job.manifest)[0]} is not readable by the execution role; "
                                            "use a local manifest (uploaded to the jobs bucket) or redeploy with "
                                            f"--input-bucket {split_s3(job.manifest)[0]}"))
    if job.output_path and split_s3(job.output_path)[0] != deploy.jobs_bucket:
        problems.append(Problem("output_path", f"must be in the jobs bucket s3://{deploy.jobs_bucket}/ (the only "
                                               "bucket the execution role can write)"))
    if problems:
        raise JobConfigError("job config", problems)


@dataclass
class PreparedJob:
    request: dict[str, Any]
    objects: int
    manifest_uri: str
    template_uri: str


def create_job(
    job: JobConfig,
    deploy: DeployConfig,
    sagemaker: Any,
    s3: Any,
    *,
    base_dir: Path = Path("."),
    storage: Storage | None = None,
    dry_run: bool = False,
    check_buckets: bool = True,
    report: Report = lambda _m: None,
    review: bool = False,
    uploads: dict[str, Any] | None = None,
) -> PreparedJob:
    """Validate, upload manifest and template, and call CreateLabelingJob (unless dry_run).

    `review`: render the review template (a review job, `create_review_job`). `uploads`: JSON files
    (URI -> value) written after validation, before the manifest (review sidecars and priors)."""
    from toolkit.task.template import render_template

    storage = storage or Storage(client=s3)
    schema = resolve_schema(job, deploy, base_dir)
    manifest_src = _local(base_dir, job.manifest)
    prefix = job_prefix(deploy, job.job_name)
    manifest_uri = manifest_src if is_s3(manifest_src) else join_uri(prefix, "input.manifest")
    template_uri = join_uri(prefix, "template.liquid.html")
    # The request first: what the service model rejects is reported before the manifest is read.
    request = build_request(job, deploy, schema, manifest_uri=manifest_uri, template_uri=template_uri)
    summary = check_manifest(manifest_src, storage)
    preflight(job, deploy, schema, summary, check_buckets=check_buckets)
    template = render_template(schema, deploy.assets_base_url, variant=job.variant, **review_template_option(review))
    prepared = PreparedJob(request, summary.objects, manifest_uri, template_uri)
    if dry_run:
        return prepared

    if uploads:
        upload_json = Storage(client=s3)
        for uri, value in uploads.items():
            upload_json.write_json(uri, value)
        report(f"uploaded {len(uploads)} review file(s) (sidecars, prior labels)")

    if not is_s3(manifest_src):
        upload = Storage(client=s3)
        with upload.open_write(manifest_uri, content_type="application/jsonl") as out:
            for _, text in storage.iter_lines(manifest_src):
                if text.strip():
                    out.write(text + "\n")
        report(f"uploaded manifest ({summary.objects} objects) to {manifest_uri}")
    Storage(client=s3).write_bytes(template_uri, template.encode("utf-8"), content_type="text/html; charset=utf-8")
    report(f"uploaded template to {template_uri}")
    arn = sagemaker.create_labeling_job(**request)["LabelingJobArn"]
    report(f"created labeling job {arn}")
    return prepared


# -- review jobs (docs/review.md) --------------------------------------------------------------------

def review_template_option(review: bool) -> dict[str, Any]:
    """`review=True` for render_template when this build's template renders review tasks."""
    if not review:
        return {}
    import inspect

    from toolkit.task.template import render_template

    return {"review": True} if "review" in inspect.signature(render_template).parameters else {}


@dataclass
class ReviewSource:
    """The labeling job a review job reviews: its output manifest, label attribute and layout root."""

    job_name: str
    manifest: str
    label_attribute: str
    root: str | None  # `<out>/<job>`, where annotations/worker-response/ is; None: unknown


def _detect_attribute(storage: Storage, manifest: str) -> str:
    """The one label attribute of an output manifest (a key with a `-metadata` object beside it)."""
    for _number, text in storage.iter_lines(manifest):
        if not text.strip():
            continue
        line = json.loads(text)
        found = [k for k in line if isinstance(line.get(f"{k}-metadata"), dict) and isinstance(line[k], dict)]
        if len(found) == 1:
            return found[0]
        raise JobConfigError(f"review of {manifest}", [Problem(
            "--prior-attribute", f"the first line has {len(found)} label attributes ({', '.join(found) or 'none'});"
                                 " name the one to review")])
    raise JobConfigError(f"review of {manifest}", [Problem("--review-of", "the output manifest is empty")])


def review_source(review_of: str, *, sagemaker: Any, storage: Storage, label_attribute: str | None = None
                  ) -> ReviewSource:
    """`--review-of`: a labeling job name (DescribeLabelingJob) or an output manifest (local or s3://;
    in Ground Truth's layout `<out>/<job>/manifests/output/output.manifest` its worker responses are found)."""
    if not is_s3(review_of) and "/" not in review_of and not Path(review_of).exists():
        desc = describe_job(sagemaker, review_of)
        manifest = output_manifest_uri(desc)
        root = join_uri(desc["OutputConfig"]["S3OutputPath"], desc["LabelingJobName"])
        return ReviewSource(review_of, manifest, label_attribute or desc["LabelAttributeName"], root)
    parts = review_of.replace("\\", "/").rstrip("/").split("/")
    layout = len(parts) >= 4 and parts[-3:] == ["manifests", "output", "output.manifest"]
    root = "/".join(parts[:-3]) if layout else None
    job_name = parts[-4] if layout else Path(parts[-1]).name.split(".")[0]
    return ReviewSource(job_name, review_of, label_attribute or _detect_attribute(storage, review_of), root)


@dataclass
class ReviewManifest:
    lines: list[dict[str, Any]]
    uploads: dict[str, Any]  # URI -> JSON: review sidecars and the priors the post-annotation Lambda reads
    skipped: list[tuple[int, str]]  # (line number, why): lines without a usable label
    sidecars: int = 0
    notes: list[str] = field(default_factory=list)  # what the size limits made leave out


def _worker_answers(storage: Storage, root: str | None, object_id: str, label: Any,
                    files: dict[str, dict[str, list[str]]]) -> list[tuple[str, Any]] | None:
    """The workers' answers of one object: None when the label's audit copies are complete (review_input
    takes them), else from its worker-response files (listed once per build into `files`)."""
    from toolkit.contract import worker_response
    from toolkit.labeling.answers import worker_answer
    from toolkit.labeling.output_layout import responses_by_object
    from toolkit.labeling.review import worker_answers

    if label.workers and not any(w.answer_omitted for w in label.workers):
        return None
    if root is None:
        return worker_answers(label)
    if root not in files:
        files[root] = responses_by_object(storage, root)
    answers: dict[str, Any] = {}
    for uri in files[root].get(object_id, []):  # later iterations replace earlier ones, as Ground Truth's do
        for response in worker_response.decode(storage.read_bytes(uri), uri):
            parsed = worker_answer(response.worker_id, response.answer_content)
            if parsed.valid and parsed.answer is not None:
                answers[response.worker_id] = parsed.answer
    return list(answers.items())


def build_review_manifest(source: ReviewSource, storage: Storage, *, review_job: str, output_path: str,
                          sidecar_prefix: str, iteration: int = 1) -> ReviewManifest:
    """Each prior output line + `review` (or `review-ref` to a sidecar when the line would pass
    Ground Truth's 100 KB), and the priors for the review job's post-annotation Lambda."""
    import hashlib

    from toolkit.contract.base import dump
    from toolkit.contract.consolidated import ConsolidatedLabel
    from toolkit.contract.review import REVIEW_SIDECAR_SUFFIX, ReviewPrior, ReviewPriors
    from toolkit.labeling.review import PRIORS_DIR, fit_review_line, priors_name, review_task_line

    out = ReviewManifest(lines=[], uploads={}, skipped=[])
    files: dict[str, dict[str, list[str]]] = {}
    priors: dict[str, ReviewPriors] = {}
    index = -1
    for number, text in storage.iter_lines(source.manifest):
        if not text.strip():
            continue
        index += 1
        try:
            prior_line = json.loads(text)
            label = ConsolidatedLabel.model_validate(prior_line.get(source.label_attribute))
            answers = _worker_answers(storage, source.root, str(index), label, files)
            line = review_task_line(prior_line, source.label_attribute, of_job=source.job_name,
                                    iteration=iteration, answers=answers)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            reason = str(exc).splitlines()[0] if not hasattr(exc, "errors") else \
                f"{source.label_attribute}: not a consolidated label"
            out.skipped.append((number, reason))
            continue
        try:
            line, moved, notes = fit_review_line(line, source.label_attribute)
        except ValueError as exc:
            raise JobConfigError(f"review of {source.manifest}", [Problem(f"line {number}", str(exc))]) from None
        if moved is not None:
            key = hashlib.sha256(f"{index}:{line.get('source-ref')}".encode()).hexdigest()[:16]
            ref = join_uri(sidecar_prefix, f"{index:06d}-{key}{REVIEW_SIDECAR_SUFFIX}")
            out.uploads[ref] = moved
            line["review-ref"] = ref
            out.sidecars += 1
        out.notes.extend(f"line {number}: {note}" for note in notes if not note.startswith("review moved"))
        source_ref = str(line.get("source-ref"))
        entry = ReviewPrior(interaction_id=line.get("interaction-id"), of_job=source.job_name,
                            label_attribute=source.label_attribute, label=label.model_copy(update={"workers": []}))
        if source_ref in priors:
            priors[source_ref].priors.append(entry)
        else:
            priors[source_ref] = ReviewPriors(source_ref=source_ref, priors=[entry])
        out.lines.append(line)
    root = join_uri(output_path, review_job)
    for source_ref, value in priors.items():
        out.uploads[join_uri(root, *PRIORS_DIR, priors_name(source_ref))] = dump(value)
    return out


def create_review_job(job: JobConfig, deploy: DeployConfig, sagemaker: Any, s3: Any, review_of: str, *,
                      prior_attribute: str | None = None, base_dir: Path = Path("."), storage: Storage | None = None,
                      dry_run: bool = False, check_buckets: bool = True, report: Report = lambda _m: None
                      ) -> tuple[PreparedJob, ReviewManifest]:
    """A chained review job (Ground Truth's adjustment-job form): the prior job's output lines with
    `review`, a new label attribute, the review template, the same Lambdas (the pre-annotation one
    passes `review` through; the post-annotation one recognises review answers)."""
    import tempfile

    from toolkit.labeling.output_layout import write_manifest

    storage = storage or Storage(client=s3)
    source = review_source(review_of, sagemaker=sagemaker, storage=storage, label_attribute=prior_attribute)
    if job.attribute == source.label_attribute:
        raise JobConfigError("job config", [Problem(
            "label_attribute_name",
            f"{job.attribute!r} is the reviewed job's label attribute; a chained job needs a new one")])
    output_path = job.output_path or f"s3://{deploy.jobs_bucket}/output/"
    built = build_review_manifest(source, storage, review_job=job.job_name, output_path=output_path,
                                  sidecar_prefix=join_uri(job_prefix(deploy, job.job_name), "review"))
    for number, why in built.skipped:
        report(f"line {number} not reviewed: {why}")
    for note in built.notes:
        report(note)
    if not built.lines:
        raise JobConfigError(f"review of {source.manifest}", [Problem("--review-of", "no line has a label to review")])
    with tempfile.TemporaryDirectory(prefix="gtkit-review-") as tmp:
        manifest = str(Path(tmp) / "review.manifest")
        write_manifest(Storage(), manifest, built.lines)
        prepared = create_job(job.model_copy(update={"manifest": manifest}), deploy, sagemaker, s3,
                              base_dir=base_dir, storage=storage, dry_run=dry_run, check_buckets=check_buckets,
                              report=report, review=True, uploads=built.uploads)
    report(f"review of {source.job_name} ({source.label_attribute}): {len(built.lines)} objects, "
           f"{built.sidecars} review sidecar(s), {len(built.skipped)} skipped")
    return prepared, built


# -- status, stop, list, fetch ---------------------------------------------------------------------

def describe_job(sagemaker: Any, name: str) -> dict[str, Any]:
    return sagemaker.describe_labeling_job(LabelingJobName=name)


def job_summary(desc: dict[str, Any]) -> dict[str, Any]:
    """What `gtkit job status` shows: no worker data, only counts and states."""
    counters = desc.get("LabelCounters", {})
    out = {
        "name": desc.get("LabelingJobName"),
        "status": desc.get("LabelingJobStatus"),
        "labeled": counters.get("TotalLabeled", 0),
        "human_labeled": counters.get("HumanLabeled", 0),
        "machine_labeled": counters.get("MachineLabeled", 0),
        "failed": counters.get("FailedNonRetryableError", 0),
        "unlabeled": counters.get("Unlabeled", 0),
        "created": _iso(desc.get("CreationTime")),
        "last_modified": _iso(desc.get("LastModifiedTime")),
        "output_manifest": output_manifest_uri(desc),
        "job_reference_code": desc.get("JobReferenceCode"),
    }
    if desc.get("FailureReason"):
        out["failure_reason"] = desc["FailureReason"]
    return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def stop_job(sagemaker: Any, name: str) -> None:
    sagemaker.stop_labeling_job(LabelingJobName=name)


def list_jobs(sagemaker: Any, *, status: str | None = None, name_contains: str | None = None,
              limit: int = 20) -> Iterator[dict[str, Any]]:
    """Newest first."""
    kwargs: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        kwargs["StatusEquals"] = status
    if name_contains:
        kwargs["NameContains"] = name_contains
    count = 0
    for page in sagemaker.get_paginator("list_labeling_jobs").paginate(**kwargs):
        for item in page.get("LabelingJobSummaryList", []):
            if count >= limit:
                return
            count += 1
            yield item


def output_manifest_uri(desc: dict[str, Any]) -> str:
    """The job's output manifest: LabelingJobOutput when set, else the documented layout location."""
    output = desc.get("LabelingJobOutput") or {}
    if output.get("OutputDatasetS3Uri"):
        return output["OutputDatasetS3Uri"]
    base = desc["OutputConfig"]["S3OutputPath"]
    return join_uri(base, desc["LabelingJobName"], "manifests", "output", "output.manifest")


def fetch_output(sagemaker: Any, name: str, out: str | Path, *, storage: Storage,
                 report: Report = lambda _m: None) -> tuple[Path | str, int]:
    """Download the output manifest line by line; returns (written path, line count)."""
    desc = describe_job(sagemaker, name)
    status = desc.get("LabelingJobStatus")
    if status not in TERMINAL_STATUSES:
        report(f"job {name} is {status}: the output manifest may be missing or partial")
    source = output_manifest_uri(desc)
    target: Path | str = out
    if not is_s3(str(out)) and (Path(out).is_dir() or str(out).endswith("/")):
        target = Path(out) / f"{name}.output.manifest"
    if not storage.exists(source):
        raise FileNotFoundError(f"job {name} ({status}): no output manifest at {source} yet")
    lines = 0
    with storage.open_write(target) as fh:
        for _, text in storage.iter_lines(source):
            if text.strip():
                fh.write(text + "\n")
                lines += 1
    return target, lines
