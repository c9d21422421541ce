"""`gtkit peaks`, `gtkit template render`, `gtkit preview`: the worker UI side."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from toolkit.cli.common import MirrorOpt, console, make_storage
from toolkit.task.template import DEFAULT_BOOT_TIMEOUT

template_app = typer.Typer(help="Render the Ground Truth worker task template.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("peaks")(peaks)
    app.add_typer(template_app, name="template")
    app.command("preview")(preview)


def peaks(
    media: Annotated[str, typer.Argument(help="Audio or video file (wav, mp3, mp4, ...; local or s3://).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Peaks file to write (local or s3://): "
                                                         "x.peaks.bin[.gz] binary, else JSON; a name "
                                                         "ending in .gz is written gzip-compressed.")],
    peaks_per_second: Annotated[float, typer.Option("--peaks-per-second", min=0.1,
                                                    help="Min/max pairs per second of media.")] = 100.0,
    channels: Annotated[int, typer.Option("--channels", min=1, max=8,
                                          help="1 downmixes; 2 keeps a stereo pair.")] = 1,
    gzip: Annotated[bool | None, typer.Option(
        "--gzip/--no-gzip", help="Compress (stored with Content-Encoding: gzip on S3, so browsers "
                                 "decompress it). Default: only when --out ends in .gz.")] = None,
    spectrogram: Annotated[str | None, typer.Option(
        "--spectrogram", help="Also write a precomputed spectrogram here (same decode; local or s3://; "
                              "a name ending in .gz is gzip-compressed), for the task's spectrogram-ref.")] = None,
    spectrogram_fps: Annotated[float | None, typer.Option(
        "--spectrogram-fps", min=1.0, max=100.0,
        help="Spectrogram frames per second. Default: from the duration, 50 up to 18 minutes, "
             "down to 10 from 90 minutes (at most 54,000 frames until then).")] = None,
    spectrogram_bins: Annotated[int, typer.Option(
        "--spectrogram-bins", min=8, max=512, help="Spectrogram frequency bands (linear, up to 8 kHz).")] = 64,
    mirror: MirrorOpt = None,
) -> None:
    """Compute min/max waveform peaks so the worker UI never decodes the whole media.

    Example: gtkit peaks examples/media/call_001.wav --out call_001.peaks.bin.gz

    The name picks the encoding: `.peaks.bin[.gz]` is the compact binary the worker UI reads
    fastest (what `gtkit manifest build --peaks` writes), `.peaks.json[.gz]` the PeaksFile JSON.

    With the spectrogram the worker can show for long media (one decode for both):

        gtkit peaks examples/media/call_001.wav --out call_001.peaks.bin.gz \\
            --spectrogram call_001.spectrogram.bin.gz
    """
    from toolkit.ingest.peaks import peaks_for_uri, write_peaks

    storage = make_storage(mirror)
    spec = None
    if spectrogram:
        from toolkit.ingest.spectrogram import peaks_and_spectrogram_for_uri

        result, spec = peaks_and_spectrogram_for_uri(media, storage, peaks_per_second, channels,
                                                     frames_per_second=spectrogram_fps, bins=spectrogram_bins)
    else:
        result = peaks_for_uri(media, storage, peaks_per_second, channels)
    compressed = write_peaks(result, out, storage, compress=gzip)
    console.print(f"{out}: {result.values.shape[1] // 2} peaks/channel, {result.duration:.2f} s, "
                  f"{result.peaks_per_second:g} per second{', gzip' if compressed else ''}", highlight=False)
    if spec is not None:
        from toolkit.ingest.spectrogram import write_spectrogram

        compressed = write_spectrogram(spec, spectrogram, storage, compress=gzip)
        h = spec.header
        console.print(f"{spectrogram}: {h.frames} frames x {h.bins} bands up to {h.frequency_max:g} Hz, "
                      f"{h.frames_per_second:g} per second{', gzip' if compressed else ''}", highlight=False)


@template_app.command("render")
def render(
    schema: Annotated[str, typer.Option("--schema", help="Label schema YAML, or a built-in name.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Template to write (local or s3://).")],
    assets_base: Annotated[str | None, typer.Option(
        "--assets-base", help="https:// URL static/ is served from. Default: from the deploy config.")] = None,
    stack_name: Annotated[str | None, typer.Option(
        "--stack-name", help="Read the assets URL from this stack's deploy config (gtkit deploy).")] = None,
    deploy_config: Annotated[str | None, typer.Option(
        "--deploy-config", help="Path of a deploy config file (default: .gtkit/deploy-<stack>.json).")] = None,
    variant: Annotated[Literal["audio", "video"] | None,
                       typer.Option("--variant", help="Default: the schema's media type.")] = None,
    boot_timeout: Annotated[float, typer.Option(
        "--boot-timeout", help="Seconds before the page tells the worker the UI has not started (and "
                               "disables Submit until it does).")] = DEFAULT_BOOT_TIMEOUT,
    review: Annotated[bool, typer.Option(
        "--review", help="The review variant, for a review job chained on a labeling job: the "
                         "workers' answers as ghost lanes, the disagreements, accept / edit / reject "
                         "with a note (reads the task input's review or review-ref).")] = False,
) -> None:
    """Render the worker task template (HTML + Liquid) with SRI-pinned assets.

    Example:

        gtkit template render --schema call-center --out template.liquid.html \\
            --assets-base https://d111.cloudfront.net/v/0123abcd/

    After `gtkit deploy`, --assets-base can be left out: it is read from the deploy config.

    The review job's template (same assets): add --review.
    """
    from toolkit.contract import load_label_schema
    from toolkit.task.template import failsafe_csp_hash, render_template

    if assets_base is None:
        from toolkit.aws.config import deployed_assets_base

        assets_base = deployed_assets_base(stack_name, path=deploy_config)
    label_schema = load_label_schema(schema)
    html = render_template(label_schema, assets_base, variant=variant, boot_timeout=boot_timeout, review=review)
    make_storage(None).write_bytes(out, html.encode("utf-8"), content_type="text/html; charset=utf-8")
    kind = "review template" if review else "template"
    console.print(f"{out}: {label_schema.name} {kind}, {variant or label_schema.media} variant, "
                  f"assets from {assets_base}", highlight=False)
    console.print(f"inline boot fail-safe script: {failsafe_csp_hash()} (for a Content-Security-Policy "
                  "script-src, if the page has one)", highlight=False)


def preview(
    manifest: Annotated[str, typer.Option("--manifest", help="Input manifest (JSONL, local or s3://).")],
    schema: Annotated[str, typer.Option("--schema", help="Label schema YAML, or a built-in name.")],
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1.")] = 8080,
    out: Annotated[str, typer.Option("--out", help="Where worker responses go (Ground Truth layout).")]
    = "gtkit-preview",
    job_name: Annotated[str | None, typer.Option("--job-name", help="Default: preview-<schema name>.")] = None,
    mirror: MirrorOpt = None,
) -> None:
    """Serve the worker task template locally, one page per manifest line, saving submissions.

    Example: gtkit preview --manifest manifest.jsonl --schema call-center --mirror s3://example-feedback-bucket/=examples
    """
    from toolkit.contract import load_label_schema
    from toolkit.service.portal import PreviewSource, create_app, run_portal

    storage = make_storage(mirror)
    source = PreviewSource(manifest, load_label_schema(schema), out=out, storage=storage, job_name=job_name)
    app = create_app(source)
    tasks = source.list_tasks()
    console.print(f"{len(tasks)} task(s) from {manifest}; responses under {out}/{source.job_name}/", highlight=False)
    console.print(f"open http://127.0.0.1:{port}/ (Ctrl-C to stop)", highlight=False)
    try:  # port in use: PortalAddressError, the root command's one line
        run_portal(app, port)
    except KeyboardInterrupt:
        console.print("stopped")
