"""`webvtt`: one WebVTT file per item under `--out` (directory or s3:// prefix): `<interaction-id>.vtt`.

Cues in start order, `HH:MM:SS.mmm` timings, `<v label>` voice spans, payload `&`/`<`/`>` escaped and
blank lines removed. Lineage goes in a `NOTE` block after the header; each cue is preceded by a
`NOTE` with its agreement. Each file is written atomically on its own. An item without spans gets
a file with its header and lineage only (valid WebVTT without any cue).

Line terminators decide where WebVTT blocks end, and parsers disagree on which characters are
ones (the spec: CR, LF, CRLF; Python's str.splitlines also splits on U+2028, VT, FF...): fields
that must stay on one line (header, NOTE, cue id, voice) get every such character as a space, and
cue text gets them as LF, with blank lines dropped.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from toolkit.export.formats.base import Writer, join_uri
from toolkit.storage.names import file_stem

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
BLANK_LINES = re.compile(r"\n\s*\n+")
# Every character str.splitlines() breaks on (a superset of WebVTT's CR, LF and CRLF).
LINE_BREAKS = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def vtt_stem(interaction_id: str) -> str:
    """The id itself when it is a safe file name already (`int-0001`), else `file_stem`'s readable
    name + hash, so ids that sanitise alike (`a/b`, `a_b`) never share (and overwrite) one file."""
    if interaction_id and not SAFE_NAME.search(interaction_id) and not interaction_id.startswith("."):
        return interaction_id
    return file_stem(interaction_id)


def timestamp(seconds: float) -> str:
    millis = round(max(0.0, seconds) * 1000)
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def one_line(text: str) -> str:
    return LINE_BREAKS.sub(" ", text)


def note_safe(text: str) -> str:
    return one_line(text).replace("-->", "--&gt;")


def cue_id(text: str) -> str:
    return note_safe(text).strip() or "cue"


def payload(text: str) -> str:
    """Cue text: line breaks as LF, no blank line (it would end the cue), markup escaped."""
    return escape(BLANK_LINES.sub("\n", LINE_BREAKS.sub("\n", text.strip())).strip())


def cues_of(kind: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if kind == "reward-segments":
        return [dict(span, id=f"{i + 1}") for r in records for i, span in enumerate(r["spans"])]
    return [{"id": r["lineage"]["segment_id"] or r["id"], "start": r["media"]["start"], "end": r["media"]["end"],
             "track": r["media"]["track"], "label": r["media"]["label"], "text": r["completion"],
             "agreement": r["lineage"]["agreement"]} for r in records]


def render(interaction_id: str, lineage: dict[str, Any], cues: list[dict[str, Any]]) -> str:
    item_lineage = {k: v for k, v in lineage.items() if k not in ("segment_id", "agreement")}
    out = [f"WEBVTT - {note_safe(interaction_id)}", "", "NOTE lineage " +
           note_safe(orjson.dumps(item_lineage).decode()), ""]
    for cue in sorted(cues, key=lambda c: (c["start"], c["end"])):
        if cue["end"] <= cue["start"]:
            continue
        out.append(f"NOTE {note_safe(cue['track'])}:{note_safe(cue['label'])} agreement={cue.get('agreement')}")
        out.append("")
        out.append(cue_id(str(cue["id"])))
        out.append(f"{timestamp(cue['start'])} --> {timestamp(cue['end'])}")
        out.append(f"<v {escape(one_line(cue['label']))}>{payload(cue.get('text') or cue['label'])}</v>")
        out.append("")
    return "\n".join(out)


class WebvttWriter(Writer):
    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        lineage = records[0]["lineage"]
        interaction_id = lineage["interaction_id"]
        text = render(interaction_id, lineage, cues_of(self.preset.kind, records))
        uri = join_uri(self.out, f"{vtt_stem(interaction_id)}.vtt")
        self.storage.write_bytes(uri, text.encode("utf-8"), content_type="text/vtt")
        self.files.append(uri)
        self.written += 1
