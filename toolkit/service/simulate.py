"""Simulated workers for a local job (`gtkit local-job run --simulate`, the demo, the tests).

Each simulated worker answers every task the service gives them through its own transactions
(`simulate_service`: work.claim / work.submit, what `gtkit local-job run --simulate` runs), with a
plausible, schema-valid answer built from the task's pre-segments. Workers differ as people do:
each has their own boundary precision, rate of missed and extra segments, rating bias and care in
correcting the transcript, so consolidation sees real disagreement. Every choice comes from a
random generator seeded by (worker, item), and the submission times from a simulated clock, so a
rerun writes byte-identical outputs.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from toolkit.contract import FieldSpec, LabelSchema
from toolkit.contract.answer import (
    TIME_DECIMALS,
    AnswerPrefill,
    AnswerSegment,
    AnswerTrack,
    ComparisonAnswer,
    SegmentationAnswer,
)
from toolkit.contract.base import dump
from toolkit.contract.manifest import decode_sidecar
from toolkit.labeling.answers import answer_content
from toolkit.service.errors import LocalJobError
from toolkit.storage import Storage

if TYPE_CHECKING:
    from toolkit.service.db import Database

log = logging.getLogger(__name__)

# The simulated clock: worker 1 starts here; each task takes about its media's length plus reading time.
SIMULATED_START = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
MIN_SEGMENT = 0.05

# Words that make a simulated worker pick an emotion for a speaker turn (first match wins).
_EMOTION_CUES: list[tuple[str, str]] = [
    (r"frustrat|still hasn't|dropping|charged twice|damaged", "Frustrated"),
    (r"\bangry\b|unacceptable", "Angry"),
    (r"great|perfect|thanks|thank you|welcome|works", "Happy"),
    (r"unfortunately", "Sad"),
    (r"\?$", "Confused"),
]


@dataclass(frozen=True)
class Correction:
    """A known transcription error: the text the ASR produced and what was said."""

    heard: str
    said: str


def load_corrections(path: str | Path) -> list[Correction]:
    """The corrections file (examples/asr-corrections.yaml): `corrections: [{heard, said}, ...]`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LocalJobError(f"corrections file {path}: {exc}") from exc
    items = data.get("corrections") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise LocalJobError(f"corrections file {path}: expected a mapping with a 'corrections' list")
    out = []
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("heard"), str) and item["heard"]
                and isinstance(item.get("said"), str)):
            raise LocalJobError(f"corrections file {path}: corrections[{i}] needs text 'heard' and 'said'")
        out.append(Correction(item["heard"], item["said"]))
    return out


@dataclass(frozen=True)
class WorkerTraits:
    """How one simulated worker labels: the same for every task they do."""

    boundary_sd: float      # seconds of boundary noise (standard deviation)
    miss_rate: float        # chance to leave a pre-segment out
    extra_rate: float       # chance per gap to add a segment the machine missed
    correct_rate: float     # chance to fix a known transcription error
    rating_bias: float      # added to an item's true quality
    language_rate: float    # chance to mark the language track
    summary_style: int

    @classmethod
    def of(cls, worker: int, seed: int = 0) -> WorkerTraits:
        rng = random.Random(f"gtkit-sim:{seed}:worker:{worker}")
        return cls(boundary_sd=rng.uniform(0.03, 0.22), miss_rate=rng.uniform(0.0, 0.12),
                   extra_rate=rng.uniform(0.0, 0.15), correct_rate=rng.uniform(0.7, 1.0),
                   rating_bias=rng.uniform(-0.8, 0.8), language_rate=rng.uniform(0.5, 1.0),
                   summary_style=rng.randrange(3))


def _item_key(task_input: dict[str, Any]) -> str:
    return str(task_input.get("interaction-id") or task_input.get("source-ref") or task_input.get("source") or "")


def _item_rng(task_input: dict[str, Any], seed: int) -> random.Random:
    """What every worker perceives alike about an item (its true quality)."""
    return random.Random(f"gtkit-sim:{seed}:item:{_item_key(task_input)}")


def _worker_rng(task_input: dict[str, Any], worker: int, seed: int) -> random.Random:
    return random.Random(f"gtkit-sim:{seed}:worker:{worker}:item:{_item_key(task_input)}")


