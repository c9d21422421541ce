"""`lhotse` and `nemo`: speech-toolkit manifests plus the audio they point at, under `--out`.

Both copy each item's media into `<out>/audio/` (or, with `--clips`, cut every segment into
`<out>/clips/`, sample-accurately: toolkit.export.media) and refer to it by a path relative to
`--out`, so the directory is a self-contained corpus wherever it is moved.

- `lhotse`: `recordings.jsonl.gz` (a RecordingSet) and `supervisions.jsonl.gz` (a SupervisionSet),
  each object made by the lhotse library (`Recording.from_file` reads the audio's rate, channels and
  sample count) and written as lhotse writes them (`to_dict()` per line, gzip). A supervision carries
  the text, the speaker (a speaker-track segment's label), the item's language and, in `custom`,
  the track, label, attributes, agreement, the item's content fields and the lineage. Load with
  `lhotse.load_manifest(...)` and `RecordingSet.with_path_prefix(<out>)`.
- `nemo`: `manifest.json`, NeMo's ASR/TTS manifest lines (`audio_filepath` relative to the manifest's
  directory, `offset`, `duration`, `text`, `speaker`, `lang`), lineage row for row in
  `manifest.provenance.jsonl`.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import IO, Any

import orjson

from toolkit.export.formats.base import ExportError, Provenance, Writer, dumps, join_uri
from toolkit.export.media import MediaError, MediaFiles, MediaInfo, cut_audio_spans, to_samples
from toolkit.storage.names import file_stem

AUDIO_DIR = "audio"
CLIP_DIR = "clips"
SPEECH_FIELDS = frozenset({"id", "completion", "media", "attributes", "lineage", "spans", "source_ref", "score",
                           "raw_score", "field", "context"})


class SpeechWriter(Writer):
    """Shared by lhotse and nemo: the item's media copied (or cut) under `--out`."""

    record_fields = SPEECH_FIELDS

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.clips = bool(self.options.extra.get("clips"))
        self.media = MediaFiles(self.storage)
        self.names: set[str] = set()

    def source(self, uri: str) -> MediaInfo:
        info = self.media.get(uri)
        if not info.sample_rate:
            raise MediaError(f"{uri}: no audio stream")
        return info

    def _unique(self, name: str) -> str:
        if name in self.names:  # file_stem hashes the exact id: a repeat is a collision, never an overwrite
            raise ExportError(f"two records map to the media file {name}")
        self.names.add(name)
        return name

    def whole_path(self, uri: str, interaction_id: str) -> str:
        """`audio/<interaction id + hash><suffix>`: where an item's media goes under --out."""
        return f"{AUDIO_DIR}/{self._unique(file_stem(interaction_id) + (Path(uri).suffix.lower() or '.wav'))}"

    def copy_whole(self, info: MediaInfo, rel: str) -> None:
        with open(info.path, "rb") as src:
            shutil.copyfileobj(src, self.open(join_uri(self.out, rel), content_type="application/octet-stream"),
                               1 << 20)

    def cut(self, uri: str, info: MediaInfo, spans: list[tuple[str, float, float]]) -> list[tuple[str, Path]]:
        """Clips of (record id, start, end) into scratch; returns (relative path, local clip) per span."""
        names = [self._unique(f"{file_stem(rid)}.wav") for rid, _, _ in spans]
        paths = [self.media.clip_path(n) for n in names]
        cut_audio_spans(info, [(s, e) for _, s, e in spans], paths, uri=uri)
        return [(f"{CLIP_DIR}/{n}", p) for n, p in zip(names, paths, strict=True)]

    def upload(self, rel: str, local: Path) -> None:
        with open(local, "rb") as src:
            shutil.copyfileobj(src, self.open(join_uri(self.out, rel), content_type="audio/wav"), 1 << 20)
        local.unlink(missing_ok=True)

    def spans_of(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One entry per segment (sft-transcription) or labelled span (reward-segments)."""
        if self.preset.kind == "reward-segments":
            out = []
            for r in records:
                for i, span in enumerate(r["spans"]):
                    out.append({"id": f"{r['id']}/{i + 1}", "start": span["start"], "end": span["end"],
                                "track": span["track"], "label": span["label"], "text": span["text"],
                                "attributes": span["attributes"], "agreement": span["agreement"],
                                "custom": {"support": span["support"], "field": r["field"], "score": r["score"],
                                           "raw_score": r["raw_score"]},
                                "lineage": r["lineage"], "context": r.get("context", {})})
            return out
        return [{"id": r["id"], "start": r["media"]["start"], "end": r["media"]["end"], "track": r["media"]["track"],
                 "label": r["media"]["label"], "text": r["completion"], "attributes": r["attributes"],
                 "agreement": r["lineage"]["agreement"], "custom": {}, "lineage": r["lineage"],
                 "context": r.get("context", {})} for r in records]

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        spans = self.spans_of(records)
        if not spans:
            return
        uri = records[0]["lineage"]["source_ref"]
        try:
            info = self.source(uri)
            self.write_item(uri, info, spans)
        except MediaError as exc:
            self.not_exported(records, "media-unreadable", str(exc))

    def write_item(self, uri: str, info: MediaInfo, spans: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self, error: BaseException | None) -> None:
        self.media.close()
        super().close(error)


def _gzip_lines(fh: IO[bytes]) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=fh, mode="wb", mtime=0)  # mtime 0: the same manifest, the same bytes


class LhotseWriter(SpeechWriter):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        try:
            import lhotse
        except ImportError as exc:
            raise ExportError("--format lhotse needs the lhotse library: pip install 'gtkit[media]'") from exc
        self.lhotse = lhotse
        self.recordings: gzip.GzipFile | None = None
        self.supervisions: gzip.GzipFile | None = None

    def _open(self) -> None:
        self.recordings = _gzip_lines(self.open(join_uri(self.out, "recordings.jsonl.gz"), "application/gzip"))
        self.supervisions = _gzip_lines(self.open(join_uri(self.out, "supervisions.jsonl.gz"), "application/gzip"))

    def recording(self, local: Path, recording_id: str, rel: str) -> Any:
        rec = self.lhotse.Recording.from_file(str(local), recording_id=recording_id)
        return self.lhotse.Recording(  # lhotse's own facts, the source relative to --out
            id=rec.id, sampling_rate=rec.sampling_rate, num_samples=rec.num_samples, duration=rec.duration,
            channel_ids=rec.channel_ids,
            sources=[self.lhotse.AudioSource(type="file", channels=rec.channel_ids, source=rel)])

    def supervision(self, span: dict[str, Any], recording: Any, start: float, duration: float) -> Any:
        context = span["context"]
        channel = recording.channel_ids[0] if len(recording.channel_ids) == 1 else recording.channel_ids
        custom = {"track": span["track"], "label": span["label"], "attributes": span["attributes"],
                  "agreement": span["agreement"], **span["custom"], "fields": context.get("fields", {}),
                  "lineage": span["lineage"]}
        return self.lhotse.SupervisionSegment(
            id=span["id"], recording_id=recording.id, start=start, duration=duration, channel=channel,
            text=span["text"] or None, language=context.get("language"),
            speaker=span["label"] if span["track"] == "speaker" else None, custom=custom)

    def validate(self, uri: str, recordings: list[Any], supervisions: list[Any]) -> None:
        """lhotse's own checks (a supervision past the end of its recording, ...) before anything is written."""
        from lhotse.qa import validate_recordings_and_supervisions

        try:
            validate_recordings_and_supervisions(self.lhotse.RecordingSet.from_recordings(recordings),
                                                 self.lhotse.SupervisionSet.from_segments(supervisions))
        except (AssertionError, ValueError) as exc:
            raise MediaError(f"{uri}: lhotse validation: {str(exc).splitlines()[0] if str(exc) else 'failed'}"
                             ) from exc

    def write_item(self, uri: str, info: MediaInfo, spans: list[dict[str, Any]]) -> None:
        if self.recordings is None:
            self._open()
        assert self.recordings is not None and self.supervisions is not None
        lines_r, lines_s, uploads = [], [], []
        if self.clips:
            for span, (rel, local) in zip(spans, self.cut(uri, info, [(s["id"], s["start"], s["end"])
                                                                      for s in spans]), strict=True):
                rec = self.recording(local, span["id"], rel)
                uploads.append((rel, local))
                sup = self.supervision(span, rec, 0.0, rec.duration)
                sup.custom["source_start"], sup.custom["source_end"] = span["start"], span["end"]
                lines_r.append(rec)
                lines_s.append(sup)
        else:
            rel = self.whole_path(uri, spans[0]["lineage"]["interaction_id"])
            rec = self.recording(info.path, spans[0]["lineage"]["interaction_id"], rel)
            lines_r.append(rec)
            lines_s += [self.supervision(s, rec, s["start"], round(s["end"] - s["start"], 6)) for s in spans]
        self.validate(uri, lines_r, lines_s)
        for rel, local in uploads:
            self.upload(rel, local)
        if not self.clips:
            self.copy_whole(info, rel)
        self.recordings.write(b"".join(dumps(r.to_dict()) for r in lines_r))
        self.supervisions.write(b"".join(dumps(s.to_dict()) for s in lines_s))
        self.written += len(lines_s)

    def finish(self) -> None:
        if self.recordings is None:
            self._open()
        assert self.recordings is not None and self.supervisions is not None
        self.recordings.close()
        self.supervisions.close()


class NemoWriter(SpeechWriter):
    def _open(self) -> None:
        self.fh = self.open(join_uri(self.out, "manifest.json"))
        self.provenance = Provenance(self.open(join_uri(self.out, "manifest.provenance.jsonl")))

    def line(self, span: dict[str, Any], path: str, offset: float | None, duration: float) -> dict[str, Any]:
        out: dict[str, Any] = {"audio_filepath": path}
        if offset is not None:
            out["offset"] = offset
        out["duration"] = duration
        out["text"] = span["text"]
        if span["track"] == "speaker":
            out["speaker"] = span["label"]
        language = span["context"].get("language")
        if language:
            out["lang"] = language
        return out

    def write_item(self, uri: str, info: MediaInfo, spans: list[dict[str, Any]]) -> None:
        if not self.files:
            self._open()
        if self.clips:
            assert info.sample_rate is not None
            rows = []
            for span, (rel, local) in zip(spans, self.cut(uri, info, [(s["id"], s["start"], s["end"])
                                                                      for s in spans]), strict=True):
                samples = to_samples(span["end"], info.sample_rate) - to_samples(span["start"], info.sample_rate)
                self.upload(rel, local)
                rows.append((span, self.line(span, rel, None, round(max(samples, 1) / info.sample_rate, 6))))
        else:
            rel = self.whole_path(uri, spans[0]["lineage"]["interaction_id"])
            self.copy_whole(info, rel)
            rows = [(s, self.line(s, rel, s["start"], round(s["end"] - s["start"], 6))) for s in spans]
        for span, line in rows:
            self.fh.write(orjson.dumps(line) + b"\n")
            self.provenance.add("manifest.json", self.written, {"id": span["id"], "lineage": span["lineage"]})
            self.written += 1

    def finish(self) -> None:
        if not self.files:
            self._open()
