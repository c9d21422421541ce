"""`gtkit export`, `gtkit merge`, `gtkit report`: thin wrappers over toolkit.export."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from toolkit.cli.common import MirrorOpt, QuietOpt, console, fail, make_storage
from toolkit.contract import load_label_schema
from toolkit.export import BatchQuotas, EmptyExportError, ExportOptions, builtin_preset_names
from toolkit.export import export as run_export
from toolkit.export import merge as run_merge
from toolkit.export import report as run_report
from toolkit.export.redact import ChainRedactor, ComprehendRedactor, GuardrailRedactor, Redactor, RegexRedactor
from toolkit.export.summary import RunSummary, render_summary
from toolkit.export.trust import TrustOptions, WorkerTrust
from toolkit.export.workers import collect_workers, write_worker_report
from toolkit.storage import is_s3

AUTO_JOBS_BYTES = 64 * 1024 * 1024
EXIT_EMPTY = EmptyExportError.exit_code  # `gtkit export` wrote 0 records (without --allow-empty)
LabelsOpt = Annotated[str, typer.Option("--labels", "-l", help="Ground Truth output.manifest (local or s3://).")]
AttrOpt = Annotated[str | None, typer.Option(
    "--label-attribute", help="Label attribute name; default: found from its <attr>-metadata sibling.")]
SummaryOpt = Annotated[str | None, typer.Option(
    "--summary-json", help="Also write the run summary (counts, reasons, problem line numbers) as JSON.")]


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
    app.command("merge")(merge_cmd)
    app.command("report")(report_cmd)


@contextlib.contextmanager
def _progress(uri: str, what: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    total = Path(uri).stat().st_size if not is_s3(uri) and Path(uri).exists() else None
    bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeElapsedColumn(), console=console, transient=True, disable=quiet)
    with bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _finish(summary: RunSummary, quiet: bool, summary_json: str | None) -> None:
    if summary_json:
        Path(summary_json).write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")
    if not quiet:
        render_summary(summary, console)


def _redactor(redact: bool, backend: str, patterns: list[str] | None, language: str,
              guardrail_id: str | None, guardrail_version: str, region: str | None) -> Redactor | None:
    if not redact:
        return None
    custom: dict[str, str] = {}
    for spec in patterns or []:
        name, sep, rx = spec.partition("=")
        if not sep or not name or not rx:
            raise typer.BadParameter(f"expected NAME=REGEX, got {spec!r}", param_hint="--redact-pattern")
        custom[name] = rx
    chain: list[Redactor] = [RegexRedactor(custom)]
    if backend == "comprehend":
        chain.append(ComprehendRedactor(language=language, region=region))
    elif backend == "guardrail":
        if not guardrail_id:
            raise typer.BadParameter("--redact-backend guardrail needs --guardrail-id", param_hint="--guardrail-id")
        chain.append(GuardrailRedactor(guardrail_id, guardrail_version, region=region))
    elif backend != "regex":
        raise typer.BadParameter("choose regex, comprehend or guardrail", param_hint="--redact-backend")
    return chain[0] if len(chain) == 1 else ChainRedactor(chain)


def _auto_jobs(labels: str) -> int:
    size = Path(labels).stat().st_size if not is_s3(labels) and Path(labels).exists() else 0
    return min(os.cpu_count() or 1, 4) if size >= AUTO_JOBS_BYTES or is_s3(labels) else 1


def export_cmd(
    labels: LabelsOpt,
    preset: Annotated[str, typer.Option(
        "--preset", "-p", help=f"Built-in preset ({', '.join(builtin_preset_names())}) or a preset YAML file.")],
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="jsonl, trl, bedrock, bedrock-conversation-2024, bedrock-batch, rttm, webvtt, "
        "hf-audio, hf-video, lhotse, nemo, nova-dpo, nemo-dpo.")],
    out: Annotated[str, typer.Option(
        "--out", "-o", help="Output file; a directory/prefix for bedrock-batch, webvtt, hf-audio, hf-video, lhotse "
        "and nemo.")],
    schema: Annotated[str | None, typer.Option(
        "--schema", help="Label schema name or YAML; default: the labelSchema named in the labels.")] = None,
    label_attribute: AttrOpt = None,
    redact: Annotated[bool, typer.Option("--redact/--no-redact", help="Mask PII in every exported text.")] = True,
    redact_backend: Annotated[str, typer.Option(
        help="Extra PII detector after the built-in patterns: regex (none), comprehend, guardrail.")] = "regex",
    redact_pattern: Annotated[list[str] | None, typer.Option(
        "--redact-pattern", help="Extra pattern to mask, NAME=REGEX (masked as [NAME]). Repeatable.")] = None,
    comprehend_language: Annotated[str, typer.Option(help="LanguageCode for Comprehend.")] = "en",
    guardrail_id: Annotated[str | None, typer.Option(help="Bedrock guardrail id or ARN.")] = None,
    guardrail_version: Annotated[str, typer.Option(help="Bedrock guardrail version.")] = "DRAFT",
    region: Annotated[str | None, typer.Option(help="AWS Region for the redaction backend.")] = None,
    bedrock_schema: Annotated[str, typer.Option(
        help="--format bedrock: messages (Claude), conversation-2024 (Nova) or prompt-completion.")] = "messages",
    lineage: Annotated[str, typer.Option(
        help="--format trl: lineage as an extra column (inline) or in <out>.provenance.jsonl (sidecar).")] = "inline",
    reserved_words: Annotated[str, typer.Option(
        help="Bedrock formats, Amazon Nova's reserved words (User:, Bot:, [EOS]...): rewrite (reversibly, "
        "listed in the provenance), fail (naming record and field) or keep.")] = "rewrite",
    batch_min_records: Annotated[int, typer.Option(help="Minimum records per batch job.")] = 100,
    batch_records_per_file: Annotated[int, typer.Option(help="Records per batch input file.")] = 50_000,
    batch_records_per_job: Annotated[int, typer.Option(help="Records per batch job (all files).")] = 50_000,
    batch_file_bytes: Annotated[int, typer.Option(help="Bytes per batch input file.")] = 1_000_000_000,
    batch_job_bytes: Annotated[int, typer.Option(help="Bytes per batch job (all files).")] = 5_000_000_000,
    batch_body: Annotated[str | None, typer.Option(
        help="Batch model input body instead of the preset's: anthropic (Claude), converse (Nova; other models "
        "as a Converse job), llama (Llama 3), titan (Titan Text).")] = None,
    worker_responses: Annotated[bool, typer.Option(
        "--worker-responses", help="For lines without a consolidated label (no post-Lambda), read the "
        "per-worker responses and consolidate them.")] = False,
    jobs: Annotated[int, typer.Option(
        help="Worker processes for parsing and building records; 0 = auto (all cores for inputs over "
        "64 MB). Output is identical whatever the number.")] = 0,
    allow_empty: Annotated[bool, typer.Option(
        "--allow-empty", help=f"Exit 0 and write the (empty) outputs when no record is exported; "
        f"otherwise that fails with exit code {EXIT_EMPTY} and the reasons.")] = False,
    clips: Annotated[bool, typer.Option(
        "--clips", help="hf-audio, hf-video, lhotse, nemo: one clip per segment, cut at its boundaries with ffmpeg "
        "(sample-accurate), instead of the whole media with segment offsets.")] = False,
    cannot_annotate: Annotated[str, typer.Option(
        "--cannot-annotate", help="Items most workers could not annotate (a schema-defined reason, no segments): "
        "skip them (counted as cannot-annotate in the summary) or keep them: skip | keep.")] = "skip",
    min_agreement: Annotated[float | None, typer.Option(
        "--min-agreement", min=0, max=1, help="Skip items whose overall worker agreement is below this "
        "(0-1; after --exclude-workers).")] = None,
    exclude_workers: Annotated[list[str] | None, typer.Option(
        "--exclude-workers", help="Worker ids, or the pseudonyms of `gtkit report --workers` (with the same "
        "--id-key), comma-separated, repeatable: their answers are left out and the items consolidated again.")] = None,
    id_key: Annotated[str | None, typer.Option(
        "--id-key", envvar="GTKIT_REPORT_ID_KEY", help="Key of the pseudonyms given to --exclude-workers and "
        "in --worker-report.")] = None,
    quality_weights: Annotated[bool, typer.Option(
        "--quality-weights", help="Add `quality_weight` (the record's agreement; 1 when there was none to "
        "measure) to every record's lineage.")] = False,
    worker_report: Annotated[str | None, typer.Option(
        "--worker-report", help="The JSON of `gtkit report --workers --json` (with its --id-key when its ids are "
        "pseudonyms): adds `worker_trust` (mean gold F1 of the workers who made the label) to every record's "
        "lineage and weighs `quality_weight` by it (implies --quality-weights).")] = None,
    min_worker_f1: Annotated[float | None, typer.Option(
        "--min-worker-f1", min=0, max=1, help="With --worker-report: leave out the answers of workers whose "
        "gold F1 is below this and consolidate their items again (workers without gold are kept).")] = None,
    default_worker_f1: Annotated[float | None, typer.Option(
        "--default-worker-f1", min=0, max=1, help="With --worker-report: the trust of a worker with no gold F1 "
        "(default: the mean gold F1 of the report's scored workers; 1 if none).")] = None,
    reviewed_only: Annotated[bool, typer.Option(
        "--reviewed-only", help="--labels is a review job's output: export the reviewed labels (edit: the "
        "reviewer's, accept: the prior one); rejected and unreviewed items are skipped (docs/review.md).")] = False,
    summary_json: SummaryOpt = None,
    mirror: MirrorOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Turn a Ground Truth output manifest into training records (SFT, preference, KTO, reward,
    Bedrock fine-tuning or batch inference, RTTM, WebVTT), with PII masked by default.

    Example: gtkit export --labels output.manifest --preset sft-transcription --format trl --out sft.jsonl

    Weighted by the workers' gold F1 (docs/export.md, training on what you trust): gtkit export --labels
    output.manifest --preset sft-transcription --format trl --out sft.jsonl --worker-report workers.json
    --id-key "$GTKIT_REPORT_ID_KEY" --min-worker-f1 0.5
    """
    storage = make_storage(mirror)
    key = id_key.encode("utf-8") if id_key else None
    if (min_worker_f1 is not None or default_worker_f1 is not None) and not worker_report:
        raise fail("--min-worker-f1 and --default-worker-f1 need --worker-report")
    workers = WorkerTrust.load(storage, worker_report, key, default_worker_f1) if worker_report else None
    quotas = BatchQuotas(min_records=batch_min_records, records_per_file=batch_records_per_file,
                         records_per_job=batch_records_per_job, file_bytes=batch_file_bytes,
                         job_bytes=batch_job_bytes)
    options = ExportOptions(
        preset=preset, format=fmt, out=out, schema=schema, label_attribute=label_attribute, redact=redact,
        redactor=_redactor(redact, redact_backend, redact_pattern, comprehend_language, guardrail_id,
                           guardrail_version, region),
        bedrock_schema=bedrock_schema, lineage=lineage, quotas=quotas, reserved_words=reserved_words,
        worker_responses=worker_responses, allow_empty=allow_empty, clips=clips, batch_body=batch_body,
        cannot_annotate=cannot_annotate,
        jobs=jobs if jobs > 0 else _auto_jobs(labels),
        trust=TrustOptions(min_agreement=min_agreement, quality_weights=quality_weights, reviewed_only=reviewed_only,
                           exclude_workers=frozenset(w.strip() for spec in exclude_workers or []
                                                     for w in spec.split(",") if w.strip()),
                           id_key=key, workers=workers, min_worker_f1=min_worker_f1))
    # The summary is written and shown whether the export succeeds or writes nothing (EmptyExportError:
    # exit 4, mapped with every other error by the root command).
    options.on_summary = lambda summary: _finish(summary, quiet, summary_json)
    with _progress(labels, "exporting", quiet) as progress:
        run_export(storage, labels, options, progress)


