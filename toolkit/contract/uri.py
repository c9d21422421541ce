"""Validated `s3://` URIs, the one type every model field that holds an S3 URI uses.

An S3 key is just a string to S3, but keys become paths in a `--mirror` directory, in the portal
and in local jobs, so a key that could walk out of such a root is refused where it enters: `..` or
`.` segments, empty segments (`a//b`, a trailing `/`), a leading `/`, control characters. (Storage
also checks containment after resolving symlinks; this is the first of the two layers.)

- `S3Uri`: must be `s3://BUCKET/KEY` with a safe key (`source-ref`, `media_uri`).
- `StorageUri`: an `s3://` URI (checked the same way) or a local path, for references that local
  runs point at files (`peaks-ref`, `sidecar-ref`, `transcribe_output_uri`, Lambda payload URIs).
"""

from __future__ import annotations

import functools
import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

S3_SCHEME = "s3://"
MAX_KEY_BYTES = 1024  # S3's limit on a key's UTF-8 length
_BUCKET = re.compile(r"^[A-Za-z0-9._-]+$")  # lenient: legacy buckets may have capitals or underscores
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
S3_URI_PATTERN = r"^s3://[A-Za-z0-9._-]+/[^/]"


@functools.lru_cache(maxsize=4096)  # a pure function, and export checks each item's URI once per record
def s3_uri_problem(value: str) -> str | None:
    """Why `value` is not a safe `s3://BUCKET/KEY` URI, or None. Never echoes the value."""
    if not value.startswith(S3_SCHEME):
        return "expected an s3://BUCKET/KEY URI"
    bucket, slash, key = value[len(S3_SCHEME):].partition("/")
    if not bucket or not slash or not key:
        return "expected an s3://BUCKET/KEY URI"
    if not _BUCKET.match(bucket) or set(bucket) == {"."}:
        return "the bucket name may only have letters, digits, '.', '-' and '_'"
    return s3_key_problem(key)


def s3_key_problem(key: str) -> str | None:
    """Why `key` could leave a directory it is mapped into, or None."""
    if key.startswith("/"):
        return "the S3 key starts with '/'"
    if _CONTROL.search(key):
        return "the S3 key has a control character"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"the S3 key is longer than {MAX_KEY_BYTES} bytes"
    for segment in key.split("/"):
        if segment == "..":
            return "the S3 key has a '..' segment"
        if segment == ".":
            return "the S3 key has a '.' segment"
        if segment == "":
            return "the S3 key has an empty segment ('//' or a trailing '/')"
    return None


def check_s3_uri(value: str) -> str:
    problem = s3_uri_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_storage_uri(value: str) -> str:
    """`s3://` URIs must be safe; anything else is a local path (or URL) and is left as it is."""
    if value.startswith(S3_SCHEME):
        return check_s3_uri(value)
    if not value:
        raise ValueError("expected an s3:// URI or a path, got an empty string")
    return value


S3Uri = Annotated[str, AfterValidator(check_s3_uri), WithJsonSchema(
    {"type": "string", "pattern": S3_URI_PATTERN,
     "description": "s3://BUCKET/KEY; the key has no '..', '.' or empty segments and no leading '/'"})]
StorageUri = Annotated[str, AfterValidator(check_storage_uri), WithJsonSchema(
    {"type": "string", "minLength": 1,
     "description": "An s3:// URI (its key has no '..', '.' or empty segments and no leading '/') or a local path"})]
