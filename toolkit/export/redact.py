"""PII redaction for every text that leaves the exporter.

`Redactor` is the backend interface: `redact(text) -> text` with masked spans, counting what it
masked per type in `counts`. Built in: `RegexRedactor` (emails, phone numbers, Luhn-checked
payment card numbers, plus user patterns), `ComprehendRedactor` (Amazon Comprehend
DetectPiiEntities) and `GuardrailRedactor` (Amazon Bedrock ApplyGuardrail). `ChainRedactor`
runs several in order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Same, but the local part must start at a token boundary: used on windows around an '@'.
EMAIL_AT = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by spaces or dashes; confirmed with the Luhn check.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# North-American and international numbers: (206) 555-0142, 206 555 0142, +44 20 7946 0958 ...
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)\s?|\d{2,5}[\s.-]?)\d{3,4}[\s.-]?\d{3,4}(?![\w])"
)
# The characters of an e-mail local part, as in EMAIL_AT.
LOCAL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-"
# Cheap first pass: a run of 8+ digits/separators. Patterns that begin with a lookbehind defeat
# the regex engine's fast prefix scan, so the exact card/phone patterns only run on these windows.
CANDIDATE = re.compile(r"\d[\d\s().+-]{6,}\d")
WINDOW_BEFORE = 4  # room for "+1 (" before the first digit
# Every built-in pattern needs an ASCII digit (numbers) or an '@' (emails): one C-level scan of
# the text settles the common case, a text with neither, without any of the passes below.
# The patterns use \d, which also matches other scripts' digits (Arabic-Indic, Devanagari...), so
# the pre-checks do too; str.isascii() (a flag, O(1)) keeps the cheaper ASCII class for most texts.
DIGIT = re.compile(r"[0-9]")
DIGIT_OR_AT = re.compile(r"[0-9@]")
ANY_DIGIT = re.compile(r"\d")
ANY_DIGIT_OR_AT = re.compile(r"[\d@]")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)  # any script's decimal digit
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def mask(kind: str) -> str:
    return f"[{kind}]"


class Redactor:
    """Backend interface. Subclasses implement `_redact`; `counts` accumulates per PII type."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        if not text:
            return text
        return self._redact(text)

    def _redact(self, text: str) -> str:
        raise NotImplementedError

    def apply_spans(self, text: str, spans: Iterable[tuple[int, int, str]]) -> str:
        """Replace (start, end, TYPE) spans, longest-first on overlaps, counting each."""
        out: list[str] = []
        pos = 0
        for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
            if start < pos or end <= start:
                continue
            out.append(text[pos:start])
            out.append(mask(kind))
            self.counts[kind] += 1
            pos = end
        out.append(text[pos:])
        return "".join(out)


class NullRedactor(Redactor):
    """`--no-redact`."""

    def redact(self, text: str) -> str:
        return text


