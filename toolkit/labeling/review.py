"""The review round's pure functions (no I/O): what a review task shows and what a review produced.

- `disagreements(label)`: what the workers disagree on, most severe first (lowest score, then the
  kind order of DISAGREEMENT_KINDS, then time). Thresholds are parameters (defaults below).
- `consolidated_to_answer(label)`: the prior label as a SegmentationAnswer, the reviewer's editable
  starting point. Segment ids are the consolidated ids and each segment's `presegmentId` is its
  consolidated id too, so the reviewer's answer names the segment it started from.
- `review_input(...)`: the `review` key of a review task (worker ids replaced by w1, w2, ...).
- `review_changes(prior, answer)`: the change list. A reviewer's segment is the prior segment its
  `presegmentId` names; the rest are matched by temporal IoU (labeling/matching.py, greedy, highest
  first, any track), and what is left is added (reviewer's) or removed (prior's).
- `reviewed_label(prior, reviewer, answer)`: the review job's label. The decision is recomputed:
  reject stays reject; otherwise no change means accept, any change edit (the UI's accept vs edit
  is never trusted).
- `combine_reviews(prior, reviews)`: several reviewers of one object. Rule: any reject wins (a
  doubt from one reviewer is enough to send the object back; the notes are joined in submission
  order); else the first submitted edit (an edit is deliberate work, and later edits of the same
  object are usually the same fix; they stay in `reviewers`); else accept.

Reviewed labels are adjudicated: their segments and content fields have agreement 1.0, `support`
says how many workers had marked a kept segment (1 for one the reviewer added), and `workers` is
empty (the workers' answers stay under the prior label attribute on the same line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.contract.answer import (
    REVIEW_NOTE_MAX_CHARS,
    TIME_TOLERANCE,
    AnswerSegment,
    AnswerTrack,
    CannotAnnotate,
    FieldValue,
    SegmentationAnswer,
)
from toolkit.contract.base import dump
from toolkit.contract.consolidated import (
    Agreement,
    CannotAnnotateResult,
    ConsolidatedLabel,
    ConsolidatedSegment,
    ContentResult,
    Prefill,
    WorkerAnswer,
)
from toolkit.contract.manifest import PreSegment
from toolkit.contract.output_manifest import creation_date
from toolkit.contract.review import (
    DISAGREEMENT_KINDS,
    Disagreement,
    FieldChange,
    MovedSegment,
    RelabeledSegment,
    ReviewChanges,
    ReviewedLabel,
    ReviewedLabelMetadata,
    ReviewInput,
    ReviewWorker,
)
from toolkit.labeling.matching import iou

# Defaults of the disagreement thresholds (see `disagreements`).
MIN_SEGMENT_AGREEMENT = 0.7   # a segment below it is `low-agreement` (agreement = share x mean IoU)
MIN_SUPPORT_SHARE = 0.5       # a segment marked by this share of the workers or fewer is `low-support`
MIN_CONTENT_AGREEMENT = 0.75  # a content field (or segment attribute) below it is `content-disagreement`
MATCH_IOU = 0.5               # IoU fallback matching of the reviewer's segments onto the prior ones
CANNOT_ANNOTATE_FIELD = "cannotAnnotate"  # ReviewChanges.fields key for a changed cannot-annotate verdict


# -- disagreements ---------------------------------------------------------------------------------
def disagreements(label: ConsolidatedLabel, *, min_agreement: float = MIN_SEGMENT_AGREEMENT,
                  min_support_share: float = MIN_SUPPORT_SHARE,
                  min_content_agreement: float = MIN_CONTENT_AGREEMENT) -> list[Disagreement]:
    """What the reviewer should look at first, most severe (lowest score) first.

    - `low-support`: a segment marked by `min_support_share` of the valid workers or fewer (score:
      that share); with one worker nothing is low-support.
    - `low-agreement`: any other segment whose agreement is below `min_agreement`.
    - `content-tie`: a voted content field whose top count is shared.
    - `content-disagreement`: a content field below `min_content_agreement`, or a segment attribute
      (then `segment-id` and `field` are both set) below it.
    Messages name counts and labels only, never a worker or annotation text."""
    found: list[Disagreement] = []
    workers = max(label.valid_worker_count, 1)
    for seg in label.segments:
        share = seg.support / workers
        if workers > 1 and share <= min_support_share:
            found.append(Disagreement(kind="low-support", segment_id=seg.id, start=seg.start, end=seg.end,
                                      score=round(share, 3),
                                      message=f"{seg.support} of {workers} workers marked this "
                                              f"{seg.category} {seg.label} segment"))
        elif seg.agreement < min_agreement:
            mean_iou = seg.agreement / share if share else 0.0
            found.append(Disagreement(kind="low-agreement", segment_id=seg.id, start=seg.start, end=seg.end,
                                      score=seg.agreement,
                                      message=f"{seg.support} of {workers} workers marked this {seg.category} "
                                              f"{seg.label} segment; mean IoU {min(mean_iou, 1.0):.2f}"))
        for name, score in seg.attribute_agreement.items():
            if score < min_content_agreement:
                found.append(Disagreement(kind="content-disagreement", segment_id=seg.id, field=name,
                                          start=seg.start, end=seg.end, score=score,
                                          message=f"workers disagree on {name} of this segment "
                                                  f"({score:.0%} agree)"))
    for name, result in label.content.items():
        if result.tie:
            found.append(Disagreement(kind="content-tie", field=name, score=result.agreement,
                                      message=f"{name}: a tie ({_votes_text(result.votes)})"))
        elif result.agreement < min_content_agreement:
            found.append(Disagreement(kind="content-disagreement", field=name, score=result.agreement,
                                      message=f"{name}: {result.agreement:.0%} agree"
                                              + (f" ({_votes_text(result.votes)})" if result.mean is None else "")))
    order = {kind: i for i, kind in enumerate(DISAGREEMENT_KINDS)}
    found.sort(key=lambda d: (d.score, order[d.kind], d.start if d.start is not None else float("inf"),
                              d.segment_id or "", d.field or ""))
    return found


def _votes_text(votes: dict[str, int]) -> str:
    """Counts only: a value may be a worker's free text."""
    return "votes " + "/".join(str(count) for count in sorted(votes.values(), reverse=True))


