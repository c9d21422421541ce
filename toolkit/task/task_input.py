"""The task input a worker's page receives (Liquid `task.input`), built from one data object.

It is the normalised manifest line itself, with Ground Truth's dashed keys, so a template works the
same whether or not a pre-annotation Lambda ran. Shared by the pre-annotation Lambda and the local
portal so both hand the template exactly the same thing.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from toolkit.contract.base import dump, problems_from
from toolkit.contract.manifest import GOLD_ANSWER_KEY, ManifestLine
from toolkit.errors import GtkitError

if TYPE_CHECKING:  # the pre-annotation Lambda imports this module; storage (smart_open) is not in its zip
    from toolkit.storage import Storage


class ManifestError(GtkitError, ValueError):
    """A manifest that cannot be served at all (not JSON, empty); the message names the line."""


def build_task_input(data_object: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(taskInput, None) for a labelable data object, (None, reason) otherwise.

    Accepts a manifest line as Ground Truth passes it in `event.dataObject`. A `source` (inline
    text) object cannot be labeled by an audio/video segmentation task.
    """
    if not isinstance(data_object, dict):
        return None, "data object is not a JSON object"
    if "source-ref" not in data_object:
        if "source" in data_object:
            return None, "data object has inline `source` text; this task needs `source-ref` audio or video"
        return None, "data object has no `source-ref`"
    try:
        line = ManifestLine.model_validate(data_object)
    except ValidationError as exc:
        return None, "invalid manifest line: " + "; ".join(map(str, problems_from(exc)))
    task_input = dump(line)
    task_input.pop(GOLD_ANSWER_KEY, None)  # a gold object must look like any other to the worker
    if line.review is not None or line.review_ref is not None:
        # A review line carries the prior labels (chained-job form) with real worker ids; the
        # reviewer sees them pseudonymized, in `review`.
        for key in [k for k in line.model_extra or {} if f"{k}-metadata" in (line.model_extra or {})]:
            task_input.pop(key, None)
            task_input.pop(f"{key}-metadata", None)
    if line.candidates:
        task_input["candidates"] = shown_candidates(task_input)
    return task_input, None


def candidate_order(data_object: dict[str, Any]) -> list[int]:
    """The per-task display order of a comparison's candidates (indexes into `candidates`).

    Seeded by the line's interaction id and candidates, so every render of a task (the Lambda's
    retries, the local portal, a re-run) shows the same order, while orders differ across tasks:
    position (A first) is balanced over a job and the answer records it for bias checks."""
    cands = data_object.get("candidates") or []
    key = json.dumps([data_object.get("interaction-id"), [c.get("source-ref") for c in cands]])
    rng = random.Random(hashlib.sha256(key.encode("utf-8")).digest())
    order = list(range(len(cands)))
    rng.shuffle(order)
    return order


def shown_candidates(data_object: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidates as the worker gets them: shuffled, without `system-id` (workers must not
    know which system made which candidate)."""
    cands = data_object["candidates"]
    return [{k: v for k, v in cands[i].items() if k != "system-id"} for i in candidate_order(data_object)]


def iter_data_objects(manifest: str, storage: Storage) -> Iterator[tuple[str, int, Any]]:
    """(datasetObjectId, line number, data object) per non-blank manifest line, streaming.

    Ids are the 0-based index among non-blank lines, as Ground Truth numbers data objects. A line
    that is not JSON, or not UTF-8, stops everything (ManifestError naming file and line): Ground Truth
    itself refuses such a manifest.
    """
    index = 0
    lines = storage.iter_lines(manifest)
    while True:
        try:
            number, text = next(lines)
        except StopIteration:
            return
        except ValueError as exc:  # the line reader's WrongEncoding / UndecodableLine, naming file and line
            raise ManifestError(str(exc)) from None
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{manifest} line {number}: not JSON ({exc.msg})") from None
        yield str(index), number, data
        index += 1
