"""Multi-worker consolidation: worker answers -> one ConsolidatedLabel per data object.

Pure functions (no I/O, no logging); the post-annotation Lambda, the local job and the exporter
share them. Rules:

- Only valid answers count. An answer that fails to parse or breaks the label schema is kept in
  `workers` with `valid=false` and its problems; an object with no valid answer gets
  `status="error"`.
- **Segments** are matched across workers within each track (category, label) by temporal IoU:
  greedy, highest IoU first, at most one segment per worker per cluster, a match needs
  IoU >= `iou_threshold`. Workers are added one after another; a segment is compared with each
  cluster's current median span. Unmatched segments start clusters of their own, so nothing a
  worker marked is lost (`support` says how many workers marked it; `min_support` drops weak
  clusters if you want). Boundaries: median of the members. Text: majority of the (whitespace-
  normalised) texts, else the longest; all texts kept per worker. Attributes: majority per
  attribute (ties: the value given first, in worker order) with the winning share as
  `attributeAgreement`. Segment agreement = support / valid workers x mean IoU of the members
  with the consolidated span.
- **Content fields**: ratings -> mean (agreement = 1 - mean absolute deviation / scale width);
  everything else (choices, booleans, text) -> majority with `tie=true` when the top count is
  shared (the value given first wins the tie). Agreement = top count / workers who answered.
  Field types come from the schema; without one, numbers are ratings and the rest is voted.
- **Object agreement**: `segments` = mean segment agreement, `content` = mean field agreement,
  `overall` = mean of the two that exist.
- **Cannot annotate**: when more than half the valid workers could not annotate the item (a
  schema-defined reason, no segments), `cannotAnnotate` gives the reason most of them gave (ties:
  the first in worker order), the votes per reason and their share; the rest is consolidated as
  usual from every valid answer.

`consolidate_batch()` applies this to a Ground Truth consolidation payload; it takes a callable to
read `s3Uri` answers so it stays free of AWS code.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from toolkit.contract.answer import FieldValue, SegmentationAnswer
from toolkit.contract.base import problems_from
from toolkit.contract.consolidated import (
    Agreement,
    CannotAnnotateResult,
    ConsolidatedLabel,
    ConsolidatedSegment,
    ContentResult,
    Prefill,
    WorkerAnswer,
)
from toolkit.contract.consolidated import encode as encode_label
from toolkit.contract.consolidation import response_item
from toolkit.contract.events import PayloadItem
from toolkit.contract.schema import FieldSpec, LabelSchema
from toolkit.labeling.answers import worker_answer
from toolkit.labeling.compare import candidate_systems, consolidate_comparison, order_problem
from toolkit.labeling.matching import Cluster, Member, iou, match_segments

AnswerInput = WorkerAnswer | tuple[str, SegmentationAnswer | Exception | dict | str]
ROUND = 3  # seconds and scores are rounded to milliseconds / 0.001 in the output


# -- entry points ------------------------------------------------------------------------------
def consolidate(
    answers: Iterable[AnswerInput],
    schema: LabelSchema | None = None,
    *,
    iou_threshold: float = 0.5,
    min_support: int = 1,
    media_duration: float | None = None,
    interaction_id: str | None = None,
    data_object: dict[str, Any] | None = None,
) -> ConsolidatedLabel:
    """Consolidate the answers of one data object.

    `answers` items are `WorkerAnswer`s (already parsed/validated, e.g. by
    `toolkit.labeling.answers.worker_answer`) or `(worker_id, x)` tuples where x is a SegmentationAnswer
    (validated against `schema` here), an Exception (the parse error, recorded as invalid) or the
    raw answer content (dict/JSON string, parsed here). `media_duration` / `interaction_id` only
    fill in answers that lack them (aws-samples format); by default they come from `data_object`
    (the manifest line: `duration-seconds`, `interaction-id`) when one is given.
    """
    if data_object:
        if media_duration is None and isinstance(data_object.get("duration-seconds"), int | float):
            media_duration = float(data_object["duration-seconds"])
        if interaction_id is None and isinstance(data_object.get("interaction-id"), str):
            interaction_id = data_object["interaction-id"]
    workers = [_as_worker_answer(a, schema, media_duration, interaction_id) for a in answers]
    systems = candidate_systems(data_object)
    for i, w in enumerate(workers):
        problem = order_problem(w, systems) if w.valid else None
        if problem:
            workers[i] = w.model_copy(update={"valid": False, "problems": [problem]})
    valid = [w for w in workers if w.valid and w.answer is not None]
    label = ConsolidatedLabel(
        label_schema=schema.name if schema else None,
        worker_count=len(workers),
        valid_worker_count=len(valid),
        workers=workers,
    )
    if not valid:
        label.status = "error"
        label.error = (f"no valid worker answers ({len(workers)} received)" if workers
                       else "no worker answers")
        label.interaction_id = interaction_id
        label.media_duration = media_duration
        return label

    label.label_schema = label.label_schema or _majority_plain([w.answer.label_schema for w in valid])
    label.interaction_id = _majority_plain([w.answer.interaction_id for w in valid]) or interaction_id
    label.media_duration = round(statistics.median(w.answer.media_duration for w in valid), ROUND)
    label.segments = consolidate_segments(valid, schema, iou_threshold=iou_threshold, min_support=min_support)
    label.content = consolidate_content(valid, schema)
    attach_prefills(label, valid, data_object)

    label.comparison = consolidate_comparison(valid, systems, iou_threshold=iou_threshold)

    seg_scores = [s.agreement for s in label.segments]
    content_scores = [c.agreement for c in label.content.values()]
    seg_agreement = _mean(seg_scores)
    content_agreement = _mean(content_scores)
    comparison_agreement = label.comparison.agreement if label.comparison else None
    parts = [x for x in (seg_agreement, content_agreement, comparison_agreement) if x is not None]
    label.agreement = Agreement(segments=seg_agreement, content=content_agreement,
                                comparison=comparison_agreement, overall=_mean(parts))
    label.cannot_annotate = consolidate_cannot_annotate(valid)
    return label


def attach_prefills(label: ConsolidatedLabel, valid: Sequence[WorkerAnswer],
                    data_object: dict[str, Any] | None) -> None:
    """Keep the model text a field was pre-filled with beside the workers' result, so the label holds both
    texts: what the model said and what people made of it. From the manifest line's `pre-content` when
    the caller has the line, else from the answers (the worker UI sends the pre-fill back): the most
    common one."""
    pre = (data_object or {}).get("pre-content")
    pre = pre if isinstance(pre, dict) else {}
    for name, result in label.content.items():
        given = pre.get(name)
        if isinstance(given, dict) and isinstance(given.get("value"), str) and isinstance(given.get("model_id"), str):
            result.prefill = Prefill(value=given["value"], model_id=given["model_id"],
                                     record_id=given.get("record_id"), system=str(given.get("system") or ""),
                                     prompt=str(given.get("prompt") or ""),
                                     params=given.get("params") if isinstance(given.get("params"), dict) else {})
            continue
        sent = [w.answer.prefill[name] for w in valid if w.answer is not None and name in w.answer.prefill]
        if sent:
            top = Counter((p.value, p.model_id, p.record_id) for p in sent).most_common(1)[0][0]
            result.prefill = Prefill(value=top[0], model_id=top[1], record_id=top[2])


def consolidate_cannot_annotate(valid: Sequence[WorkerAnswer]) -> CannotAnnotateResult | None:
    """The majority's reason, when more than half the valid workers could not annotate the item."""
    reasons = [w.answer.cannot_annotate.reason for w in valid if w.answer and w.answer.cannot_annotate]
    if not valid or len(reasons) * 2 <= len(valid):
        return None
    votes = _count(reasons)
    return CannotAnnotateResult(reason=_majority_plain(reasons), votes=votes,
                                share=round(len(reasons) / len(valid), ROUND))


