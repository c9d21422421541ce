"""The default redactor over tests/fixtures/pii_corpus.jsonl: every instance is masked with its type, and
ordinary text (times, dates, prices, short order numbers, versions, durations) comes out unchanged."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from toolkit.export.redact import RegexRedactor

CORPUS = [json.loads(line) for line in
          (Path(__file__).parent / "fixtures" / "pii_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
POSITIVE = [c for c in CORPUS if c["type"] != "NONE"]
NEGATIVE = [c for c in CORPUS if c["type"] == "NONE"]
STRUCTURED = {"EMAIL", "PHONE", "CARD", "SSN", "IBAN", "ID"}


def test_corpus_covers_the_types_and_languages():
    assert len(POSITIVE) >= 100 and len(NEGATIVE) >= 50
    assert {c["type"] for c in POSITIVE} == STRUCTURED
    assert {"en", "de", "fr", "es", "it", "nl", "hi"} <= {c["lang"] for c in POSITIVE}
    assert len({c["id"] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", POSITIVE, ids=[c["id"] for c in POSITIVE])
def test_masks_each_instance_with_its_type(case):
    r = RegexRedactor()
    assert r.redact(case["text"]) == case["expected"]
    assert r.counts == {case["type"]: 1}


@pytest.mark.parametrize("case", NEGATIVE, ids=[c["id"] for c in NEGATIVE])
def test_leaves_ordinary_text_alone(case):
    r = RegexRedactor()
    assert r.redact(case["text"]) == case["text"]
    assert not r.counts


def test_no_structured_identifier_survives_the_whole_corpus():
    # One redactor over every text, as an export runs it: nothing of a positive's PII remains.
    r = RegexRedactor()
    survived = Counter(c["type"] for c in POSITIVE if r.redact(c["text"]) != c["expected"])
    assert not survived
    assert sum(r.counts.values()) == len(POSITIVE)
