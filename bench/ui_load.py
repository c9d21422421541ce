"""UI load benchmark: the full worker UI (portal + precomputed peaks) on 1 to 180-minute audio.

For each length it generates a 16 kHz mono WAV, computes its peaks (`gtkit peaks`), opens the task
page through the local portal in a fresh headless Debian chromium and prints:

- time from navigation start to the waveform drawn (the UI's first `redrawcomplete`), and
- the renderer processes' peak RSS (VmHWM from /proc; the JS heap hides decoded audio),

next to a baseline measured in the same run: a bare page that lets wavesurfer fetch and decode the
whole file (no peaks), as the public sample's UI does. A last row opens a task whose media is
missing and reports whether the UI shows an error message. Prints a table; asserts nothing.

The UI loads the gzip binary peaks file `gtkit manifest build --peaks` writes (`--peaks-format json`:
the PeaksFile JSON; `--plain-peaks`: uncompressed); the preparation lines give the plain JSON size
and the served file's size, and their download time at 10 Mbit/s.

`--spectrogram` also computes the precomputed spectrogram (same decode, `gtkit peaks --spectrogram`),
references it as `spectrogram-ref`, and once the waveform is drawn clicks the Spectrogram toggle: it
reports the time from the click to the spectrogram drawn (download + parse + first draw), the cost of
one redraw at the whole-file view and at the highest zoom, and the RSS then includes the spectrogram.

    .venv/bin/python bench/ui_load.py                 # 1, 10, 60, 120, 180 minutes
    .venv/bin/python bench/ui_load.py --minutes 1 10  # a quick run
    .venv/bin/python bench/ui_load.py --minutes 1 60 180 --sizes-only  # peaks sizes, no browser
    .venv/bin/python bench/ui_load.py --minutes 60 180 --spectrogram --no-baseline
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, abort, send_file

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from toolkit.contract import load_label_schema  # noqa: E402
from toolkit.contract.peaks import peaks_json  # noqa: E402
from toolkit.ingest.peaks import compute_peaks, write_peaks  # noqa: E402
from toolkit.ingest.spectrogram import compute_peaks_and_spectrogram, write_spectrogram  # noqa: E402
from toolkit.service.portal import PortalServer, PreviewSource, create_app  # noqa: E402
from toolkit.storage import Storage  # noqa: E402
from toolkit.task.template import STATIC_DIR  # noqa: E402

CHROMIUM = os.environ.get("GTKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
BUCKET = "s3://gtkit-bench"
SAMPLE_RATE = 16000
LINK_MBIT = 10  # an annotator's link, for the download-time column

BARE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>bare wavesurfer</title></head>
<body><div id="wave" style="width: 1200px"></div>
<script type="module">
import WaveSurfer from '/assets/vendor/wavesurfer/wavesurfer.esm.js'
const ws = WaveSurfer.create({ container: '#wave', url: '/media/%s', height: 128 })
let decoded = false
ws.on('decode', () => { decoded = true })
ws.on('redrawcomplete', () => { if (decoded && !window.drawnAt) window.drawnAt = performance.now() })
ws.on('error', err => { window.loadError = String(err && err.message || err) })
</script></body></html>
"""


@dataclass
class Result:
    draw_s: float | None
    rss_mb: float | None
    note: str = ""
    spectrogram: dict | None = None  # --spectrogram: toggle-to-drawn and redraw times, in ms


# Clicks the toggle; resolves to ms from the click to the first spectrogram draw, plus redraw costs.
SPECTROGRAM_JS = """async () => {
  const p = window.gtkit.player
  const t0 = performance.now()
  document.querySelector('[data-action=toggle-spectrogram]').click()
  while (!p.spectrogramDrawnAt) await new Promise(r => setTimeout(r, 5))
  const toggle = p.spectrogramDrawnAt - t0
  const time = () => { const t = performance.now(); p.spectrogram.draw(); return performance.now() - t }
  const fit = time()
  p.zoomTo(10000)
  p.ws.setScrollTime(p.duration / 2)
  await new Promise(r => setTimeout(r, 300))
  const zoomed = time()
  p.zoomTo(0)
  return { toggle, fit, zoomed, width: p.spectrogram.canvas.width }
}"""


