"""System scores from comparison tasks: pairwise outcomes, win rates with Wilson confidence
intervals and a Bradley-Terry fit. Pure functions; `gtkit report` shows them per job.

Outcomes come from each consolidated comparison's votes: a worker who preferred candidate c gives
c one win over every other candidate of the task; "no preference" gives every pair a tie, counted
as half a win each way (the usual convention, e.g. Chatbot Arena's).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

NO_PREFERENCE = "none"
Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class SystemScore:
    system: str
    games: float         # pairwise comparisons it took part in
    wins: float          # ties count 1/2
    win_rate: float
    ci_low: float        # Wilson score interval, 95 %
    ci_high: float
    strength: float      # Bradley-Terry strength, normalised to sum to 1 over the systems


def outcomes_from_votes(votes: Mapping[str, int], systems: Mapping[str, str]) -> Iterable[tuple[str, str, float]]:
    """(winner system, loser system, weight) from one task's votes (candidate id or 'none' -> workers)."""
    cands = list(systems)
    for key, count in votes.items():
        if not count:
            continue
        if key == NO_PREFERENCE:
            for i, a in enumerate(cands):
                for b in cands[i + 1:]:
                    yield systems[a], systems[b], 0.5 * count
                    yield systems[b], systems[a], 0.5 * count
        elif key in systems:
            for other in cands:
                if other != key:
                    yield systems[key], systems[other], float(count)


def wilson_interval(wins: float, games: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927); (0, 1) without games."""
    if games <= 0:
        return 0.0, 1.0
    p = wins / games
    denom = 1 + z * z / games
    centre = (p + z * z / (2 * games)) / denom
    half = z * math.sqrt(p * (1 - p) / games + z * z / (4 * games * games)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bradley_terry(wins: Mapping[tuple[str, str], float], *, iterations: int = 10_000,
                  tolerance: float = 1e-12) -> dict[str, float]:
    """Maximum-likelihood Bradley-Terry strengths by Hunter's (2004) MM algorithm.

    `wins[(i, j)]` = how often i beat j. Returns strengths summing to 1 (P(i beats j) =
    s_i / (s_i + s_j)). A system that never won gets 0; systems never compared with the rest
    of the graph are not identifiable and keep what the iteration gives them."""
    players = sorted({p for pair in wins for p in pair})
    if not players:
        return {}
    total_wins = {p: 0.0 for p in players}
    games: dict[tuple[str, str], float] = defaultdict(float)
    for (a, b), w in wins.items():
        if a == b or w <= 0:
            continue
        total_wins[a] += w
        games[(a, b)] += w
        games[(b, a)] += w
    strength = {p: 1.0 / len(players) for p in players}
    for _ in range(iterations):
        new = {}
        for i in players:
            denom = sum(n / (strength[i] + strength[j]) for (a, j), n in games.items() if a == i
                        if strength[i] + strength[j] > 0)
            new[i] = total_wins[i] / denom if denom > 0 else 0.0
        norm = sum(new.values()) or 1.0
        new = {p: v / norm for p, v in new.items()}
        if max(abs(new[p] - strength[p]) for p in players) < tolerance:
            strength = new
            break
        strength = new
    return strength


def system_scores(outcomes: Iterable[tuple[str, str, float]]) -> list[SystemScore]:
    """Win rate, its 95 % interval and the Bradley-Terry strength per system, strongest first."""
    wins: dict[tuple[str, str], float] = defaultdict(float)
    won: dict[str, float] = defaultdict(float)
    played: dict[str, float] = defaultdict(float)
    for winner, loser, weight in outcomes:
        if winner == loser:
            continue
        wins[(winner, loser)] += weight
        won[winner] += weight
        played[winner] += weight
        played[loser] += weight
    strengths = bradley_terry(wins)
    out = []
    for system in played:
        lo, hi = wilson_interval(won[system], played[system])
        out.append(SystemScore(system=system, games=played[system], wins=won[system],
                               win_rate=won[system] / played[system], ci_low=lo, ci_high=hi,
                               strength=strengths.get(system, 0.0)))
    return sorted(out, key=lambda s: (-s.strength, -s.win_rate, s.system))
