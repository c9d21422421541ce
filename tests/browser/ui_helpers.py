"""Constants and small helpers shared by the browser tests and their conftest."""

from __future__ import annotations

import time

MEDIA = "s3://example-feedback-bucket/media"
WORKER = "tester"


READY = "window.gtkit && window.gtkit.player && window.gtkit.player.ready === true"


def wait_ready(page) -> None:
    """Until the worker UI is mounted and its waveform is ready."""
    page.wait_for_function(READY)


def wait_until(page, expression: str, timeout_s: float = 20.0) -> None:
    """Until `expression` is true in the page, polled with `page.evaluate`: unlike
    `wait_for_function` (which compiles its predicate inside the page), it works under a
    Content-Security-Policy without 'unsafe-eval'."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout_s} s: {expression}")
        time.sleep(0.05)
