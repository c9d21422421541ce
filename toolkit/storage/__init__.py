"""Local paths and s3:// URIs read and written the same way: the toolkit's I/O edge.

- `store`: `Storage` (streamed reads, atomic writes, `--mirror` redirection), URI helpers.
- `lines`: the one safe line reader of JSON Lines / CSV inputs (encoding detection, bad bytes).
- `tempfiles`: a run's temp files and scratch directories, cleaned up on exit and after a crash.
- `scratch`: SQLite scratch tables for work bigger than memory (export grouping, label index).
- `names`: file names from arbitrary ids (readable, collision-free).
"""

from toolkit.storage.store import Mirror, MirrorEscape, MirrorSpecError, Storage, is_s3, join_uri, s3_client, split_s3

__all__ = ["Mirror", "MirrorEscape", "MirrorSpecError", "Storage", "is_s3", "join_uri", "s3_client", "split_s3"]
