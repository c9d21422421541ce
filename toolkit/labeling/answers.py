"""Turn what a worker submitted (crowd-form `answerContent`) into a validated SegmentationAnswer
(`parse_answer`, `worker_answer`), and back (`answer_content`, what the simulated workers post).

Two submission formats are understood:

- **gtkit** (our template): `{"answer": "<JSON string of SegmentationAnswer>", "content-<field>": ...}`.
  The `answer` field is authoritative; the `content-*` copies exist for tools that only read native
  form fields and are ignored here.
- **aws-samples** (`audio-video-segmentation-sagemaker-groundtruth`): a hidden `annotations` input
  holding `JSON.stringify(tagData)` where `tagData.streams[category] = [{id, start, end, text,
  emotion}]` (`id` is the track *label*, e.g. `Customer`), plus native form fields `rate`
  (`{"5": true}`), `backgroundNoise` / `environmentalSounds` / `speechNonSpeech` / `speakerGender`
  (`{value: bool}` maps) and `textTranslationFinal`. See `from_aws_sample()` for the mapping.

Ground Truth hands the answer over as a JSON *string* in the post-Lambda payload and as an object
in the worker-response file; both are accepted, and so is the documented one-element-array wrapper.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import ValidationError

from toolkit.contract.answer import ANSWER_FIELD, CONTENT_FIELD_PREFIX, SegmentationAnswer, validate_answer
from toolkit.contract.base import NESTING_LIMITS, deeper_than, dump, problems_from
from toolkit.contract.consolidated import WorkerAnswer
from toolkit.contract.schema import LabelSchema
from toolkit.errors import GtkitError, Problem

AWS_SAMPLE_FIELD = "annotations"
# aws-sample form field -> our content field name (then matched to the schema case-insensitively).
AWS_SAMPLE_CONTENT_FIELDS: dict[str, str] = {
    "rate": "overall_rating",
    "backgroundNoise": "background_noise",
    "environmentalSounds": "environmental_sounds",
    "speechNonSpeech": "speech_non_speech",
    "speakerGender": "speaker_gender",
    "textTranslationFinal": "transcription",
}
# aws-sample labels that our built-in schemas spell differently: (category, label) -> label.
AWS_SAMPLE_LABEL_ALIASES: dict[tuple[str, str], str] = {("speaker", "representative"): "Agent"}


MAX_ANSWER_DEPTH = NESTING_LIMITS["submission"]  # why: toolkit.contract.base.NESTING_LIMITS


class AnswerFormatError(GtkitError, ValueError):
    """The submission is not in a format we understand. The message never quotes answer text."""


class UnsafeAnswerError(AnswerFormatError):
    """Too deep, a non-finite number or broken Unicode: refused, and not kept as an audit copy."""


def json_problem(value: Any, max_depth: int = MAX_ANSWER_DEPTH) -> str | None:
    """Why a parsed JSON value cannot be stored or passed on safely, or None.

    Iterative (no recursion on hostile depth): containers nested deeper than `max_depth`, numbers
    that are not finite (JSON has none; Python's json would write `Infinity`), and strings with lone
    surrogates (they cannot be written as UTF-8)."""
    if deeper_than(value, max_depth):
        return f"is nested deeper than {max_depth} levels"
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and not _encodable(key):
                    return "holds text that is not valid Unicode"
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return "holds a number that is not finite"
        elif isinstance(item, str) and not _encodable(item):
            return "holds text that is not valid Unicode"
    return None


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_finite(token: str) -> float:
    raise UnsafeAnswerError("holds a number that is not finite")


def _finite(token: str) -> float:
    number = float(token)
    if not math.isfinite(number):
        raise UnsafeAnswerError("holds a number that is not finite")
    return number


def load_json(text: str | bytes | bytearray, what: str, max_depth: int = MAX_ANSWER_DEPTH) -> Any:
    """Parse JSON from a worker (or about a worker's answer); every failure is an AnswerFormatError
    naming `what` (e.g. "field 'answer'"), never a traceback and never the text itself."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeAnswerError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text.removeprefix("\ufeff"), parse_constant=_not_finite, parse_float=_finite)
    except UnsafeAnswerError as exc:
        raise UnsafeAnswerError(f"{what} {exc}") from None
    except json.JSONDecodeError as exc:
        raise AnswerFormatError(f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise UnsafeAnswerError(f"{what} is nested deeper than {max_depth} levels") from None
    problem = json_problem(value, max_depth)
    if problem:
        raise UnsafeAnswerError(f"{what} {problem}")
    return value


def answer_content(answer: SegmentationAnswer) -> dict[str, Any]:
    """The encoder of `parse_answer`: crowd-form `answerContent` as our template posts it, the answer as
    compact JSON under `answer` plus a `content-<field>` copy of each content field (text as is, other
    values as JSON) for tools that read only native form fields."""
    data = dump(answer)
    if not answer.prefill:
        del data["prefill"]  # as the worker UI posts it (static/js/state.js): only when a field was pre-filled
    content: dict[str, Any] = {ANSWER_FIELD: json.dumps(data, separators=(",", ":"))}
    for name, value in answer.content.items():
        content[f"{CONTENT_FIELD_PREFIX}{name}"] = value if isinstance(value, str) else json.dumps(value)
    return content


def load_answer_content(content: Any) -> dict[str, Any]:
    """`answerContent` as a dict, whether it arrived as an object, a JSON string, or `[{...}]`."""
    if isinstance(content, str | bytes | bytearray):
        content = load_json(content, "answer content")
    elif problem := json_problem(content):
        raise UnsafeAnswerError(f"answer content {problem}")
    if isinstance(content, list) and len(content) == 1:
        content = content[0]
    if not isinstance(content, dict):
        raise AnswerFormatError(f"answer content must be a JSON object, got {type(content).__name__}")
    return content


def parse_answer(
    content: Any,
    *,
    schema: LabelSchema | None = None,
    media_duration: float | None = None,
    interaction_id: str | None = None,
) -> SegmentationAnswer:
    """Parse one worker's `answerContent` (either format) into a structurally valid answer.

    Raises AnswerFormatError or pydantic.ValidationError. `media_duration` and `interaction_id`
    fill in what the aws-sample format does not carry.
    """
    data = load_answer_content(content)
    if ANSWER_FIELD in data:
        inner = data[ANSWER_FIELD]
        if isinstance(inner, str):
            inner = load_json(inner, f"field {ANSWER_FIELD!r}")
        if not isinstance(inner, dict):
            raise AnswerFormatError(f"field {ANSWER_FIELD!r} must hold a JSON object")
        return SegmentationAnswer.model_validate(inner)
    if AWS_SAMPLE_FIELD in data:
        return from_aws_sample(data, schema=schema, media_duration=media_duration,
                               interaction_id=interaction_id)
    if ("segments" in data or "cannotAnnotate" in data) and "mediaDuration" in data:
        return SegmentationAnswer.model_validate(data)  # a bare answer object
    raise AnswerFormatError(
        f"no {ANSWER_FIELD!r} field (gtkit template) or {AWS_SAMPLE_FIELD!r} field (aws-samples template) "
        f"in the answer; fields present: {sorted(data)[:20]}")


def check_answer(
    content: Any,
    *,
    schema: LabelSchema | None = None,
    media_duration: float | None = None,
    interaction_id: str | None = None,
) -> tuple[SegmentationAnswer | None, list[Problem]]:
    """Parse and validate one submission: (the answer, or None when it does not parse; every problem,
    naming fields, never values). Raises UnsafeAnswerError only (what must not even be kept)."""
    if isinstance(content, SegmentationAnswer):
        answer = content
    else:
        try:
            answer = parse_answer(content, schema=schema, media_duration=media_duration,
                                  interaction_id=interaction_id)
        except ValidationError as exc:
            return None, problems_from(exc, root="(answer)")
        except UnsafeAnswerError:
            raise
        except AnswerFormatError as exc:
            return None, [Problem("", str(exc))]
    problems = validate_answer(answer, schema) if schema is not None else []
    return answer, [Problem(p.path, p.message) for p in problems]


def worker_answer(
    worker_id: str,
    content: Any,
    *,
    schema: LabelSchema | None = None,
    media_duration: float | None = None,
    interaction_id: str | None = None,
) -> WorkerAnswer:
    """Parse and validate one submission; never raises. Invalid answers keep their raw content."""
    try:
        answer, problems = check_answer(content, schema=schema, media_duration=media_duration,
                                        interaction_id=interaction_id)
    except UnsafeAnswerError as exc:  # no audit copy: it is what breaks readers downstream
        return WorkerAnswer(worker_id=worker_id, valid=False, problems=[str(exc)])
    texts = [str(p) for p in problems]
    if answer is None:
        return WorkerAnswer(worker_id=worker_id, valid=False, problems=texts, raw=content)
    # Migrated answers keep the original submission for audit.
    raw = content if answer is not content and _is_aws_sample(content) else None
    if problems:
        return WorkerAnswer(worker_id=worker_id, valid=False, answer=answer, raw=raw, problems=texts)
    return WorkerAnswer(worker_id=worker_id, valid=True, answer=answer, raw=raw)


def _is_aws_sample(content: Any) -> bool:
    try:
        return AWS_SAMPLE_FIELD in load_answer_content(content)
    except AnswerFormatError:
        return False


# -- aws-samples format ----------------------------------------------------------------------
def _norm(name: str) -> str:
    """`backgroundNoise`, `Background noise`, `background_noise` -> `background_noise`."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _match(value: str, options: list[str]) -> str:
    """The option equal to `value` ignoring case and punctuation, else `value` unchanged."""
    wanted = _norm(value)
    return next((o for o in options if _norm(o) == wanted), value)


def _checked(value: Any) -> list[str]:
    """crowd-form checkbox/radio map `{value: bool}` -> the checked values, in form order."""
    if isinstance(value, dict):
        return [k for k, v in value.items() if v is True or v == "true"]
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        return [value]
    return []


def from_aws_sample(
    data: dict[str, Any],
    *,
    schema: LabelSchema | None = None,
    media_duration: float | None = None,
    interaction_id: str | None = None,
) -> SegmentationAnswer:
    """Map an aws-samples answer onto our model.

    - `streams[category]` entries become segments on a track (category, label); with a schema,
      category and label names are matched case-insensitively (`speaker`/`Speaker`) and
      `Representative` becomes `Agent`. Unknown names are kept as given, so `validate_answer`
      reports them instead of losing them.
    - `emotion` becomes the segment attribute `emotion` (matched to the schema's options).
    - Form fields map through AWS_SAMPLE_CONTENT_FIELDS; with a schema, fields the schema does not
      define are left out (the original answer stays in `WorkerAnswer.raw`); checkbox maps become
      lists (multiple_choice) or one value (single_choice), `rate` becomes a number.
    - Bookkeeping keys of tagData (timestamps) are dropped; `media_duration` defaults to the last
      segment end when the caller does not know the media length.
    """
    tag_data = data.get(AWS_SAMPLE_FIELD)
    if isinstance(tag_data, str):
        tag_data = load_json(tag_data, f"field {AWS_SAMPLE_FIELD!r}") if tag_data.strip() else {}
    if not isinstance(tag_data, dict):
        raise AnswerFormatError(f"field {AWS_SAMPLE_FIELD!r} must hold a JSON object")
    streams = tag_data.get("streams") or {}
    if not isinstance(streams, dict):
        raise AnswerFormatError("annotations.streams must be an object of category -> segment list")

    tracks: dict[tuple[str, str], dict[str, str]] = {}
    segments: list[dict[str, Any]] = []
    emotion_spec = schema.segment_field("emotion") if schema else None
    for raw_category, entries in streams.items():
        category = str(raw_category)
        spec = None
        if schema is not None:
            spec = next((t for t in schema.tracks if _norm(t.name) == _norm(category)), None)
            category = spec.name if spec else category
        if not isinstance(entries, list):
            raise AnswerFormatError(f"annotations.streams.{_norm(category)} must be a list")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise AnswerFormatError(f"annotations.streams.{_norm(category)}[{i}] must be an object")
            label = str(entry.get("id") or entry.get("tag") or "")
            label = AWS_SAMPLE_LABEL_ALIASES.get((_norm(category), _norm(label)), label)
            if spec is not None:
                label = _match(label, spec.labels)
            key = (category, label)
            if key not in tracks:
                tracks[key] = {"id": f"t{len(tracks) + 1}", "category": category, "label": label}
            seg: dict[str, Any] = {
                "id": f"s{len(segments) + 1}",
                "track": tracks[key]["id"],
                "start": entry.get("start"),
                "end": entry.get("end"),
                "text": entry.get("text") or "",
            }
            emotion = entry.get("emotion")
            if emotion:
                seg["attributes"] = {"emotion": _match(str(emotion), emotion_spec.options or [])
                                     if emotion_spec else str(emotion)}
            segments.append(seg)

    content: dict[str, Any] = {}
    for form_name, value in data.items():
        if form_name == AWS_SAMPLE_FIELD or form_name.startswith(CONTENT_FIELD_PREFIX):
            continue
        name = AWS_SAMPLE_CONTENT_FIELDS.get(form_name, _norm(form_name))
        if schema is None:
            content[name] = _plain_value(form_name, value)
            continue
        field = next((f for f in schema.content_fields if _norm(f.name) == _norm(name)), None)
        if field is None:
            continue
        checked = _checked(value) if isinstance(value, dict | list) else None
        if field.type == "rating":
            picked = checked if checked is not None else ([str(value)] if value not in (None, "") else [])
            content[field.name] = _number(picked[0]) if picked else None
        elif field.type == "multiple_choice":
            content[field.name] = [_match(v, field.options or []) for v in (checked or _checked(value))]
        elif field.type == "single_choice":
            picked = checked if checked is not None else _checked(value)
            content[field.name] = _match(picked[0], field.options or []) if picked else None
        elif field.type == "boolean":
            content[field.name] = bool(checked) if checked is not None else bool(value)
        else:
            content[field.name] = value if isinstance(value, str) else json.dumps(value)
    content = {k: v for k, v in content.items() if v is not None}

    ends = [s["end"] for s in segments if isinstance(s.get("end"), int | float)]
    duration = media_duration or (max(ends) if ends else None) or 1.0
    return SegmentationAnswer.model_validate({
        "labelSchema": schema.name if schema else None,
        "interactionId": interaction_id,
        "mediaDuration": duration,
        "tracks": list(tracks.values()),
        "segments": segments,
        "content": content,
    })


def _plain_value(form_name: str, value: Any) -> Any:
    """Schema-less mapping: checkbox maps -> list of checked values, `rate` -> number."""
    if isinstance(value, dict):
        checked = _checked(value)
        if form_name == "rate":
            return _number(checked[0]) if checked else None
        return checked
    return value


def _number(value: Any) -> int | float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else number
