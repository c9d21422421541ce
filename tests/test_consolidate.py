"""toolkit.labeling.consolidate: three workers with known answers -> known merged label."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.contract import ANSWER_FIELD, ConsolidatedLabel, SegmentationAnswer, load_label_schema
from toolkit.labeling.answers import worker_answer
from toolkit.labeling.consolidate import choose_text, consolidate, consolidate_batch, fit_response, iou, label_json


@pytest.fixture(scope="module")
def schema():
    return load_label_schema("call-center")


def answer(segments, content=None, duration=21.0) -> SegmentationAnswer:
    """segments: (label, start, end, text, emotion) on speaker tracks."""
    labels = sorted({s[0] for s in segments})
    tracks = [{"id": f"t-{lab}", "category": "speaker", "label": lab} for lab in labels]
    segs = [{"id": f"s{i}", "track": f"t-{lab}", "start": a, "end": b, "text": text,
             "attributes": {"emotion": emo} if emo else {}}
            for i, (lab, a, b, text, emo) in enumerate(segments)]
    return SegmentationAnswer.model_validate({
        "mediaDuration": duration, "interactionId": "int-0001", "labelSchema": "call-center",
        "tracks": tracks, "segments": segs,
        "content": content if content is not None else {"background_noise": ["None"], "overall_rating": 4}})


W1 = answer([("Agent", 0.40, 3.60, "Northwind support, this is Dana.", "Neutral"),
             ("Customer", 4.00, 8.00, "My order is late.", "Frustrated"),
             ("Agent", 9.00, 11.00, "Sorry about that.", "Neutral")],
            {"background_noise": ["None"], "overall_rating": 4, "summary": "late order"})
W2 = answer([("Agent", 0.50, 3.50, "Northwind support, this is Dana.", "Neutral"),
             ("Customer", 4.20, 8.20, "My order is late!", "Angry"),
             ("Agent", 9.10, 11.10, "Sorry about that.", "Neutral")],
            {"background_noise": ["Static", "None"], "overall_rating": 5, "summary": "late order"})
W3 = answer([("Agent", 0.30, 3.70, "Northwind support,  this is Dana. ", "Happy"),
             ("Customer", 3.90, 7.90, "My order is late.", "Frustrated"),
             ("Customer", 15.0, 16.0, "Let me find it.", None)],  # only W3 marked this one
            {"background_noise": ["None", "Static"], "overall_rating": 3, "summary": "order late"})


def test_three_workers_known_result(schema):
    label = consolidate([("w1", W1), ("w2", W2), ("w3", W3)], schema)
    assert label.status == "ok" and label.worker_count == 3 and label.valid_worker_count == 3
    assert label.interaction_id == "int-0001" and label.media_duration == 21.0
    segs = [(s.label, s.start, s.end, s.support) for s in label.segments]
    assert segs == [
        ("Agent", 0.4, 3.6, 3),      # medians of 0.3/0.4/0.5 and 3.5/3.6/3.7
        ("Customer", 4.0, 8.0, 3),   # medians of 3.9/4.0/4.2 and 7.9/8.0/8.2
        ("Agent", 9.05, 11.05, 2),   # two workers: median = mean
        ("Customer", 15.0, 16.0, 1),
    ]
    first, second, third, fourth = label.segments
    assert first.text == "Northwind support, this is Dana."  # majority after whitespace normalising
    assert first.texts["w3"] == "Northwind support,  this is Dana. "  # raw per-worker text kept
    assert first.attributes == {"emotion": "Neutral"} and first.attribute_agreement == {"emotion": 0.667}
    assert second.attributes == {"emotion": "Frustrated"}
    assert second.text == "My order is late."
    # agreement = support / valid workers x mean IoU with the consolidated span
    assert first.agreement == pytest.approx(3 / 3 * (1 + 3.0 / 3.2 + 3.2 / 3.4) / 3, abs=1e-3)
    assert fourth.agreement == pytest.approx(1 / 3, abs=1e-3) and fourth.attributes == {}
    assert third.agreement == pytest.approx(2 / 3 * (1.95 / 2.05 + 1.95 / 2.05) / 2, abs=1e-3)

    noise = label.content["background_noise"]
    assert noise.value == ["None", "Static"] and noise.votes == {'["None"]': 1, '["None", "Static"]': 2}
    assert noise.agreement == pytest.approx(0.667) and not noise.tie
    rating = label.content["overall_rating"]
    assert rating.value == 4.0 and rating.mean == 4.0
    assert rating.agreement == pytest.approx(1 - (2 / 3) / 4, abs=1e-3)  # 1 - MAD / (max - min)
    assert rating.values == {"w1": 4, "w2": 5, "w3": 3}
    summary = label.content["summary"]
    assert summary.value == "late order" and summary.votes == {"late order": 2, "order late": 1}

    seg_mean = sum(s.agreement for s in label.segments) / 4
    content_mean = sum(c.agreement for c in label.content.values()) / 3
    assert label.agreement.segments == pytest.approx(seg_mean, abs=1e-3)
    assert label.agreement.content == pytest.approx(content_mean, abs=1e-3)
    assert label.agreement.overall == pytest.approx((seg_mean + content_mean) / 2, abs=2e-3)
    assert [w.worker_id for w in label.workers] == ["w1", "w2", "w3"]
    assert all(w.valid and w.answer is not None for w in label.workers)


def test_ties_are_reported(schema):
    a = answer([], {"background_noise": ["None"], "overall_rating": 4, "summary": "a"})
    b = answer([], {"background_noise": ["Music"], "overall_rating": 2, "summary": "b"})
    label = consolidate([("w1", a), ("w2", b)], schema)
    assert label.content["summary"].tie and label.content["summary"].value == "a"  # first given wins
    assert label.content["background_noise"].tie
    assert label.content["background_noise"].agreement == 0.5
    assert not label.content["overall_rating"].tie and label.content["overall_rating"].value == 3.0
    assert label.segments == [] and label.agreement.segments is None


def test_malformed_answer_excluded_not_fatal(schema):
    bad_schema = answer([("Agent", 0.4, 3.6, "x", "Bored")])  # not an emotion option
    label = consolidate([("w1", W1), ("w2", "{not json"), ("w3", W3), ("w4", bad_schema),
                         ("w5", ValueError("could not read s3Uri"))], schema)
    assert label.status == "ok"
    assert label.worker_count == 5 and label.valid_worker_count == 2
    by_id = {w.worker_id: w for w in label.workers}
    assert by_id["w2"].valid is False and "not valid JSON" in by_id["w2"].problems[0]
    assert by_id["w2"].raw == "{not json"
    assert by_id["w4"].valid is False and any("emotion" in p for p in by_id["w4"].problems)
    assert by_id["w5"].problems == ["could not read s3Uri"]
    assert all(set(s.texts) <= {"w1", "w3"} for s in label.segments)


def test_no_valid_answer_is_an_error_entry(schema):
    label = consolidate([("w1", "garbage"), ("w2", {"answer": "{}"})], schema)
    assert label.status == "error" and "no valid worker answers (2 received)" in label.error
    assert label.segments == [] and len(label.workers) == 2
    ConsolidatedLabel.model_validate(label_json(label))  # still a valid label document


def test_segments_need_iou_threshold_and_same_label():
    a = answer([("Agent", 0.0, 4.0, "", None), ("Agent", 10.0, 12.0, "", None)], {})
    b = answer([("Agent", 3.0, 7.0, "", None), ("Customer", 10.0, 12.0, "", None)], {})
    label = consolidate([("a", a), ("b", b)], None, iou_threshold=0.5)
    assert [(s.label, s.start, s.end, s.support) for s in label.segments] == [
        ("Agent", 0.0, 4.0, 1), ("Agent", 3.0, 7.0, 1), ("Agent", 10.0, 12.0, 1), ("Customer", 10.0, 12.0, 1)]
    loose = consolidate([("a", a), ("b", b)], None, iou_threshold=0.1)
    assert loose.segments[0].support == 2 and loose.segments[0].start == 1.5
    strict = consolidate([("a", a), ("b", b)], None, min_support=2)
    assert strict.segments == []


def test_greedy_matching_prefers_best_overlap():
    # b's first segment overlaps both of a's; it must pair with the better one.
    a = answer([("Agent", 0.0, 2.0, "", None), ("Agent", 2.0, 6.0, "", None)], {})
    b = answer([("Agent", 2.2, 6.0, "", None), ("Agent", 0.0, 1.9, "", None)], {})
    label = consolidate([("a", a), ("b", b)], None)
    assert [(s.start, s.end, s.support) for s in label.segments] == [(0.0, 1.95, 2), (2.1, 6.0, 2)]


def test_schema_less_inference_and_text_choice():
    a = answer([], {"score": 2, "flag": True, "tags": ["x", "y"]})
    b = answer([], {"score": 4, "flag": True, "tags": ["y", "x"]})
    label = consolidate([("a", a), ("b", b)], None)
    assert label.content["score"].mean == 3.0
    assert label.content["flag"].value is True and label.content["flag"].agreement == 1.0
    assert label.content["tags"].value == ["x", "y"] and label.content["tags"].agreement == 1.0
    assert choose_text(["ab", "abc", "ab "]) == "ab"
    assert choose_text(["ab", "abcd", ""]) == "abcd"
    assert choose_text(["", " "]) == ""


def test_parsed_worker_answers_and_json_round_trip(schema):
    items = [worker_answer("w1", {ANSWER_FIELD: W1.model_dump_json(by_alias=True)}, schema=schema),
             worker_answer("w2", {ANSWER_FIELD: W2.model_dump_json(by_alias=True)}, schema=schema)]
    label = consolidate(items, schema)
    doc = json.loads(json.dumps(label_json(label)))
    again = ConsolidatedLabel.model_validate(doc)
    assert again.segments[0].start == label.segments[0].start
    assert doc["segments"][0]["attributeAgreement"] == {"emotion": 1.0}
    assert "validWorkerCount" in doc and "workers" in doc


def test_batch_one_entry_per_object_and_s3uri_reader(schema):
    content = json.dumps({ANSWER_FIELD: W1.model_dump_json(by_alias=True)})
    payload = [
        {"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://b/a.wav"},
         "annotations": [{"workerId": "w1", "annotationData": {"content": content}},
                         {"workerId": "w2", "annotationData": {"s3Uri": "s3://b/ans.json"}},
                         {"workerId": "w3", "annotationData": {"s3Uri": "s3://b/missing.json"}}]},
        {"datasetObjectId": 1, "dataObject": {"s3Uri": "s3://b/b.wav"}, "annotations": []},
        {"datasetObjectId": "2", "annotations": "not a list"},
    ]

    def read(uri: str) -> str:
        if uri == "s3://b/ans.json":
            return json.dumps({ANSWER_FIELD: W2.model_dump_json(by_alias=True)})
        raise FileNotFoundError(uri)

    responses, stats = consolidate_batch(payload, label_attribute="segs", read_text=read, schema=schema)
    assert [r["datasetObjectId"] for r in responses] == ["0", "1", "2"]
    first = responses[0]["consolidatedAnnotation"]["content"]["segs"]
    assert first["status"] == "ok" and first["validWorkerCount"] == 2
    assert first["workers"][2]["valid"] is False and "s3Uri" in first["workers"][2]["problems"][0]
    assert responses[1]["consolidatedAnnotation"]["content"]["segs"]["status"] == "error"
    assert "malformed payload item" in responses[2]["consolidatedAnnotation"]["content"]["segs"]["error"]
    assert (stats.objects, stats.ok, stats.errors, stats.invalid_answers) == (3, 1, 2, 1)
    assert stats.error_object_ids == ["1", "2"]


spans = st.lists(st.tuples(st.floats(0, 50, allow_nan=False), st.floats(0.1, 10, allow_nan=False)),
                 max_size=8)


@settings(max_examples=60, deadline=None)
@given(spans, spans, st.floats(0.05, 1.0))
def test_every_segment_lands_in_exactly_one_cluster(a_spans, b_spans, threshold):
    def make(sp):
        return answer([("Agent", round(s, 3), round(s + d, 3), "", None) for s, d in sp], {}, duration=61)

    label = consolidate([("a", make(a_spans)), ("b", make(b_spans))], None, iou_threshold=threshold)
    assert sum(s.support for s in label.segments) == len(a_spans) + len(b_spans)
    for s in label.segments:
        assert s.support <= 2 and 0 <= s.agreement <= 1 and s.end > s.start


def test_iou():
    assert iou(0, 2, 1, 3) == pytest.approx(1 / 3)
    assert iou(0, 1, 1, 2) == 0.0
    assert iou(0, 2, 0, 2) == 1.0


def test_exporter_call_form_with_data_object():
    """toolkit.export.reader calls consolidate(answers, data_object=line) for unconsolidated outputs."""
    sample = {"annotations": json.dumps({"streams": {"speaker": [{"id": "Agent", "start": 1, "end": 2}]}})}
    line = {"source-ref": "s3://b/a.wav", "interaction-id": "int-9", "duration-seconds": 30.0}
    label = consolidate([("w1", W1), ("w2", sample), ("w3", None)], data_object=line)
    assert label.valid_worker_count == 2 and label.workers[2].valid is False
    assert label.workers[1].answer.media_duration == 30.0
    assert label.workers[1].answer.interaction_id == "int-9"


def test_response_kept_under_lambda_limit_by_dropping_audit_copies_first(schema):
    content = json.dumps({ANSWER_FIELD: W1.model_dump_json(by_alias=True)})
    payload = [{"datasetObjectId": str(i), "dataObject": {"s3Uri": f"s3://b/{i}.wav"},
                "annotations": [{"workerId": f"w{n}", "annotationData": {"content": content}} for n in range(3)]}
               for i in range(4)]
    responses, _ = consolidate_batch(payload, label_attribute="segs", read_text=str, schema=schema)
    full = [json.loads(json.dumps(r)) for r in responses]
    limit = len(json.dumps(responses)) - 1  # just too big: trimming one object must be enough
    assert fit_response(responses, max_bytes=limit) == 1
    assert len(json.dumps(responses)) <= limit
    assert fit_response(responses, max_bytes=len(json.dumps(responses)) - 1) == 1  # the next largest goes
    labels = [r["consolidatedAnnotation"]["content"]["segs"] for r in responses]
    assert sum(bool(label["workers"][0].get("answerOmitted")) for label in labels) == 2
    for before, after in zip(full, responses, strict=True):
        a, b = before["consolidatedAnnotation"]["content"]["segs"], after["consolidatedAnnotation"]["content"]["segs"]
        # labels themselves are untouched; only the audit copies go
        assert {k: v for k, v in a.items() if k != "workers"} == {k: v for k, v in b.items() if k != "workers"}
        assert [w["workerId"] for w in a["workers"]] == [w["workerId"] for w in b["workers"]]
        ConsolidatedLabel.model_validate(b)
    assert fit_response(responses, max_bytes=10**9) == 0


def test_batch_survives_an_object_that_breaks_consolidation(monkeypatch):
    """Issue 12 D2: whatever goes wrong consolidating one object, the others still get their labels."""
    import toolkit.labeling.consolidate as consolidate_module

    real = consolidate_module.consolidate_segments

    def fragile(valid, *args, **kwargs):
        if any(w.worker_id == "breaks" for w in valid):
            raise ZeroDivisionError("a bug")
        return real(valid, *args, **kwargs)

    monkeypatch.setattr(consolidate_module, "consolidate_segments", fragile)
    answer = json.dumps({"answer": json.dumps({"mediaDuration": 5.0, "tracks": [{"id": "t", "category": "speaker",
                                                                                  "label": "Agent"}],
                                                "segments": [{"id": "s", "track": "t", "start": 0, "end": 1}]})})
    payload = [{"datasetObjectId": str(i), "annotations": [{"workerId": worker, "annotationData": {"content": answer}}]}
               for i, worker in enumerate(["ok", "breaks", "ok"])]
    responses, stats = consolidate_batch(payload, label_attribute="l", read_text=lambda uri: "")
    statuses = [r["consolidatedAnnotation"]["content"]["l"]["status"] for r in responses]
    assert statuses == ["ok", "error", "ok"] and stats.error_object_ids == ["1"]
    assert responses[1]["consolidatedAnnotation"]["content"]["l"]["error"] == "could not consolidate: ZeroDivisionError"


def test_fields_and_text_follow_their_tracks_in_consolidation(schema):
    """Issue 20: a schema-less consolidation keeps everything; with call-center's `tracks: [speaker]`
    the language spans carry no emotion and no text, speaker turns keep theirs."""
    from toolkit.contract.consolidated import WorkerAnswer
    from toolkit.labeling.consolidate import consolidate_segments

    def with_language(worker: SegmentationAnswer) -> SegmentationAnswer:
        data = worker.model_dump(by_alias=True)
        data["tracks"].append({"id": "t-lang", "category": "language", "label": "English"})
        data["segments"].append({"id": "s-lang", "track": "t-lang", "start": 0.0, "end": 11.0,
                                 "text": "stray", "attributes": {"emotion": "Happy"}})
        return SegmentationAnswer.model_validate(data)

    valid = [WorkerAnswer(worker_id=w, valid=True, answer=with_language(a)) for w, a in (("w1", W1), ("w2", W2))]
    merged = consolidate_segments(valid, schema)
    (language,) = [s for s in merged if s.category == "language"]
    assert language.text == "" and language.texts == {} and language.attributes == {}
    speaker = [s for s in merged if s.category == "speaker"]
    assert speaker[0].text == "Northwind support, this is Dana." and speaker[0].attributes == {"emotion": "Neutral"}
    (unfiltered,) = [s for s in consolidate_segments(valid) if s.category == "language"]
    assert unfiltered.text == "stray" and unfiltered.attributes == {"emotion": "Happy"}


MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def test_the_label_keeps_the_model_text_beside_the_workers(schema):
    """The worker UI sends back the pre-fill it started from: the post-annotation Lambda (which sees only
    the answers) keeps it, so the label holds both texts."""
    prefill = {"summary": {"value": "Order is late.", "modelId": MODEL, "recordId": "R0000000001"}}
    answers = [W1.model_copy(update={"prefill": SegmentationAnswer.model_validate(
        {**W1.model_dump(by_alias=True), "prefill": prefill}).prefill}), W2]
    content = json.dumps({ANSWER_FIELD: answers[0].model_dump_json(by_alias=True)})
    payload = [{"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://b/0.wav"}, "annotations": [
        {"workerId": "w1", "annotationData": {"content": content}},
        {"workerId": "w2", "annotationData": {"content": json.dumps({ANSWER_FIELD: W2.model_dump_json(
            by_alias=True)})}}]}]
    responses, _ = consolidate_batch(payload, label_attribute="segs", read_text=str, schema=schema)
    summary = ConsolidatedLabel.model_validate(responses[0]["consolidatedAnnotation"]["content"]["segs"]
                                               ).content["summary"]
    assert summary.value == "late order"
    assert (summary.prefill.value, summary.prefill.model_id, summary.prefill.record_id) == (
        "Order is late.", MODEL, "R0000000001")
    assert "overall_rating" in responses[0]["consolidatedAnnotation"]["content"]["segs"]["content"]
    assert ConsolidatedLabel.model_validate(responses[0]["consolidatedAnnotation"]["content"]["segs"]
                                            ).content["overall_rating"].prefill is None


def test_the_manifest_lines_pre_content_wins_with_prompt_and_params(schema):
    line = {"source-ref": "s3://b/a.wav", "interaction-id": "int-1", "pre-content": {"summary": {
        "value": "Order is late.", "model_id": MODEL, "record_id": "R0000000001", "prompt": "Summarise: ...",
        "params": {"max_tokens": 512}}}}
    label = consolidate([("w1", W1), ("w2", W2)], schema, data_object=line)
    assert label.content["summary"].prefill.prompt == "Summarise: ..."
    assert label.content["summary"].prefill.params == {"max_tokens": 512}
