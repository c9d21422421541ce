"""`gtkit bedrock import`: .jsonl.out per model family joined to the export's records map, masked by
the default redactor or an ApplyGuardrail guardrail (Stubber, paced by a token bucket on an injected
clock), with failed, truncated, unknown and unjoined records written and reported, and reruns resumable."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from toolkit.awsclient.pacing import TokenBucket, call_with_backoff
from toolkit.cli import app
from toolkit.cli import bedrock as cli_bedrock
from toolkit.contract import ImportedModelOutput
from toolkit.export.redact import GuardrailRedactor, RegexRedactor
from toolkit.ingest import model_outputs as mo
from toolkit.storage import Storage

HERE = Path(__file__).parent
OUTS = HERE / "fixtures" / "bedrock"
EXPORT = HERE / "fixtures" / "export" / "golden" / "sft-transcription.bedrock-batch" / "batch"
MODELS = {"anthropic": "anthropic.claude-3-haiku-20240307-v1:0", "nova": "us.amazon.nova-lite-v1:0",
          "llama": "meta.llama3-1-8b-instruct-v1:0", "titan": "amazon.titan-text-express-v1",
          "mistral": "mistral.mistral-7b-instruct-v0:2"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run_import(tmp_path: Path, family: str, masker: mo.Masker | None = None, out: Path | None = None, **kw):
    out = out or tmp_path / f"{family}.imported.jsonl"
    stats = mo.import_outputs(Storage(), [str(OUTS / f"{family}.jsonl.out")], str(out), records=str(EXPORT),
                              masker=masker or mo.Masker(RegexRedactor()), model_id=MODELS[family],
                              scratch_dir=str(tmp_path), **kw)
    return stats, [json.loads(line) for line in out.read_text().splitlines()]


def test_anthropic_outputs_every_line_accounted_for(tmp_path):
    stats, rows = run_import(tmp_path, "anthropic")
    for row in rows:
        ImportedModelOutput.model_validate(row)
    assert [(r["record_id"], r["status"]) for r in rows] == [
        ("R0000000001", "ok"), ("R0000000002", "ok"), ("R0000000003", "error"),
        ("R0000000004", "unknown-shape"), ("R0000000005", "truncated")]
    ok = rows[0]
    assert ok["text"] == "Northwind support, this is Dana. Call me back on [PHONE]."
    assert ok["masking"] == {"method": "regex", "masked": {"PHONE": 1}}
    assert (ok["stop_reason"], ok["usage"]) == ("end_turn", {"input_tokens": 41, "output_tokens": 17})
    assert (ok["interaction_id"], ok["segment_id"], ok["line"]) == ("int-0001", "s1", 1)
    assert ok["prompt"] == {"system": "You transcribe speech.", "prompt": "Transcribe segment 1."}
    assert ok["params"] == {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512}
    assert rows[1]["stop_reason"] == "max_tokens"
    assert rows[2]["error"] == {"code": 400, "message": "Input is too long for requested model."}
    assert rows[2]["interaction_id"] == "int-0001"  # a failed record is still joined: people can see what failed
    unknown = rows[3]["problem"]
    assert "R0000000004" in unknown and MODELS["anthropic"] in unknown and "completion" in unknown
    assert rows[4]["problem"].startswith("record R0000000005") and "cut off" in rows[4]["problem"]
    assert stats.by_status == {"ok": 2, "error": 1, "unknown-shape": 1, "truncated": 1}
    assert stats.unanswered == 1  # R0000000006 has no output line: counted, not forgotten
    assert len(stats.problems) == 3
    assert all("206" not in str(p) and "Dana" not in str(p) for p in stats.problems)  # problems never quote text
    source = OUTS / "anthropic.jsonl.out"
    assert [(p.path, p.where) for p in stats.problems] == [(f"record R000000000{n}", f"{source}:{n}") for n in (3, 4, 5)
                                                          ]


@pytest.mark.parametrize("family, text, stop, usage", [
    ("nova", "Northwind support, this is Dana.", "end_turn", {"input_tokens": 38, "output_tokens": 9}),
    ("llama", "Northwind support, this is Dana.", "stop", {"input_tokens": 30, "output_tokens": 9}),
    ("titan", "Northwind support, this is Dana.", "FINISH", {"input_tokens": 8, "output_tokens": 9}),
    ("mistral", "Northwind support, this is Dana.", "stop", {"input_tokens": None, "output_tokens": None}),
])
def test_each_family_shape(tmp_path, family, text, stop, usage):
    _, rows = run_import(tmp_path, family)
    first = rows[0]
    assert (first["family"], first["text"], first["stop_reason"], first["usage"]) == (family, text, stop, usage)
    assert first["interaction_id"] == "int-0001"


def test_nova_prompt_and_params(tmp_path):
    _, rows = run_import(tmp_path, "nova")
    assert rows[0]["prompt"] == {"system": "You transcribe speech.", "prompt": "Transcribe segment 1."}
    assert rows[0]["params"] == {"schemaVersion": "messages-v1", "inferenceConfig": {"maxTokens": 512,
                                                                                     "temperature": 0.2}}


def test_a_record_of_no_map_is_reported(tmp_path):
    _, rows = run_import(tmp_path, "titan")
    assert [r["status"] for r in rows] == ["ok", "unjoined"]
    assert "R0000009999" in rows[1]["problem"] and rows[1]["interaction_id"] is None


def test_family_from_model_id_and_shape():
    assert mo.family_of("us.anthropic.claude-3-5-sonnet-20240620-v1:0") == "anthropic"
    assert mo.family_of("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0") == "nova"
    assert mo.family_of("cohere.command-r-v1:0") is None
    assert mo.guess_family({"generation": "x"}) == "llama"


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["content", "output", "message", "text", "results", "outputText",
                                         "generation", "outputs", "usage", "type"]), inner, max_size=4),
                    max_leaves=12),
       st.sampled_from(["anthropic", "nova", "llama", "titan", "mistral"]))
def test_extract_never_crashes_on_odd_outputs(output, family):
    try:
        got = mo.extract(family, output)
    except mo.ShapeError:
        return
    assert isinstance(got.text, str)


# -- guardrail ---------------------------------------------------------------------------------------

def runtime_stub():
    client = boto3.client("bedrock-runtime", region_name="us-east-1",
                          config=Config(retries={"mode": "standard", "max_attempts": 1}))
    return client, Stubber(client)


def guardrail_request(text: str) -> dict:
    return {"guardrailIdentifier": "gr1234abcd", "guardrailVersion": "3", "source": "OUTPUT",
            "content": [{"text": {"text": text}}]}


def masked_response(text: str) -> dict:
    return {"action": "GUARDRAIL_INTERVENED", "outputs": [{"text": text}], "usage": {
        "topicPolicyUnits": 0, "contentPolicyUnits": 0, "wordPolicyUnits": 0, "sensitiveInformationPolicyUnits": 1,
        "sensitiveInformationPolicyFreeUnits": 0, "contextualGroundingPolicyUnits": 0},
        "assessments": [{"sensitiveInformationPolicy": {"piiEntities": [
            {"match": "206-555-0142", "type": "PHONE", "action": "ANONYMIZED"}], "regexes": []}}]}


def test_guardrail_masks_with_paced_calls_and_a_rerun_skips_what_is_masked(tmp_path):
    client, stub = runtime_stub()
    clock = FakeClock()
    texts = ["Northwind support, this is Dana. Call me back on 206-555-0142.", "Hi, my order was due on Monday and"]
    for text in texts:
        stub.add_response("apply_guardrail", masked_response(text.replace("206-555-0142", "{PHONE}")),
                          guardrail_request(text))
    bucket = TokenBucket(60, clock=clock, sleep=clock.sleep)  # one call a second
    masker = mo.Masker(GuardrailRedactor("gr1234abcd", "3", client=client, limiter=bucket), "gr1234abcd:3")
    out = tmp_path / "imported.jsonl"
    with stub:
        stats, rows = run_import(tmp_path, "anthropic", masker, out=out)
        stub.assert_no_pending_responses()
    assert rows[0]["text"] == "Northwind support, this is Dana. Call me back on {PHONE}."
    assert rows[0]["masking"] == {"method": "guardrail", "guardrail": "gr1234abcd:3",
                                  "action": "GUARDRAIL_INTERVENED", "masked": {"PHONE": 1}}
    assert "206-555" not in out.read_text()  # the match ApplyGuardrail returns is never written
    assert clock.sleeps == [pytest.approx(1.0)] and stats.masked_now == 2
    assert not (tmp_path / "imported.jsonl.partial").exists()
    # Rerun: no call at all (the Stubber has no responses left and would fail), same output.
    before = out.read_bytes()
    with stub:
        stats, _ = run_import(tmp_path, "anthropic", masker, out=out)
    assert (stats.resumed, stats.masked_now) == (2, 0) and out.read_bytes() == before


def test_a_killed_run_resumes_from_its_journal(tmp_path, monkeypatch):
    out = tmp_path / "imported.jsonl"
    calls = []

    class Dying(RegexRedactor):
        def redact(self, text: str) -> str:
            calls.append(text)
            if len(calls) == 2:
                raise KeyboardInterrupt  # the second guardrail call never returns
            return super().redact(text)

    with pytest.raises(KeyboardInterrupt):
        run_import(tmp_path, "anthropic", mo.Masker(Dying()), out=out)
    assert not out.exists() and len((tmp_path / "imported.jsonl.partial").read_text().splitlines()) == 1
    calls.clear()
    stats, rows = run_import(tmp_path, "anthropic", mo.Masker(Dying()), out=out)
    assert stats.resumed == 1 and len(calls) == 1  # only the record the killed run had not masked
    assert [r["status"] for r in rows][:2] == ["ok", "ok"]


def test_blocked_text_is_not_kept(tmp_path):
    client, stub = runtime_stub()
    blocked = {"action": "GUARDRAIL_INTERVENED", "outputs": [{"text": "Sorry, the model cannot answer."}],
               "usage": masked_response("")["usage"],
               "assessments": [{"contentPolicy": {"filters": [
                   {"type": "INSULTS", "confidence": "HIGH", "action": "BLOCKED"}]}}]}
    stub.add_response("apply_guardrail", blocked, guardrail_request("Northwind support, this is Dana."))
    stub.add_response("apply_guardrail", {**masked_response(""), "action": "NONE", "outputs": [], "assessments": []},
                      guardrail_request("Thanks, bye."))
    masker = mo.Masker(GuardrailRedactor("gr1234abcd", "3", client=client), "gr1234abcd:3")
    with stub:
        _, rows = run_import(tmp_path, "llama", masker, out=tmp_path / "x.jsonl")
    assert rows[0]["status"] == "blocked" and rows[0]["text"] is None and "gr1234abcd:3 blocked" in rows[0]["problem"]
    assert (rows[1]["status"], rows[1]["text"], rows[1]["masking"]["action"]) == ("ok", "Thanks, bye.", "NONE")


def test_throttling_slows_the_bucket_and_retries():
    client, stub = runtime_stub()
    clock = FakeClock()
    bucket = TokenBucket(600, clock=clock, sleep=clock.sleep)
    stub.add_client_error("apply_guardrail", "ThrottlingException", "Too many requests", 429,
                          expected_params=guardrail_request("t"))
    stub.add_client_error("apply_guardrail", "ThrottlingException", "Too many requests", 429,
                          expected_params=guardrail_request("t"))
    stub.add_response("apply_guardrail", masked_response("t"), guardrail_request("t"))
    redactor = GuardrailRedactor("gr1234abcd", "3", client=client, limiter=bucket)
    with stub:
        assert redactor.redact("t") == "t"
    assert clock.sleeps[:2] == [1.0, 2.0] or clock.sleeps.count(1.0) >= 1
    assert bucket.rate < bucket.max_rate  # halved twice, then a 5% step back up
    assert bucket.rate == pytest.approx(bucket.max_rate / 4 + bucket.max_rate / 20)


def test_other_errors_are_not_retried():
    client, stub = runtime_stub()
    clock = FakeClock()
    stub.add_client_error("apply_guardrail", "ResourceNotFoundException", "no such guardrail", 404)
    with stub, pytest.raises(Exception, match="no such guardrail"):
        GuardrailRedactor("gr1234abcd", "3", client=client,
                          limiter=TokenBucket(60, clock=clock, sleep=clock.sleep)).redact("t")


def test_token_bucket_holds_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(120, clock=clock, sleep=clock.sleep)  # 2 per second, burst 2
    for _ in range(22):
        bucket.acquire()
    assert clock.now == pytest.approx(10.0)  # 2 at once, then 20 at 0.5 s
    clock.now += 60  # idle: the burst refills only to its capacity
    start = clock.now
    for _ in range(3):
        bucket.acquire()
    assert clock.now - start == pytest.approx(0.5)


def test_call_with_backoff_gives_up_after_its_attempts():
    from botocore.exceptions import ClientError

    clock = FakeClock()
    bucket = TokenBucket(60, clock=clock, sleep=clock.sleep)
    error = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"},
                         "ResponseMetadata": {"HTTPStatusCode": 429}}, "ApplyGuardrail")

    def call():
        raise error

    with pytest.raises(ClientError):
        call_with_backoff(bucket, call, attempts=3)
    # backoff 1 s then 2 s, each followed by the bucket's wait at the halved rate (0.5/s, then 0.25/s)
    assert clock.sleeps == [1.0, 1.0, 2.0, 2.0]


# -- CLI ---------------------------------------------------------------------------------------------

def test_cli_import_reports_problems_and_reads_job_json(tmp_path):
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    (fetched / "part-000.jsonl.out").write_bytes((OUTS / "anthropic.jsonl.out").read_bytes())
    (fetched / "job.json").write_text(json.dumps({"modelId": MODELS["anthropic"], "jobArn": None}))
    out = tmp_path / "imported.jsonl"
    result = CliRunner().invoke(app, ["bedrock", "import", str(fetched / "part-000.jsonl.out"),
                                      "--records", str(EXPORT), "--out", str(out)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "5 records (1 error, 2 ok, 1 truncated, 1 unknown-shape)" in said
    assert "record R0000000003" in said and "1 record(s) of the records maps have no line" in said
    assert json.loads(out.read_text().splitlines()[0])["model_id"] == MODELS["anthropic"]


def test_cli_import_without_a_model_says_how(tmp_path):
    result = CliRunner().invoke(app, ["bedrock", "import", str(OUTS / "nova.jsonl.out"), "--records", str(EXPORT),
                                      "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1 and "pass --model" in result.output


def test_cli_guardrail_option(tmp_path, monkeypatch):
    client, stub = runtime_stub()
    for text in ("Northwind support, this is Dana.", "Thanks, bye."):
        stub.add_response("apply_guardrail", masked_response(text.upper()),
                          {**guardrail_request(text), "guardrailVersion": "DRAFT"})
    monkeypatch.setattr(cli_bedrock, "make_clients", lambda region: cli_bedrock.BedrockClients(None, client, None))
    out = tmp_path / "x.jsonl"
    with stub:
        result = CliRunner().invoke(app, ["bedrock", "import", str(OUTS / "llama.jsonl.out"), "--records",
                                          str(EXPORT), "--out", str(out), "--model", MODELS["llama"],
                                          "--guardrail", "gr1234abcd:DRAFT", "--guardrail-rpm", "6000"])
        stub.assert_no_pending_responses()
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == [
        "NORTHWIND SUPPORT, THIS IS DANA.", "THANKS, BYE."]
    bad = CliRunner().invoke(app, ["bedrock", "import", str(OUTS / "llama.jsonl.out"), "--records", str(EXPORT),
                                   "--out", str(tmp_path / "y.jsonl"), "--guardrail", "gr1234abcd"])
    assert bad.exit_code == 2 and "ID:VERSION" in bad.output


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.builds(
    lambda rid, out, err: json.dumps({"recordId": rid, "modelInput": {}, **({"error": err} if err else
                                                                          {"modelOutput": out})}).encode(),
    st.text(max_size=12), st.dictionaries(st.sampled_from(["content", "output", "generation", "results"]),
                                          st.none() | st.text(max_size=4) | st.lists(st.text(max_size=3))),
    st.none() | st.dictionaries(st.sampled_from(["errorCode", "errorMessage"]), st.integers() | st.text())))
def test_any_output_line_gives_one_valid_record(raw):
    """Whatever a .jsonl.out line holds, it becomes one ImportedModelOutput (never an exception, never lost)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, mo.LabelIndex(tmp) as index:
        stats = mo.ImportStats()
        entry = mo.convert(raw, number=1, file="x.jsonl.out", model_id=MODELS["anthropic"], job_arn=None,
                           index=index, masker=mo.Masker(RegexRedactor()), stats=stats)
        ImportedModelOutput.model_validate(entry)
        assert (entry["status"] == "ok") == (entry["text"] is not None and entry["problem"] is None)


def test_a_rerun_with_another_masking_masks_again(tmp_path):
    out = tmp_path / "imported.jsonl"
    run_import(tmp_path, "anthropic", mo.Masker(None), out=out)
    assert "206-555-0142" in out.read_text()  # --no-redact kept it
    stats, rows = run_import(tmp_path, "anthropic", out=out)  # now with the default redactor
    assert (stats.resumed, stats.masked_now) == (0, 2) and "[PHONE]" in rows[0]["text"]
    stats, _ = run_import(tmp_path, "anthropic", out=out)
    assert (stats.resumed, stats.masked_now) == (2, 0)


def test_a_usage_that_is_not_an_object_is_no_usage():
    """Found by hypothesis: `usage: true` must not crash the extraction."""
    got = mo.extract("anthropic", {"content": [{"type": "text", "text": "x"}], "usage": True})
    assert (got.text, got.input_tokens) == ("x", None)
