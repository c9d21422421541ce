"""`gtkit bedrock submit|status|stop|list|fetch|import`: Bedrock batch inference on exported prompts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import boto3
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from toolkit.aws import bedrock
from toolkit.cli.common import MirrorOpt, console, fail, make_storage, parse_tags, say, show_summary
from toolkit.errors import GtkitError
from toolkit.storage import RETRY_CONFIG, Storage

bedrock_app = typer.Typer(help="Submit and follow Bedrock batch inference jobs; import their outputs.",
                          no_args_is_help=True)

RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS Region (default: your profile's).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]
JobArg = Annotated[str, typer.Argument(help="Job ARN, id or name.")]


def register(app: typer.Typer) -> None:
    app.add_typer(bedrock_app, name="bedrock")


@dataclass
class BedrockClients:
    bedrock: Any
    runtime: Any
    s3: Any


def make_clients(region: str | None) -> BedrockClients:
    """Indirection so tests can hand in stubbed clients."""
    session = boto3.Session(region_name=region)
    if not session.region_name:
        raise GtkitError("no AWS region: pass --region or set AWS_REGION / a profile region")
    return BedrockClients(bedrock=session.client("bedrock", config=RETRY_CONFIG),
                          runtime=session.client("bedrock-runtime", config=RETRY_CONFIG),
                          s3=session.client("s3", config=RETRY_CONFIG))


@bedrock_app.command("submit")
def submit(
    input_uri: Annotated[str, typer.Option("--input", "-i", help="The export's s3:// root (one job per job-NNN/ "
                                           "in its jobs.json) or one job-NNN/ prefix.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model id, inference profile or ARN.")],
    role: Annotated[str, typer.Option("--role", help="Service role ARN Bedrock assumes to read and write S3.")],
    output: Annotated[str, typer.Option("--output", "-o", help="s3:// prefix for the results.")],
    name: Annotated[str | None, typer.Option("--name", help="Job name (per shard: NAME-job-NNN); default: "
                                             "the export run's name.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE, repeatable.")] = None,
    timeout_hours: Annotated[int | None, typer.Option("--timeout-hours", help="24 to 168.")] = None,
    kms_key: Annotated[str | None, typer.Option("--kms-key", help="KMS key for the output.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the requests; create nothing.")
                       ] = False,
    region: RegionOpt = None,
    mirror: MirrorOpt = None,
) -> None:
    """One CreateModelInvocationJob per prepared shard, each request validated against the service model.

    Example (offline: --dry-run validates and prints the requests):
        gtkit bedrock submit \\
            --input s3://example-feedback-bucket/bedrock/batch/ \\
            --model anthropic.claude-3-haiku-20240307-v1:0 \\
            --role arn:aws:iam::123456789012:role/BedrockBatch \\
            --output s3://example-feedback-bucket/bedrock/output/ \\
            --dry-run --mirror s3://example-feedback-bucket/=examples
    """
    clients = None if dry_run else make_clients(region)
    storage = Storage(make_storage(mirror).mirrors, client=clients.s3 if clients else None)
    done = bedrock.submit(clients.bedrock if clients else None, storage, input_uri, model=model, role=role,
                          output=output, name=name, tags=parse_tags(tag), timeout_hours=timeout_hours, kms_key=kms_key,
                          dry_run=dry_run, report=say)
    if dry_run:
        typer.echo(json.dumps([s.request for s in done], indent=2))
        say(f"dry run: {len(done)} job request(s) valid; nothing created")
    else:
        say(f"{len(done)} job(s) submitted. Follow them with: gtkit bedrock status {done[0].name} --wait")


@bedrock_app.command("status")
def status(
    job: JobArg,
    wait: Annotated[bool, typer.Option("--wait", help="Poll until the job ends, with a progress bar.")] = False,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", min=0.0)] = 60.0,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Status and record counts of a job (exit 2 when it failed, stopped or expired).

    Example: gtkit bedrock status batch-job-000 --wait
    """
    clients = make_clients(region)
    if wait:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task(job, total=None)

            def on_poll(desc: dict[str, Any]) -> None:
                progress.update(task, description=f"{job}: {desc.get('status')}",
                                total=desc.get("totalRecordCount"), completed=desc.get("processedRecordCount") or 0)

            desc = bedrock.wait(clients.bedrock, job, poll_seconds=poll_seconds, on_poll=on_poll)
    else:
        desc = bedrock.describe(clients.bedrock, job)
    summary = bedrock.summary(desc)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        show_summary(f"batch inference job {summary.get('name')}", summary)
    if summary["failed_records"]:
        say(f"{summary['failed_records']} record(s) failed; `gtkit bedrock fetch` names them, "
            "`gtkit bedrock import` reports each")
    if summary["status"] in ("Failed", "Stopped", "Expired"):
        raise fail(f"job {summary['status'].lower()}" + (f": {summary['message']}" if summary.get("message") else ""),
                   code=2)


@bedrock_app.command("stop")
def stop(job: JobArg, region: RegionOpt = None) -> None:
    """Stop a job (records done so far are billed and written).

    Example: gtkit bedrock stop batch-job-000
    """
    ident = bedrock.stop(make_clients(region).bedrock, job)
    say(f"stopping {ident}; check with: gtkit bedrock status {job}")


