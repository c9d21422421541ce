"""Ground Truth's output layout under `<S3OutputPath>/<LabelingJobName>/`, for local jobs and tests.

```
<out>/<job>/manifests/output/output.manifest
<out>/<job>/annotations/worker-response/iteration-1/<datasetObjectId>/<timestamp>.json
<out>/<job>/annotations/consolidated-annotation/consolidation-request/iteration-1/<batch>.json
<out>/<job>/annotations/consolidated-annotation/consolidation-response/iteration-1/<batch>.json
```

Works on local directories and s3:// prefixes alike (through `toolkit.storage`). Worker-response
files themselves are written by `toolkit.portal.tasks.write_worker_response` (same layout).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit.storage import Storage, join_uri

METADATA_TYPE = "groundtruth/custom"


def creation_date(moment: datetime | None = None) -> str:
    """`<attr>-metadata.creation-date` format: `2024-11-05T10:00:00.000000` (UTC, no zone)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


class JobLayout:
    """Paths of one labeling job's output (`root` = `<out>/<job>`)."""

    def __init__(self, out: str | Path, job_name: str, iteration: int = 1):
        self.out = str(out)
        self.job_name = job_name
        self.iteration = iteration
        self.root = join_uri(self.out, job_name)

    def path(self, *parts: str) -> str:
        return join_uri(self.root, *parts)

    @property
    def output_manifest(self) -> str:
        return self.path("manifests", "output", "output.manifest")

    def worker_response_dir(self, object_id: str) -> str:
        return self.path("annotations", "worker-response", f"iteration-{self.iteration}", object_id)

    def consolidation_request(self, batch: str) -> str:
        return self.path("annotations", "consolidated-annotation", "consolidation-request",
                         f"iteration-{self.iteration}", f"{batch}.json")

    def consolidation_response(self, batch: str) -> str:
        return self.path("annotations", "consolidated-annotation", "consolidation-response",
                         f"iteration-{self.iteration}", f"{batch}.json")


# -- output manifest ---------------------------------------------------------------------------------
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


def write_manifest(storage: Storage, uri: str, lines: Iterable[dict[str, Any] | str]) -> int:
    """Write JSON Lines atomically (a str is a line already serialised); returns the line count."""
    count = 0
    with storage.open_write(uri) as fh:
        for line in lines:
            fh.write(line if isinstance(line, str) else manifest_text(line))
            fh.write("\n")
            count += 1
    return count


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