def generate_wav(path: Path, minutes: int) -> None:
    """Speech-like amplitude envelope over a tone plus noise, so the waveform is not flat."""
    seconds = minutes * 60
    expr = "(0.4*sin(2*PI*180*t)+0.1*(random(0)-0.5))*(0.2+0.8*abs(sin(2*PI*0.35*t)))"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"aevalsrc='{expr}':s={SAMPLE_RATE}:d={seconds}", "-ac", "1", "-c:a", "pcm_s16le",
                    str(path)], check=True)


# -- chromium renderer memory ---------------------------------------------------------------------
def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def renderer_pids() -> list[int]:
    """Chromium renderer processes started (indirectly) by this Python process."""
    kids = _children_map()
    todo, seen = [os.getpid()], set()
    while todo:
        pid = todo.pop()
        for child in kids.get(pid, []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    out = []
    for pid in seen:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()  # chromium rewrites its argv into one space-separated string
        except OSError:
            continue
        if b"--type=renderer" in cmd and b"--extension-process" not in cmd:
            out.append(pid)
    return out


def peak_rss_mb(pids: list[int]) -> float | None:
    best = None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        best = kb if best is None else max(best, kb)
        except OSError:
            continue
    return None if best is None else best / 1024


# -- one measurement ------------------------------------------------------------------------------
def measure(playwright, url: str, ready_js: str, error_js: str, timeout_s: float, cookie_url: str | None,
            spectrogram: bool = False) -> Result:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        if cookie_url:
            context.add_cookies([{"name": "gtkit_worker", "value": "bench", "url": cookie_url}])
        page = context.new_page()
        page.goto(url, wait_until="commit")
        deadline = time.monotonic() + timeout_s
        draw_ms = None
        error = None
        while time.monotonic() < deadline:
            draw_ms = page.evaluate(ready_js)
            error = page.evaluate(error_js)
            if draw_ms or error:
                break
            time.sleep(0.02)
        page.wait_for_timeout(1000)  # let post-draw work (regions, lists, GC) show up in the peak
        spec = None
        if spectrogram and draw_ms:
            spec = page.evaluate(SPECTROGRAM_JS)
            page.wait_for_timeout(1000)
        rss = peak_rss_mb(renderer_pids())
        if draw_ms:
            return Result(draw_ms / 1000, rss, spectrogram=spec)
        return Result(None, rss, f"error: {error}" if error else f"not drawn after {timeout_s:.0f} s")
    except Exception as exc:  # a crashed renderer is a result, not a benchmark failure
        return Result(None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
    finally:
        browser.close()


def median(results: list[Result]) -> Result:
    """Median draw time over runs (a run that never drew counts as slowest); peak RSS is the max."""
    ordered = sorted(results, key=lambda r: float("inf") if r.draw_s is None else r.draw_s)
    mid = ordered[len(ordered) // 2]
    rss = [r.rss_mb for r in results if r.rss_mb is not None]
    spread = [r.draw_s for r in results if r.draw_s is not None]
    note = mid.note
    if len(results) > 1 and spread:
        note = "; ".join(x for x in (note, f"runs {min(spread):.2f}-{max(spread):.2f} s") if x)
    specs = [r.spectrogram for r in results if r.spectrogram]
    spec = None
    if specs:  # medians per figure
        spec = {k: sorted(s[k] for s in specs)[len(specs) // 2] for k in specs[0]}
    return Result(mid.draw_s, max(rss) if rss else None, note, spec)


def bare_app(media_dir: Path) -> Flask:
    app = Flask("bare")

    @app.get("/bare/<name>")
    def bare(name: str) -> str:
        return BARE_PAGE % name

    @app.get("/assets/<path:rel>")
    def assets(rel: str):
        path = (STATIC_DIR / rel).resolve()
        if not path.is_relative_to(STATIC_DIR) or not path.is_file():
            abort(404)
        return send_file(path, mimetype="text/javascript" if path.suffix == ".js" else None)

    @app.get("/media/<name>")
    def media(name: str):
        path = media_dir / name
        if not path.is_file():
            abort(404)
        return send_file(path, mimetype="audio/wav", conditional=True)

    return app


def print_prep(prep: dict[int, tuple[float, ...]]) -> None:
    print()
    print("Preparation (this machine): WAV generation, peaks computation, plain peaks JSON size, WAV size; "
          f"served peaks file size, its encoding time and ratio, download at {LINK_MBIT} Mbit/s JSON -> served")
    for minutes, (gen, pk, psize, wsize, gzsize, gztime, served) in prep.items():
        print(f"  {minutes:>4} min: generate {gen:5.1f} s, peaks {pk:5.2f} s, "
              f"JSON {psize:6.2f} MB, WAV {wsize:7.1f} MB | {served} {gzsize:6.2f} MB in {gztime:4.2f} s "
              f"({psize / gzsize:4.1f}x smaller), download {psize * 8 / LINK_MBIT:5.2f} s -> "
              f"{gzsize * 8 / LINK_MBIT:5.2f} s")


def print_spec_sizes(sizes: dict[int, tuple[float, float, float]]) -> None:
    for minutes, (secs, raw, gz) in sizes.items():
        print(f"  {minutes:>4} min: peaks + spectrogram (one decode) {secs:5.2f} s, spectrogram {raw:6.2f} MB raw, "
              f"{gz:6.2f} MB gzip, download {gz * 8 / LINK_MBIT:5.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10, 60, 120, 180])
    parser.add_argument("--timeout", type=float, default=90.0, help="Seconds to wait for a draw.")
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs of the full UI per length (the median is printed; baseline runs once).")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--keep", type=Path, help="Keep the generated media in this directory.")
    parser.add_argument("--peaks-format", choices=["bin", "json"], default="bin",
                        help="Peaks encoding the UI loads (default: bin, as `gtkit manifest build --peaks`).")
    parser.add_argument("--plain-peaks", action="store_true", help="Serve the peaks uncompressed instead of gzip.")
    parser.add_argument("--spectrogram", action="store_true",
                        help="Also precompute the spectrogram and time the Spectrogram toggle in the full UI.")
    parser.add_argument("--sizes-only", action="store_true",
                        help="Only generate the media and print the peaks sizes (no browser).")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if not Path(CHROMIUM).exists() or not shutil.which("ffmpeg"):
        sys.exit(f"needs {CHROMIUM} and ffmpeg")

    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="gtkit-bench-"))
    media_dir = args.keep or (work / "media")
    media_dir.mkdir(parents=True, exist_ok=True)
    lines, prep = [], {}
    spec_sizes: dict[int, tuple[float, float, float]] = {}
    for minutes in args.minutes:
        wav = media_dir / f"tone_{minutes}min.wav"
        t0 = time.perf_counter()
        if not wav.exists():
            generate_wav(wav, minutes)
        t1 = time.perf_counter()
        spec_path = None
        if args.spectrogram:
            peaks, spec = compute_peaks_and_spectrogram(wav)
            spec_path = work / f"{wav.stem}.spectrogram.bin.gz"
            write_spectrogram(spec, str(spec_path), Storage())
            spec_sizes[minutes] = (time.perf_counter() - t1, spec.data.nbytes / 1e6, spec_path.stat().st_size / 1e6)
        else:
            peaks = compute_peaks(wav)
        peaks_path = work / f"{wav.stem}.peaks.json"
        peaks_path.write_bytes(peaks_json(peaks))
        t2 = time.perf_counter()
        # `.peaks.bin.gz` is what `gtkit manifest build --peaks` writes.
        served = work / f"{wav.stem}.peaks.{args.peaks_format}{'' if args.plain_peaks else '.gz'}"
        write_peaks(peaks, str(served), Storage())
        t3 = time.perf_counter()
        prep[minutes] = (t1 - t0, t2 - t1, peaks_path.stat().st_size / 1e6, wav.stat().st_size / 1e6,
                         served.stat().st_size / 1e6, t3 - t2, served.name.split(".peaks.")[1])
        lines.append({"source-ref": f"{BUCKET}/{wav.name}", "media-type": "audio",
                      "interaction-id": f"bench-{minutes}", "duration-seconds": float(minutes * 60),
                      "peaks-ref": str(served)})
        if spec_path:
            lines[-1]["spectrogram-ref"] = str(spec_path)
    if args.sizes_only:
        print_prep(prep)
        print_spec_sizes(spec_sizes)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return
    # A task whose media is missing: the UI must say so.
    lines.append({"source-ref": f"{BUCKET}/missing.wav", "media-type": "audio", "interaction-id": "bench-missing",
                  "duration-seconds": 60.0})
    manifest = work / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    source = PreviewSource(manifest, load_label_schema("call-center"), out=work / "out",
                           storage=Storage([f"{BUCKET}/={media_dir}"]))

    ui_ready = "window.gtkit && window.gtkit.drawnAt"
    ui_error = ("(() => { const e = document.querySelector('[data-role=media-error]');"
                " return e && !e.hidden ? e.textContent : null })()")
    rows = []
    with sync_playwright() as pw, PortalServer(create_app(source)) as portal, \
            PortalServer(bare_app(media_dir)) as bare:
        for i, minutes in enumerate(args.minutes):
            full = median([measure(pw, f"{portal.url}/task/{i}", ui_ready, ui_error, args.timeout, portal.url,
                                   spectrogram=args.spectrogram)
                           for _ in range(max(1, args.repeat))])
            base = Result(None, None, "skipped")
            if not args.no_baseline:
                base = measure(pw, f"{bare.url}/bare/tone_{minutes}min.wav", "window.drawnAt || null",
                               "window.loadError || null", args.timeout, None)
            rows.append((minutes, full, base))
            print(f"  measured {minutes} min", file=sys.stderr, flush=True)
        missing = measure(pw, f"{portal.url}/task/{len(args.minutes)}", ui_ready, ui_error, 20, portal.url)

    def fmt(value: float | None, unit: str, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f} {unit}"

    print_prep(prep)
    print_spec_sizes(spec_sizes)
    print(f"Full UI loads the {'plain' if args.plain_peaks else 'gzip'} {args.peaks_format} peaks file.")
    print()
    header = (f"{'audio':>8} | {'full UI: drawn':>14} | {'full UI: RSS':>12} | {'baseline: drawn':>15} | "
              f"{'baseline: RSS':>13} | {'time ratio':>10} | {'RSS ratio':>9} | notes")
    print(header)
    print("-" * len(header))
    for minutes, full, base in rows:
        t_ratio = f"{full.draw_s / base.draw_s:.2f}" if full.draw_s and base.draw_s else "-"
        m_ratio = f"{full.rss_mb / base.rss_mb:.2f}" if full.rss_mb and base.rss_mb else "-"
        notes = "; ".join(n for n in (f"full UI: {full.note}" if full.note else "",
                                      f"baseline: {base.note}" if base.note else "") if n)
        print(f"{minutes:>4} min | {fmt(full.draw_s, 's', 3):>14} | {fmt(full.rss_mb, 'MB', 0):>12} | "
              f"{fmt(base.draw_s, 's', 3):>15} | {fmt(base.rss_mb, 'MB', 0):>13} | {t_ratio:>10} | "
              f"{m_ratio:>9} | {notes}")
    if args.spectrogram:
        print("\nSpectrogram toggled on after the waveform was drawn (median ms; RSS above includes it):")
        for minutes, full, _ in rows:
            s = full.spectrogram
            if s:
                print(f"  {minutes:>4} min: click -> drawn {s['toggle']:6.0f} ms | redraw whole file {s['fit']:5.1f} ms"
                      f" | redraw at 10 px/ms {s['zoomed']:5.1f} ms | canvas {s['width']} px wide")
            else:
                print(f"  {minutes:>4} min: not measured ({full.note})")
    shown = missing.note.startswith("error:")
    print(f"\nMissing media: error message shown to the worker: {'yes' if shown else 'NO'}"
          f" ({missing.note or 'drawn without media'})")
    print(f"Full UI: median of {max(1, args.repeat)} runs, RSS = highest renderer VmHWM over those runs.")
    print("Target (issue 3): full UI under 1.0 s and under 300 MB renderer RSS at every length.")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