def _pre_segments(task_input: dict[str, Any], storage: Storage | None) -> list[dict[str, Any]]:
    pre = task_input.get("pre-segments")
    if pre is None and task_input.get("sidecar-ref") and storage is not None:
        try:
            sidecar = decode_sidecar(storage.read_bytes(task_input["sidecar-ref"]))
            pre = [dump(s) for s in sidecar.pre_segments] if sidecar.pre_segments is not None else None
        except Exception:  # unreadable sidecar (no --mirror, no credentials): start from scratch
            log.warning("sidecar of %s unreadable; simulating without pre-segments",
                        task_input.get("interaction-id"))
            pre = None
    return sorted(pre or [], key=lambda p: (float(p["start"]), float(p["end"])))


def corrected(text: str, corrections: list[Correction], rng: random.Random, care: float) -> str:
    """`text` with each known error it contains fixed, each with probability `care`."""
    for fix in corrections:
        if fix.heard in text and rng.random() < care:
            text = text.replace(fix.heard, fix.said)
    return text


def _emotion(text: str, options: list[str], rng: random.Random) -> str | None:
    if rng.random() < 0.15:  # workers disagree on emotion now and then
        return rng.choice(options)
    for pattern, emotion in _EMOTION_CUES:
        if emotion in options and re.search(pattern, text.strip(), re.IGNORECASE):
            return emotion
    return "Neutral" if "Neutral" in options else None


def _summary(segments: list[dict[str, Any]], style: int) -> str:
    """A short summary written from the (corrected) transcript: the customer's first substantial
    turn, and (in two of the three styles) how the agent's last turn resolved it."""
    said = [s for s in segments if s.get("text", "").strip()]
    if not said:
        return ""
    customer = [s["text"] for s in said if s["_label"] == "Customer"] or [s["text"] for s in said]
    agent = [s["text"] for s in said if s["_label"] == "Agent"]
    issue = next((t for t in customer if len(t.split()) >= 5), customer[0])
    issue = _GREETING.sub("", issue).strip().rstrip(".?! ") or issue.rstrip(".?! ")
    issue = _lower_first(issue)
    # The agent's last turn that does something about it (not a goodbye or a question).
    acting = [t for t in agent if _ACTION.search(t) and not t.rstrip().endswith("?")]
    outcome = _THANKS.sub("", acting[-1]).strip().rstrip(".?! ") if acting else ""
    if style == 1 or not outcome:
        return f"Customer issue: {issue}."
    outcome = _lower_first(outcome)
    if style == 0:
        return f"The customer called because {issue}. Outcome: {outcome}."
    return f"{issue[0].upper()}{issue[1:]}. The agent: {outcome}."


def _lower_first(text: str) -> str:
    """Lower-case a sentence's first letter to continue a sentence with it ("I" and acronyms stay)."""
    first = text.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or first.isupper():
        return text
    return text[:1].lower() + text[1:]


_GREETING = re.compile(r"^((hi|hello|yes|okay)[,.!?]?\s+)+(this is [^.]+\.\s*)?", re.IGNORECASE)
_ACTION = re.compile(r"refund|cancel|book|arriv|sent|added|credit|replace|updat|call you", re.IGNORECASE)
_THANKS = re.compile(r"^((thanks|thank you)[^.]*\.\s*)+", re.IGNORECASE)


def _field_value(spec: FieldSpec, rng: random.Random, *, quality: float, traits: WorkerTraits,
                 text: str = "", summary: str = "") -> Any:
    """A value for one field, drawn per worker and item; None leaves an optional field unanswered."""
    if spec.type == "single_choice":
        options = spec.options or []
        if spec.name == "emotion":
            return _emotion(text, options, rng)
        return options[0] if rng.random() < 0.7 else rng.choice(options)
    if spec.type == "multiple_choice":
        options = spec.options or []
        return [options[0]] if rng.random() < 0.75 or len(options) < 2 else [rng.choice(options[1:])]
    if spec.type == "boolean":
        return rng.random() < 0.2
    if spec.type == "rating":
        score = quality * (spec.max - spec.min) + spec.min + traits.rating_bias + rng.gauss(0, 0.6)
        return int(min(spec.max, max(spec.min, round(score))))
    if spec.name in ("summary", "summary_text") or "summary" in (spec.label or "").lower():
        return summary or ("Simulated answer." if spec.required else None)
    return "Simulated answer." if spec.required else None


