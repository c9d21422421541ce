"""The pre/post-annotation Lambda handlers fed Ground Truth's documented event shapes (moto S3/STS)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest

from toolkit.contract import ANSWER_FIELD, ConsolidatedLabel
from toolkit.labeling import post_annotation as post
from toolkit.labeling import pre_annotation as pre

REPO = Path(__file__).resolve().parent.parent
JOB_ARN = "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/av-seg-1"
ROLE_ARN = "arn:aws:iam::111122223333:role/gt-exec"
SECRET_TEXT = "my card number is 4111 1111 1111 1111"
SECRET_TRANSCRIPT = "Northwind support, this is Dana, call me on 555-0123"




@pytest.fixture
def logs():
    """Everything both handlers log (they share the stream through powertools' registered handler)."""
    buf = io.StringIO()
    saved = []
    for module in (pre, post):
        handler = module.logger.registered_handler
        saved.append((module, handler, handler.stream, module.logger.log_level))
        # Assigned, not setStream(): that flushes the old stream, which is closed when an earlier CLI test
        # (CliRunner swaps sys.stderr) ran a local job that set the handler up.
        handler.stream = buf
        module.logger.setLevel("INFO")
    yield buf
    for module, handler, stream, level in saved:
        handler.stream = stream
        module.logger.setLevel(level)


def manifest_line(**extra) -> dict:
    line = {"source-ref": "s3://media-bucket/calls/call_001.wav", "media-type": "audio",
            "interaction-id": "int-0001", "duration-seconds": 21.0, "transcription": SECRET_TRANSCRIPT,
            "pre-segments": [{"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.5,
                              "text": SECRET_TRANSCRIPT}],
            "peaks-ref": "s3://media-bucket/peaks/call_001.json",
            "spectrogram-ref": "s3://media-bucket/peaks/call_001.spectrogram.bin.gz",
            "metadata": {"customer_id": "cust-1"}}
    line.update(extra)
    return line


def our_answer(start=0.4, end=3.5, text=SECRET_TEXT, rating=4) -> str:
    """answerContent as Ground Truth inlines it in the payload: a JSON string."""
    answer = {"mediaDuration": 21.0, "interactionId": "int-0001",
              "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
              "segments": [{"id": "s1", "track": "t1", "start": start, "end": end, "text": text,
                            "attributes": {"emotion": "Neutral"}}],
              "content": {"background_noise": ["None"], "overall_rating": rating, "summary": SECRET_TEXT}}
    return json.dumps({ANSWER_FIELD: json.dumps(answer), "content-summary": SECRET_TEXT})


# -- pre-annotation ----------------------------------------------------------------------------
def test_pre_source_ref_object_gets_task_input(logs):
    event = {"version": "2018-10-16", "labelingJobArn": JOB_ARN, "dataObject": manifest_line()}
    response = pre.lambda_handler(event, None)
    assert set(response) == {"taskInput", "isHumanAnnotationRequired"}
    assert response["isHumanAnnotationRequired"] is True  # a JSON boolean, not "true"
    task = response["taskInput"]
    assert task["source-ref"] == "s3://media-bucket/calls/call_001.wav"
    assert task["media-type"] == "audio" and task["interaction-id"] == "int-0001"
    assert task["pre-segments"][0]["start"] == 0.4 and task["peaks-ref"].endswith("call_001.json")
    assert task["spectrogram-ref"] == "s3://media-bucket/peaks/call_001.spectrogram.bin.gz"
    assert task["transcription"] == SECRET_TRANSCRIPT
    json.dumps(response)
    out = logs.getvalue()
    assert "int-0001" in out and SECRET_TRANSCRIPT not in out


GOLD = {"mediaDuration": 21.0, "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
        "segments": [{"id": "g1", "track": "t1", "start": 0.4, "end": 3.5, "text": SECRET_TEXT}],
        "content": {"summary": SECRET_TEXT}}


def test_pre_gold_answer_never_reaches_the_worker(logs):
    """A gold object's known answer stays in the manifest line; the worker's page must not get it."""
    response = pre.handle({"version": "2018-10-16", "labelingJobArn": JOB_ARN,
                           "dataObject": manifest_line(**{"gold-answer": GOLD})})
    assert response["isHumanAnnotationRequired"] is True
    task = response["taskInput"]
    assert "gold-answer" not in task and "goldAnswer" not in task and "gold_answer" not in task
    assert SECRET_TEXT not in json.dumps(task) and SECRET_TEXT not in logs.getvalue()
    assert task["interaction-id"] == "int-0001"


def test_pre_invalid_gold_answer_is_refused_naming_the_field(logs):
    bad = {**GOLD, "segments": [{"id": "g1", "track": "t1", "start": 5.0, "end": 30.0}]}  # past the media end
    response = pre.handle({"version": "2018-10-16", "labelingJobArn": JOB_ARN,
                           "dataObject": manifest_line(**{"gold-answer": bad})})
    assert response["isHumanAnnotationRequired"] is False
    assert "gold-answer" in logs.getvalue()


def test_pre_sidecar_reference_passes_through():
    line = manifest_line(**{"sidecar-ref": "s3://media-bucket/sidecars/int-0001.json"})
    del line["pre-segments"]
    response = pre.handle({"version": "2018-10-16", "labelingJobArn": JOB_ARN, "dataObject": line})
    assert response["taskInput"]["sidecar-ref"] == "s3://media-bucket/sidecars/int-0001.json"


@pytest.mark.parametrize("data_object, why", [
    ({"source": SECRET_TEXT}, "inline `source` text"),
    ({"source-ref": "s3://b/a.wav", "media-type": "audio"}, "interaction-id"),
    ({"source-ref": "not-a-uri", "media-type": "audio", "interaction-id": "int-9"}, "source-ref"),
])
def test_pre_unlabelable_objects_skip_humans_with_logged_reason(logs, data_object, why):
    response = pre.lambda_handler({"version": "2018-10-16", "labelingJobArn": JOB_ARN,
                                   "dataObject": data_object})
    assert response["isHumanAnnotationRequired"] is False
    assert response["taskInput"] == {}
    record = json.loads(logs.getvalue().strip().splitlines()[-1])
    assert record["level"] == "WARNING" and why in record["reason"]
    assert SECRET_TEXT not in logs.getvalue()


# -- post-annotation ---------------------------------------------------------------------------
@pytest.fixture
def job_bucket(s3_bucket):
    return s3_bucket


def put(bucket: str, key: str, body) -> str:
    data = body if isinstance(body, str) else json.dumps(body)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data.encode())
    return f"s3://{bucket}/{key}"


