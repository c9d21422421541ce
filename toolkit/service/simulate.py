"""Simulated workers for a local job (`gtkit local-job run --simulate`, the demo, the tests).

Each simulated worker answers every open task through the portal's real HTTP endpoints, with a
plausible, schema-valid answer built from the task's pre-segments (jittered deterministically per
worker, so reruns give the same answers).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from toolkit.contract import ANSWER_FIELD, LabelSchema
from toolkit.contract.answer import CONTENT_FIELD_PREFIX, TIME_DECIMALS
from toolkit.service.errors import LocalJobError
from toolkit.service.portal.tasks import TaskSource
from toolkit.storage import Storage

log = logging.getLogger(__name__)


def _jitter(worker: int, key: str, scale: float) -> float:
    """Deterministic offset in [-scale, scale] from (worker, key)."""
    digest = hashlib.sha256(f"{worker}:{key}".encode()).digest()
    return (int.from_bytes(digest[:4], "big") / 0xFFFFFFFF * 2 - 1) * scale


def simulated_answer(task_input: dict[str, Any], schema: LabelSchema, worker: int,
                     storage: Storage | None = None, *, jitter: float = 0.08) -> dict[str, Any]:
    """A plausible, schema-valid SegmentationAnswer (as JSON) built from the task's pre-segments."""
    pre = task_input.get("pre-segments")
    if pre is None and task_input.get("sidecar-ref") and storage is not None:
        try:
            pre = storage.read_json(task_input["sidecar-ref"]).get("pre-segments")
        except Exception:  # unreadable sidecar (no --mirror, no credentials): start from scratch
            log.warning("sidecar of %s unreadable; simulating without pre-segments",
                        task_input.get("interaction-id"))
            pre = None
    pre = pre or []
    ends = [float(p["end"]) for p in pre]
    duration = float(task_input.get("duration-seconds") or max(ends, default=0.0) or 1.0)

    tracks: dict[tuple[str, str], str] = {}
    segments = []
    for p in pre:
        category = schema.track(p.get("track", ""))
        if category is None:
            category = schema.tracks[0]
        label = p.get("label") if p.get("label") in category.labels else category.labels[0]
        key = (category.name, label)
        tracks.setdefault(key, f"t{len(tracks) + 1}")
        start = max(0.0, float(p["start"]) + _jitter(worker, f"{p['id']}:s", jitter))
        end = min(duration, float(p["end"]) + _jitter(worker, f"{p['id']}:e", jitter))
        if end - start < 0.05:
            start, end = float(p["start"]), float(p["end"])
        segments.append({"id": f"w{worker}-{p['id']}", "track": tracks[key], "start": round(start, TIME_DECIMALS),
                         "end": round(end, TIME_DECIMALS), "text": p.get("text", ""), "presegmentId": p["id"],
                         "attributes": _field_values(schema.segment_fields, worker)})
    if not segments:  # nothing to start from: one segment over the first second
        category = schema.tracks[0]
        tracks[(category.name, category.labels[0])] = "t1"
        segments.append({"id": f"w{worker}-1", "track": "t1", "start": 0.0, "end": min(duration, 1.0),
                         "text": "", "attributes": _field_values(schema.segment_fields, worker)})
    if schema.segment_text.enabled and schema.segment_text.required:
        for seg in segments:
            seg["text"] = seg["text"] or "(simulated)"
    content = _field_values(schema.content_fields, worker)
    # Like the worker UI: a text field pre-filled with a model's answer (pre-content) starts from it, the
    # worker corrects it, and the answer says what it started from.
    prefill = {}
    given = task_input.get("pre-content")
    for spec in schema.content_fields if isinstance(given, dict) else []:
        pre_field = given.get(spec.name)
        if spec.type == "text" and isinstance(pre_field, dict) and isinstance(pre_field.get("value"), str) \
                and isinstance(pre_field.get("model_id"), str):
            content[spec.name] = pre_field["value"].rstrip(". ") + " (checked by a reviewer)."
            prefill[spec.name] = {"value": pre_field["value"], "modelId": pre_field["model_id"],
                                  "recordId": pre_field.get("record_id")}
    answer = {
        "schemaVersion": "1.0",
        "labelSchema": schema.name,
        "interactionId": task_input.get("interaction-id"),
        "mediaDuration": duration,
        "tracks": [{"id": tid, "category": c, "label": lab} for (c, lab), tid in tracks.items()],
        "segments": segments,
        "content": content,
    }
    if prefill:
        answer["prefill"] = prefill
    return answer


def _field_values(specs: list, worker: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.type == "single_choice":
            values[spec.name] = spec.options[0]
        elif spec.type == "multiple_choice":
            values[spec.name] = [spec.options[0]]
        elif spec.type == "boolean":
            values[spec.name] = False
        elif spec.type == "rating":
            values[spec.name] = min(spec.max, (spec.min + spec.max) // 2 + worker % 2)
        elif spec.required:
            values[spec.name] = "Simulated answer."
    return values


def simulated_answer_content(task_input: dict[str, Any], schema: LabelSchema, worker: int,
                             storage: Storage | None = None) -> dict[str, Any]:
    """crowd-form `answerContent` as our template posts it: the JSON answer + `content-*` copies."""
    answer = simulated_answer(task_input, schema, worker, storage)
    content: dict[str, Any] = {ANSWER_FIELD: json.dumps(answer, separators=(",", ":"))}
    for name, value in answer["content"].items():
        content[f"{CONTENT_FIELD_PREFIX}{name}"] = value if isinstance(value, str) else json.dumps(value)
    return content


def simulate(source: TaskSource, workers: int, *, names: list[str] | None = None,
             max_submission_bytes: int | None = None) -> int:
    """N simulated workers answer every open task through the portal's HTTP endpoints."""
    from toolkit.service.portal.app import WORKER_COOKIE, create_app, csrf_token_in

    app = create_app(source, max_submission_bytes=max_submission_bytes)
    client = app.test_client()
    # As a browser does: the page's CSRF token goes with every post (one session, one token).
    headers = {"X-CSRFToken": csrf_token_in(client.get("/login").get_data(as_text=True)) or ""}
    names = names or [f"sim-worker-{i + 1}" for i in range(workers)]
    submitted = 0
    for index, name in enumerate(names):
        client.set_cookie(WORKER_COOKIE, name)
        while True:
            resp = client.get("/next")
            if resp.status_code != 302:
                break  # the "nothing left" page
            task_id = resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
            content = simulated_answer_content(source.task_input(task_id), source.schema, index + 1,
                                               source.storage)
            accepted = datetime.now(UTC).isoformat()
            resp = client.post(f"/task/{task_id}/submit", json={"answerContent": content, "acceptedAt": accepted},
                               headers=headers)
            if resp.status_code != 200:
                raise LocalJobError(f"simulated worker {name}: task {task_id} refused "
                                    f"(HTTP {resp.status_code}: {resp.get_json()})")
            submitted += 1
    return submitted