def simulated_answer(task_input: dict[str, Any], schema: LabelSchema, worker: int,
                     storage: Storage | None = None, *, corrections: list[Correction] | None = None,
                     seed: int = 0) -> SegmentationAnswer:
    """A plausible, schema-valid SegmentationAnswer built from the task's pre-segments."""
    pre = _pre_segments(task_input, storage)
    ends = [float(p["end"]) for p in pre]
    duration = float(task_input.get("duration-seconds") or max(ends, default=0.0) or 1.0)
    traits = WorkerTraits.of(worker, seed)
    rng = _worker_rng(task_input, worker, seed)
    quality = _item_rng(task_input, seed).uniform(0.25, 0.95)

    tracks: dict[tuple[str, str], str] = {}

    def track_id(category: str, label: str) -> str:
        return tracks.setdefault((category, label), f"t{len(tracks) + 1}")

    def jittered(value: float) -> float:
        return value + max(-0.6, min(0.6, rng.gauss(0, traits.boundary_sd)))

    segments: list[dict[str, Any]] = []
    kept = [p for p in pre if rng.random() >= traits.miss_rate] or pre[:1]
    for p in kept:
        category = schema.track(p.get("track", "")) or schema.tracks[0]
        label = p.get("label") if p.get("label") in category.labels else category.labels[0]
        start = max(0.0, jittered(float(p["start"])))
        end = min(duration, jittered(float(p["end"])))
        if end - start < MIN_SEGMENT:
            start, end = float(p["start"]), float(p["end"])
        text = corrected(p.get("text", ""), corrections or [], rng, traits.correct_rate)
        segments.append({"id": f"w{worker}-{p['id']}", "track": track_id(category.name, label),
                         "start": start, "end": end, "text": text, "presegmentId": p["id"],
                         "_category": category.name, "_label": label})
    # Something the machine missed: a short backchannel in a gap long enough to hold one.
    speaker = segments[0]["_category"] if segments else schema.tracks[0].name
    for before, after in itertools.pairwise(pre):
        gap_start, gap_end = float(before["end"]) + 0.2, float(after["start"]) - 0.2
        if gap_end - gap_start >= 0.6 and rng.random() < traits.extra_rate:
            other = next((x.get("label") for x in (after, before)
                          if x.get("label") != before.get("label")), before.get("label"))
            category = schema.track(speaker) or schema.tracks[0]
            label = other if other in category.labels else category.labels[0]
            mid = (gap_start + gap_end) / 2
            segments.append({"id": f"w{worker}-x{len(segments) + 1}", "track": track_id(category.name, label),
                             "start": max(0.0, mid - 0.3), "end": min(duration, mid + 0.3),
                             "text": rng.choice(["Mm-hmm.", "Okay.", "Right."]),
                             "_category": category.name, "_label": label})
    # The language spoken, on a language track if the schema has one (not every worker marks it).
    language = next((t for t in schema.tracks if t.name == "language"), None)
    if language is not None and segments and rng.random() < traits.language_rate:
        code = str(task_input.get("language-code") or "en")
        names = {"en": "English", "es": "Spanish", "fr": "French", "de": "German"}
        label = names.get(code.split("-")[0].lower(), "Other")
        label = label if label in language.labels else language.labels[-1]
        first = min(s["start"] for s in segments)
        last = max(s["end"] for s in segments)
        segments.append({"id": f"w{worker}-lang", "track": track_id(language.name, label),
                         "start": max(0.0, jittered(first)), "end": min(duration, jittered(last)), "text": "",
                         "_category": language.name, "_label": label})
    if not segments:  # nothing to start from: one segment over the first second
        category = schema.tracks[0]
        segments.append({"id": f"w{worker}-1", "track": track_id(category.name, category.labels[0]),
                         "start": 0.0, "end": min(duration, 1.0), "text": "",
                         "_category": category.name, "_label": category.labels[0]})
    segments.sort(key=lambda s: (s["start"], s["end"], s["id"]))

    summary = _summary([s for s in segments if s["_category"] != "language"], traits.summary_style)
    for seg in segments:
        category = seg.pop("_category")
        seg.pop("_label")
        seg["start"], seg["end"] = round(seg["start"], TIME_DECIMALS), round(seg["end"], TIME_DECIMALS)
        if seg["end"] - seg["start"] < MIN_SEGMENT:
            seg["end"] = round(min(duration, seg["start"] + MIN_SEGMENT), TIME_DECIMALS)
        text_spec = schema.segment_text
        if not schema.text_applies(category):
            seg["text"] = ""
        elif text_spec.enabled and text_spec.required and not seg["text"]:
            seg["text"] = "(simulated)"
        attributes: dict[str, Any] = {}
        for spec in schema.fields_for(category):
            value = _field_value(spec, rng, quality=quality, traits=traits, text=seg["text"])
            if value is None and spec.required:
                value = (spec.options or [""])[0] if spec.options else "Simulated answer."
            if value is not None:
                attributes[spec.name] = value
        seg["attributes"] = attributes
    content: dict[str, Any] = {}
    for spec in schema.content_fields:
        value = _field_value(spec, rng, quality=quality, traits=traits, summary=summary)
        if value is not None:
            content[spec.name] = value
    # Like the worker UI: a text field pre-filled with a model's answer (pre-content) starts from it, the
    # worker corrects it, and the answer says what it started from.
    prefill = {}
    given = task_input.get("pre-content")
    for spec in schema.content_fields if isinstance(given, dict) else []:
        pre_field = given.get(spec.name)
        if spec.type == "text" and isinstance(pre_field, dict) and isinstance(pre_field.get("value"), str) \
                and isinstance(pre_field.get("model_id"), str):
            content[spec.name] = pre_field["value"].rstrip(". ") + " (checked by a reviewer)."
            prefill[spec.name] = {"value": pre_field["value"], "modelId": pre_field["model_id"],
                                  "recordId": pre_field.get("record_id")}
    return SegmentationAnswer(
        label_schema=schema.name, interaction_id=task_input.get("interaction-id"), media_duration=duration,
        tracks=[AnswerTrack(id=tid, category=c, label=lab) for (c, lab), tid in tracks.items()],
        segments=[AnswerSegment.model_validate(seg) for seg in segments], content=content,
        prefill={name: AnswerPrefill.model_validate(value) for name, value in prefill.items()})


