"""UI segments benchmark: the worker UI on one long call with 0 / 500 / 3,000 / 10,000 pre-segments.

One speech-like WAV (default 180 minutes) and, per segment count, an Amazon Transcribe JSON whose
speaker turns alternate spk_0 / spk_1 with word timings. Everything goes the way a real job goes:
`gtkit manifest build --peaks --sidecar-prefix` (the pre-segments of a long call do not fit in the
manifest line, so they go to the sidecar), then the task page through the local portal in a fresh
headless Debian chromium per count. For each count it prints:

- drawn: navigation start -> the waveform drawn (the UI's first `redrawcomplete`);
- segments in: -> every pre-segment in the state and the list rendered;
- renderer RSS: the renderer processes' peak VmHWM once loaded, and at the end (after every
  interaction below, zoomed in included);
- zoom in (to 50 px/s mid-call), zoom out (to the whole file), scroll (at 50 px/s), select (J, next
  segment; with 0 segments the seek and scroll J would do), add (a segment on the active track),
  drag (a segment's new times, as a region drag ends), typing (per keystroke in a segment's text
  box, real key events): ms from the action to the next frame painted (requestAnimationFrame,
  then a task), median of several;

with each figure's ratio to the same call with 0 segments, measured in the same run. Prints a table;
asserts nothing (bench/ui_load.py does the same for the load alone; its helpers are reused).

    .venv/bin/python bench/ui_segments.py                        # 180 min; 0, 500, 3000, 10000
    .venv/bin/python bench/ui_segments.py --minutes 20 --counts 0 500   # a quick run
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ui_load import CHROMIUM, CHROMIUM_ARGS, generate_wav, peak_rss_mb, renderer_pids  # noqa: E402

from toolkit.contract import load_label_schema  # noqa: E402
from toolkit.service.portal import PortalServer, PreviewSource, create_app  # noqa: E402
from toolkit.storage import Storage  # noqa: E402

BUCKET = "s3://gtkit-bench"
SAMPLE_TEXT = ("thanks for calling northwind my order was due on monday and it still has not arrived can you "
               "check the tracking number please let me see one moment the parcel is at the depot")
WORDS = SAMPLE_TEXT.split()

# In the page: time from an action to the next painted frame.
PAGE_JS = """
window.__bench = {
  nextPaint: () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0))),
  async time (fn) { const t = performance.now(); fn(); await this.nextPaint(); return performance.now() - t },
  keys: [],
  installKeys () {
    document.addEventListener('keydown', () => {
      const t = performance.now()
      requestAnimationFrame(() => setTimeout(() => this.keys.push(performance.now() - t), 0))
    }, true)
  }
}
"""

MEASURE_JS = """async (n) => {
  const b = window.__bench, g = window.gtkit, p = g.player, s = g.state
  const med = a => { const x = [...a].sort((u, v) => u - v); return x[x.length >> 1] }
  const rep = async (k, fn) => { const out = []; for (let i = 0; i < k; i++) out.push(await fn(i)); return med(out) }
  await b.nextPaint()
  const mid = p.duration / 2
  const zin = [], zout = []
  for (let i = 0; i < 5; i++) {
    zin.push(await b.time(() => { p.zoomTo(50); p.ws.setScrollTime(mid) }))
    await new Promise(r => setTimeout(r, 200))
    zout.push(await b.time(() => p.zoomTo(0)))
    await new Promise(r => setTimeout(r, 200))
  }
  const fitRegions = p.regionById.size, fitOverview = p.overviewCount
  p.zoomTo(50); p.ws.setScrollTime(mid); await new Promise(r => setTimeout(r, 300))
  const scroll = await rep(9, i => b.time(() => p.ws.setScrollTime(mid + (i + 1) * 20)))
  p.ws.setScrollTime(mid); p.seek(mid); await new Promise(r => setTimeout(r, 300))
  document.activeElement?.blur?.()
  const key = (k) => document.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }))
  // J selects the next segment and seeks to it; with no segment there is nothing to select, so the
  // baseline is the seek J does (the same playhead move and scroll).
  const select = await rep(7, i => b.time(() => {
    if (n) key('j')
    else { p.seek(mid + i * 3); p.ws.setScrollTime(Math.max(0, mid + i * 3 - 0.5)) }
  }))
  const track = s.ensureActiveTrack()
  let added = null
  const add = await rep(5, i => b.time(() => {
    added = s.addSegment({ track, start: mid + 0.2 + i * 0.01, end: mid + 0.25 + i * 0.01 })
    s.select(added)
  }))
  const drag = await rep(7, i => b.time(() => s.setSegmentTimes(added, mid + 0.3, mid + 0.6 + i * 0.05)))
  return { zoomIn: med(zin), zoomOut: med(zout), scroll, select, add, drag, added,
    regions: p.regionById.size, fitRegions, fitOverview }
}"""


def transcribe_json(minutes: float, count: int) -> dict:
    """Transcribe batch output with `count` alternating speaker turns filling `minutes`."""
    items, segments = [], []
    if count:
        slot = minutes * 60 / count
        for i in range(count):
            speaker = f"spk_{i % 2}"
            start = i * slot + 0.05
            end = start + slot * 0.8
            n_words = max(1, min(25, int((end - start) / 0.3)))
            step = (end - start) / n_words
            seg_items = []
            for j in range(n_words):
                ws, we = start + j * step, start + (j + 1) * step - 0.01
                items.append({"type": "pronunciation", "start_time": f"{ws:.3f}", "end_time": f"{we:.3f}",
                              "speaker_label": speaker,
                              "alternatives": [{"confidence": "0.9", "content": WORDS[(i + j) % len(WORDS)]}]})
                seg_items.append({"speaker_label": speaker, "start_time": f"{ws:.3f}", "end_time": f"{we:.3f}"})
            items.append({"type": "punctuation", "alternatives": [{"confidence": "0.0", "content": "."}]})
            segments.append({"start_time": f"{start:.3f}", "end_time": f"{end:.3f}", "speaker_label": speaker,
                             "items": seg_items})
    text = " ".join(i["alternatives"][0]["content"] for i in items)
    return {"jobName": f"bench-{count}", "accountId": "000000000000", "status": "COMPLETED",
            "results": {"transcripts": [{"transcript": text}], "items": items,
                        "speaker_labels": {"speakers": 2, "segments": segments}}}


def build(work: Path, minutes: float, counts: list[int]) -> tuple[Path, Path, dict[int, str]]:
    media = work / "media"
    media.mkdir(parents=True, exist_ok=True)
    wav = media / f"call_{minutes:g}min.wav"
    generate_wav(wav, minutes)  # whole minutes in ui_load; fractional minutes only in quick runs
    (work / "transcribe").mkdir(exist_ok=True)
    records = []
    for count in counts:
        (work / "transcribe" / f"call_{count}.json").write_text(json.dumps(transcribe_json(minutes, count)))
        records.append({"interaction_id": f"bench-{count}", "channel": "voice",
                        "media_uri": f"{BUCKET}/media/{wav.name}",
                        "media_format": "wav", "duration_seconds": minutes * 60, "language_code": "en-US",
                        "transcribe_output_uri": f"{BUCKET}/transcribe/call_{count}.json",
                        "speaker_roles": {"spk_0": "agent", "spk_1": "customer"}})
    feedback = work / "feedback.jsonl"
    feedback.write_text("".join(json.dumps(r) + "\n" for r in records))
    manifest = work / "manifest.jsonl"
    subprocess.run([str(REPO / ".venv" / "bin" / "gtkit"), "manifest", "build", str(feedback), "--out", str(manifest),
                    "--mirror", f"{BUCKET}/={work}", "--peaks", str(work / "peaks"),
                    "--sidecar-prefix", str(work / "sidecars")], check=True, stdout=subprocess.DEVNULL)
    where = {}
    for count, line in zip(counts, manifest.read_text().splitlines(), strict=True):
        data = json.loads(line)
        where[count] = (f"line {len(line) / 1e3:.0f} KB" + (", sidecar" if "sidecar-ref" in data else "")
                        + (", peaks" if "peaks-ref" in data else ""))
    return manifest, wav, where


def measure(pw, url: str, count: int, timeout_s: float) -> dict:
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "gtkit_worker", "value": "bench", "url": url}])
        context.add_init_script(PAGE_JS)
        page = context.new_page()
        page.goto(url, wait_until="commit")
        deadline = time.monotonic() + timeout_s
        loaded = None
        while time.monotonic() < deadline:
            loaded = page.evaluate("""(n) => { const g = window.gtkit
              if (!g || !g.drawnAt || !g.player || g.state.segments.length < n) return null
              if (!window.__segIn) window.__segIn = performance.now()
              return { drawn: g.drawnAt, segIn: window.__segIn } }""", count)
            if loaded:
                break
            time.sleep(0.01)
        if not loaded:
            return {"note": f"not loaded after {timeout_s:.0f} s"}
        page.wait_for_timeout(1500)  # regions, lists, GC
        out = {"drawn": loaded["drawn"] / 1000, "segIn": loaded["segIn"] / 1000,
               "rssLoad": peak_rss_mb(renderer_pids())}
        out.update(page.evaluate(MEASURE_JS, count))
        page.wait_for_timeout(300)
        # Typing: real key events into the new segment's text box.
        page.evaluate("window.__bench.installKeys()")
        box = page.locator(f'[data-segment-id="{out["added"]}"] textarea')
        box.click()
        page.keyboard.type("the parcel is at the depot", delay=60)
        page.wait_for_timeout(300)
        keys = page.evaluate("window.__bench.keys")
        out["typing"] = statistics.median(keys[2:] or keys)
        page.wait_for_timeout(1500)  # the idle autosave and checks land in the RSS too
        out["rss"] = peak_rss_mb(renderer_pids())
        return out
    except Exception as exc:  # a crashed renderer is a result
        return {"note": f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"}
    finally:
        browser.close()


FIGURES = [("drawn", "drawn", "s", 3), ("segIn", "segs in", "s", 3), ("rssLoad", "RSS loaded", "MB", 0),
           ("rss", "RSS at end", "MB", 0),
           ("zoomIn", "zoom in", "ms", 1), ("zoomOut", "zoom out", "ms", 1), ("scroll", "scroll", "ms", 1),
           ("select", "select", "ms", 1), ("add", "add", "ms", 1), ("drag", "drag", "ms", 1),
           ("typing", "typing/key", "ms", 1)]


def combine(runs: list[dict]) -> dict:
    """Median of each figure over the runs that have it; the highest RSS; the notes of failed runs."""
    out: dict = {}
    for key in {k for r in runs for k in r}:
        values = [r[key] for r in runs if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool)]
        if key.startswith("rss") and values:
            out[key] = max(values)
        elif values:
            out[key] = statistics.median(values)
        else:
            out[key] = next((r[key] for r in runs if key in r), None)
    failed = [r["note"] for r in runs if "note" in r]
    if failed:
        out["note"] = f"{len(failed)} of {len(runs)} runs failed: {failed[0]}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=180)
    ap.add_argument("--counts", type=int, nargs="+", default=[0, 500, 3000, 10000])
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--repeat", type=int, default=3,
                    help="Runs per count, interleaved across counts (medians are printed; RSS: the highest).")
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if not Path(CHROMIUM).exists() or not shutil.which("ffmpeg"):
        sys.exit(f"needs {CHROMIUM} and ffmpeg")
    counts = sorted(set(args.counts) | {0})
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="gtkit-bench-segs-"))
    try:
        t0 = time.perf_counter()
        manifest, _, where = build(work, args.minutes, counts)
        print(f"prepared in {time.perf_counter() - t0:.1f} s (WAV, Transcribe JSON, manifest build --peaks "
              f"--sidecar-prefix): " + "; ".join(f"{c}: {w}" for c, w in where.items()), flush=True)
        source = PreviewSource(manifest, load_label_schema("call-center"), out=work / "out",
                               storage=Storage([f"{BUCKET}/={work}"]))
        runs: dict[int, list[dict]] = {c: [] for c in counts}
        with sync_playwright() as pw, PortalServer(create_app(source)) as portal:
            # Interleaved (0, 500, ..., 0, 500, ...): a busy spell of the machine hits every count alike.
            for rep in range(max(1, args.repeat)):
                for i, count in enumerate(counts):
                    runs[count].append(measure(pw, f"{portal.url}/task/{i}", count, args.timeout))
                    print(f"  run {rep + 1}: measured {count} segments", file=sys.stderr, flush=True)
        results = {c: combine(r) for c, r in runs.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = results[0]
    print(f"\n{args.minutes:g}-minute call, headless chromium, {max(1, args.repeat)} interleaved runs per count "
          "(medians; RSS: highest); latencies: action -> next frame painted")
    header = f"{'segments':>8} | " + " | ".join(f"{label:>15}" for _, label, _, _ in FIGURES) + " | notes"
    print(header)
    print("-" * len(header))
    for count in counts:
        r = results[count]
        cells = []
        for key, _, unit, digits in FIGURES:
            v, b = r.get(key), base.get(key)
            if v is None:
                cells.append(f"{'-':>15}")
                continue
            ratio = f" {v / b:4.2f}x" if count and b else "      "
            cells.append(f"{v:.{digits}f} {unit}{ratio}".rjust(15))
        notes = [r["note"]] if r.get("note") else []
        if "regions" in r:
            notes.append(f"regions: {r['regions']:g} at 50 px/s, {r['fitRegions']:g} at the whole file"
                         + (f" (+{r['fitOverview']:g} on the overview canvas)" if r["fitOverview"] else ""))
        note = "; ".join(notes)
        print(f"{count:>8} | " + " | ".join(cells) + f" | {note}")
    print("\nRatios: to the same call with 0 segments. Target (issue 15), 3,000 segments on 180 min: drawn < 1.0 s,"
          " RSS < 300 MB, every latency within 1.5x.")


if __name__ == "__main__":
    main()
