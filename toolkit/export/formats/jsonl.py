"""`jsonl`: each preset's own documented record, lineage inline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolkit.export.formats.base import Writer, dumps


def encode(records: list[dict[str, Any]]) -> bytes:
    return b"".join(dumps(record) for record in records)


class JsonlWriter(Writer):
    def write(self, records: list[dict[str, Any]]) -> None:
        self.write_encoded(encode(records), len(records))

    def encoder(self) -> Callable[[list[dict[str, Any]]], bytes]:
        return encode

    def write_encoded(self, data: bytes, count: int) -> None:
        if not self.files:
            self.fh = self.open(self.out)
        self.fh.write(data)
        self.written += count

    def finish(self) -> None:
        if not self.files:  # an empty export still produces its (empty) file
            self.open(self.out)
