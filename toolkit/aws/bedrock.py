"""Bedrock batch inference jobs: validated `CreateModelInvocationJob` requests, status, stop, list, fetch.

`gtkit export --format bedrock-batch --out OUT` prepares `OUT/job-NNN/` input prefixes (one job each,
within the quotas), `OUT/jobs.json` (the plan) and `OUT/records/job-NNN.jsonl` (recordId -> interaction).
`submit` sends one CreateModelInvocationJob per prefix, named and tagged after the export run, each
request checked against botocore's service model first (`toolkit.aws.service_model`): what AWS would
reject is reported with the option it came from, before anything is created.

Bedrock writes a job's results to `<output>/<job id>/`: one `<input file>.out` per input file (each line
`recordId`, `modelInput` and `modelOutput`, or `error` for a failed record) and `manifest.json.out` (the
record and token counts). `fetch` copies them and writes `job.json` (model id, job ARN, input) beside
them, which `gtkit bedrock import` reads to know the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from toolkit.aws.service_model import request_problems
from toolkit.errors import GtkitError, Problem
from toolkit.storage import Storage, is_s3, join_uri, split_s3

Report = Callable[[str], None]

TERMINAL_STATUSES = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
JOB_PREFIX = re.compile(r"(?:^|/)(job-\d{3,})/?$")
# Which `gtkit bedrock submit` option each CreateModelInvocationJob member comes from.
REQUEST_SOURCES = {
    "jobName": "--name",
    "roleArn": "--role",
    "modelId": "--model",
    "inputDataConfig.s3InputDataConfig.s3Uri": "--input",
    "outputDataConfig.s3OutputDataConfig.s3Uri": "--output",
    "outputDataConfig.s3OutputDataConfig.s3EncryptionKeyId": "--kms-key",
    "timeoutDurationInHours": "--timeout-hours",
    "tags": "--tag",
    "clientRequestToken": "(derived from name, input and model)",
}
# Which model family each exported body is for (None: any model, as a Converse job).
BODY_FAMILY = {"anthropic": "anthropic", "llama": "llama", "titan": "titan", "converse": None}


class BedrockRequestError(GtkitError, ValueError):
    """A request the service model rejects: one Problem per value, its path the CLI option."""

    def __init__(self, problems: list[Problem]):
        super().__init__("invalid batch inference request\n" + "\n".join(f"  {p.path}: {p.message}" for p in problems),
                         problems=problems)


@dataclass
class Shard:
    """One prepared job input: an `OUT/job-NNN/` prefix and what the plan says about it."""

    input_uri: str
    shard: str
    records: int | None = None
    records_map: str | None = None


@dataclass
class ExportRun:
    """The export a submit comes from: its root, plan (when found) and shards."""

    root: str
    shards: list[Shard]
    preset: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)


def _slash(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def find_export(storage: Storage, input_uri: str) -> ExportRun:
    """`--input` is the export root (every job of its jobs.json) or one `job-NNN/` prefix in it."""
    if not is_s3(input_uri):
        raise BedrockRequestError([Problem("--input", f"must be an s3:// prefix (Bedrock reads the input from S3), "
                                                      f"got {input_uri!r}")])
    uri = _slash(input_uri)
    match = JOB_PREFIX.search(uri)
    root = uri[: match.start(1)] if match else uri
    plan_uri = join_uri(root, "jobs.json")
    plan: dict[str, Any] = storage.read_json(plan_uri) if storage.exists(plan_uri) else {}
    jobs = {j["prefix"]: j for j in plan.get("jobs", [])}
    if match:
        prefix = match.group(1) + "/"
        job = jobs.get(prefix, {})
        shards = [Shard(uri, match.group(1), job.get("records"), job.get("records_map"))]
    elif jobs:
        shards = [Shard(_slash(join_uri(root, p)), p.rstrip("/"), j.get("records"), j.get("records_map"))
                  for p, j in jobs.items()]
    else:
        raise BedrockRequestError([Problem("--input", f"{input_uri} is neither a job-NNN/ prefix nor an export "
                                                      "with jobs.json (write one with gtkit export --format "
                                                      "bedrock-batch)")])
    return ExportRun(root, shards, plan.get("preset"), plan)


def run_name(root: str) -> str:
    """The export run's name: the last part of its root (`s3://b/batches/calls-0501/` -> calls-0501)."""
    return root.rstrip("/").rsplit("/", 1)[-1]