def post_event(payload_uri: str, attr: str = "segments") -> dict:
    return {"version": "2018-10-16", "labelingJobArn": JOB_ARN, "labelCategories": ["Agent", "Customer"],
            "labelAttributeName": attr, "roleArn": ROLE_ARN, "payload": {"s3Uri": payload_uri}}


def test_post_consolidates_inline_and_s3_answers_with_assumed_role(job_bucket, monkeypatch, logs):
    monkeypatch.setenv("GTKIT_LABEL_SCHEMA", "call-center")
    answer_uri = put(job_bucket, "job/annotations/w2.json", our_answer(0.5, 3.6, rating=5))
    payload = [
        {"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://media-bucket/calls/call_001.wav"},
         "annotations": [
             {"workerId": "private.us-east-1.aaa111", "annotationData": {"content": our_answer(0.4, 3.5)}},
             {"workerId": "private.us-east-1.bbb222", "annotationData": {"s3Uri": answer_uri}},
             {"workerId": "private.us-east-1.ccc333", "annotationData": {"content": "{\"answer\": \"{broken"}},
         ]},
        {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://media-bucket/calls/call_002.wav"},
         "annotations": [{"workerId": "private.us-east-1.ddd444",
                          "annotationData": {"content": json.dumps({"answer": "[]"})}}]},
    ]
    uri = put(job_bucket, "job/annotations/consolidated-annotation/consolidation-request/iteration-1/b1.json",
              payload)
    calls = []
    real_client = boto3.session.Session.client

    def spy(self, service, *args, **kwargs):
        client = real_client(self, service, *args, **kwargs)
        if service == "sts":
            orig = client.assume_role

            def assume_role(**kw):
                calls.append(kw["RoleArn"])
                return orig(**kw)

            client.assume_role = assume_role
        return client

    monkeypatch.setattr(boto3.session.Session, "client", spy)
    response = post.lambda_handler(post_event(uri), None)

    assert calls == [ROLE_ARN]  # read with the job role's credentials
    assert [r["datasetObjectId"] for r in response] == ["0", "1"]
    for item in response:
        assert set(item) == {"datasetObjectId", "consolidatedAnnotation"}
        assert set(item["consolidatedAnnotation"]) == {"content"}
        assert set(item["consolidatedAnnotation"]["content"]) == {"segments"}
    label = ConsolidatedLabel.model_validate(response[0]["consolidatedAnnotation"]["content"]["segments"])
    assert label.status == "ok" and label.worker_count == 3 and label.valid_worker_count == 2
    assert label.label_schema == "call-center"
    assert label.segments[0].start == 0.45 and label.segments[0].end == 3.55 and label.segments[0].support == 2
    assert label.content["overall_rating"].mean == 4.5
    broken = label.workers[2]
    assert broken.worker_id == "private.us-east-1.ccc333" and not broken.valid and broken.problems
    failed = ConsolidatedLabel.model_validate(response[1]["consolidatedAnnotation"]["content"]["segments"])
    assert failed.status == "error" and "no valid worker answers" in failed.error
    json.dumps(response)

    out = logs.getvalue()
    record = json.loads(out.strip().splitlines()[-1])
    assert record["objects"] == 2 and record["errors"] == 1 and record["invalid_answers"] == 2
    assert record["error_object_ids"] == ["1"]
    for secret in (SECRET_TEXT, SECRET_TRANSCRIPT, "aaa111", "bbb222", "ccc333", "ddd444", "private.us-east-1"):
        assert secret not in out, secret


