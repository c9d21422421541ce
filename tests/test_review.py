"""The review round: contract models (contract/review.py, SegmentationAnswer.review) and the pure
functions of toolkit/labeling/review.py on hand-made answers."""

from __future__ import annotations

import json

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


# -- labeling/review.py on hand-made answers -----------------------------------------------------
from toolkit.contract import load_label_schema  # noqa: E402
from toolkit.labeling.consolidate import consolidate  # noqa: E402
from toolkit.labeling.review import (  # noqa: E402
    combine_reviews,
    consolidated_to_answer,
    disagreements,
    pre_segments,
    review_changes,
    review_input,
    reviewed_label,
    reviewed_output_line,
)

TRACKS = [{"id": "t1", "category": "speaker", "label": "Agent"},
          {"id": "t2", "category": "speaker", "label": "Customer"}]


def worker(segments, content, tracks=TRACKS) -> dict:
    return {"schemaVersion": "1.0", "labelSchema": "call-center", "interactionId": "c1", "mediaDuration": 20.0,
            "tracks": tracks, "content": content,
            "segments": [{"id": f"s{i}", "track": t, "start": a, "end": b, "text": x,
                          "attributes": {"emotion": e} if e else {}}
                         for i, (t, a, b, x, e) in enumerate(segments, start=1)]}


@pytest.fixture(scope="module")
def prior():
    """Three workers: an agent turn all agree on, a customer turn two mark with different bounds and
    emotions, one segment only worker 3 marks; the summary is a 1-1-1 tie, the rating 4/4/2."""
    w1 = worker([("t1", 0.0, 4.0, "hello how can I help", "Neutral"), ("t2", 5.0, 9.0, "my card", "Angry")],
                {"background_noise": ["None"], "overall_rating": 4, "summary": "card"})
    w2 = worker([("t1", 0.0, 4.0, "hello how can I help", "Neutral"), ("t2", 6.0, 9.5, "my card", "Frustrated")],
                {"background_noise": ["None"], "overall_rating": 4, "summary": "lost card"})
    w3 = worker([("t1", 0.1, 4.0, "hello how can I help", "Neutral"), ("t2", 12.0, 14.0, "thanks", "Happy")],
                {"background_noise": ["None"], "overall_rating": 2, "summary": "a card"})
    return consolidate([("alice", w1), ("bob", w2), ("carol", w3)], load_label_schema("call-center"))


def test_prior_is_what_the_tests_assume(prior):
    assert [(s.id, s.label, s.start, s.end, s.support) for s in prior.segments] == [
        ("seg-0001", "Agent", 0.0, 4.0, 3), ("seg-0002", "Customer", 5.5, 9.25, 2),
        ("seg-0003", "Customer", 12.0, 14.0, 1)]


def test_disagreements_most_severe_first_with_default_thresholds(prior):
    found = disagreements(prior)
    assert [(d.kind, d.segment_id, d.field, d.score, d.message) for d in found] == [
        ("low-support", "seg-0003", None, 0.333, "1 of 3 workers marked this speaker Customer segment"),
        ("content-tie", None, "summary", 0.333, "summary: a tie (votes 1/1/1)"),
        ("content-disagreement", "seg-0002", "emotion", 0.5,
         "workers disagree on emotion of this segment (50% agree)"),
        # 2 of 3 x mean IoU of [5, 9] and [6, 9.5] with the median span [5.5, 9.25]
        ("low-agreement", "seg-0002", None, 0.545,
         "2 of 3 workers marked this speaker Customer segment; mean IoU 0.82"),
    ]
    assert (found[0].start, found[0].end) == (12.0, 14.0)
    # not flagged: seg-0001 (3 of 3, IoU 0.99), overall_rating (4/4/2: 0.778 >= 0.75), background_noise


def test_disagreement_thresholds_are_parameters(prior):
    lax = disagreements(prior, min_agreement=0.0, min_support_share=0.0, min_content_agreement=0.0)
    assert [d.kind for d in lax] == ["content-tie"]  # a tie is always shown
    strict = disagreements(prior, min_agreement=1.0, min_content_agreement=1.0)
    assert ("low-agreement", "seg-0001") in {(d.kind, d.segment_id) for d in strict}
    assert "overall_rating" in {d.field for d in strict}  # 4/4/2 mean: agreement < 1


