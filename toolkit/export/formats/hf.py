"""`hf-audio` / `hf-video`: a Hugging Face dataset that carries the media.

Parquet shards under `--out` (`data/train-00000.parquet`, ...) plus a `README.md` dataset card whose
`configs` name them, so `datasets.load_dataset(out)` (or `load_dataset("parquet", data_files=...)`)
reads it. Parquet rather than `save_to_disk`: it is written row group by row group as items stream
in (memory stays bounded; `save_to_disk` needs the whole table, or a cache, before it writes), it
goes to `s3://` through the same atomic writer as every other output, and it is what the Hub
serves. The schema is built with `datasets.Features`, so the media column is a real `datasets.Audio`
(`datasets.Video` for hf-video) with the file's bytes embedded: the dataset is self-contained.

Rows per preset (docs/export.md has the columns):
- sft-transcription, reward-segments: by default one row per item, its whole media plus the segments
  (or spans) as a list with their offsets; with `--clips` one row per segment (span), its media
  cut at the segment boundaries (toolkit.export.media, sample-accurate).
- the others follow TRL's dataset types with the media as a proper field, the way TRL's vision
  datasets carry `images`: conversational `prompt`/`chosen`/`rejected`/`completion` whose content
  is a list of blocks, `{"type": "audio"}` (or `video`) where a medium goes and `{"type": "text",
  "text": ...}`, and the media themselves, in placeholder order, in an `audios` (`videos`) list. A
  record carries the media it is about: a segment's clip (preference-correction) or the item's whole
  media (sft-summary, kto, preference-ratings, dense-preference).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.export.formats.base import ExportError, Writer, join_uri
from toolkit.export.media import MediaError, MediaFiles, MediaInfo, cut_audio_spans, cut_video, read_and_remove
from toolkit.storage.names import file_stem

ROW_GROUP_BYTES = 64 << 20     # a row group is flushed at this much buffered media (or ROW_GROUP_ROWS rows)
ROW_GROUP_ROWS = 2_000
SHARD_BYTES = 512 << 20        # a new shard after this much media
SEGMENT_PRESETS = ("sft-transcription", "reward-segments")
FIELD_TYPES = {"rating": "float64", "text": "string", "single_choice": "string", "boolean": "bool"}


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:  # an optional extra: say which
        raise ExportError("the hf-audio/hf-video formats need the `datasets` library: pip install 'gtkit[media]'"
                          ) from exc
    return datasets


def lineage_feature(ds: Any) -> dict[str, Any]:
    v = ds.Value
    return {"interaction_id": v("string"), "source_ref": v("string"), "job_name": v("string"),
            "label_attribute": v("string"), "agreement": v("float64"), "creation_date": v("string"),
            "line": v("int64"), "segment_id": v("string")}


def typed_fields(ds: Any, specs: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        out[spec.name] = ds.List(ds.Value("string")) if spec.type == "multi_choice" else ds.Value(
            FIELD_TYPES.get(spec.type, "string"))
    return out


def coerce(specs: list[Any], values: dict[str, Any]) -> dict[str, Any]:
    """Values as their declared column types (a rating attribute given as an int, a choice as a list)."""
    out: dict[str, Any] = {}
    for spec in specs:
        value = values.get(spec.name)
        kind = spec.type
        if value is None:
            out[spec.name] = [] if kind == "multi_choice" else None
        elif kind == "multi_choice":
            out[spec.name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        elif kind == "rating":
            out[spec.name] = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        elif kind == "boolean":
            out[spec.name] = value if isinstance(value, bool) else None
        else:
            out[spec.name] = str(value[0] if isinstance(value, list) and value else value)
    return out


def message_feature(ds: Any) -> Any:
    return ds.List({"role": ds.Value("string"),
                    "content": ds.List({"type": ds.Value("string"), "text": ds.Value("string")})})


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def turns(system: str, role: str, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [{"role": "system", "content": [text_block(system)]}] if system else []
    out.append({"role": role, "content": blocks})
    return out


class HfDatasetWriter(Writer):
    media_kind = "audio"
    record_fields = None  # every record key, plus the item context
    extension = ".wav"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        ds = _datasets()
        self.ds = ds
        self.kind = self.preset.kind
        self.clips = bool(self.options.extra.get("clips"))
        if self.clips and self.kind not in SEGMENT_PRESETS:
            raise ExportError(f"--clips applies to {' and '.join(SEGMENT_PRESETS)}; preset {self.preset.name} "
                              f"({self.kind}) rows always carry the media they are about")
        self.record_fields = frozenset({"id", "system", "prompt", "completion", "chosen", "rejected", "media",
                                        "attributes", "lineage", "label", "score", "raw_score", "field", "spans",
                                        "chosen_score", "rejected_score", "margin", "candidates", "preferred",
                                        "completions", "labels", "steps", "prompt_key", "threshold", "context"})
        schema = self.preset.schema
        self.content_specs = list(schema.content_fields) if schema else []
        self.segment_specs = list(schema.segment_fields) if schema else []
        self.media = MediaFiles(self.storage)
        self.features = ds.Features(self._features())
        self.arrow_schema = self.features.arrow_schema
        self.rows: list[dict[str, Any]] = []
        self.buffered = 0
        self.shard_index = -1
        self.shard_bytes = SHARD_BYTES
        self.pq_writer: Any = None

    # -- columns ---------------------------------------------------------------------------------
    @property
    def media_feature(self) -> Any:
        return self.ds.Audio() if self.media_kind == "audio" else self.ds.Video()

    @property
    def media_list(self) -> str:
        return f"{self.media_kind}s"  # audios / videos, as TRL's vision datasets have `images`

    def _features(self) -> dict[str, Any]:
        ds, v = self.ds, self.ds.Value
        lin = lineage_feature(ds)
        fields = {"fields": typed_fields(ds, self.content_specs)} if self.content_specs else {}
        attrs = {"attributes": typed_fields(ds, self.segment_specs)} if self.segment_specs else {}
        span = {"start": v("float64"), "end": v("float64"), "track": v("string"), "label": v("string"),
                "text": v("string"), **attrs, "agreement": v("float64")}
        kind, media = self.kind, {self.media_kind: self.media_feature}
        msgs = message_feature(ds)
        media_list = {self.media_list: ds.List(self.media_feature)}
        if kind == "sft-transcription":
            if self.clips:
                return {"id": v("string"), **media, "start": v("float64"), "end": v("float64"), "track": v("string"),
                        "label": v("string"), "text": v("string"), **attrs, "language": v("string"), **fields,
                        "lineage": lin}
            return {"id": v("string"), **media, "duration": v("float64"), "language": v("string"), **fields,
                    "segments": ds.List({"id": v("string"), **span}), "lineage": lin}
        if kind == "reward-segments":
            scores = {"field": v("string"), "score": v("float64"), "raw_score": v("float64")}
            if self.clips:
                return {"id": v("string"), **media, **span, "support": v("int64"), **scores, **fields, "lineage": lin}
            return {"id": v("string"), **media, "duration": v("float64"), **scores, **fields,
                    "spans": ds.List({**span, "support": v("int64")}), "lineage": lin}
        if kind == "preference-correction":
            return {"id": v("string"), "prompt": msgs, "chosen": msgs, "rejected": msgs, **media_list,
                    "start": v("float64"), "end": v("float64"), "lineage": lin}
        if kind == "sft-summary":
            return {"id": v("string"), "prompt": msgs, "completion": msgs, **media_list, **fields, "lineage": lin}
        if kind == "kto":
            return {"id": v("string"), "prompt": msgs, "completion": msgs, "label": v("bool"), "score": v("float64"),
                    **media_list, **fields, "lineage": lin}
        if kind == "preference-ratings":
            return {"id": v("string"), "prompt": msgs, "chosen": msgs, "rejected": msgs, **media_list,
                    "chosen_score": v("float64"), "rejected_score": v("float64"), "margin": v("float64"),
                    "lineage": {"chosen": lin, "rejected": lin}}
        if kind == "dense-preference":
            cand = {"key": v("string"), "source": v("string"), "system": v("string"), "uri": v("string")}
            dspan = {"start": v("float64"), "end": v("float64"), "segment_id": v("string"), "track": v("string"),
                     "label": v("string"), "preferred": v("string"), "strength": v("float64"),
                     "reason": v("string"), "texts": {"a": v("string"), "b": v("string")},
                     "agreement": v("float64")}
            return {"id": v("string"), "prompt": msgs, **media_list, "candidates": ds.List(cand),
                    "preferred": v("string"), "spans": ds.List(dspan), "lineage": lin}
        raise ExportError(f"preset kind {kind} has no {self.media_kind} dataset layout")

    # -- media -------------------------------------------------------------------------------------
    def whole(self, uri: str) -> dict[str, Any]:
        info = self.media.get(uri)
        self._check_kind(info, uri)
        return {"bytes": info.path.read_bytes(), "path": Path(uri).name}

    def _check_kind(self, info: MediaInfo, uri: str) -> None:
        if self.media_kind == "video" and info.kind != "video":
            raise MediaError(f"{uri}: no video stream (use hf-audio for audio)")
        if self.media_kind == "audio" and not info.sample_rate:
            raise MediaError(f"{uri}: no audio stream (use hf-video for video)")

    def clips_of(self, uri: str, spans: list[tuple[str, float, float]]) -> list[dict[str, Any]]:
        """(name, start s, end s) -> `{"bytes", "path"}` of each cut, in order."""
        info = self.media.get(uri)
        self._check_kind(info, uri)
        if self.media_kind == "video":
            out = []
            for name, start, end in spans:
                path = self.media.clip_path(f"{file_stem(name)}.mp4")
                cut_video(info.path, start, end, path, uri)
                out.append({"bytes": read_and_remove(path), "path": path.name})
            return out
        paths = [self.media.clip_path(f"{file_stem(name)}{self.extension}") for name, _, _ in spans]
        cut_audio_spans(info, [(s, e) for _, s, e in spans], paths, uri=uri)
        return [{"bytes": read_and_remove(p), "path": p.name} for p in paths]

    # -- rows --------------------------------------------------------------------------------------
    def rows_of(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kind = self.kind
        first = records[0]
        if kind == "sft-transcription":
            return self._transcription_rows(records)
        if kind == "reward-segments":
            return [row for record in records for row in self._reward_rows(record)]
        if kind == "preference-ratings":
            return [self._rating_pair_row(r) for r in records]
        uri = first["lineage"]["source_ref"]
        if kind == "preference-correction":
            return self._correction_rows(uri, records)
        media = self.whole(uri)
        return [self._item_row(record, media) for record in records]

    def _fields(self, record: dict[str, Any]) -> dict[str, Any]:
        if not self.content_specs:
            return {}
        return {"fields": coerce(self.content_specs, record.get("context", {}).get("fields", {}))}

    def _attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {"attributes": coerce(self.segment_specs, attrs)} if self.segment_specs else {}

    def _transcription_rows(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        first = records[0]
        uri, context = first["media"]["uri"], first.get("context", {})
        if self.clips:
            cuts = self.clips_of(uri, [(r["id"], r["media"]["start"], r["media"]["end"]) for r in records])
            return [{"id": r["id"], self.media_kind: cut, "start": r["media"]["start"], "end": r["media"]["end"],
                     "track": r["media"]["track"], "label": r["media"]["label"], "text": r["completion"],
                     **self._attrs(r["attributes"]), "language": context.get("language"), **self._fields(r),
                     "lineage": r["lineage"]} for r, cut in zip(records, cuts, strict=True)]
        segments = [{"id": r["lineage"]["segment_id"], "start": r["media"]["start"], "end": r["media"]["end"],
                     "track": r["media"]["track"], "label": r["media"]["label"], "text": r["completion"],
                     **self._attrs(r["attributes"]), "agreement": r["lineage"]["agreement"]} for r in records]
        item_lineage = {**first["lineage"], "agreement": None, "segment_id": None}
        return [{"id": item_lineage["interaction_id"], self.media_kind: self.whole(uri),
                 "duration": context.get("duration"), "language": context.get("language"), **self._fields(first),
                 "segments": segments, "lineage": item_lineage}]

    def _span(self, span: dict[str, Any]) -> dict[str, Any]:
        return {"start": span["start"], "end": span["end"], "track": span["track"], "label": span["label"],
                "text": span["text"], **self._attrs(span["attributes"]), "agreement": span["agreement"],
                "support": span["support"]}

    def _reward_rows(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        scores = {"field": record["field"], "score": record["score"], "raw_score": record["raw_score"]}
        uri = record["source_ref"]
        if not self.clips:
            return [{"id": record["id"], self.media_kind: self.whole(uri), "duration": record["duration"], **scores,
                     **self._fields(record), "spans": [self._span(s) for s in record["spans"]],
                     "lineage": record["lineage"]}]
        spans = record["spans"]
        if not spans:
            return []
        names = [f"{record['id']}/{i + 1}" for i in range(len(spans))]
        cuts = self.clips_of(uri, [(n, s["start"], s["end"]) for n, s in zip(names, spans, strict=True)])
        return [{"id": name, self.media_kind: cut, **self._span(span), **scores, **self._fields(record),
                 "lineage": record["lineage"]} for name, span, cut in zip(names, spans, cuts, strict=True)]

    def _placeholder(self) -> dict[str, Any]:
        return {"type": self.media_kind, "text": None}

    def _correction_rows(self, uri: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        segment = [r for r in records if r["media"]["track"] != "content"]
        cuts = dict(zip([r["id"] for r in segment], self.clips_of(
            uri, [(r["id"], r["media"]["start"], r["media"]["end"]) for r in segment]) if segment else [],
            strict=True))
        rows = []
        for r in records:
            media = cuts.get(r["id"]) or self.whole(uri)
            rows.append({"id": r["id"], "prompt": turns(r["system"], "user", [self._placeholder(),
                                                                              text_block(r["prompt"])]),
                         "chosen": turns("", "assistant", [text_block(r["chosen"])]),
                         "rejected": turns("", "assistant", [text_block(r["rejected"])]),
                         self.media_list: [media], "start": r["media"]["start"], "end": r["media"]["end"],
                         "lineage": r["lineage"]})
        return rows

    def _item_row(self, r: dict[str, Any], media: dict[str, Any]) -> dict[str, Any]:
        kind = self.kind
        if kind == "sft-summary":
            return {"id": r["id"], "prompt": turns(r["system"], "user", [self._placeholder(), text_block(r["prompt"])]),
                    "completion": turns("", "assistant", [text_block(r["completion"])]), self.media_list: [media],
                    **self._fields(r), "lineage": r["lineage"]}
        if kind == "kto":  # the media is the completion (text-to-speech, video generation)
            return {"id": r["id"], "prompt": turns(r["system"], "user", [text_block(r["prompt"])]),
                    "completion": turns("", "assistant", [self._placeholder()]), "label": bool(r["label"]),
                    "score": r["score"], self.media_list: [media], **self._fields(r), "lineage": r["lineage"]}
        # dense-preference: both candidates are read off the one media (a compare task's have their own)
        return {"id": r["id"], "prompt": turns(r["system"], "user", [self._placeholder(), text_block(r["prompt"])]),
                self.media_list: [media], "candidates": r["candidates"], "preferred": r["preferred"],
                "spans": r["spans"], "lineage": r["lineage"]}

    def _rating_pair_row(self, r: dict[str, Any]) -> dict[str, Any]:
        chosen = self.whole(r["lineage"]["chosen"]["source_ref"])
        rejected = self.whole(r["lineage"]["rejected"]["source_ref"])
        return {"id": r["id"], "prompt": turns(r["system"], "user", [text_block(r["prompt"])]),
                "chosen": turns("", "assistant", [self._placeholder()]),
                "rejected": turns("", "assistant", [self._placeholder()]),
                self.media_list: [chosen, rejected], "chosen_score": r["chosen_score"],
                "rejected_score": r["rejected_score"], "margin": r["margin"], "lineage": r["lineage"]}

    # -- writing -----------------------------------------------------------------------------------
    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        try:
            rows = self.rows_of(records)
        except MediaError as exc:
            self.not_exported(records, "media-unreadable", str(exc))
            return
        for row in rows:
            self.rows.append(row)
            self.buffered += sum(len(m["bytes"]) for m in self._media_of(row))
            self.written += 1
            if self.buffered >= ROW_GROUP_BYTES or len(self.rows) >= ROW_GROUP_ROWS:
                self.flush()

    def _media_of(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        media = row.get(self.media_kind)
        return [media] if media else row.get(self.media_list, [])

    def flush(self) -> None:
        import pyarrow as pa

        if self.pq_writer is None or self.shard_bytes >= SHARD_BYTES:
            self._next_shard()
        table = pa.Table.from_pylist(self.rows, schema=self.arrow_schema)
        self.pq_writer.write_table(table)
        self.shard_bytes += self.buffered
        self.rows, self.buffered = [], 0

    def _next_shard(self) -> None:
        import pyarrow.parquet as pq

        if self.pq_writer is not None:
            self.pq_writer.close()
        self.shard_index += 1
        fh = self.open(join_uri(self.out, "data", f"train-{self.shard_index:05d}.parquet"),
                       content_type="application/vnd.apache.parquet")
        self.pq_writer = pq.ParquetWriter(fh, self.arrow_schema, compression="zstd")
        self.shard_bytes = 0

    def finish(self) -> None:
        if self.rows or self.pq_writer is None:
            self.flush()  # an empty export still gets one (empty) shard with the schema
        self.pq_writer.close()
        self.media.close()
        card = dataset_card(self.preset.name, self.kind, self.media_kind, self.clips, self.written)
        self.open(join_uri(self.out, "README.md"), content_type="text/markdown").write(card.encode("utf-8"))

    def close(self, error: BaseException | None) -> None:
        if error is not None:
            self.media.close()
        super().close(error)


class HfVideoWriter(HfDatasetWriter):
    media_kind = "video"


def dataset_card(preset: str, kind: str, media: str, clips: bool, rows: int) -> str:
    layout = ("one row per segment, its media cut at the segment boundaries" if clips else
              "one row per item, its whole media with the segments' offsets" if kind in SEGMENT_PRESETS else
              f"TRL-style rows with the {media} in `{media}s`")
    return "\n".join([
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/train-*.parquet",
        "---",
        "",
        f"# {preset} ({media})",
        "",
        f"Exported by `gtkit export --preset {preset} --format hf-{media}{' --clips' if clips else ''}`: {rows} rows, "
        f"{layout}. Load it with `datasets.load_dataset(<this directory>, split=\"train\")`; the `{media}` "
        "column decodes with torchcodec. Texts are PII-masked unless the export ran with --no-redact; "
        "`lineage` says which labeling job, manifest line and segment each row came from.",
        "",
    ])