def job_name(base: str, shard: str) -> str:
    """`<base>-<shard>` reduced to what jobName allows (letters, digits, + - .), at most 63 characters."""
    text = re.sub(r"[^A-Za-z0-9+\-.]+", "-", f"{base}-{shard}").strip("-.+")
    text = re.sub(r"^[^A-Za-z0-9]+", "", text)
    if len(text) > 63:  # keep the shard, which tells the jobs of one run apart
        keep = 63 - len(shard) - 1
        text = text[:keep].rstrip("-.+") + "-" + shard
    return text or shard


def request_token(*parts: str) -> str:
    """A clientRequestToken from what identifies the job: a rerun of the same submit creates no second job."""
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:64]


def build_request(shard: Shard, *, run: ExportRun, model: str, role: str, output: str, name: str | None = None,
                  tags: dict[str, str] | None = None, timeout_hours: int | None = None,
                  kms_key: str | None = None, invocation_type: str | None = None) -> dict[str, Any]:
    """The CreateModelInvocationJob request for one shard; BedrockRequestError names the option of each
    value the service model rejects."""
    base = name or run_name(run.root)
    gtkit_tags = {"gtkit:export": run.root, "gtkit:shard": shard.shard}
    if run.preset:
        gtkit_tags["gtkit:preset"] = run.preset
    all_tags = {**gtkit_tags, **(tags or {})}
    jname = job_name(base, shard.shard) if len(run.shards) > 1 or not name else name
    request: dict[str, Any] = {
        "jobName": jname,
        "roleArn": role,
        "clientRequestToken": request_token(jname, shard.input_uri, model),
        "modelId": model,
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": shard.input_uri, "s3InputFormat": "JSONL"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": _slash(output)}},
        "tags": [{"key": k, "value": v} for k, v in all_tags.items()],
    }
    if kms_key:
        request["outputDataConfig"]["s3OutputDataConfig"]["s3EncryptionKeyId"] = kms_key
    if timeout_hours is not None:
        request["timeoutDurationInHours"] = timeout_hours
    if invocation_type:
        request["modelInvocationType"] = invocation_type
    problems = model_problems("CreateModelInvocationJob", request)
    if not is_s3(output):
        problems.insert(0, Problem("--output", f"must be an s3:// prefix, got {output!r}"))
    if problems:
        raise BedrockRequestError(problems)
    return request


def _source_of(path: str) -> str:
    for member, option in sorted(REQUEST_SOURCES.items(), key=lambda kv: -len(kv[0])):
        if path == member or path.startswith((member + ".", member + "[")):
            return option
    return path


def model_problems(operation: str, request: dict[str, Any]) -> list[Problem]:
    """A Problem (option, message [operation member]) for every value the bedrock service model rejects."""
    return [Problem(_source_of(p.path), f"{p.message} [{operation} {p.path}]")
            for p in request_problems("bedrock", operation, request)]


def invocation_type(model: str, body: str | None) -> str | None:
    """InvokeModel for a body written for the model's own family (a converse body is Nova's), Converse for a
    converse body and any other model; BedrockRequestError when the model cannot read the exported body."""
    from toolkit.ingest.model_outputs import family_of

    if body is None:
        return None
    family = family_of(model)
    if body == "converse":
        return "InvokeModel" if family == "nova" else "Converse"
    if family is not None and family != BODY_FAMILY.get(body):
        fits = family if family in BODY_FAMILY else "converse"
        raise BedrockRequestError([Problem("--model", f"{model} is a {family} model, but the export wrote {body} model "
                                                      f"inputs (jobs.json body); export again with --batch-body {fits} "
                                                      f"or pick a {body} model")])
    return "InvokeModel"


@dataclass
class Submitted:
    name: str
    arn: str | None
    request: dict[str, Any]


