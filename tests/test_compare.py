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
from toolkit.storage import Storage
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


# -- consolidation ---------------------------------------------------------------------------------
def worker(order, preferred, strength, spans=(), mos=None) -> dict:
    """The answerContent the template posts for such a judgement."""
    return {"answer": json.dumps({"labelSchema": "tts-compare", "mediaDuration": 4.0,
            "comparison": {"order": order, "preferred": preferred, "strength": strength, "mos": mos or {},
                           "spans": [{"id": f"s{i}", "start": a, "end": b, "preferred": p, "reason": r}
                                     for i, (a, b, p, r) in enumerate(spans)]}})}


def test_consolidation_majority_strength_agreement_spans_positions():
    from toolkit.labeling.consolidate import consolidate

    schema = load_label_schema("tts-compare")
    data = line(2)
    answers = [
        ("w1", worker(["2", "1"], "1", 3, [(1.0, 2.0, "1", "Prosody")], {"1": 4, "2": 2})),
        ("w2", worker(["1", "2"], "1", 1, [(1.1, 2.1, "1", "Prosody")], {"1": 5, "2": 3})),
        ("w3", worker(["2", "1"], "2", 2, [(1.05, 1.9, "1", "Artifact")])),
        ("w4", worker(["1", "2"], None, 0)),
    ]
    label = consolidate(answers, schema, data_object=data)
    comp = label.comparison
    assert label.status == "ok" and label.valid_worker_count == 4
    assert comp.systems == {"1": "sys-0", "2": "sys-1"}
    assert (comp.preferred, comp.preferred_system, comp.tie) == ("1", "sys-0", False)
    assert comp.votes == {"1": 2, "2": 1, "none": 1}
    assert comp.agreement == 0.5 and label.agreement.comparison == 0.5
    assert comp.strength == pytest.approx((3 + 1 - 2 + 0) / 4, abs=1e-3)
    assert comp.mos == {"1": 4.5, "2": 2.5}
    assert comp.preferred_positions == {"A": 2, "B": 1}  # w1's "1" was B, w2's A, w3's "2" was A
    (span,) = comp.spans
    assert (span.preferred, span.support, span.reason) == ("1", 3, "Prosody")
    assert span.reasons == {"Prosody": 2, "Artifact": 1}
    assert span.start == pytest.approx(1.05) and span.end == pytest.approx(2.0)


def test_consolidation_tie_gives_no_winner_and_a_foreign_order_is_invalid():
    from toolkit.labeling.consolidate import consolidate

    schema = load_label_schema("tts-compare")
    label = consolidate([("w1", worker(["1", "2"], "1", 2)), ("w2", worker(["2", "1"], "2", 2)),
                         ("w3", worker(["1", "9"], "1", 2))], schema, data_object=line(2))
    assert label.valid_worker_count == 2
    assert label.workers[2].problems == ["comparison.order: the candidates shown are not this task's candidates"]
    assert label.comparison.tie is True and label.comparison.preferred is None and label.comparison.strength == 0


def test_simulated_local_job_answers_compare_tasks_through_post_annotation(tmp_path):
    from toolkit.service.local_job import run_local_job

    out = tmp_path / "out"
    run_local_job(manifest=str(EXAMPLE), schema=load_label_schema("tts-compare"), workers=3, out=str(out),
                  simulate_workers=True, storage=Storage([f"s3://example-feedback-bucket/={REPO / 'examples'}"]))
    (manifest,) = out.glob("*/manifests/output/output.manifest")
    lines = [json.loads(t) for t in manifest.read_text().splitlines()]
    assert len(lines) == 2
    for data in lines:
        label = data["segments"]
        assert label["status"] == "ok" and label["validWorkerCount"] == 3
        comp = label["comparison"]
        assert sum(comp["votes"].values()) == 3 and set(comp["orders"]) == {"sim-worker-1", "sim-worker-2",
                                                                             "sim-worker-3"}
        assert sorted(next(iter(comp["orders"].values()))) == sorted(c["candidate-id"] if "candidate-id" in c
                                                                     else str(i + 1)
                                                                     for i, c in enumerate(data["candidates"]))


def test_simulated_comparisons_are_valid_and_favour_the_better_system():
    from toolkit.service.simulate import simulated_answer_content, system_quality

    schema = load_label_schema("tts-compare")
    wins: Counter[str] = Counter()
    for k in range(60):
        data = line(3, iid=f"sim-{k}")
        task_input, _ = build_task_input(data)
        for w in (1, 2, 3):
            content = simulated_answer_content(task_input, schema, w, data_object=data)
            parsed = SegmentationAnswer.model_validate_json(content["answer"])
            assert validate_answer(parsed, schema) == []
            comp = parsed.comparison
            assert comp.order == [c["candidate-id"] for c in task_input["candidates"]]
            if comp.preferred:
                wins[f"sys-{int(comp.preferred) - 1}"] += 1
    best = max(("sys-0", "sys-1", "sys-2"), key=system_quality)
    assert wins.most_common(1)[0][0] == best


def test_compare_template_grants_each_candidate_in_task_input_order_and_never_shows_system_ids():
    from toolkit.task.liquid import render_liquid
    from toolkit.task.template import render_template

    template = render_template(load_label_schema("tts-compare"), "/assets")
    assert "data-candidate-3-url" in template and "data-media-url" not in template
    data = line(3, prompt={"text": "Hi", "reference-ref": "s3://b/ref.wav"})
    task_input, _ = build_task_input(data)
    granted: list[str] = []
    page = render_liquid(template, task_input, lambda uri: granted.append(uri) or f"/m/{len(granted)}")
    shown = [c["source-ref"] for c in task_input["candidates"]]
    assert granted == [*shown, "s3://b/ref.wav"]
    for i in range(3):
        assert f'data-candidate-{i}-url="/m/{i + 1}"' in page
    assert "data-candidate-3-url" not in page and 'data-reference-url="/m/4"' in page
    assert "sys-" not in page


# -- fuzzing: a candidates list of any shape is refused with field paths, never a crash ----------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3), max_leaves=8)
candidate = st.fixed_dictionaries({}, optional={"source-ref": st.sampled_from(["s3://b/a.wav", "s3://b/b.wav", "x"]),
                                                "system-id": json_values, "candidate-id": json_values,
                                                "duration-seconds": json_values, "extra": json_values})


@settings(max_examples=150, deadline=None)
@given(cands=st.lists(candidate, max_size=5) | json_values, prompt=json_values)
def test_fuzzed_candidates_are_validated_with_field_paths(cands, prompt):
    data = {**line(2), "candidates": cands, "prompt": prompt}
    try:
        parsed = ManifestLine.model_validate(data)
    except ValidationError as exc:
        for problem in problems_from(exc):
            assert problem.path and problem.message
        return
    if parsed.candidates is None:  # `candidates: null` is an ordinary (segmentation) line
        return
    assert 2 <= len(parsed.candidates) <= 4
    task_input, reason = build_task_input(data)
    assert reason is None and all("system-id" not in c for c in task_input["candidates"])


def test_schema_check_describes_a_comparison(tmp_path):
    from typer.testing import CliRunner

    from toolkit.cli import app

    result = CliRunner().invoke(app, ["schema", "check", str(REPO / "toolkit" / "schemas" / "tts-compare.yaml")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "comparison of 2-4 candidates, 6 span reasons, MOS on, 1 content fields" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntitle: X\nmode: compare\ncompare: {max_candidates: 5}\n")
    result = CliRunner().invoke(app, ["schema", "check", str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "compare.max_candidates" in result.output
