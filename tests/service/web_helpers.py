"""Helpers for the web service's tests (imported as `web_helpers`)."""

from __future__ import annotations

import re
from typing import Any

from toolkit.service.portal.app import csrf_token_in

MEDIA_LINK = re.compile(r"/media/\d+/[0-9a-f]{32}/[A-Za-z0-9_-]+/[^\"&\s]+")


def token(client: Any, path: str = "/login") -> str:
    found = csrf_token_in(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found


def sign_in(client: Any, email: str, password: str) -> Any:
    return client.post("/login", data={"email": email, "password": password, "next": "/",
                                       "csrf_token": token(client)})


def claim(client: Any) -> Any:
    return client.post("/next", data={"csrf_token": token(client, "/")})


def submit(client: Any, object_id: int, content: dict, csrf: str | None = None) -> Any:
    return client.post(f"/task/{object_id}/submit", json={"answerContent": content},
                       headers={"X-CSRFToken": csrf or token(client, "/")})


def media_links(html: str) -> list[str]:
    return MEDIA_LINK.findall(html)