# -- the editable starting point -------------------------------------------------------------------
def consolidated_to_answer(label: ConsolidatedLabel) -> SegmentationAnswer:
    """The prior label as an answer the reviewer edits with the labeling tools: one track per
    (category, label), segments with the chosen text and attributes, content values, the pre-fills."""
    tracks: dict[tuple[str, str], AnswerTrack] = {}
    segments = []
    for seg in label.segments:
        key = (seg.category, seg.label)
        if key not in tracks:
            tracks[key] = AnswerTrack(id=f"t{len(tracks) + 1}", category=seg.category, label=seg.label)
        segments.append(AnswerSegment(id=seg.id, track=tracks[key].id, start=seg.start, end=seg.end, text=seg.text,
                                      attributes=dict(seg.attributes), presegment_id=seg.id))
    duration = label.media_duration or max((s.end for s in label.segments), default=0.0)
    cannot = label.cannot_annotate
    return SegmentationAnswer(
        label_schema=label.label_schema, interaction_id=label.interaction_id, media_duration=duration,
        cannot_annotate=CannotAnnotate(reason=cannot.reason) if cannot else None,
        tracks=list(tracks.values()), segments=[] if cannot else segments,
        content={name: result.value for name, result in label.content.items()},
        prefill={name: {"value": r.prefill.value, "modelId": r.prefill.model_id, "recordId": r.prefill.record_id}
                 for name, r in label.content.items() if r.prefill is not None})


def pre_segments(label: ConsolidatedLabel) -> list[PreSegment]:
    """The prior label's segments as the line's `pre-segments` (ids = consolidated ids)."""
    return [PreSegment(id=seg.id, track=seg.category, label=seg.label, start=seg.start, end=seg.end,
                       text=seg.text, source="consolidated") for seg in label.segments]


# -- the review task input -------------------------------------------------------------------------
def pseudonyms(label: ConsolidatedLabel) -> dict[str, str]:
    """workerId -> w1, w2, ... in the label's worker order (stable for one object)."""
    out: dict[str, str] = {}
    for w in label.workers:
        out.setdefault(w.worker_id, f"w{len(out) + 1}")
    return out


def pseudonymized(label: ConsolidatedLabel, names: dict[str, str]) -> ConsolidatedLabel:
    """A copy of the label with every worker id replaced (unknown ids get the next pseudonym)."""
    names = dict(names)

    def name(worker: str) -> str:
        return names.setdefault(worker, f"w{len(names) + 1}")

    copy = label.model_copy(deep=True)
    copy.workers = [w.model_copy(update={"worker_id": name(w.worker_id)}) for w in copy.workers]
    for seg in copy.segments:
        seg.texts = {name(k): v for k, v in seg.texts.items()}
    for result in copy.content.values():
        result.values = {name(k): v for k, v in result.values.items()}
    if copy.comparison is not None:
        copy.comparison.orders = {name(k): v for k, v in copy.comparison.orders.items()}
    return copy


