"""Annotation quality: one worker's answer scored against a known (gold) answer or against peers.

Pure functions (no I/O, no logging), shared by `gtkit report --workers`, the exporter's filters and
the service. Definitions (the golden tests in tests/test_quality.py pin them):

- A **track** is a schema track category (e.g. `speaker`). Within a track, the worker's segments and
  the reference's are paired one-to-one, greedily, highest temporal IoU first; a pair needs
  IoU >= `iou_threshold` (0.5). The label does not take part in the pairing, so a segment with the
  right span and the wrong label counts as found and shows up in `label_accuracy` instead.
- **precision** = pairs / worker segments, **recall** = pairs / reference segments, **F1** their
  harmonic mean. With no worker segments precision is undefined (None) and F1 is 0 when the reference
  has segments; a track on neither side is not scored.
- **boundary error** = mean over the pairs of |start difference| and |end difference| (both
  boundaries count), in milliseconds.
- **label accuracy** = share of pairs whose labels are equal; **attribute accuracy** = share of the
  reference's non-empty segment attributes (over all pairs) the worker gave the same value.
- **content accuracy** = share of the reference's non-empty content fields the worker answered the
  same: text compared case- and whitespace-insensitively, multiple choice as a set, ratings within
  `rating_tolerance`, everything else equal. A field the worker left empty is wrong.
- **agreement with peers** = mean over the other workers of the same object of a symmetric score:
  the mean of the segment F1 (all tracks pooled) and the content agreement (fields both answered).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from toolkit.contract.answer import FieldValue, SegmentationAnswer
from toolkit.labeling.matching import iou

IOU_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class _Seg:
    start: float
    end: float
    label: str
    attributes: dict[str, FieldValue]


@dataclass(slots=True)
class Counts:
    """Sums that add up over tracks, objects and workers; the scores are derived from them."""

    answered: int = 0          # worker segments
    reference: int = 0         # reference (gold or peer) segments
    matched: int = 0           # IoU pairs
    boundary_error_s: float = 0.0   # sum over pairs of the mean absolute boundary difference
    labels_right: int = 0
    attributes_asked: int = 0
    attributes_right: int = 0
    fields_asked: int = 0
    fields_right: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def precision(self) -> float | None:
        return self.matched / self.answered if self.answered else None

    @property
    def recall(self) -> float | None:
        return self.matched / self.reference if self.reference else None

    @property
    def f1(self) -> float | None:
        if not self.answered and not self.reference:
            return None
        if not self.matched:
            return 0.0
        p, r = self.matched / self.answered, self.matched / self.reference
        return 2 * p * r / (p + r)

    @property
    def boundary_error_ms(self) -> float | None:
        return self.boundary_error_s / self.matched * 1000 if self.matched else None

    @property
    def label_accuracy(self) -> float | None:
        return self.labels_right / self.matched if self.matched else None

    @property
    def attribute_accuracy(self) -> float | None:
        return self.attributes_right / self.attributes_asked if self.attributes_asked else None

    @property
    def content_accuracy(self) -> float | None:
        return self.fields_right / self.fields_asked if self.fields_asked else None

    def scores(self, digits: int = 3) -> dict[str, float | int | None]:
        """The figures a report shows, rounded."""
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, digits)
        return {"segments": self.answered, "reference_segments": self.reference, "matched": self.matched,
                "precision": r(self.precision), "recall": r(self.recall), "f1": r(self.f1),
                "boundary_error_ms": r(self.boundary_error_ms), "label_accuracy": r(self.label_accuracy),
                "attribute_accuracy": r(self.attribute_accuracy), "content_fields": self.fields_asked,
                "content_accuracy": r(self.content_accuracy)}


@dataclass(slots=True)
class Comparison:
    """One answer against one reference: per track and pooled."""

    tracks: dict[str, Counts] = field(default_factory=dict)
    content: Counts = field(default_factory=Counts)  # only the fields_* sums

    @property
    def total(self) -> Counts:
        out = Counts()
        for c in self.tracks.values():
            out.add(c)
        out.add(self.content)
        return out


def _by_track(answer: SegmentationAnswer) -> dict[str, list[_Seg]]:
    tracks = answer.track_by_id()
    out: dict[str, list[_Seg]] = {}
    for seg in answer.segments:
        track = tracks[seg.track]  # a structurally valid answer references known tracks
        out.setdefault(track.category, []).append(_Seg(seg.start, seg.end, track.label, seg.attributes))
    return out


def pair_segments(answered: Sequence[_Seg], reference: Sequence[_Seg],
                  iou_threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """One-to-one (answered index, reference index) pairs, greedy by IoU (ties: earlier first)."""
    candidates = []
    for i, a in enumerate(answered):
        for j, b in enumerate(reference):
            score = iou(a.start, a.end, b.start, b.end)
            if score >= iou_threshold and score > 0:
                candidates.append((-score, i, j))
    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for _score, i, j in candidates:
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j))
    return pairs


def _empty(value: FieldValue) -> bool:
    return value is None or value == "" or value == []


def same_value(given: FieldValue, expected: FieldValue, rating_tolerance: float = 0.0) -> bool:
    """Whether a worker's field value counts as the expected one (see the module doc)."""
    if _empty(given):
        return False
    if isinstance(expected, bool) or isinstance(given, bool):
        return given is expected
    if isinstance(expected, int | float) and isinstance(given, int | float):
        return abs(given - expected) <= rating_tolerance + 1e-9
    if isinstance(expected, str) and isinstance(given, str):
        return " ".join(given.split()).casefold() == " ".join(expected.split()).casefold()
    if isinstance(expected, list) and isinstance(given, list):
        return set(map(str, given)) == set(map(str, expected))
    return given == expected