def _as_worker_answer(item: AnswerInput, schema: LabelSchema | None, media_duration: float | None,
                      interaction_id: str | None) -> WorkerAnswer:
    if isinstance(item, WorkerAnswer):
        return item
    worker_id, value = item
    if isinstance(value, ValidationError):
        problems = [str(p) for p in problems_from(value, root="(answer)")]
        return WorkerAnswer(worker_id=worker_id, valid=False, problems=problems)
    if isinstance(value, Exception):
        return WorkerAnswer(worker_id=worker_id, valid=False, problems=[str(value) or type(value).__name__])
    return worker_answer(worker_id, value, schema=schema, media_duration=media_duration,
                         interaction_id=interaction_id)


# -- segments ------------------------------------------------------------------------------------
def _group_segments(valid: Sequence[WorkerAnswer]) -> dict[tuple[str, str], dict[str, list[Member]]]:
    """(category, label) -> worker -> that worker's segments on such tracks, sorted by start."""
    groups: dict[tuple[str, str], dict[str, list[Member]]] = {}
    for w in valid:
        answer = w.answer
        tracks = {t.id: (t.category, t.label) for t in answer.tracks}
        for seg in answer.segments:
            key = tracks[seg.track]
            groups.setdefault(key, {}).setdefault(w.worker_id, []).append(
                Member(w.worker_id, seg.start, seg.end, seg.text, seg.attributes, seg.presegment_id))
    for per_worker in groups.values():
        for members in per_worker.values():
            members.sort(key=lambda m: (m.start, m.end))
    return groups


