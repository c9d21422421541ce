"""Read and write local paths and s3:// URIs the same way, line by line.

- Reads stream (never a whole-file read of a manifest); `s3://` reads can be redirected to a local
  mirror directory (`--mirror s3://bucket/prefix=DIR`) for offline runs, while the URIs written into
  outputs stay the real ones.
- Writes are atomic: local files go to a temp file renamed on success; S3 objects are written with
  a multipart upload that is completed on success and aborted on error, so a crash never leaves a
  half-written output. Temp files of runs that were killed are removed later (toolkit.storage.tempfiles).
- boto3 clients use adaptive retries.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3

from toolkit.awsclient import RETRY_CONFIG
from toolkit.errors import GtkitError
from toolkit.storage import tempfiles
from toolkit.storage.lines import LineError, UndecodableLine, iter_text_lines

S3_SCHEME = "s3://"
# smart_open multipart part size; S3 needs >= 5 MiB for all parts but the last.
PART_SIZE = 8 * 1024 * 1024


def is_s3(uri: str) -> bool:
    return str(uri).startswith(S3_SCHEME)


class NotAnS3Uri(GtkitError, ValueError):
    """A value given where an s3://BUCKET/KEY URI belongs that is not one."""


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/part` -> (`bucket`, `key/part`)."""
    if not is_s3(uri):
        raise NotAnS3Uri(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise NotAnS3Uri(f"s3 URI without a bucket: {uri!r}")
    return bucket, key


def s3_client(region: str | None = None) -> Any:
    return boto3.client("s3", region_name=region, config=RETRY_CONFIG)


@dataclass(frozen=True)
class Mirror:
    """Resolve reads under `prefix` (an s3:// URI prefix) to files under `directory`."""

    prefix: str
    directory: Path

    @classmethod
    def parse(cls, spec: str) -> Mirror:
        prefix, sep, directory = spec.partition("=")
        if not sep or not is_s3(prefix) or not directory:
            raise MirrorSpecError(f"--mirror expects s3://BUCKET/PREFIX=DIR, got {spec!r}")
        return cls(prefix=prefix, directory=Path(directory))

    def resolve(self, uri: str) -> Path | None:
        """The file under `directory` for `uri`, None when `uri` is not under `prefix`.

        Raises MirrorEscape when the path, with symlinks resolved, is not inside `directory`
        (`..` segments, an absolute rest, a symlink out): models refuse such keys already, this
        holds for every caller, validated or not.
        """
        if not uri.startswith(self.prefix):
            return None
        rest = uri[len(self.prefix):].lstrip("/")
        path = self.directory / rest
        try:
            root = self.directory.resolve()
            inside = path.resolve().is_relative_to(root)
        except (OSError, ValueError, RuntimeError):  # NUL bytes, symlink loops
            inside = False
        if not inside:
            raise MirrorEscape(f"{uri}: resolves outside the mirror directory {self.directory} (a '..' "
                               "segment or a symlink); refused")
        return path


class MirrorSpecError(GtkitError, ValueError):
    """A mirror spec that is not `s3://BUCKET/PREFIX=DIR`: a usage error (exit 2)."""

    exit_code = 2


class MirrorEscape(GtkitError, FileNotFoundError):
    """A mirrored read that would leave the mirror directory. A FileNotFoundError: for every caller
    the object is simply not in the mirror, and their missing-file handling applies."""


