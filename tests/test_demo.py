"""`make demo`, the README's quick start: what it prints and that a rerun writes the same bytes."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_demo(out: Path) -> str:
    # The test's own virtualenv stands in for .venv (its install target is then up to date).
    result = subprocess.run(["make", "-s", "demo", f"DEMO={out}", f"VENV={Path(sys.prefix)}"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str, dict[str, bytes]]:
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    stdout = run_demo(out)
    return out, stdout, snapshot(out)


def test_the_demo_prints_corrections_and_varied_rewards(demo):
    out, stdout, _ = demo
    sft = records(out / "sft-transcription.trl.jsonl")
    pref = records(out / "preference-correction.trl.jsonl")
    reward = records(out / "reward-segments.jsonl")
    summary = records(out / "sft-summary.trl.jsonl")
    assert sft and pref and reward and summary
    targets = {m["content"] for r in sft for m in r["messages"] if m["role"] == "assistant"}
    # The known ASR errors are fixed in the SFT targets and are the rejected side of the pairs.
    assert "Sorry about that. What's the order number?" in targets
    # Most of the five erroneous turns are fixed by the majority (not all: workers are not perfect).
    assert len(pref) >= 4
    pairs = {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in pref}
    assert ("Yes. I was charged twice, and I want to cancel my premium plan.",
            "Yes. I was charged twice, and I want to counsel my premium plan.") in pairs
    assert len({r["score"] for r in reward}) > 1
    # call-center asks emotion and text on speaker turns only (tracks: [speaker]): the exports follow.
    spans = [s for r in reward for s in r["spans"]]
    assert {s["track"] for s in spans} == {"speaker", "language"}
    assert all(s["text"] == "" and s["attributes"] == {} for s in spans if s["track"] == "language")
    assert all("emotion" in s["attributes"] for s in spans if s["track"] == "speaker")
    assert not any("language segment" in m["content"] for r in sft for m in r["messages"])
    assert all(r["completion"][0]["content"] for r in summary)
    # ...and the end of the run shows them.
    assert "chosen   Sorry about that. What's the order number?" in stdout
    assert "rejected Sorry about that. What's the odor number?" in stdout
    for r in reward:
        assert f"{r['id']:<9}score {r['score']:.3f}" in stdout
    assert "summary  " in stdout


def test_a_rerun_writes_byte_identical_outputs(demo):
    out, stdout, first = demo
    assert any(k.startswith("local-call-center/annotations/worker-response/") for k in first)
    assert run_demo(out) == stdout
    second = snapshot(out)
    assert sorted(second) == sorted(first)
    for name, data in first.items():
        assert second[name] == data, name


def test_the_report_shows_distributions(demo):
    out, _, _ = demo
    html = (out / "report.html").read_text()
    assert "Segment field: emotion" in html and "overall_rating (rating)" in html


def test_serve_demo_runs_the_demo_tasks_on_the_service(tmp_path):
    """`make serve-demo`: a database, an admin with a generated password, the demo job, the server;
    the admin signs in over HTTP and sees the job, and a rerun keeps the same database."""
    out = tmp_path / "demo-out"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    for run in range(2):
        proc = subprocess.Popen(["make", "-s", "serve-demo", f"DEMO={out}", f"VENV={Path(sys.prefix)}",
                                 f"SERVE_PORT={port}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while True:
                assert proc.poll() is None, proc.stdout.read()[-3000:]
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                        break
                except OSError:
                    assert time.monotonic() < deadline, "the service did not come up"
                    time.sleep(0.5)
            password_file = out / "serve" / "admin-password"
            assert password_file.stat().st_mode & 0o077 == 0  # only its owner reads the password
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            login = opener.open(f"{base}/login", timeout=10).read().decode()
            csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
            form = {"email": "admin@example.org", "password": password_file.read_text().strip(), "csrf_token": csrf}
            opener.open(f"{base}/login", urllib.parse.urlencode(form).encode(), timeout=10)
            admin = opener.open(f"{base}/admin/", timeout=10).read().decode()
            assert 'data-job="demo-calls"' in admin, f"run {run}"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
