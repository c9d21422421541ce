"""Export filters for training on what you trust: `--reviewed-only`, `--exclude-workers`, `--min-agreement`,
`--quality-weights`, `--worker-report` and `--min-worker-f1`.

Applied to each labelled item before records are built, in the main process and in parallel workers
alike (`exporter._Work`):

0. **Reviewed only** (a review job's output, toolkit/export/review.py): edit -> the reviewed label,
   accept -> the prior one, reject -> skipped (`rejected-in-review`), no review -> skipped
   (`not-reviewed`). A reviewed label is adjudicated: steps 1 and 2 do not apply to an edited one, and
   its worker trust (step 3) is 1.

1. **Excluded workers** (their real ids, or the pseudonyms `gtkit report --workers` shows, given the
   same `--id-key`), and with `--min-worker-f1 X` the workers whose gold F1 in the worker report is below
   X (workers without a gold F1 are kept): an item one of them answered is consolidated again without
   them, with the same code as the post-annotation Lambda (`toolkit.labeling.consolidate.consolidate`),
   from the answers the label keeps for audit. Every record's lineage says how many of its item's answers
   were left out and why (`excluded_answers`: {"excluded-worker": n, "below-min-worker-f1": m}, a key per
   option used, 0 when none; never who: the same keys on every record, so `datasets` reads one struct). An item
   left with no valid answer, or whose label no longer holds the answers (`answerOmitted`: re-export
   with `--worker-responses` from the worker-response files), is skipped with its reason, never silently
   kept.
2. **Minimum agreement**: an item whose overall agreement (after step 1) is below the threshold, or
   not known, is skipped (`below-min-agreement`).
3. **Quality weight**: every record's lineage gets `quality_weight`: the agreement the record already
   carries (its segment's, its field's or the item's), 1.0 when there was nothing to agree on (one
   worker's field), so a trainer can weight examples by it. With a worker report (`WorkerTrust`), the
   lineage also gets `worker_trust`, the mean over the workers whose valid answers made the label of
   their trust, and the weight is `agreement x worker_trust`. A worker's trust is their gold F1 in the
   report; a worker with no gold F1 (no gold task, or gold without segments) or not in the report gets
   the default trust: `--default-worker-f1`, else the mean gold F1 of the report's scored workers, else 1.
   A label that lists no workers gets the default trust too (counted in the run summary).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from toolkit.contract import LabelSchema, consolidated, worker_report
from toolkit.export.workers import WorkerReportError, pseudonym
from toolkit.labeling.consolidate import consolidate
from toolkit.storage import Storage

EXCLUDED_WORKER = "excluded-worker"
BELOW_MIN_WORKER_F1 = "below-min-worker-f1"
BELOW_MIN_AGREEMENT = "below-min-agreement"
# ReadStats.worker_trust keys: answers of workers scored on gold / in the report without a gold F1 /
# not in the report, and items whose label lists no workers.
GOLD, NO_GOLD, NOT_IN_REPORT, NO_WORKERS = "gold-f1", "no-gold-f1", "not-in-report", "items-without-workers"


@dataclass
class WorkerTrust:
    """Per-worker trust from a `gtkit report --workers --json` report: the gold F1 of each worker."""

    f1: dict[str, float | None]          # report name (pseudonym or id) -> gold F1, None: no gold F1
    pseudonymized: bool
    id_key: bytes | None
    default: float                       # the trust of a worker without a gold F1
    source: str = ""
    _names: dict[str, str] = field(default_factory=dict, repr=False)  # worker id -> report name (cache)

    @classmethod
    def load(cls, storage: Storage, uri: str, id_key: bytes | None = None,
             default_f1: float | None = None) -> WorkerTrust:
        doc = worker_report.decode(storage.read_bytes(uri), uri)
        pseudonymized = doc.worker_ids == "pseudonymized"
        if pseudonymized and id_key is None:
            raise WorkerReportError(
                f"{uri}: its worker ids are pseudonyms: pass the --id-key (or GTKIT_REPORT_ID_KEY) the report was "
                "made with (a report made without one used a random key: make it again with --id-key)")
        f1 = {w.worker: (w.gold.f1 if w.gold_tasks and w.gold is not None else None) for w in doc.workers}
        scored = [v for v in f1.values() if v is not None]
        if default_f1 is None:
            default_f1 = round(statistics.fmean(scored), 4) if scored else 1.0
        return cls(f1=f1, pseudonymized=pseudonymized, id_key=id_key, default=default_f1, source=uri)

    def name(self, worker_id: str) -> str:
        if not self.pseudonymized:
            return worker_id
        found = self._names.get(worker_id)
        if found is None:
            assert self.id_key is not None
            found = self._names[worker_id] = pseudonym(worker_id, self.id_key)
        return found

    def gold_f1(self, worker_id: str) -> float | None:
        return self.f1.get(self.name(worker_id))

    def trust(self, worker_ids: list[str], counts: Counter[str]) -> float:
        """Mean trust of the workers (the default when there are none); `counts` gets where each came from."""
        if not worker_ids:
            counts[NO_WORKERS] += 1
            return self.default
        values = []
        for worker_id in worker_ids:
            name = self.name(worker_id)
            if name not in self.f1:
                counts[NOT_IN_REPORT] += 1
                values.append(self.default)
            elif self.f1[name] is None:
                counts[NO_GOLD] += 1
                values.append(self.default)
            else:
                counts[GOLD] += 1
                values.append(float(self.f1[name]))  # type: ignore[arg-type]
        return statistics.fmean(values)


@dataclass
class TrustOptions:
    min_agreement: float | None = None
    exclude_workers: frozenset[str] = field(default_factory=frozenset)
    id_key: bytes | None = None       # to recognise pseudonyms in exclude_workers
    quality_weights: bool = False
    reviewed_only: bool = False
    workers: WorkerTrust | None = None   # --worker-report (implies quality weights)
    min_worker_f1: float | None = None   # needs `workers`

    def __post_init__(self) -> None:
        if self.min_worker_f1 is not None and self.workers is None:
            raise WorkerReportError("--min-worker-f1 needs --worker-report (the workers' gold F1)")

    @property
    def active(self) -> bool:
        return (self.min_agreement is not None or bool(self.exclude_workers) or self.quality_weights
                or self.reviewed_only or self.workers is not None)

    @property
    def weights(self) -> bool:
        return self.quality_weights or self.workers is not None

    @property
    def exclusion_reasons(self) -> tuple[str, ...]:
        """The reasons an answer can be left out for in this run (the keys of lineage `excluded_answers`)."""
        return ((EXCLUDED_WORKER,) if self.exclude_workers else ()) + (
            (BELOW_MIN_WORKER_F1,) if self.min_worker_f1 is not None else ())

    def excluded(self, worker_id: str) -> bool:
        if worker_id in self.exclude_workers:
            return True
        return self.id_key is not None and pseudonym(worker_id, self.id_key) in self.exclude_workers

    def exclusion(self, worker_id: str) -> str | None:
        """Why the worker's answers are left out, or None."""
        if self.exclude_workers and self.excluded(worker_id):
            return EXCLUDED_WORKER
        if self.min_worker_f1 is not None and self.workers is not None:
            f1 = self.workers.gold_f1(worker_id)
            if f1 is not None and f1 < self.min_worker_f1:
                return BELOW_MIN_WORKER_F1
        return None


