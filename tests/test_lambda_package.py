"""toolkit.lambda_package: deterministic zips whose handlers import and run from the zip alone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from toolkit.lambda_package import FIXED_TIME, package_lambdas, sha256

RUN_FROM_ZIP = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import handler, toolkit
assert toolkit.__file__.startswith(sys.argv[1]), toolkit.__file__
event = json.loads(sys.argv[2])
if sys.argv[3] == "post":
    result = handler.handle(event, read_text=lambda uri: json.dumps(json.loads(sys.argv[4])))
else:
    result = handler.lambda_handler(event, None)
print("RESULT=" + json.dumps(result))
"""


@pytest.fixture(scope="module")
def code_zips(tmp_path_factory) -> dict[str, Path]:
    return package_lambdas(tmp_path_factory.mktemp("zips"), install_dependencies=False)


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def test_zip_contents(code_zips):
    assert set(code_zips) == {"pre_annotation", "post_annotation"}
    pre, post = names(code_zips["pre_annotation"]), names(code_zips["post_annotation"])
    for entries in (pre, post):
        assert entries == sorted(entries)
        assert "handler.py" in entries and "toolkit/__init__.py" in entries
        assert "toolkit/models/answer.py" in entries and "toolkit/schemas/call-center.yaml" in entries
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in entries)
        assert not any(n.startswith(("boto3/", "botocore/")) for n in entries)
    assert "toolkit/task_input.py" in pre and "toolkit/consolidate.py" not in pre
    assert {"toolkit/consolidate.py", "toolkit/answers.py"} <= set(post)
    assert not any(n.startswith(("toolkit/portal/", "toolkit/cli/")) for n in pre + post)
    with zipfile.ZipFile(code_zips["post_annotation"]) as zf:
        infos = zf.infolist()
        assert {i.date_time for i in infos} == {FIXED_TIME}
        assert {i.external_attr >> 16 for i in infos} == {0o100644}
        handler_src = zf.read("handler.py").decode()
    assert handler_src == (Path(__file__).resolve().parents[1] / "lambdas/post_annotation/handler.py").read_text()


def test_zips_are_byte_identical_across_builds(code_zips, tmp_path):
    again = package_lambdas(tmp_path, install_dependencies=False)
    for name, path in again.items():
        assert path.read_bytes() == code_zips[name].read_bytes()
        assert sha256(path) == sha256(code_zips[name])


def run_from_zip(zip_path: Path, event: dict, kind: str, payload: list | None = None) -> object:
    args = [sys.executable, "-c", RUN_FROM_ZIP, str(zip_path), json.dumps(event), kind, json.dumps(payload)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=zip_path.parent,
                          env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT="))
    return json.loads(line.removeprefix("RESULT="))


def test_handlers_run_from_their_zip(code_zips):
    line = {"source-ref": "s3://b/a.wav", "media-type": "audio", "interaction-id": "int-1"}
    out = run_from_zip(code_zips["pre_annotation"], {"dataObject": line}, "pre")
    assert out["isHumanAnnotationRequired"] is True and out["taskInput"]["interaction-id"] == "int-1"

    answer = {"mediaDuration": 5, "tracks": [{"id": "t", "category": "speaker", "label": "Agent"}],
              "segments": [{"id": "s", "track": "t", "start": 1, "end": 2}]}
    payload = [{"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://b/a.wav"},
                "annotations": [{"workerId": "w", "annotationData":
                                 {"content": json.dumps({"answer": json.dumps(answer)})}}]}]
    event = {"labelAttributeName": "segs", "payload": {"s3Uri": "s3://b/p.json"}}
    out = run_from_zip(code_zips["post_annotation"], event, "post", payload)
    assert out[0]["consolidatedAnnotation"]["content"]["segs"]["segments"][0]["start"] == 1.0


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _pypi_reachable(), reason="PyPI not reachable")
def test_real_dependency_install_for_lambda_platform(tmp_path):
    zips = package_lambdas(tmp_path)  # pip --platform manylinux2014_x86_64 --python-version 3.13
    entries = names(zips["post_annotation"])
    assert any(n.startswith("pydantic_core/") and n.endswith("cpython-313-x86_64-linux-gnu.so") for n in entries)
    assert any(n.startswith("yaml/") for n in entries)
    assert any(n.startswith("aws_lambda_powertools/") for n in entries)
    assert not any(n.startswith(("boto3/", "botocore/", "bin/")) for n in entries)
    assert not any("__pycache__" in n for n in entries)
    assert package_lambdas(tmp_path / "again")["post_annotation"].read_bytes() == \
        zips["post_annotation"].read_bytes()
