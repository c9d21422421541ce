"""Codec of the output-manifest line: the input line + `<attr>` (the label) + `<attr>-metadata`.

Ground Truth's output contract for custom jobs, written by the local job and `gtkit serve`
(`output_line` -> `manifest_text`) and checked by the tests and `gtkit serve`'s import
(`output_line_problems`). The exporter reads such lines with its own streaming reader
(toolkit.export.reader, toolkit.export.checks: the label as `LabelOnRead`, the metadata checks).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

METADATA_TYPE = "groundtruth/custom"


def creation_date(moment: datetime | None = None) -> str:
    """`<attr>-metadata.creation-date` format: `2024-11-05T10:00:00.000000` (UTC, no zone)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def label_metadata(job_name: str, created: str | None = None, **extra: Any) -> dict[str, Any]:
    """`<attr>-metadata` as Ground Truth writes it for custom jobs."""
    meta = {"type": METADATA_TYPE, "job-name": job_name, "human-annotated": "yes",
            "creation-date": created or creation_date()}
    meta.update({k.replace("_", "-"): v for k, v in extra.items() if v is not None})
    return meta


def output_line(data_object: dict[str, Any], label_attribute: str, content: Any, job_name: str,
                created: str | None = None) -> dict[str, Any]:
    """Input line + `<attr>` + `<attr>-metadata` (input keys first, as Ground Truth orders them)."""
    line = dict(data_object)
    line[label_attribute] = content
    line[f"{label_attribute}-metadata"] = label_metadata(job_name, created)
    return line


def manifest_text(line: dict[str, Any]) -> str:
    """One manifest line as JSON text (compact, UTF-8 as is), without its newline."""
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def output_line_problems(line: dict[str, Any], label_attribute: str, job_name: str | None = None) -> list[str]:
    """How a labeled output-manifest line breaks the Ground Truth output contract (empty: fine)."""
    problems = []
    if "source-ref" not in line and "source" not in line:
        problems.append("no source-ref or source")
    if label_attribute not in line:
        problems.append(f"no {label_attribute!r} label")
    meta = line.get(f"{label_attribute}-metadata")
    if not isinstance(meta, dict):
        return [*problems, f"no {label_attribute}-metadata object"]
    if meta.get("type") != METADATA_TYPE:
        problems.append(f"metadata type is {meta.get('type')!r}, expected {METADATA_TYPE!r}")
    if job_name is not None and meta.get("job-name") != job_name:
        problems.append(f"metadata job-name is {meta.get('job-name')!r}, expected {job_name!r}")
    if meta.get("human-annotated") != "yes":
        problems.append("metadata human-annotated is not 'yes'")
    try:
        datetime.strptime(str(meta.get("creation-date")), "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        problems.append("metadata creation-date is not YYYY-MM-DDTHH:MM:SS.ffffff")
    return problems
