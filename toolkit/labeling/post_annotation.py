"""Ground Truth post-annotation (annotation consolidation) Lambda.

Deployed as `lambdas/post_annotation/handler.py` (a shim over this module; handler
`handler.lambda_handler`). Reads the payload file at `payload.s3Uri`, reads each worker's
answer (`annotationData.content`, or `annotationData.s3Uri`), parses and validates it, and
returns one entry per data object with the consolidated label under
`consolidatedAnnotation.content.<labelAttributeName>` (see `toolkit.labeling.consolidate`).

Environment:
- `GTKIT_LABEL_SCHEMA`: built-in schema name (`call-center`), a path (absolute or relative to the
  zip root, where `handler.py` stands, e.g. a YAML bundled in the zip) or the schema itself as
  inline JSON. Unset: answers are checked structurally only and field types are inferred.
- `GTKIT_ASSUME_ROLE`: `auto` (default: assume the event's `roleArn`, fall back to this
  function's own role if that is refused), `always` (refusal is an error), `never`.
- `GTKIT_IOU_THRESHOLD`: segment matching threshold (default 0.5).
- `GTKIT_MODE`: `auto` (default: a batch whose answers carry a `review` decision is a review job's),
  `label` or `review`.

Review jobs (docs/review.md): the label is a ReviewedLabel (decision recomputed against the prior
label, change list, the reviewed label) read from the priors `gtkit job create --review-of` stored
under `<output>/<job>/gtkit-review/priors/` (the payload names only each object's source-ref).

Logs are structured JSON with counts and ids only: no transcript, segment text or worker id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from toolkit.contract.base import dump
from toolkit.contract.consolidated import WorkerAnswer
from toolkit.contract.consolidation import response_item
from toolkit.contract.events import PostAnnotationEvent
from toolkit.contract.review import ReviewedLabel, ReviewPriors
from toolkit.contract.schema import LabelSchema, load_label_schema
from toolkit.labeling.answers import worker_answer
from toolkit.labeling.consolidate import BatchStats, consolidate_batch, fit_response, payload_items
from toolkit.labeling.review import PRIORS_DIR, pick_prior, priors_name, review_outcome

logger = Logger(service="gtkit-post-annotation")
# The folder holding the `toolkit` package: the zip root (next to handler.py) in a deployed Lambda.
BUNDLE_DIR = Path(__file__).resolve().parents[2]
ReadText = Callable[[str], str]


@lru_cache(maxsize=4)
def label_schema(setting: str | None) -> LabelSchema | None:
    """The schema named by GTKIT_LABEL_SCHEMA (cached across warm invocations)."""
    if not setting:
        return None
    if setting.lstrip().startswith("{"):
        return LabelSchema.model_validate(json.loads(setting))
    bundled = BUNDLE_DIR / setting
    return load_label_schema(bundled if bundled.is_file() else setting)


def s3_reader(role_arn: str | None, mode: str = "auto") -> ReadText:
    """A reader of s3:// objects with the job role's credentials (or this function's own)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    retries = Config(retries={"mode": "adaptive", "max_attempts": 10})
    session = boto3.session.Session()
    if role_arn and mode != "never":
        try:
            creds = session.client("sts", config=retries).assume_role(
                RoleArn=role_arn, RoleSessionName="gtkit-post-annotation")["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"])
        except (ClientError, BotoCoreError) as exc:
            if mode == "always":
                raise
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            logger.warning("assume role refused; reading with the function's own role", extra={"error": code})
    client = session.client("s3", config=retries)

    def read_text(uri: str) -> str:
        if not uri.startswith("s3://"):
            raise ValueError("expected an s3:// URI")
        bucket, _, key = uri[5:].partition("/")
        return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    return read_text


