"""Reading a Content-Security-Policy header, for the portal's and the service's tests (imported
as `csp_helpers`: tests/ is on sys.path)."""

from __future__ import annotations

import re
from typing import Any

INLINE = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S)  # an inline script's text


def directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def assert_strict(header: str) -> dict[str, list[str]]:
    """The policy's fixed, strict part; returns its directives."""
    found = directives(header)
    assert found["default-src"] == ["'self'"] and found["object-src"] == ["'none'"]
    assert found["frame-ancestors"] == ["'none'"] and found["base-uri"] == ["'self'"]
    assert found["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header
    assert found["script-src"][0] == "'self'" and all(s.startswith("'sha256-") for s in found["script-src"][1:])
    return found


def assert_task_page_policy(client: Any, url: str) -> dict[str, list[str]]:
    """A worker task page's policy: its two inline scripts (the boot fail-safe and the import map)
    by hash, and a style nonce that the page's meta tag carries and that is new on every load."""
    from toolkit.service.portal import csp

    resp = client.get(url)
    assert resp.status_code == 200, url
    html = resp.get_data(as_text=True)
    found = assert_strict(resp.headers[csp.HEADER])
    inline = INLINE.findall(html)
    assert len(inline) == 2
    assert sorted(found["script-src"][1:]) == sorted(csp.source_hash(body) for body in inline)
    nonce = re.search(r'<meta name="gtkit-csp-nonce" content="([^"]+)">', html).group(1)
    assert found["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    again = client.get(url)
    assert f"'nonce-{nonce}'" not in again.headers[csp.HEADER]  # a new nonce per page
    assert directives(again.headers[csp.HEADER])["script-src"] == found["script-src"]  # hashes: the same
    return found