# Simulated listeners favour the candidate shown first a little (a known position bias, which the
# shuffled order and the report's position counts are there to catch).
POSITION_BIAS = 0.03
STRENGTH_STEPS = (0.04, 0.12, 0.25)  # perceived quality gaps for CMOS strength 1, 2, 3


def system_quality(system: str, seed: int = 0) -> float:
    """A system's true quality in [0.2, 0.9]: the same in every task, so systems really differ."""
    return random.Random(f"gtkit-sim:{seed}:system:{system}").uniform(0.2, 0.9)


def simulated_comparison(task_input: dict[str, Any], schema: LabelSchema, worker: int,
                         data_object: dict[str, Any] | None = None, *, seed: int = 0) -> SegmentationAnswer:
    """A plausible, schema-valid compare-mode answer: each worker perceives each candidate's true
    quality (its system's, from `data_object`; without it, the candidate's own) with noise and a
    slight bias towards the first shown, prefers the best, and marks a span now and then."""
    spec = schema.compare
    assert spec is not None
    shown = task_input.get("candidates") or []
    order = [str(c.get("candidate-id") or i + 1) for i, c in enumerate(shown)]
    systems = {str(c.get("candidate-id") or i + 1): c.get("system-id")
               for i, c in enumerate((data_object or {}).get("candidates") or [])}
    traits = WorkerTraits.of(worker, seed)
    rng = _worker_rng(task_input, worker, seed)
    item = _item_rng(task_input, seed)
    duration = float(task_input.get("duration-seconds") or 0) or max(
        (float(c.get("duration-seconds") or 0) for c in shown), default=0.0) or 4.0
    perceived = {}
    for position, cid in enumerate(order):
        true = system_quality(str(systems.get(cid) or cid), seed) + item.gauss(0, 0.05)
        perceived[cid] = true + rng.gauss(0, 0.04 + traits.boundary_sd / 4) + (POSITION_BIAS if position == 0 else 0)
    ranked = sorted(order, key=lambda c: -perceived[c])
    gap = perceived[ranked[0]] - perceived[ranked[1]]
    strength = sum(gap >= step for step in STRENGTH_STEPS)
    if strength == 0 and not spec.allow_no_preference:
        strength = 1
    preferred = ranked[0] if strength else None
    comparison: dict[str, Any] = {"order": order, "preferred": preferred, "strength": strength, "mos": {}, "spans": []}
    if spec.mos.enabled and (spec.mos.required or rng.random() < 0.8):
        for cid in order:
            score = spec.mos.min + perceived[cid] * (spec.mos.max - spec.mos.min) + traits.rating_bias / 2
            comparison["mos"][cid] = int(min(spec.mos.max, max(spec.mos.min, round(score))))
    if preferred and duration > 1 and rng.random() < 0.6:
        start = round(item.uniform(0, duration * 0.7) + rng.gauss(0, 0.1), TIME_DECIMALS)
        start = min(max(0.0, start), duration - 0.5)
        end = round(min(duration, start + item.uniform(0.4, 1.5) + rng.gauss(0, 0.1)), TIME_DECIMALS)
        if end > start:
            reason = spec.span_reasons[item.randrange(len(spec.span_reasons))]
            comparison["spans"].append({"id": "span-1", "start": start, "end": end, "preferred": preferred,
                                        "reason": reason if rng.random() < 0.8 else rng.choice(spec.span_reasons)})
    content = {}
    for f in schema.content_fields:
        value = _field_value(f, rng, quality=perceived[ranked[0]], traits=traits)
        if value is not None:
            content[f.name] = value
    return SegmentationAnswer(label_schema=schema.name, interaction_id=task_input.get("interaction-id"),
                              media_duration=duration, content=content,
                              comparison=ComparisonAnswer.model_validate(comparison))


