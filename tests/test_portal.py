"""toolkit.service.portal: the Flask portal over a PreviewSource (test client, no browser)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html as htmllib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from portal_client import portal_client
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import PeaksFile, SegmentationAnswer, load_label_schema, validate_answer
from toolkit.contract.peaks import peaks_gzip, peaks_json
from toolkit.ingest.peaks import compute_peaks, write_peaks
from toolkit.service.portal import ManifestError, PreviewSource, TaskSource, create_app, gt_time
from toolkit.service.portal.app import STANDIN_PATH, content_type
from toolkit.storage import Storage
from toolkit.task.template import CROWD_ELEMENTS_URL

MEDIA = "s3://example-feedback-bucket/media"


@pytest.fixture
def static_dir(tmp_path) -> Path:
    root = tmp_path / "static"
    (root / "js").mkdir(parents=True)
    (root / "css").mkdir()
    (root / "js" / "main.js").write_text("import './state.js'\n")
    (root / "js" / "state.js").write_text("export const x = 1\n")
    (root / "css" / "gtkit.css").write_text("body{}\n")
    return root


@pytest.fixture
def manifest(tmp_path, examples) -> Path:
    peaks = tmp_path / "call_001.peaks.json"
    peaks.write_bytes(peaks_json(compute_peaks(examples / "media" / "call_001.wav")))
    lines = [
        {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
         "duration-seconds": 21.0, "transcription": "<img src=x onerror=alert(1)>", "peaks-ref": str(peaks)},
        {"source-ref": f"{MEDIA}/video_001.mp4", "media-type": "video", "interaction-id": "vid-0001"},
        {"source": "inline text cannot be segmented"},
    ]
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    return path


@pytest.fixture
def source(manifest, tmp_path, example_mirror) -> PreviewSource:
    return PreviewSource(manifest, load_label_schema("call-center"), out=tmp_path / "out",
                         storage=Storage([example_mirror]))


@pytest.fixture
def client(source, static_dir):
    return portal_client(create_app(source, assets_dir=static_dir), "alice")


def page(client, task_id: str) -> str:
    resp = client.get(f"/task/{task_id}")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def app_attr(html: str, name: str) -> str:
    return htmllib.unescape(re.search(rf'{name}="([^"]*)"', html).group(1))


def valid_answer(duration: float = 21.0) -> dict:
    return {"schemaVersion": "1.0", "labelSchema": "call-center", "interactionId": "int-0001",
            "mediaDuration": duration,
            "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
            "segments": [{"id": "s1", "track": "t1", "start": 0.5, "end": 3.25, "text": "hello",
                          "attributes": {"emotion": "Happy"}}],
            "content": {"background_noise": ["Music"], "overall_rating": 4, "summary": ""}}


def test_preview_source_is_a_task_source(source):
    assert isinstance(source, TaskSource)
    tasks = source.list_tasks()
    assert [t.task_id for t in tasks] == ["0", "1", "2"]  # blank line is not a data object
    assert [t.status for t in tasks] == ["open", "open", "failed"]
    assert tasks[2].reason and "line 3" in tasks[2].reason
    assert tasks[0].interaction_id == "int-0001" and tasks[1].media_type == "video"
    assert source.task_input("0")["source-ref"] == f"{MEDIA}/call_001.wav"
    with pytest.raises(KeyError):
        source.task_input("9")


def test_bad_manifest_line_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source-ref": "s3://b/a.wav", "media-type": "audio", "interaction-id": "a"}\n{oops\n')
    with pytest.raises(ManifestError, match="line 2"):
        PreviewSource(bad, load_label_schema("call-center"), out=tmp_path / "o")


@pytest.mark.parametrize("content, why", [
    (b'{"source-ref": "s3://b/a.wav", "media-type": "audio", "interaction-id": "a"}\n{"x": "\xff"}\n', "line 2"),
    ('{"source-ref": "s3://b/a.wav"}\n'.encode("utf-16"), "UTF-16"),
])
def test_undecodable_manifest_is_a_manifest_error_naming_file_and_line(tmp_path, content, why):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    with pytest.raises(ManifestError, match=why) as caught:
        PreviewSource(bad, load_label_schema("call-center"), out=tmp_path / "o")
    assert str(bad) in str(caught.value)


def test_worker_name_required(source, static_dir):
    c = portal_client(create_app(source, assets_dir=static_dir))
    resp = c.get("/task/0")
    assert resp.status_code == 302 and resp.location.startswith("/login?next=/task/0")
    assert c.post("/login", data={"worker": "<script>", "next": "/"}).status_code == 400
    resp = c.post("/login", data={"worker": "bob", "next": "https://evil.example/"})
    assert resp.status_code == 302 and resp.location == "/"  # never redirects off the portal
    assert c.get("/task/0").status_code == 200
    assert c.post("/task/0/submit", json={}).status_code == 400


def test_task_picker(client):
    html = client.get("/").get_data(as_text=True)
    assert 'data-task-id="0"' in html and 'data-task-id="2"' in html
    assert "int-0001" in html and "failed" in html
    assert client.get("/next").location == "/task/0"


def test_task_page_is_the_liquid_rendered_template(client, source):
    html = page(client, "0")
    assert CROWD_ELEMENTS_URL not in html and f'<script src="{STANDIN_PATH}"></script>' in html
    assert "{{" not in html and "{%" not in html
    assert json.loads(app_attr(html, "data-task-input")) == source.task_input("0")
    assert json.loads(app_attr(html, "data-schema"))["name"] == "call-center"
    assert "<img src=x" not in html  # the transcript is attribute text only
    assert app_attr(html, "data-media-url").startswith("/media/")
    assert app_attr(html, "data-peaks-url").endswith("/call_001.peaks.json")
    assert 'data-variant="audio"' in html
    # each worker name has its own autosave, as each Ground Truth worker has their own browser
    assert app_attr(html, "data-task-key") == f"alice@gtkit:call-center:int-0001:{MEDIA}/call_001.wav"
    assert 'data-variant="video"' in page(client, "1")  # variant follows the task's media type
    assert client.get("/task/2").status_code == 409  # unlabelable line
    assert client.get("/task/99").status_code == 404


def test_assets_served_with_matching_sri(client, static_dir):
    html = page(client, "0")
    imap = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1))
    assert set(imap["integrity"]) == {"/assets/js/main.js", "/assets/js/state.js"}
    for url, integrity in imap["integrity"].items():
        resp = client.get(url)
        assert resp.status_code == 200 and resp.content_type.startswith("text/javascript")
        assert integrity == "sha384-" + base64.b64encode(hashlib.sha384(resp.data).digest()).decode()
    assert client.get("/assets/css/gtkit.css").content_type.startswith("text/css")
    assert client.get("/assets/../manifest.jsonl").status_code == 404
    assert client.get("/assets/%2e%2e/manifest.jsonl").status_code == 404
    assert client.get(STANDIN_PATH).status_code == 200


@pytest.mark.parametrize(("task_id", "mime"), [("0", "audio/wav"), ("1", "video/mp4")])
def test_media_range_requests(client, examples, task_id, mime):
    url = app_attr(page(client, task_id), "data-media-url")
    local = examples / "media" / ("call_001.wav" if task_id == "0" else "video_001.mp4")
    data = local.read_bytes()
    full = client.get(url)
    assert full.status_code == 200 and full.content_type == mime and full.data == data
    assert full.headers["Accept-Ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert part.data == data[100:200] and part.content_type == mime
    tail = client.get(url, headers={"Range": f"bytes={len(data) - 10}-"})
    assert tail.status_code == 206 and tail.data == data[-10:]
    assert client.get(url, headers={"Range": f"bytes={len(data) + 5}-"}).status_code == 416


def test_media_only_for_granted_uris(client):
    assert client.get("/media/" + "0" * 32 + "/call_001.wav").status_code == 404
    peaks = client.get(app_attr(page(client, "0"), "data-peaks-url"))
    assert peaks.status_code == 200 and peaks.content_type == "application/json"
    assert json.loads(peaks.data)["duration"] == pytest.approx(21.0)


def test_media_never_served_from_outside_the_mirror(tmp_path, static_dir):
    """`source-ref: s3://bucket/../../..` fails the task; neither it nor a symlink out of the mirror is served."""
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF not for workers")
    mirror = tmp_path / "mirror"
    (mirror / "media").mkdir(parents=True)
    (mirror / "media" / "link.wav").symlink_to(secret)
    walk = "s3://bkt/" + "../" * 40 + str(secret).lstrip("/")
    lines = [{"source-ref": walk, "media-type": "audio", "interaction-id": "walk"},
             {"source-ref": "s3://bkt/media/link.wav", "media-type": "audio", "interaction-id": "link"}]
    manifest = tmp_path / "walk.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    source = PreviewSource(manifest, load_label_schema("call-center"), out=tmp_path / "out",
                           storage=Storage([f"s3://bkt/={mirror}"]))
    walk_task, link_task = source.list_tasks()
    assert walk_task.status == "failed" and "source-ref" in walk_task.reason
    assert link_task.status == "open"
    portal = create_app(source, assets_dir=static_dir)
    c = portal.test_client()
    c.set_cookie("gtkit_worker", "alice")
    assert c.get("/task/0").status_code == 409
    link_url = app_attr(page(c, "1"), "data-media-url")  # a valid key: the page renders...
    assert c.get(link_url).status_code == 404  # ...but the symlink out of the mirror is not followed
    # Even a grant of the walking URI itself (validation bypassed) is refused by the storage layer.
    grants = portal.extensions["gtkit_portal"]["grants"]
    for uri in (walk, "s3://bkt/media/../../secret.wav"):
        resp = c.get(grants.grant(uri))
        assert resp.status_code == 404 and b"not for workers" not in resp.data


def test_plain_peaks_have_no_content_encoding(client):
    peaks = client.get(app_attr(page(client, "0"), "data-peaks-url"))
    assert peaks.status_code == 200 and "Content-Encoding" not in peaks.headers


def gzip_peaks_client(tmp_path, examples, example_mirror, static_dir, name: str):
    """A portal whose only task's peaks-ref is a gzip file called `name`."""
    result = compute_peaks(examples / "media" / "call_001.wav", peaks_per_second=20)
    write_peaks(result, str(tmp_path / name), Storage(), compress=True)
    line = {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
            "duration-seconds": 21.0, "peaks-ref": str(tmp_path / name)}
    manifest = tmp_path / "gz.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    source = PreviewSource(manifest, load_label_schema("call-center"), out=tmp_path / "out",
                           storage=Storage([example_mirror]))
    c = create_app(source, assets_dir=static_dir).test_client()
    c.set_cookie("gtkit_worker", "alice")
    return c, result


