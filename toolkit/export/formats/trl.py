"""`trl`: Hugging Face TRL conversational datasets.

sft-transcription -> `messages` (language modeling); sft-summary -> `prompt`/`completion`;
preference-* -> `prompt`/`chosen`/`rejected` (explicit prompt); kto -> `prompt`/`completion`/`label`;
stepwise -> `prompt`/`completions`/`labels` (standard: TRL has no conversational stepwise type).
Every row of a file has the same columns and types (no system turn anywhere if the preset has none).
`lineage` is an extra column, or with `--lineage sidecar` goes to `<out>.provenance.jsonl`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from toolkit.export.formats.base import Provenance, Writer, basename, dumps, sidecar_uri


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def prompt_turns(record: dict[str, Any], with_system: bool) -> list[dict[str, str]]:
    turns = [msg("system", record["system"])] if with_system else []
    turns.append(msg("user", record["prompt"]))
    return turns


def to_trl(kind: str, record: dict[str, Any], with_system: bool) -> dict[str, Any]:
    prompt = prompt_turns(record, with_system)
    if kind == "sft-transcription":
        return {"messages": [*prompt, msg("assistant", record["completion"])]}
    if kind == "sft-summary":
        return {"prompt": prompt, "completion": [msg("assistant", record["completion"])]}
    if kind in ("preference-correction", "preference-ratings", "preference-model",
                "preference-compare"):
        return {"prompt": prompt, "chosen": [msg("assistant", record["chosen"])],
                "rejected": [msg("assistant", record["rejected"])]}
    if kind == "kto":
        return {"prompt": prompt, "completion": [msg("assistant", record["completion"])],
                "label": bool(record["label"])}
    if kind == "stepwise":  # TRL's stepwise supervision is a standard (string) type only
        text = f"{record['system']}\n\n{record['prompt']}" if with_system else record["prompt"]
        return {"prompt": text, "completions": record["completions"], "labels": record["labels"]}
    raise ValueError(f"preset kind {kind} has no TRL format")


def encode(kind: str, with_system: bool, records: list[dict[str, Any]]) -> bytes:
    """Rows with inline lineage."""
    dump, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    if kind == "sft-transcription" and with_system:  # a row per segment: to_trl written out inline
        return b"".join([dump({"messages": [{"role": "system", "content": r["system"]},
                                             {"role": "user", "content": r["prompt"]},
                                             {"role": "assistant", "content": r["completion"]}],
                                "lineage": r["lineage"]}, option=newline) for r in records])
    out = []
    for record in records:
        row = to_trl(kind, record, with_system)
        row["lineage"] = record["lineage"]
        out.append(dump(row, option=newline))
    return b"".join(out)


class TrlWriter(Writer):
    record_fields = frozenset({"id", "system", "prompt", "completion", "chosen", "rejected", "label", "lineage",
                               "completions", "labels"})

    def encoder(self) -> Callable[[list[dict[str, Any]]], bytes] | None:
        if self.options.lineage == "sidecar":
            return None
        return partial(encode, self.preset.kind, bool(self.preset.preset.system))

    def write_encoded(self, data: bytes, count: int) -> None:
        if not self.files:
            self._open()
        self.fh.write(data)
        self.written += count

    def write(self, records: list[dict[str, Any]]) -> None:
        kind = self.preset.kind
        with_system = bool(self.preset.preset.system)
        if self.options.lineage != "sidecar":
            self.write_encoded(encode(kind, with_system, records), len(records))
            return
        if not self.files:
            self._open()
        chunk = []
        for record in records:
            self.provenance.add(basename(self.out), self.written, record)
            chunk.append(dumps(to_trl(kind, record, with_system)))
            self.written += 1
        self.fh.write(b"".join(chunk))

    def _open(self) -> None:
        self.fh = self.open(self.out)
        if self.options.lineage == "sidecar":
            self.provenance = Provenance(self.open(sidecar_uri(self.out)))

    def finish(self) -> None:
        if not self.files:
            self._open()
