"""Browser fixtures: Debian chromium through playwright, and the portal in a thread on a free port.

Never `playwright install`: the Debian chromium binary is used directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ui_helpers import WORKER  # tests/browser is on sys.path (pytest's default "prepend" import mode)

from toolkit.contract import load_label_schema
from toolkit.contract.peaks import peaks_json
from toolkit.ingest.peaks import compute_peaks
from toolkit.service.portal import PortalServer, PreviewSource, create_app
from toolkit.storage import Storage

CHROMIUM = os.environ.get("GTKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--autoplay-policy=no-user-gesture-required"]

# Called by the page if any injected markup ever runs script (alert/prompt are wrapped to call it).
HOOK = "__gtkitScriptRan"
INIT_SCRIPT = f"""
(() => {{
  for (const name of ['alert', 'prompt']) {{
    window[name] = (...args) => {{ window.{HOOK}(name + ':' + String(args[0])); }};
  }}
  document.addEventListener('securitypolicyviolation', e => console.error(
    'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));
}})();
"""


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):  # CI installs it (.ci/run): a missing browser must not pass as a skip
            pytest.fail(f"{CHROMIUM} not installed")
        pytest.skip(f"{CHROMIUM} not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def peaks_dir(tmp_path_factory, examples_dir) -> Path:
    out = tmp_path_factory.mktemp("peaks")
    for name in ("call_001.wav", "video_001.mp4"):
        (out / f"{name}.peaks.json").write_bytes(peaks_json(compute_peaks(examples_dir / "media" / name)))
    return out


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Portal:
    url: str
    out: Path
    source: PreviewSource
    job: str = field(init=False)

    def __post_init__(self) -> None:
        self.job = self.source.job_name

    def responses(self, task_id: str) -> list[dict]:
        folder = self.out / self.job / "annotations" / "worker-response" / "iteration-1" / task_id
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


@pytest.fixture
def portal_factory(tmp_path, examples_dir) -> Iterator[Callable[[str, list[dict]], Portal]]:
    servers: list[PortalServer] = []

    def make(schema: str, lines: list[dict]) -> Portal:
        manifest = tmp_path / f"manifest-{len(servers)}.jsonl"
        manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
        out = tmp_path / f"out-{len(servers)}"
        source = PreviewSource(manifest, load_label_schema(schema), out=out,
                               storage=Storage([f"s3://example-feedback-bucket/={examples_dir}"]))
        server = PortalServer(create_app(source)).start()
        servers.append(server)
        return Portal(url=server.url, out=out, source=source)

    yield make
    for server in servers:
        server.stop()


@dataclass
class PageProbe:
    """What the page did that it must not: dialogs, script from injected markup, uncaught errors
    (Content-Security-Policy violations among them: the portal sends the service's policy)."""

    dialogs: list[str] = field(default_factory=list)
    script_ran: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def open_page(browser) -> Iterator[Callable[[Portal], tuple]]:
    contexts = []

    def make(portal: Portal):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        context.add_cookies([{"name": "gtkit_worker", "value": WORKER, "url": portal.url}])
        probe = PageProbe()
        context.expose_function(HOOK, lambda what: probe.script_ran.append(what))
        context.add_init_script(INIT_SCRIPT)
        page = context.new_page()
        page.set_default_timeout(15000)

        def on_dialog(dialog):
            probe.dialogs.append(f"{dialog.type}:{dialog.message}")
            dialog.accept() if dialog.type == "confirm" else dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda err: probe.errors.append(str(err)))
        page.on("console", lambda msg: probe.errors.append(msg.text) if (
            "Content Security Policy" in msg.text or "CSP violation" in msg.text) else None)
        return page, probe

    yield make
    for context in contexts:
        context.close()
