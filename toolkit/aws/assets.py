"""UI assets and Lambda zips to S3 under content-addressed keys.

Asset keys are `v/<version>/<relative path>` where the version is a hash over every file's path and
bytes: a new build gets a new prefix, so objects never change once written and can be cached for a
year (`immutable`), and templates rendered against an older version keep working.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import GtkitError
from toolkit.storage import Storage

ASSET_PREFIX = "v"
LAMBDA_PREFIX = "lambda"
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
VERSION_LENGTH = 16

class AssetError(GtkitError, ValueError):
    """UI asset files that cannot be uploaded as they are."""


# Explicit types for what the worker UI ships: the browser refuses ES modules served with a
# non-JavaScript type, and CloudFront adds `nosniff`, so guessing is not good enough.
CONTENT_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".mjs": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def content_type(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    if not suffix:  # LICENSE, VERSION, NOTICE: plain text shipped with vendored code
        return "text/plain; charset=utf-8"
    guessed, _ = mimetypes.guess_type(str(path))
    return guessed or "application/octet-stream"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_relative(rel: str) -> str:
    rel = rel.replace("\\", "/").lstrip("/")
    if not rel or any(part in ("", ".", "..") for part in rel.split("/")):
        raise AssetError(f"asset path {rel!r} must be a plain relative path")
    return rel


def assets_version(files: Iterable[tuple[str, Path]]) -> str:
    """Content hash of the whole asset set (paths and bytes), order-independent."""
    digest = hashlib.sha256()
    for rel, path in sorted((_check_relative(r), Path(p)) for r, p in files):
        digest.update(rel.encode("utf-8") + b"\0" + _file_digest(path).encode("ascii") + b"\n")
    return digest.hexdigest()[:VERSION_LENGTH]


@dataclass(frozen=True)
class AssetUpload:
    version: str
    prefix: str  # key prefix, `v/<version>/`
    uploaded: int
    skipped: int  # already present (same version = same bytes)


def upload_assets(
    s3: Any,
    bucket: str,
    files: list[tuple[str, Path]],
    *,
    report: Callable[[str], None] = lambda _m: None,
) -> AssetUpload:
    """Upload `files` ((relative URL path, local file)) under `v/<version>/` with types and cache headers."""
    if not files:
        raise AssetError("no UI asset files to upload (toolkit.task.template.asset_files() returned nothing)")
    missing = [str(p) for _, p in files if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"UI asset file(s) missing: {', '.join(missing)}")
    version = assets_version(files)
    prefix = f"{ASSET_PREFIX}/{version}/"
    storage = Storage(client=s3)
    uploaded = skipped = 0
    for rel, path in sorted(files):
        uri = f"s3://{bucket}/{prefix}{_check_relative(rel)}"
        if storage.exists(uri):
            skipped += 1
            continue
        storage.write_bytes(uri, Path(path).read_bytes(), content_type=content_type(rel),
                            cache_control=IMMUTABLE_CACHE_CONTROL)
        uploaded += 1
    report(f"UI assets {version}: {uploaded} uploaded, {skipped} already present")
    return AssetUpload(version=version, prefix=prefix, uploaded=uploaded, skipped=skipped)


def upload_lambda_zip(s3: Any, bucket: str, name: str, zip_path: Path) -> str:
    """Upload a Lambda zip under a content-hashed key (so a changed build updates the function); returns the key."""
    digest = _file_digest(zip_path)[:VERSION_LENGTH]
    key = f"{LAMBDA_PREFIX}/{name.replace('_', '-')}-{digest}.zip"
    storage = Storage(client=s3)
    uri = f"s3://{bucket}/{key}"
    if not storage.exists(uri):
        storage.write_bytes(uri, zip_path.read_bytes(), content_type="application/zip")
    return key
