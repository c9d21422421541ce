"""Labels keyed by interaction id, spilled to a temporary SQLite file so `gtkit merge` stays flat in
memory whatever the number of labels (a million items of 50 segments are several GB as dicts).

SQLite (stdlib) rather than a sort-merge: the feedback file keeps its own order and is streamed
once; each record costs one primary-key lookup. Entries are stored as orjson bytes, which give back
exactly what went in (floats round-trip), so merging stays byte-deterministic.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import orjson

BATCH = 2000  # rows per executemany: one Python->C round trip per batch, not per label


class LabelIndex:
    """`add(iid, entry)` while reading the labels (last one wins), then `take(iid)` per feedback
    record. Counts: `len()` distinct labelled ids, `duplicates` entries replaced by a later one,
    `unused()` labels no feedback record took."""

    def __init__(self, directory: str | None = None):
        self._dir = tempfile.TemporaryDirectory(prefix="gtkit-merge-", dir=directory)
        # isolation_level=None: transactions are explicit below, not opened implicitly per insert.
        self._db = sqlite3.connect(Path(self._dir.name) / "labels.sqlite", isolation_level=None)
        # A scratch file deleted at the end: durability buys nothing, so no journal and no fsync.
        self._db.executescript("""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -16384;  -- 16 MB page cache: the memory bound
            CREATE TABLE labels (iid TEXT PRIMARY KEY, entry BLOB NOT NULL, used INTEGER NOT NULL DEFAULT 0)
                WITHOUT ROWID;
        """)
        self._db.execute("BEGIN")
        self._pending: list[tuple[str, bytes]] = []
        self.added = 0

    def add(self, iid: str, entry: dict[str, Any]) -> None:
        self._pending.append((iid, orjson.dumps(entry)))
        self.added += 1
        if len(self._pending) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            # Batches are applied in order, so INSERT OR REPLACE keeps the last entry per id.
            self._db.executemany("INSERT OR REPLACE INTO labels (iid, entry) VALUES (?, ?)", self._pending)
            self._pending.clear()

    def __len__(self) -> int:
        self._flush()
        return self._db.execute("SELECT count(*) FROM labels").fetchone()[0]

    @property
    def duplicates(self) -> int:
        return self.added - len(self)

    def take(self, iid: str) -> dict[str, Any] | None:
        """The entry for `iid` (None when unlabelled), marking it used."""
        self._flush()
        row = self._db.execute("SELECT entry FROM labels WHERE iid = ?", (iid,)).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE labels SET used = 1 WHERE iid = ? AND used = 0", (iid,))
        return orjson.loads(row[0])

    def unused(self) -> int:
        self._flush()
        return self._db.execute("SELECT count(*) FROM labels WHERE used = 0").fetchone()[0]

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()

    def __enter__(self) -> LabelIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