def simulated_answer_content(task_input: dict[str, Any], schema: LabelSchema, worker: int,
                             storage: Storage | None = None, *, corrections: list[Correction] | None = None,
                             seed: int = 0, data_object: dict[str, Any] | None = None) -> dict[str, Any]:
    """crowd-form `answerContent` as our template posts it: the JSON answer + `content-*` copies."""
    if schema.mode == "compare":
        answer = simulated_comparison(task_input, schema, worker, data_object, seed=seed)
    else:
        answer = simulated_answer(task_input, schema, worker, storage, corrections=corrections, seed=seed)
    return answer_content(answer)


def time_spent(task_input: dict[str, Any], worker: int, seed: int = 0) -> float:
    """Simulated seconds a worker spends on a task: listening once or twice plus reading and typing."""
    rng = random.Random(f"gtkit-sim:{seed}:time:{worker}:{_item_key(task_input)}")
    duration = float(task_input.get("duration-seconds") or 30.0)
    return round(duration * rng.uniform(1.3, 2.6) + rng.uniform(20, 90), 3)


class SimulatedClock:
    """A service database's clock (Database(clock=...)) that reads the simulated time the current
    simulated worker is at: claims and answers are stamped with it, so reruns write the same bytes."""

    def __init__(self, start: datetime = SIMULATED_START) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment


def simulate_service(db: Database, clock: SimulatedClock, user_ids: list[int], schema: LabelSchema, *,
                     storage: Storage | None = None, corrections: list[Correction] | None = None,
                     seed: int = 0, max_bytes: int | None = None,
                     after_submit: Callable[[], object] | None = None) -> int:
    """N simulated workers (user i is simulated worker i + 1) answer every task the service gives
    them, through work.claim and work.submit, on a simulated clock (worker i
    starts 7 min after worker i - 1; 5 s between tasks): the same answers and times. `db` must
    run on `clock`. `max_bytes` caps an answer's size (work.submit's default when None);
    `after_submit` runs after each answer (the local job works its queue there, so its output
    grows as it would with people). Returns the number of answers submitted."""
    from toolkit.service import work
    from toolkit.service.errors import SubmissionInvalid
    from toolkit.service.tables import DataObject

    if db.clock is not clock:
        raise ValueError("simulate_service: the database must run on the simulated clock")
    submitted = 0
    for index, user_id in enumerate(user_ids):
        now = SIMULATED_START + timedelta(minutes=7 * index)
        while True:
            clock.moment = now
            task = work.claim(db, user_id)
            if task is None:
                break
            with db.read() as session:  # the hidden system ids of a comparison (listeners hear which system is better)
                obj = session.get(DataObject, task.object_id)
                line = json.loads(obj.line_json) if obj is not None else None
            content = simulated_answer_content(task.task_input, schema, index + 1, storage,
                                               corrections=corrections, seed=seed, data_object=line)
            now += timedelta(seconds=time_spent(task.task_input, index + 1, seed))
            clock.moment = now
            try:
                result = work.submit(db, user_id, task.object_id, content,
                                     **({} if max_bytes is None else {"max_bytes": max_bytes}))
            except SubmissionInvalid as exc:
                raise LocalJobError(f"simulated worker {index + 1}: object {task.dataset_object_id} refused: "
                                    f"{exc} ({'; '.join(map(str, exc.problems))})") from None
            if result.duplicate:
                raise LocalJobError(f"simulated worker {index + 1}: object {task.dataset_object_id} answered twice")
            submitted += 1
            if after_submit is not None:
                after_submit()
            now += timedelta(seconds=5)
    return submitted