class RegexRedactor(Redactor):
    """Emails, Luhn-valid card numbers, phone numbers, then user patterns {TYPE: regex}."""

    def __init__(self, patterns: Mapping[str, str] | None = None, builtins: bool = True):
        super().__init__()
        self.builtins = builtins
        self.patterns = [(name.upper(), re.compile(rx)) for name, rx in (patterns or {}).items()]
        self._builtins_only = builtins and not self.patterns

    def redact(self, text: str) -> str:
        if not text or (self._builtins_only
                        and (DIGIT_OR_AT if text.isascii() else ANY_DIGIT_OR_AT).search(text) is None):
            return text
        return self._redact(text)

    def _redact(self, text: str) -> str:
        if self.builtins:
            if "@" in text:
                text = self._emails(text)
            text = self._numbers(text)
        for name, rx in self.patterns:
            text = rx.sub(self._count(name), text)
        return text

    def _emails(self, text: str) -> str:
        """EMAIL only around each '@' (local part <= 64 chars, domain <= 255): a scan of the whole
        text from every position is what makes a plain EMAIL.sub slow."""
        out: list[str] = []
        pos = 0
        at = text.find("@")
        while at != -1:
            start = max(pos, at - 64)
            # EMAIL_AT can only match this '@' from the start of the run of local-part characters
            # just before it (its lookbehind wants a boundary there): match there, don't scan.
            local = start + len(text[start:at].rstrip(LOCAL_CHARS))
            m = EMAIL_AT.match(text, local, min(len(text), at + 256))
            if m is not None:
                out.append(text[pos:m.start()])
                out.append(mask("EMAIL"))
                self.counts["EMAIL"] += 1
                pos = m.end()
            at = text.find("@", max(at + 1, pos))
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _numbers(self, text: str) -> str:
        # Most texts have no digit at all, and the rest are scanned from their first digit.
        digit = (DIGIT if text.isascii() else ANY_DIGIT).search(text)
        if digit is None:
            return text
        first = digit.start()
        out: list[str] = []
        pos = 0
        for m in CANDIDATE.finditer(text, first):
            start, end = max(pos, m.start() - WINDOW_BEFORE), min(len(text), m.end() + 1)
            window = text[start:end]
            masked = PHONE.sub(self._phone, CARD.sub(self._card, window))
            if masked != window:
                out.append(text[pos:start])
                out.append(masked)
                pos = end
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _phone(self, _m: re.Match[str]) -> str:
        self.counts["PHONE"] += 1
        return mask("PHONE")

    def _count(self, kind: str) -> Any:
        def replace(_m: re.Match[str]) -> str:
            self.counts[kind] += 1
            return mask(kind)

        return replace

    def _card(self, m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if luhn_ok(digits):
            self.counts["CARD"] += 1
            return mask("CARD")
        return m.group(0)


class ComprehendRedactor(Redactor):
    """Amazon Comprehend DetectPiiEntities. Texts over the API limit are sent in chunks."""

    MAX_BYTES = 100_000

    def __init__(self, client: Any = None, language: str = "en", min_score: float = 0.5,
                 region: str | None = None):
        super().__init__()
        if client is None:
            import boto3

            from toolkit.storage import RETRY_CONFIG

            client = boto3.client("comprehend", region_name=region, config=RETRY_CONFIG)
        self.client = client
        self.language = language
        self.min_score = min_score

    def _redact(self, text: str) -> str:
        spans: list[tuple[int, int, str]] = []
        for offset, chunk in _chunks(text, self.MAX_BYTES // 4):
            resp = self.client.detect_pii_entities(Text=chunk, LanguageCode=self.language)
            for ent in resp.get("Entities", []):
                if ent.get("Score", 1.0) >= self.min_score:
                    spans.append((offset + ent["BeginOffset"], offset + ent["EndOffset"], ent["Type"]))
        return self.apply_spans(text, spans)


class GuardrailRedactor(Redactor):
    """Amazon Bedrock ApplyGuardrail with a guardrail whose sensitive-information policy masks PII.

    The guardrail returns the masked text; counts come from its assessments. A guardrail that
    BLOCKs instead of masking yields its blocked message, which is what leaves the exporter.
    """

    def __init__(self, guardrail_id: str, guardrail_version: str = "DRAFT", client: Any = None,
                 region: str | None = None):
        super().__init__()
        if client is None:
            import boto3

            from toolkit.storage import RETRY_CONFIG

            client = boto3.client("bedrock-runtime", region_name=region, config=RETRY_CONFIG)
        self.client = client
        self.guardrail_id = guardrail_id
        self.guardrail_version = guardrail_version

    def _redact(self, text: str) -> str:
        resp = self.client.apply_guardrail(
            guardrailIdentifier=self.guardrail_id, guardrailVersion=self.guardrail_version,
            source="OUTPUT", content=[{"text": {"text": text}}])
        for assessment in resp.get("assessments", []):
            policy = assessment.get("sensitiveInformationPolicy") or {}
            for ent in policy.get("piiEntities", []):
                self.counts[str(ent.get("type", "PII"))] += 1
            for rx in policy.get("regexes", []):
                self.counts[str(rx.get("name", "REGEX"))] += 1
        if resp.get("action") != "GUARDRAIL_INTERVENED":
            return text
        outputs = resp.get("outputs") or []
        return "".join(o.get("text", "") for o in outputs)


class ChainRedactor(Redactor):
    def __init__(self, redactors: Iterable[Redactor]):
        super().__init__()
        self.redactors = list(redactors)

    def _redact(self, text: str) -> str:
        for r in self.redactors:
            text = r.redact(text)
        return text

    @property  # type: ignore[override]
    def counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for r in getattr(self, "redactors", []):
            total.update(r.counts)
        return total

    @counts.setter
    def counts(self, _value: Counter[str]) -> None:
        pass


def _chunks(text: str, size: int) -> Iterable[tuple[int, str]]:
    """Split at whitespace near `size` characters so an entity is rarely cut in two."""
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        yield start, text[start:end]
        start = end
