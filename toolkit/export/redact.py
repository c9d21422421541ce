"""PII redaction for every text that leaves the exporter.

`Redactor` is the backend interface: `redact(text) -> text` with masked spans, counting what it
masked per type in `counts`. Built in: `RegexRedactor` (the default: e-mails written and spoken,
IBANs, payment cards, US SSNs, national identifiers, phone numbers of any region, digit sequences
read out as words, plus user patterns), `ComprehendRedactor` (Amazon Comprehend
DetectPiiEntities), `GuardrailRedactor` (Amazon Bedrock ApplyGuardrail) and `PresidioRedactor`
(local NER for names and places, optional extra `gtkit[ner]`). `ChainRedactor` runs several in
order.

The default leans on the field's libraries: phonenumbers (libphonenumber's matcher and metadata)
finds phone numbers, python-stdnum validates IBANs, SSNs and national identifiers, text2num reads
number words. What the regexes here do is only find candidates for those to confirm.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import iban as std_iban
from stdnum import verhoeff
from stdnum.de import idnr as de_idnr
from stdnum.es import dni as es_dni
from stdnum.es import nie as es_nie
from stdnum.fr import nir as fr_nir
from stdnum.in_ import pan as in_pan
from stdnum.it import codicefiscale as it_cf
from stdnum.nl import bsn as nl_bsn
from stdnum.us import ssn as us_ssn
from text_to_num import alpha2digit

from toolkit.errors import GtkitError

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Same, but the local part must start at a token boundary: used on windows around an '@'.
EMAIL_AT = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by spaces or dashes; confirmed with the Luhn check.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# The characters of an e-mail local part, as in EMAIL_AT.
LOCAL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-"
# Cheap first pass: a run of 7+ digits/separators. Only these windows go to the number passes.
CANDIDATE = re.compile(r"\d[\d \t\u00a0().+/-]{5,}\d")  # a number never spans lines
WINDOW_BEFORE = 4  # room for "+1 (" before the first digit
# Every built-in pattern needs an ASCII digit (numbers) or an '@' (emails), or a number word /
# an "at" word (spoken forms): one C-level scan plus one set test settle the common case.
# \d also matches other scripts' digits (Arabic-Indic, Devanagari...), so the pre-checks do too;
# str.isascii() (a flag, O(1)) keeps the cheaper ASCII class for most texts.
DIGIT = re.compile(r"[0-9]")
DIGIT_OR_AT = re.compile(r"[0-9@]")
ANY_DIGIT = re.compile(r"\d")
ANY_DIGIT_OR_AT = re.compile(r"[\d@]")

# Regions whose national formats (no +country prefix) are recognised; +numbers work for every region.
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN")
MIN_PHONE_DIGITS = 7

# --- identifiers written with letters (all need a digit, so they run behind the digit check) ---
# IBAN: country, check digits, then up to 30 letters/digits in groups; may overrun into the next
# word, so candidates are cut back at spaces until stdnum accepts one (mod 97 + national format).
IBAN_CANDIDATE = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}")
# Every identifier below has a letter next to a digit (DE89, de89, 54362315K, X2482300W) or a
# capital, a space and a digit ("AB 12 34 56 C"); "at 206" goes no further.
# (It starts with \d so the regex engine skips ahead to digits, which are fewer than letters.)
LETTER_BY_DIGIT = re.compile(r"\d(?:(?<=[A-Za-z]\d)|(?<=[A-Z] \d)|(?=-?[A-Za-z]))")
ALNUM_IDS = re.compile(r"""
    (?P<cf>\b[A-Z]{6}[0-9LMNP-V]{2}[A-EHLMPR-T][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z]\b)  # IT codice fiscale
  | (?P<dni>\b\d{8}-?[A-Z]\b)                                                            # ES DNI
  | (?P<nie>\b[XYZ]-?\d{7}-?[A-Z]\b)                                                     # ES NIE
  | (?P<pan>\b[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]\b)                                     # IN PAN
  # GB National Insurance number: HMRC's allocation rules (no check digit exists).
  | (?P<nino>\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\ ?\d{2}\ ?\d{2}\ ?\d{2}\ ?[A-D]\b)