def submit(bedrock: Any, storage: Storage, input_uri: str, *, model: str, role: str, output: str,
           name: str | None = None, tags: dict[str, str] | None = None, timeout_hours: int | None = None,
           kms_key: str | None = None, dry_run: bool = False, report: Report = lambda _m: None) -> list[Submitted]:
    """One CreateModelInvocationJob per shard; every request is built and validated before the first call."""
    run = find_export(storage, input_uri)
    invocation = invocation_type(model, (run.plan.get("body") or {}).get("body"))
    requests = [build_request(s, run=run, model=model, role=role, output=output, name=name, tags=tags,
                              timeout_hours=timeout_hours, kms_key=kms_key, invocation_type=invocation)
                for s in run.shards]
    if not run.plan:
        report(f"note: no jobs.json beside {input_uri}: not an export of this toolkit? (tags and records map unknown)")
    out = []
    for request in requests:
        if dry_run:
            out.append(Submitted(request["jobName"], None, request))
            continue
        arn = bedrock.create_model_invocation_job(**request)["jobArn"]
        report(f"submitted {request['jobName']}: {arn}")
        out.append(Submitted(request["jobName"], arn, request))
    return out


# -- status, stop, list, fetch ---------------------------------------------------------------------

JOB_ID = re.compile(r"^(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:model-invocation-job/)?[a-z0-9]{12}$")


def resolve_job(bedrock: Any, job: str) -> str:
    """A job ARN or id as is; a job name through ListModelInvocationJobs (exact match)."""
    if JOB_ID.match(job):
        return job
    for summary in list_jobs(bedrock, name_contains=job, limit=1000):
        if summary["jobName"] == job:
            return str(summary["jobArn"])
    raise GtkitError(f"no batch inference job named {job!r} (gtkit bedrock list shows them)")


def describe(bedrock: Any, job: str) -> dict[str, Any]:
    return bedrock.get_model_invocation_job(jobIdentifier=resolve_job(bedrock, job))


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def summary(desc: dict[str, Any]) -> dict[str, Any]:
    """What `gtkit bedrock status` shows: states and counts, never record content."""
    out = {
        "name": desc.get("jobName"),
        "arn": desc.get("jobArn"),
        "status": desc.get("status"),
        "model": desc.get("modelId"),
        "total_records": desc.get("totalRecordCount"),
        "processed_records": desc.get("processedRecordCount"),
        "succeeded_records": desc.get("successRecordCount"),
        "failed_records": desc.get("errorRecordCount"),
        "submitted": _iso(desc.get("submitTime")),
        "last_modified": _iso(desc.get("lastModifiedTime")),
        "ended": _iso(desc.get("endTime")),
        "input": desc.get("inputDataConfig", {}).get("s3InputDataConfig", {}).get("s3Uri"),
        "output": output_prefix(desc),
    }
    if desc.get("message"):
        out["message"] = desc["message"]
    return out


