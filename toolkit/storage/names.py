"""File names derived from identifiers (interaction ids): readable, safe, and unique per exact id.

Sanitising alone is not enough: `a/b`, `a_b` and `a b` all sanitise to `a_b`, and `Call-1`/`call-1`
are one file on a case-insensitive disk, so one record's peaks silently replaced another's. A short
hash of the exact id makes the name unique; callers still treat a repeated name within a run as an
error (a hash collision), never as an overwrite.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_READABLE = 64  # characters of the id kept in the name (file names stop at 255 bytes)
HASH_CHARS = 16  # 64 bits of SHA-256: a collision among 10 million ids has odds of about 3 in a million


def file_stem(identifier: str) -> str:
    """`a/b` -> `a_b-<16 hex digits>`: the id with unsafe characters as `_` (no leading dot, at most 64
    characters), then a hash of the exact id. Stable across runs and machines."""
    readable = _UNSAFE.sub("_", identifier)[:MAX_READABLE]
    readable = "_" * (len(readable) - len(readable.lstrip("."))) + readable.lstrip(".")
    digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{readable}-{digest}"
