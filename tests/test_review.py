"""The review round: contract models (contract/review.py, SegmentationAnswer.review) and the pure
functions of toolkit/labeling/review.py on hand-made answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from toolkit.contract import ManifestLine, SegmentationAnswer
from toolkit.contract.base import dump
from toolkit.contract.review import ReviewChanges, ReviewedLabel, ReviewedLabelMetadata, ReviewInput

SOURCE = "s3://example-feedback-bucket/media/call-1.wav"


def reviewer_answer(decision: str, note: str = "", **overrides) -> dict:
    data = {"schemaVersion": "1.0", "mediaDuration": 20.0,
            "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
            "segments": [{"id": "s1", "track": "t1", "start": 1.0, "end": 3.0}],
            "review": {"decision": decision, "note": note}}
    data.update(overrides)
    return data


# -- contract -----------------------------------------------------------------------------------
@pytest.mark.parametrize("decision", ["accept", "edit"])
def test_accept_and_edit_need_no_note(decision):
    assert SegmentationAnswer.model_validate(reviewer_answer(decision)).review.decision == decision


def test_reject_needs_a_note():
    with pytest.raises(ValidationError, match="a reject needs a note"):
        SegmentationAnswer.model_validate(reviewer_answer("reject", "   "))
    ok = SegmentationAnswer.model_validate(reviewer_answer("reject", "speaker turns are swapped"))
    assert ok.review.note == "speaker turns are swapped"


def test_review_note_is_at_most_2000_chars():
    SegmentationAnswer.model_validate(reviewer_answer("reject", "x" * 2000))
    with pytest.raises(ValidationError, match=r"review\.note"):
        SegmentationAnswer.model_validate(reviewer_answer("reject", "x" * 2001))


def test_unknown_decision_is_refused():
    with pytest.raises(ValidationError, match=r"review\.decision"):
        SegmentationAnswer.model_validate(reviewer_answer("approve"))


def minimal_review_input() -> dict:
    return {"of-job": "call-center-labels", "label-attribute": "call-center-labels", "iteration": 1,
            "consolidated": {"schemaVersion": "1.0", "status": "ok", "workerCount": 2, "validWorkerCount": 2},
            "workers": [{"worker": "w1", "answer": reviewer_answer("accept")}],
            "disagreements": [{"kind": "low-support", "segment-id": "seg-0001", "field": None, "start": 1.0,
                               "end": 3.0, "score": 0.5, "message": "1 of 2 workers marked this segment"}]}


def test_manifest_line_carries_review_review_ref_or_review_note():
    line = ManifestLine.model_validate({"source-ref": SOURCE, "media-type": "audio", "interaction-id": "c1",
                                        "review": minimal_review_input()})
    assert isinstance(line.review, ReviewInput) and line.review.disagreements[0].segment_id == "seg-0001"
    assert dump(line)["review"]["of-job"] == "call-center-labels"
    ref = ManifestLine.model_validate({"source-ref": SOURCE, "media-type": "audio", "interaction-id": "c1",
                                       "review-ref": "s3://example-feedback-bucket/review/c1.review.json"})
    assert ref.review_ref.endswith(".review.json")
    with pytest.raises(ValidationError, match="give one"):
        ManifestLine.model_validate({"source-ref": SOURCE, "media-type": "audio", "interaction-id": "c1",
                                     "review": minimal_review_input(), "review-ref": "s3://b/k.review.json"})
    note = ManifestLine.model_validate({"source-ref": SOURCE, "media-type": "audio", "interaction-id": "c1",
                                        "review-note": {"note": "redo the speaker turns", "iteration": 2}})
    assert note.review_note.iteration == 2
    with pytest.raises(ValidationError, match=r"review-note\.iteration"):
        ManifestLine.model_validate({"source-ref": SOURCE, "media-type": "audio", "interaction-id": "c1",
                                     "review-note": {"note": "x", "iteration": 1}})


def test_disagreement_kind_is_one_of_four():
    bad = minimal_review_input()
    bad["disagreements"][0]["kind"] = "other"
    with pytest.raises(ValidationError, match=r"disagreements\.0\.kind"):
        ReviewInput.model_validate(bad)


def test_reviewed_label_wire_keys():
    label = ReviewedLabel.model_validate({
        "decision": "edit", "reviewer": "r1", "note": "",
        "changes": {"moved": [{"id": "seg-0001", "from": [1.0, 3.0], "to": [1.1, 3.0]}],
                    "relabeled": [{"id": "seg-0002", "from": "Agent", "to": "Customer"}],
                    "fields": {"sentiment": {"from": "negative", "to": "neutral"}}}})
    wire = dump(label)
    assert wire["changes"]["moved"] == [{"id": "seg-0001", "from": [1.0, 3.0], "to": [1.1, 3.0]}]
    assert wire["changes"]["fields"]["sentiment"] == {"from": "negative", "to": "neutral"}
    assert ReviewedLabel.model_validate(wire) == label
    assert ReviewChanges().empty() and not label.changes.empty()
    meta = dump(ReviewedLabelMetadata(job_name="rev", creation_date="2026-01-01T00:00:00.000000",
                                      adjustment_status="adjusted", review_decision="edit"))
    assert meta == {"job-name": "rev", "type": "groundtruth/custom", "human-annotated": "yes",
                    "creation-date": "2026-01-01T00:00:00.000000", "adjustment-status": "adjusted",
                    "review-decision": "edit"}
