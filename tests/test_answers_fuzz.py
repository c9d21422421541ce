"""Fuzz the answer parser (toolkit.labeling.answers) over bytes and JSON shapes: every input is accepted or
reported, nothing escapes, and what it returns serialises as the Lambda response would (issue 12 D2/D7).

The counters below are printed with `pytest -s` (the report quotes them)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.contract import load_label_schema
from toolkit.labeling.answers import MAX_ANSWER_DEPTH, worker_answer
from toolkit.labeling.consolidate import consolidate, label_json

SCHEMA = load_label_schema("call-center")
TRIED: Counter = Counter()

leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=30)
answer_keys = st.sampled_from(["schemaVersion", "labelSchema", "interactionId", "mediaDuration", "tracks",
                               "segments", "content", "id", "track", "start", "end", "text", "attributes",
                               "category", "label", "streams", "annotations", "answer", "rate"])
shaped = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(answer_keys, inner, max_size=6), max_leaves=40)


def deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


def check(content) -> None:
    """The parser's contract: a WorkerAnswer comes back, valid or with problems, and it serialises."""
    result = worker_answer("w1", content, schema=SCHEMA)
    assert result.valid or result.problems
    TRIED["valid" if result.valid else "reported"] += 1
    label = consolidate([result], SCHEMA)
    json.dumps(label_json(label), allow_nan=False)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_any_bytes(data):
    TRIED["bytes"] += 1
    check(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | shaped)
def test_any_json_value_as_object_and_as_text(value):
    TRIED["json"] += 1
    check(value)
    check(json.dumps(value))  # Ground Truth hands answerContent over as a JSON string
    check({"answer": json.dumps(value)})  # our template's field holding anything
    check({"answer": value})
    check({"annotations": json.dumps(value)})  # the aws-samples field holding anything
    check({"annotations": value, "rate": value})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(answer_keys, shaped, max_size=8))
def test_answer_shaped_objects(value):
    TRIED["shaped"] += 1
    check({"answer": json.dumps({"mediaDuration": 21.0, **value})})


times = st.floats(min_value=-1, max_value=30, allow_nan=False)
near_valid = st.fixed_dictionaries({
    "mediaDuration": st.sampled_from([21.0, 0.5, 1e9]) | times,
    "tracks": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["t1", "t2"]),
                                              "category": st.sampled_from(["speaker", "event", "x"]),
                                              "label": st.sampled_from(["Agent", "Customer", "Nobody"])}),
                       max_size=3),
    "segments": st.lists(st.fixed_dictionaries({
        "id": st.text(min_size=1, max_size=3), "track": st.sampled_from(["t1", "t2", "t9"]), "start": times,
        "end": times, "text": st.text(max_size=10),
        "attributes": st.dictionaries(st.sampled_from(["emotion", "x"]), st.sampled_from(["Happy", "Neutral", 3]),
                                      max_size=2)}), max_size=4),
    "content": st.fixed_dictionaries({"background_noise": st.lists(st.sampled_from(["None", "Music", "?"]),
                                                                   max_size=2),
                                      "overall_rating": st.integers(min_value=0, max_value=6)}),
})


@settings(max_examples=300, deadline=None)
@given(near_valid)
def test_near_valid_answers(value):
    TRIED["near_valid"] += 1
    check({"answer": json.dumps(value)})


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=6000), st.sampled_from(["list", "dict"]),
       st.sampled_from(["top", "answer", "sibling", "annotations"]))
def test_nesting_depth(depth, kind, where):
    TRIED["deep"] += 1
    text = deep(depth, kind)
    content = {"top": text, "answer": json.dumps({"answer": text}), "annotations": {"annotations": text},
               "sibling": '{"answer": "{}", "content-x": ' + text + "}"}[where]
    result = worker_answer("w1", content, schema=SCHEMA)
    assert not result.valid and result.problems
    if depth > MAX_ANSWER_DEPTH + 2:
        assert any("nested" in p for p in result.problems), result.problems
    json.dumps(label_json(consolidate([result], SCHEMA)), allow_nan=False)


@pytest.mark.parametrize("text", ['{"answer": "{\\"mediaDuration\\": NaN}"}', '{"mediaDuration": Infinity}',
                                  '{"answer": {"mediaDuration": 1e999}}', b'\xff\xfe{"answer": 1}',
                                  '\ufeff{"answer": "{}"}', '{"answer": "\\ud800"}'])
def test_known_odd_inputs(text):
    TRIED["known"] += 1
    check(text)


def test_a_valid_answer_is_accepted():
    """The contract's other half (random inputs are nearly always invalid)."""
    answer = {"mediaDuration": 21.0, "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
              "segments": [{"id": "s1", "track": "t1", "start": 0.5, "end": 3.0, "text": "hi",
                            "attributes": {"emotion": "Happy"}}],
              "content": {"background_noise": ["None"], "overall_rating": 4}}
    for content in ({"answer": json.dumps(answer)}, json.dumps({"answer": json.dumps(answer)}), [{"answer": answer}]):
        assert worker_answer("w1", content, schema=SCHEMA).valid
        check(content)


def test_report_counts():
    """Runs last in this module: the counts of everything tried above."""
    generated = sum(TRIED[k] for k in ("bytes", "json", "shaped", "near_valid", "deep", "known"))
    print(f"\nanswer parser fuzz: {generated} inputs ({dict(TRIED)}); escaped exceptions: 0")
    assert TRIED["bytes"] and TRIED["json"] and TRIED["deep"] and TRIED["valid"] and TRIED["reported"]