def compare(answer: SegmentationAnswer, reference: SegmentationAnswer, *,
            iou_threshold: float = IOU_THRESHOLD, rating_tolerance: float = 0.0) -> Comparison:
    """Score `answer` against `reference` (a gold answer, or a peer's)."""
    result = Comparison()
    mine, theirs = _by_track(answer), _by_track(reference)
    for category in sorted(set(mine) | set(theirs)):
        a, b = mine.get(category, []), theirs.get(category, [])
        counts = Counts(answered=len(a), reference=len(b))
        for i, j in pair_segments(a, b, iou_threshold):
            counts.matched += 1
            counts.boundary_error_s += (abs(a[i].start - b[j].start) + abs(a[i].end - b[j].end)) / 2
            counts.labels_right += a[i].label == b[j].label
            for name, expected in b[j].attributes.items():
                if not _empty(expected):
                    counts.attributes_asked += 1
                    counts.attributes_right += same_value(a[i].attributes.get(name), expected, rating_tolerance)
        result.tracks[category] = counts
    for name, expected in reference.content.items():
        if not _empty(expected):
            result.content.fields_asked += 1
            result.content.fields_right += same_value(answer.content.get(name), expected, rating_tolerance)
    return result


def gold_score(answer: SegmentationAnswer, gold: SegmentationAnswer, **options: float) -> Comparison:
    """A worker's answer on a gold object, scored against the known answer."""
    return compare(answer, gold, **options)


def pair_agreement(a: SegmentationAnswer, b: SegmentationAnswer, *, iou_threshold: float = IOU_THRESHOLD,
                   rating_tolerance: float = 0.0) -> float | None:
    """Symmetric agreement of two answers in [0, 1]: mean of pooled segment F1 and content agreement
    (fields both answered); None when neither has segments nor shared fields."""
    total = compare(a, b, iou_threshold=iou_threshold).total
    parts = [total.f1] if total.f1 is not None else []
    shared = [n for n, v in a.content.items() if not _empty(v) and not _empty(b.content.get(n))]
    if shared:
        parts.append(sum(same_value(a.content[n], b.content[n], rating_tolerance) for n in shared) / len(shared))
    return statistics.fmean(parts) if parts else None


def peer_agreement(answer: SegmentationAnswer, peers: Iterable[SegmentationAnswer], **options: float) -> float | None:
    """Mean pair agreement of `answer` with each peer answer of the same object (None without peers)."""
    scores = [s for p in peers if (s := pair_agreement(answer, p, **options)) is not None]
    return statistics.fmean(scores) if scores else None


def object_peer_agreement(answers: dict[str, SegmentationAnswer], **options: float) -> dict[str, float]:
    """worker id -> agreement with the other workers of one object (workers without a peer are left out)."""
    out = {}
    for worker, answer in answers.items():
        score = peer_agreement(answer, [a for w, a in answers.items() if w != worker], **options)
        if score is not None:
            out[worker] = score
    return out


__all__ = ["IOU_THRESHOLD", "Comparison", "Counts", "compare", "gold_score", "object_peer_agreement",
           "pair_agreement", "pair_segments", "peer_agreement", "same_value"]