def wait(bedrock: Any, job: str, *, poll_seconds: float = 60.0, timeout_seconds: float | None = None,
         on_poll: Callable[[dict[str, Any]], None] = lambda _d: None,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll GetModelInvocationJob until the job ends (or the timeout passes); the last description."""
    ident = resolve_job(bedrock, job)
    start = clock()
    while True:
        desc = bedrock.get_model_invocation_job(jobIdentifier=ident)
        on_poll(desc)
        if desc.get("status") in TERMINAL_STATUSES:
            return desc
        if timeout_seconds is not None and clock() - start + poll_seconds > timeout_seconds:
            return desc
        sleep(poll_seconds)


def stop(bedrock: Any, job: str) -> str:
    ident = resolve_job(bedrock, job)
    bedrock.stop_model_invocation_job(jobIdentifier=ident)
    return ident


def list_jobs(bedrock: Any, *, status: str | None = None, name_contains: str | None = None,
              limit: int = 20) -> Iterator[dict[str, Any]]:
    """Newest first."""
    kwargs: dict[str, Any] = {"sortBy": "CreationTime", "sortOrder": "Descending"}
    if status:
        kwargs["statusEquals"] = status
    if name_contains:
        kwargs["nameContains"] = name_contains
    problems = model_problems("ListModelInvocationJobs", kwargs)
    if problems:
        raise BedrockRequestError([Problem("--status" if "statusEquals" in p.message else "--name-contains",
                                           p.message) for p in problems])
    count = 0
    for page in bedrock.get_paginator("list_model_invocation_jobs").paginate(**kwargs):
        for item in page.get("invocationJobSummaries", []):
            if count >= limit:
                return
            count += 1
            yield item


def output_prefix(desc: dict[str, Any]) -> str | None:
    """Where Bedrock writes this job's results: `<s3OutputDataConfig.s3Uri>/<job id>/`."""
    base = desc.get("outputDataConfig", {}).get("s3OutputDataConfig", {}).get("s3Uri")
    arn = desc.get("jobArn")
    if not base or not arn:
        return None
    return _slash(join_uri(base, arn.rsplit("/", 1)[-1]))


def list_objects(storage: Storage, prefix: str) -> list[str]:
    """URIs under an s3:// prefix (a --mirror'd one listed locally), sorted."""
    local = storage.resolve_read(prefix)
    if not is_s3(local):
        base = Path(local)
        if not base.is_dir():
            return []
        return sorted(join_uri(prefix, str(p.relative_to(base))) for p in base.rglob("*") if p.is_file())
    bucket, key = split_s3(prefix)
    out = []
    for page in storage.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        out += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", [])]
    return sorted(out)


@dataclass
class Fetched:
    files: list[str]
    records: int
    failed: int
    manifest: dict[str, Any] | None
    status: str | None
    failed_ids: list[str] = field(default_factory=list)  # the first ones, "R0000000003 (error 400)"


def count_failed(storage: Storage, uri: str, failed_ids: list[str] | None = None) -> tuple[int, int]:
    """(records, records with `error`) of one .jsonl.out file, without parsing model outputs; the first
    failed recordIds (and their error codes) are appended to `failed_ids`."""
    records = failed = 0
    with storage.open_read(uri, binary=True) as fh:
        for raw in fh:
            if raw.strip():
                records += 1
                if b'"error"' in raw:  # cheap pre-check, confirmed by parsing
                    with contextlib.suppress(orjson.JSONDecodeError):  # a truncated line: import reports it
                        line = orjson.loads(raw)
                        if isinstance(line, dict) and "error" in line:
                            failed += 1
                            code = line["error"].get("errorCode") if isinstance(line["error"], dict) else None
                            if failed_ids is not None and len(failed_ids) < 20:
                                failed_ids.append(f"{line.get('recordId')} (error {code})")
    return records, failed


def fetch(bedrock: Any, storage: Storage, job: str, out: str, *, report: Report = lambda _m: None) -> Fetched:
    """Copy a job's `.jsonl.out` files and `manifest.json.out` to `out` (a directory or prefix) and write
    `job.json` beside them; reports the failed records the manifest and the outputs count."""
    desc = describe(bedrock, job)
    status = desc.get("status")
    if status not in TERMINAL_STATUSES:
        report(f"job {desc.get('jobName')} is {status}: its outputs may be missing or partial")
    prefix = output_prefix(desc)
    if prefix is None:
        raise GtkitError(f"job {job}: no output location in GetModelInvocationJob")
    sources = [u for u in list_objects(storage, prefix) if u.endswith((".jsonl.out", "manifest.json.out"))]
    if not any(u.endswith(".jsonl.out") for u in sources):
        raise FileNotFoundError(f"job {desc.get('jobName')} ({status}): no .jsonl.out files under {prefix} yet")
    files, records, failed, manifest, failed_ids = [], 0, 0, None, []
    for source in sources:
        target = join_uri(out, source[len(prefix):])
        with storage.open_read(source, binary=True) as src, storage.open_write(target, binary=True) as dst:
            for chunk in iter(lambda src=src: src.read(1 << 20), b""):
                dst.write(chunk)
        files.append(target)
        if source.endswith("manifest.json.out"):
            manifest = storage.read_json(target)
        else:
            n, f = count_failed(storage, target, failed_ids)
            records += n
            failed += f
    info = {"jobArn": desc.get("jobArn"), "jobName": desc.get("jobName"), "modelId": desc.get("modelId"),
            "status": status, "input": summary(desc)["input"], "output": prefix,
            "modelInvocationType": desc.get("modelInvocationType", "InvokeModel")}
    storage.write_bytes(join_uri(out, "job.json"), orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n",
                        content_type="application/json")
    return Fetched(files, records, failed, manifest, status, failed_ids)