def review_input(label: ConsolidatedLabel, *, of_job: str, label_attribute: str, iteration: int = 1,
                 answers: Sequence[tuple[str, SegmentationAnswer]] | None = None,
                 **thresholds: float) -> ReviewInput:
    """The `review` key of a review task. `answers` (workerId, answer) default to the label's own
    valid `workers` (a trimmed label has none: pass them from the worker-response files)."""
    names = pseudonyms(label)
    if answers is None:
        answers = [(w.worker_id, w.answer) for w in label.workers if w.valid and w.answer is not None]
    shown = pseudonymized(label, names)
    workers = [ReviewWorker(worker=names.setdefault(worker, f"w{len(names) + 1}"), answer=answer)
               for worker, answer in answers]
    return ReviewInput(of_job=of_job, label_attribute=label_attribute, iteration=iteration, consolidated=shown,
                       answer=consolidated_to_answer(label), workers=workers,
                       disagreements=disagreements(label, **thresholds))


def review_task_line(prior_line: dict[str, Any], label_attribute: str, *, of_job: str, iteration: int = 1,
                     answers: Sequence[tuple[str, SegmentationAnswer]] | None = None,
                     **thresholds: float) -> dict[str, Any]:
    """A review job's input line: the prior output line (label attribute and `-metadata` kept, the
    chained-job form) + `review`; `pre-segments` become the consolidated segments and `pre-content`
    goes (its model texts are the answer's pre-fills). Raises ValueError when the line has no usable
    label under `label_attribute`."""
    raw = prior_line.get(label_attribute)
    if not isinstance(raw, dict):
        raise ValueError(f"no {label_attribute!r} label on the line")
    label = ConsolidatedLabel.model_validate(raw)
    if label.status != "ok":
        raise ValueError(f"the {label_attribute!r} label has status {label.status!r}")
    line = {k: v for k, v in prior_line.items() if k not in ("review", "review-ref", "pre-content", "review-note")}
    line["pre-segments"] = [dump(p) for p in pre_segments(label)]
    line["review"] = dump(review_input(label, of_job=of_job, label_attribute=label_attribute, iteration=iteration,
                                       answers=answers, **thresholds))
    return line


# -- the change list -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Seg:
    id: str
    category: str
    label: str
    start: float
    end: float
    text: str
    attributes: dict[str, FieldValue]
    presegment_id: str | None


def _answer_segments(answer: SegmentationAnswer) -> list[_Seg]:
    tracks = answer.track_by_id()
    return [_Seg(s.id, tracks[s.track].category, tracks[s.track].label, s.start, s.end, s.text,
                 s.attributes, s.presegment_id) for s in answer.segments]


def _prior_segments(label: ConsolidatedLabel) -> list[_Seg]:
    return [_Seg(s.id, s.category, s.label, s.start, s.end, s.text, s.attributes, s.presegment_id)
            for s in label.segments]


def match_to_prior(prior: Sequence[_Seg], mine: Sequence[_Seg], iou_threshold: float = MATCH_IOU
                   ) -> dict[str, str]:
    """reviewer segment id -> prior segment id: by presegmentId first, then greedy IoU (any track)."""
    by_id = {p.id: p for p in prior}
    pairs: dict[str, str] = {}
    taken: set[str] = set()
    for seg in mine:
        if seg.presegment_id in by_id and seg.presegment_id not in taken:
            pairs[seg.id] = seg.presegment_id
            taken.add(seg.presegment_id)
    rest = [s for s in mine if s.id not in pairs]
    left = [p for p in prior if p.id not in taken]
    scored = sorted(((iou(s.start, s.end, p.start, p.end), i, j) for i, s in enumerate(rest)
                     for j, p in enumerate(left)), key=lambda x: (-x[0], x[1], x[2]))
    used_s: set[int] = set()
    used_p: set[int] = set()
    for score, i, j in scored:
        if score < iou_threshold:
            break
        if i in used_s or j in used_p:
            continue
        used_s.add(i)
        used_p.add(j)
        pairs[rest[i].id] = left[j].id
    return pairs


_SPACES = re.compile(r"\s+")


def _same_text(a: str, b: str) -> bool:
    return _SPACES.sub(" ", a).strip() == _SPACES.sub(" ", b).strip()


