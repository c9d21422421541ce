"""A Flask test client that behaves like a browser on a portal page: it carries the CSRF token."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from toolkit.service.portal.app import WORKER_COOKIE, csrf_token_in


def portal_client(app: Flask, worker: str | None = None) -> FlaskClient:
    """A client with the token of its session in every request (as the stand-in's X-CSRFToken)."""
    client = app.test_client()
    if worker:
        client.set_cookie(WORKER_COOKIE, worker)
    token = csrf_token_in(client.get("/login").get_data(as_text=True))
    assert token, "the login page carries no csrf-token meta tag"
    client.environ_base["HTTP_X_CSRFTOKEN"] = token
    return client
