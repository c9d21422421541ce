"""Local and s3:// I/O behave the same; writes are atomic; mirrors redirect reads only."""

import gzip

import boto3
import pytest

from toolkit.storage.store import PART_SIZE, Mirror, MirrorEscape, Storage, join_uri, split_s3


def test_mirror_resolves_reads_longest_prefix_first(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    storage = Storage([f"s3://bkt/={tmp_path / 'a'}", f"s3://bkt/special/={tmp_path / 'b'}"])
    assert storage.resolve_read("s3://bkt/x/y.json") == str(tmp_path / "a" / "x" / "y.json")
    assert storage.resolve_read("s3://bkt/special/z.json") == str(tmp_path / "b" / "z.json")
    assert storage.resolve_read("s3://other/z.json") == "s3://other/z.json"


def test_mirror_never_resolves_outside_its_directory(tmp_path):
    """Keys that slip past validation (or come from code that never validates) still stay inside."""
    mirror = tmp_path / "mirror"
    (mirror / "media").mkdir(parents=True)
    secret = tmp_path / "secret.json"
    secret.write_text('{"secret": 1}')
    (mirror / "media" / "ok.json").write_text('{"ok": 1}')
    (mirror / "media" / "link.json").symlink_to(secret)  # a symlink inside pointing outside
    (mirror / "media" / "inner.json").symlink_to(mirror / "media" / "ok.json")  # inside -> inside is fine
    (mirror / "escape").symlink_to(tmp_path)  # a directory symlink out
    storage = Storage([f"s3://bkt/={mirror}"])
    assert storage.read_json("s3://bkt/media/ok.json") == {"ok": 1}
    assert storage.read_json("s3://bkt/media/inner.json") == {"ok": 1}
    walks = ["s3://bkt/../secret.json", "s3://bkt/media/../../secret.json", "s3://bkt/media/link.json",
             "s3://bkt/escape/secret.json", "s3://bkt/" + "../" * 40 + str(secret).lstrip("/")]
    for uri in walks:
        with pytest.raises(MirrorEscape, match="outside the mirror"):
            storage.resolve_read(uri)
        with pytest.raises(FileNotFoundError, match="outside the mirror"):
            storage.read_bytes(uri)
        assert storage.exists(uri) is False
    with pytest.raises(MirrorEscape):
        storage.resolve_read("s3://bkt/media/\x00.json")


def test_mirror_parse_errors():
    for bad in ("bkt/=dir", "s3://bkt/", "s3://bkt/="):
        with pytest.raises(ValueError, match="--mirror"):
            Mirror.parse(bad)


def test_iter_lines_streams_with_numbers(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a":1}\r\n\n{"b":"\xc3\xa9"}\n')
    assert list(Storage().iter_lines(path)) == [(1, '{"a":1}'), (2, ""), (3, '{"b":"é"}')]


def test_iter_lines_drops_a_bom_and_names_bad_lines(tmp_path):
    from toolkit.storage.lines import UndecodableLine, WrongEncoding

    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a":1}\n{"b":"\xff"}\n')
    lines = Storage().iter_lines(path)
    assert next(lines) == (1, '{"a":1}')
    with pytest.raises(UndecodableLine, match="line 2: not valid UTF-8"):
        next(lines)
    path.write_bytes('{"a":1}\n'.encode("utf-16"))
    with pytest.raises(WrongEncoding, match="UTF-16 LE"):
        list(Storage().iter_lines(path))


def test_missing_local_file_hints_at_mirror():
    with pytest.raises(FileNotFoundError, match="--mirror"):
        Storage(["s3://b/=nonexistent-dir"]).read_bytes("s3://b/x.json")


def test_local_write_is_atomic(tmp_path):
    storage = Storage()
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), storage.open_write(target) as fh:
        fh.write("half a line")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    with storage.open_write(target) as fh:
        fh.write("new\n")
    assert target.read_text() == "new\n"


def test_local_write_gets_the_usual_file_mode(tmp_path):
    """Atomic writes go through mkstemp (0o600); the result must be readable like any new file
    (0o666 minus the umask), and a replaced file keeps its own mode."""
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    storage = Storage()
    new = tmp_path / "manifest.jsonl"
    storage.write_bytes(new, b"{}\n")
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    kept = tmp_path / "kept.jsonl"
    kept.write_text("old\n")
    kept.chmod(0o640)
    with storage.open_write(kept) as fh:
        fh.write("new\n")
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "new\n"


def test_s3_round_trip_and_multipart(s3_bucket):
    storage = Storage()
    uri = f"s3://{s3_bucket}/big/lines.jsonl"
    line = '{"k":"' + "x" * 1000 + '"}\n'
    count = (2 * PART_SIZE) // len(line) + 10  # > 2 parts
    with storage.open_write(uri) as fh:
        for _ in range(count):
            fh.write(line)
    head = boto3.client("s3").head_object(Bucket=s3_bucket, Key="big/lines.jsonl")
    assert head["ContentLength"] == count * len(line)
    assert "-" in head["ETag"]  # a multipart ETag: written in parts, not buffered whole
    n = 0
    for number, text in storage.iter_lines(uri):
        assert text == line.rstrip("\n")
        n = number
    assert n == count


def test_s3_failed_write_leaves_no_object(s3_bucket):
    storage = Storage()
    uri = f"s3://{s3_bucket}/failed.jsonl"
    with pytest.raises(RuntimeError), storage.open_write(uri) as fh:
        fh.write("x" * (PART_SIZE + 10))
        raise RuntimeError("crash")
    assert not storage.exists(uri)
    assert boto3.client("s3").list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_write_bytes_sets_headers(s3_bucket):
    Storage().write_bytes(f"s3://{s3_bucket}/a.js", b"x", content_type="application/javascript; charset=utf-8",
                          cache_control="max-age=1")
    head = boto3.client("s3").head_object(Bucket=s3_bucket, Key="a.js")
    assert head["ContentType"] == "application/javascript; charset=utf-8" and head["CacheControl"] == "max-age=1"
    assert "ContentEncoding" not in head  # only set when asked for


def test_write_bytes_content_encoding(s3_bucket, tmp_path):
    data = gzip.compress(b'{"a":1}')
    storage = Storage()
    storage.write_bytes(f"s3://{s3_bucket}/a.json.gz", data, content_type="application/json",
                        content_encoding="gzip")
    obj = boto3.client("s3").get_object(Bucket=s3_bucket, Key="a.json.gz")
    assert obj["ContentEncoding"] == "gzip" and obj["ContentType"] == "application/json"
    assert obj["Body"].read() == data  # stored as given, not re-encoded
    storage.write_bytes(tmp_path / "a.json.gz", data, content_encoding="gzip")  # local: just the bytes
    assert (tmp_path / "a.json.gz").read_bytes() == data


def test_join_and_split():
    assert join_uri("s3://b/p/", "x", "/y.json") == "s3://b/p/x/y.json"
    assert split_s3("s3://b/k/e/y") == ("b", "k/e/y")
    with pytest.raises(ValueError):
        split_s3("/local")


def test_client_uses_adaptive_retries():
    client = Storage(region="us-east-1").client
    assert client.meta.config.retries["mode"] == "adaptive"


def test_threads_asking_for_the_client_at_once_share_one(monkeypatch):
    # A server's threads rendering their first task pages at the same moment each built a client.
    import threading
    import time

    from toolkit.storage import store

    made = []

    def slow_client(region=None):
        time.sleep(0.05)  # building a boto3 client takes a while
        made.append(object())
        return made[-1]

    monkeypatch.setattr(store, "s3_client", slow_client)
    storage = Storage()
    got = []
    threads = [threading.Thread(target=lambda: got.append(storage.client)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(made) == 1
    assert len(got) == 8 and all(c is made[0] for c in got)