def test_post_falls_back_to_own_role_when_assume_role_is_refused(job_bucket, monkeypatch, logs):
    from botocore.exceptions import ClientError

    monkeypatch.delenv("GTKIT_LABEL_SCHEMA", raising=False)
    uri = put(job_bucket, "p.json", [{"datasetObjectId": "7", "dataObject": {"s3Uri": "s3://m/a.wav"},
                                       "annotations": [{"workerId": "w", "annotationData":
                                                        {"content": our_answer()}}]}])
    real_client = boto3.session.Session.client

    def refuse(self, service, *args, **kwargs):
        client = real_client(self, service, *args, **kwargs)
        if service == "sts":
            def assume_role(**kw):
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")

            client.assume_role = assume_role
        return client

    monkeypatch.setattr(boto3.session.Session, "client", refuse)
    response = post.handle(post_event(uri, attr="labels"))
    label = response[0]["consolidatedAnnotation"]["content"]["labels"]
    assert label["status"] == "ok" and "labelSchema" not in label  # no schema configured
    assert "AccessDenied" in logs.getvalue()
    monkeypatch.setenv("GTKIT_ASSUME_ROLE", "always")
    with pytest.raises(ClientError):
        post.handle(post_event(uri))


def test_post_accepts_aws_samples_answers(job_bucket, monkeypatch):
    monkeypatch.setenv("GTKIT_LABEL_SCHEMA", "call-center")
    monkeypatch.setenv("GTKIT_ASSUME_ROLE", "never")
    tag_data = {"streams": {"speaker": [{"id": "Representative", "start": 0.4, "end": 3.5,
                                         "text": "hi", "emotion": "Neutral"}]}}
    sample = {"annotations": json.dumps(tag_data), "rate": {"4": True, "5": False},
              "backgroundNoise": {"music": True}}
    uri = put(job_bucket, "p.json", [{"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://m/a.wav"},
                                       "annotations": [{"workerId": "w", "annotationData":
                                                        {"content": json.dumps(sample)}}]}])
    label = post.handle(post_event(uri))[0]["consolidatedAnnotation"]["content"]["segments"]
    assert label["status"] == "ok", label["workers"][0]["problems"]
    assert label["segments"][0]["label"] == "Agent" and label["content"]["overall_rating"]["value"] == 4


def test_post_schema_setting_forms(tmp_path, monkeypatch):
    from toolkit.contract import load_label_schema

    schema = load_label_schema("call-center")
    assert post.label_schema("call-center").name == "call-center"
    inline = json.dumps(schema.model_dump(mode="json"))
    assert post.label_schema(inline).name == "call-center"
    path = tmp_path / "s.yaml"
    path.write_text((REPO / "toolkit" / "schemas" / "tts-quality.yaml").read_text())
    assert post.label_schema(str(path)).name == "tts-quality"
    assert post.label_schema(None) is None