@bedrock_app.command("list")
def list_cmd(
    region: RegionOpt = None,
    status_filter: Annotated[str | None, typer.Option(
        "--status", help="Submitted | Validating | Scheduled | InProgress | Completed | PartiallyCompleted | "
        "Failed | Stopping | Stopped | Expired.")] = None,
    name_contains: Annotated[str | None, typer.Option("--name-contains")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many jobs, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List batch inference jobs, newest first.

    Example: gtkit bedrock list --status InProgress
    """
    cols = ("name", "status", "model", "processed", "failed", "submitted")
    rows = [{"name": j["jobName"], "status": j.get("status"), "model": j.get("modelId"),
             "processed": j.get("processedRecordCount"), "failed": j.get("errorRecordCount"),
             "submitted": bedrock._iso(j.get("submitTime")), "arn": j["jobArn"]}
            for j in bedrock.list_jobs(make_clients(region).bedrock, status=status_filter,
                                       name_contains=name_contains, limit=limit)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="batch inference jobs")
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(str(row[c]) if row[c] is not None else "") for c in cols))
    console.print(table)


@bedrock_app.command("fetch")
def fetch(
    job: JobArg,
    out: Annotated[str, typer.Option("--out", "-o", help="Directory (or s3:// prefix) for the outputs.")],
    region: RegionOpt = None,
) -> None:
    """Download a job's .jsonl.out files and manifest.json.out, and job.json (the model) for `import`.

    Example: gtkit bedrock fetch batch-job-000 --out batch-out/
    """
    clients = make_clients(region)
    fetched = bedrock.fetch(clients.bedrock, Storage(client=clients.s3), job, out, report=say)
    manifest = fetched.manifest or {}
    say(f"wrote {len(fetched.files)} file(s) to {out}: {fetched.records} records, {fetched.failed} failed"
        + (f" (manifest.json.out: {manifest.get('errorRecordCount')} errors of {manifest.get('totalRecordCount')})"
           if manifest else ""))
    if fetched.failed:
        left = fetched.failed - len(fetched.failed_ids)
        more = f" and {left} more" if left > 0 else ""
        say(f"failed records: {', '.join(fetched.failed_ids)}{more}")
        say(f"next: gtkit bedrock import {out.rstrip('/')}/*.jsonl.out --records EXPORT_DIR reports each failed record")


GUARDRAIL_RPM = 1500  # ApplyGuardrail's default quota, 25 requests per second (Service Quotas: check yours)


def _guardrail(spec: str) -> tuple[str, str]:
    ident, sep, version = spec.rpartition(":")
    if not sep or not ident or not version:
        raise typer.BadParameter(f"expected ID:VERSION (e.g. gr1234abcd:1 or gr1234abcd:DRAFT), got {spec!r}",
                                 param_hint="--guardrail")
    return ident, version


@bedrock_app.command("import")
def import_cmd(
    outputs: Annotated[list[str], typer.Argument(help="The job's .jsonl.out files (local or s3://).")],
    records: Annotated[str, typer.Option("--records", "-r", help="The bedrock-batch export (its jobs.json names "
                                         "the records maps), or one records/job-NNN.jsonl.")],
    out: Annotated[str, typer.Option("--out", "-o", help="The imported records (JSON Lines).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id; default: from the job.json that "
                                              "`gtkit bedrock fetch` writes beside the outputs.")] = None,
    guardrail: Annotated[str | None, typer.Option("--guardrail", help="Mask with this Bedrock guardrail "
                                                  "(ApplyGuardrail, source OUTPUT): ID:VERSION.")] = None,
    guardrail_rpm: Annotated[float, typer.Option("--guardrail-rpm", min=1.0, help="ApplyGuardrail requests per "
                                                 "minute (your account's quota).")] = GUARDRAIL_RPM,
    no_redact: Annotated[bool, typer.Option("--no-redact", help="Keep the model text as it is.")] = False,
    no_resume: Annotated[bool, typer.Option("--no-resume", help="Mask every record again, even those a "
                                            "previous run masked.")] = False,
    region: RegionOpt = None,
    mirror: MirrorOpt = None,
) -> None:
    """Join model outputs back to their interactions, extract text, usage and stop reason per model family,
    and mask PII; failed, truncated and unknown records are written with their status and reported.

    Example (offline, with the bundled examples):
        gtkit bedrock import \\
            examples/bedrock/output/abcdef123456/part-000.jsonl.out \\
            --records s3://example-feedback-bucket/bedrock/batch/ \\
            --model anthropic.claude-3-haiku-20240307-v1:0 \\
            --out imported.jsonl --mirror s3://example-feedback-bucket/=examples
    """
    from toolkit.aws.ratelimit import TokenBucket
    from toolkit.export.redact import GuardrailRedactor, RegexRedactor
    from toolkit.ingest.model_outputs import Masker, import_outputs

    if guardrail and no_redact:
        raise typer.BadParameter("--guardrail masks; --no-redact keeps the text: choose one", param_hint="--guardrail")
    clients = make_clients(region) if guardrail else None  # S3 reads make their own client when needed
    if guardrail:
        ident, version = _guardrail(guardrail)
        redactor: Any = GuardrailRedactor(ident, version, client=clients.runtime if clients else None,
                                          limiter=TokenBucket(guardrail_rpm))
    else:
        redactor = None if no_redact else RegexRedactor()
    storage = Storage(make_storage(mirror).mirrors, client=clients.s3 if clients else None)
    stats = import_outputs(storage, outputs, out, records=records, masker=Masker(redactor, guardrail),
                           model_id=model, resume=not no_resume)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(stats.by_status.items()))
    say(f"wrote {out}: {stats.written} records ({counts}); {stats.masked_now} masked now, "
        f"{stats.resumed} kept from a previous run")
    for problem in stats.problems[:20]:
        say(f"  {problem}")
    if len(stats.problems) > 20:
        say(f"  ... {len(stats.problems) - 20} more; every one is in {out} with its status")
    if stats.unanswered:
        say(f"note: {stats.unanswered} record(s) of the records maps have no line in these outputs "
            "(other jobs of the export, or records the job did not reach)")