def consolidate_segments(
    valid: Sequence[WorkerAnswer],
    schema: LabelSchema | None = None,
    *,
    iou_threshold: float = 0.5,
    min_support: int = 1,
) -> list[ConsolidatedSegment]:
    n_valid = len(valid)
    out: list[tuple[float, float, str, str, Cluster]] = []
    for (category, label), per_worker in _group_segments(valid).items():
        for cluster in match_segments(per_worker, iou_threshold):
            if len(cluster.members) >= min_support:
                out.append((cluster.start, cluster.end, category, label, cluster))
    out.sort(key=lambda x: (x[0], x[1], x[2], x[3]))
    segments = []
    for index, (start, end, category, label, cluster) in enumerate(out, start=1):
        members = cluster.members
        support = len(members)
        mean_iou = sum(iou(m.start, m.end, start, end) for m in members) / support
        # Fields and text a schema does not ask on this track category are not consolidated (the
        # post-annotation validation has refused answers that carry them).
        takes_text = schema is None or schema.text_applies(category)
        texts = {m.worker: m.text for m in members} if takes_text else {}
        attributes, attribute_agreement = _vote_attributes(members, schema, category)
        segments.append(ConsolidatedSegment.model_construct(
            id=f"seg-{index:04d}",
            category=category,
            label=label,
            start=round(start, ROUND),
            end=round(end, ROUND),
            text=choose_text([m.text for m in members]) if takes_text else "",
            texts=texts,
            attributes=attributes,
            attribute_agreement=attribute_agreement,
            support=support,
            agreement=round(min(1.0, support / n_valid * mean_iou), ROUND),
            presegment_id=_majority_plain([m.presegment_id for m in members]),
        ))
    return segments


_SPACES = re.compile(r"\s+")


def choose_text(texts: Sequence[str]) -> str:
    """Majority of the whitespace-normalised texts; without a strict majority winner, the longest."""
    normalised = [_SPACES.sub(" ", t).strip() for t in texts]
    non_empty = [t for t in normalised if t]
    if not non_empty:
        return ""
    counts: dict[str, int] = {}
    for t in non_empty:
        counts[t] = counts.get(t, 0) + 1
    top = max(counts.values())
    winners = [t for t, c in counts.items() if c == top]
    if top > 1 and len(winners) == 1:
        return winners[0]
    return max(non_empty, key=len)


def _vote_attributes(members: list[Member], schema: LabelSchema | None, category: str | None = None
                     ) -> tuple[dict[str, FieldValue], dict[str, float]]:
    asked = {f.name for f in schema.fields_for(category)} if schema is not None and category else None
    names: list[str] = []
    for m in members:
        for name in m.attributes:
            if name not in names and (asked is None or name in asked or schema.segment_field(name) is None):
                names.append(name)
    values: dict[str, FieldValue] = {}
    agreement: dict[str, float] = {}
    for name in names:
        given = [m.attributes.get(name) for m in members]
        given = [v for v in given if not _empty(v)]
        if not given:
            continue
        winner, top, _tie, _votes = _vote(given)
        values[name] = winner
        agreement[name] = round(top / len(members), ROUND)
    return values, agreement


