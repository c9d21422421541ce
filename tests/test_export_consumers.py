"""Exports loaded by their real consumers: TRL rows through `datasets` and TRL's data utilities,
RTTM through pyannote.database's loader, Bedrock rows through their documented schema checks.
WebVTT (webvtt-py and the browser's own parser): tests/browser/test_webvtt_consumers.py."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from toolkit.contract import records as R
from toolkit.export import BatchQuotas, ExportOptions, export
from toolkit.export.formats.bedrock import SCHEMAS
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"
CALLS = FIXTURES / "call_center.output.manifest"
TTS = FIXTURES / "tts.output.manifest"
EDGE = FIXTURES / "edge.output.manifest"
MODEL = FIXTURES / "model.output.manifest"
TRL_PRESETS = {"sft-transcription": CALLS, "sft-summary": CALLS, "preference-correction": CALLS,
               "preference-ratings": TTS, "kto": TTS, "preference-model": MODEL}
# Amazon Nova's reserved words, written out here (not imported from the code under test): the Nova user
# guide's list ("Preparing data for fine-tuning Understanding models") plus the two more that AWS's dataset
# validation script rejects; matched case-insensitively, as that script does.
NOVA_RESERVED = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]", "Thought:", "<unk>")


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
                "preference-model": {"prompt", "chosen", "rejected"},
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
    if preset == "preference-model" and lineage == "inline":  # the pair is about the model: which, asked what
        model = ds[0]["lineage"]["model"]
        assert model["model_id"] == "anthropic.claude-3-haiku-20240307-v1:0"
        assert model["params"]["max_tokens"] == 512 and model["prompt"] == ds[0]["prompt"][-1]["content"]


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


# -- Bedrock --------------------------------------------------------------------------------------
def bedrock_texts(row: dict) -> list[str]:
    """Every text of a Bedrock fine-tuning or batch line (what Bedrock validates)."""
    body = row.get("modelInput", row)
    texts = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    elif isinstance(system, list):
        texts += [b["text"] for b in system]
    for m in body.get("messages", []):
        content = m["content"]
        texts += [content] if isinstance(content, str) else [b["text"] for b in content]
    for key in ("prompt", "completion"):
        if key in body:
            texts.append(body[key])
    return texts


def check_bedrock_row(row: dict, model: type) -> None:
    model.model_validate(row)
    body = row.get("modelInput", row)
    roles = [m["role"] for m in body.get("messages", [])]
    if roles:
        assert roles[0] == "user" and roles[-1] == ("user" if "modelInput" in row else "assistant")
        assert all(a != b for a, b in itertools.pairwise(roles)), "turns must alternate"
    for text in bedrock_texts(row):
        assert text.strip(), "empty text block"
        low = text.lower()
        assert not [w for w in NOVA_RESERVED if w.lower() in low], "Nova reserved word left in a text"


BEDROCK_CASES = [("bedrock", s) for s in SCHEMAS] + [("bedrock-conversation-2024", None), ("bedrock-batch", None)]


@pytest.mark.parametrize(("fmt", "schema"), BEDROCK_CASES, ids=[f"{f}:{s}" if s else f for f, s in BEDROCK_CASES])
@pytest.mark.parametrize("preset", ["sft-transcription", "sft-summary"])
def test_bedrock_rows_pass_the_documented_checks(tmp_path, fmt, schema, preset):
    models = {"messages": R.BedrockMessagesRecord, "conversation-2024": R.BedrockConversationRecord,
              "prompt-completion": R.BedrockPromptCompletionRecord}
    kw = {"bedrock_schema": schema} if schema else {}
    out = "batch" if fmt == "bedrock-batch" else "out.jsonl"
    summary = run(tmp_path, EDGE, preset, fmt, out=out, quotas=BatchQuotas(min_records=1), **kw)
    if fmt == "bedrock-batch":
        rows = [row for p in sorted((tmp_path / "batch").glob("job-*/part-*.jsonl")) for row in lines(p)]
        model: type = R.BedrockBatchRecord
    else:
        rows = lines(tmp_path / out)
        model = models[schema or "conversation-2024"]
        if fmt == "bedrock-conversation-2024":
            assert all(r["schemaVersion"] == "bedrock-conversation-2024" for r in rows)
    assert len(rows) == summary.written > 0
    for row in rows:
        check_bedrock_row(row, model)
