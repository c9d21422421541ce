"""A shared access token for a portal served beyond this machine (`gtkit local-job run --host`).

On 127.0.0.1 only this machine's users can reach the portal. A small team labeling on a LAN needs it on
a network address, and there anyone who can reach the port could read the media and submit
answers. So every request must carry the job's token. The link the job prints is
`http://HOST:PORT/?token=...`; the first request moves the token into an HttpOnly cookie and
redirects to the same URL without it, keeping it out of the address bar, history and referrers.
The token is not a login: worker names are still typed in the portal. Plain HTTP: use it on
networks you trust, or put a TLS reverse proxy in front.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlencode

from flask import Flask, Response, request

from toolkit.service.errors import WeakToken

ACCESS_COOKIE = "gtkit_access"
TOKEN_PARAM = "token"
MIN_TOKEN_LENGTH = 16

DENIED = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Access link needed</title></head>
<body style="font: 15px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Access link needed</h1>
<p>This labeling portal only opens from the link that includes its access token
(<code>?token=...</code>). Ask whoever started the job for it.</p>
</body></html>
"""


def new_token() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 bits


def check_token(token: str) -> str:
    """A user-chosen token, refused when too short to resist guessing over the network."""
    if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise WeakToken(f"an access token needs at least {MIN_TOKEN_LENGTH} printable ASCII characters")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _same(given: str | None, token: str) -> bool:
    # Bytes: compare_digest refuses non-ASCII str, and a cookie can hold anything.
    return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())


def require_token(app: Flask, token: str) -> None:
    """Refuse every request of `app` without the token (cookie, or `?token=` once)."""
    check_token(token)

    def _gate() -> Response | None:
        if request.path == "/favicon.ico":
            return None  # the browser asks for it on the refusal page too
        given = request.args.get(TOKEN_PARAM)
        if given is not None:
            if not _same(given, token):
                return _denied()
            rest = [(k, v) for k, v in request.args.items(multi=True) if k != TOKEN_PARAM]
            resp = Response(status=303, headers={"Location": request.path + (f"?{urlencode(rest)}" if rest else "")})
            resp.set_cookie(ACCESS_COOKIE, token, httponly=True, samesite="Strict")
            return resp
        if not _same(request.cookies.get(ACCESS_COOKIE), token):
            return _denied()
        return None

    # First of all checks: the CSRF and origin checks answer with pages that name the job.
    app.before_request_funcs.setdefault(None, []).insert(0, _gate)


def _denied() -> Response:
    return Response(DENIED, status=403, mimetype="text/html")


def reachable_address(host: str) -> str:
    """The address to print for teammates: `host` itself, or for a wildcard bind (0.0.0.0, ::)
    this machine's primary address (the one its default route uses; no packet is sent)."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return socket.gethostname()


def portal_link(host: str, port: int, token: str | None) -> str:
    address = reachable_address(host)
    if ":" in address:  # IPv6 literal
        address = f"[{address}]"
    return f"http://{address}:{port}/" + (f"?{TOKEN_PARAM}={token}" if token else "")
