"""`gtkit manifest build|validate`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from toolkit.cli.common import MirrorOpt, QuietOpt, console, fail, make_storage
from toolkit.ingest.build import BuildOptions, BuildReport, Problem, build_manifest, validate_manifest
from toolkit.storage import is_s3

manifest_app = typer.Typer(help="Build and check Ground Truth input manifests.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(manifest_app, name="manifest")


def auto_jobs(inputs: list[str], peaks: str | None) -> int:
    """--jobs 0: ffmpeg decodes use the cores; S3 reads (Transcribe outputs) wait on the network."""
    if peaks:
        return max(1, min(os.cpu_count() or 1, 8))
    return 8 if any(is_s3(uri) for uri in inputs) else 1


@manifest_app.command("build")
def build(
    inputs: Annotated[list[str], typer.Argument(
        metavar="INPUT...",
        help="Processed feedback files, local or s3://: JSONL, or CSV when the name ends in .csv "
             "(one column per field, nested fields as JSON text).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Manifest to write (local or s3://).")],
    errors: Annotated[str | None, typer.Option("--errors", help="Write every problem as JSONL here.")] = None,
    transcribe: Annotated[
        bool | None,
        typer.Option("--transcribe/--no-transcribe",
                     help="Turn Transcribe speaker turns into pre-segments. Default: when a record has one."),
    ] = None,
    sidecar_prefix: Annotated[
        str | None,
        typer.Option("--sidecar-prefix", help="Where to put pre-segments/transcript of lines over Ground "
                     "Truth's size limits (s3:// prefix for real jobs, a directory for local runs)."),
    ] = None,
    peaks: Annotated[
        str | None,
        typer.Option("--peaks", help="Compute waveform peaks for each media file into this prefix and "
                     "reference them (needs ffmpeg)."),
    ] = None,
    peaks_per_second: Annotated[float, typer.Option(help="Peaks resolution with --peaks.")] = 100.0,
    spectrogram: Annotated[
        bool,
        typer.Option("--spectrogram", help="With --peaks: also write a precomputed spectrogram per media file "
                     "(same decode) and reference it as spectrogram-ref."),
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Write nothing unless every record is good.")] = False,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", min=0, max=64,
        help="Records converted at once (threads: ffmpeg peaks, Transcribe and sidecar I/O). 0 = auto: "
             "the cores (at most 8) with --peaks, 8 for s3:// inputs, else 1. Output is identical "
             "whatever the number.")] = 0,
    model_outputs: Annotated[str | None, typer.Option(
        "--model-outputs", help="`gtkit bedrock import` output: pre-fill content fields (e.g. the summary) with "
        "the model's text for workers to correct; the label keeps both texts.")] = None,
    model_output_field: Annotated[str | None, typer.Option(
        "--model-output-field", help="Content field to pre-fill; default: the field each output was exported "
        "for (its record id ends in /content.FIELD).")] = None,
    mirror: MirrorOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Turn processed feedback records into a Ground Truth input manifest.

    Reads JSONL, or CSV when a file name ends in .csv. Media records become manifest lines, with
    Amazon Transcribe speaker turns as editable pre-segments. Chat records are skipped with a
    reason; bad records are reported with their file, line and field, and the exit code is 2 if
    any record failed.

    Example (offline, with the bundled examples):

        gtkit manifest build examples/feedback/processed_feedback.jsonl \\
            --out manifest.jsonl --mirror s3://example-feedback-bucket/=examples

    From CSV (same columns as the JSONL fields):

        gtkit manifest build feedback.csv --out manifest.jsonl
    """
    if spectrogram and not peaks:
        raise fail("--spectrogram needs --peaks PREFIX (the spectrogram is written next to the peaks)")
    storage = make_storage(mirror)
    options = BuildOptions(transcribe=transcribe, sidecar_prefix=sidecar_prefix, peaks_prefix=peaks,
                           peaks_per_second=peaks_per_second, spectrogram=spectrogram, strict=strict,
                           jobs=jobs or auto_jobs(inputs, peaks), model_outputs=model_outputs,
                           model_output_field=model_output_field)
    total = sum(Path(p).stat().st_size for p in inputs if not is_s3(p) and Path(p).exists())
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(),
                        TimeElapsedColumn(), console=console, transient=True, disable=quiet)
    with progress:
        task = progress.add_task("building manifest", total=total or None)
        report = build_manifest(inputs, out, storage, options, errors_out=errors,
                                on_record=lambda n: progress.advance(task, n))
    if not quiet:
        _print_report(report, out, errors)
    if report.failed:
        raise typer.Exit(2)


def _print_report(report: BuildReport, out: str, errors: str | None) -> None:
    table = Table(title="manifest build", show_header=False, title_justify="left")
    table.add_row("records read", str(report.records_in))
    table.add_row("manifest lines written", str(report.lines_out if report.written else 0))
    for reason, count in sorted(report.skip_reasons.items()):
        table.add_row("skipped", Text(f"{count}  ({reason})"))
    table.add_row("records with errors", str(report.errors))
    if report.unreadable_files:
        table.add_row("files not read (not UTF-8)", str(report.unreadable_files))
    if report.sidecars:
        table.add_row("sidecar files", str(report.sidecars))
    if report.peaks:
        table.add_row("peaks files", str(report.peaks))
    if report.spectrograms:
        table.add_row("spectrogram files", str(report.spectrograms))
    if report.prefilled or report.model_outputs_unused:
        table.add_row("lines with model answers", str(report.prefilled))
    for reason, count in sorted(report.model_outputs_unused.items()):
        table.add_row("model outputs not used", Text(f"{count}  ({reason})"))
    console.print(table)
    errors_only = [p for p in report.first_problems if p.kind == "error"]
    if errors_only:
        console.print(_problem_table(errors_only))
    if report.written:
        console.print(f"manifest: {escape(out)}", highlight=False)
    else:
        console.print("[bold red]--strict: nothing written because some records failed[/]")
    if errors:
        console.print(f"problem report: {escape(errors)}", highlight=False)
    elif report.failed or report.skipped:
        console.print("(pass --errors PATH for the full problem report as JSONL)")


def _problem_table(problems: list[Problem]) -> Table:
    table = Table(title="problems" + (" (first 25)" if len(problems) >= 25 else ""), title_justify="left",
                  expand=True)
    for column in ("kind", "where", "interaction", "field", "message"):
        table.add_column(column, overflow="fold")
    for p in problems:
        # Text(), not markup: messages and ids may contain brackets.
        table.add_row(*(Text(v) for v in (p.kind, f"{Path(p.file).name}:{p.line}", p.interaction_id or "?",
                                          p.field, p.message)))
    return table


@manifest_app.command("validate")
def validate(
    manifest: Annotated[str, typer.Argument(help="Manifest to check (local or s3://).")],
    mirror: MirrorOpt = None,
) -> None:
    """Check an existing manifest against the contract and Ground Truth's limits. Exit 2 on problems.

    Example: gtkit manifest validate manifest.jsonl
    """
    storage = make_storage(mirror)
    problems = []
    for problem in validate_manifest(manifest, storage):
        problems.append(problem)
    if problems:
        console.print(_problem_table(problems[:25]))
        console.print(f"[bold red]{len(problems)} problem(s)[/] in {escape(manifest)}", highlight=False)
        raise typer.Exit(2)
    console.print(f"[green]ok[/]: {escape(manifest)} matches the manifest contract", highlight=False)
