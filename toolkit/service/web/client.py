"""A scripted annotator over HTTP, as a browser drives `gtkit serve`: signs in, takes the next task,
submits answers, carrying the session cookie and the page's CSRF token. Used by the load benchmark
(bench/serve_load.py) and the multi-instance and crash tests. Standard library only (http.client,
one keep-alive connection per annotator).
"""

from __future__ import annotations

import http.client
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

from toolkit.service.portal.app import csrf_token_in


class HttpError(RuntimeError):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status


class Annotator:
    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None
        self.conn: http.client.HTTPConnection | None = None
        self.use(base_url)

    def use(self, base_url: str) -> None:
        """Talk to another instance from now on (the session cookie works on every instance)."""
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        reused = self.conn is not None
        try:
            resp, data = self._send(method, path, body, sent)
        except (OSError, http.client.HTTPException):
            self.close()
            if not reused:
                raise  # the server is down or restarting
            # The server closed the idle keep-alive connection: once more on a new one (claim and
            # submit are idempotent, so a request that did arrive is not done twice).
            try:
                resp, data = self._send(method, path, body, sent)
            except (OSError, http.client.HTTPException):
                self.close()
                raise
        for value in resp.headers.get_all("Set-Cookie") or ():
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        return resp.status, resp.headers, data

    def _send(self, method: str, path: str, body: bytes | None,
              headers: dict[str, str]) -> tuple[http.client.HTTPResponse, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        return resp, resp.read()

    def _page_token(self, path: str) -> str:
        status, _h, body = self.request("GET", path)
        token = csrf_token_in(body.decode("utf-8", "replace"))
        if status != 200 or token is None:
            raise HttpError(status, body)
        self.csrf = token
        return token

    def _form(self, path: str, fields: dict[str, str]) -> tuple[int, http.client.HTTPMessage, bytes]:
        body = urlencode({**fields, "csrf_token": self.csrf or ""}).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def sign_in(self, email: str, password: str) -> None:
        self._page_token("/login")
        status, _h, body = self._form("/login", {"email": email, "password": password, "next": "/"})
        if status != 302:
            raise HttpError(status, body)
        self._page_token("/")  # signing in starts a new session, with a new token

    def next_task(self) -> int | None:
        """POST /next: the object id of the held task, or None when nothing is left."""
        status, headers, body = self._form("/next", {})
        if status == 302:
            return int(headers["Location"].rstrip("/").rsplit("/", 1)[1])
        if status == 200:
            return None
        raise HttpError(status, body)

    def open_task(self, object_id: int) -> str:
        status, _h, body = self.request("GET", f"/task/{object_id}")
        if status != 200:
            raise HttpError(status, body)
        return body.decode("utf-8")

    def submit(self, object_id: int, content: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"answerContent": content}).encode()
        status, _h, data = self.request("POST", f"/task/{object_id}/submit", body,
                                        {"Content-Type": "application/json", "X-CSRFToken": self.csrf or ""})
        if status != 200:
            raise HttpError(status, data)
        return json.loads(data)
