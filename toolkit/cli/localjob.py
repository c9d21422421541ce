"""`gtkit local-job run`: a Ground Truth custom labeling job emulated on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import MirrorOpt, QuietOpt, console, fail, make_storage

localjob_app = typer.Typer(help="Run a labeling job locally (Ground Truth emulation).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(localjob_app, name="local-job")


def portal_hint(workers: int, *, shared: bool = False) -> str:
    """What to do with the portal link, in words for one worker and for several."""
    if shared:
        who = "each signs in with their own worker name" + (
            "" if workers == 1 else f"; every task goes to {workers} of them")
        return f"Share this link (it carries the access token) with your annotators; {who}. " \
               "Ctrl+C stops; rerun to resume."
    if workers == 1:
        return "Open it in a browser and sign in with a worker name. Ctrl+C stops; rerun to resume."
    return (f"Open it in {workers} browsers (or private windows), each signed in with a different worker "
            f"name: every task needs {workers} distinct workers. Ctrl+C stops; rerun to resume.")


@localjob_app.command("run")
def run(
    manifest: Annotated[str, typer.Option("--manifest", "-m", help="Input manifest (local or s3://).")],
    schema: Annotated[str, typer.Option("--schema", "-s", help="Label schema: built-in name or YAML path.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (S3OutputPath stand-in).")],
    workers: Annotated[int, typer.Option("--workers", "-n", min=1, max=9,
                                         help="Distinct workers per task.")] = 1,
    job_name: Annotated[str | None, typer.Option("--job-name", help="Default: local-<schema>.")] = None,
    label_attribute: Annotated[str, typer.Option("--label-attribute", help="Label attribute name.")] = "segments",
    port: Annotated[int, typer.Option("--port", help="Portal port.")] = 8080,
    host: Annotated[str, typer.Option(
        "--host", help="Address the portal listens on. 127.0.0.1: this machine only. 0.0.0.0 or a LAN "
                       "address: your team's browsers too, each request then needing the printed link's "
                       "access token.")] = "127.0.0.1",
    access_token: Annotated[str | None, typer.Option(
        "--access-token", envvar="GTKIT_ACCESS_TOKEN",
        help="Access token for the portal (16+ characters; default: a new random one when --host is "
             "not loopback). Reuse one to keep links valid across restarts.")] = None,
    task_time_limit: Annotated[int, typer.Option(
        "--task-time-limit", min=30, max=28_800,
        help="Seconds a worker holds a task they opened before it goes back to the others "
             "(Ground Truth's TaskTimeLimitInSeconds).")] = 3600,
    max_submission_mb: Annotated[float | None, typer.Option(
        "--max-submission-mb", min=0.0001, max=1000,
        help="Largest submission the portal takes, in MB (1,000,000 bytes; default 4); bigger ones "
             "are refused with HTTP 413 and stay in the worker's browser. With --simulate: the largest "
             "answer a simulated worker submits (default 2).")] = None,
    simulate: Annotated[bool, typer.Option("--simulate", help="Simulated workers answer every task "
                                           "(no browser); seeded, plausible answers from the pre-segments.")] = False,
    corrections: Annotated[Path | None, typer.Option(
        "--corrections", metavar="YAML",
        help="With --simulate: known transcription errors the simulated workers fix "
             "(examples/asr-corrections.yaml).")] = None,
    mirror: MirrorOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Label MANIFEST with N local workers; write Ground Truth's output layout under OUT/JOB.

    Runs the real pre-annotation Lambda code on each line, serves tasks in the local worker portal
    (each to N distinct workers, named in the portal), runs the real post-annotation Lambda code when
    a task has N answers, and writes OUT/JOB/manifests/output/output.manifest. Rerun the same command
    to resume: finished work on disk is kept.

    Example (offline, simulated workers):

        gtkit local-job run --manifest manifest.jsonl --schema call-center \\
            --workers 3 --out demo-out --simulate \\
            --corrections examples/asr-corrections.yaml \\
            --mirror s3://example-feedback-bucket/=examples
    """
    from toolkit.contract import load_label_schema
    from toolkit.service.local_job import run_local_job
    from toolkit.service.portal.access import check_token

    # Errors of the corrections file, the schema, the token or the portal's address are the root
    # command's one line (each names its file or option).
    storage = make_storage(mirror)
    fixes = None
    if corrections is not None:
        from toolkit.service.simulate import load_corrections

        if not simulate:
            raise fail("--corrections: only applies with --simulate")
        fixes = load_corrections(corrections)
    label_schema = load_label_schema(schema)
    if access_token is not None:
        check_token(access_token)

    def ready(url: str) -> None:
        # soft_wrap: a link must stay on one line to be copied whole.
        console.print(f"Worker portal: [bold]{url}[/]", highlight=False, soft_wrap=True)
        console.print(portal_hint(workers, shared="token=" in url), highlight=False)

    try:  # not an error: Ctrl+C stops the portal, and a rerun resumes
        job = run_local_job(manifest, label_schema, workers=workers, out=out, job_name=job_name,
                            label_attribute=label_attribute, storage=storage, port=port,
                            simulate_workers=simulate, on_ready=ready, task_time_limit=task_time_limit,
                            host=host, access_token=access_token,
                            max_submission_bytes=None if max_submission_mb is None
                            else round(max_submission_mb * 1_000_000), corrections=fixes)
    except KeyboardInterrupt:
        console.print("stopped; rerun the same command to resume", highlight=False)
        raise typer.Exit(130) from None

    summary = job.summary()
    if not quiet:
        console.print(
            f"job {summary['job_name']}: {summary['labeled']} of {summary['objects']} objects labeled, "
            f"{summary['skipped']} skipped, {summary['responses']} worker responses", highlight=False)
        for reason in summary["skipped_reasons"]:
            console.print(f"  skipped {reason}", highlight=False)
    for excluded in summary["excluded_responses"]:
        console.print(f"  excluded worker response {excluded['file']}: {excluded['reason']} "
                      "(left on disk, not counted; its task takes another answer)", highlight=False, soft_wrap=True)
    console.print(f"output manifest: {summary['output_manifest']}", highlight=False)
    if summary["waiting"]:
        raise typer.Exit(3)
