"""Stream a Ground Truth output manifest into labelled items.

One line at a time (binary reads, orjson parse). The label attribute is given or found from its
`<attr>-metadata` sibling. Lines without labels, failed objects and malformed labels are counted
with a reason and file:line, never fatal and never logged with their text. Label values and item
fields are validated on read (toolkit.export.checks); a UTF-8 BOM on line 1 is dropped and a file
in a wide encoding is one InputEncodingError (toolkit.storage.lines).
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from toolkit.contract import ConsolidatedLabel, consolidated, worker_response
from toolkit.contract.base import dump, problems_from
from toolkit.contract.consolidated import LabelView
from toolkit.contract.manifest import Sidecar, decode_sidecar
from toolkit.errors import GtkitError
from toolkit.export.checks import ItemFields, metadata_problem, non_finite
from toolkit.storage import Storage
from toolkit.storage.lines import ID_KEYED, first_line, json_problem, lenient_json, line_utf8_problem

# Skip reasons (also the keys of the summary table).
MALFORMED_JSON = "malformed-json"
NOT_AN_OBJECT = "not-an-object"
NO_LABEL = "no-label"
FAILED = "failed"
MALFORMED_LABEL = "malformed-label"
MISSING_FIELD = "missing-field"
INVALID_FIELD = "invalid-field"
INVALID_UTF8 = "invalid-utf8"
UNCONSOLIDATED = "unconsolidated"
CANNOT_ANNOTATE = "cannot-annotate"  # the workers could not annotate it (with --cannot-annotate skip)
MAX_PROBLEMS = 50


def normalise_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """`job_name`, `Job-Name`, `creation_date` ... -> `job-name`, `creation-date` (GT spells both)."""
    return {str(k).lower().replace("_", "-"): v for k, v in meta.items()}


def is_ground_truth_metadata(value: Any) -> bool:
    return isinstance(value, dict) and "groundtruth" in str(
        normalise_metadata(value).get("type", "")).lower().replace(" ", "")


def find_label_attribute(line: dict[str, Any]) -> str | None:
    """The attribute whose `<attr>-metadata` sibling is Ground Truth metadata, other than a review job's
    (whose metadata has `review-decision`: its label is a ReviewedLabel; toolkit/export/review.py)."""
    for key, value in line.items():
        if key.lower().endswith("-metadata") and is_ground_truth_metadata(value) \
                and "review-decision" not in normalise_metadata(value):
            return key[: -len("-metadata")]
    return None


def validation_detail(exc: ValidationError) -> str:
    """Field paths and messages only: pydantic's str() would echo input values (annotation text)."""
    # The key after texts/values/workers is a worker id: kept out of the path.
    problems = problems_from(exc, root="", stop_after=ID_KEYED)[:3]
    return "; ".join(str(p) if p.path else p.message.removeprefix("Value error, ") for p in problems)


@dataclass
class Problem:
    line: int
    reason: str
    detail: str
    file: str = ""

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else f"line {self.line}"


@dataclass
class ReadStats:
    file: str = ""
    lines: int = 0
    labeled: int = 0
    bytes_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    label_seen: bool = False  # some line had a label attribute (Ground Truth metadata): not an input manifest
    reviewed: Counter = field(default_factory=Counter)  # --reviewed-only: review decisions of the items used
    worker_trust: Counter = field(default_factory=Counter)  # --worker-report: where the trusts came from

    def skip(self, line: int, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(line, reason, detail, self.file))

    def skip_item(self, line: int, reason: str, detail: str = "") -> None:
        """An item read but then not used (it counts as skipped instead): lines = labeled + skipped."""
        self.labeled -= 1
        self.skip(line, reason, detail)


