"""Consolidating comparison tasks (schema mode: compare) across workers; pure functions.

- Answers whose `order` is not exactly the data object's candidate ids are invalid (the worker
  judged something other than this task's candidates).
- **Preference**: majority over valid workers of the preferred candidate id, `none` counting as a
  vote of its own; a tied top vote gives no winner (`tie=true`). Agreement = top votes / workers.
- **Strength**: mean over valid workers of the CMOS strength towards the winner (a worker who
  preferred another candidate counts negative, no preference 0), so 3 = all say "much better".
- **MOS**: mean per candidate. **Spans**: per preferred candidate, the workers' marks are matched
  by temporal IoU exactly like segments (`match_segments`), boundaries the median, reason the
  majority.
- **Position**: how often the preferred candidate was shown first, second, ...: a position-bias
  check (with a shuffled order, a fair job has them about even).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from toolkit.contract.consolidated import ConsolidatedComparison, ConsolidatedSpan, WorkerAnswer
from toolkit.labeling.matching import Member, match_segments

LETTERS = "ABCD"
NO_PREFERENCE = "none"
ROUND = 3


def candidate_systems(data_object: dict[str, Any] | None) -> dict[str, str | None]:
    """Candidate id -> system id from a manifest line (ids default to 1, 2, ... as the model fills them)."""
    cands = (data_object or {}).get("candidates")
    if not isinstance(cands, list):
        return {}
    out: dict[str, str | None] = {}
    for i, cand in enumerate(cands):
        if isinstance(cand, dict):
            out[str(cand.get("candidate-id") or i + 1)] = cand.get("system-id")
    return out


def order_problem(worker: WorkerAnswer, systems: dict[str, str | None]) -> str | None:
    """Why a worker's comparison does not fit the task's candidates, or None."""
    comp = worker.answer.comparison if worker.answer else None
    if comp is None or not systems:
        return None
    if sorted(comp.order) != sorted(systems):
        return "comparison.order: the candidates shown are not this task's candidates"
    return None


def consolidate_comparison(valid: Sequence[WorkerAnswer], systems: dict[str, str | None], *,
                           iou_threshold: float = 0.5) -> ConsolidatedComparison | None:
    judged = [w for w in valid if w.answer is not None and w.answer.comparison is not None]
    if not judged:
        return None
    votes: Counter[str] = Counter()
    for w in judged:
        votes[w.answer.comparison.preferred or NO_PREFERENCE] += 1
    top = max(votes.values())
    leaders = [k for k, c in votes.items() if c == top]
    winner = leaders[0] if len(leaders) == 1 and leaders[0] != NO_PREFERENCE else None
    strengths = []
    for w in judged:
        comp = w.answer.comparison
        if winner is None or comp.preferred is None:
            strengths.append(0)
        else:
            strengths.append(comp.strength if comp.preferred == winner else -comp.strength)
    mos: dict[str, list[float]] = {}
    positions: Counter[str] = Counter()
    for w in judged:
        comp = w.answer.comparison
        for key, value in comp.mos.items():
            mos.setdefault(key, []).append(value)
        if comp.preferred is not None:
            positions[LETTERS[comp.order.index(comp.preferred)]] += 1
    return ConsolidatedComparison(
        systems=systems or {k: None for k in judged[0].answer.comparison.order},
        preferred=winner,
        preferred_system=systems.get(winner) if winner else None,
        votes=dict(sorted(votes.items())),
        tie=len(leaders) > 1,
        agreement=round(top / len(judged), ROUND),
        strength=round(sum(strengths) / len(strengths), ROUND),
        mos={k: round(sum(v) / len(v), ROUND) for k, v in sorted(mos.items())},
        preferred_positions=dict(sorted(positions.items())),
        orders={w.worker_id: list(w.answer.comparison.order) for w in judged},
        spans=_spans(judged, systems, iou_threshold),
    )


def _spans(judged: Sequence[WorkerAnswer], systems: dict[str, str | None],
           iou_threshold: float) -> list[ConsolidatedSpan]:

    groups: dict[str, dict[str, list[Member]]] = {}
    for w in judged:
        for span in w.answer.comparison.spans:
            groups.setdefault(span.preferred, {}).setdefault(w.worker_id, []).append(
                Member(w.worker_id, span.start, span.end, "", {"reason": span.reason}, None))
    found = []
    for preferred, per_worker in groups.items():
        for members in per_worker.values():
            members.sort(key=lambda m: (m.start, m.end))
        for cluster in match_segments(per_worker, iou_threshold):
            reasons = Counter(str(m.attributes["reason"]) for m in cluster.members)
            found.append((cluster.start, cluster.end, preferred, reasons, len(cluster.members)))
    found.sort(key=lambda x: (x[0], x[1], x[2]))
    return [ConsolidatedSpan(id=f"span-{i:04d}", start=round(start, ROUND), end=round(end, ROUND),
                             preferred=preferred, preferred_system=systems.get(preferred),
                             reason=reasons.most_common(1)[0][0], reasons=dict(reasons), support=support)
            for i, (start, end, preferred, reasons, support) in enumerate(found, start=1)]


