"""Amazon Transcribe batch output (the TranscriptFileUri JSON) -> speaker turns.

Turns come from `results.speaker_labels.segments` when present (so boundaries match Transcribe's
exactly), else from runs of `speaker_label` over `results.items`, else, for channel identification
(a stereo call: agent and customer on their own channels), from each channel's words on its own:
both sides may talk at once, so a channel's turn ends at a pause of CHANNEL_PAUSE seconds, not
when the other channel speaks.
Each turn's text is its words re-joined, punctuation attached to the preceding word.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from toolkit.errors import GtkitError

CHANNEL_PAUSE = 1.0  # seconds of silence on a channel that end its turn


class TranscribeError(GtkitError, ValueError):
    """The Transcribe JSON is not in the shape we read; the message names the field."""


@dataclass(frozen=True)
class SpeakerTurn:
    speaker: str
    start: float
    end: float
    text: str
    # (start, end, text) per word, punctuation attached to the word before it (as in `text`)
    words: tuple[tuple[float, float, str], ...] = ()


@dataclass(frozen=True)
class _Item:
    index: int
    kind: str  # pronunciation | punctuation
    content: str
    start: float | None
    end: float | None
    speaker: str | None


def _seconds(value: Any, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise TranscribeError(f"{where}: expected seconds as a number or numeric string") from None
    if seconds < 0:
        raise TranscribeError(f"{where}: negative time")
    return seconds


def _items(results: dict[str, Any]) -> list[_Item]:
    raw = results.get("items", [])
    if not isinstance(raw, list):
        raise TranscribeError("results.items: expected a list")
    items = []
    for i, item in enumerate(raw):
        where = f"results.items[{i}]"
        if not isinstance(item, dict):
            raise TranscribeError(f"{where}: expected an object")
        alternatives = item.get("alternatives") or []
        if not alternatives or not isinstance(alternatives[0], dict) or "content" not in alternatives[0]:
            raise TranscribeError(f"{where}.alternatives: missing content")
        kind = item.get("type", "pronunciation")
        start = end = None
        if kind == "pronunciation":
            start = _seconds(item.get("start_time"), f"{where}.start_time")
            end = _seconds(item.get("end_time"), f"{where}.end_time")
        speaker = item.get("speaker_label") or item.get("channel_label")
        items.append(_Item(i, kind, str(alternatives[0]["content"]), start, end, speaker))
    return items


def _word_timings(items: list[_Item]) -> tuple[tuple[float, float, str], ...]:
    words: list[tuple[float, float, str]] = []
    for item in items:
        if item.kind == "punctuation":
            if words:
                start, end, text = words[-1]
                words[-1] = (start, end, text + item.content)
        elif item.start is not None and item.end is not None:
            words.append((item.start, item.end, item.content))
    return tuple(words)


def _join(words: list[_Item]) -> str:
    text = ""
    for item in words:
        if item.kind == "punctuation" or not text:
            text += item.content
        else:
            text += " " + item.content
    return text


def _assign_by_segments(items: list[_Item], segments: list[tuple[str, float, float]]) -> list[list[_Item]]:
    """Words go to the segment of their speaker that contains their start; punctuation follows."""
    by_speaker: dict[str, list[int]] = {}
    for n, (speaker, _, _) in enumerate(segments):
        by_speaker.setdefault(speaker, []).append(n)
    starts = {s: [segments[n][1] for n in ns] for s, ns in by_speaker.items()}
    buckets: list[list[_Item]] = [[] for _ in segments]
    last: int | None = None
    for item in items:
        if item.kind == "punctuation":
            if last is not None:
                buckets[last].append(item)
            continue
        target = None
        candidates = by_speaker.get(item.speaker or "", [])
        if candidates:
            pos = bisect.bisect_right(starts[item.speaker or ""], item.start + 1e-6) - 1  # type: ignore[operator]
            if pos >= 0:
                n = candidates[pos]
                if item.start <= segments[n][2] + 1e-6:  # type: ignore[operator]
                    target = n
        if target is None:
            # Items without a speaker (or outside every turn of theirs): nearest turn by time.
            target = min(range(len(segments)), key=lambda n: _distance(item, segments[n]))
        buckets[target].append(item)
        last = target
    return buckets


def _distance(item: _Item, segment: tuple[str, float, float]) -> float:
    _, start, end = segment
    t = item.start or 0.0
    return 0.0 if start <= t <= end else min(abs(t - start), abs(t - end))


def _runs(items: list[_Item]) -> list[tuple[str, float, float]]:
    runs: list[tuple[str, float, float]] = []
    for item in items:
        if item.kind != "pronunciation" or item.speaker is None:
            continue
        if runs and runs[-1][0] == item.speaker:
            speaker, start, _ = runs[-1]
            runs[-1] = (speaker, start, item.end)  # type: ignore[assignment]
        else:
            runs.append((item.speaker, item.start, item.end))  # type: ignore[arg-type]
    return runs


def _channel_items(results: dict[str, Any], items: list[_Item]) -> list[_Item]:
    """Items with their channel: the top-level items when they carry `channel_label`, else those of
    `channel_labels.channels[].items` (in time order)."""
    if any(i.speaker for i in items):
        return items
    channels = (results.get("channel_labels") or {}).get("channels")
    if not isinstance(channels, list):
        return items
    out: list[_Item] = []
    for c, channel in enumerate(channels):
        if not isinstance(channel, dict) or not isinstance(channel.get("items"), list):
            raise TranscribeError(f"results.channel_labels.channels[{c}].items: expected a list")
        label = channel.get("channel_label") or f"ch_{c}"
        for item in _items({"items": channel["items"]}):
            out.append(_Item(len(out), item.kind, item.content, item.start, item.end, item.speaker or label))
    return sorted(out, key=lambda i: (i.start if i.start is not None else -1.0, i.index))


def _channel_runs(items: list[_Item]) -> list[tuple[str, float, float]]:
    """Per channel, runs of words split at pauses of CHANNEL_PAUSE or more."""
    runs: list[tuple[str, float, float]] = []
    open_run: dict[str, int] = {}
    for item in items:
        if item.kind != "pronunciation" or item.speaker is None:
            continue
        n = open_run.get(item.speaker)
        if n is not None and item.start - runs[n][2] < CHANNEL_PAUSE:  # type: ignore[operator]
            runs[n] = (item.speaker, runs[n][1], max(runs[n][2], item.end))  # type: ignore[type-var]
        else:
            open_run[item.speaker] = len(runs)
            runs.append((item.speaker, item.start, item.end))  # type: ignore[arg-type]
    return runs


def speaker_turns(document: Any) -> list[SpeakerTurn]:
    """Speaker turns of a Transcribe output document, in time order. [] when not diarized."""
    if not isinstance(document, dict) or not isinstance(document.get("results"), dict):
        raise TranscribeError("results: missing; not an Amazon Transcribe output document")
    results = document["results"]
    items = _items(results)
    labels = results.get("speaker_labels")
    segments: list[tuple[str, float, float]] = []
    if isinstance(labels, dict) and labels.get("segments"):
        for i, seg in enumerate(labels["segments"]):
            where = f"results.speaker_labels.segments[{i}]"
            if not isinstance(seg, dict) or not seg.get("speaker_label"):
                raise TranscribeError(f"{where}.speaker_label: missing")
            start = _seconds(seg.get("start_time"), f"{where}.start_time")
            end = _seconds(seg.get("end_time"), f"{where}.end_time")
            if end <= start:
                raise TranscribeError(f"{where}: end_time must be after start_time")
            segments.append((str(seg["speaker_label"]), start, end))
    elif results.get("channel_labels"):
        items = _channel_items(results, items)
        segments = _channel_runs(items)
    else:
        segments = _runs(items)
    if not segments:
        return []
    buckets = _assign_by_segments(items, segments)
    turns = [SpeakerTurn(speaker, start, end, _join(words), _word_timings(words))
             for (speaker, start, end), words in zip(segments, buckets, strict=True)]
    return sorted(turns, key=lambda t: (t.start, t.end))


def transcript_text(document: Any) -> str | None:
    try:
        return document["results"]["transcripts"][0]["transcript"]
    except (KeyError, IndexError, TypeError):
        return None
