"""Format writers: canonical records in, files out, atomically.

Every writer opens its outputs with `Storage.open_write` inside one ExitStack: if the export
fails (or a final check such as the batch minimum fails), every file is aborted together and
nothing half-written appears at `--out`, not even the local directories made for the outputs.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from toolkit.errors import GtkitError
from toolkit.export.presets import ResolvedPreset
from toolkit.storage import Storage, is_s3, join_uri


@dataclass
class WriterOptions:
    bedrock_schema: str = "messages"      # messages | conversation-2024 | prompt-completion
    lineage: str = "inline"               # inline | sidecar (trl only; other formats are fixed)
    quotas: Any = None                    # BatchQuotas for bedrock-batch
    reserved_words: str = "rewrite"       # Bedrock formats: Amazon Nova's reserved words (toolkit.export.reserved)
    extra: dict[str, Any] = field(default_factory=dict)


class ExportError(GtkitError, ValueError):
    """A problem with the export as a whole (e.g. below the batch minimum); outputs are aborted."""


def dumps(record: Any) -> bytes:
    return orjson.dumps(record) + b"\n"


def sidecar_uri(out: str) -> str:
    """`x.jsonl` -> `x.provenance.jsonl` (same directory or prefix)."""
    for suffix in (".jsonl", ".json", ".rttm"):
        if out.endswith(suffix):
            return out[: -len(suffix)] + ".provenance.jsonl"
    return out + ".provenance.jsonl"


def basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


class Writer:
    """Base writer: `write(records)` per item (or per group of pairs); `close(error)` commits/aborts."""

    # The canonical record keys this writer reads; None = all. Builders may skip the others.
    record_fields: frozenset[str] | None = None

    def __init__(self, storage: Storage, out: str, preset: ResolvedPreset, options: WriterOptions):
        self.storage = storage
        self.out = out
        self.preset = preset
        self.options = options
        self.stack = contextlib.ExitStack()
        self.written = 0
        self.files: list[str] = []
        self.reserved: Any = None  # a ReservedWords, for the formats that check them
        self.made_dirs: list[Path] = []  # local directories that did not exist before an output was opened
        # Records the writer could not write (their media unreadable...): counted, and their lines named.
        self.dropped: Counter[str] = Counter()
        self.problems: list[tuple[int, str, str]] = []

    def not_exported(self, records: list[dict[str, Any]], reason: str, detail: str) -> None:
        """Skip these records (one item's, or one pair): counted under "not exported", line named."""
        self.dropped[reason] += len(records)
        lineage = records[0].get("lineage") or {}
        line = lineage.get("line", lineage.get("chosen", {}).get("line", 0))
        if len(self.problems) < 50:
            self.problems.append((int(line or 0), reason, detail))

    def open(self, uri: str, content_type: str = "application/jsonl") -> IO[bytes]:
        if not is_s3(uri):
            self.note_dirs(Path(uri).parent)
        fh = self.stack.enter_context(self.storage.open_write(uri, binary=True, content_type=content_type))
        self.files.append(uri)
        return fh

    def write(self, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def encoder(self) -> Callable[[list[dict[str, Any]]], bytes] | None:
        """A picklable records -> bytes function when each record's output line depends on nothing
        else (no row numbers, no shards): parallel exports then encode in the worker processes."""
        return None

    def write_encoded(self, data: bytes, count: int) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Final checks and trailing content; raising here aborts every file."""

    def note_dirs(self, directory: Path) -> None:
        """Remember which of `directory` and its parents are about to be made (removed on failure)."""
        while not directory.exists() and directory not in self.made_dirs:
            self.made_dirs.append(directory)
            directory = directory.parent

    def close(self, error: BaseException | None) -> None:
        if error is None:
            try:
                self.finish()
            except BaseException as exc:
                self._abort(exc)
                raise
            self.stack.__exit__(None, None, None)
        else:
            self._abort(error)

    def _abort(self, error: BaseException) -> None:
        try:
            self.stack.__exit__(type(error), error, error.__traceback__)
        finally:
            for directory in sorted(self.made_dirs, key=lambda d: len(d.parts), reverse=True):
                with contextlib.suppress(OSError):  # not empty (someone else's file): left alone
                    directory.rmdir()


class Provenance:
    """The provenance sidecar: one line per output record, joined by `file` + `row` or `recordId`."""

    def __init__(self, fh: IO[bytes]):
        self.fh = fh

    def add(self, file: str, row: int, record: dict[str, Any], record_id: str | None = None,
            reserved: list[dict[str, Any]] | None = None) -> None:
        line: dict[str, Any] = {"row": row, "file": file}
        if record_id is not None:
            line["recordId"] = record_id
        line["id"] = record["id"]
        line["lineage"] = record["lineage"]
        if reserved:  # the reserved-word rewrites of this row, to restore its texts exactly
            line["reserved"] = reserved
        self.fh.write(dumps(line))


def local_dir(out: str) -> str:
    return out if is_s3(out) else out.rstrip("/")


Converter = Callable[[dict[str, Any]], dict[str, Any]]
__all__ = ["Converter", "ExportError", "Provenance", "Writer", "WriterOptions", "basename", "dumps",
           "join_uri", "local_dir", "sidecar_uri"]
