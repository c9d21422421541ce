"""The export-record codec: builders construct the contract models (toolkit/contract/records.py) and
the writers get `encode(model)`, so a record the contract does not describe cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import toolkit.contract.records as R
from toolkit.contract.records import KtoRecord, Lineage, ModelPairRecord, build, decode, encode
from toolkit.export.builders import record
from toolkit.export.formats.base import ExportError, dumps

GOLDEN = Path(__file__).parent / "fixtures" / "export" / "golden"

LINEAGE = {"interaction_id": "int-0001", "source_ref": "s3://bucket/media/a.wav", "job_name": None,
           "label_attribute": "call-labels", "agreement": None, "creation_date": None, "line": 1,
           "segment_id": None}
KTO = {"id": "int-0001", "system": "s", "prompt": "p", "completion": "c", "label": True, "score": 4.0,
       "threshold": 4.0, "field": "overall_rating", "lineage": LINEAGE}


def test_encode_keeps_nulls_in_model_order_and_leaves_out_an_absent_model():
    out = encode(Lineage(**LINEAGE))
    assert list(out) == list(LINEAGE) and out == LINEAGE  # nulls written, `model` not written as null
    with_model = {**LINEAGE, "model": {"model_id": "m", "record_id": None, "system": "", "prompt": "q",
                                       "params": {}}}
    assert encode(Lineage(**with_model)) == with_model


def test_a_record_round_trips_through_its_model():
    built = record(KtoRecord, **KTO)
    assert decode(KtoRecord, dumps(built)) == KtoRecord(**KTO)
    assert record(KtoRecord, {"lineage"}, **KTO) == {k: v for k, v in KTO.items() if k != "lineage"}


@pytest.mark.parametrize(("change", "field"), [
    ({"stray": 1}, "stray"),                                            # a key the contract lacks
    ({"label": "yes please"}, "label"),                                 # a value of the wrong type
    ({"lineage": {**LINEAGE, "source_ref": "s3://bucket/../etc/x"}}, "lineage.source_ref"),
])
def test_a_record_the_contract_refuses_is_an_error_naming_record_and_field(change, field):
    with pytest.raises(ExportError) as exc:
        record(KtoRecord, **{**KTO, **change})
    message = str(exc.value)
    assert message.startswith("record int-0001: does not fit KtoRecord") and field in message
    assert [p.path for p in exc.value.problems] == [field]
    assert "yes please" not in message and "etc/x" not in message  # never the value (PII)


def test_every_preference_model_golden_line_decodes_with_its_model_lineage():
    lines = (GOLDEN / "preference-model.jsonl" / "out.jsonl").read_bytes().splitlines()
    assert lines
    for line in lines:
        rec = decode(ModelPairRecord, line)
        assert rec.lineage.model is not None
        assert dumps(encode(rec)) == line + b"\n"  # re-encoded byte for byte as written


# Each preset's jsonl record model (every golden jsonl line is one).
JSONL_MODELS = {
    "sft-transcription": R.TranscriptionRecord, "sft-summary": R.SummaryRecord,
    "preference-correction": R.CorrectionPairRecord, "preference-ratings": R.RatingPairRecord,
    "preference-model": R.ModelPairRecord, "preference-compare": R.ComparePairRecord, "kto": R.KtoRecord,
    "reward-segments": R.RewardRecord, "dense-preference": R.DensePreferenceRecord,
}


@pytest.mark.parametrize("preset", sorted(JSONL_MODELS))
def test_build_gives_what_encoding_the_model_gives(preset):
    """`build` (the builders' one-pass path) is `encode(model(**fields))`: same keys, same order, same
    values, `Lineage.model` left out when unset, whatever order the fields come in."""
    model = JSONL_MODELS[preset]
    lines = (GOLDEN / f"{preset}.jsonl" / "out.jsonl").read_bytes().splitlines()
    assert lines
    for line in lines:
        expected = encode(decode(model, line))
        fields = dict(reversed(list(expected.items())))
        built = build(model, fields)
        assert dumps(built) == dumps(expected) == line + b"\n"
        assert build(model, fields, {"lineage"}) == encode(decode(model, line), {"lineage"})


def test_build_fills_defaults_and_refuses_what_the_model_refuses():
    assert build(KtoRecord, KTO) == encode(KtoRecord(**KTO))
    assert list(build(Lineage, LINEAGE)) == list(LINEAGE)  # `model` unset: left out, as model_dump does
    span = {"start": 1, "end": 2.5, "track": "speaker", "label": "Agent", "agreement": 0.5, "support": 2}
    assert build(R.Span, span) == encode(R.Span(**span)) == {**span, "start": 1.0, "attributes": {}, "text": ""}
    for bad in ({**KTO, "stray": 1}, {**KTO, "label": "yes please"}, {k: v for k, v in KTO.items() if k != "id"}):
        with pytest.raises(ValidationError) as model_error:
            KtoRecord(**bad)
        with pytest.raises(ValidationError) as built_error:
            build(KtoRecord, bad)
        assert [e["loc"] for e in built_error.value.errors()] == [e["loc"] for e in model_error.value.errors()]
