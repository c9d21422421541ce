"""Bradley-Terry and win-rate intervals (toolkit/export/system_scores.py) against known answers."""

from __future__ import annotations

import pytest

from toolkit.export.system_scores import bradley_terry, outcomes_from_votes, system_scores, wilson_interval


def test_bradley_terry_recovers_known_strengths():
    # Observed wins equal to the expected wins of strengths 4 : 2 : 1 over 15 games a pair, so the
    # likelihood equations hold exactly at the true strengths (4/7, 2/7, 1/7).
    wins = {("a", "b"): 10, ("b", "a"): 5, ("a", "c"): 12, ("c", "a"): 3, ("b", "c"): 10, ("c", "b"): 5}
    got = bradley_terry(wins)
    assert got == pytest.approx({"a": 4 / 7, "b": 2 / 7, "c": 1 / 7}, abs=1e-9)


def test_bradley_terry_two_players_is_the_win_share():
    assert bradley_terry({("x", "y"): 3, ("y", "x"): 1}) == pytest.approx({"x": 0.75, "y": 0.25}, abs=1e-9)
    assert bradley_terry({("x", "y"): 2})["y"] == 0.0  # never won
    assert bradley_terry({}) == {}


def test_wilson_interval_known_values():
    # Wilson (1927) / Newcombe (1998) table: 81 of 263 -> 0.2553 .. 0.3662
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and round(lo, 4) == 0.7225  # 10/10: 0.7225 .. 1


def test_votes_become_pairwise_outcomes_with_half_ties():
    systems = {"1": "s-a", "2": "s-b", "3": "s-c"}
    got = sorted(outcomes_from_votes({"1": 2, "none": 1}, systems))
    assert got == sorted([("s-a", "s-b", 2.0), ("s-a", "s-c", 2.0),
                          ("s-a", "s-b", 0.5), ("s-b", "s-a", 0.5), ("s-a", "s-c", 0.5), ("s-c", "s-a", 0.5),
                          ("s-b", "s-c", 0.5), ("s-c", "s-b", 0.5)])


def test_system_scores_rank_and_count():
    outcomes = [("a", "b", 3.0), ("b", "a", 1.0), ("a", "c", 2.0), ("c", "b", 1.0), ("b", "c", 1.0)]
    scores = {s.system: s for s in system_scores(outcomes)}
    assert next(iter(scores)) == "a"  # strongest first
    assert (scores["a"].games, scores["a"].wins, scores["a"].win_rate) == (6.0, 5.0, pytest.approx(5 / 6))
    assert scores["a"].ci_low < 5 / 6 < scores["a"].ci_high
    assert sum(s.strength for s in scores.values()) == pytest.approx(1.0)