def test_consolidated_to_answer_is_the_editable_starting_point(prior):
    answer = consolidated_to_answer(prior)
    assert [(s.id, s.presegment_id, s.start, s.end) for s in answer.segments] == [
        ("seg-0001", "seg-0001", 0.0, 4.0), ("seg-0002", "seg-0002", 5.5, 9.25), ("seg-0003", "seg-0003", 12.0, 14.0)]
    assert [(t.category, t.label) for t in answer.tracks] == [("speaker", "Agent"), ("speaker", "Customer")]
    assert answer.segments[0].attributes == {"emotion": "Neutral"}
    assert answer.content["background_noise"] == ["None"] and answer.content["summary"] == "card"
    from toolkit.contract import validate_answer
    assert validate_answer(answer, load_label_schema("call-center")) == []
    assert review_changes(prior, answer).empty()
    assert [p.id for p in pre_segments(prior)] == ["seg-0001", "seg-0002", "seg-0003"]


def test_review_input_pseudonymizes_workers(prior):
    review = review_input(prior, of_job="calls", label_attribute="calls")
    wire = json.dumps(dump(review))
    for real in ("alice", "bob", "carol"):
        assert real not in wire
    assert [w.worker for w in review.workers] == ["w1", "w2", "w3"]
    assert set(review.consolidated.segments[0].texts) == {"w1", "w2", "w3"}
    assert set(review.consolidated.content["summary"].values) == {"w1", "w2", "w3"}
    assert review.disagreements == disagreements(prior)
    assert ReviewInput.model_validate(json.loads(wire)) == review


def edit(prior, mutate, decision="edit", note=""):
    data = dump(consolidated_to_answer(prior))
    mutate(data)
    data["review"] = {"decision": decision, "note": note}
    return SegmentationAnswer.model_validate(data)


def test_change_list_added_removed_moved_relabeled_text_fields(prior):
    def mutate(a):
        a["segments"][1]["start"] = 5.0                       # moved seg-0002
        a["segments"][1]["attributes"]["emotion"] = "Sad"     # seg-0002 attribute
        a["segments"][0]["track"] = "t2"                      # relabeled seg-0001 Agent -> Customer
        a["segments"][0]["text"] = "hello, how can I help?"   # text of seg-0001
        del a["segments"][2]                                  # removed seg-0003
        a["segments"].append({"id": "seg-0004", "track": "t1", "start": 15.0, "end": 16.0, "text": "bye"})
        a["content"]["summary"] = "lost card"
    answer = edit(prior, mutate)
    changes = review_changes(prior, answer)
    assert dump(changes) == {
        "added": ["seg-0004"], "removed": ["seg-0003"],
        "moved": [{"id": "seg-0002", "from": [5.5, 9.25], "to": [5.0, 9.25]}],
        "relabeled": [{"id": "seg-0001", "from": "Agent", "to": "Customer"}],
        "text": ["seg-0001"], "attributes": ["seg-0002"],
        "fields": {"summary": {"from": "card", "to": "lost card"}}}


def test_segments_without_presegment_id_match_by_iou(prior):
    def mutate(a):
        for seg in a["segments"]:
            seg.pop("presegmentId")
            seg["id"] = "x" + seg["id"]
        a["segments"][1]["end"] = 9.0
    changes = review_changes(prior, edit(prior, mutate))
    assert changes.added == [] and changes.removed == []
    assert [m.id for m in changes.moved] == ["seg-0002"]


def test_whitespace_and_choice_order_are_no_change(prior):
    def mutate(a):
        a["segments"][0]["text"] = "  hello   how can I help "
        a["content"]["overall_rating"] = float(a["content"]["overall_rating"])
    assert review_changes(prior, edit(prior, mutate)).empty()


def test_decision_is_recomputed(prior):
    untouched = edit(prior, lambda a: None, decision="edit")
    assert reviewed_label(prior, "rev1", untouched).decision == "accept"
    accepted_but_changed = edit(prior, lambda a: a["content"].update(summary="lost card"), decision="accept")
    label = reviewed_label(prior, "rev1", accepted_but_changed)
    assert label.decision == "edit" and label.label.content["summary"].value == "lost card"
    rejected = edit(prior, lambda a: None, decision="reject", note="wrong call")
    label = reviewed_label(prior, "rev1", rejected)
    assert (label.decision, label.note, label.label) == ("reject", "wrong call", None)


def test_accept_keeps_the_prior_label_without_the_workers(prior):
    label = reviewed_label(prior, "rev1", edit(prior, lambda a: None, decision="accept"))
    assert label.label.segments == prior.segments and label.label.content == prior.content
    assert label.label.workers == [] and prior.workers


def test_edited_label_keeps_ids_and_support_of_kept_segments(prior):
    def mutate(a):
        a["segments"][1]["start"] = 5.0
        a["segments"].append({"id": "seg-0001", "track": "t1", "start": 15.0, "end": 16.0, "text": "bye"})
        a["segments"][0]["id"] = "mine-1"  # presegmentId still names seg-0001
    label = reviewed_label(prior, "rev1", edit(prior, mutate)).label
    assert [(s.id, s.start, s.support, s.agreement) for s in label.segments] == [
        ("seg-0001", 0.0, 3, 1.0), ("seg-0002", 5.0, 2, 1.0), ("seg-0003", 12.0, 1, 1.0), ("r-seg-0001", 15.0, 1, 1.0)]
    assert label.agreement.overall == 1.0 and label.workers == []