def handle(event: dict[str, Any], read_text: ReadText | None = None,
           schema: LabelSchema | None = None) -> list[dict[str, Any]]:
    """The handler body with its S3 access injectable (the local job passes a file reader)."""
    parsed = PostAnnotationEvent.model_validate(event)
    schema = schema or label_schema(os.environ.get("GTKIT_LABEL_SCHEMA"))
    if read_text is None:
        read_text = s3_reader(parsed.role_arn, os.environ.get("GTKIT_ASSUME_ROLE", "auto").lower())
    payload = json.loads(read_text(parsed.payload.s3_uri))
    if not isinstance(payload, list):
        raise ValueError("consolidation payload must be a JSON array")
    iou_threshold = float(os.environ.get("GTKIT_IOU_THRESHOLD", "0.5"))
    mode = os.environ.get("GTKIT_MODE", "auto").lower()
    if mode == "review" or (mode == "auto" and is_review_batch(payload, read_text)):
        responses, stats = review_batch(payload, label_attribute=parsed.label_attribute_name, read_text=read_text,
                                        schema=schema, priors_root=job_root(parsed.payload.s3_uri),
                                        iou_threshold=iou_threshold)
        logger.info("review consolidation done", extra={
            "labeling_job_arn": parsed.labeling_job_arn, "objects": stats.objects, "ok": stats.ok,
            "errors": stats.errors, "answers": stats.answers, "error_object_ids": stats.error_object_ids[:100]})
        return responses
    responses, stats = consolidate_batch(
        payload, label_attribute=parsed.label_attribute_name, read_text=read_text, schema=schema,
        iou_threshold=iou_threshold)
    trimmed = fit_response(responses)
    logger.info("consolidation done", extra={
        "labeling_job_arn": parsed.labeling_job_arn, "objects": stats.objects, "ok": stats.ok,
        "errors": stats.errors, "answers": stats.answers, "invalid_answers": stats.invalid_answers,
        "error_object_ids": stats.error_object_ids[:100],
        "invalid_answer_object_ids": stats.invalid_answer_object_ids[:100],
        "label_schema": schema.name if schema else None,
        "audit_answers_trimmed": trimmed,
    })
    return responses


# -- review jobs ------------------------------------------------------------------------------------
def job_root(payload_uri: str) -> str:
    """`<output>/<job>` of a consolidation request URI (`.../<job>/annotations/consolidated-annotation/...`)."""
    root, found, _rest = payload_uri.partition("/annotations/")
    if not found:
        raise ValueError("the consolidation payload is not under <output>/<job>/annotations/")
    return root


def _contents(item: dict[str, Any], read_text: ReadText) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for annotation in item.get("annotations") or []:
        if not isinstance(annotation, dict):
            continue
        data = annotation.get("annotationData") or {}
        content: Any = data.get("content")
        if content is None and data.get("s3Uri"):
            try:
                content = read_text(data["s3Uri"])
            except Exception as exc:  # one unreadable answer excludes that answer only
                content = RuntimeError(f"could not read annotationData.s3Uri: {type(exc).__name__}")
        out.append((str(annotation.get("workerId") or ""), content))
    return out


def is_review_batch(payload: list[Any], read_text: ReadText) -> bool:
    """True when the first readable answer carries a `review` decision (a review job's template)."""
    for item in payload:
        if not isinstance(item, dict):
            continue
        for _worker, content in _contents(item, read_text):
            if isinstance(content, Exception):
                continue
            parsed = worker_answer("-", content)
            if parsed.answer is not None:
                return parsed.answer.review is not None
    return False


def read_priors(read_text: ReadText, root: str, source_ref: str | None) -> ReviewPriors | None:
    """The prior labels stored for one source-ref, or None (missing or unreadable: a provisional outcome)."""
    if not source_ref:
        return None
    uri = "/".join([root, *PRIORS_DIR, priors_name(source_ref)])
    try:
        return ReviewPriors.model_validate(json.loads(read_text(uri)))
    except Exception as exc:  # missing, refused (S3 errors) or not a priors file: the outcome is provisional
        logger.warning("no prior label for a review object", extra={"error": type(exc).__name__})
        return None


def review_batch(payload: list[Any], *, label_attribute: str, read_text: ReadText, schema: LabelSchema | None,
                 priors_root: str, iou_threshold: float = 0.5) -> tuple[list[dict[str, Any]], BatchStats]:
    """A review job's consolidation: one ReviewedLabel per data object (labeling/review.py rules)."""
    responses: list[dict[str, Any]] = []
    stats = BatchStats()
    for object_id, item, error, contents in payload_items(payload, read_text):
        stats.objects += 1
        if error is not None:
            label = ReviewedLabel(status="error", error=error)
        else:
            answers = [WorkerAnswer(worker_id=worker, valid=False, problems=[str(content)])
                       if isinstance(content, Exception) else worker_answer(worker, content, schema=schema)
                       for worker, content in contents]
            stats.answers += len(answers)
            parsed = [(w.worker_id, w.answer) for w in answers if w.answer is not None]
            assert item is not None  # parsed whenever there is no error
            prior = pick_prior(read_priors(read_text, priors_root, item.data_object.s3_uri), parsed)
            try:
                label = review_outcome(prior.label if prior else None, answers, iou_threshold=iou_threshold)
            except Exception as exc:  # one object that breaks must not fail the batch
                label = ReviewedLabel(status="error", error=f"could not combine the reviews: {type(exc).__name__}")
        if label.status == "ok":
            stats.ok += 1
        else:
            stats.errors += 1
            stats.error_object_ids.append(object_id)
        responses.append(response_item(object_id, label_attribute, dump(label)))
    return responses, stats


def lambda_handler(event: dict[str, Any], context: Any = None) -> list[dict[str, Any]]:
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(request_id=request_id)
    return handle(event)