""", re.X)
ALNUM_VALID: dict[str, Callable[[str], bool]] = {
    "cf": it_cf.is_valid, "dni": es_dni.is_valid, "nie": es_nie.is_valid, "pan": in_pan.is_valid,
    "nino": lambda _v: True,
}

# --- identifiers written with digits only, tried on CANDIDATE windows in this order ---
SSN_GROUPED = re.compile(r"(?<![\d.-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
NINE_DIGITS = re.compile(r"(?<![\d.-])(?:\d{9}|\d{4}\.\d{2}\.\d{3})(?![\d-])")
SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|social)\b")
# Before a spoken run: an account/customer number, not a phone number, even if it would dial.
ID_CONTEXT = re.compile(r"(?i)\b(?:account|policy|customer|member|reference|konto|kunden\w*|compte|client|cuenta|"
                        r"cliente|conto|rekening|klant\w*)\b")
# DE Steuer-ID (11), IN Aadhaar (12), FR NIR (13 + 2 key): bare or in their usual groupings.
STRONG_IDS = re.compile(r"""(?<![\d.+-])(?:
    \d{2}\ \d{3}\ \d{3}\ \d{3} | \d{11}
  | [2-9]\d{3}\ \d{4}\ \d{4} | [2-9]\d{11}
  | [12]\ ?\d{2}\ ?\d{2}\ ?\d{2}\ ?\d{3}\ ?\d{3}\ ?\d{2}
)(?![\d-])""", re.X)
# NANP numbers without an area code (555-0142) or with one libphonenumber doesn't list (555-123-4567).
US_SHAPED = re.compile(r"(?<!\d)(?<!\d[ .-])(?:\(?\d{3}\)?[ .-]?)?[2-9]\d{2}[ .-]\d{4}(?![\d])(?![ .-]\d)")
# libphonenumber skips slash dates and times, not 05-11-2024, 2024.11.05 or IPv4 addresses: never
# a phone number here. Nor is a number glued to a code ("#A-2024-001234", "2024-0012-AB").
NOT_A_PHONE = re.compile(r"\d{1,2}([-./])\d{1,2}\1(?:\d{2}|\d{4})|\d{4}([-./])\d{1,2}\2\d{1,2}|\d{1,3}(?:\.\d{1,3}){3}")
CODE_BEFORE = re.compile(r"(?:[A-Za-z][-/]|[#/])$")
CODE_AFTER = re.compile(r"[-/]\w")
INTERNATIONAL = re.compile(r"\+|(?<!\d)00 ?[1-9]")
# Reads "00 33 1 ..." as +33 (most of the world dials 00 abroad; the US dials 011); +numbers need no region.
INTERNATIONAL_REGION = "DE"

# --- spoken forms ---
AT_WORDS = frozenset({"at", "arobase", "arroba", "chiocciola", "apenstaartje", "klammeraffe", "ät"})
DOT_WORDS = r"dot|punkt|point|punto|punt"
DOT_TOKENS = frozenset(DOT_WORDS.split("|"))
INNER_DOT = re.compile(r"\w\.\w")  # "example.com" said half written
SPOKEN_AT = re.compile(r"\s(?:at|arobase|arroba|chiocciola|apenstaartje|klammeraffe|ät)\s+", re.I)
# The local part: word (separator word)* right before the "at"; leftmost match = the longest chain.
SPOKEN_LOCAL = re.compile(
    rf"(?:[\w.+-]+\s+(?:{DOT_WORDS}|underscore|dash|hyphen|unterstrich|tiret|guion|guión|trattino|streepje)\s+)*"
    r"[\w.+-]+$", re.I)
TLDS = ("com|org|net|edu|gov|mil|int|info|biz|io|co|uk|de|fr|es|it|nl|be|ch|at|eu|in|us|ca|au|ie|pt|pl|se|no"
        "|dk|fi|jp|cn|ru|br|mx|nz|za|me|tv|app|dev|ai|email|online")
SPOKEN_DOMAIN = re.compile(rf"[\w-]+(?:(?:\s+(?:{DOT_WORDS})\s+|\.)[\w-]+)*(?:\s+(?:{DOT_WORDS})\s+|\.)(?:{TLDS})\b",
                           re.I)
# "look at example dot com" is a web address, not someone's mailbox.
NOT_A_MAILBOX = frozenset({"look", "looked", "online", "website", "site", "page", "us", "me", "it", "here", "there",
                           "home", "work", "is", "was", "are", "visit", "go", "directly", "or", "and"})
# Spoken local parts are often a name said with a space ("jordan rivera at example dot com"): up to
# two words before the local part join it unless they are words that introduce an address.
LOCAL_WORD_BEFORE = re.compile(r"([^\W\d_][\w'-]*)\s+$")
INTRODUCING_WORDS = (
    "a an the my your his her our their its to at on in of for from by with me is it's was be or and but "
    "email e-mail mail address adresse correo indirizzo adres write send reach contact that's this that "
    "mein meine ist mon ma est à mi es il mio è mijn naar het c'est voici je suis ich bin soy sono ik ben "
    "name nom nombre nome naam")
NOT_IN_A_LOCAL_PART = NOT_A_MAILBOX | frozenset(INTRODUCING_WORDS.split())

UNITS = {
    "en": "zero one two three four five six seven eight nine",
    "de": "null eins zwei drei vier fünf sechs sieben acht neun",
    "fr": "zéro un deux trois quatre cinq six sept huit neuf",
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve",
    "it": "zero uno due tre quattro cinque sei sette otto nove",
    "nl": "nul een twee drie vier vijf zes zeven acht negen",
}
TENS = {  # teens, tens, hundreds: what text2num turns into two or three digits
    "en": "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty "
          "fifty sixty seventy eighty ninety hundred",
    "de": "zehn elf zwölf dreizehn vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn zwanzig dreißig vierzig "
          "fünfzig sechzig siebzig achtzig neunzig hundert",
    "fr": "dix onze douze treize quatorze quinze seize vingt vingts trente quarante cinquante soixante cent",
    "es": "diez once doce trece catorce quince dieciséis diecisiete dieciocho diecinueve veinte treinta cuarenta "
          "cincuenta sesenta setenta ochenta noventa cien ciento",
    "it": "dieci undici dodici tredici quattordici quindici sedici diciassette diciotto diciannove venti trenta "
          "quaranta cinquanta sessanta settanta ottanta novanta cento",
    "nl": "tien elf twaalf dertien veertien vijftien zestien zeventien achttien negentien twintig dertig veertig "
          "vijftig zestig zeventig tachtig negentig honderd",
}
EXTRA = {"en": {"oh": "zero", "o": "zero"}, "de": {"zwo": "zwei"}, "fr": {"une": "un"}, "es": {"una": "uno"},
         "it": {"una": "uno"}, "nl": {"één": "een"}}
REPEAT = {"double": 2, "triple": 3}  # "double five" = 55, as English speakers read out numbers
JOINERS = {"fr": {"et"}, "es": {"y"}, "de": {"und"}}


def _compounds(lang: str) -> set[str]:
    """One-word 21..99 forms (zweiundvierzig, veintidós, ventitré, tweeëntwintig)."""
    units = UNITS[lang].split()[1:]
    tens = TENS[lang].split()
    if lang == "de":
        return {(u if u != "eins" else "ein") + "und" + t for u in units for t in tens[10:17]}
    if lang == "nl":
        return {u + ("ën" if u.endswith("e") else "en") + t for u in units for t in tens[10:17]}
    if lang == "it":
        return {(t[:-1] if u in ("uno", "otto") else t) + (u if u != "tre" else "tré") for u in units
                for t in tens[10:17]} | {t + u for u in units for t in tens[10:17]}
    if lang == "es":
        return {"veinti" + u for u in ("uno", "dós", "dos", "trés", "tres", "cuatro", "cinco", "séis", "seis", "siete",
                                       "ocho", "nueve")}
    return set()


NUMBER_WORDS: dict[str, set[str]] = {
    lang: set(UNITS[lang].split()) | set(TENS[lang].split()) | set(EXTRA[lang]) | _compounds(lang)
    for lang in UNITS}
ALL_NUMBER_WORDS = frozenset(set().union(*NUMBER_WORDS.values()) | set(REPEAT))
# Number words as whitespace tokens of the lowered text, hyphens split ("quarante-deux"), with the
# punctuation Transcribe attaches ("five,"): counted by one C-level map over the tokens.
NUMBER_TOKENS = frozenset(w + p for w in ALL_NUMBER_WORDS for p in ("", ",", ".", "?", "!", ";", ":"))
TRIGGER_TOKENS = NUMBER_TOKENS | AT_WORDS
WORD = re.compile(r"[^\W\d_]+")
RUN_GAP = re.compile(r"[\s,-]*")
# 7 digits need 5+ words even with "triple five" or "forty two"; "card ending in one one one one"
# (4) is settled by the count alone.
MIN_SPOKEN_WORDS = 5


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


def ascii_digits(text: str) -> str:
    """The decimal digits of `text` in ASCII, whatever their script."""
    if text.isascii():
        return "".join(ch for ch in text if ch.isdigit())
    return "".join(str(unicodedata.digit(ch)) for ch in text if ch.isdecimal())


def _compile(name: str, rx: str) -> re.Pattern[str]:
    """A user pattern; one that does not compile is named (the pattern is the user's own option, not a text)."""
    try:
        return re.compile(rx)
    except re.error as exc:
        raise RedactorOptionError(f"redaction pattern {name.upper()}: not a regular expression ({exc})") from None


def mask(kind: str) -> str:
    return f"[{kind}]"


class RedactorOptionError(GtkitError, ValueError):
    """A redactor asked for something that does not exist (a phone region, a pattern that does not
    compile); the message names the option, never a text."""


class RedactorUnavailable(GtkitError, RuntimeError):
    """A redaction backend whose software or model is not installed here."""


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

    def sub(self, rx: re.Pattern[str], text: str, kind: Callable[[re.Match[str]], str | None]) -> str:
        """Mask each match of `rx` as `[kind(m)]`; a None kind leaves the match as it is."""
        def replace(m: re.Match[str]) -> str:
            found = kind(m)
            if found is None:
                return m.group(0)
            self.counts[found] += 1
            return mask(found)

        return rx.sub(replace, text)


class NullRedactor(Redactor):
    """`--no-redact`."""

    def redact(self, text: str) -> str:
        return text


class RegexRedactor(Redactor):
    """The default backend: structured identifiers, validated, then user patterns {TYPE: regex}.

    Order matters, longest and best-validated first, so a phone matcher never eats half of an
    IBAN: e-mail, spoken e-mail, IBAN and letter-bearing national IDs, then per run of digits
    international phone, card, SSN, DE/IN/FR IDs, national-format phone, NL BSN, and last the
    digit sequences read out as words. `regions`: the countries whose national phone formats
    (without +country) are recognised.
    """

    CACHE_SIZE = 4096  # digit windows remembered: a record repeats its numbers in every text of it

    def __init__(self, patterns: Mapping[str, str] | None = None, builtins: bool = True,
                 regions: Sequence[str] = DEFAULT_REGIONS):
        super().__init__()
        self.builtins = builtins
        self.regions = tuple(r.upper() for r in regions)
        unknown = [r for r in self.regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise RedactorOptionError(f"unknown phone region(s) {unknown}: use ISO 3166 codes such as US, GB, DE")
        self.patterns = [(name.upper(), _compile(name, rx)) for name, rx in (patterns or {}).items()]
        self._builtins_only = builtins and not self.patterns
        self._windows: dict[tuple[str, bool], tuple[str, tuple[str, ...]]] = {}

    def redact(self, text: str) -> str:
        if not text:
            return text
        if self._builtins_only and (DIGIT_OR_AT if text.isascii() else ANY_DIGIT_OR_AT).search(text) is None:
            # The fast path: no digit and no '@' leaves the spoken forms, which need an "at" word or
            # enough number words ("due on Monday", "in three days" go no further).
            tokens = _tokens(text)
            if TRIGGER_TOKENS.isdisjoint(tokens) or (
                    AT_WORDS.isdisjoint(tokens) and sum(map(NUMBER_TOKENS.__contains__, tokens)) < MIN_SPOKEN_WORDS):
                return text
        return self._redact(text)

    def _redact(self, text: str) -> str:
        if self.builtins:
            if "@" in text:
                text = self._emails(text)
            tokens = _tokens(text)
            if not AT_WORDS.isdisjoint(tokens) and (not DOT_TOKENS.isdisjoint(tokens) or INNER_DOT.search(text)):
                text = self._spoken_emails(text)
            if (DIGIT if text.isascii() else ANY_DIGIT).search(text) is not None:
                text = self._alnum_ids(text)
                text = self._numbers(text)
            if sum(map(NUMBER_TOKENS.__contains__, tokens)) >= MIN_SPOKEN_WORDS:
                text = self._spoken_numbers(text)
        for name, rx in self.patterns:
            text = rx.sub(self._count(name), text)
        return text

    def _count(self, kind: str) -> Any:
        def replace(_m: re.Match[str]) -> str:
            self.counts[kind] += 1
            return mask(kind)

        return replace

    # -- e-mail ---------------------------------------------------------------------------------
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

    def _spoken_emails(self, text: str) -> str:
        """"john dot doe at example dot com" (and arobase, arroba, chiocciola, punkt, point...):
        anchored on each "at" word, the domain must end in a known top-level domain."""
        out: list[str] = []
        pos = 0
        for at in SPOKEN_AT.finditer(text):
            if at.start() < pos:
                continue
            domain = SPOKEN_DOMAIN.match(text, at.end())
            if domain is None:  # the cheap half first: most "at"s are followed by no domain
                continue
            local = SPOKEN_LOCAL.search(text, max(pos, at.start() - 120), at.start())
            if local is None or local.group(0).lower() in NOT_A_MAILBOX:
                continue
            start = local.start()
            for _ in range(2):
                word = LOCAL_WORD_BEFORE.search(text, max(pos, start - 40), start)
                if word is None or word.group(1).lower() in NOT_IN_A_LOCAL_PART:
                    break
                start = word.start()
            out.append(text[pos:start])
            out.append(mask("EMAIL"))
            self.counts["EMAIL"] += 1
            pos = domain.end()
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    # -- identifiers with letters ----------------------------------------------------------------
    def _alnum_ids(self, text: str) -> str:
        if LETTER_BY_DIGIT.search(text) is None:
            return text
        text = self._ibans(text)
        return self.sub(ALNUM_IDS, text, lambda m: "ID" if ALNUM_VALID[m.lastgroup or ""](m.group(0)) else None)

    def _ibans(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        m = IBAN_CANDIDATE.search(text)
        while m is not None:
            end = _valid_prefix(m.group(0), std_iban.is_valid)
            if end:
                out.append(text[pos:m.start()])
                out.append(mask("IBAN"))
                self.counts["IBAN"] += 1
                pos = m.start() + end
                m = IBAN_CANDIDATE.search(text, pos)
            else:
                m = IBAN_CANDIDATE.search(text, m.start() + 1)
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    # -- runs of digits --------------------------------------------------------------------------
    def _numbers(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        for m in CANDIDATE.finditer(text):
            start, end = max(pos, m.start() - WINDOW_BEFORE), min(len(text), m.end() + 1)
            window = text[start:end]
            masked = self._cached_window(window, text[max(0, start - 40):start])
            if masked != window:
                out.append(text[pos:start])
                out.append(masked)
                pos = end
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _cached_window(self, window: str, before: str) -> str:
        """_number_window, remembered: the same number recurs in a record's transcript, segments and
        every worker's text, and libphonenumber's matcher costs ~70 us a window."""
        key = (window, SSN_CONTEXT.search(before) is not None)  # all the window's result depends on
        hit = self._windows.get(key)
        if hit is None:
            counts, self.counts = self.counts, Counter()
            try:
                masked = self._number_window(window, "ssn" if key[1] else "")
                hit = (masked, tuple(self.counts.elements()))
            finally:
                self.counts = counts
            if self.CACHE_SIZE > 0:
                if len(self._windows) >= self.CACHE_SIZE:
                    del self._windows[next(iter(self._windows))]  # oldest first
                self._windows[key] = hit
        self.counts.update(hit[1])
        return hit[0]

    def _number_window(self, w: str, before: str) -> str:
        if NOT_A_PHONE.fullmatch(w.strip(" \t\u00a0(),.;:!?")):  # a date or an IP address: none of the below
            return w
        if INTERNATIONAL.search(w):
            w = self._phones(w, (INTERNATIONAL_REGION,))
        w = self.sub(CARD, w, lambda m: "CARD" if luhn_ok(ascii_digits(m.group(0))) else None)
        w = self.sub(SSN_GROUPED, w, lambda m: "SSN" if us_ssn.is_valid(ascii_digits(m.group(0))) else None)
        w = self.sub(STRONG_IDS, w, _strong_id)
        w = self._phones(w, self.regions)
        w = self.sub(US_SHAPED, w, _us_shaped)
        return self.sub(NINE_DIGITS, w, lambda m: _nine_digits(m, before + w[:m.start()]))

    def _phones(self, w: str, regions: Sequence[str]) -> str:
        """libphonenumber's matcher at Leniency.VALID (a number its metadata says can exist in
        that region: POSSIBLE, length only, masks dates and order numbers; the grouping levels miss
        numbers spoken in unusual groups), region by region until no 7-digit run is left."""
        for region in regions:
            if len(ascii_digits(w)) < MIN_PHONE_DIGITS:
                break
            spans = [(m.start, m.end, "PHONE") for m in PhoneNumberMatcher(w, region, leniency=Leniency.VALID)
                     if NOT_A_PHONE.fullmatch(m.raw_string) is None and CODE_BEFORE.search(w, 0, m.start) is None
                     and CODE_AFTER.match(w, m.end) is None]
            if spans:
                w = self.apply_spans(w, spans)
        return w

    # -- digits read out as words ----------------------------------------------------------------
    def _spoken_numbers(self, text: str) -> str:
        """"four one five, five five five, oh one four two": Amazon Transcribe writes digits for
        the languages it transcribes numbers in, and words for the others (and for digits read out
        one by one in some calls). A run of 5+ number words is read with text2num; 7+ digits are
        classified like written ones, and a run that validates as nothing is masked as [ID]."""
        lower = text.lower()
        spans: list[tuple[int, int, str]] = []
        for start, end, words in _number_runs(lower):
            if len(words) < MIN_SPOKEN_WORDS:
                continue
            digits = _spoken_digits(words)
            if len(digits) >= MIN_PHONE_DIGITS:
                spans.append((start, end, self._classify_digits(digits, text[max(0, start - 40):start])))
        return self.apply_spans(text, spans) if spans else text

    def _classify_digits(self, digits: str, before: str) -> str:
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return "CARD"
        if len(digits) == 9 and SSN_CONTEXT.search(before) and us_ssn.is_valid(digits):
            return "SSN"
        if _strong_id_digits(digits) or ID_CONTEXT.search(before):
            return "ID"
        for region in self.regions:
            try:
                number = phonenumbers.parse(digits, region)
            except phonenumbers.NumberParseException:
                continue
            # As dialled in that country: parse() also takes FR/DE/GB numbers without their leading 0.
            national = ascii_digits(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
            if phonenumbers.is_valid_number(number) and national == digits:
                return "PHONE"
        if len(digits) == 7 and digits[0] not in "01":
            return "PHONE"  # a US number without its area code
        return "ID"


def _tokens(text: str) -> list[str]:
    """Whitespace tokens of the lowered text, hyphens split ("quarante-deux" is two number words)."""
    lower = text.lower()
    return (lower.replace("-", " ") if "-" in lower else lower).split()


def _valid_prefix(candidate: str, valid: Callable[[str], bool]) -> int:
    """Length of the longest prefix of `candidate`, cut at a space or at its end, that is valid."""
    cuts = [len(candidate)] + [i for i in range(len(candidate) - 1, 0, -1) if candidate[i] == " "]
    for cut in cuts:
        if valid(candidate[:cut]):
            return cut
    return 0


def _strong_id_digits(digits: str) -> bool:
    n = len(digits)
    return ((n == 11 and de_idnr.is_valid(digits)) or (n == 12 and digits[0] not in "01" and verhoeff.is_valid(digits))
            or (n == 15 and fr_nir.is_valid(digits)))


def _strong_id(m: re.Match[str]) -> str | None:
    return "ID" if _strong_id_digits(ascii_digits(m.group(0))) else None


def _us_shaped(m: re.Match[str]) -> str | None:
    try:
        number = phonenumbers.parse(ascii_digits(m.group(0)), "US")
    except phonenumbers.NumberParseException:
        return None
    return "PHONE" if phonenumbers.is_possible_number(number) else None


def _nine_digits(m: re.Match[str], before: str) -> str | None:
    """A bare 9-digit number is a US SSN after "SSN"/"social", else an NL BSN if it passes the 11-test."""
    digits = ascii_digits(m.group(0))
    if "." not in m.group(0) and SSN_CONTEXT.search(before[-40:]) and us_ssn.is_valid(digits):
        return "SSN"
    return "ID" if nl_bsn.is_valid(digits) else None


def _number_runs(lower: str) -> Iterable[tuple[int, int, list[str]]]:
    """(start, end, words) of each run of number words separated only by spaces, commas or hyphens."""
    start = end = -1
    words: list[str] = []
    pending: str | None = None  # a joiner ("et", "y", "und") that only counts if a number follows
    for m in WORD.finditer(lower):
        w = m.group(0)
        adjacent = end >= 0 and RUN_GAP.fullmatch(lower, end, m.start()) is not None
        if w in ALL_NUMBER_WORDS:
            if adjacent:
                if pending:
                    words.append(pending)
                words.append(w)
            else:
                if words:
                    yield start, end, words
                start, words = m.start(), [w]
            end, pending = m.end(), None
        elif adjacent and pending is None and any(w in j for j in JOINERS.values()):
            pending = w
        else:
            if words:
                yield start, end, words
            start, end, words, pending = -1, -1, [], None
    if words:
        yield start, end, words


def _spoken_digits(words: list[str]) -> str:
    """The digits a run of number words says, in the language most of its words belong to."""
    lang = max(NUMBER_WORDS, key=lambda k: sum(w in NUMBER_WORDS[k] for w in words))
    expanded: list[str] = []
    repeat = 1
    for w in words:
        if w in REPEAT:
            repeat = REPEAT[w]
            continue
        w = EXTRA[lang].get(w, w)
        expanded += [w] * repeat
        repeat = 1
    units = UNITS[lang].split()
    if all(w in units for w in expanded):  # read digit by digit
        return "".join(str(units.index(w)) for w in expanded)
    # Tens and teens ("quarante-deux", "forty two"): text2num knows each language's compounds.
    return ascii_digits(alpha2digit(" ".join(expanded), lang))


class ComprehendRedactor(Redactor):
    """Amazon Comprehend DetectPiiEntities. Texts over the API limit are sent in chunks."""

    MAX_BYTES = 100_000

    def __init__(self, client: Any = None, language: str = "en", min_score: float = 0.5,
                 region: str | None = None):
        super().__init__()
        if client is None:
            import boto3

            from toolkit.awsclient import RETRY_CONFIG

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
                 region: str | None = None, limiter: Any = None):
        """`limiter`: a toolkit.awsclient.pacing.TokenBucket that paces the calls to the account's
        ApplyGuardrail quota and backs off when throttled; None = botocore's retries only."""
        super().__init__()
        if client is None:
            import boto3

            from toolkit.awsclient import RETRY_CONFIG

            client = boto3.client("bedrock-runtime", region_name=region, config=RETRY_CONFIG)
        self.client = client
        self.guardrail_id = guardrail_id
        self.guardrail_version = guardrail_version
        self.limiter = limiter
        self.last_action: str | None = None  # of the last call: NONE | GUARDRAIL_INTERVENED
        self.last_blocked = False  # the last text was blocked (its blocked message returned), not masked
        self.last_counts: Counter[str] = Counter()

    def _apply(self, text: str) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            return self.client.apply_guardrail(
                guardrailIdentifier=self.guardrail_id, guardrailVersion=self.guardrail_version,
                source="OUTPUT", content=[{"text": {"text": text}}])

        if self.limiter is None:
            return call()
        from toolkit.awsclient.pacing import call_with_backoff

        return call_with_backoff(self.limiter, call)

    def _redact(self, text: str) -> str:
        resp = self._apply(text)
        self.last_counts = Counter()
        self.last_blocked = False
        for assessment in resp.get("assessments", []):
            policy = assessment.get("sensitiveInformationPolicy") or {}
            for ent in [*policy.get("piiEntities", []), *policy.get("regexes", [])]:
                kind = str(ent.get("type") or ent.get("name") or "PII")
                self.last_counts[kind] += 1
                self.last_blocked |= ent.get("action") == "BLOCKED"
            for name in ("contentPolicy", "topicPolicy", "wordPolicy"):
                policy = assessment.get(name) or {}
                for key in ("filters", "topics", "customWords", "managedWordLists"):
                    self.last_blocked |= any(f.get("action") == "BLOCKED" for f in policy.get(key, []))
        self.counts.update(self.last_counts)
        self.last_action = resp.get("action")
        if resp.get("action") != "GUARDRAIL_INTERVENED":
            return text
        outputs = resp.get("outputs") or []
        return "".join(o.get("text", "") for o in outputs)


# Presidio entity -> mask (Comprehend's names for the same things), and spaCy's labels -> Presidio's:
# FAC (buildings, streets) is a place too. Every other spaCy label is ignored.
NER_ENTITIES = {"PERSON": "NAME", "LOCATION": "ADDRESS"}
SPACY_LABELS = {"PER": "PERSON", "PERSON": "PERSON", "LOC": "LOCATION", "GPE": "LOCATION", "FAC": "LOCATION"}
SPACY_IGNORED = ("ORG", "NORP", "DATE", "TIME", "CARDINAL", "ORDINAL", "MONEY", "PERCENT", "QUANTITY", "PRODUCT",
                 "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE", "MISC")


class PresidioRedactor(Redactor):
    """Names and places with Microsoft Presidio over a local spaCy pipeline (extra `gtkit[ner]`).

    Off by default. `model` is an installed spaCy package name or a pipeline directory; nothing
    is downloaded at run time (Presidio would otherwise fetch a missing model from the network).
    Only Presidio's NER recognizer runs: structured identifiers are the default backend's job, so
    chain it after `RegexRedactor`.
    """

    def __init__(self, model: str = "en_core_web_sm", language: str = "en", min_score: float = 0.5,
                 entities: Mapping[str, str] = NER_ENTITIES):
        super().__init__()
        try:
            import spacy
            from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
            from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer
        except ImportError as exc:
            raise RedactorUnavailable("the local NER backend needs the optional extra: pip install 'gtkit[ner]'") \
                from exc
        if not (spacy.util.is_package(model) or Path(model).is_dir()):
            raise RedactorUnavailable(
                f"spaCy model {model!r} is not installed: install its package (see docs/export.md) or pass a "
                "pipeline directory; models are not downloaded at run time")
        engine = SpacyNlpEngine(
            models=[{"lang_code": language, "model_name": model}],
            ner_model_configuration=NerModelConfiguration(model_to_presidio_entity_mapping=SPACY_LABELS,
                                                          labels_to_ignore=SPACY_IGNORED))
        engine.load()
        registry = RecognizerRegistry(supported_languages=[language])
        registry.add_recognizer(SpacyRecognizer(supported_language=language, supported_entities=list(entities)))
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[language])
        self.language = language
        self.min_score = min_score
        self.entities = dict(entities)

    def _redact(self, text: str) -> str:
        results = self.analyzer.analyze(text=text, language=self.language, entities=list(self.entities),
                                        score_threshold=self.min_score)
        return self.apply_spans(text, [(r.start, r.end, self.entities[r.entity_type]) for r in results])


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
