"""toolkit.aws.lambda_package: deterministic zips whose contents follow the handlers' real imports, and
that run where they run: unzipped alone, on the Lambda's Python, with nothing but boto3 beside them."""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import shutil
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest

from toolkit.aws.lambda_package import (
    FIXED_TIME,
    ClosureError,
    import_closure,
    package_lambdas,
    sha256,
)

REPO = Path(__file__).resolve().parents[1]
LAMBDA_PYTHON = (3, 13)  # cloudformation/labeling.yaml: Runtime python3.13
LAMBDA_PYTHON_NAME = f"python{LAMBDA_PYTHON[0]}.{LAMBDA_PYTHON[1]}"


def need(ok: bool, reason: str) -> None:
    """What CI has must be there: fail under CI, skip only on a developer machine."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: this test must run)")
    pytest.skip(reason)


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


# -- contents, computed from the imports -----------------------------------------------------------

@pytest.fixture(scope="module")
def code_zips(tmp_path_factory) -> dict[str, Path]:
    return package_lambdas(tmp_path_factory.mktemp("zips"), install_dependencies=False)


def test_zip_contents_follow_the_imports(code_zips):
    assert set(code_zips) == {"pre_annotation", "post_annotation"}
    pre, post = names(code_zips["pre_annotation"]), names(code_zips["post_annotation"])
    for entries in (pre, post):
        assert entries == sorted(entries)
        assert "handler.py" in entries and "toolkit/__init__.py" in entries
        assert "toolkit/contract/__init__.py" in entries and "toolkit/schemas/call-center.yaml" in entries
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in entries)
        assert not any(n.startswith(("boto3/", "botocore/")) for n in entries)
        # Nothing the handler does not import: no CLI, portal, exporter, storage (smart_open) or AWS deploy code.
        assert not any(n.startswith(("toolkit/service/portal/", "toolkit/cli/", "toolkit/export/", "toolkit/aws/"))
                       for n in entries)
        assert not any(n.startswith("toolkit/storage/") for n in entries)
    assert "toolkit/task/task_input.py" in pre and "toolkit/labeling/consolidate.py" not in pre
    assert {"toolkit/labeling/consolidate.py", "toolkit/labeling/answers.py", "toolkit/contract/events.py"} <= set(post)
    with zipfile.ZipFile(code_zips["post_annotation"]) as zf:
        infos = zf.infolist()
        assert {i.date_time for i in infos} == {FIXED_TIME}
        assert {i.external_attr >> 16 for i in infos} == {0o100644}
        handler_src = zf.read("handler.py").decode()
    assert handler_src == (REPO / "lambdas/post_annotation/handler.py").read_text()


def test_zips_are_byte_identical_across_builds(code_zips, tmp_path):
    again = package_lambdas(tmp_path, install_dependencies=False)
    for name, path in again.items():
        assert path.read_bytes() == code_zips[name].read_bytes()
        assert sha256(path) == sha256(code_zips[name])


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_closure_follows_relative_lazy_and_optional_imports(tmp_path):
    write_tree(tmp_path, {
        "fn/handler.py": """
            from pkg.core import run
            import helper
            def later():
                import pkg.lazy.deep  # only when called: still shipped
        """,
        "fn/helper.py": "import json\n",
        "pkg/__init__.py": "",
        "pkg/py.typed": "",
        "pkg/core.py": """
            from typing import TYPE_CHECKING
            from . import util
            from .sub import thing
            if TYPE_CHECKING:
                from pkg.heavy import Heavy  # type hints only: never imported at run time
            try:
                import orjson  # optional: the code works without it
            except ImportError:
                orjson = None
            import yaml
            import boto3
        """,
        "pkg/util.py": "from pkg.sub.thing import x\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/thing.py": "x = 1\n",
        "pkg/lazy/__init__.py": "",
        "pkg/lazy/deep.py": "from ..util import *\n",
        "pkg/heavy.py": "import smart_open\n",
        "pkg/data/labels.yaml": "a: 1\n",
        "pkg/unused/__init__.py": "",
        "pkg/unused/notes.txt": "not shipped: its package is not imported\n",
    })
    closure = import_closure(tmp_path / "fn" / "handler.py", tmp_path / "pkg", allowed={"yaml"})
    assert sorted(closure.modules) == ["helper", "pkg", "pkg.core", "pkg.lazy", "pkg.lazy.deep", "pkg.sub",
                                       "pkg.sub.thing", "pkg.util"]
    assert sorted(closure.files) == ["handler.py", "helper.py", "pkg/__init__.py", "pkg/core.py",
                                     "pkg/data/labels.yaml", "pkg/lazy/__init__.py", "pkg/lazy/deep.py", "pkg/py.typed",
                                     "pkg/sub/__init__.py", "pkg/sub/thing.py", "pkg/util.py"]
    assert closure.third_party == {"yaml", "boto3"}


def test_closure_refuses_a_third_party_import_the_zip_cannot_satisfy(tmp_path):
    write_tree(tmp_path, {
        "fn/handler.py": "from pkg.task import build\n",
        "pkg/__init__.py": "",
        "pkg/task.py": "from pkg.store import Store\n",
        "pkg/store.py": "def open_it():\n    from smart_open import open\n",
    })
    with pytest.raises(ClosureError) as info:
        import_closure(tmp_path / "fn" / "handler.py", tmp_path / "pkg", allowed={"pydantic"})
    message = str(info.value)
    assert "handler -> pkg.task -> pkg.store imports smart_open" in message
    assert "pydantic" in message and "boto3" in message  # what the zip does have


def test_real_toolkit_closure_has_only_shipped_dependencies():
    """The real handlers over the real toolkit: every third-party import is a dependency or the runtime's."""
    from toolkit.aws.lambda_package import FUNCTIONS, LAMBDAS_DIR, RUNTIME_PROVIDED, TOOLKIT_DIR, dependency_modules

    allowed = dependency_modules(None)
    for name in FUNCTIONS:
        closure = import_closure(LAMBDAS_DIR / name / "handler.py", TOOLKIT_DIR, allowed=allowed)
        assert closure.third_party <= allowed | RUNTIME_PROVIDED, (name, closure.third_party)
        assert "toolkit.storage" not in closure.modules


