"""Exports loaded by their real consumers: TRL rows through `datasets` and TRL's data utilities,
RTTM through pyannote.database's loader.
WebVTT (webvtt-py and the browser's own parser): tests/browser/test_webvtt_consumers.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.export import ExportOptions, export
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"
CALLS = FIXTURES / "call_center.output.manifest"
TTS = FIXTURES / "tts.output.manifest"
EDGE = FIXTURES / "edge.output.manifest"
TRL_PRESETS = {"sft-transcription": CALLS, "sft-summary": CALLS, "preference-correction": CALLS,
               "preference-ratings": TTS, "kto": TTS}


def run(tmp_path: Path, manifest: Path, preset: str, fmt: str, out: str = "out.jsonl", **kw):
    opts = ExportOptions(preset=preset, format=fmt, out=str(tmp_path / out), **kw)
    return export(Storage([MIRROR]), str(manifest), opts)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- TRL ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat_tokenizer():
    """A real transformers tokenizer with a chat template, built offline (no hub download)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    core.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")
    tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    return tok


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf-cache"


@pytest.mark.parametrize("lineage", ["inline", "sidecar"])
@pytest.mark.parametrize("preset", sorted(TRL_PRESETS))
def test_trl_rows_load_in_datasets_and_trl(tmp_path, hf_offline, chat_tokenizer, preset, lineage):
    from datasets import load_dataset
    from trl.data_utils import (
        is_conversational,
        is_conversational_from_value,
        maybe_apply_chat_template,
        maybe_extract_prompt,
        maybe_unpair_preference_dataset,
    )

    summary = run(tmp_path, TRL_PRESETS[preset], preset, "trl", lineage=lineage)
    ds = load_dataset("json", data_files=str(tmp_path / "out.jsonl"), split="train", cache_dir=str(hf_offline))
    assert ds.num_rows == summary.written > 0
    expected = {"sft-transcription": {"messages"}, "sft-summary": {"prompt", "completion"},
                "preference-correction": {"prompt", "chosen", "rejected"},
                "preference-ratings": {"prompt", "chosen", "rejected"},
                "kto": {"prompt", "completion", "label"}}[preset]
    assert set(ds.column_names) - {"lineage"} == expected
    assert ("lineage" in ds.column_names) == (lineage == "inline")
    for row in ds:
        assert is_conversational(row) and not is_conversational_from_value(row)
        assert maybe_extract_prompt(row) == row  # the prompt is explicit: nothing to extract
        rendered = maybe_apply_chat_template(row, chat_tokenizer)
        texts = {k: v for k, v in rendered.items() if k in ("text", "prompt", "completion", "chosen", "rejected")}
        assert texts and all(isinstance(v, str) and v for v in texts.values())
        if "prompt" in rendered:
            assert rendered["prompt"].endswith("<|assistant|>")  # generation prompt after the user turn
    if preset == "kto":
        assert ds.features["label"].dtype == "bool"
    if preset.startswith("preference"):
        unpaired = maybe_unpair_preference_dataset(ds)
        assert unpaired.num_rows == 2 * ds.num_rows and set(unpaired["label"]) == {True, False}


# -- RTTM -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["sft-transcription", "reward-segments"])
@pytest.mark.parametrize("manifest", [CALLS, EDGE], ids=["calls", "edge"])
def test_rttm_loads_in_pyannote(tmp_path, preset, manifest):
    from pyannote.database.util import load_rttm

    summary = run(tmp_path, manifest, preset, "rttm", out="out.rttm")
    run(tmp_path, manifest, preset, "jsonl", out="records.jsonl")
    expected: dict[str, list[tuple[float, float, str]]] = {}
    for rec in lines(tmp_path / "records.jsonl"):
        spans = rec["spans"] if preset == "reward-segments" else [rec["media"]]
        for s in spans:
            if s["track"] == "speaker":
                expected.setdefault(rec["lineage"]["interaction_id"], []).append(
                    (s["start"], s["end"], " ".join(s["label"].split()).replace(" ", "_")))
    annotations = load_rttm(str(tmp_path / "out.rttm"))
    got = {uri: [(round(seg.start, 3), round(seg.end, 3), str(label)) for seg, _, label in
                 ann.itertracks(yield_label=True)] for uri, ann in annotations.items()}
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in expected.items()}
    assert sum(len(v) for v in got.values()) == summary.written > 0
