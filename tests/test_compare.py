"""Comparison tasks (mode: compare): schema, manifest line, task input order, answer validation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from toolkit.contract.answer import ComparisonAnswer, SegmentationAnswer, validate_answer
from toolkit.contract.base import problems_from
from toolkit.contract.manifest import ManifestLine
from toolkit.contract.schema import LabelSchema, load_label_schema
from toolkit.task.task_input import build_task_input, candidate_order

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "compare" / "manifest.jsonl"


def line(n: int = 2, iid: str = "cmp-1", **extra) -> dict:
    return {"source-ref": "s3://b/ref.wav", "media-type": "audio", "interaction-id": iid,
            "duration-seconds": 4.0, "prompt": {"text": "Hello there."},
            "candidates": [{"source-ref": f"s3://b/{iid}-{i}.wav", "system-id": f"sys-{i}"} for i in range(n)],
            **extra}


def answer(order, preferred="1", strength=2, **comp) -> SegmentationAnswer:
    return SegmentationAnswer.model_validate({
        "labelSchema": "tts-compare", "mediaDuration": 4.0,
        "comparison": {"order": order, "preferred": preferred, "strength": strength, **comp}})


def test_builtin_compare_schema_loads():
    schema = load_label_schema("tts-compare")
    assert schema.mode == "compare" and schema.tracks == []
    assert schema.compare.max_candidates == 4 and "Prosody" in schema.compare.span_reasons


def test_compare_schema_refuses_tracks_and_segment_schema_needs_them():
    with pytest.raises(ValidationError, match="tracks and segment_fields do not apply"):
        LabelSchema.model_validate({"name": "x", "title": "X", "mode": "compare",
                                    "tracks": [{"name": "a", "labels": ["b"]}]})
    with pytest.raises(ValidationError, match="at least one track category"):
        LabelSchema.model_validate({"name": "x", "title": "X"})
    with pytest.raises(ValidationError, match="min_candidates must not exceed"):
        LabelSchema.model_validate({"name": "x", "title": "X", "mode": "compare",
                                    "compare": {"min_candidates": 4, "max_candidates": 3}})
    with pytest.raises(ValidationError, match="less than or equal to 4"):
        LabelSchema.model_validate({"name": "x", "title": "X", "mode": "compare", "compare": {"max_candidates": 5}})


def test_manifest_line_candidates_get_ids_and_errors_name_the_field():
    parsed = ManifestLine.model_validate(line(3))
    assert [c.candidate_id for c in parsed.candidates] == ["1", "2", "3"]
    bad = line(2)
    bad["candidates"][1]["source-ref"] = "https://not-s3"
    with pytest.raises(ValidationError) as exc:
        ManifestLine.model_validate(bad)
    assert [p.path for p in problems_from(exc.value)] == ["candidates.1.source-ref"]
    dup = line(2)
    dup["candidates"][1]["source-ref"] = dup["candidates"][0]["source-ref"]
    with pytest.raises(ValidationError, match="its own source-ref"):
        ManifestLine.model_validate(dup)
    with pytest.raises(ValidationError) as exc:
        ManifestLine.model_validate(line(5))
    assert problems_from(exc.value)[0].path == "candidates"
    unknown = line(2)
    unknown["candidates"][0]["system"] = "typo"
    with pytest.raises(ValidationError) as exc:
        ManifestLine.model_validate(unknown)
    assert problems_from(exc.value)[0].path == "candidates.0.system"


def test_example_manifest_is_valid():
    for text in EXAMPLE.read_text().splitlines():
        ManifestLine.model_validate(json.loads(text))


def test_task_input_hides_system_ids_and_shuffles_deterministically_per_task():
    orders = Counter()
    for k in range(200):
        data = line(2, iid=f"cmp-{k}")
        task_input, reason = build_task_input(data)
        assert reason is None
        assert all("system-id" not in c for c in task_input["candidates"])
        assert "sys-" not in json.dumps(task_input)
        assert build_task_input(data)[0] == task_input  # every render shows the same order
        orders[tuple(c["candidate-id"] for c in task_input["candidates"])] += 1
        assert sorted(candidate_order(data)) == [0, 1]
    # both orders occur, roughly balanced (binomial(200, 0.5): 70..130 is > 99.99 %)
    assert set(orders) == {("1", "2"), ("2", "1")}
    assert 70 <= orders[("1", "2")] <= 130


def test_comparison_answer_structure_and_schema_rules():
    schema = load_label_schema("tts-compare")
    good = answer(["2", "1"], "1", 2, mos={"1": 4, "2": 3},
                  spans=[{"id": "s1", "start": 0.5, "end": 1.5, "preferred": "2", "reason": "Prosody"}])
    assert validate_answer(good, schema) == []
    assert good.comparison.cmos() == 2  # shown second (B = "1") is the better one, by 2
    with pytest.raises(ValidationError, match="strength is 0 exactly when"):
        answer(["1", "2"], None, 2)
    with pytest.raises(ValidationError, match="not a shown candidate"):
        answer(["1", "2"], "3", 1)
    with pytest.raises(ValidationError, match=r"comparison.spans\[0\].end"):
        answer(["1", "2"], spans=[{"id": "s", "start": 1, "end": 9, "preferred": "1", "reason": "Other"}])
    wrong = answer(["1", "2"], mos={"1": 9}, spans=[{"id": "s", "start": 1, "end": 2, "preferred": "1",
                                                     "reason": "Bad vibes"}])
    assert {p.path for p in validate_answer(wrong, schema)} == {"comparison.mos.1", "comparison.spans[0].reason"}
    missing = SegmentationAnswer.model_validate({"mediaDuration": 4.0})
    assert [p.path for p in validate_answer(missing, schema)] == ["comparison"]
    seg_schema = load_label_schema("tts-quality")
    assert "comparison" in {p.path for p in validate_answer(good, seg_schema)}


def test_cmos_sign():
    assert ComparisonAnswer(order=["a", "b"], preferred="b", strength=3).cmos() == 3
    assert ComparisonAnswer(order=["a", "b"], preferred="a", strength=1).cmos() == -1
    assert ComparisonAnswer(order=["a", "b"]).cmos() == 0
    assert ComparisonAnswer(order=["a", "b", "c"], preferred="a", strength=1).cmos() is None
