"""toolkit.service.simulate: seeded, plausible simulated workers (the demo's labels)."""

from __future__ import annotations

import json
from collections import Counter
from statistics import mean

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer
from toolkit.contract.base import dump
from toolkit.contract.schema import builtin_schema_names
from toolkit.service.errors import LocalJobError
from toolkit.service.simulate import Correction, load_corrections, simulated_answer, simulated_answer_content

PRE = [
    {"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.56,
     "text": "Northwind support. What's the odor number?"},
    {"id": "pre-2", "track": "speaker", "label": "Customer", "start": 4.9, "end": 8.2,
     "text": "Hi, my order was due on Monday, and it still hasn't arrived."},
    {"id": "pre-3", "track": "speaker", "label": "Agent", "start": 9.6, "end": 11.5,
     "text": "Sorry about that. I've sent a replacement, it arrives today."},
    {"id": "pre-4", "track": "speaker", "label": "Customer", "start": 12.9, "end": 14.0, "text": "Thanks."},
]
FIXES = [Correction("odor number", "order number")]


def task(n: int) -> dict:
    return {"source-ref": f"s3://b/call_{n}.wav", "interaction-id": f"int-{n:04d}", "duration-seconds": 15.0,
            "language-code": "en-US", "pre-segments": PRE}


@pytest.fixture
def schema():
    return load_label_schema("call-center")


def answers(schema, items: int = 30, workers: int = 3, **kw) -> dict[tuple[int, int], dict]:
    return {(i, w): dump(simulated_answer(task(i), schema, w, corrections=FIXES, **kw))
            for i in range(items) for w in range(1, workers + 1)}


def test_the_same_worker_and_item_give_the_same_answer_and_seeds_differ(schema):
    a = simulated_answer_content(task(1), schema, 2, corrections=FIXES)
    assert simulated_answer_content(task(1), schema, 2, corrections=FIXES) == a
    assert simulated_answer_content(task(1), schema, 2, corrections=FIXES, seed=1) != a


def test_every_answer_is_schema_valid_for_every_builtin_schema():
    for name in builtin_schema_names():
        schema = load_label_schema(name)
        if schema.mode == "compare":  # comparison tasks: tests/test_compare.py
            continue
        for (i, w), answer in answers(schema, items=10).items():
            problems = validate_answer(SegmentationAnswer.model_validate(answer), schema)
            assert problems == [], (name, i, w, problems)


def test_workers_disagree_on_boundaries_and_miss_or_add_segments(schema):
    got = answers(schema)
    starts = {w: [s["start"] for s in got[(0, w)]["segments"] if s.get("presegmentId") == "pre-2"] for w in (1, 2, 3)}
    assert len({tuple(v) for v in starts.values()}) == 3  # three workers, three boundaries
    for answer in got.values():
        for seg in answer["segments"]:
            if seg.get("presegmentId"):
                pre = next(p for p in PRE if p["id"] == seg["presegmentId"])
                assert abs(seg["start"] - pre["start"]) <= 0.6 and abs(seg["end"] - pre["end"]) <= 0.6
    found = [{s.get("presegmentId") for s in a["segments"]} for a in got.values()]
    assert any(not {p["id"] for p in PRE} <= f for f in found)  # a missed pre-segment
    speaker_ids = [{t["id"] for t in a["tracks"] if t["category"] == "speaker"} for a in got.values()]
    extras = [s for a, ids in zip(got.values(), speaker_ids, strict=True) for s in a["segments"]
              if s["track"] in ids and not s.get("presegmentId")]
    assert extras and all(s["text"] in ("Mm-hmm.", "Okay.", "Right.") for s in extras)
    # Some workers mark the language track, not all.
    marked = [any(t["category"] == "language" for t in a["tracks"]) for a in got.values()]
    assert any(marked) and not all(marked)


def test_ratings_vary_per_item_and_per_worker(schema):
    got = answers(schema)
    ratings = {k: a["content"]["overall_rating"] for k, a in got.items()}
    assert len(set(ratings.values())) >= 3
    per_item = [mean(ratings[(i, w)] for w in (1, 2, 3)) for i in range(30)]
    assert len(set(per_item)) >= 4
    assert any(len({ratings[(i, w)] for w in (1, 2, 3)}) > 1 for i in range(30))  # workers disagree
    noise = Counter(tuple(a["content"]["background_noise"]) for a in got.values())
    assert len(noise) > 1 and noise.most_common(1)[0][0] == ("None",)


def test_known_asr_errors_are_corrected_by_most_workers(schema):
    got = answers(schema)
    first = [next(s for s in a["segments"] if s.get("presegmentId") == "pre-1")["text"]
             for a in got.values() if any(s.get("presegmentId") == "pre-1" for s in a["segments"])]
    fixed = sum(t == "Northwind support. What's the order number?" for t in first)
    assert fixed > len(first) / 2 and all(t in (PRE[0]["text"], "Northwind support. What's the order number?")
                                          for t in first)
    # Without a corrections file the machine text stays.
    plain = dump(simulated_answer(task(0), schema, 1))
    assert all(s["text"] == next(p["text"] for p in PRE if p["id"] == s["presegmentId"])
               for s in plain["segments"] if s.get("presegmentId"))


def test_summaries_are_written_from_the_transcript(schema):
    got = answers(schema, items=3)
    summaries = {a["content"]["summary"] for a in got.values()}
    assert len(summaries) > 1
    for text in summaries:
        assert "my order was due on monday, and it still hasn't arrived" in text.lower()


def test_emotion_follows_the_words(schema):
    got = answers(schema)
    emotions = Counter(s["attributes"].get("emotion") for a in got.values() for s in a["segments"]
                       if s.get("presegmentId") == "pre-2")
    assert emotions.most_common(1)[0][0] == "Frustrated" and len(emotions) > 1


def test_corrections_file(tmp_path, examples):
    fixes = load_corrections(examples / "asr-corrections.yaml")
    assert Correction("odor number", "order number") in fixes
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"corrections": [{"heard": "a", "said": "b"}, {"heard": "", "said": "x"}]}))
    with pytest.raises(LocalJobError, match=r"bad.yaml: corrections\[1\] needs text 'heard' and 'said'"):
        load_corrections(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(LocalJobError, match="expected a mapping with a 'corrections' list"):
        load_corrections(bad)
    bad.write_bytes(b"corrections: [\xff]\n")
    with pytest.raises(LocalJobError, match=r"bad\.yaml: 'utf-8' codec can't decode"):
        load_corrections(bad)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.text(max_size=60),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                     st.sampled_from(["corrections", "heard", "said", "x"]), inner, max_size=3),
                 max_leaves=12).map(lambda v: yaml.safe_dump(v))))
def test_any_corrections_file_loads_or_is_refused_by_name(tmp_path, content):
    path = tmp_path / "fuzz.yaml"
    path.write_text(content, encoding="utf-8")
    try:
        fixes = load_corrections(path)
    except LocalJobError as exc:
        assert str(exc).startswith(f"corrections file {path}")
    else:
        assert all(isinstance(f.heard, str) and f.heard and isinstance(f.said, str) for f in fixes)
