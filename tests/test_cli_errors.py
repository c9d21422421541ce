"""Every command's library errors reach the user the same way: the root command (toolkit.cli.GtkitGroup)
prints one `error: ...` line on stderr and exits with the error class's `exit_code`; no command
catches a library error itself."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app, exit_code_of
from toolkit.errors import GtkitError

REPO = Path(__file__).resolve().parent.parent
CALLS = REPO / "tests" / "fixtures" / "export" / "call_center.output.manifest"


def invoke(*args: str, **kwargs):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300", **kwargs.pop("env", {})}, **kwargs)


def assert_one_line(result, code: int, *expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for text in expected:
        assert text in errors[0], (text, errors[0])


@pytest.fixture
def input_manifest(tmp_path: Path) -> Path:
    path = tmp_path / "input.manifest"
    path.write_text(json.dumps({"source-ref": "s3://b/a.wav", "interaction-id": "i1", "media-type": "audio"}) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def invalid_schema(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("name: Bad Name\ntitle: X\ntracks: []\n", encoding="utf-8")
    return path


def test_export_that_writes_nothing_exits_4_with_its_hint(tmp_path, input_manifest):
    summary = tmp_path / "s.json"
    result = invoke("export", "--labels", str(input_manifest), "--preset", "sft-transcription", "--format", "trl",
                    "--out", str(tmp_path / "o.jsonl"), "--summary-json", str(summary))
    assert_one_line(result, 4, "wrote 0 records", "no-label: 1",
                    "Nothing was written; pass --allow-empty if an empty export is expected.")
    assert json.loads(summary.read_text())["written"] == 0  # on_summary: the summary is written all the same
    assert result.stderr.index("manifest") < result.stderr.index("error: ")  # the summary table first


def test_export_unknown_format_exits_1(tmp_path):
    result = invoke("export", "--labels", str(CALLS), "--preset", "sft-transcription", "--format", "nope",
                    "--out", str(tmp_path / "o"), "-q")
    assert_one_line(result, 1, "unknown format 'nope'")


@pytest.mark.parametrize(("options", "expected"), [
    (["--format", "bedrock", "--bedrock-schema", "nope"], "--bedrock-schema: unknown Bedrock schema 'nope'"),
    (["--format", "bedrock-batch", "--batch-records-per-file", "0"],
     "batch quotas must be positive: --batch-records-per-file is 0"),
    (["--format", "trl", "--redact-pattern", "ACCOUNT=(unclosed"],
     "redaction pattern ACCOUNT: not a regular expression"),
])
def test_export_bad_option_values_exit_1_naming_the_option(tmp_path, options, expected):
    result = invoke("export", "--labels", str(CALLS), "--preset", "sft-transcription", *options,
                    "--out", str(tmp_path / "o"), "-q")
    assert_one_line(result, 1, expected)


def test_merge_missing_feedback_exits_1(tmp_path):
    result = invoke("merge", "--feedback", str(tmp_path / "none.jsonl"), "--labels", str(CALLS),
                    "--out", str(tmp_path / "o.jsonl"), "-q")
    assert_one_line(result, 1, "none.jsonl")


def test_report_workers_of_an_empty_folder_exits_1(tmp_path):
    result = invoke("report", "--workers", str(tmp_path / "job"), "--json", str(tmp_path / "w.json"))
    assert_one_line(result, 1, "no manifest")


def test_report_to_an_unwritable_place_exits_1(tmp_path):
    (tmp_path / "dir.html").mkdir()  # a directory where the page should go: an OSError on a named file
    result = invoke("report", "--labels", str(CALLS), "--out", str(tmp_path / "dir.html"), "-q")
    assert_one_line(result, 1, "dir.html")


def test_bad_mirror_is_exit_2(tmp_path, input_manifest):
    result = invoke("manifest", "validate", str(input_manifest), "--mirror", "bucket=dir")
    assert_one_line(result, 2, "--mirror expects s3://BUCKET/PREFIX=DIR, got 'bucket=dir'")


def test_schema_check_lists_problems_and_exits_2(invalid_schema):
    result = invoke("schema", "check", str(invalid_schema))
    assert result.exit_code == 2 and "name: String should match pattern" in result.output


def test_a_yaml_syntax_error_in_a_schema_is_one_line_not_a_traceback(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntitle: [unclosed\n", encoding="utf-8")
    result = invoke("template", "render", "--schema", str(broken), "--assets-base", "https://x.example/v/1",
                    "--out", str(tmp_path / "x.html"))
    assert_one_line(result, 1, "broken.yaml: not valid YAML (line 3)")
    assert invoke("schema", "check", str(broken)).exit_code == 2


def test_local_job_invalid_schema_exits_1_naming_the_file(tmp_path, input_manifest, invalid_schema):
    result = invoke("local-job", "run", "--manifest", str(input_manifest), "--schema", str(invalid_schema),
                    "--out", str(tmp_path / "out"), "--simulate")
    assert_one_line(result, 1, f"label schema {invalid_schema}: name: String should match pattern")


def test_local_job_weak_access_token_exits_1_naming_the_option(tmp_path, input_manifest):
    result = invoke("local-job", "run", "--manifest", str(input_manifest), "--schema", "call-center",
                    "--out", str(tmp_path / "out"), "--access-token", "short")
    assert_one_line(result, 1, "an access token needs at least 16 printable ASCII characters",
                    "(--access-token or $GTKIT_ACCESS_TOKEN)")


def test_local_job_bad_corrections_file_exits_1(tmp_path, input_manifest):
    fixes = tmp_path / "fixes.yaml"
    fixes.write_text("- a list\n", encoding="utf-8")
    result = invoke("local-job", "run", "--manifest", str(input_manifest), "--schema", "call-center",
                    "--out", str(tmp_path / "out"), "--simulate", "--corrections", str(fixes))
    assert_one_line(result, 1, "corrections file", "fixes.yaml")


def test_preview_on_a_port_in_use_exits_1(tmp_path, input_manifest):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("preview", "--manifest", str(input_manifest), "--schema", "call-center",
                        "--port", str(port), "--out", str(tmp_path / "out"))
    assert_one_line(result, 1, f"cannot start the portal on 127.0.0.1 port {port}")


def test_serve_unknown_account_exits_1(tmp_path, monkeypatch):
    monkeypatch.setenv("GTKIT_PASSWORD", "a long enough password 1")
    assert invoke("serve", "init", "--data", str(tmp_path / "d")).exit_code == 0
    result = invoke("serve", "user", "disable", "nobody@example.org", "--data", str(tmp_path / "d"))
    assert_one_line(result, 1, "no account 'nobody@example.org'")


@pytest.mark.parametrize(("url", "expected"), [("mysql://u:secret@localhost/gtkit", "unsupported database 'mysql'"),
                                             ("not a url", "not a database URL")])
def test_serve_bad_database_url_exits_1_naming_the_option(tmp_path, url, expected):
    result = invoke("serve", "init", "--data", str(tmp_path / "d"), "--db", url)
    assert_one_line(result, 1, expected, "use sqlite:///PATH or postgresql://", "(--db or $GTKIT_DB)")
    assert "secret" not in result.output


def test_deploy_and_destroy_bad_stack_name_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in (["deploy"], ["destroy", "--yes"]):
        result = invoke(*command, "--stack-name", "bad name!", "--region", "us-east-1")
        assert_one_line(result, 1, "bad name!")


def test_lambdas_package_pip_failure_exits_1(tmp_path, monkeypatch):
    import toolkit.aws.lambda_package as lp

    def pip_fails(cmd, **kwargs):  # type: ignore[no-untyped-def]
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for pydantic")

    monkeypatch.setattr(lp.subprocess, "run", pip_fails)
    result = invoke("lambdas", "package", "--out", str(tmp_path / "zips"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: pip install for manylinux2014_x86_64 / Python 3.13 failed:")
    assert "No matching distribution" in result.stderr


def test_bedrock_submit_names_the_option(tmp_path):
    result = invoke("bedrock", "submit", "--input", str(tmp_path), "--model", "anthropic.claude-3-haiku",
                    "--role", "arn:aws:iam::123456789012:role/x", "--output", "s3://b/out/", "--region", "us-east-1",
                    "--dry-run")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: invalid batch inference request") and "--input: must be an s3://" in \
        result.stderr


def test_the_mapping_decides_exit_codes_and_leaves_bugs_alone():
    class Special(GtkitError):
        exit_code = 7

    assert exit_code_of(Special("x")) == 7
    assert exit_code_of(FileNotFoundError("no such file")) == 1
    assert exit_code_of(PermissionError(13, "Permission denied", "/x")) == 1
    assert exit_code_of(KeyError("bug")) is None and exit_code_of(ValueError("bug")) is None
    assert exit_code_of(OSError("no filename: a bug or the environment, not a user's file")) is None


# Handlers a command may have: not a library error (Ctrl+C), or a fallback that is not an error
# (job.py: --region from the deploy config when there is one, else the AWS default).
ALLOWED_HANDLERS = {("job.py", "(FileNotFoundError, ValueError)"), ("localjob.py", "KeyboardInterrupt"),
                    ("ui.py", "KeyboardInterrupt"), ("__init__.py", "Exception")}


def test_no_command_catches_a_library_error():
    found = set()
    for path in sorted((REPO / "toolkit" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ExceptHandler):
                found.add((path.name, ast.unparse(node.type) if node.type else "(bare)"))
    assert found == ALLOWED_HANDLERS
