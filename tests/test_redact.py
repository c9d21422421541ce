"""PII redaction: built-in patterns, Luhn, custom patterns, Comprehend and Guardrail backends (Stubber)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.errors import GtkitError
from toolkit.export.redact import (
    ChainRedactor,
    ComprehendRedactor,
    GuardrailRedactor,
    NullRedactor,
    RedactorOptionError,
    RegexRedactor,
    luhn_ok,
)


@pytest.mark.parametrize(("text", "expected", "kind"), [
    ("call 206 555 0142 now", "call [PHONE] now", "PHONE"),
    ("call (206) 555-0142 now", "call [PHONE] now", "PHONE"),
    ("call +1 206-555-0142.", "call [PHONE].", "PHONE"),
    ("call 206.555.0142", "call [PHONE]", "PHONE"),
    ("mail maria.okafor@example.org.", "mail [EMAIL].", "EMAIL"),
    ("mail jordan.rivera@example.com", "mail [EMAIL]", "EMAIL"),
    ("card 4111 1111 1111 1111 ok", "card [CARD] ok", "CARD"),
    ("card 4111-1111-1111-1111", "card [CARD]", "CARD"),
    ("card 5500000000000004", "card [CARD]", "CARD"),
    ("call 07700 900123 today", "call [PHONE] today", "PHONE"),  # UK mobile, 5 + 6 digits
    ("call (01632) 960 001", "call [PHONE]", "PHONE"),
    # Other scripts' digits are digits too (\d), on the fast path and in the Luhn check.
    ("بطاقة ٤١١١ ١١١١ ١١١١ ١١١١ شكرا", "بطاقة [CARD] شكرا", "CARD"),
    ("कॉल ५५५-१२३-४५६७ करें", "कॉल [PHONE] करें", "PHONE"),
    ("رقمي ٠٧٧٠٠ ٩٠٠١٢٣", "رقمي [PHONE]", "PHONE"),
])
def test_builtin_patterns(text, expected, kind):
    r = RegexRedactor()
    assert r.redact(text) == expected
    assert r.counts == {kind: 1}


@pytest.mark.parametrize("text", [
    "order W 48172 arrives today",
    "segment 12.400 to 15.100 s",
    "on 2024-11-05 at 10:00",
    "card 4111 1111 1111 1112 is not a valid number",  # fails Luhn: not a card...
    "agreement 0.83 over 3 workers",
])
def test_leaves_non_pii_alone(text):
    r = RegexRedactor()
    out = r.redact(text)
    if "1112" in text:
        # ...and is not masked as a card (it may still look like a phone number to the phone rule).
        assert "[CARD]" not in out
    else:
        assert out == text
        assert not r.counts


def test_luhn():
    assert luhn_ok("4111111111111111")
    assert luhn_ok("٤١١١١١١١١١١١١١١١") and not luhn_ok("٤١١١١١١١١١١١١١١٢")
    assert luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


def test_custom_patterns_and_counts():
    r = RegexRedactor({"order": r"\bW \d{5}\b", "EMPLOYEE": r"\bagt-\d+\b"})
    out = r.redact("Order W 48172 handled by agt-1187, mail a@b.io")
    assert out == "Order [ORDER] handled by [EMPLOYEE], mail [EMAIL]"
    assert r.counts == {"ORDER": 1, "EMPLOYEE": 1, "EMAIL": 1}


def test_null_redactor():
    assert NullRedactor().redact("206 555 0142") == "206 555 0142"


def test_comprehend_backend_with_stubber():
    client = boto3.client("comprehend", region_name="us-east-1")
    text = "I am Maria, call 206 555 0142."
    with Stubber(client) as stub:
        stub.add_response("detect_pii_entities", {"Entities": [
            {"Type": "NAME", "BeginOffset": 5, "EndOffset": 10, "Score": 0.99},
            {"Type": "PHONE", "BeginOffset": 17, "EndOffset": 29, "Score": 0.98},
            {"Type": "ADDRESS", "BeginOffset": 0, "EndOffset": 1, "Score": 0.1},  # below min_score
        ]}, {"Text": text, "LanguageCode": "en"})
        r = ComprehendRedactor(client=client)
        assert r.redact(text) == "I am [NAME], call [PHONE]."
        stub.assert_no_pending_responses()
    assert r.counts == {"NAME": 1, "PHONE": 1}


def test_comprehend_chunks_long_text():
    client = boto3.client("comprehend", region_name="us-east-1")
    r = ComprehendRedactor(client=client)
    r.MAX_BYTES = 80  # 20-character chunks
    text = "hello world " * 4 + "maria"
    with Stubber(client) as stub:
        sent = []
        offset = 0
        from toolkit.export.redact import _chunks

        for start, chunk in _chunks(text, 20):
            sent.append(chunk)
            entities = [{"Type": "NAME", "BeginOffset": chunk.index("maria"), "EndOffset": chunk.index("maria") + 5,
                         "Score": 0.9}] if "maria" in chunk else []
            stub.add_response("detect_pii_entities", {"Entities": entities}, {"Text": chunk, "LanguageCode": "en"})
            offset = start
        assert len(sent) > 1 and offset > 0
        assert r.redact(text).endswith("[NAME]")
        stub.assert_no_pending_responses()


def test_guardrail_backend_with_stubber():
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    text = "Email maria.okafor@example.org please"
    with Stubber(client) as stub:
        stub.add_response("apply_guardrail", {
            "usage": {"topicPolicyUnits": 0, "contentPolicyUnits": 0, "wordPolicyUnits": 0,
                      "sensitiveInformationPolicyUnits": 1, "sensitiveInformationPolicyFreeUnits": 0,
                      "contextualGroundingPolicyUnits": 0},
            "action": "GUARDRAIL_INTERVENED",
            "outputs": [{"text": "Email {EMAIL} please"}],
            "assessments": [{"sensitiveInformationPolicy": {
                "piiEntities": [{"match": "maria.okafor@example.org", "type": "EMAIL", "action": "ANONYMIZED"}],
                "regexes": []}}],
        }, {"guardrailIdentifier": "gr-123", "guardrailVersion": "1", "source": "OUTPUT",
            "content": [{"text": {"text": text}}]})
        stub.add_response("apply_guardrail", {
            "usage": {"topicPolicyUnits": 0, "contentPolicyUnits": 0, "wordPolicyUnits": 0,
                      "sensitiveInformationPolicyUnits": 1, "sensitiveInformationPolicyFreeUnits": 0,
                      "contextualGroundingPolicyUnits": 0},
            "action": "NONE", "outputs": [], "assessments": [],
        })
        r = GuardrailRedactor("gr-123", "1", client=client)
        assert r.redact(text) == "Email {EMAIL} please"
        assert r.redact("nothing here") == "nothing here"
        stub.assert_no_pending_responses()
    assert r.counts == {"EMAIL": 1}


def test_chain_sums_counts():
    a, b = RegexRedactor(), RegexRedactor({"NAME": r"\bMaria\b"})
    chain = ChainRedactor([a, b])
    assert chain.redact("Maria: 206 555 0142") == "[NAME]: [PHONE]"
    assert chain.counts == {"PHONE": 1, "NAME": 1}


def test_custom_patterns_apply_to_texts_without_digits_or_at():
    # The built-in patterns need a digit or an '@'; a text with neither still meets the user's.
    r = RegexRedactor({"ticket": r"TICKET-[A-Z]+"})
    assert r.redact("see TICKET-ABCD today") == "see [TICKET] today"
    assert r.counts == {"TICKET": 1}
    plain = "no digits and no at sign here"
    assert RegexRedactor().redact(plain) is plain


@pytest.mark.parametrize(("text", "expected", "n"), [
    ("(maria.okafor@example.org)", "([EMAIL])", 1),
    ("mail:maria@example.org,jo@example.com", "mail:[EMAIL],[EMAIL]", 2),
    ("a@b.co then x.y+z@mail.example.co.uk.", "[EMAIL] then [EMAIL].", 2),
    ("not an email: foo@bar, @example.org, user@", "not an email: foo@bar, @example.org, user@", 0),
    ("two @@ signs a@@example.org", "two @@ signs a@@example.org", 0),
    ("phone 206 555 0142 and me@example.org", "phone [PHONE] and [EMAIL]", 2),
])
def test_emails_in_context(text, expected, n):
    r = RegexRedactor()
    assert r.redact(text) == expected
    assert sum(r.counts.values()) == n


def test_regions_choose_the_national_formats():
    # +numbers are found whatever the regions; national formats only for the regions asked for.
    assert RegexRedactor(regions=("US",)).redact("appelez le 01 42 68 53 00") == "appelez le 01 42 68 53 00"
    assert RegexRedactor(regions=("FR",)).redact("appelez le 01 42 68 53 00") == "appelez le [PHONE]"
    assert RegexRedactor(regions=("US",)).redact("or +33 1 42 68 53 00") == "or [PHONE]"
    with pytest.raises(ValueError, match="XX") as caught:
        RegexRedactor(regions=("US", "XX"))
    assert isinstance(caught.value, GtkitError)  # the CLI's one line, not a traceback


def test_a_user_pattern_that_does_not_compile_is_named():
    with pytest.raises(RedactorOptionError, match=r"^redaction pattern ACCOUNT: not a regular expression \(") as caught:
        RegexRedactor({"account": "(unclosed"})
    assert isinstance(caught.value, ValueError)


def test_remembered_windows_still_count_and_keep_their_context():
    r = RegexRedactor()
    for _ in range(3):
        assert r.redact("call 206 555 0142 now") == "call [PHONE] now"
    assert r.counts == {"PHONE": 3}
    # A bare 9-digit number is an SSN only after "SSN"/"social": the same digits elsewhere are not.
    assert r.redact("my SSN is 536221987") == "my SSN is [SSN]"
    assert r.redact("order 536221987 shipped") == "order 536221987 shipped"
    r.CACHE_SIZE = 0
    assert r.redact("call 206 555 0142 now") == "call [PHONE] now"
    assert r.counts == {"PHONE": 4, "SSN": 1}


def test_pickles_for_the_export_workers():
    import pickle

    r = pickle.loads(pickle.dumps(RegexRedactor({"ORDER": r"W \d{5}"}, regions=("GB",))))
    assert r.redact("W 48172, ring 020 7946 0958") == "[ORDER], ring [PHONE]"


@pytest.mark.parametrize(("text", "expected"), [
    # The IBAN is taken whole before any phone pass sees its digit groups.
    ("DE89 3704 0044 0532 0130 00", "[IBAN]"),
    # A phone number ending a log line is not joined with the next line's date.
    ("session down (event 1)\n2024-05-15T18:00:02Z", "session down (event 1)\n2024-05-15T18:00:02Z"),
    ("IP 203.0.113.3 (event 3)", "IP 203.0.113.3 (event 3)"),
    ("order #A-2024-001234", "order #A-2024-001234"),
    # "look at example dot com" is a web address; "four one five" alone is too short to be a number.
    ("look at example dot com", "look at example dot com"),
    ("press four one five then hash", "press four one five then hash"),
])
def test_order_and_boundaries(text, expected):
    assert RegexRedactor().redact(text) == expected


# Pieces rather than characters, so digit runs, spoken numbers and e-mails actually occur.
_TEXT = st.lists(st.sampled_from([
    *"0123456789 +-().@abcxyzAZ,/\n", "٤", "५", " dot ", " at ", " five", " oh", " double", " quarante-deux", "DE89",
    "com", "555", "0142", "X"]), max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_fuzz_never_raises_and_is_idempotent(text):
    r = RegexRedactor()
    out = r.redact(text)
    assert isinstance(out, str)
    assert r.redact(out) == out