def test_reviewed_output_line_metadata(prior):
    line = {"source-ref": SOURCE, "calls": dump(prior), "calls-metadata": {"job-name": "calls"}}
    edited = reviewed_label(prior, "rev1", edit(prior, lambda a: a["content"].update(summary="x")))
    out = reviewed_output_line(line, "calls-review", edited, "calls-review", created="2026-01-01T00:00:00.000000")
    assert out["calls"] == line["calls"]
    assert out["calls-review-metadata"]["adjustment-status"] == "adjusted"
    assert out["calls-review"]["decision"] == "edit" and out["calls-review"]["reviewer"] == "rev1"
    accepted = reviewed_label(prior, "rev1", edit(prior, lambda a: None))
    out = reviewed_output_line(line, "calls-review", accepted, "calls-review")
    assert out["calls-review-metadata"]["adjustment-status"] == "unadjusted"
    assert out["calls-review-metadata"]["review-decision"] == "accept"


def test_combine_reviews_any_reject_wins_else_first_edit(prior):
    accept = edit(prior, lambda a: None, decision="accept")
    edit1 = edit(prior, lambda a: a["content"].update(summary="one"))
    edit2 = edit(prior, lambda a: a["content"].update(summary="two"))
    reject1 = edit(prior, lambda a: None, decision="reject", note="speakers swapped")
    reject2 = edit(prior, lambda a: None, decision="reject", note="cut off at 10 s")
    both = combine_reviews(prior, [("r1", accept), ("r2", reject1), ("r3", edit1), ("r4", reject2)])
    assert (both.decision, both.reviewer, both.note) == ("reject", "r2", "speakers swapped\n\ncut off at 10 s")
    assert both.reviewers == ["r1", "r2", "r3", "r4"]
    chosen = combine_reviews(prior, [("r1", accept), ("r2", edit1), ("r3", edit2)])
    assert (chosen.decision, chosen.reviewer, chosen.label.content["summary"].value) == ("edit", "r2", "one")
    assert combine_reviews(prior, [("r1", accept), ("r2", accept)]).decision == "accept"
    with pytest.raises(ValueError):
        combine_reviews(prior, [])


# -- the review task line and the UI's fixture ----------------------------------------------------
import os  # noqa: E402
from pathlib import Path  # noqa: E402

from toolkit.labeling.review import review_task_line  # noqa: E402
from toolkit.task.task_input import build_task_input  # noqa: E402

FIXTURE = Path(__file__).parent / "js" / "fixtures" / "review-task-input.json"


def prior_line(prior) -> dict:
    return {"source-ref": SOURCE, "media-type": "audio", "interaction-id": "c1", "duration-seconds": 20.0,
            "pre-segments": [{"id": "tr-1", "track": "speaker", "label": "Agent", "start": 0.0, "end": 4.0}],
            "pre-content": {"summary": {"value": "model summary", "model_id": "m"}},
            "calls": dump(prior), "calls-metadata": {"job-name": "calls", "type": "groundtruth/custom",
                                                     "human-annotated": "yes",
                                                     "creation-date": "2026-01-01T00:00:00.000000"}}


def test_review_task_line_and_task_input(prior):
    line = review_task_line(prior_line(prior), "calls", of_job="calls")
    assert line["calls"] == dump(prior) and "pre-content" not in line  # chained form: prior label kept
    assert [p["id"] for p in line["pre-segments"]] == ["seg-0001", "seg-0002", "seg-0003"]
    assert ManifestLine.model_validate(line).review.answer == consolidated_to_answer(prior)
    task_input, reason = build_task_input(line)
    assert reason is None
    assert "calls" not in task_input and "calls-metadata" not in task_input
    assert "alice" not in json.dumps(task_input)
    assert task_input["review"]["of-job"] == "calls"
    with pytest.raises(ValueError, match="no 'other' label"):
        review_task_line(prior_line(prior), "other", of_job="calls")


def test_ui_fixture_is_what_python_builds(prior):
    """tests/js/fixtures/review-task-input.json: the task input of a review task, for the review UI's
    tests (GTKIT_UPDATE_GOLDEN=1 rewrites it)."""
    task_input, _ = build_task_input(review_task_line(prior_line(prior), "calls", of_job="calls"))
    text = json.dumps(task_input, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("GTKIT_UPDATE_GOLDEN"):
        FIXTURE.write_text(text, encoding="utf-8")
    assert FIXTURE.read_text(encoding="utf-8") == text
