"""`gtkit report --workers`: per-worker quality from a job's output layout (Ground Truth's or ours).

Reads `<root>/annotations/worker-response/iteration-*/<datasetObjectId>/*.json` and the manifest
(`<root>/manifests/output/output.manifest` by default, or the input manifest: datasetObjectId is the
0-based line, as Ground Truth numbers objects), then per worker:

- **gold**: their answers on objects whose line carries `gold-answer`, scored with
  `toolkit.labeling.quality` (segment P/R/F1 at IoU >= 0.5 per track, boundary error, label and
  content accuracy), summed over the gold objects before the ratios are taken;
- **agreement with peers**: mean over their objects of `quality.peer_agreement`;
- **time**: acceptance -> submission per task (`timeSpentInSeconds` when the times are missing),
  its ratio to the media duration, and tasks per hour of working time (the union of their task
  intervals, so tasks held in parallel are not counted twice);
- **rejection rate in review** (with `review=`, a review job's output manifest or layout root): of
  the objects they answered that a reviewer judged, the share rejected. An object's annotators are
  the workers of the prior label on the review line, else (the label left out for size) the workers
  who answered the object with that interaction id in this job.

Worker ids are replaced by a keyed hash (HMAC-SHA256 of the id under `id_key`: the same key gives the
same pseudonym in every report) unless `real_ids=True`. Nothing here logs; the report shows figures
only, never answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from toolkit.contract import LabelSchema, SegmentationAnswer, worker_report, worker_response
from toolkit.contract.answer import validate_answer
from toolkit.contract.base import problems_from
from toolkit.contract.manifest import GOLD_ANSWER_KEY
from toolkit.contract.worker_response import parse_gt_time
from toolkit.errors import GtkitError
from toolkit.export.report import CSS, bar_chart, esc, table
from toolkit.labeling.answers import worker_answer
from toolkit.labeling.output_layout import JobLayout, responses_by_object
from toolkit.labeling.quality import Counts, gold_score, object_peer_agreement
from toolkit.storage import Storage
from toolkit.storage.store import join_uri
from toolkit.task.task_input import iter_data_objects

REPORT_VERSION = worker_report.WORKER_REPORT_VERSION


class WorkerReportError(GtkitError, ValueError):
    """Input the worker report cannot use; the message names the file, line or object and the field."""


def pseudonym(worker_id: str, key: bytes) -> str:
    """A stable keyed pseudonym: `w-` and 12 hex digits of HMAC-SHA256(key, worker id)."""
    return "w-" + hmac.new(key, worker_id.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def _union_seconds(spans: Iterable[tuple[datetime, datetime]]) -> float:
    total, end = 0.0, None
    for s, e in sorted(spans):
        if end is not None and e <= end:
            continue
        start = s if end is None or s > end else end
        total += (e - start).total_seconds()
        end = e
    return total


@dataclass
class WorkerStats:
    tasks: int = 0
    invalid: int = 0
    gold_tasks: int = 0
    gold: Counts = field(default_factory=Counts)
    gold_tracks: defaultdict = field(default_factory=lambda: defaultdict(Counts))
    peer: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    realtime: list[float] = field(default_factory=list)   # task seconds / media seconds
    spans: list[tuple[datetime, datetime]] = field(default_factory=list)
    reviewed: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None, d: int = 3) -> float | None:
            return None if x is None else round(x, d)
        worked = _union_seconds(self.spans)
        timed = len(self.spans)
        return {
            "tasks": self.tasks, "invalid_answers": self.invalid, "gold_tasks": self.gold_tasks,
            "gold": self.gold.scores() if self.gold_tasks else None,
            "gold_per_track": {c: v.scores() for c, v in sorted(self.gold_tracks.items())} if self.gold_tasks else {},
            "peer_agreement": r(statistics.fmean(self.peer)) if self.peer else None,
            "peer_objects": len(self.peer),
            "seconds_per_task": r(statistics.median(self.seconds), 1) if self.seconds else None,
            "time_to_media_ratio": r(statistics.median(self.realtime), 2) if self.realtime else None,
            "tasks_per_hour": r(timed / worked * 3600, 1) if worked > 0 else None,
            "reviewed_tasks": self.reviewed,
            "review_rejection_rate": r(self.rejected / self.reviewed) if self.reviewed else None,
        }


@dataclass
class WorkerReport:
    root: str
    objects: int = 0
    gold_objects: int = 0
    answers: int = 0
    reviewed_objects: int = 0
    real_ids: bool = False
    workers: dict[str, WorkerStats] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # unreadable files (where and why, never content)

    def as_dict(self) -> dict[str, Any]:
        return {"version": REPORT_VERSION, "root": self.root, "objects": self.objects,
                "gold_objects": self.gold_objects, "answers": self.answers,
                "reviewed_objects": self.reviewed_objects,
                "worker_ids": "real" if self.real_ids else "pseudonymized",
                "workers": [{"worker": w, **s.as_dict()} for w, s in sorted(self.workers.items())],
                "problems": self.problems}


def _manifest_info(storage: Storage, manifest: str, schema: LabelSchema | None,
                   interactions: dict[str, str] | None = None
                   ) -> tuple[dict[str, SegmentationAnswer], dict[str, float], int]:
    """(object id -> gold answer, object id -> media seconds, line count), streaming the manifest.
    `interactions` gets interaction id -> object id."""
    gold: dict[str, SegmentationAnswer] = {}
    durations: dict[str, float] = {}
    count = 0
    for object_id, number, line in iter_data_objects(manifest, storage):
        count += 1
        if not isinstance(line, dict):
            continue
        if interactions is not None and isinstance(line.get("interaction-id"), str):
            interactions.setdefault(line["interaction-id"], object_id)
        if isinstance(line.get("duration-seconds"), int | float) and line["duration-seconds"] > 0:
            durations[object_id] = float(line["duration-seconds"])
        if GOLD_ANSWER_KEY not in line:
            continue
        try:
            answer = SegmentationAnswer.model_validate(line[GOLD_ANSWER_KEY])
        except ValidationError as exc:
            where = "; ".join(str(p) for p in problems_from(exc, root=GOLD_ANSWER_KEY)[:3])
            raise WorkerReportError(f"{manifest} line {number}: invalid {GOLD_ANSWER_KEY}: {where}") from None
        if schema is not None:
            bad = validate_answer(answer, schema)
            if bad:
                raise WorkerReportError(f"{manifest} line {number}: {GOLD_ANSWER_KEY}.{bad[0].path}: {bad[0].message}")
        gold[object_id] = answer
        durations.setdefault(object_id, answer.media_duration)
    return gold, durations, count


def collect_workers(storage: Storage, root: str, *, manifest: str | None = None, schema: LabelSchema | None = None,
                    id_key: bytes | None = None, real_ids: bool = False,
                    rating_tolerance: float = 0.0, review: str | None = None) -> WorkerReport:
    """Per-worker figures of the job whose output layout is at `root` (see the module doc)."""
    layout = JobLayout.of_root(root)
    manifest = manifest or layout.output_manifest
    if not storage.exists(manifest):
        raise WorkerReportError(f"{manifest}: no manifest (pass --manifest, the job's input manifest)")
    interactions: dict[str, str] = {}
    answered: dict[str, set[str]] = {}  # object id -> workers who answered it
    gold, durations, count = _manifest_info(storage, manifest, schema, interactions)
    responses = responses_by_object(storage, root)
    if not responses:
        raise WorkerReportError(f"{layout.worker_responses}: no worker-response files")
    key = id_key if id_key is not None else secrets.token_bytes(32)
    report = WorkerReport(root=root, objects=count, gold_objects=len(gold), real_ids=real_ids)

    def name(worker_id: str) -> str:
        return worker_id if real_ids else pseudonym(worker_id, key)

    for object_id in sorted(responses, key=lambda k: (len(k), k)):
        valid: dict[str, SegmentationAnswer] = {}
        seen: set[str] = set()
        for uri in responses[object_id]:
            try:
                items = worker_response.decode(storage.read_bytes(uri), uri)
            except ValueError as exc:  # UnreadableResponse or not UTF-8: reported, not counted
                report.problems.append(f"{uri}: {type(exc).__name__}")
                continue
            for item in items:
                if item.worker_id in seen:  # a worker's second answer to one object (a later iteration)
                    continue
                seen.add(item.worker_id)
                answered.setdefault(object_id, set()).add(item.worker_id)
                report.answers += 1
                stats = report.workers.setdefault(name(item.worker_id), WorkerStats())
                stats.tasks += 1
                _time(stats, item, durations.get(object_id))
                parsed = worker_answer(item.worker_id, item.answer_content, schema=schema,
                                       media_duration=durations.get(object_id))
                if not parsed.valid or parsed.answer is None:
                    stats.invalid += 1
                    continue
                valid[item.worker_id] = parsed.answer
        for worker_id, score in object_peer_agreement(valid, rating_tolerance=rating_tolerance).items():
            report.workers[name(worker_id)].peer.append(score)
        if object_id in gold:
            for worker_id, answer in valid.items():
                stats = report.workers[name(worker_id)]
                result = gold_score(answer, gold[object_id], rating_tolerance=rating_tolerance)
                stats.gold_tasks += 1
                stats.gold.add(result.total)
                for category, counts in result.tracks.items():
                    stats.gold_tracks[category].add(counts)
    if review:
        _review_outcomes(storage, review, report, name, interactions, answered)
    return report


def _review_outcomes(storage: Storage, review: str, report: WorkerReport, name: Any,
                     interactions: dict[str, str], answered: dict[str, set[str]]) -> None:
    """Count, per annotator, the reviewed and the rejected objects of a review job's output."""
    from toolkit.export.reader import find_label_attribute
    from toolkit.export.review import reviewed_of

    uri = review if review.endswith(".manifest") else join_uri(review, "manifests", "output", "output.manifest")
    if not storage.exists(uri):
        raise WorkerReportError(f"{uri}: no review output manifest")
    for number, text in storage.iter_lines(uri):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            raise WorkerReportError(f"{uri} line {number}: not JSON") from None
        if not isinstance(line, dict):
            continue
        reviewed = reviewed_of(line)
        if reviewed is None or reviewed.status != "ok" or reviewed.decision is None:
            continue
        prior_attr = (line.get("review") or {}).get("label-attribute") if isinstance(line.get("review"), dict) \
            else find_label_attribute(line)
        prior = line.get(prior_attr) if prior_attr else None
        workers = {w.get("workerId") for w in prior.get("workers") or [] if isinstance(w, dict)} \
            if isinstance(prior, dict) else set()
        workers.discard(None)
        if not workers:
            workers = answered.get(interactions.get(str(line.get("interaction-id")), ""), set())
        if not workers:
            continue
        report.reviewed_objects += 1
        for worker_id in workers:
            stats = report.workers.setdefault(name(worker_id), WorkerStats())
            stats.reviewed += 1
            stats.rejected += reviewed.decision == "reject"


