"""`gtkit deploy` and `gtkit destroy`: the AWS side (UI assets on CloudFront, Lambdas, roles)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from toolkit.aws.config import DeployConfig
from toolkit.aws.deploy import AwsClients, DeployOptions, deploy, destroy
from toolkit.cli.common import console, parse_tags, say

StackNameOpt = Annotated[str, typer.Option("--stack-name", "-s", help="Name of the labeling stack (1-40 chars).")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS Region (default: your AWS configuration).")]


def make_clients(region: str | None) -> AwsClients:
    """Indirection so tests can hand in stubbed clients."""
    return AwsClients.create(region)



def print_deploy_config(config: DeployConfig) -> None:
    table = Table(title=f"gtkit deployment {config.stack_name} ({config.region})", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in (
        ("Assets base URL", config.assets_base_url),
        ("Pre-annotation Lambda", config.pre_annotation_lambda_arn),
        ("Post-annotation Lambda", config.post_annotation_lambda_arn),
        ("Execution role", config.execution_role_arn),
        ("Jobs bucket", config.jobs_bucket),
        ("Assets bucket", config.assets_bucket),
        ("CloudFront logs bucket", config.logs_bucket),
        ("Worker origins", ", ".join(config.worker_origins)),
        ("Label schema", config.label_schema),
        ("Input buckets", ", ".join(config.input_buckets) or "-"),
    ):
        table.add_row(key, escape(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("deploy")
    def deploy_cmd(
        stack_name: StackNameOpt,
        region: RegionOpt = None,
        worker_origins: Annotated[list[str] | None, typer.Option(
            "--worker-origins", "--worker-origin",
            help="Restrict who may load the UI assets (CORS) to these origins, e.g. "
                 "https://abcd1234.labeling.us-east-1.sagemaker.aws (repeatable or comma separated), or '*'. "
                 "Default on the first deploy: '*' (the assets are public and SRI-pinned); kept on later "
                 "deploys.")] = None,
        workteam_arn: Annotated[str | None, typer.Option(
            "--workteam-arn", help="Restrict the UI assets to this private workteam's portal origin.")] = None,
        schema: Annotated[str | None, typer.Option(
            "--schema", help="Label schema for the post-annotation Lambda (name or YAML). Default: "
                             "call-center on first deploy, then the deployed one.")] = None,
        input_buckets: Annotated[list[str] | None, typer.Option(
            "--input-bucket", help="Bucket with media/manifests the jobs read (repeatable). Replaces the "
                                   "deployed list; omit to keep it.")] = None,
        price_class: Annotated[str | None, typer.Option(
            "--price-class", help="CloudFront price class: PriceClass_100 | PriceClass_200 | PriceClass_All.")] = None,
        build_dir: Annotated[Path | None, typer.Option(
            "--build-dir", help="Where to build the Lambda zips (default .gtkit/build/<stack>).")] = None,
        prebuilt: Annotated[Path | None, typer.Option(
            "--prebuilt", help="Directory with gtkit-pre-annotation.zip and gtkit-post-annotation.zip "
                                "(from `gtkit lambdas package`): skip packaging.")] = None,
        config_out: Annotated[Path | None, typer.Option(
            "--config-out", help="Where to save the deploy config (default .gtkit/deploy-<stack>.json).")] = None,
        tag: Annotated[list[str] | None, typer.Option("--tag", help="Stack tag KEY=VALUE (repeatable).")] = None,
        noncurrent_version_days: Annotated[int | None, typer.Option(
            "--noncurrent-version-days", min=1,
            help="Days an overwritten or deleted object of the jobs bucket stays recoverable (default 90; "
                 "later deploys keep the deployed value).")] = None,
        poll: Annotated[float, typer.Option("--poll", help="Seconds between progress checks.", hidden=True)] = 5.0,
    ) -> None:
        """Deploy or update gtkit on AWS: UI assets behind CloudFront, the two Lambdas, the roles.

        Creates `<stack>-assets` then `<stack>`, uploads the Lambda zips and the UI assets in
        between, and saves the outputs to .gtkit/deploy-<stack>.json for `gtkit job create` and
        `gtkit template render`.

        Example: gtkit deploy --stack-name gtkit-demo --region us-east-1 --schema call-center
        """
        lambda_zips = None
        if prebuilt is not None:
            # `gtkit lambdas package` names them gtkit-pre-annotation.zip / gtkit-post-annotation.zip.
            lambda_zips = {}
            for n in ("pre_annotation", "post_annotation"):
                dashed = prebuilt / f"gtkit-{n.replace('_', '-')}.zip"
                lambda_zips[n] = dashed if dashed.is_file() else prebuilt / f"{n}.zip"
        opts = DeployOptions(
            stack_name=stack_name, worker_origins=worker_origins, workteam_arn=workteam_arn, schema=schema,
            input_buckets=input_buckets, price_class=price_class, build_dir=build_dir, lambda_zips=lambda_zips,
            config_path=config_out, poll_seconds=poll, tags=parse_tags(tag),
            noncurrent_version_days=noncurrent_version_days,
        )
        config, path = deploy(opts, make_clients(region), report=say)
        print_deploy_config(config)
        console.print(f"saved [bold]{escape(str(path))}[/] - next: gtkit job create --config job.yaml", highlight=False)

    @app.command("destroy")
    def destroy_cmd(
        stack_name: StackNameOpt,
        region: RegionOpt = None,
        delete_data: Annotated[bool, typer.Option(
            "--delete-data", help="Also empty and delete the jobs bucket (manifests, job output).")] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
        deploy_config: Annotated[Path | None, typer.Option(
            "--deploy-config", help="Deploy config file to remove (default .gtkit/deploy-<stack>.json).")] = None,
        poll: Annotated[float, typer.Option("--poll", hidden=True)] = 5.0,
    ) -> None:
        """Delete the gtkit stacks: empties the assets and log buckets (all versions) first.

        The jobs bucket (your manifests and labels) is kept unless --delete-data is given.

        Example: gtkit destroy --stack-name gtkit-demo --yes
        """
        what = f"stacks {stack_name} and {stack_name}-assets" + (" and the jobs bucket" if delete_data else "")
        if not yes and not typer.confirm(f"Delete {what}?", err=True):
            raise typer.Exit(1)
        destroy(stack_name, make_clients(region), delete_data=delete_data, config_file=deploy_config,
                report=say, poll_seconds=poll)
        console.print(f"destroyed {what}", highlight=False)