# -- the real zips, where they run -----------------------------------------------------------------

def find_lambda_python() -> str | None:
    """An interpreter of the Lambda's Python version: python3.13 on PATH, else a pyenv install."""
    candidates = [shutil.which(LAMBDA_PYTHON_NAME)]
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        root = ""
    if root:
        version = LAMBDA_PYTHON_NAME.removeprefix("python")
        candidates += sorted(glob.glob(f"{root}/versions/{version}*/bin/{LAMBDA_PYTHON_NAME}"), reverse=True)
    for exe in filter(None, candidates):
        probe = subprocess.run([exe, "-c", f"import sys; print(sys.version_info[:2] == {LAMBDA_PYTHON!r})"],
                               capture_output=True, text=True, timeout=60)
        if probe.returncode == 0 and probe.stdout.strip() == "True":  # a pyenv shim may exist but not run
            return exe
    return None


@pytest.fixture(scope="module")
def lambda_python() -> str:
    exe = find_lambda_python()
    need(exe is not None, f"no {LAMBDA_PYTHON_NAME} interpreter (the Lambda runtime's) on PATH or in pyenv")
    return exe


@pytest.fixture(scope="module")
def runtime_boto3(lambda_python, request) -> Path:
    """boto3 + botocore installed for the Lambda's Python, alone in a directory (what the runtime adds)."""
    versions = {n: importlib.metadata.version(n) for n in ("boto3", "botocore")}
    target = Path(request.config.cache.mkdir(f"lambda-runtime-py{LAMBDA_PYTHON[0]}{LAMBDA_PYTHON[1]}-"
                                             f"boto3-{versions['boto3']}"))
    marker = target / ".complete"
    if not marker.exists():
        shutil.rmtree(target)
        proc = subprocess.run([lambda_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--no-compile", "--target", str(target),
                               *(f"{n}=={v}" for n, v in versions.items())],
                              capture_output=True, text=True, timeout=600)
        need(proc.returncode == 0, f"pip could not install boto3 for {LAMBDA_PYTHON_NAME} (PyPI?): "
                                   f"{proc.stderr[-1500:]}")
        marker.touch()
    return target


@pytest.fixture(scope="module")
def real_zips(tmp_path_factory) -> dict[str, Path]:
    """The deployable zips: dependencies pip-installed for manylinux2014_x86_64 / CPython 3.13."""
    try:
        return package_lambdas(tmp_path_factory.mktemp("real-zips"))
    except RuntimeError as exc:  # pip could not reach PyPI
        need(False, f"cannot build the Lambda zips with their dependencies: {exc}")
        raise


