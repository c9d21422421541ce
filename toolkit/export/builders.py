"""Preset kinds -> canonical records (the `jsonl` record of each preset, see toolkit/contract/records.py).

A builder turns one `Item` into zero or more records, redacting every text it takes from the
item before it reaches a template, and counting what it drops (and why) in `dropped`.
`preference-ratings` pairs items across the file, so it keeps a small entry per item (scores,
rendered prompt, lineage; no media) and emits its pairs from `finish()`.
"""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from toolkit.contract import ConsolidatedLabel, ConsolidatedSegment, FieldSpec
from toolkit.contract.base import problems_from
from toolkit.contract.records import (
    ComparePairRecord,
    CorrectionPairRecord,
    DensePreferenceRecord,
    FieldValue,
    KtoRecord,
    ModelPairRecord,
    RatingPairRecord,
    RewardRecord,
    StepwiseRecord,
    SummaryRecord,
    TranscriptionRecord,
    build,
)
from toolkit.export.formats.base import ExportError
from toolkit.export.presets import TEMPLATE_NAME, ResolvedPreset, Template
from toolkit.export.reader import Item
from toolkit.export.redact import Redactor
from toolkit.storage.scratch import Groups

PROMPT_TEXT_KEYS = ("prompt_text", "prompt", "text")
SEGMENT_NAMES = frozenset({"segment_id", "start", "end", "track", "label"})
SEGMENT_ORDER = ("segment_id", "start", "end", "track", "label")


def ms(value: float) -> float:
    return round(float(value), 3)


_ASCII_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalise_text(text: str) -> str:
    """Case, punctuation and whitespace do not count as a correction."""
    if text.isascii():  # the common case, without a per-character Python loop
        return " ".join(text.lower().translate(_ASCII_PUNCT).split())
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PZC" else ch for ch in text)
    return " ".join(kept.split())


def record(model: type[BaseModel], exclude: set[str] | None = None, /, **fields: Any) -> dict[str, Any]:
    """One export record built as its contract model (toolkit.contract.records) and encoded for the
    writers, so a builder cannot write a shape the contract does not describe: a field the model
    refuses is an ExportError naming the record and the field (never the value)."""
    try:
        return build(model, fields, exclude)
    except ValidationError as exc:
        problems = problems_from(exc)
        raise ExportError(f"record {fields.get('id')}: does not fit {model.__name__}: "
                          + "; ".join(str(p) for p in problems), problems=problems) from exc


def lineage(item: Item, agreement: float | None, segment_id: str | None = None) -> dict[str, Any]:
    review = {"review": item.review} if item.review is not None else {}
    return {
        "interaction_id": item.interaction_id,
        "source_ref": item.source_ref,
        "job_name": item.job_name,
        "label_attribute": item.attribute,
        "agreement": None if agreement is None else round(float(agreement), 4),
        "creation_date": item.creation_date,
        "line": item.line,
        "segment_id": segment_id,
        **item.lineage_extra,
        **review,
    }


