"""Temporal matching of spans across workers: greedy IoU onto running median clusters.

Segments (labeling/consolidate.py) and compare-mode span marks (labeling/compare.py) are matched the
same way, so both import it from here.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from toolkit.contract.answer import FieldValue


@dataclass(slots=True)
class Member:
    worker: str
    start: float
    end: float
    text: str
    attributes: dict[str, FieldValue]
    presegment_id: str | None


@dataclass(slots=True)
class Cluster:
    members: list[Member] = field(default_factory=list)
    start: float = 0.0  # current median span, used for matching
    end: float = 0.0

    def add(self, member: Member) -> None:
        self.members.append(member)
        if len(self.members) == 1:
            self.start, self.end = member.start, member.end
        else:
            self.start = statistics.median(m.start for m in self.members)
            self.end = statistics.median(m.end for m in self.members)


def iou(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """Temporal intersection over union of two spans (0 when they do not overlap)."""
    inter = min(a_end, b_end) - max(a_start, b_start)
    if inter <= 0:
        return 0.0
    union = max(a_end, b_end) - min(a_start, b_start)
    return inter / union if union > 0 else 0.0


def match_segments(per_worker: dict[str, list[Member]], iou_threshold: float) -> list[Cluster]:
    """Greedy IoU matching of each worker's segments onto the clusters built so far."""
    clusters: list[Cluster] = []
    for members in per_worker.values():
        if not clusters:
            for m in members:
                c = Cluster()
                c.add(m)
                clusters.append(c)
            continue
        # Candidate pairs: only spans that overlap can reach the threshold. Both lists are sorted
        # by start, so a sweep keeps this near-linear for ordinary (mostly disjoint) segments.
        order = sorted(range(len(clusters)), key=lambda i: clusters[i].start)
        pairs: list[tuple[float, int, int]] = []
        lo = 0
        for mi, m in enumerate(members):
            # A cluster ending before this segment starts cannot match it or any later one.
            while lo < len(order) and clusters[order[lo]].end <= m.start:
                lo += 1
            for ci in order[lo:]:
                c = clusters[ci]
                if c.start >= m.end:
                    break
                score = iou(m.start, m.end, c.start, c.end)
                if score >= iou_threshold:
                    pairs.append((score, mi, ci))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        used_m: set[int] = set()
        used_c: set[int] = set()
        for _score, mi, ci in pairs:
            if mi in used_m or ci in used_c:
                continue
            used_m.add(mi)
            used_c.add(ci)
            clusters[ci].add(members[mi])
        for mi, m in enumerate(members):
            if mi not in used_m:
                c = Cluster()
                c.add(m)
                clusters.append(c)
    return clusters
