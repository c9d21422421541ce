"""Ground Truth's output layout under `<S3OutputPath>/<LabelingJobName>/`, for local jobs and tests.

```
<out>/<job>/manifests/output/output.manifest
<out>/<job>/annotations/worker-response/iteration-1/<datasetObjectId>/<timestamp>.json
<out>/<job>/annotations/consolidated-annotation/consolidation-request/iteration-1/<batch>.json
<out>/<job>/annotations/consolidated-annotation/consolidation-response/iteration-1/<batch>.json
```

Works on local directories and s3:// prefixes alike (through `toolkit.storage`). What a
worker-response file holds is its codec's business (`toolkit.contract.worker_response`); where it
goes, and under which name, is this module's.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit.contract import worker_response
from toolkit.contract.events import WorkerResponse
from toolkit.contract.output_manifest import manifest_text
from toolkit.storage import Storage, is_s3, join_uri, split_s3


class JobLayout:
    """Paths of one labeling job's output (`root` = `<out>/<job>`)."""

    def __init__(self, out: str | Path, job_name: str, iteration: int = 1):
        self.out = str(out)
        self.job_name = job_name
        self.iteration = iteration
        self.root = join_uri(self.out, job_name)

    @classmethod
    def of_root(cls, root: str, iteration: int = 1) -> JobLayout:
        """The layout of the job output folder `root` itself (`<out>/<job>`), e.g. a Ground Truth job's."""
        out, _, job_name = str(root).rstrip("/\\").replace("\\", "/").rpartition("/")
        layout = cls(out, job_name, iteration)
        layout.root = str(root)
        return layout

    def path(self, *parts: str) -> str:
        return join_uri(self.root, *parts)

    @property
    def output_manifest(self) -> str:
        return self.path("manifests", "output", "output.manifest")

    @property
    def worker_responses(self) -> str:
        """The folder of every iteration's worker-response files."""
        return self.path("annotations", "worker-response")

    def worker_response_dir(self, object_id: str) -> str:
        return join_uri(self.worker_responses, f"iteration-{self.iteration}", object_id)

    def write_worker_response(self, storage: Storage, object_id: str, answers: list[WorkerResponse],
                              submitted_at: datetime) -> str:
        """Write a new worker-response file for `object_id`; returns its URI. Two submissions for one
        task within the same second get distinct names (`..._1.json`)."""
        folder = self.worker_response_dir(object_id)
        name = worker_response_name(submitted_at)
        uri = join_uri(folder, name)
        n = 1
        while storage.exists(uri):
            uri = join_uri(folder, name.removesuffix(".json") + f"_{n}.json")
            n += 1
        storage.write_json(uri, worker_response.encode(answers))
        return uri

    def consolidation_request(self, batch: str) -> str:
        return self.path("annotations", "consolidated-annotation", "consolidation-request",
                         f"iteration-{self.iteration}", f"{batch}.json")

    def consolidation_response(self, batch: str) -> str:
        return self.path("annotations", "consolidated-annotation", "consolidation-response",
                         f"iteration-{self.iteration}", f"{batch}.json")


RESPONSE_PATH = re.compile(r"iteration-(\d+)/([^/]+)/[^/]+\.json$")


def list_files(storage: Storage, prefix: str) -> Iterator[str]:
    """Every `.json` file under a local directory or s3:// prefix, sorted."""
    if is_s3(prefix):
        bucket, key = split_s3(prefix.rstrip("/") + "/")
        pages = storage.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        keys = sorted(obj["Key"] for page in pages for obj in page.get("Contents", []) if obj["Key"].endswith(".json"))
        yield from (f"s3://{bucket}/{k}" for k in keys)
        return
    root = Path(prefix)
    if root.is_dir():
        yield from (str(p) for p in sorted(root.rglob("*.json")) if p.is_file())


def responses_by_object(storage: Storage, root: str) -> dict[str, list[str]]:
    """datasetObjectId -> its worker-response files under `<root>/annotations/worker-response/`
    (iteration, then name order), for Ground Truth's layout and ours alike."""
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for uri in list_files(storage, JobLayout.of_root(root).worker_responses):
        match = RESPONSE_PATH.search(uri.replace("\\", "/"))
        if match:
            found[match.group(2)].append((int(match.group(1)), uri))
    return {k: [uri for _i, uri in sorted(v)] for k, v in found.items()}


def worker_response_name(submitted_at: datetime) -> str:
    """Worker-response file name as observed in real jobs: `2021-03-08_23:06:49.json` (UTC)."""
    return submitted_at.astimezone(UTC).strftime("%Y-%m-%d_%H:%M:%S") + ".json"


def read_worker_response(path: Path) -> list[WorkerResponse]:
    """The answers of one local worker-response file, or UnreadableResponse (the codec's one error)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise worker_response.UnreadableResponse(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return worker_response.decode(data, str(path))


# -- output manifest ---------------------------------------------------------------------------------
def write_manifest(storage: Storage, uri: str, lines: Iterable[dict[str, Any] | str]) -> int:
    """Write JSON Lines atomically (a str is a line already serialised); returns the line count."""
    count = 0
    with storage.open_write(uri) as fh:
        for line in lines:
            fh.write(line if isinstance(line, str) else manifest_text(line))
            fh.write("\n")
            count += 1
    return count
