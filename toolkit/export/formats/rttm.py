"""`rttm`: NIST RTTM speaker turns, one `SPEAKER` line per segment, for the segment presets.

`SPEAKER <file-id> 1 <onset> <duration> <NA> <NA> <name> <NA> <NA>`; file id = interaction id,
name = track label (prefixed `category:` when several track categories are exported), whitespace
replaced by `_` (RTTM fields are whitespace separated). Only the preset's `rttm_tracks` (default:
the `speaker` category when the schema has one, else all). Lineage: `<out>.provenance.jsonl`.
"""

from __future__ import annotations

import re
from typing import Any

from toolkit.export.formats.base import Provenance, Writer, basename, sidecar_uri

WS = re.compile(r"\s+")


def field(value: str) -> str:
    return WS.sub("_", value.strip()) or "<NA>"


def spans_of(kind: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    if kind == "reward-segments":
        return record["spans"]
    media = record["media"]
    return [{"start": media["start"], "end": media["end"], "track": media["track"], "label": media["label"]}]


class RttmWriter(Writer):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tracks = self.preset.rttm_tracks()

    def _open(self) -> None:
        self.fh = self.open(self.out, content_type="text/plain")
        self.provenance = Provenance(self.open(sidecar_uri(self.out)))

    def write(self, records: list[dict[str, Any]]) -> None:
        if not self.files:
            self._open()
        prefix = self.tracks is None or len(self.tracks) > 1
        name = basename(self.out)
        for record in records:
            file_id = field(record["lineage"]["interaction_id"])
            for span in spans_of(self.preset.kind, record):
                if self.tracks is not None and span["track"] not in self.tracks:
                    continue
                speaker = f"{span['track']}:{span['label']}" if prefix else span["label"]
                duration = span["end"] - span["start"]
                line = (f"SPEAKER {file_id} 1 {span['start']:.3f} {duration:.3f} <NA> <NA> "
                        f"{field(speaker)} <NA> <NA>\n")
                self.fh.write(line.encode("utf-8"))
                lineage = dict(record["lineage"])
                self.provenance.add(name, self.written, {"id": record["id"], "lineage": lineage})
                self.written += 1

    def finish(self) -> None:
        if not self.files:
            self._open()