@pytest.mark.parametrize("name", ["call_001.peaks.json.gz", "call_001.peaks.json"])
def test_gzip_peaks_served_with_content_encoding(tmp_path, examples, example_mirror, static_dir, name):
    """As S3 serves a Content-Encoding: gzip object: the browser gets JSON after decoding."""
    c, result = gzip_peaks_client(tmp_path, examples, example_mirror, static_dir, name)
    url = app_attr(page(c, "0"), "data-peaks-url")
    assert url.endswith("/" + name)
    resp = c.get(url)
    assert resp.status_code == 200
    assert resp.headers["Content-Encoding"] == "gzip" and resp.content_type == "application/json"
    assert resp.data[:2] == b"\x1f\x8b"  # the test client does not decode; a browser does
    assert PeaksFile.model_validate_json(gzip.decompress(resp.data)) == result
    assert int(resp.headers["Content-Length"]) == len(resp.data) == (tmp_path / name).stat().st_size


def test_gzip_spectrogram_served_with_content_encoding(tmp_path, examples, example_mirror, static_dir):
    """`spectrogram-ref` gets a `data-spectrogram-url` through grant_read_access, served like gzip peaks."""
    from toolkit.contract.spectrogram import parse_spectrogram, spectrogram_bytes
    from toolkit.ingest.spectrogram import compute_spectrogram, write_spectrogram

    spec = compute_spectrogram(examples / "media" / "call_001.wav")
    target = tmp_path / "call_001.spectrogram.bin.gz"
    write_spectrogram(spec, str(target), Storage())
    c, _ = gzip_peaks_client(tmp_path, examples, example_mirror, static_dir, "call_001.peaks.json.gz")
    line = json.loads((tmp_path / "gz.jsonl").read_text()) | {"spectrogram-ref": str(target)}
    (tmp_path / "gz.jsonl").write_text(json.dumps(line) + "\n")
    source = PreviewSource(tmp_path / "gz.jsonl", load_label_schema("call-center"), out=tmp_path / "out2",
                           storage=Storage([example_mirror]))
    c = create_app(source, assets_dir=static_dir).test_client()
    c.set_cookie("gtkit_worker", "alice")
    url = app_attr(page(c, "0"), "data-spectrogram-url")
    assert url.endswith("/call_001.spectrogram.bin.gz")
    resp = c.get(url)
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert resp.content_type == "application/octet-stream"
    assert gzip.decompress(resp.data) == spectrogram_bytes(spec)
    assert parse_spectrogram(resp.data).header == spec.header
    # No spectrogram-ref -> no attribute.
    (tmp_path / "b").mkdir()
    plain, _ = gzip_peaks_client(tmp_path / "b", examples, example_mirror, static_dir, "x.peaks.json.gz")
    assert "data-spectrogram-url" not in page(plain, "0")