class Storage:
    """Uniform access to local files and S3 objects. One instance per command run."""

    def __init__(self, mirrors: Iterable[Mirror | str] = (), client: Any = None, region: str | None = None):
        self.mirrors = [m if isinstance(m, Mirror) else Mirror.parse(m) for m in mirrors]
        # Longest prefix wins so a specific mirror can override a general one.
        self.mirrors.sort(key=lambda m: len(m.prefix), reverse=True)
        self._client = client
        self._region = region
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        # One client per Storage, made once: threads of a server asking at the same moment used to
        # each build their own (about 0.1 s of CPU each, under the GIL). boto3 clients are
        # thread-safe once made.
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = s3_client(self._region)
        return self._client

    # -- reading -------------------------------------------------------------------------------
    def resolve_read(self, uri: str | Path) -> str:
        """Where a read of `uri` really goes: a mirrored local path, the local path, or the S3 URI."""
        uri = str(uri)
        if is_s3(uri):
            for mirror in self.mirrors:
                local = mirror.resolve(uri)
                if local is not None:
                    return str(local)
        return uri

    @contextlib.contextmanager
    def open_read(self, uri: str | Path, binary: bool = False) -> Iterator[IO]:
        target = self.resolve_read(uri)
        if is_s3(target):
            from smart_open import open as smart_open

            mode = "rb" if binary else "r"
            kwargs = {} if binary else {"encoding": "utf-8", "newline": ""}
            with smart_open(target, mode, transport_params={"client": self.client}, **kwargs) as fh:
                yield fh
        else:
            path = Path(target)
            if not path.exists():
                hint = " (is a --mirror missing?)" if str(uri) != target or is_s3(str(uri)) else ""
                raise FileNotFoundError(f"{uri}: no such file{hint}")
            with (open(path, "rb") if binary else open(path, encoding="utf-8", newline="")) as fh:
                yield fh

    def iter_lines(self, uri: str | Path) -> Iterator[tuple[int, str]]:
        """(1-based line number, line without its line ending), streaming, split on `\\n`.

        A UTF-8 BOM is dropped; a UTF-16/32 file raises WrongEncoding and a line that is not UTF-8
        raises UndecodableLine (both ValueErrors naming the input). Readers that must go on past a
        bad line use `toolkit.storage.lines.iter_text_lines` on `open_read(uri, binary=True)` instead.
        """
        with self.open_read(uri, binary=True) as fh:
            for number, text in iter_text_lines(fh, str(uri)):
                if isinstance(text, LineError):
                    raise UndecodableLine(f"{uri} line {number}: {text.message}")
                yield number, text

    def read_bytes(self, uri: str | Path) -> bytes:
        """Whole-object read: for small files only (Transcribe JSON, sidecars, templates)."""
        with self.open_read(uri, binary=True) as fh:
            return fh.read()

    def read_json(self, uri: str | Path) -> Any:
        return json.loads(self.read_bytes(uri))

    def exists(self, uri: str | Path) -> bool:
        try:
            target = self.resolve_read(uri)
        except MirrorEscape:
            return False
        if is_s3(target):
            bucket, key = split_s3(target)
            try:
                self.client.head_object(Bucket=bucket, Key=key)
            except self.client.exceptions.ClientError:
                return False
            return True
        return Path(target).exists()

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def open_write(self, uri: str | Path, binary: bool = False, content_type: str | None = None) -> Iterator[IO]:
        """Atomic streaming write. Nothing is visible at `uri` unless the block completes."""
        uri = str(uri)
        if is_s3(uri):
            from smart_open import open as smart_open

            params: dict[str, Any] = {"client": self.client, "min_part_size": PART_SIZE}
            if content_type:
                params["client_kwargs"] = {"S3.Client.create_multipart_upload": {"ContentType": content_type}}
            mode = "wb" if binary else "w"
            kwargs = {} if binary else {"encoding": "utf-8", "newline": "\n"}
            # smart_open aborts the multipart upload when the block raises.
            with smart_open(uri, mode, transport_params=params, **kwargs) as fh:
                yield fh
            return
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tempfiles.sweep_stale_temp_files(path.parent)  # what killed runs left here (once per directory)
        fd, tmp = tempfiles.make_temp_file(path)  # removed at exit or on a signal if this block never finishes
        try:
            with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="\n")) as fh:
                yield fh
            os.chmod(tmp, _final_mode(path))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        finally:
            tempfiles.unregister(tmp)

    def write_bytes(self, uri: str | Path, data: bytes, content_type: str | None = None,
                    cache_control: str | None = None, content_encoding: str | None = None) -> None:
        """Whole-object write. `content_encoding` (e.g. "gzip" for already-compressed `data`) is
        stored as the S3 object's Content-Encoding; a local file just gets the bytes."""
        uri = str(uri)
        if is_s3(uri):
            bucket, key = split_s3(uri)
            extra = {k: v for k, v in (("ContentType", content_type), ("CacheControl", cache_control),
                                       ("ContentEncoding", content_encoding)) if v}
            self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
            return
        with self.open_write(uri, binary=True) as fh:
            fh.write(data)

    def write_json(self, uri: str | Path, value: Any) -> None:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.write_bytes(uri, data, content_type="application/json")


# Read once, at import (single-threaded): os.umask can only be read by setting it, which would race
# with the portal's request threads.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _final_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would give: an existing file keeps its mode, a new one gets
    0o666 minus the umask. (mkstemp's 0o600 would hide every output from teammates and servers.)"""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a local directory or s3:// prefix."""
    base = str(base)
    if is_s3(base):
        out = base.rstrip("/")
        for part in parts:
            out += "/" + part.strip("/")
        return out
    return str(Path(base, *parts))
