"""`gtkit job create|status|stop|list|fetch`: Ground Truth labeling jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from toolkit.aws import jobs
from toolkit.aws.config import DeployConfig, load_deploy_config
from toolkit.aws.deploy import AwsClients
from toolkit.cli.common import MirrorOpt, console, fail, make_storage, say, show_summary
from toolkit.storage import Storage

job_app = typer.Typer(help="Create and follow Ground Truth labeling jobs.", no_args_is_help=True)

RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS Region (default: the deploy config's).")]
StackOpt = Annotated[str | None, typer.Option(
    "--stack-name", "-s", help="Deployment to use (.gtkit/deploy-<stack>.json).")]
DeployConfigOpt = Annotated[Path | None, typer.Option("--deploy-config", help="Deploy config file to use.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(job_app, name="job")


def make_clients(region: str | None) -> AwsClients:
    """Indirection so tests can hand in stubbed clients."""
    return AwsClients.create(region)



def _region(region: str | None, stack: str | None = None, deploy_config: Path | None = None) -> str | None:
    """--region, else the deploy config's region when one is unambiguous, else the AWS default."""
    if region:
        return region
    try:
        return load_deploy_config(stack, path=deploy_config).region
    except (FileNotFoundError, ValueError):
        return None


def _clients(region: str | None) -> AwsClients:
    return make_clients(region)


@job_app.command("create")
def create(
    config: Annotated[Path, typer.Option("--config", "-c", help="Job YAML (see examples/job.yaml).")],
    stack_name: StackOpt = None,
    deploy_config: DeployConfigOpt = None,
    region: RegionOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate and print the request; upload and call nothing.")] = False,
    no_bucket_check: Annotated[bool, typer.Option(
        "--no-bucket-check", help="Allow manifest buckets the deployed role is not known to read.")] = False,
    mirror: MirrorOpt = None,
    review_of: Annotated[str | None, typer.Option(
        "--review-of", help="Make a review job of this labeling job (name) or output manifest (path or s3://): "
                            "its lines + the review input, a new label attribute, the review template "
                            "(docs/review.md). The config's manifest is then not needed.")] = None,
    prior_attribute: Annotated[str | None, typer.Option(
        "--prior-attribute", help="With --review-of a manifest: the label attribute to review "
                                  "(default: the only one on its lines).")] = None,
) -> None:
    """Create a labeling job: validate the config and manifest, upload manifest and template, call
    CreateLabelingJob with the deployed Lambdas and role.

    Example: gtkit job create --config examples/job.yaml --dry-run
    """
    job, base_dir = jobs.load_job_config(config, report=say,
                                         defaults={"manifest": "(review manifest)"} if review_of else None)
    deployed: DeployConfig = load_deploy_config(stack_name or job.stack, path=deploy_config)
    clients = _clients(region or deployed.region)
    # Reads of s3:// manifests use the same credentials and Region as the uploads.
    storage = Storage(make_storage(mirror).mirrors, client=clients.s3)
    if review_of:
        prepared, _built = jobs.create_review_job(
            job, deployed, clients.sagemaker, clients.s3, review_of, prior_attribute=prior_attribute,
            base_dir=base_dir, storage=storage, dry_run=dry_run, check_buckets=not no_bucket_check, report=say)
    else:
        prepared = jobs.create_job(job, deployed, clients.sagemaker, clients.s3, base_dir=base_dir, storage=storage,
                                   dry_run=dry_run, check_buckets=not no_bucket_check, report=say)
    if dry_run:
        typer.echo(json.dumps(prepared.request, indent=2, default=str))
        say(f"dry run: {prepared.objects} data objects; nothing uploaded, no job created")
    else:
        say(f"job {job.job_name}: {prepared.objects} data objects. Follow it with: gtkit job status {job.job_name}")


@job_app.command("status")
def status(
    name: Annotated[str, typer.Argument(help="Labeling job name.")],
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Status, label counters and failure reason of a job.

    Example: gtkit job status call-center-batch-001
    """
    clients = _clients(_region(region))
    summary = jobs.job_summary(jobs.describe_job(clients.sagemaker, name))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    show_summary(f"labeling job {name}", summary)
    if summary.get("failure_reason"):
        raise fail(f"job failed: {summary['failure_reason']}", code=2)


@job_app.command("stop")
def stop(name: Annotated[str, typer.Argument(help="Labeling job name.")], region: RegionOpt = None) -> None:
    """Stop a running job (labels done so far are kept in the output).

    Example: gtkit job stop call-center-batch-001
    """
    clients = _clients(_region(region))
    jobs.stop_job(clients.sagemaker, name)
    say(f"stopping {name}; check with: gtkit job status {name}")


@job_app.command("list")
def list_cmd(
    region: RegionOpt = None,
    status_filter: Annotated[str | None, typer.Option(
        "--status", help="InProgress | Completed | Failed | Stopping | Stopped | Initializing.")] = None,
    name_contains: Annotated[str | None, typer.Option("--name-contains")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many jobs, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List labeling jobs, newest first.

    Example: gtkit job list --status InProgress
    """
    clients = _clients(_region(region))
    rows = [
        {"name": j["LabelingJobName"], "status": j["LabelingJobStatus"],
         "labeled": j.get("LabelCounters", {}).get("TotalLabeled", 0),
         "unlabeled": j.get("LabelCounters", {}).get("Unlabeled", 0),
         "created": jobs._iso(j.get("CreationTime"))}
        for j in jobs.list_jobs(clients.sagemaker, status=status_filter, name_contains=name_contains, limit=limit)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="labeling jobs")
    for col in ("name", "status", "labeled", "unlabeled", "created"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(str(row[c])) for c in ("name", "status", "labeled", "unlabeled", "created")))
    console.print(table)


@job_app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(help="Labeling job name.")],
    out: Annotated[str, typer.Option("--out", "-o", help="File (or directory) for the output manifest.")],
    region: RegionOpt = None,
) -> None:
    """Download a job's output manifest (from its LabelingJobOutput) for `gtkit export`.

    Example: gtkit job fetch call-center-batch-001 --out output.manifest
    """
    clients = _clients(_region(region))
    storage = Storage(client=clients.s3)
    target, lines = jobs.fetch_output(clients.sagemaker, name, out, storage=storage, report=say)
    say(f"wrote {target} ({lines} lines)")