def test_real_zip_dependencies_are_for_the_lambda_platform(real_zips, tmp_path):
    entries = names(real_zips["post_annotation"])
    assert any(n.startswith("pydantic_core/") and n.endswith("cpython-313-x86_64-linux-gnu.so") for n in entries)
    assert any(n.startswith("yaml/") for n in entries)
    assert any(n.startswith("aws_lambda_powertools/") for n in entries)
    assert not any(n.startswith(("boto3/", "botocore/", "bin/")) for n in entries)
    assert not any("__pycache__" in n for n in entries)
    assert package_lambdas(tmp_path / "again")["post_annotation"].read_bytes() == \
        real_zips["post_annotation"].read_bytes()


# Run inside `python3.13 -I -S`: isolated (no PYTHON* variables, no user site, no script directory) and
# without site-packages, so the only code on the path is the unzipped function, boto3 and the stdlib.
BOOTSTRAP = r"""
import json, sys, sysconfig
code, runtime, events = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [code, runtime]
import handler

class Context:
    aws_request_id = "00000000-0000-0000-0000-000000000001"

results = [handler.lambda_handler(event, Context()) for event in events]
roots = (code, runtime, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted(name for name, module in list(sys.modules.items())
                 if getattr(module, "__file__", None) and not module.__file__.startswith(roots))
print("RESULT=" + json.dumps({"results": results, "outside": outside,
                              "toolkit": sys.modules["toolkit"].__file__, "version": list(sys.version_info[:2])}))
"""


