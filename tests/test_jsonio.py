"""toolkit.contract.jsonio: the codecs' JSON bytes are the same with orjson (the CLI) and without it
(the Lambda zips, standard library only)."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from toolkit.contract import jsonio

FIXTURES = Path(__file__).parent / "fixtures" / "export"


def sample_records() -> list[object]:
    """Real output-manifest lines (nested labels, worker answers) and synthetic records with
    non-ASCII text, control characters and floats of every magnitude."""
    records: list[object] = []
    for name in ("call_center.output.manifest", "tts.output.manifest", "video.output.manifest",
                 "compare.output.manifest"):
        for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # the fixtures' deliberately malformed lines
    rng = random.Random(13)
    texts = ["Grüße, señor", "مرحبا\u200f بالعالم", "日本語のテキスト", "emoji 😀👍🏽", "tab\tnew\nline \"q\" \\ /",
             "\x00\x1f\x7f control", "\u2028\u2029 separators", ""]
    floats = [0.0, -0.0, 1.0, 0.1, 1 / 3, 2.5e-05, 1e-05, 9.99e-06, 1e-07, -3.25e-09, 1e-4, 1e16, 1e22,
              1.5e300, 5e-324, 123456789.125, -7.0e-5]
    for i in range(300):
        magnitude = 10.0 ** rng.uniform(-12, 20)
        records.append({
            "id": f"rec-{i}", "text": rng.choice(texts) + str(i), "score": rng.choice(floats),
            "start": round(rng.uniform(0, 3600), rng.randint(0, 6)), "value": rng.uniform(-1, 1) * magnitude,
            "segments": [{"start": rng.random() * 10 ** rng.randint(-6, 3), "label": rng.choice(texts)}
                         for _ in range(rng.randint(0, 4))],
            "flags": [True, False, None, rng.randint(-2**63, 2**63 - 1)], "nested": {"é": {"ü": [[]]}},
        })
    return records


def test_both_paths_write_the_same_bytes():
    records = sample_records()
    assert len(records) > 300
    for record in records:
        assert jsonio._std_dumps(record) == orjson.dumps(record), record


@pytest.mark.parametrize("value", [1e-07, 2.5e-05, 1e-05, -1.2345e-05, 9.999999999999999e-06, 1e-300, 1e+16,
                                   2.5e-4, 0.0001, 123.0])
def test_float_spelling_is_orjsons(value):
    assert jsonio.float_text(value) == orjson.dumps(value).decode()
    assert float(jsonio.float_text(value)) == value


def test_random_floats_over_the_whole_range():
    rng = random.Random(5)
    values = [rng.uniform(-1, 1) * 10.0 ** rng.uniform(-320, 308) for _ in range(20_000)]
    assert jsonio._std_dumps(values) == orjson.dumps(values)


def test_nan_and_infinity_are_null_on_both_paths():
    value = {"a": math.nan, "b": [math.inf, -math.inf, 1e-7]}
    assert jsonio._std_dumps(value) == orjson.dumps(value) == b'{"a":null,"b":[null,null,1e-7]}'


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": Infinity}', b'{"a": -Infinity}', b"\xff\xfe{}", b'{"a": 1',
                                 b'"\xed\xa0\x80"'])
def test_both_paths_refuse_the_same_input(raw):
    with pytest.raises(jsonio.JSONDecodeError):
        orjson.loads(raw)
    with pytest.raises(jsonio.JSONDecodeError):
        jsonio._std_loads(raw)


def test_both_paths_read_the_same_values():
    for record in sample_records():
        raw = orjson.dumps(record)
        assert jsonio._std_loads(raw) == orjson.loads(raw) == jsonio._std_loads(raw.decode("utf-8"))


LINE = json.dumps({"source-ref": "s3://b/a.wav", "interaction-id": "i-1", "media-type": "audio",
                   "duration-seconds": 2.5e-05, "transcription": "Grüße 😀", "metadata": {"x": 1e-7}},
                  ensure_ascii=False).encode("utf-8")


def test_without_orjson_the_codecs_use_the_standard_library():
    """As in a Lambda zip: orjson cannot be imported; the manifest and feedback codecs still load and
    encode the same bytes."""
    code = """
import sys
sys.modules["orjson"] = None  # import orjson raises ImportError
from toolkit.contract import jsonio, manifest, feedback
assert jsonio.dumps is jsonio._std_dumps and jsonio.orjson is None
line = manifest.decode_line(manifest.parse_line(sys.stdin.buffer.read()))
sys.stdout.buffer.write(manifest.encode_line(line))
try:
    feedback.decode(b'{"a": NaN}')
except feedback.FeedbackError as exc:
    assert "invalid JSON" in str(exc)
else:
    raise AssertionError("NaN read")
"""
    try:
        done = subprocess.run([sys.executable, "-c", code], input=LINE, capture_output=True, check=True)
    except subprocess.CalledProcessError as exc:
        raise AssertionError(exc.stderr.decode()) from exc
    from toolkit.contract import manifest

    assert done.stdout == manifest.encode_line(manifest.decode_line(manifest.parse_line(LINE)))
    assert b"0.000025" in done.stdout and "Grüße 😀".encode() in done.stdout
