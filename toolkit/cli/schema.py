"""`gtkit schema list|show|check|export`: label schemas and the JSON Schema of the data contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from toolkit.cli.common import console, fail
from toolkit.contract import EXPORTED_MODELS
from toolkit.contract.schema import BUILTIN_DIR, builtin_schema_names, check_label_schema, load_label_schema
from toolkit.contract.ui_contract import CONTRACT_JS, contract_js

schema_app = typer.Typer(help="Label schemas and the data contract's JSON Schema.", no_args_is_help=True)

DEFAULT_SCHEMA_DIR = Path("static/schema")
DEFAULT_CONTRACT_JS = Path("static") / CONTRACT_JS


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")


def json_schemas() -> dict[str, str]:
    """File name -> JSON Schema text for every model of the contract (stable formatting)."""
    return {f"{name}.schema.json": json.dumps(model.model_json_schema(by_alias=True), indent=2,
                                              ensure_ascii=False) + "\n"
            for name, model in EXPORTED_MODELS.items()}


def write_json_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in json_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def write_contract_js(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(contract_js(), encoding="utf-8")
    return path


@schema_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Directory for the *.schema.json files.")] = DEFAULT_SCHEMA_DIR,
    contract: Annotated[Path, typer.Option(
        "--contract", help="The generated JS module of the constants the worker UI shares with the models.",
    )] = DEFAULT_CONTRACT_JS,
) -> None:
    """Write the JSON Schema of every contract model (feedback record, manifest line, label schema,
    answer, consolidated label, ...) and the worker UI's shared constants (static/js/contract.js).

    Example: gtkit schema export --out static/schema --contract static/js/contract.js
    """
    for path in write_json_schemas(out):
        console.print(f"wrote {path}", highlight=False)
    console.print(f"wrote {write_contract_js(contract)}", highlight=False)


@schema_app.command("list")
def list_builtin() -> None:
    """List the built-in label schemas.

    Example: gtkit schema list
    """
    for name in builtin_schema_names():
        schema = load_label_schema(name)
        typer.echo(f"{name}\t{schema.media}\t{schema.title}")


@schema_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Built-in schema name.")]) -> None:
    """Print a built-in label schema's YAML, to copy and edit.

    Example: gtkit schema show call-center > my-schema.yaml
    """
    path = BUILTIN_DIR / f"{name}.yaml"
    if not path.exists():
        raise fail(f"no built-in schema {name!r}; choose from {', '.join(builtin_schema_names())}")
    typer.echo(path.read_text(encoding="utf-8"), nl=False)


@schema_app.command("check")
def check(path: Annotated[str, typer.Argument(help="Label schema YAML file or built-in name.")]) -> None:
    """Validate a label schema YAML file. Exit 2 when it is invalid.

    Example: gtkit schema check my-schema.yaml
    """
    schema, problems = check_label_schema(path)
    if schema is None:  # every problem on its own line, like `gtkit manifest validate`
        for problem in problems:
            console.print(f"[red]{escape(path)}[/]: {escape(str(problem))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    if schema.compare is not None:  # mode: compare
        c = schema.compare
        what = (f"comparison of {c.min_candidates}-{c.max_candidates} candidates, {len(c.span_reasons)} span reasons, "
                f"MOS {'on' if c.mos.enabled else 'off'}")
    else:
        what = f"{len(schema.tracks)} track categories, {len(schema.segment_fields)} segment fields"
    console.print(f"[green]ok[/]: {schema.name} ({schema.media}): {what}, {len(schema.content_fields)} content fields",
                  highlight=False)