def _time(stats: WorkerStats, item: Any, media_seconds: float | None) -> None:
    accepted, submitted = parse_gt_time(item.acceptance_time), parse_gt_time(item.submission_time)
    seconds: float | None = None
    if accepted and submitted and submitted >= accepted:
        seconds = (submitted - accepted).total_seconds()
        stats.spans.append((accepted, submitted))
    elif item.time_spent_in_seconds is not None:
        seconds = item.time_spent_in_seconds
    if seconds is None:
        return
    stats.seconds.append(seconds)
    if media_seconds:
        stats.realtime.append(seconds / media_seconds)


# -- rendering -----------------------------------------------------------------------------------
COLUMNS = [("worker", "Worker"), ("tasks", "Tasks"), ("gold_tasks", "Gold tasks"), ("f1", "Gold F1"),
           ("boundary_error_ms", "Boundary error (ms)"), ("label_accuracy", "Label accuracy"),
           ("content_accuracy", "Content accuracy"), ("peer_agreement", "Agreement with peers"),
           ("seconds_per_task", "Median s / task"), ("time_to_media_ratio", "Time / media"),
           ("tasks_per_hour", "Tasks / hour"), ("invalid_answers", "Invalid answers"),
           ("review_rejection_rate", "Rejected in review")]


def table_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per worker (COLUMNS keys) of `WorkerReport.as_dict()`: the HTML report's and the admin page's."""
    gold_keys = ("f1", "boundary_error_ms", "label_accuracy", "content_accuracy")
    return [{k: ((w.get("gold") or {}).get(k) if k in gold_keys else w.get(k)) for k, _ in COLUMNS}
            for w in data["workers"]]


# (row key, chart title, unit after each value, decimals shown): the figures that compare workers
CHARTS = [("f1", "Gold F1 per worker", "", 3), ("peer_agreement", "Agreement with peers", "", 3),
          ("tasks_per_hour", "Tasks per hour", "", 1),
          ("time_to_media_ratio", "Time per task relative to media duration (median)", " ×", 2),
          ("review_rejection_rate", "Rejected in review", "", 3)]


def charts(rows: list[dict[str, Any]]) -> list[str]:
    """Inline SVG bar charts (escaped text; no script, no style attribute: they render under the service's
    Content-Security-Policy) of the figures that compare workers. A figure no worker has is left out, except
    the first three, which say "No data." rather than vanish."""
    out = []
    for i, (key, title, unit, digits) in enumerate(CHARTS):
        values = [(r["worker"], r[key]) for r in rows if r[key] is not None]
        if values or i < 3:
            out.append(bar_chart(title, values, unit=unit, digits=digits))
    return out


def render_workers_html(data: dict[str, Any], title: str) -> str:
    rows = table_rows(data)
    head = "".join(f"<th>{esc(label)}</th>" for _, label in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{esc('–' if r[k] is None else r[k])}</td>" for k, _ in COLUMNS) + "</tr>"
                   for r in rows)
    overview = [("Data objects", data["objects"]), ("Gold objects", data["gold_objects"]),
                ("Answers", data["answers"]), ("Reviewed objects", data.get("reviewed_objects", 0)),
                ("Workers", len(rows)), ("Worker ids", data["worker_ids"]),
                ("Unreadable files", len(data["problems"]))]
    body_html = "\n".join([f"<h1>{esc(title)}</h1>", "<h2>Overview</h2>", table(overview), "<h2>Workers</h2>",
                           f"<table class=workers><tr>{head}</tr>{body}</table>", "<h2>Charts</h2>",
                           "<div class=worker-charts>", *charts(rows), "</div>"])
    return (f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}"
            f".workers th,.workers td{{border-bottom:1px solid #e4e7eb}}</style></head>"
            f"<body>\n{body_html}\n</body></html>\n")


def write_worker_report(storage: Storage, report: WorkerReport, out: str | None, json_out: str | None,
                        title: str | None = None) -> dict[str, Any]:
    data = report.as_dict()
    if out:
        page = render_workers_html(data, title or f"Worker report: {report.root.rstrip('/').rsplit('/', 1)[-1]}")
        storage.write_bytes(out, page.encode("utf-8"), content_type="text/html; charset=utf-8")
    if json_out:
        storage.write_bytes(json_out, worker_report.encode(data), content_type="application/json")
    return data


__all__ = ["CHARTS", "COLUMNS", "WorkerReport", "WorkerReportError", "charts", "collect_workers", "pseudonym",
           "render_workers_html", "table_rows", "write_worker_report"]