def rating_score(label: ConsolidatedLabel, field: str) -> float | None:
    result = label.content.get(field)
    if result is None:
        return None
    if result.mean is not None:
        return float(result.mean)
    value = result.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class Values(dict):
    """Template values computed on first use (a transcript is only joined if a template asks)."""

    def __init__(self, item: Item, preset: ResolvedPreset, redactor: Redactor):
        super().__init__()
        self.item = item
        self.preset = preset
        self.redactor = redactor

    def __missing__(self, key: str) -> str:
        value = self._compute(key)
        self[key] = value
        return value

    def _compute(self, key: str) -> str:
        item, red = self.item, self.redactor
        if key == "interaction_id":
            return item.interaction_id
        if key == "source_ref":
            return item.source_ref
        if key == "media_type":
            return item.media_type or ""
        if key == "duration":
            return f"{item.duration:.3f}" if item.duration else ""
        if key == "language_code":
            return str(item.data.get("language-code") or "")
        if key == "transcript":
            return red.redact(transcript(item))
        if key == "prompt_key":
            return str(item.metadata.get(self.preset.preset.prompt_key) or "")
        if key == "prompt_text":
            prompt = item.data.get("prompt")  # a comparison line's own prompt
            if isinstance(prompt, dict) and isinstance(prompt.get("text"), str) and prompt["text"]:
                return red.redact(prompt["text"])
            meta = item.metadata
            for k in PROMPT_TEXT_KEYS:
                if isinstance(meta.get(k), str) and meta[k]:
                    return red.redact(meta[k])
            if meta.get(self.preset.preset.prompt_key):
                return red.redact(str(meta[self.preset.preset.prompt_key]))
            return self["transcript"]
        if key.startswith("content_"):
            result = item.label.content.get(key[len("content_"):])
            value = None if result is None else result.value
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            return red.redact("" if value is None else str(value))
        raise KeyError(key)


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class SegmentFormatter:
    """A prompt template rendered per segment without a dict per segment: `bind(values)` fills in
    the item-level names once per item and returns the `format` method of a string whose fields
    are the segment names by position (SEGMENT_ORDER), so a segment is `fmt(segment_id, start,
    end, track, label)`. Same text as `template.render` (every value is a str, inserted as is)."""

    def __init__(self, template: Template):
        # (literal format text, None) or (None, item-level name), in template order
        self.pieces: list[tuple[str | None, str | None]] = []
        for i, part in enumerate(TEMPLATE_NAME.split(template.text)):  # literal, name, literal, ...
            if i % 2 == 0:
                self.pieces.append((_braces(part), None))
            elif part in SEGMENT_NAMES:
                self.pieces.append((f"{{{SEGMENT_ORDER.index(part)}}}", None))
            else:
                self.pieces.append((None, part))
        self.static = None if any(name for _, name in self.pieces) else "".join(
            text or "" for text, _ in self.pieces).format

    def bind(self, values: Mapping[str, str]) -> Callable[..., str]:
        if self.static is not None:
            return self.static
        return "".join(_braces(values[name]) if text is None else text for text, name in self.pieces).format


class SegmentValues(dict):
    def __init__(self, base: Values, seg: ConsolidatedSegment):
        super().__init__(segment_id=seg.id, start=f"{seg.start:.3f}", end=f"{seg.end:.3f}",
                         track=seg.category, label=seg.label)
        self.base = base

    def __missing__(self, key: str) -> str:
        return self.base[key]


def _start(pre_segment: dict[str, Any]) -> float:
    """A pre-segment's start for ordering (pre-segments are machine data, passed on as they are)."""
    value = pre_segment.get("start")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0.0
    return float(value)


def _end(pre_segment: dict[str, Any]) -> float:
    value = pre_segment.get("end")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return _start(pre_segment)
    return float(value)


def transcript(item: Item) -> str:
    """The machine transcript: manifest transcription, else the pre-segment texts, else the human ones."""
    text = item.transcription
    if text:
        return text
    pre = sorted(item.pre_segments(), key=_start)
    text = " ".join(str(s.get("text") or "").strip() for s in pre).strip()
    if text:
        return text
    return " ".join(s.text.strip() for s in sorted(item.label.segments, key=lambda s: s.start)).strip()


def redact_attributes(attrs: dict[str, Any], red: Redactor, choice_fields: frozenset[str]) -> dict[str, Any]:
    """Text attributes are free text like any other; choice values are the schema's own options."""
    return {k: red.redact(v) if isinstance(v, str) and k not in choice_fields else v for k, v in attrs.items()}


def field_value(spec: FieldSpec, result: Any, red: Redactor) -> FieldValue:
    """A content field's consolidated value as its schema type: rating -> mean (else value), text ->
    redacted text, multi_choice -> list of options, single_choice -> option, boolean -> bool."""
    if result is None:
        return None
    value = result.value
    if spec.type == "rating":
        number = result.mean if result.mean is not None else value
        return None if isinstance(number, bool) or not isinstance(number, int | float) else float(number)
    if spec.type == "text":
        return red.redact(value) if isinstance(value, str) else None
    if spec.type == "multi_choice":
        return [str(v) for v in value] if isinstance(value, list) else ([str(value)] if value is not None else [])
    if spec.type == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, list):  # a single choice recorded as a one-element list
        return str(value[0]) if value else None
    return None if value is None else str(value)


