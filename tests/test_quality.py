"""toolkit.labeling.quality: golden figures on hand-made answers (worked out by hand in the comments)."""

from __future__ import annotations

import pytest

from toolkit.contract import SegmentationAnswer
from toolkit.labeling.quality import compare, gold_score, object_peer_agreement, pair_agreement, same_value


def answer(segments, content=None, duration=20.0) -> SegmentationAnswer:
    """segments: (category, label, start, end, emotion)."""
    keys = sorted({(s[0], s[1]) for s in segments})
    tracks = [{"id": f"{c}-{lab}", "category": c, "label": lab} for c, lab in keys]
    segs = [{"id": f"s{i}", "track": f"{c}-{lab}", "start": a, "end": b,
             "attributes": {"emotion": emo} if emo else {}}
            for i, (c, lab, a, b, emo) in enumerate(segments)]
    return SegmentationAnswer.model_validate({"mediaDuration": duration, "tracks": tracks, "segments": segs,
                                              "content": content or {}})


GOLD = answer([("speaker", "Agent", 0.0, 4.0, "Neutral"),
               ("speaker", "Customer", 4.0, 8.0, "Frustrated"),
               ("speaker", "Agent", 9.0, 11.0, "Neutral"),
               ("language", "English", 0.0, 11.0, None)],
              {"background_noise": ["None"], "overall_rating": 4, "summary": "Late order"})
WORKER = answer([("speaker", "Agent", 0.1, 3.9, "Neutral"),        # IoU 0.95 with Agent 0-4; error 0.1 s
                 ("speaker", "Agent", 4.2, 8.2, "Frustrated"),     # IoU 3.8/4.2 with Customer 4-8: wrong label
                 ("speaker", "Customer", 12.0, 13.0, None)],       # nothing there; Agent 9-11 is missed
                {"background_noise": ["None"], "overall_rating": 5, "summary": " late  ORDER"})


def test_gold_score_per_track():
    result = gold_score(WORKER, GOLD)
    speaker = result.tracks["speaker"].scores()
    assert speaker == {"segments": 3, "reference_segments": 3, "matched": 2, "precision": 0.667,
                       "recall": 0.667, "f1": 0.667, "boundary_error_ms": 150.0, "label_accuracy": 0.5,
                       "attribute_accuracy": 1.0, "content_fields": 0, "content_accuracy": None}
    language = result.tracks["language"]
    # No worker segments: precision undefined, recall and F1 zero.
    assert (language.precision, language.recall, language.f1) == (None, 0.0, 0.0)


def test_gold_score_pooled_and_content():
    total = gold_score(WORKER, GOLD).total
    assert (total.answered, total.reference, total.matched) == (3, 4, 2)
    assert total.f1 == pytest.approx(4 / 7)   # P 2/3, R 1/2
    assert total.boundary_error_ms == pytest.approx(150.0)
    # background_noise right, rating 5 vs 4 wrong, summary right (case and spaces ignored)
    assert (total.fields_asked, total.fields_right) == (3, 2)
    assert gold_score(WORKER, GOLD, rating_tolerance=1).total.content_accuracy == 1.0


def test_perfect_answer_scores_one():
    total = gold_score(GOLD, GOLD).total
    assert (total.f1, total.boundary_error_ms, total.label_accuracy, total.content_accuracy) == (1.0, 0.0, 1.0, 1.0)


def test_iou_threshold_is_inclusive_and_pairs_one_to_one():
    gold = answer([("speaker", "Agent", 0.0, 2.0, None)])
    assert compare(answer([("speaker", "Agent", 0.0, 1.0, None)]), gold).total.matched == 1   # IoU exactly 0.5
    assert compare(answer([("speaker", "Agent", 0.0, 0.99, None)]), gold).total.matched == 0
    # Two worker segments over one gold segment: only the better one is paired.
    two = compare(answer([("speaker", "Agent", 0.0, 1.9, None), ("speaker", "Agent", 0.1, 2.0, None)]), gold)
    assert two.total.matched == 1 and two.total.precision == 0.5 and two.total.recall == 1.0


def test_empty_answers_are_not_scored():
    empty = answer([])
    assert compare(empty, empty).total.f1 is None
    assert pair_agreement(empty, empty) is None
    # A worker who marked nothing where gold has segments scores F1 0, not "undefined".
    assert compare(empty, GOLD).total.f1 == 0.0


def test_pair_and_peer_agreement():
    # pooled F1 4/7 and content 2/3 -> mean 13/21; symmetric
    assert pair_agreement(WORKER, GOLD) == pytest.approx(13 / 21)
    assert pair_agreement(GOLD, WORKER) == pytest.approx(13 / 21)
    peers = object_peer_agreement({"a": GOLD, "b": GOLD, "c": WORKER})
    assert peers["a"] == pytest.approx((1 + 13 / 21) / 2)
    assert peers["c"] == pytest.approx(13 / 21)
    assert object_peer_agreement({"alone": GOLD}) == {}


@pytest.mark.parametrize(("given", "expected", "same"), [
    ("Yes", "yes", True), (["a", "b"], ["b", "a"], True), (["a"], ["a", "b"], False), (True, True, True),
    (True, 1, False), (None, "x", False), ("", "x", False), (3.5, 3, False), (3, 3, True)])
def test_same_value(given, expected, same):
    assert same_value(given, expected) is same


# -- properties --------------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SPANS = st.lists(st.tuples(st.sampled_from(["speaker", "language"]), st.sampled_from(["A", "B"]),
                           st.floats(0, 18, allow_nan=False), st.floats(0.01, 2, allow_nan=False)), max_size=8)


def from_spans(spans, rating) -> SegmentationAnswer:
    return answer([(c, lab, round(a, 3), round(a + d, 3), None) for c, lab, a, d in spans],
                  {"overall_rating": rating} if rating is not None else None)


@settings(max_examples=150, deadline=None)
@given(SPANS, SPANS, st.one_of(st.none(), st.integers(1, 5)), st.one_of(st.none(), st.integers(1, 5)))
def test_scores_are_bounded_and_perfect_on_self(a_spans, b_spans, a_rating, b_rating):
    a, b = from_spans(a_spans, a_rating), from_spans(b_spans, b_rating)
    total = compare(a, b).total
    assert total.matched <= min(total.answered, total.reference)
    for score in (total.precision, total.recall, total.f1, total.label_accuracy):
        assert score is None or 0 <= score <= 1
    assert total.boundary_error_ms is None or total.boundary_error_ms >= 0
    agreement = pair_agreement(a, b)
    assert agreement is None or 0 <= agreement <= 1
    self_total = compare(a, a).total
    assert self_total.f1 in (None, 1.0) and self_total.boundary_error_ms in (None, 0.0)
