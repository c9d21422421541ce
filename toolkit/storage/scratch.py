"""Scratch storage on disk for the two places where export and merge must remember items: the
label index of `gtkit merge` (labels by interaction id) and the prompt groups of the
`preference-ratings` preset. Held as dicts, a million items of 50 segments are several GB; in a
temporary SQLite file (stdlib) memory stays flat whatever the input size.

SQLite rather than a sort-merge: inputs keep their order and are streamed once; each lookup is
one primary-key probe. Entries are stored as orjson bytes, which give back exactly what went in
(floats round-trip), so outputs stay byte-deterministic.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from typing import Any, Self

import orjson

from toolkit.storage import tempfiles

BATCH = 2000  # rows per executemany: one Python->C round trip per batch, not per row


class ScratchDB:
    """A private SQLite file in the run's scratch directory under `directory` (default: the temp dir),
    removed by `close()`, at exit, on SIGTERM/SIGINT, or by the next run after a kill (toolkit.storage.tempfiles)."""

    SCHEMA = ""

    def __init__(self, directory: str | None = None):
        self._path = tempfiles.new_scratch(directory, suffix=".sqlite")
        # isolation_level=None: one explicit transaction, not one opened implicitly per insert.
        self._db = sqlite3.connect(self._path, isolation_level=None)
        # A scratch file deleted at the end: durability buys nothing, so no journal and no fsync.
        self._db.executescript("""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -16384;  -- 16 MB page cache: the memory bound
        """ + self.SCHEMA)
        self._db.execute("BEGIN")

    def close(self) -> None:
        self._db.close()
        tempfiles.release_scratch(self._path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LabelIndex(ScratchDB):
    """`add(iid, entry)` while reading the labels (last one wins), then `take(iid)` per feedback
    record. Counts: `len()` distinct labelled ids, `duplicates` entries replaced by a later one,
    `unused()` labels no feedback record took."""

    SCHEMA = """
        CREATE TABLE labels (iid TEXT PRIMARY KEY, entry BLOB NOT NULL, used INTEGER NOT NULL DEFAULT 0)
            WITHOUT ROWID;
    """

    def __init__(self, directory: str | None = None):
        super().__init__(directory)
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


class Groups(ScratchDB):
    """Entries appended under a group key; `groups()` gives them back group by group, groups in the
    order of their first entry and entries in the order added (what a dict of lists would give)."""

    SCHEMA = """
        CREATE TABLE groups (key TEXT PRIMARY KEY, first INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX groups_by_first ON groups (first);
        CREATE TABLE entries (key TEXT NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL,
            PRIMARY KEY (key, seq)) WITHOUT ROWID;
    """

    def __init__(self, directory: str | None = None):
        super().__init__(directory)
        self._pending: list[tuple[str, int, bytes]] = []
        self.added = 0

    def add(self, key: str, entry: dict[str, Any]) -> None:
        self._pending.append((key, self.added, orjson.dumps(entry)))
        self.added += 1
        if len(self._pending) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            # A group's first entry has its smallest seq: INSERT OR IGNORE keeps that one.
            self._db.executemany("INSERT OR IGNORE INTO groups (key, first) VALUES (?, ?)",
                                 [(key, seq) for key, seq, _ in self._pending])
            self._db.executemany("INSERT INTO entries (key, seq, entry) VALUES (?, ?, ?)", self._pending)
            self._pending.clear()

    def groups(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        self._flush()
        rows = self._db.execute("SELECT g.key, e.entry FROM groups g JOIN entries e ON e.key = g.key "
                                "ORDER BY g.first, e.seq")
        for key, group in itertools.groupby(rows, key=lambda row: row[0]):
            yield key, [orjson.loads(entry) for _, entry in group]