def merge_cmd(
    feedback: Annotated[str, typer.Option("--feedback", help="Processed feedback JSONL (local or s3://).")],
    labels: LabelsOpt,
    out: Annotated[str, typer.Option("--out", "-o", help="Enriched feedback JSONL to write (atomically).")],
    label_attribute: AttrOpt = None,
    summary_json: SummaryOpt = None,
    mirror: MirrorOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Add each feedback record's human labels under `human_labels.<job>`; idempotent.

    Example: gtkit merge --feedback processed_feedback.jsonl --labels output.manifest --out enriched.jsonl
    """
    storage = make_storage(mirror)
    with _progress(feedback, "merging", quiet) as progress:
        summary = run_merge(storage, feedback, labels, out, label_attribute, progress)
    _finish(summary, quiet, summary_json)


def report_cmd(
    labels: Annotated[str | None, typer.Option(
        "--labels", "-l", help="Ground Truth output.manifest (local or s3://) for the dataset report.")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="HTML file to write.")] = None,
    schema: Annotated[str | None, typer.Option("--schema", help="Label schema (orders choices and ratings; "
                                                              "with --workers, also validates answers).")] = None,
    title: Annotated[str | None, typer.Option(
        help="Page title. Default: the job name(s) and label attribute of the labels.")] = None,
    label_attribute: AttrOpt = None,
    workers: Annotated[str | None, typer.Option(
        "--workers", help="Per-worker quality report of the job output folder `<S3OutputPath>/<job>` (Ground "
                          "Truth's layout or gtkit serve's / local job's): gold scores, agreement with peers, "
                          "time per task, tasks per hour.")] = None,
    manifest: Annotated[str | None, typer.Option(
        "--manifest", help="With --workers: the manifest whose lines carry `gold-answer` (default: the job's "
                           "manifests/output/output.manifest).")] = None,
    json_out: Annotated[str | None, typer.Option(
        "--json", help="With --workers: also write the figures as JSON.")] = None,
    real_worker_ids: Annotated[bool, typer.Option(
        "--real-worker-ids", help="With --workers: show worker ids as they are (default: keyed pseudonyms).")] = False,
    id_key: Annotated[str | None, typer.Option(
        "--id-key", envvar="GTKIT_REPORT_ID_KEY", help="With --workers: key of the pseudonyms; the same key gives "
                                                       "the same pseudonym in every report (default: a new random "
                                                       "key per run).")] = None,
    rating_tolerance: Annotated[float, typer.Option(
        "--rating-tolerance", min=0,
        help="With --workers: how far a rating may be from the gold one and still count.")] = 0.0,
    review: Annotated[str | None, typer.Option(
        "--review", help="With --workers: a review job's output (its folder or output manifest): adds each "
                         "worker's rejection rate in review.")] = None,
    summary_json: SummaryOpt = None,
    mirror: MirrorOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write a self-contained HTML dataset report (counts, distributions, histograms, coverage), or with
    --workers a per-worker quality report (HTML and/or JSON).

    Example: gtkit report --labels output.manifest --out report.html

    Example: gtkit report --workers out/my-job --out workers.html --json workers.json
    """
    storage = make_storage(mirror)
    if workers:
        if not out and not json_out:
            raise fail("--workers needs --out (HTML) and/or --json")
        report = collect_workers(storage, workers, manifest=manifest, schema=load_label_schema(schema) if schema
                                 else None, id_key=id_key.encode("utf-8") if id_key else None,
                                 real_ids=real_worker_ids, rating_tolerance=rating_tolerance, review=review)
        write_worker_report(storage, report, out, json_out, title)
        if not quiet:
            console.print(f"{len(report.workers)} workers, {report.answers} answers on {report.objects} objects "
                          f"({report.gold_objects} gold); unreadable files: {len(report.problems)}")
            for path in (out, json_out):
                if path:
                    console.print(f"wrote {escape(path)}")
        return
    if not labels or not out:
        raise fail("gtkit report needs --labels and --out (or --workers JOB_OUTPUT)")
    with _progress(labels, "reading labels", quiet) as progress:
        summary = run_report(storage, labels, out, label_attribute, schema, title, progress)
    _finish(summary, quiet, summary_json)