def _norm(value: Any) -> Any:
    """Values compared: empty is empty, ticked boxes in any order, 3 == 3.0."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        return sorted(json.dumps(v, ensure_ascii=False) for v in value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return round(float(value), 6)
    return value


def _same_attributes(a: dict[str, FieldValue], b: dict[str, FieldValue]) -> bool:
    return all(_norm(a.get(k)) == _norm(b.get(k)) for k in set(a) | set(b))


def review_changes(prior: ConsolidatedLabel, answer: SegmentationAnswer, *,
                   iou_threshold: float = MATCH_IOU) -> ReviewChanges:
    """What the reviewer's answer changes against the prior consolidated label."""
    old = _prior_segments(prior)
    new = _answer_segments(answer)
    pairs = match_to_prior(old, new, iou_threshold)
    by_id = {p.id: p for p in old}
    changes = ReviewChanges()
    for seg in sorted(new, key=lambda s: (s.start, s.end, s.id)):
        was = by_id.get(pairs.get(seg.id, ""))
        if was is None:
            changes.added.append(seg.id)
            continue
        if abs(seg.start - was.start) > TIME_TOLERANCE or abs(seg.end - was.end) > TIME_TOLERANCE:
            changes.moved.append(MovedSegment(id=was.id, from_=(was.start, was.end), to=(seg.start, seg.end)))
        if (seg.category, seg.label) != (was.category, was.label):
            changes.relabeled.append(RelabeledSegment(
                id=was.id, from_=was.label if seg.category == was.category else f"{was.category}: {was.label}",
                to=seg.label if seg.category == was.category else f"{seg.category}: {seg.label}"))
        if not _same_text(seg.text, was.text):
            changes.text.append(was.id)
        if not _same_attributes(seg.attributes, was.attributes):
            changes.attributes.append(was.id)
    matched = set(pairs.values())
    changes.removed = [p.id for p in old if p.id not in matched]
    for name in [*prior.content, *(n for n in answer.content if n not in prior.content)]:
        before = prior.content[name].value if name in prior.content else None
        after = answer.content.get(name)
        if _norm(before) != _norm(after):
            changes.fields[name] = FieldChange(from_=before, to=after)
    before_ca = prior.cannot_annotate.reason if prior.cannot_annotate else None
    after_ca = answer.cannot_annotate.reason if answer.cannot_annotate else None
    if before_ca != after_ca:
        changes.fields[CANNOT_ANNOTATE_FIELD] = FieldChange(from_=before_ca, to=after_ca)
    return changes


# -- the reviewed label ----------------------------------------------------------------------------
def decision_of(answer: SegmentationAnswer, changes: ReviewChanges) -> str:
    """reject when the reviewer rejected; else accept without changes, edit with any."""
    if answer.review is not None and answer.review.decision == "reject":
        return "reject"
    return "accept" if changes.empty() else "edit"


def _without_workers(label: ConsolidatedLabel) -> ConsolidatedLabel:
    return label.model_copy(update={"workers": []}, deep=True)


def edited_label(prior: ConsolidatedLabel, answer: SegmentationAnswer, *,
                 iou_threshold: float = MATCH_IOU) -> ConsolidatedLabel:
    """The reviewer's answer as a label: kept segments keep their prior id, support, texts and
    presegment id; added ones keep the reviewer's id (prefixed `r-` if a prior id has it)."""
    old = _prior_segments(prior)
    new = _answer_segments(answer)
    pairs = match_to_prior(old, new, iou_threshold)
    prior_by_id = {s.id: s for s in prior.segments}
    segments = []
    for seg in sorted(new, key=lambda s: (s.start, s.end, s.category, s.label)):
        was = prior_by_id.get(pairs.get(seg.id, ""))
        seg_id = was.id if was else (f"r-{seg.id}" if seg.id in prior_by_id else seg.id)
        segments.append(ConsolidatedSegment(
            id=seg_id, category=seg.category, label=seg.label, start=seg.start, end=seg.end, text=seg.text,
            texts=dict(was.texts) if was else {}, attributes=dict(seg.attributes),
            attribute_agreement={k: 1.0 for k in seg.attributes}, support=was.support if was else 1,
            agreement=1.0, presegment_id=was.presegment_id if was else None))
    content = {}
    for name, value in answer.content.items():
        if _norm(value) is None:
            continue
        was_c = prior.content.get(name)
        prefill = was_c.prefill if was_c is not None else None
        if prefill is None and name in answer.prefill:
            p = answer.prefill[name]
            prefill = Prefill(value=p.value, model_id=p.model_id, record_id=p.record_id)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        content[name] = ContentResult(value=value, agreement=1.0, votes=dict(was_c.votes) if was_c else {},
                                      mean=float(value) if numeric and was_c is not None and was_c.mean is not None
                                      else None,
                                      values=dict(was_c.values) if was_c else {}, prefill=prefill)
    cannot = None
    if answer.cannot_annotate is not None:
        cannot = CannotAnnotateResult(reason=answer.cannot_annotate.reason, votes={answer.cannot_annotate.reason: 1},
                                      share=1.0)
    seg_agreement = 1.0 if segments else None
    content_agreement = 1.0 if content else None
    parts = [x for x in (seg_agreement, content_agreement) if x is not None]
    return ConsolidatedLabel(
        label_schema=prior.label_schema or answer.label_schema,
        interaction_id=prior.interaction_id or answer.interaction_id,
        media_duration=answer.media_duration or prior.media_duration, worker_count=prior.worker_count,
        valid_worker_count=prior.valid_worker_count, segments=segments, content=content,
        agreement=Agreement(segments=seg_agreement, content=content_agreement, overall=1.0 if parts else None),
        cannot_annotate=cannot, comparison=prior.comparison)