def _listed_workers(stored: Any) -> list[dict[str, Any]] | None:
    """The label's `workers` entries as stored (None: the label lists none)."""
    listed = stored.get("workers") if isinstance(stored, dict) else None
    return [w for w in listed if isinstance(w, dict)] if isinstance(listed, list) and listed else None


def check_item(item: Any, options: TrustOptions, schema: LabelSchema | None,
               decisions: Counter[str] | None = None, trust_counts: Counter[str] | None = None
               ) -> tuple[str, str] | None:
    """Apply steps 0 to 2 to `item` (its label may be replaced, its `lineage_extra` set); (reason, detail)
    when it is to be skipped. The detail says how many workers, never who. `decisions` counts the review
    decisions used, `trust_counts` where the worker trusts came from."""
    trust_counts = trust_counts if trust_counts is not None else Counter()
    if options.reviewed_only:
        from toolkit.export.review import check_reviewed

        before = item.label
        skipped = check_reviewed(item, decisions if decisions is not None else Counter())
        if skipped is not None:
            return skipped
        if item.label is not before:  # an edit: adjudicated, not re-consolidated or filtered by agreement
            if options.exclusion_reasons:
                item.lineage_extra["excluded_answers"] = dict.fromkeys(options.exclusion_reasons, 0)
            if options.workers is not None:
                item.lineage_extra["worker_trust"] = 1.0
            return None
    label = item.label
    if options.exclusion_reasons:  # the same keys on every record: one column shape for `datasets`
        item.lineage_extra["excluded_answers"] = dict.fromkeys(options.exclusion_reasons, 0)
    contributing: list[str] = []
    if options.exclude_workers or options.workers is not None:
        stored = item.full_data().get(item.attribute)
        listed = _listed_workers(stored) or []
        reasons = {}
        for entry in listed:
            worker_id = entry.get("workerId")
            reason = options.exclusion(worker_id) if isinstance(worker_id, str) else None
            if reason is not None:
                reasons[worker_id] = reason
        contributing = [w["workerId"] for w in listed if isinstance(w.get("workerId"), str) and w.get("valid") is True]
        if reasons:
            # The reader leaves the workers' audit answers unread (it never needs them); here they are.
            try:
                label = consolidated.decode(stored)
            except ValidationError:
                return _why(reasons), "the label's copies of the workers' answers cannot be read"
            kept = [w for w in label.workers if w.worker_id not in reasons]
            counted = {k: n for k, n in Counter(reasons.values()).items() if n}
            shown = _shown(counted)
            if any(w.answer_omitted for w in kept):
                return _why(reasons), (f"{shown}; the label holds no copy of the other answers to consolidate "
                                       "again (export with --worker-responses)")
            if not any(w.valid and w.answer is not None for w in kept):
                return _why(reasons), f"no valid answer left without the {shown}"
            item.label = label = consolidate(kept, schema, data_object=item.full_data())
            item.lineage_extra["excluded_answers"].update(counted)
            contributing = [w.worker_id for w in kept if w.valid and w.answer is not None]
    if options.min_agreement is not None:
        overall = label.agreement.overall
        if overall is None or overall < options.min_agreement:
            shown = "unknown" if overall is None else f"{overall:.3f}"
            return BELOW_MIN_AGREEMENT, f"agreement {shown} < {options.min_agreement:g}"
    if options.workers is not None:
        item.lineage_extra["worker_trust"] = round(options.workers.trust(contributing, trust_counts), 4)
    return None