def item_context(item: Item, preset: ResolvedPreset, red: Redactor) -> dict[str, Any]:
    """What the media formats add to every record: the item's media facts and its content fields."""
    schema = preset.schema
    return {
        "media_type": item.media_type,
        "duration": item.duration,
        "language": str(item.data.get("language-code") or "") or None,
        "fields": {spec.name: field_value(spec, item.label.content.get(spec.name), red)
                   for spec in (schema.content_fields if schema else [])},
    }


class Builder:
    def __init__(self, preset: ResolvedPreset, redactor: Redactor, fields: frozenset[str] | None = None):
        self.preset = preset
        self.red = redactor
        # The record keys the writer reads (None = all): a builder may leave the others out.
        self.fields = fields
        self.full_records = fields is None or bool({"media", "attributes"} & fields)
        self.dropped: Counter[str] = Counter()
        p = preset.preset
        self.tracks = set(p.tracks)
        self.min_agreement = p.min_agreement
        schema = preset.schema
        self.choice_fields = frozenset(
            f.name for f in (schema.segment_fields if schema else []) if f.type in ("single_choice", "boolean"))

    def attributes(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            return {}
        if attrs.keys() <= self.choice_fields:  # only the schema's own options: nothing to mask
            return attrs
        return redact_attributes(attrs, self.red, self.choice_fields)

    def build(self, item: Item) -> list[dict[str, Any]]:
        raise NotImplementedError

    def run(self, item: Item) -> list[dict[str, Any]]:
        """`build`, plus each record's item `context` when the writer reads it (the media formats)."""
        records = self.build(item)
        if records and self.fields is not None and "context" in self.fields:
            context = item_context(item, self.preset, self.red)
            for record in records:
                record["context"] = context
        return records

    def rating(self, item: Item) -> float | None:
        """The item's consolidated score on the preset's rating field; counts items without one."""
        assert self.preset.rating is not None
        field = self.preset.rating.name
        score = rating_score(item.label, field)
        if score is None:
            self.dropped[f"no-{field}"] += 1
        return score

    def finish(self) -> Iterator[list[dict[str, Any]]]:
        return iter(())

    def segments(self, item: Item) -> Iterator[ConsolidatedSegment]:
        for seg in item.label.segments:
            if self.tracks and seg.category not in self.tracks:
                self.dropped["segment-track-not-exported"] += 1
            elif seg.agreement < self.min_agreement:
                self.dropped["segment-below-min-agreement"] += 1
            else:
                yield seg

    def media(self, item: Item, seg: ConsolidatedSegment) -> dict[str, Any]:
        return {"uri": item.source_ref, "start": ms(seg.start), "end": ms(seg.end), "track": seg.category,
                "label": seg.label}


# The keys of a transcription record a writer that reads neither media nor attributes gets.
PARTIAL_TRANSCRIPTION = {"media", "attributes"}


class SftTranscription(Builder):
    def __init__(self, preset: ResolvedPreset, redactor: Redactor, fields: frozenset[str] | None = None):
        super().__init__(preset, redactor, fields)
        self.prompt = SegmentFormatter(preset.prompt)

    def build(self, item: Item) -> list[dict[str, Any]]:
        # The hot loop of the densest preset (a record per segment): names bound locally.
        p, red = self.preset, self.red
        base = Values(item, p, red)
        prompt = self.prompt.bind(base)
        system = p.system.render(base)
        base_lineage = lineage(item, None)
        iid, uri = item.interaction_id, item.source_ref
        redact, attributes = red.redact, self.attributes
        filtered = bool(self.tracks) or self.min_agreement > 0
        full, choice_fields = self.full_records, self.choice_fields
        schema = p.schema
        if not item.label.segments:
            self.dropped["no-segments"] += 1  # an item gives nothing silently
            return []
        out = []
        for seg in (self.segments(item) if filtered else item.label.segments):
            text = seg.text.strip()
            if not text:
                # A track the schema asks no text on (call-center's language spans) is not a gap.
                no_text = schema is not None and not schema.text_applies(seg.category)
                self.dropped["track-without-text" if no_text else "segment-without-text"] += 1
                continue
            sid, category, label = seg.id, seg.category, seg.label
            # f"{x:.3f}" rounds exactly like round(x, 3) (the same correctly rounded conversion), so
            # the media span reuses the prompt's strings: float() of them is cheaper than round().
            start, end = f"{seg.start:.3f}", f"{seg.end:.3f}"
            attrs = seg.attributes
            if attrs and not attrs.keys() <= choice_fields:  # see attributes(); redacted (and counted)
                attrs = attributes(attrs)                     # even when the format leaves them out
            out.append(record(
                TranscriptionRecord, None if full else PARTIAL_TRANSCRIPTION,
                id=f"{iid}/{sid}", system=system, prompt=prompt(sid, start, end, category, label),
                completion=redact(text),
                media={"uri": uri, "start": float(start), "end": float(end), "track": category, "label": label},
                attributes=attrs,
                lineage={**base_lineage, "agreement": round(seg.agreement, 4), "segment_id": sid}))
        return out


class SftSummary(Builder):
    def build(self, item: Item) -> list[dict[str, Any]]:
        p = self.preset
        field = p.text_field or ""
        result = item.label.content.get(field)
        value = result.value if result is not None else None
        has_value = isinstance(value, str) and bool(value.strip())
        # Batch inference reads no completion: its prompts are for the items people have not summarised too.
        if not has_value and (self.fields is None or "completion" in self.fields):
            self.dropped[f"no-{field}"] += 1
            return []
        base = Values(item, p, self.red)
        return [record(
            SummaryRecord,
            id=f"{item.interaction_id}/content.{field}",
            system=p.system.render(base),
            prompt=p.prompt.render(base),
            completion=self.red.redact(value.strip()) if has_value else "",
            field=field,
            lineage=lineage(item, result.agreement if result else None),
        )]


class PreferenceCorrection(Builder):
    def build(self, item: Item) -> list[dict[str, Any]]:
        p, red = self.preset, self.red
        dropped_before = sum(self.dropped.values())
        base = Values(item, p, red)
        system = p.system.render(base)
        machine_by_id: dict[str, str] | None = None
        out = []
        for seg in self.segments(item):
            if not seg.presegment_id:
                self.dropped["segment-not-from-machine"] += 1
                continue
            if machine_by_id is None:
                machine_by_id = item.pre_segment_texts()
            machine = machine_by_id.get(seg.presegment_id)
            if machine is None:
                self.dropped["presegment-missing"] += 1
                continue
            pair = self._pair(seg.text, machine)
            if pair is None:
                continue
            out.append(record(
                CorrectionPairRecord,
                id=f"{item.interaction_id}/{seg.id}",
                system=system,
                prompt=p.prompt.render(SegmentValues(base, seg)),
                chosen=pair[0],
                rejected=pair[1],
                media=self.media(item, seg),
                lineage=lineage(item, seg.agreement, seg.id),
            ))
        field = p.text_field
        if field:
            result = item.label.content.get(field)
            human = result.value if result is not None else None
            machine_text = item.transcription
            if isinstance(human, str) and machine_text:
                pair = self._pair(human, machine_text)
                if pair is not None:
                    out.append(record(
                        CorrectionPairRecord,
                        id=f"{item.interaction_id}/content.{field}",
                        system=system,
                        prompt=p.full_content_prompt.render(base),
                        chosen=pair[0],
                        rejected=pair[1],
                        media={"uri": item.source_ref, "start": 0.0, "end": ms(item.duration or 0.0),
                               "track": "content", "label": field},
                        lineage=lineage(item, result.agreement if result else None),
                    ))
        if not out and not item.label.segments and sum(self.dropped.values()) == dropped_before:
            self.dropped["no-segments"] += 1  # an item gives nothing silently
        return out

    def _pair(self, human: str, machine: str) -> tuple[str, str] | None:
        human, machine = human.strip(), machine.strip()
        if not human:
            self.dropped["correction-empty"] += 1
            return None
        if normalise_text(human) == normalise_text(machine):
            self.dropped["correction-unchanged"] += 1
            return None
        chosen, rejected = self.red.redact(human), self.red.redact(machine)
        if chosen == rejected:
            self.dropped["correction-identical-after-redaction"] += 1
            return None
        return chosen, rejected


class PreferenceModel(Builder):
    """A text field the workers started from a model's answer (manifest `pre-content`, from `gtkit manifest
    build --model-outputs`): chosen = what people made of it, rejected = the model's text, with the model,
    its prompt and its inference parameters in lineage. Only where people changed it."""

    def build(self, item: Item) -> list[dict[str, Any]]:
        p, red = self.preset, self.red
        field = p.text_field or ""
        result = item.label.content.get(field)
        given = (item.full_data().get("pre-content") or {}).get(field)
        given = given if isinstance(given, dict) else {}
        prefill = result.prefill if result is not None else None
        model_text = prefill.value if prefill is not None else given.get("value")
        model_id = prefill.model_id if prefill is not None else given.get("model_id")
        if not isinstance(model_text, str) or not isinstance(model_id, str):
            self.dropped[f"no-model-{field}"] += 1
            return []
        human = result.value if result is not None else None
        if not isinstance(human, str) or not human.strip():
            self.dropped["correction-empty"] += 1
            return []
        if normalise_text(human) == normalise_text(model_text):
            self.dropped["model-text-unchanged"] += 1  # accepted as is: no preference to learn
            return []
        chosen, rejected = red.redact(human.strip()), red.redact(model_text.strip())
        if chosen == rejected:
            self.dropped["correction-identical-after-redaction"] += 1
            return []
        system = str(given.get("system") or (prefill.system if prefill else "") or "")
        prompt = str(given.get("prompt") or (prefill.prompt if prefill else "") or "")
        if not prompt:  # the answer carried the model text only: the preset's prompt stands in
            base = Values(item, p, red)
            system, prompt = p.system.render(base), p.prompt.render(base)
        params = given.get("params") if isinstance(given.get("params"), dict) else (prefill.params if prefill else {})
        record_id = given.get("record_id") or (prefill.record_id if prefill else None)
        return [record(
            ModelPairRecord,
            id=f"{item.interaction_id}/content.{field}",
            system=red.redact(system),
            prompt=red.redact(prompt),
            chosen=chosen,
            rejected=rejected,
            field=field,
            lineage={**lineage(item, result.agreement if result else None),
                     "model": {"model_id": model_id, "record_id": record_id, "system": red.redact(system),
                               "prompt": red.redact(prompt), "params": params or {}}},
        )]


class Kto(Builder):
    def build(self, item: Item) -> list[dict[str, Any]]:
        p = self.preset
        assert p.rating is not None
        field = p.rating.name
        score = self.rating(item)
        if score is None:
            return []
        base = Values(item, p, self.red)
        return [record(
            KtoRecord,
            id=item.interaction_id,
            system=p.system.render(base),
            prompt=p.prompt.render(base),
            completion=p.response.render(base),
            label=score >= p.threshold,
            score=round(score, 4),
            threshold=p.threshold,
            field=field,
            lineage=lineage(item, item.label.content[field].agreement),
        )]


class PreferenceRatings(Builder):
    def __init__(self, preset: ResolvedPreset, redactor: Redactor, fields: frozenset[str] | None = None):
        super().__init__(preset, redactor, fields)
        # Every item waits for the end (pairs need the whole group): on disk, not in memory.
        self.groups: Groups | None = None

    def build(self, item: Item) -> list[dict[str, Any]]:
        p = self.preset
        assert p.rating is not None
        field = p.rating.name
        key = item.metadata.get(p.preset.prompt_key)
        if key is None or key == "":
            self.dropped["no-prompt-key"] += 1
            return []
        score = self.rating(item)
        if score is None:
            return []
        base = Values(item, p, self.red)
        if self.groups is None:
            self.groups = Groups()
        self.groups.add(str(key), {
            "score": score, "system": p.system.render(base), "prompt": p.prompt.render(base),
            "response": p.response.render(base), "id": item.interaction_id,
            "lineage": lineage(item, item.label.content[field].agreement),
        })
        return []

    def finish(self) -> Iterator[list[dict[str, Any]]]:
        p = self.preset
        assert p.rating is not None
        margin = p.preset.margin
        if self.groups is None:
            return
        try:
            yield from self._pairs(p, margin)
        finally:
            self.groups.close()
            self.groups = None

    def _pairs(self, p: ResolvedPreset, margin: float) -> Iterator[list[dict[str, Any]]]:
        assert self.groups is not None and p.rating is not None
        for key, entries in self.groups.groups():
            if len(entries) < 2:
                self.dropped["rating-unpaired"] += 1
                continue
            ranked = sorted(entries, key=lambda e: -e["score"])  # stable: file order breaks ties
            pairs = []
            for i, hi in enumerate(ranked):
                for lo in ranked[i + 1:]:
                    gap = hi["score"] - lo["score"]
                    if gap < margin or gap <= 0:
                        self.dropped["rating-pair-below-margin"] += 1
                        continue
                    pairs.append(record(
                        RatingPairRecord,
                        id=f"{key}/{hi['id']}>{lo['id']}",
                        prompt_key=key,
                        system=hi["system"],
                        prompt=hi["prompt"],
                        chosen=hi["response"],
                        rejected=lo["response"],
                        chosen_score=round(hi["score"], 4),
                        rejected_score=round(lo["score"], 4),
                        margin=round(gap, 4),
                        field=p.rating.name,
                        lineage={"chosen": hi["lineage"], "rejected": lo["lineage"]},
                    ))
            if pairs:
                yield pairs


class RewardSegments(Builder):
    def build(self, item: Item) -> list[dict[str, Any]]:
        p, red = self.preset, self.red
        assert p.rating is not None
        field = p.rating.name
        score = self.rating(item)
        if score is None:
            return []
        spans = [{
            "start": ms(seg.start), "end": ms(seg.end), "track": seg.category, "label": seg.label,
            "attributes": self.attributes(seg.attributes), "agreement": round(seg.agreement, 4),
            "support": seg.support, "text": red.redact(seg.text.strip()),
        } for seg in sorted(self.segments(item), key=lambda s: (s.start, s.end))]
        return [record(
            RewardRecord,
            id=item.interaction_id,
            source_ref=item.source_ref,
            media_type=item.media_type,
            duration=item.duration,
            field=field,
            score=round(p.normalise(score), 4),
            raw_score=round(score, 4),
            spans=spans,
            lineage=lineage(item, item.label.agreement.overall),
        )]


class DensePreference(Builder):
    """DenseDPO-style records: two candidates of one prompt compared span by aligned span.

    From today's labels the two candidates are the human-corrected transcript (`a`) and the machine
    transcript it started from (`b`) of the same media; each span is a human segment aligned to its
    pre-segment (`presegmentId`), preferring `a` where the texts differ after normalisation and
    `tie` where they do not. A compare task's per-span marks fill the same record (candidates with
    their own media and system, spans preferring `a`/`b` with a reason)."""

    def build(self, item: Item) -> list[dict[str, Any]]:
        if item.label.comparison is not None:
            return self._compare(item)
        p, red = self.preset, self.red
        machine_by_id: dict[str, dict[str, Any]] | None = None
        spans, systems = [], set()
        for seg in sorted(self.segments(item), key=lambda s: (s.start, s.end)):
            if not seg.presegment_id:
                self.dropped["segment-not-from-machine"] += 1
                continue
            if machine_by_id is None:
                machine_by_id = {str(s.get("id")): s for s in item.pre_segments()}
            pre = machine_by_id.get(seg.presegment_id)
            if pre is None:
                self.dropped["presegment-missing"] += 1
                continue
            human, machine = seg.text.strip(), str(pre.get("text") or "").strip()
            if not human:
                self.dropped["correction-empty"] += 1
                continue
            if pre.get("source"):
                systems.add(str(pre["source"]))
            changed = normalise_text(human) != normalise_text(machine)
            spans.append({"start": ms(seg.start), "end": ms(seg.end), "segment_id": seg.id, "track": seg.category,
                          "label": seg.label, "preferred": "a" if changed else "tie", "strength": None,
                          "reason": "corrected" if changed else None,
                          "texts": {"a": red.redact(human), "b": red.redact(machine)},
                          "agreement": round(seg.agreement, 4)})
        if not spans:
            if not item.label.segments:
                self.dropped["no-segments"] += 1
            return []
        if all(s["preferred"] == "tie" for s in spans):
            self.dropped["preference-all-tie"] += 1
            return []
        base = Values(item, p, red)
        uri = item.source_ref
        return [record(
            DensePreferenceRecord,
            id=item.interaction_id,
            system=p.system.render(base),
            prompt=p.prompt.render(base),
            candidates=[{"key": "a", "source": "human", "system": None, "uri": uri},
                        {"key": "b", "source": "machine", "system": ",".join(sorted(systems)) or None, "uri": uri}],
            preferred="a",
            spans=spans,
            lineage=lineage(item, item.label.agreement.overall),
        )]


    def _compare(self, item: Item) -> list[dict[str, Any]]:
        """A compare task: one record per pair of candidates that the workers' consolidated span
        marks tell apart (A/B: one; A/B/N: the pairs with a span for one of the two). A span
        preferring a candidate prefers it over every other; `a` is the pair's first candidate in
        manifest order. The record's overall `preferred` is the task's winner when it is in the pair."""
        from toolkit.labeling.compare import candidate_systems

        comp = item.label.comparison
        assert comp is not None
        data = item.full_data()
        cands = [str(c.get("candidate-id") or i + 1) for i, c in enumerate(data.get("candidates") or [])]
        uris = {str(c.get("candidate-id") or i + 1): str(c.get("source-ref"))
                for i, c in enumerate(data.get("candidates") or [])}
        systems = candidate_systems(data)
        spans = [s for s in comp.spans if s.preferred in uris]
        if not spans:
            self.dropped["no-spans"] += 1
            return []
        valid = item.label.valid_worker_count or 1
        p, red = self.preset, self.red
        base = Values(item, p, red)
        records = []
        for i, a in enumerate(cands):
            for b in cands[i + 1:]:
                marks = [s for s in spans if s.preferred in (a, b)]
                if not marks:
                    continue
                key = {a: "a", b: "b"}
                records.append(record(
                    DensePreferenceRecord,
                    id=f"{item.interaction_id}/{a}-{b}",
                    system=p.system.render(base),
                    prompt=p.prompt.render(base),
                    candidates=[{"key": "a", "source": "system", "system": systems.get(a), "uri": uris[a]},
                                {"key": "b", "source": "system", "system": systems.get(b), "uri": uris[b]}],
                    preferred=key.get(comp.preferred or "", "tie"),
                    spans=[{"start": ms(s.start), "end": ms(s.end), "segment_id": s.id, "track": "comparison",
                            "label": s.reason, "preferred": key[s.preferred], "strength": None,
                            "reason": s.reason, "texts": None,
                            "agreement": round(min(1.0, s.support / valid), 4)} for s in marks],
                    lineage=lineage(item, comp.agreement),
                ))
        return records


class Stepwise(Builder):
    """TRL stepwise supervision: the machine transcript's segments in time order are the steps; a
    step is correct (True) when the workers kept it: a human segment made from it (`presegmentId`)
    has the same text after normalisation. A step the workers changed or deleted is False."""

    def build(self, item: Item) -> list[dict[str, Any]]:
        p, red = self.preset, self.red
        steps = [s for s in sorted(item.pre_segments(), key=_start) if str(s.get("text") or "").strip()]
        if self.tracks:
            steps = [s for s in steps if s.get("track") in self.tracks]
        if not steps:
            self.dropped["no-machine-steps"] += 1
            return []
        human_by_pre = {seg.presegment_id: seg for seg in self.segments(item) if seg.presegment_id}
        completions, labels, step_info = [], [], []
        for step in steps:
            text = str(step.get("text")).strip()
            seg = human_by_pre.get(str(step.get("id")))
            kept = seg is not None and normalise_text(seg.text) == normalise_text(text)
            completions.append(red.redact(text))
            labels.append(kept)
            step_info.append({"presegment_id": str(step.get("id")), "segment_id": seg.id if seg else None,
                              "start": ms(_start(step)), "end": ms(_end(step))})
        base = Values(item, p, red)
        return [record(
            StepwiseRecord,
            id=item.interaction_id,
            system=p.system.render(base),
            prompt=p.prompt.render(base),
            completions=completions,
            labels=labels,
            steps=step_info,
            lineage=lineage(item, item.label.agreement.overall),
        )]


class PreferenceCompare(Builder):
    """Comparison tasks (schema mode: compare): the consolidated winner (chosen) against each other
    candidate (rejected). System ids come from the manifest line's candidates (Ground Truth copies
    the line into the output manifest; workers and the consolidation Lambda never see them). The
    lineage says where each worker was shown the two, for position-bias checks."""

    def build(self, item: Item) -> list[dict[str, Any]]:
        from toolkit.labeling.compare import LETTERS, candidate_systems

        comp = item.label.comparison
        if comp is None:
            self.dropped["not-a-comparison"] += 1
            return []
        if comp.preferred is None:
            self.dropped["compare-tie" if comp.tie else "compare-no-preference"] += 1
            return []
        if comp.agreement < self.min_agreement:
            self.dropped["compare-below-min-agreement"] += 1
            return []
        data = item.full_data()
        cands = {str(c.get("candidate-id") or i + 1): c for i, c in enumerate(data.get("candidates") or [])
                 if isinstance(c, dict)}
        systems = candidate_systems(data)
        winner = comp.preferred
        if winner not in cands:
            self.dropped["compare-candidate-missing"] += 1
            return []
        p, red = self.preset, self.red
        base = Values(item, p, red)
        system, prompt = p.system.render(base), p.prompt.render(base)
        orders = list(comp.orders.values())

        def response(cid: str) -> str:
            values = dict(base)
            values.update({"candidate_ref": str(cands[cid].get("source-ref", "")), "candidate_id": cid})
            return p.response.render(_ItemValues(base, values))

        def positions(cid: str) -> list[str]:
            return [LETTERS[order.index(cid)] for order in orders if cid in order]

        records = []
        for other in cands:
            if other == winner:
                continue
            row_lineage = lineage(item, comp.agreement)
            row_lineage["comparison"] = {
                "chosen_candidate": winner, "rejected_candidate": other,
                "chosen_positions": positions(winner), "rejected_positions": positions(other),
                "preferred_positions": dict(comp.preferred_positions), "votes": dict(comp.votes)}
            records.append(record(
                ComparePairRecord,
                id=f"{item.interaction_id}/{winner}>{other}",
                system=system, prompt=prompt,
                chosen=response(winner), rejected=response(other),
                chosen_system=systems.get(winner), rejected_system=systems.get(other),
                chosen_media=str(cands[winner].get("source-ref")),
                rejected_media=str(cands[other].get("source-ref")),
                strength=comp.strength, agreement=comp.agreement,
                chosen_mos=comp.mos.get(winner), rejected_mos=comp.mos.get(other),
                lineage=row_lineage,
            ))
        return records


class _ItemValues(dict):
    """A candidate's template values over the item's (computed on first use)."""

    def __init__(self, base: Values, values: dict[str, Any]):
        super().__init__(values)
        self.base = base

    def __missing__(self, key: str) -> str:
        return self.base[key]


BUILDERS: dict[str, type[Builder]] = {
    "preference-compare": PreferenceCompare,
    "sft-transcription": SftTranscription,
    "sft-summary": SftSummary,
    "preference-correction": PreferenceCorrection,
    "preference-model": PreferenceModel,
    "preference-ratings": PreferenceRatings,
    "kto": Kto,
    "reward-segments": RewardSegments,
    "dense-preference": DensePreference,
    "stepwise": Stepwise,
}


def make_builder(preset: ResolvedPreset, redactor: Redactor, fields: frozenset[str] | None = None) -> Builder:
    return BUILDERS[preset.kind](preset, redactor, fields)
