"""Export filters for training on what you trust: `--reviewed-only`, `--exclude-workers`, `--min-agreement`,
`--quality-weights`.

Applied to each labelled item before records are built, in the main process and in parallel workers
alike (`exporter._Work`):

0. **Reviewed only** (a review job's output, toolkit/export/review.py): edit -> the reviewed label,
   accept -> the prior one, reject -> skipped (`rejected-in-review`), no review -> skipped
   (`not-reviewed`). A reviewed label is adjudicated: steps 1 and 2 do not apply to an edited one.

1. **Excluded workers** (their real ids, or the pseudonyms `gtkit report --workers` shows, given the
   same `--id-key`): an item one of them answered is consolidated again without them, with the same
   code as the post-annotation Lambda (`toolkit.labeling.consolidate.consolidate`), from the answers the
   label keeps for audit. An item left with no valid answer, or whose label no longer holds the
   answers (`answerOmitted`: re-export with `--worker-responses` from the worker-response files), is
   skipped with its reason, never silently kept.
2. **Minimum agreement**: an item whose overall agreement (after step 1) is below the threshold, or
   not known, is skipped (`below-min-agreement`).
3. **Quality weight**: every record's lineage gets `quality_weight`: the agreement the record already
   carries (its segment's, its field's or the item's), 1.0 when there was nothing to agree on (one
   worker's field), so a trainer can weight examples by it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from toolkit.contract import LabelSchema, consolidated
from toolkit.export.workers import pseudonym
from toolkit.labeling.consolidate import consolidate

EXCLUDED_WORKER = "excluded-worker"
BELOW_MIN_AGREEMENT = "below-min-agreement"


@dataclass
class TrustOptions:
    min_agreement: float | None = None
    exclude_workers: frozenset[str] = field(default_factory=frozenset)
    id_key: bytes | None = None       # to recognise pseudonyms in exclude_workers
    quality_weights: bool = False
    reviewed_only: bool = False

    @property
    def active(self) -> bool:
        return (self.min_agreement is not None or bool(self.exclude_workers) or self.quality_weights
                or self.reviewed_only)

    def excluded(self, worker_id: str) -> bool:
        if worker_id in self.exclude_workers:
            return True
        return self.id_key is not None and pseudonym(worker_id, self.id_key) in self.exclude_workers


def check_item(item: Any, options: TrustOptions, schema: LabelSchema | None,
               decisions: Counter[str] | None = None) -> tuple[str, str] | None:
    """Apply steps 0 to 2 to `item` (its label may be replaced); (reason, detail) when it is to be skipped.
    The detail says how many workers, never who. `decisions` counts the review decisions used."""
    if options.reviewed_only:
        from toolkit.export.review import check_reviewed

        before = item.label
        skipped = check_reviewed(item, decisions if decisions is not None else Counter())
        if skipped is not None:
            return skipped
        if item.label is not before:  # an edit: adjudicated, not re-consolidated or filtered by agreement
            return None
    label = item.label
    if options.exclude_workers:
        stored = item.full_data().get(item.attribute)
        if isinstance(stored, dict) and stored.get("workers"):
            # The reader leaves the workers' audit answers unread (it never needs them); here they are.
            try:
                label = consolidated.decode(stored)
            except ValidationError:
                return EXCLUDED_WORKER, "the label's copies of the workers' answers cannot be read"
        dropped = [w for w in label.workers if options.excluded(w.worker_id)]
        if dropped:
            kept = [w for w in label.workers if not options.excluded(w.worker_id)]
            if any(w.answer_omitted for w in kept):
                return EXCLUDED_WORKER, (f"{len(dropped)} excluded worker(s); the label holds no copy of the other "
                                         "answers to consolidate again (export with --worker-responses)")
            if not any(w.valid and w.answer is not None for w in kept):
                return EXCLUDED_WORKER, f"no valid answer left without the {len(dropped)} excluded worker(s)"
            item.label = label = consolidate(kept, schema, data_object=item.full_data())
    if options.min_agreement is not None:
        overall = label.agreement.overall
        if overall is None or overall < options.min_agreement:
            shown = "unknown" if overall is None else f"{overall:.3f}"
            return BELOW_MIN_AGREEMENT, f"agreement {shown} < {options.min_agreement:g}"
    return None


def _weigh(lineage: dict[str, Any]) -> None:
    if "chosen" in lineage and "rejected" in lineage:  # a pair: each side keeps its own
        for side in ("chosen", "rejected"):
            if isinstance(lineage[side], dict):
                _weigh(lineage[side])
        return
    agreement = lineage.get("agreement")
    lineage["quality_weight"] = 1.0 if agreement is None else float(agreement)


def weigh(records: Iterable[dict[str, Any]], options: TrustOptions) -> None:
    """Step 3, in place."""
    if not options.quality_weights:
        return
    for record in records:
        if isinstance(record.get("lineage"), dict):
            _weigh(record["lineage"])


__all__ = ["BELOW_MIN_AGREEMENT", "EXCLUDED_WORKER", "TrustOptions", "check_item", "weigh"]