def test_post_rejects_event_without_payload():
    with pytest.raises(ValueError, match="payload"):
        post.handle({"labelAttributeName": "segments"}, read_text=lambda uri: "[]")


def test_post_one_deep_answer_fails_alone(job_bucket, monkeypatch, logs):
    """Issue 12 D2: answers nested 250 levels (answerContent) or 5,000 (the `answer` string), inline
    or in S3, mark their own entry invalid; every other object is consolidated, the batch succeeds."""
    monkeypatch.setenv("GTKIT_LABEL_SCHEMA", "call-center")
    monkeypatch.setenv("GTKIT_ASSUME_ROLE", "never")
    deep_content = json.loads(our_answer())
    for _ in range(250):
        deep_content = {"content-x": deep_content}
    deep_content[ANSWER_FIELD] = json.loads(our_answer())[ANSWER_FIELD]
    deep_string = json.dumps({ANSWER_FIELD: "[" * 5000 + "]" * 5000})
    s3_deep = put(job_bucket, "job/annotations/deep.json", deep_string)
    payload = [
        {"datasetObjectId": "0", "annotations": [{"workerId": "w1", "annotationData": {"content": our_answer()}}]},
        {"datasetObjectId": "1", "annotations": [
            {"workerId": "w1", "annotationData": {"content": json.dumps(deep_content)}},
            {"workerId": "w2", "annotationData": {"content": our_answer()}}]},
        {"datasetObjectId": "2", "annotations": [{"workerId": "w1", "annotationData": {"content": deep_string}}]},
        {"datasetObjectId": "3", "annotations": [{"workerId": "w1", "annotationData": {"s3Uri": s3_deep}}]},
        {"datasetObjectId": "4", "annotations": [{"workerId": "w1", "annotationData": {"content": our_answer()}}]},
    ]
    uri = put(job_bucket, "job/annotations/consolidated-annotation/consolidation-request/iteration-1/b2.json",
              payload)
    response = post.handle(post_event(uri))
    labels = [ConsolidatedLabel.model_validate(r["consolidatedAnnotation"]["content"]["segments"])
              for r in response]
    assert [r["datasetObjectId"] for r in response] == ["0", "1", "2", "3", "4"]
    assert [lab.status for lab in labels] == ["ok", "ok", "error", "error", "ok"]
    assert labels[1].valid_worker_count == 1
    for label in (labels[1], labels[2], labels[3]):
        bad = label.workers[0]
        assert not bad.valid and any("nested" in p for p in bad.problems), bad.problems
    assert len(json.dumps(response)) < 100_000  # the deep content is not echoed back


# -- review jobs (docs/review.md) ----------------------------------------------------------------
from toolkit.contract.base import dump  # noqa: E402
from toolkit.contract.review import ReviewPrior, ReviewPriors  # noqa: E402
from toolkit.labeling.consolidate import consolidate  # noqa: E402
from toolkit.labeling.review import consolidated_to_answer, priors_name, review_task_line  # noqa: E402

REVIEW_NOTE = "the second turn is the customer, not the agent"


def prior_label() -> ConsolidatedLabel:
    from toolkit.contract import load_label_schema
    return consolidate([("private.us-east-1.aaa111", json.loads(our_answer(0.4, 3.5))),
                        ("private.us-east-1.bbb222", json.loads(our_answer(0.5, 3.6, rating=5)))],
                       load_label_schema("call-center"))


def review_answer(label: ConsolidatedLabel, decision: str, note: str = "", start: float | None = None) -> str:
    answer = dump(consolidated_to_answer(label))
    if start is not None:
        answer["segments"][0]["start"] = start
    answer["review"] = {"decision": decision, "note": note}
    return json.dumps({ANSWER_FIELD: json.dumps(answer)})


