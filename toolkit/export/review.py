"""`gtkit export --reviewed-only`: export the reviewed labels of a review job's output (docs/review.md).

A review job's output line holds the prior label (the labeling job's attribute, chained-job form) and
the review job's own attribute, a ReviewedLabel, whose `-metadata` has `review-decision` and
`adjustment-status`. Per item:

- edit -> the reviewed label (the reviewer's, adjudicated: agreement 1.0);
- accept -> the prior label;
- reject -> skipped, `rejected-in-review`;
- no review (the object was not in the review job, its review failed, or the line has no review
  attribute) -> skipped, `not-reviewed`.

A `provisional` outcome (the post-annotation Lambda did not find the prior label) is judged again
here against the line's prior label, with the same code (toolkit.labeling.review.recompute): the
decision is never taken from the UI.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import ValidationError

from toolkit.contract import ConsolidatedLabel, consolidated
from toolkit.contract.review import ReviewedLabel
from toolkit.export.reader import normalise_metadata
from toolkit.labeling.review import recompute

REJECTED_IN_REVIEW = "rejected-in-review"
NOT_REVIEWED = "not-reviewed"


def is_review_metadata(value: Any) -> bool:
    return isinstance(value, dict) and "review-decision" in normalise_metadata(value)


def review_attribute(line: dict[str, Any]) -> str | None:
    """The review job's label attribute on an output line: the one whose `-metadata` has `review-decision`."""
    for key, value in line.items():
        if key.endswith("-metadata") and is_review_metadata(value) and key[: -len("-metadata")] in line:
            return key[: -len("-metadata")]
    return None


def reviewed_of(line: dict[str, Any], attribute: str | None = None) -> ReviewedLabel | None:
    """The line's reviewed label, or None (no review attribute, or not a ReviewedLabel)."""
    attribute = attribute or review_attribute(line)
    value = line.get(attribute) if attribute else None
    if not isinstance(value, dict):
        return None
    try:
        return ReviewedLabel.model_validate(value)
    except ValidationError:
        return None


def check_reviewed(item: Any, decisions: Counter[str], attribute: str | None = None) -> tuple[str, str] | None:
    """Replace `item.label` by the reviewed one (edit) or keep it (accept); (reason, detail) to skip."""
    line = item.full_data()
    reviewed = reviewed_of(line, attribute)
    if reviewed is None:
        return NOT_REVIEWED, "the line has no review label" if review_attribute(line) is None \
            else "the review label cannot be read"
    if reviewed.status != "ok" or reviewed.decision is None:
        return NOT_REVIEWED, "the review produced no outcome"
    if reviewed.provisional:
        prior = _full_prior(item)
        reviewed = recompute(prior, reviewed) if prior is not None else reviewed
    decisions[reviewed.decision] += 1
    if reviewed.decision == "reject":
        return REJECTED_IN_REVIEW, "rejected by the reviewer"  # the note is free text: never in the summary
    meta = normalise_metadata(line.get(f"{attribute or review_attribute(line)}-metadata") or {})
    item.review = {  # the record's lineage.review (toolkit.contract.records.ReviewLineage); never the note
        "review_job": meta.get("job-name"), "decision": reviewed.decision, "reviewer": reviewed.reviewer,
        # From the decision judged here (a provisional outcome's metadata may say otherwise).
        "adjustment_status": "adjusted" if reviewed.decision == "edit" else "unadjusted",
        "changes": reviewed.changes.model_dump(by_alias=True, mode="json", exclude_defaults=True)}
    if reviewed.decision == "edit" and reviewed.label is not None:
        data = {k: v for k, v in reviewed.label.model_dump(by_alias=True, mode="json").items() if k != "workers"}
        try:
            item.label = consolidated.decode(data)
        except ValidationError:
            return NOT_REVIEWED, "the reviewed label cannot be read"
    return None


def _full_prior(item: Any) -> ConsolidatedLabel | None:
    value = item.full_data().get(item.attribute)
    if not isinstance(value, dict):
        return None
    try:
        return ConsolidatedLabel.model_validate({k: v for k, v in value.items() if k != "workers"})
    except ValidationError:
        return None


__all__ = ["NOT_REVIEWED", "REJECTED_IN_REVIEW", "check_reviewed", "review_attribute", "reviewed_of"]
