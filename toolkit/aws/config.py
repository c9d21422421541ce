"""The deploy config: what `gtkit deploy` created, saved for `gtkit template render` and `gtkit job create`.

Stored as small JSON at `.gtkit/deploy-<stack>.json` (relative to the working directory) unless a
path is given. It carries no secrets: only names, ARNs and URLs from the stack outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from toolkit.contract.base import problems_from
from toolkit.errors import GtkitError

CONFIG_DIR = Path(".gtkit")
CONFIG_ENV = "GTKIT_DEPLOY_CONFIG"
CONFIG_VERSION = 1


class DeployConfigError(GtkitError, ValueError):
    """A deploy config that cannot be used: ambiguous, not JSON, invalid, or not what is deployed."""


class DeployConfig(BaseModel):
    """Outputs of one gtkit deployment (assets stack + labeling stack)."""

    model_config = ConfigDict(extra="forbid")

    version: int = CONFIG_VERSION
    stack_name: str = Field(description="Labeling stack; the assets stack is `<stack_name>-assets`")
    assets_stack_name: str
    region: str
    assets_base_url: str = Field(description="https://<cloudfront>/v/<assets_version>/ (trailing slash)")
    assets_version: str
    distribution_id: str
    distribution_domain: str
    assets_bucket: str
    logs_bucket: str
    jobs_bucket: str
    pre_annotation_lambda_arn: str
    post_annotation_lambda_arn: str
    execution_role_arn: str
    worker_origins: list[str]
    label_schema: str = Field(description="Name of the label schema the post-annotation Lambda validates with")
    label_schema_sha256: str = Field(description="Digest of the schema JSON deployed to the post-annotation Lambda")
    input_buckets: list[str] = Field(default_factory=list)
    deployed_at: str


def config_path(stack_name: str, directory: Path | None = None) -> Path:
    return (directory or CONFIG_DIR) / f"deploy-{stack_name}.json"


def save_deploy_config(config: DeployConfig, path: Path | None = None) -> Path:
    path = path or config_path(config.stack_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_deploy_config(
    stack_name: str | None = None, *, path: str | Path | None = None, directory: Path | None = None
) -> DeployConfig:
    """The deploy config of `stack_name`, or the one at `path`.

    With neither: `$GTKIT_DEPLOY_CONFIG`, else the only `deploy-*.json` in `.gtkit/`. Raises
    FileNotFoundError / ValueError with a message that says what to pass instead.
    """
    if path is None and stack_name is None:
        env = os.environ.get(CONFIG_ENV)
        if env:
            path = env
        else:
            found = sorted((directory or CONFIG_DIR).glob("deploy-*.json"))
            if len(found) == 1:
                path = found[0]
            elif not found:
                raise FileNotFoundError(
                    f"no deploy config in {directory or CONFIG_DIR}/: run `gtkit deploy --stack-name NAME` first, "
                    "or pass --deploy-config PATH"
                )
            else:
                names = ", ".join(p.stem.removeprefix("deploy-") for p in found)
                raise DeployConfigError(f"several deployments ({names}): choose one with --stack-name or "
                                        "--deploy-config")
    if path is None:
        assert stack_name is not None
        path = config_path(stack_name, directory)
    path = Path(path)
    if not path.exists():
        hint = f"run `gtkit deploy --stack-name {stack_name}` first" if stack_name else "check the path"
        raise FileNotFoundError(f"deploy config {path} not found: {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DeployConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(map(str, problems_from(exc, root="(file)")))
        raise DeployConfigError(f"{path}: invalid deploy config: {problems}") from exc


def deployed_assets_base(
    stack_name: str | None = None, *, path: str | Path | None = None, check_local: bool = True
) -> str:
    """The deployed assets base URL (`https://<cloudfront>/v/<version>/`) for `render_template`.

    With `check_local`, refuses when the local static/ files differ from the deployed version: the
    template's integrity hashes come from the local files, so browsers would block the assets.
    """
    config = load_deploy_config(stack_name, path=path)
    if check_local:
        from toolkit.aws.assets import assets_version
        from toolkit.task.template import asset_files

        local = assets_version(asset_files())
        if local != config.assets_version:
            raise DeployConfigError(
                f"the local static/ files (version {local}) differ from the assets deployed to stack "
                f"{config.stack_name} ({config.assets_version}); run `gtkit deploy --stack-name {config.stack_name}` "
                "so the template's integrity hashes match what CloudFront serves"
            )
    return config.assets_base_url
