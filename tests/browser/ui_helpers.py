"""Constants and small helpers shared by the browser tests and their conftest."""

from __future__ import annotations

MEDIA = "s3://example-feedback-bucket/media"
WORKER = "tester"


def wait_ready(page) -> None:
    """Until the worker UI is mounted and its waveform is ready."""
    page.wait_for_function("window.gtkit && window.gtkit.player && window.gtkit.player.ready === true")
