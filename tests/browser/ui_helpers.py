"""Constants and small helpers shared by the browser tests and their conftest."""

from __future__ import annotations

MEDIA = "s3://example-feedback-bucket/media"
WORKER = "tester"


READY = "window.gtkit && window.gtkit.player && window.gtkit.player.ready === true"


def wait_until(page, expression: str, timeout: float | None = None, polling: float | str = "raf") -> None:
    """Until the JavaScript `expression` is true in the page (`timeout` and `polling` as
    playwright's: ms; "raf" checks on every animation frame).

    The portal and the service send a Content-Security-Policy without 'unsafe-eval'. Playwright's
    `page.wait_for_function("an expression")` evaluates the string with eval inside the page on
    every poll after the first, which chromium refuses there (EvalError, as soon as the first
    check is false). Given a function's source instead, playwright compiles it once through the
    DevTools protocol, which the page's policy does not govern, and polls the function on each
    animation frame: so the expression is wrapped in an arrow function."""
    page.wait_for_function(f"() => ({expression})", timeout=timeout, polling=polling)


def wait_ready(page) -> None:
    """Until the worker UI is mounted and its waveform is ready."""
    wait_until(page, READY)