@dataclass
class Item:
    """One labelled data object: the manifest line plus its consolidated label."""

    line: int
    data: dict[str, Any]
    attribute: str
    label: ConsolidatedLabel
    meta: dict[str, Any]
    storage: Storage | None = None
    _sidecar: Sidecar | None = None
    raw: bytes | None = None  # set by the fast path: `data` then holds only the keys it extracted
    # What the export filters add to every record's lineage (worker_trust, excluded_answers: trust.py)
    lineage_extra: dict[str, Any] = field(default_factory=dict)
    review: dict[str, Any] | None = None  # --reviewed-only: the review's lineage (toolkit/export/review.py)

    def full_data(self) -> dict[str, Any]:
        """The whole manifest line (parsed on first use when the fast path left keys out)."""
        if self.raw is not None:
            try:
                self.data = orjson.loads(self.raw)
            except orjson.JSONDecodeError as exc:  # a NaN/huge-int literal the fast path's parser took
                self.data = lenient_json(self.raw, exc.msg) or self.data
            self.raw = None
        return self.data

    @property
    def interaction_id(self) -> str:
        return str(self.data.get("interaction-id") or self.label.interaction_id)

    @property
    def source_ref(self) -> str:
        return str(self.data.get("source-ref", ""))

    @property
    def media_type(self) -> str | None:
        return self.data.get("media-type")

    @property
    def duration(self) -> float | None:
        value = self.data.get("duration-seconds") or self.label.media_duration
        return float(value) if value else None

    @property
    def metadata(self) -> dict[str, Any]:
        value = self.data.get("metadata")
        return value if isinstance(value, dict) else {}

    @property
    def job_name(self) -> str | None:
        return self.meta.get("job-name")

    @property
    def creation_date(self) -> str | None:
        return self.meta.get("creation-date")

    def _sidecar_data(self) -> Sidecar:
        if self._sidecar is None:
            self._sidecar = Sidecar(interaction_id="")
            ref = self.data.get("sidecar-ref")
            if ref and self.storage is not None:
                try:
                    self._sidecar = decode_sidecar(self.storage.read_bytes(ref))
                except (OSError, ValueError) as exc:  # unreadable, or not a Sidecar (ManifestLineError)
                    raise SidecarError(f"line {self.line}: sidecar-ref {ref}: {exc}") from exc
        return self._sidecar

    # The texts are read (and checked) only when a preset uses them: ItemFieldError skips the item.
    @property
    def transcription(self) -> str | None:
        value = self.full_data().get("transcription")
        if value is None and self.data.get("sidecar-ref"):
            value = self._sidecar_data().transcription
        if value is not None and not isinstance(value, str):
            raise ItemFieldError("transcription: expected a string")
        return value

    def pre_segments(self) -> list[dict[str, Any]]:
        value = self.full_data().get("pre-segments")
        if value is None and self.data.get("sidecar-ref"):
            value = [dump(s) for s in self._sidecar_data().pre_segments or []]
        if value is not None and not isinstance(value, list):
            raise ItemFieldError("pre-segments: expected a list")
        return [s for s in value if isinstance(s, dict)] if value else []

    def pre_segment_texts(self) -> dict[str, str]:
        return {str(s.get("id")): str(s.get("text") or "") for s in self.pre_segments()}


class SidecarError(GtkitError):
    """A sidecar-ref that cannot be read: the item is skipped with this message."""


class ReaderOptionError(GtkitError, ValueError):
    """A reader option out of its choices (`--cannot-annotate`): nothing is read."""


class ItemFieldError(GtkitError):
    """A field read only when a preset uses it (transcription, pre-segments) has the wrong type: the
    item is skipped as invalid-field with this message (field path, no content)."""


# (manifest line, [(workerId, answerContent)], label schema or None) -> consolidated label
Consolidator = Callable[[dict[str, Any], list[tuple[str, Any]], Any], ConsolidatedLabel]


def default_consolidator() -> Consolidator | None:
    """toolkit.labeling.consolidate (shared with the post-annotation Lambda), when available."""
    try:
        module = importlib.import_module("toolkit.labeling.consolidate")
    except ImportError:
        return None
    func = getattr(module, "consolidate", None)
    if func is None:
        return None

    def run(data_object: dict[str, Any], answers: list[tuple[str, Any]], schema: Any) -> ConsolidatedLabel:
        return func(answers, schema, data_object=data_object)

    return run


def read_worker_answers(storage: Storage, ref: str) -> list[tuple[str, Any]]:
    """(workerId, answerContent as stored) per worker of a Ground Truth worker-response file;
    the consolidator parses and validates each answer (and keeps the invalid ones as such)."""
    return [(a.worker_id, a.answer_content) for a in worker_response.decode(storage.read_bytes(ref), ref)]


# What every preset reads; transcription and pre-segments (often the bulk of a line) are parsed
# only when a preset asks for them (Item.full_data).
ITEM_KEYS = ("source-ref", "interaction-id", "media-type", "duration-seconds", "language-code", "sidecar-ref",
             "metadata", "prompt", "candidates")
TEXT_KEYS = ("transcription", "pre-segments", "pre-content")


