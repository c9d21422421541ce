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

from toolkit.contract.events import PostAnnotationEvent
from toolkit.contract.schema import LabelSchema, load_label_schema
from toolkit.labeling.consolidate import consolidate_batch, fit_response

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
    responses, stats = consolidate_batch(
        payload, label_attribute=parsed.label_attribute_name, read_text=read_text, schema=schema,
        iou_threshold=float(os.environ.get("GTKIT_IOU_THRESHOLD", "0.5")))
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


def lambda_handler(event: dict[str, Any], context: Any = None) -> list[dict[str, Any]]:
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(request_id=request_id)
    return handle(event)