def test_pre_passes_review_through_and_keeps_review_ref_a_ref(logs):
    label = prior_label()
    line = review_task_line(manifest_line(segments=dump(label), **{"segments-metadata": {"job-name": "calls"}}),
                            "segments", of_job="calls")
    out = pre.handle({"version": "2018-10-16", "labelingJobArn": JOB_ARN, "dataObject": line})
    task_input = out["taskInput"]
    assert task_input["review"]["of-job"] == "calls" and task_input["review"]["workers"][0]["worker"] == "w1"
    assert "segments" not in task_input and "private.us-east-1.aaa111" not in json.dumps(task_input)
    ref_line = {k: v for k, v in line.items() if k != "review"}
    ref_line["review-ref"] = "s3://gtkit-test-bucket/review/int-0001.review.json"
    out = pre.handle({"version": "2018-10-16", "labelingJobArn": JOB_ARN, "dataObject": ref_line})
    assert out["taskInput"]["review-ref"] == ref_line["review-ref"] and "review" not in out["taskInput"]
    assert REVIEW_NOTE not in logs.getvalue() and SECRET_TEXT not in logs.getvalue()


def test_post_review_batch_writes_reviewed_labels(job_bucket, monkeypatch, logs):
    monkeypatch.setenv("GTKIT_LABEL_SCHEMA", "call-center")
    monkeypatch.setenv("GTKIT_ASSUME_ROLE", "never")
    label = prior_label()
    root = "out/calls-review"
    for name in ("call_001", "call_002"):
        source = f"s3://media-bucket/calls/{name}.wav"
        priors = ReviewPriors(source_ref=source, priors=[ReviewPrior(interaction_id="int-0001", of_job="calls",
                                                                     label_attribute="segments", label=label)])
        put(job_bucket, f"{root}/gtkit-review/priors/{priors_name(source)}", dump(priors))
    payload = [
        # accept pressed on an unchanged label; edit pressed without a change -> accept
        {"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://media-bucket/calls/call_001.wav"},
         "annotations": [{"workerId": "private.us-east-1.rev1", "annotationData": {
             "content": review_answer(label, "edit")}}]},
        # accept pressed but a boundary moved -> edit
        {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://media-bucket/calls/call_002.wav"},
         "annotations": [{"workerId": "private.us-east-1.rev1", "annotationData": {
             "content": review_answer(label, "accept", start=0.2)}}]},
        # no priors stored: provisional reject
        {"datasetObjectId": "2", "dataObject": {"s3Uri": "s3://media-bucket/calls/call_003.wav"},
         "annotations": [{"workerId": "private.us-east-1.rev2", "annotationData": {
             "content": review_answer(label, "reject", REVIEW_NOTE)}}]},
    ]
    uri = put(job_bucket, f"{root}/annotations/consolidated-annotation/consolidation-request/iteration-1/b.json",
              payload)
    out = post.handle(post_event(uri, attr="calls-review"))
    labels = [item["consolidatedAnnotation"]["content"]["calls-review"] for item in out]
    assert [(x["decision"], x["reviewer"], x.get("provisional")) for x in labels] == [
        ("accept", "private.us-east-1.rev1", None), ("edit", "private.us-east-1.rev1", None),
        ("reject", "private.us-east-1.rev2", True)]
    assert labels[0]["label"]["segments"] == dump(label)["segments"] and labels[0]["label"]["workers"] == []
    assert labels[1]["changes"]["moved"] == [{"id": "seg-0001", "from": [0.45, 3.55], "to": [0.2, 3.55]}]
    assert labels[2]["note"] == REVIEW_NOTE and "label" not in labels[2]
    text = logs.getvalue()
    assert "review consolidation done" in text
    assert REVIEW_NOTE not in text and SECRET_TEXT not in text and "rev1" not in text


def test_post_label_batches_are_unchanged_by_review_mode(job_bucket, monkeypatch):
    """A labeling batch (answers without `review`) is consolidated as before, even with GTKIT_MODE=auto."""
    monkeypatch.setenv("GTKIT_ASSUME_ROLE", "never")
    uri = put(job_bucket, "j/annotations/consolidated-annotation/consolidation-request/iteration-1/b.json",
              [{"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://m/a.wav"},
                "annotations": [{"workerId": "w", "annotationData": {"content": our_answer()}}]}])
    label = post.handle(post_event(uri))[0]["consolidatedAnnotation"]["content"]["segments"]
    assert label["status"] == "ok" and "decision" not in label