def test_s3_media_content_encoding_passed_through(s3_bucket, static_dir, examples):
    """Un-mirrored S3 objects keep their stored Content-Encoding (and only that), like a presigned URL."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    storage = Storage(client=s3)
    result = compute_peaks(examples / "media" / "call_001.wav", peaks_per_second=20)
    write_peaks(result, f"s3://{s3_bucket}/peaks/a.peaks.json.gz", storage)
    # Compressed but uploaded without the header: served without it, so the mistake shows up here too.
    s3.put_object(Bucket=s3_bucket, Key="peaks/raw.peaks.json.gz", Body=peaks_gzip(result))
    lines = [{"source-ref": f"s3://{s3_bucket}/m.wav", "media-type": "audio", "interaction-id": iid,
              "peaks-ref": f"s3://{s3_bucket}/peaks/{key}"}
             for iid, key in (("a", "a.peaks.json.gz"), ("raw", "raw.peaks.json.gz"))]
    s3.put_object(Bucket=s3_bucket, Key="in/m.jsonl", Body="".join(json.dumps(x) + "\n" for x in lines).encode())
    source = PreviewSource(f"s3://{s3_bucket}/in/m.jsonl", load_label_schema("call-center"),
                           out=f"s3://{s3_bucket}/out", storage=storage)
    c = create_app(source, assets_dir=static_dir).test_client()
    c.set_cookie("gtkit_worker", "alice")
    good = c.get(app_attr(page(c, "0"), "data-peaks-url"))
    assert good.status_code == 200 and good.headers["Content-Encoding"] == "gzip"
    assert good.content_type == "application/json"
    assert PeaksFile.model_validate_json(gzip.decompress(good.data)) == result
    raw = c.get(app_attr(page(c, "1"), "data-peaks-url"))
    assert raw.status_code == 200 and "Content-Encoding" not in raw.headers


def test_content_type_of_gz_names():
    assert content_type("x.peaks.json.gz") == "application/json"
    assert content_type("x.peaks.json") == "application/json"
    assert content_type("call.wav") == "audio/wav"


def test_submission_saved_in_ground_truth_layout(client, tmp_path):
    before = datetime.now(UTC).replace(microsecond=0)
    accepted = gt_time(before)
    content = {"answer": json.dumps(valid_answer()), "content-overall_rating": "4"}
    resp = client.post("/task/0/submit", json={"answerContent": content, "acceptedAt": accepted})
    assert resp.status_code == 200 and resp.json["next"] == "/task/0/submitted"
    folder = tmp_path / "out" / "preview-call-center" / "annotations" / "worker-response" / "iteration-1" / "0"
    files = list(folder.glob("*.json"))
    assert len(files) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.json", files[0].name)
    record = json.loads(files[0].read_text())
    (answer,) = record["answers"]
    assert set(answer) == {"acceptanceTime", "submissionTime", "timeSpentInSeconds", "workerId", "answerContent"}
    assert answer["workerId"] == "alice"
    assert answer["acceptanceTime"] == accepted
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", answer["submissionTime"])
    assert 0 <= answer["timeSpentInSeconds"] < 60
    assert answer["answerContent"] == content
    parsed = SegmentationAnswer.model_validate_json(answer["answerContent"]["answer"])
    assert parsed.segments[0].start == 0.5 and parsed.segments[0].attributes == {"emotion": "Happy"}
    assert validate_answer(parsed, load_label_schema("call-center")) == []
    # the picker and /next move on
    assert client.get("/next").location == "/task/1"
    html = client.get("/task/0/submitted").get_data(as_text=True)
    assert 'href="/task/1"' in html
    assert "complete" in client.get("/").get_data(as_text=True)


def test_second_submission_same_second_gets_its_own_file(client, tmp_path):
    for _ in range(2):
        assert client.post("/task/0/submit", json={"answerContent": {"answer": json.dumps(valid_answer())}}
                           ).status_code == 200
    folder = tmp_path / "out" / "preview-call-center" / "annotations" / "worker-response" / "iteration-1" / "0"
    assert len(list(folder.glob("*.json"))) == 2


def test_submission_refusals(client, source, static_dir):
    assert client.post("/task/0/submit", data="answer=1").status_code == 400
    assert client.post("/task/0/submit", json={"answerContent": {}},
                       headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/task/99/submit", json={"answerContent": {}}).status_code == 409
    assert client.post("/task/2/submit", json={"answerContent": {}}).status_code == 409
    anonymous = portal_client(create_app(source, assets_dir=static_dir))
    assert anonymous.post("/task/0/submit", json={"answerContent": {}}).status_code == 401


def test_restart_counts_existing_responses(client, manifest, tmp_path, example_mirror):
    assert client.post("/task/1/submit", json={"answerContent": {"answer": json.dumps(valid_answer())}}
                       ).status_code == 200
    again = PreviewSource(manifest, load_label_schema("call-center"), out=tmp_path / "out",
                          storage=Storage([example_mirror]))
    tasks = {t.task_id: t for t in again.list_tasks()}
    assert tasks["1"].responses == 1 and tasks["1"].responded_by == frozenset({"alice"})
    assert tasks["0"].responses == 0
    assert again.next_task_for("alice") == "0" and again.next_task_for("bob") == "0"


def test_cli_preview_reports_bad_manifest(tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text("not json\n")
    result = CliRunner().invoke(app, ["preview", "--manifest", str(bad), "--schema", "call-center"])
    assert result.exit_code == 1


def test_s3_manifest_media_and_responses(s3_bucket, examples, static_dir):
    """No mirror: the manifest is read from S3, media is proxied from S3 with Range, responses go to S3."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    wav = (examples / "media" / "call_001.wav").read_bytes()
    s3.put_object(Bucket=s3_bucket, Key="media/call_001.wav", Body=wav)
    line = {"source-ref": f"s3://{s3_bucket}/media/call_001.wav", "media-type": "audio", "interaction-id": "s3-1"}
    s3.put_object(Bucket=s3_bucket, Key="in/manifest.jsonl", Body=(json.dumps(line) + "\n").encode())
    storage = Storage(client=s3)
    source = PreviewSource(f"s3://{s3_bucket}/in/manifest.jsonl", load_label_schema("call-center"),
                           out=f"s3://{s3_bucket}/out", storage=storage)
    client = portal_client(create_app(source, assets_dir=static_dir), "alice")
    url = app_attr(page(client, "0"), "data-media-url")
    part = client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == wav[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(wav)}" and part.content_type == "audio/wav"
    assert client.get(url).data == wav
    assert client.post("/task/0/submit", json={"answerContent": {"answer": json.dumps(valid_answer())}}
                       ).status_code == 200
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="out/")["Contents"]]
    assert len(keys) == 1
    assert re.fullmatch(r"out/preview-call-center/annotations/worker-response/iteration-1/0/[\d_:-]+\.json", keys[0])
    body = json.loads(s3.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read())
    assert body["answers"][0]["workerId"] == "alice"