# -- content fields ------------------------------------------------------------------------------
def consolidate_content(valid: Sequence[WorkerAnswer], schema: LabelSchema | None = None
                        ) -> dict[str, ContentResult]:
    names: list[str] = [f.name for f in schema.content_fields] if schema else []
    for w in valid:
        for name in w.answer.content:
            if name not in names:
                names.append(name)
    results: dict[str, ContentResult] = {}
    for name in names:
        per_worker = {w.worker_id: w.answer.content.get(name) for w in valid}
        answered = {k: v for k, v in per_worker.items() if not _empty(v)}
        if not answered:
            continue
        spec = schema.content_field(name) if schema else None
        results[name] = _content_result(answered, spec)
    return results


def _content_result(answered: dict[str, FieldValue], spec: FieldSpec | None) -> ContentResult:
    values = list(answered.values())
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    # A rating field whose values are not all numbers (schema-less input) falls back to voting.
    if numeric and (spec is None or spec.type == "rating"):
        mean = sum(values) / len(values)  # type: ignore[arg-type]
        lo, hi = (spec.min, spec.max) if spec else (min(values), max(values))  # type: ignore[type-var]
        width = (hi - lo) or 1
        mad = sum(abs(v - mean) for v in values) / len(values)  # type: ignore[operator]
        return ContentResult.model_construct(
            value=round(mean, ROUND), mean=round(mean, ROUND), tie=False,
            agreement=round(max(0.0, 1 - mad / width), ROUND), votes=_count(values), values=answered)
    winner, top, tie, votes = _vote(values)
    return ContentResult.model_construct(value=winner, agreement=round(top / len(values), ROUND), tie=tie,
                                         votes=votes, mean=None, values=answered)


