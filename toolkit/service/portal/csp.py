"""The Content-Security-Policy of the portal's and the service's pages.

Scripts only from our own origin, plus the inline scripts of the worker task template (the boot
fail-safe and the import map), allowed by their sha256: hashed from the template before Liquid
fills in the task, so nothing a manifest line carries can ever match. No 'unsafe-inline' for
scripts, no plug-ins, no framing, forms post only to us. Media, images and fetches may also go to
the origins the page's media links lead to (S3 presigned GET URLs, https:// media in the
manifest), which the task page collects while it grants them. Styles: our files, plus the <style>
elements wavesurfer writes into its shadow roots, which carry the page's nonce (read by
static/js/player.js from the `gtkit-csp-nonce` meta tag).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

HEADER = "Content-Security-Policy"
_INLINE_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
_SRC = re.compile(r"\bsrc\s*=", re.I)


def source_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def inline_script_hashes(html: str) -> tuple[str, ...]:
    """CSP sources for every inline <script> of `html` (a template before Liquid, which puts no
    markup of its own into them)."""
    found = [source_hash(body) for attrs, body in _INLINE_SCRIPT.findall(html) if body and not _SRC.search(attrs)]
    return tuple(dict.fromkeys(found))


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or any(c in parts.netloc for c in " ;,'\""):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def policy(script_hashes: Iterable[str] = (), media_origins: Iterable[str] = (), style_nonce: str | None = None) -> str:
    """`style_nonce`: the nonce the page hands wavesurfer (its `cspNonce` option) for the <style>
    elements it puts into its shadow roots."""
    scripts = " ".join(["'self'", *sorted(set(script_hashes))])
    styles = "'self'" + (f" 'nonce-{style_nonce}'" if style_nonce else "")
    media = " ".join(sorted(set(media_origins)))
    extra = f" {media}" if media else ""
    return "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        f"style-src {styles}",
        f"img-src 'self' data: blob:{extra}",
        f"media-src 'self' blob:{extra}",
        f"connect-src 'self'{extra}",
        "worker-src 'self' blob:",  # the peaks parser runs in a worker made from a blob (static/js/main.js)
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])