def fast_line_model(attribute: str, keys: tuple[str, ...] = ITEM_KEYS) -> type[BaseModel]:
    """A model of just what the exporter reads from a line with label attribute `attribute`.

    pydantic-core parses the JSON and validates in one Rust pass, building Python objects only for
    these keys: several times cheaper than orjson.loads + validation for lines whose bulk is raw
    worker answers. Lines it does not accept go through the exact (slow) path for their reason.
    """
    fields: dict[str, Any] = {key.replace("-", "_"): (ItemFields.model_fields[key.replace("-", "_")].annotation,
                                                     Field(None, alias=key)) for key in keys}
    fields["label_"] = (LabelView | None, Field(None, alias=attribute))
    fields["meta_"] = (dict[str, Any] | None, Field(None, alias=f"{attribute}-metadata"))
    return create_model("FastLine", __config__=ConfigDict(extra="ignore"), **fields)  # type: ignore[call-overload]


class ManifestReader:
    """Iterate `Item`s of an output manifest; `stats` tells what was skipped and why."""

    def __init__(self, storage: Storage, uri: str, label_attribute: str | None = None,
                 worker_responses: bool = False, consolidator: Consolidator | None = None,
                 progress: Callable[[int], None] | None = None, texts: bool = False,
                 cannot_annotate: str = "skip"):
        if cannot_annotate not in ("skip", "keep"):
            raise ReaderOptionError(f"--cannot-annotate must be skip or keep, got {cannot_annotate!r}")
        self.storage = storage
        self.cannot_annotate = cannot_annotate
        self.uri = uri
        self.attribute = label_attribute
        self._fixed = label_attribute is not None
        self.worker_responses = worker_responses
        self.consolidator = consolidator if consolidator is not None else (
            default_consolidator() if worker_responses else None)
        self.progress = progress
        self.stats = ReadStats(file=uri)
        self.schema: Any = None  # LabelSchema for consolidating per-worker responses, when known
        self.line_number = 0
        # texts=True: the consumer reads transcription/pre-segments of (nearly) every item, so the
        # fast path extracts them too instead of parsing the line a second time on demand.
        self.texts = texts
        self._keys = ITEM_KEYS + TEXT_KEYS if texts else ITEM_KEYS
        self._fields = [(key, key.replace("-", "_")) for key in self._keys]  # (manifest key, model field)
        self._fast_attr: str | None = None
        self._fast_model: type[BaseModel] | None = None

    def __iter__(self) -> Iterator[Item]:
        for number, raw in self.iter_raw():
            item = self.parse(number, raw)
            if item is not None:
                yield item

    def iter_raw(self, fh: IO[bytes] | None = None) -> Iterator[tuple[int, bytes]]:
        """(line number, raw bytes) of every non-blank line, counting lines and bytes read.
        With `fh`, reads that open handle (and leaves it open: the caller may read on in blocks)."""
        if fh is None:
            with self.storage.open_read(self.uri, binary=True) as handle:
                yield from self.iter_raw(handle)
            return
        stats = self.stats
        pending = 0
        for raw in fh:
            self.line_number += 1
            size = len(raw)
            if self.line_number == 1:
                raw = first_line(raw, self.uri)
            stats.bytes_read += size
            pending += size
            if self.progress is not None and pending >= 1 << 20:
                self.progress(pending)
                pending = 0
            if not raw.strip():
                continue
            stats.lines += 1
            yield self.line_number, raw
        if self.progress is not None and pending:
            self.progress(pending)

    def parse(self, number: int, raw: bytes) -> Item | None:
        """The labelled item of one line, or None (counted in `stats` with its reason)."""
        item = self._item(number, raw)
        if item is not None and item.label.cannot_annotate is not None and self.cannot_annotate == "skip":
            # The reason is one of the schema's (not worker text), so it may be shown.
            self.stats.skip(number, CANNOT_ANNOTATE, f"reason: {item.label.cannot_annotate.reason[:200]}")
            return None
        if item is not None:
            self.stats.labeled += 1
        return item

    def _fast_item(self, number: int, raw: bytes) -> Item | None:
        """The common case in one pass; None means 'use the exact path' (never 'skip')."""
        attr = self.attribute
        if attr is None:
            return None
        if self._fast_attr != attr:
            self._fast_model, self._fast_attr = fast_line_model(attr, self._keys), attr
        try:
            line = self._fast_model.model_validate_json(raw)
        except ValueError:
            return None
        values = line.__dict__
        label, meta_raw = values.pop("label_"), values.pop("meta_")
        if label is None or not label.model_fields_set or label.status != "ok" or meta_raw is None:
            return None
        self.stats.label_seen = True
        meta = normalise_metadata(meta_raw)
        if any("fail" in k for k in meta) or metadata_problem(attr, meta):
            return None
        data = {key: value for key, name in self._fields if (value := values[name]) is not None}
        if not isinstance(data.get("source-ref"), str) or not isinstance(data.get("interaction-id"), str):
            return None
        if not data["source-ref"] or not data["interaction-id"]:
            return None
        if "metadata" in data and non_finite(data["metadata"], "metadata"):
            return None
        # raw kept with texts too: full_data() needs it for the keys not extracted (the label's workers)
        return Item(number, data, attr, label, meta, self.storage, raw=raw)

    def _item(self, number: int, raw: bytes) -> Item | None:
        item = self._fast_item(number, raw)
        if item is not None:
            return item
        stats = self.stats
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            bad_byte = line_utf8_problem(raw)
            data = None if bad_byte else lenient_json(raw, exc.msg)
            if data is None:
                stats.skip(number, *((INVALID_UTF8, bad_byte) if bad_byte else (MALFORMED_JSON,
                                                                               json_problem(exc.msg, exc.pos))))
                return None
        if not isinstance(data, dict):
            stats.skip(number, NOT_AN_OBJECT, "a manifest line must be a JSON object")
            return None
        attr = self.attribute
        if attr is None or (not self._fixed and attr not in data):
            found = find_label_attribute(data)
            if found is not None:
                attr = self.attribute = found
        meta_raw = data.get(f"{attr}-metadata") if attr else None
        meta = normalise_metadata(meta_raw) if isinstance(meta_raw, dict) else {}
        if not stats.label_seen and (is_ground_truth_metadata(meta_raw) or find_label_attribute(data)):
            stats.label_seen = True
        if any("fail" in k for k in meta):
            reason = next(str(v) for k, v in meta.items() if "fail" in k)
            stats.skip(number, FAILED, f"{attr}-metadata: {reason[:200]}")
            return None
        if attr is None or attr not in data:
            stats.skip(number, NO_LABEL, f"no label attribute {attr!r}" if attr else "no label attribute")
            return None
        for key in ("source-ref", "interaction-id"):
            if not isinstance(data.get(key), str) or not data.get(key):
                stats.skip(number, MISSING_FIELD, f"{key}: missing or not a string")
                return None
        try:
            ItemFields.model_validate({key: data[key] for key in self._keys if key in data})
        except ValidationError as exc:
            stats.skip(number, INVALID_FIELD, validation_detail(exc))
            return None
        nan_at = non_finite(data.get("metadata"), "metadata")
        bad_meta = metadata_problem(attr, meta) or (f"{nan_at}: not a finite number" if nan_at else None)
        if bad_meta:
            stats.skip(number, INVALID_FIELD, bad_meta)
            return None
        value = data[attr]
        if isinstance(value, dict) and not value and meta.get("worker-response-ref"):
            label = self._consolidate(number, data, str(meta["worker-response-ref"]), attr)
            if label is None:
                return None
        else:
            label = self._parse_label(number, attr, value)
            if label is None:
                return None
        if label.status == "error":
            stats.skip(number, FAILED, f"{attr}.status=error: {(label.error or '')[:200]}")
            return None
        return Item(number, data, attr, label, meta, self.storage)

    def _parse_label(self, number: int, attr: str, value: Any) -> ConsolidatedLabel | None:
        if not isinstance(value, dict):
            self.stats.skip(number, MALFORMED_LABEL, f"{attr}: expected an object")
            return None
        # Raw worker answers are audit data the exporter never uses: left unread (workers=False).
        try:
            return consolidated.decode(value, workers=False)
        except ValidationError as exc:
            self.stats.skip(number, MALFORMED_LABEL, f"{attr}: {validation_detail(exc)}")
            return None

    def _consolidate(self, number: int, data: dict[str, Any], ref: str, attr: str) -> ConsolidatedLabel | None:
        if not self.worker_responses or self.consolidator is None:
            why = ("per-worker responses not read (pass --worker-responses)" if not self.worker_responses
                   else "toolkit.labeling.consolidate is not available")
            self.stats.skip(number, UNCONSOLIDATED, why)
            return None
        try:
            answers = read_worker_answers(self.storage, ref)
            label = self.consolidator(data, answers, self.schema)
        except (OSError, ValueError) as exc:
            self.stats.skip(number, UNCONSOLIDATED, f"worker-response-ref {ref}: {type(exc).__name__}")
            return None
        # What the consolidation made of the workers' answers is checked like any label read.
        return self._parse_label(number, attr, label.model_dump(by_alias=True))