# -- voting helpers ------------------------------------------------------------------------------
def _key(value: FieldValue) -> str:
    """Vote key: strings as-is, lists as sorted JSON (order of ticked boxes does not matter)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return json.dumps(sorted(value), ensure_ascii=False)
    return json.dumps(value)


def _count(values: list[FieldValue]) -> dict[str, int]:
    votes: dict[str, int] = {}
    for v in values:
        k = _key(v)
        votes[k] = votes.get(k, 0) + 1
    return votes


def _vote(values: list[FieldValue]) -> tuple[FieldValue, int, bool, dict[str, int]]:
    """(winner, its count, tie?, votes per key). Ties go to the value given first."""
    votes: dict[str, int] = {}
    first: dict[str, FieldValue] = {}
    for v in values:
        k = _key(v)
        votes[k] = votes.get(k, 0) + 1
        first.setdefault(k, sorted(v) if isinstance(v, list) else v)
    top = max(votes.values())
    winners = [k for k, c in votes.items() if c == top]  # dict order = first-given order
    return first[winners[0]], top, len(winners) > 1, votes


def _majority_plain(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    counts: dict[Any, int] = {}
    for v in present:
        counts[v] = counts.get(v, 0) + 1
    return max(counts, key=lambda k: counts[k])


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), ROUND) if values else None


# -- a Ground Truth consolidation payload ----------------------------------------------------------
@dataclass
class BatchStats:
    """Counts and ids only: safe to log."""

    objects: int = 0
    ok: int = 0
    errors: int = 0
    answers: int = 0
    invalid_answers: int = 0
    error_object_ids: list[str] = field(default_factory=list)
    invalid_answer_object_ids: list[str] = field(default_factory=list)


def payload_items(payload: Iterable[Any], read_text: Callable[[str], str]
                  ) -> Iterator[tuple[str, PayloadItem | None, str | None, list[AnswerInput]]]:
    """Each item of a post-annotation payload: (its datasetObjectId, the parsed item, the error when it does not parse,
    (worker id, answer content) per annotation; an unreadable `s3Uri` gives an exception as content,
    which excludes that answer only). An item without an id raises ValueError: Ground Truth could not
    match a response to it anyway."""
    for index, raw_item in enumerate(payload):
        object_id = str(raw_item.get("datasetObjectId")) if isinstance(raw_item, dict) else None
        if object_id in (None, "None"):
            raise ValueError(f"payload item {index} has no datasetObjectId")
        try:
            item = PayloadItem.model_validate(raw_item)
        except ValidationError as exc:
            problems = "; ".join(map(str, problems_from(exc, root="(answer)")))
            yield object_id, None, "malformed payload item: " + problems, []
            continue
        items: list[AnswerInput] = []
        for annotation in item.annotations:
            data = annotation.annotation_data
            content: Any
            if data.content is not None:
                content = data.content
            else:
                try:
                    content = read_text(data.s3_uri)  # type: ignore[arg-type]
                except Exception as exc:  # any read failure excludes this answer only
                    content = RuntimeError(f"could not read annotationData.s3Uri: {type(exc).__name__}")
            items.append((annotation.worker_id, content))
        yield object_id, item, None, items


def consolidate_batch(
    payload: Iterable[dict[str, Any]],
    *,
    label_attribute: str,
    read_text: Callable[[str], str],
    schema: LabelSchema | None = None,
    iou_threshold: float = 0.5,
) -> tuple[list[dict[str, Any]], BatchStats]:
    """The post-annotation Lambda's work, minus AWS: payload items -> response list (one per item).

    `read_text(uri)` returns the text of an `annotationData.s3Uri`. A malformed item (no id) still
    gets an entry when it has an id; one that cannot even be identified raises ValueError, because
    Ground Truth could not match a response to it anyway.
    """
    responses: list[dict[str, Any]] = []
    stats = BatchStats()
    for object_id, _item, error, items in payload_items(payload, read_text):
        stats.objects += 1
        if error is not None:
            label = ConsolidatedLabel(status="error", error=error)
        else:
            try:
                label = consolidate(items, schema, iou_threshold=iou_threshold)
            except Exception as exc:  # one object that breaks consolidation must not fail the batch
                label = ConsolidatedLabel(status="error", error=f"could not consolidate: {type(exc).__name__}",
                                          worker_count=len(items))
        stats.answers += label.worker_count
        invalid = label.worker_count - label.valid_worker_count
        stats.invalid_answers += invalid
        if invalid:
            stats.invalid_answer_object_ids.append(object_id)
        if label.status == "ok":
            stats.ok += 1
        else:
            stats.errors += 1
            stats.error_object_ids.append(object_id)
        responses.append(response_item(object_id, label_attribute, label))
    return responses, stats


# Lambda caps a synchronous response at 6 MB; leave room for the envelope.
MAX_RESPONSE_BYTES = 5_500_000


def fit_response(responses: list[dict[str, Any]], max_bytes: int = MAX_RESPONSE_BYTES) -> int:
    """Keep a post-annotation response under Lambda's size limit. Returns how many objects were trimmed.

    The audit copies of the workers' answers are by far the bulkiest part of a label and Ground Truth
    already stores every submission under annotations/worker-response/, so they go first: from the
    largest objects down, `workers[].answer`/`raw` are dropped and `answerOmitted` is set. Segments,
    content and agreement are never touched.
    """
    # Measured as the Python runtime serialises it (json.dumps: ASCII-escaped, ", " separators).
    sizes = [len(json.dumps(r)) for r in responses]
    total = sum(sizes) + 2 * len(responses) + 2  # brackets and ", " separators, rounded up
    trimmed = 0
    for index in sorted(range(len(responses)), key=sizes.__getitem__, reverse=True):
        if total <= max_bytes:
            break
        for label in responses[index]["consolidatedAnnotation"]["content"].values():
            for worker in label.get("workers", []):
                worker.pop("answer", None)
                worker.pop("raw", None)
                worker["answerOmitted"] = True
        new_size = len(json.dumps(responses[index]))
        total -= sizes[index] - new_size
        sizes[index] = new_size
        trimmed += 1
    return trimmed


# The label under the label attribute, as JSON: the label codec's `encode` (kept under this name for callers).
label_json = encode_label


__all__ = [
    "BatchStats",
    "choose_text",
    "consolidate",
    "consolidate_batch",
    "consolidate_content",
    "consolidate_segments",
    "fit_response",
    "iou",
    "label_json",
    "match_segments",
]