@pytest.fixture(scope="module")
def s3_server():
    """A local moto server, so the post-annotation Lambda's real boto3 code (STS, then S3) runs."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def run_isolated(lambda_python: str, zip_path: Path, runtime: Path, workdir: Path, events: list[dict],
                 env: dict[str, str]) -> dict:
    code = workdir / zip_path.stem
    code.mkdir()
    assert not any(code.iterdir())  # unzipped alone, into an empty directory
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(code)
    proc = subprocess.run([lambda_python, "-I", "-S", "-c", BOOTSTRAP, str(code), str(runtime), json.dumps(events)],
                          capture_output=True, text=True, timeout=120, cwd=workdir, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT="))
    out = json.loads(line.removeprefix("RESULT="))
    assert out["version"] == list(LAMBDA_PYTHON)
    assert out["toolkit"].startswith(str(code)), out["toolkit"]
    assert out["outside"] == [], f"modules loaded from outside the zip, boto3 and the stdlib: {out['outside']}"
    return out


def lambda_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-west-2", "AWS_ENDPOINT_URL": endpoint,
           "AWS_EC2_METADATA_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    return env | extra


# The documented sample events of "Using pre-annotation and post-annotation Lambda functions"
# (SageMaker developer guide, sms-custom-templates-step3-lambda-requirements), placeholders as printed.
DOC_PRE_SOURCE_REF = {
    "version": "2018-10-16",
    "labelingJobArn": "arn:aws:sagemaker:<aws_region>:<aws_account_number>:labeling-job/<labeling_job_name>",
    "dataObject": {"source-ref": "s3://<input-data-bucket>/<data-object-file-name>"},
}
DOC_PRE_SOURCE = {
    "version": "2018-10-16",
    "labelingJobArn": "arn:aws:sagemaker:<aws_region>:<aws_account_number>:labeling-job/<labeling_job_name>",
    "dataObject": {"source": "Sue purchased 10 shares of the stock on April 10th, 2020"},
}
DOC_POST = {
    "version": "2018-10-16",
    "labelingJobArn": "arn:aws:sagemaker:us-west-2:111122223333:labeling-job/labeling-job-name",
    "labelCategories": ["Ex Category1", "Ex Category2", "Ex Category3"],
    "labelAttributeName": "labeling-job-attribute-name",
    "roleArn": "arn:aws:iam::111122223333:role/role-name",
    "payload": {"s3Uri": "s3://DOC-EXAMPLE-BUCKET/annotations.json"},
}
DOC_BOUNDING_BOX_ITEM = {  # the guide's "Bounding Box Payload": not an answer of ours, so an error entry
    "datasetObjectId": "0",
    "dataObject": {"s3Uri": "s3://DOC-EXAMPLE-BUCKET/gt-input-data/images/bird1.jpg"},
    "annotations": [{"workerId": "private.us-west-2.ab1234c5678a919d0", "annotationData": {"content": json.dumps(
        {"boundingBox": {"boundingBoxes": [{"height": 2052, "label": "Bird", "left": 583, "top": 302,
                                            "width": 1375}], "inputImageProperties": {"height": 2497,
                                                                                       "width": 3745}}})}}],
}


def our_answer(start: float, end: float) -> str:
    answer = {"mediaDuration": 21.0, "interactionId": "int-0001",
              "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
              "segments": [{"id": "s1", "track": "t1", "start": start, "end": end, "text": "hello",
                            "attributes": {"emotion": "Neutral"}}],
              "content": {"background_noise": ["None"], "overall_rating": 4, "summary": "ok"}}
    return json.dumps({"answer": json.dumps(answer)})


def test_pre_annotation_zip_answers_documented_events_in_isolation(lambda_python, runtime_boto3, real_zips,
                                                                   s3_server, tmp_path):
    ours = {"version": "2018-10-16", "labelingJobArn": DOC_POST["labelingJobArn"],
            "dataObject": {"source-ref": "s3://media-bucket/calls/call_001.wav", "media-type": "audio",
                           "interaction-id": "int-0001", "duration-seconds": 21.0}}
    out = run_isolated(lambda_python, real_zips["pre_annotation"], runtime_boto3, tmp_path,
                       [DOC_PRE_SOURCE_REF, DOC_PRE_SOURCE, ours], lambda_env(s3_server))
    for response in out["results"]:
        assert set(response) == {"taskInput", "isHumanAnnotationRequired"}
        assert isinstance(response["taskInput"], dict)
        assert isinstance(response["isHumanAnnotationRequired"], bool)  # a JSON boolean, never "true"
    doc_ref, doc_source, mine = out["results"]
    assert doc_ref["isHumanAnnotationRequired"] is False  # no media-type / interaction-id: not our contract
    assert doc_source == {"taskInput": {}, "isHumanAnnotationRequired": False}  # inline text: nothing to play
    assert mine["isHumanAnnotationRequired"] is True
    assert mine["taskInput"]["source-ref"] == "s3://media-bucket/calls/call_001.wav"
    assert mine["taskInput"]["interaction-id"] == "int-0001"


def test_post_annotation_zip_reads_the_payload_through_s3_in_isolation(lambda_python, runtime_boto3, real_zips,
                                                                       s3_server, tmp_path):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-west-2")
    s3.create_bucket(Bucket="DOC-EXAMPLE-BUCKET", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="DOC-EXAMPLE-BUCKET", Key="answers/w2.json", Body=our_answer(0.5, 3.4).encode())
    payload = [
        DOC_BOUNDING_BOX_ITEM,
        {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://media-bucket/calls/call_001.wav"},
         "annotations": [
             {"workerId": "private.us-west-2.w1", "annotationData": {"content": our_answer(0.4, 3.5)}},
             {"workerId": "private.us-west-2.w2",
              "annotationData": {"s3Uri": "s3://DOC-EXAMPLE-BUCKET/answers/w2.json"}}]},
    ]
    s3.put_object(Bucket="DOC-EXAMPLE-BUCKET", Key="annotations.json", Body=json.dumps(payload).encode())
    # The bundled call-center schema is read from the zip's package data (toolkit/schemas/*.yaml).
    env = lambda_env(s3_server, GTKIT_LABEL_SCHEMA="call-center", GTKIT_ASSUME_ROLE="always")
    out = run_isolated(lambda_python, real_zips["post_annotation"], runtime_boto3, tmp_path, [DOC_POST], env)
    (response,) = out["results"]
    assert [item["datasetObjectId"] for item in response] == ["0", "1"]
    for item in response:
        assert set(item) == {"datasetObjectId", "consolidatedAnnotation"}
        assert list(item["consolidatedAnnotation"]["content"]) == ["labeling-job-attribute-name"]
    bbox, ours = (item["consolidatedAnnotation"]["content"]["labeling-job-attribute-name"] for item in response)
    assert bbox["status"] == "error" and "no valid worker answers" in bbox["error"]
    assert ours["status"] == "ok"
    (segment,) = ours["segments"]
    assert segment["support"] == 2  # both answers, the inline one and the one read from S3
    assert segment["start"] == pytest.approx(0.45) and segment["end"] == pytest.approx(3.45)