def reviewed_label(prior: ConsolidatedLabel, reviewer: str, answer: SegmentationAnswer, *,
                   iou_threshold: float = MATCH_IOU) -> ReviewedLabel:
    """One reviewer's answer -> the review job's label (decision recomputed; see the module doc)."""
    changes = review_changes(prior, answer, iou_threshold=iou_threshold)
    decision = decision_of(answer, changes)
    note = answer.review.note if answer.review is not None else ""
    if decision == "reject":
        # What a rejecting reviewer's answer shows is not a label: nothing of it is kept.
        return ReviewedLabel(decision="reject", reviewer=reviewer, note=note, reviewers=[reviewer])
    label = (_without_workers(prior) if decision == "accept"
             else edited_label(prior, answer, iou_threshold=iou_threshold))
    return ReviewedLabel(decision=decision, reviewer=reviewer, note=note, label=label,
                         changes=changes if decision == "edit" else ReviewChanges(), reviewers=[reviewer])


def combine_reviews(prior: ConsolidatedLabel, reviews: Iterable[tuple[str, SegmentationAnswer]], *,
                    iou_threshold: float = MATCH_IOU) -> ReviewedLabel:
    """Several reviewers of one object, in submission order -> one reviewed label (module doc rule)."""
    labels = [reviewed_label(prior, worker, answer, iou_threshold=iou_threshold) for worker, answer in reviews]
    if not labels:
        raise ValueError("no reviews to combine")
    everyone = list(dict.fromkeys(label.reviewer for label in labels))
    rejects = [label for label in labels if label.decision == "reject"]
    if rejects:
        note = "\n\n".join(label.note.strip() for label in rejects if label.note.strip())
        return rejects[0].model_copy(update={"note": note[:REVIEW_NOTE_MAX_CHARS], "reviewers": everyone})
    edits = [label for label in labels if label.decision == "edit"]
    chosen = edits[0] if edits else labels[0]
    return chosen.model_copy(update={"reviewers": everyone})


def review_metadata(reviewed: ReviewedLabel, job_name: str, created: str | None = None) -> ReviewedLabelMetadata:
    """`<review-attr>-metadata`: adjusted exactly when the decision is edit."""
    return ReviewedLabelMetadata(job_name=job_name, creation_date=created or creation_date(),
                                 adjustment_status="adjusted" if reviewed.decision == "edit" else "unadjusted",
                                 review_decision=reviewed.decision)


def reviewed_output_line(line: dict[str, Any], review_attribute: str, reviewed: ReviewedLabel, job_name: str,
                         created: str | None = None) -> dict[str, Any]:
    """The review job's output line: the input line + `<review-attr>` + `<review-attr>-metadata`."""
    out = dict(line)
    out[review_attribute] = dump(reviewed)
    out[f"{review_attribute}-metadata"] = dump(review_metadata(reviewed, job_name, created))
    return out


def worker_answers(label: ConsolidatedLabel) -> list[tuple[str, SegmentationAnswer]]:
    """The label's valid audit answers (workerId, answer)."""
    return [(w.worker_id, w.answer) for w in label.workers if isinstance(w, WorkerAnswer) and w.valid
            and w.answer is not None]