def _why(reasons: dict[str, str]) -> str:
    """The item's skip reason: excluded-worker if any worker was excluded by name, else below-min-worker-f1."""
    return EXCLUDED_WORKER if EXCLUDED_WORKER in reasons.values() else BELOW_MIN_WORKER_F1


def _shown(counted: dict[str, int]) -> str:
    words = {EXCLUDED_WORKER: "excluded worker(s)", BELOW_MIN_WORKER_F1: "worker(s) below --min-worker-f1"}
    return " and ".join(f"{n} {words[k]}" for k, n in sorted(counted.items()))


def _weigh(lineage: dict[str, Any]) -> None:
    if "chosen" in lineage and "rejected" in lineage:  # a pair: each side keeps its own
        for side in ("chosen", "rejected"):
            if isinstance(lineage[side], dict):
                _weigh(lineage[side])
        return
    agreement = lineage.get("agreement")
    weight = 1.0 if agreement is None else float(agreement)
    trust = lineage.get("worker_trust")
    lineage["quality_weight"] = weight if trust is None else round(weight * float(trust), 4)


def weigh(records: Iterable[dict[str, Any]], options: TrustOptions) -> None:
    """Step 3, in place."""
    if not options.weights:
        return
    for record in records:
        if isinstance(record.get("lineage"), dict):
            _weigh(record["lineage"])


def trust_summary(options: TrustOptions, counts: Counter[str]) -> str | None:
    """The run summary's line on where the worker trusts came from; raises WorkerReportError when the
    labels' workers were listed but none is in the report (another job's report, or the wrong --id-key)."""
    workers = options.workers
    if workers is None:
        return None
    answers = counts[GOLD] + counts[NO_GOLD] + counts[NOT_IN_REPORT]
    if answers and workers.f1 and not counts[GOLD] + counts[NO_GOLD]:
        key = " (or its pseudonyms need the --id-key it was made with)" if workers.pseudonymized else ""
        raise WorkerReportError(f"{workers.source}: none of the {answers} answers' workers is in this worker "
                                f"report: is it this job's report{key}?")
    return (f"answers by workers with a gold F1: {counts[GOLD]}, without (trust {workers.default:g}): "
            f"{counts[NO_GOLD]}, not in the report: {counts[NOT_IN_REPORT]}; "
            f"items listing no workers: {counts[NO_WORKERS]}")


__all__ = ["BELOW_MIN_AGREEMENT", "BELOW_MIN_WORKER_F1", "EXCLUDED_WORKER", "TrustOptions", "WorkerTrust",
           "check_item", "trust_summary", "weigh"]
