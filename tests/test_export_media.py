"""The formats that carry the media, loaded by their real consumers: hf-audio/hf-video through
`datasets` (audio and video decoded with torchcodec) and TRL's data utilities, lhotse manifests
through lhotse's loader and validation, NeMo manifests by the rules NeMo documents (NeMo itself
is not installable here), Nova DPO and NeMo-Aligner DPO lines against their documented shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from toolkit.contract import records as R
from toolkit.export import ExportError, ExportOptions, export
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"
CALLS = FIXTURES / "call_center.output.manifest"
TTS = FIXTURES / "tts.output.manifest"
VIDEO = FIXTURES / "video.output.manifest"


def run(tmp_path: Path, manifest: Path, preset: str, fmt: str, out: str = "ds", storage: Storage | None = None,
        **kw):
    opts = ExportOptions(preset=preset, format=fmt, out=str(tmp_path / out), **kw)
    return export(storage or Storage([MIRROR]), str(manifest), opts)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def decode_pcm(path: Path) -> tuple[np.ndarray, int]:
    """The whole source decoded by torchcodec (what `datasets` uses), as int16 samples."""
    from torchcodec.decoders import AudioDecoder

    samples = AudioDecoder(str(path)).get_all_samples()
    return np.round(samples.data.numpy()[0] * 32768).astype(np.int32), samples.sample_rate


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return str(tmp_path / "hf-cache")


def load(out: Path, cache: str):
    from datasets import load_dataset

    return load_dataset(str(out), split="train", cache_dir=cache)


# -- hf-audio ---------------------------------------------------------------------------------------
def test_hf_audio_clips_decode_to_the_exact_samples_of_each_segment(tmp_path, hf_offline):
    summary = run(tmp_path, CALLS, "sft-transcription", "hf-audio", clips=True)
    run(tmp_path, CALLS, "sft-transcription", "jsonl", out="records.jsonl")
    records = {r["id"]: r for r in lines(tmp_path / "records.jsonl")}
    ds = load(tmp_path / "ds", hf_offline)
    assert ds.num_rows == summary.written == len(records) == 6
    assert type(ds.features["audio"]).__name__ == "Audio"
    sources = {"int-0001": FIXTURES / "media" / "call_001.wav", "int-0002": FIXTURES / "media" / "call_002.mp3"}
    for row in ds:
        record = records[row["id"]]
        assert (row["start"], row["end"], row["text"]) == (record["media"]["start"], record["media"]["end"],
                                                            record["completion"])
        R.Lineage.model_validate(row["lineage"])
        clip = row["audio"].get_all_samples()
        full, rate = decode_pcm(sources[row["lineage"]["interaction_id"]])
        assert clip.sample_rate == rate
        got = np.round(clip.data.numpy()[0] * 32768).astype(np.int32)
        start, end = round(row["start"] * rate), round(row["end"] * rate)
        assert np.array_equal(got, full[start:end]), row["id"]  # sample-accurate, MP3 included
    assert {r["language"] for r in ds} == {"en-US", None}
    assert ds[0]["attributes"] == {"emotion": "Neutral"} and ds[0]["fields"]["overall_rating"] == 4.333


def test_hf_audio_whole_media_with_segment_offsets(tmp_path, hf_offline):
    run(tmp_path, CALLS, "sft-transcription", "hf-audio")
    ds = load(tmp_path / "ds", hf_offline)
    assert ds.num_rows == 2
    first = ds[0]
    samples = first["audio"].get_all_samples()
    assert samples.data.shape[1] == round(21.0 * samples.sample_rate)
    assert [s["id"] for s in first["segments"]] == ["s1", "s2", "s3", "s5"]
    assert first["segments"][2]["text"] == "It's the order number W 48172, call me at [PHONE]."  # redacted
    assert first["lineage"]["segment_id"] is None and first["duration"] == 21.0
    for row in pq_rows(tmp_path / "ds"):
        R.HfItemRow.model_validate(row)


def pq_rows(root: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [row for p in sorted((root / "data").glob("*.parquet")) for row in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="module")
def media_chat_tokenizer():
    """A real tokenizer whose chat template renders content blocks, as multimodal processors' do."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    core.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{% for p in m['content'] %}"
        "{% if p['type'] == 'text' %}{{ p['text'] }}{% else %}<|{{ p['type'] }}|>{% endif %}{% endfor %}"
        "<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
    return tok


TRL_MEDIA = [("preference-correction", CALLS, {"prompt", "chosen", "rejected"}, "prompt"),
             ("preference-ratings", TTS, {"prompt", "chosen", "rejected"}, "completion"),
             ("kto", TTS, {"prompt", "completion", "label"}, "completion"),
             ("sft-summary", CALLS, {"prompt", "completion"}, "prompt")]


@pytest.mark.parametrize(("preset", "manifest", "columns", "where"), TRL_MEDIA, ids=[c[0] for c in TRL_MEDIA])
def test_hf_audio_trl_rows_carry_the_media_as_a_field(tmp_path, hf_offline, media_chat_tokenizer, preset,
                                                      manifest, columns, where):
    from trl.data_utils import is_conversational, maybe_apply_chat_template, maybe_unpair_preference_dataset

    summary = run(tmp_path, manifest, preset, "hf-audio")
    ds = load(tmp_path / "ds", hf_offline)
    assert ds.num_rows == summary.written > 0
    assert columns <= set(ds.column_names) and "audios" in ds.column_names
    assert type(ds.features["audios"].feature).__name__ == "Audio"
    for row, raw in zip(ds, pq_rows(tmp_path / "ds"), strict=True):
        R.HfTrlRow.model_validate(raw)
        assert is_conversational(row)
        placeholders = [p for col in ("prompt", "chosen", "rejected", "completion") for m in row.get(col) or []
                        for p in m["content"] if p["type"] == "audio"]
        assert len(placeholders) == len(row["audios"]) >= 1  # one medium per placeholder, in order
        assert all(a.get_all_samples().data.shape[1] > 0 for a in row["audios"])
        prompt_text = " ".join(p["text"] or "" for m in row["prompt"] for p in m["content"])
        assert "s3://" not in prompt_text or preset == "preference-correction"  # media are fields, not text
        rendered = maybe_apply_chat_template({k: v for k, v in row.items() if k in columns}, media_chat_tokenizer)
        assert rendered["prompt"].endswith("<|assistant|>")
        assert ("<|audio|>" in rendered["prompt"]) == (where == "prompt")
    if preset == "preference-correction":
        unpaired = maybe_unpair_preference_dataset(ds.select_columns(["prompt", "chosen", "rejected", "audios"]))
        assert unpaired.num_rows == 2 * ds.num_rows and set(unpaired["label"]) == {True, False}


def test_hf_audio_dense_preference_rows(tmp_path, hf_offline):
    run(tmp_path, CALLS, "dense-preference", "hf-audio")
    run(tmp_path, CALLS, "dense-preference", "jsonl", out="dense.jsonl")
    records = lines(tmp_path / "dense.jsonl")
    for record in records:
        R.DensePreferenceRecord.model_validate(record)
    ds = load(tmp_path / "ds", hf_offline)
    assert [r["id"] for r in ds] == [r["id"] for r in records]
    for row, record in zip(ds, records, strict=True):
        assert [(s["start"], s["end"], s["preferred"]) for s in row["spans"]] == [
            (s["start"], s["end"], s["preferred"]) for s in record["spans"]]
        assert row["audios"][0].get_all_samples().data.shape[1] > 0
    # The corrected segment prefers the human text; a punctuation-only change is a tie.
    spans = {s["segment_id"]: s for s in records[0]["spans"]}
    assert spans["s3"]["preferred"] == "a" and spans["s2"]["preferred"] == "tie"


# -- hf-video ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("clips", [False, True], ids=["whole", "clips"])
def test_hf_video_decodes_frames(tmp_path, hf_offline, clips):
    summary = run(tmp_path, VIDEO, "sft-transcription", "hf-video", clips=clips)
    ds = load(tmp_path / "ds", hf_offline)
    assert type(ds.features["video"]).__name__ == "Video"
    assert ds.num_rows == summary.written > 0
    for row in ds:
        decoder = row["video"]
        frame = decoder[0]
        assert tuple(frame.shape) == (3, 120, 160)
        duration = decoder.metadata.duration_seconds
        expected = row["end"] - row["start"] if clips else 3.0
        assert abs(duration - expected) <= 0.15, (row["id"], duration, expected)


def test_hf_video_refuses_audio_only_media(tmp_path):
    summary = run(tmp_path, CALLS, "sft-transcription", "hf-video", allow_empty=True)
    assert summary.written == 0 and summary.dropped["media-unreadable"] == 6
    assert {p.line for p in summary.problems if p.reason == "media-unreadable"} == {1, 2}
    assert all("no video stream" in p.detail for p in summary.problems if p.reason == "media-unreadable")


def test_missing_media_is_named_and_the_rest_exported(tmp_path, hf_offline):
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES / "media", mirror / "media")
    (mirror / "media" / "call_002.mp3").unlink()
    summary = run(tmp_path, CALLS, "sft-transcription", "hf-audio", storage=Storage([f"s3://example-labels-bucket/="
                                                                                    f"{mirror}"]), clips=True)
    assert summary.written == 4 and summary.dropped["media-unreadable"] == 2
    problem = next(p for p in summary.problems if p.reason == "media-unreadable")
    assert problem.line == 2 and "call_002.mp3: no such file" in problem.detail
    assert load(tmp_path / "ds", hf_offline).num_rows == 4


def test_media_read_from_s3(s3_bucket, tmp_path, hf_offline):
    import boto3

    s3 = boto3.client("s3")
    text = TTS.read_text().replace("s3://example-labels-bucket/", f"s3://{s3_bucket}/")
    manifest = tmp_path / "tts.manifest"
    manifest.write_text(text)
    for path in (FIXTURES / "tts").rglob("*.wav"):
        s3.upload_file(str(path), s3_bucket, str(path.relative_to(FIXTURES)))
    summary = run(tmp_path, manifest, "kto", "hf-audio", storage=Storage())
    ds = load(tmp_path / "ds", hf_offline)
    assert ds.num_rows == summary.written == 6
    local, _ = decode_pcm(FIXTURES / "tts" / "p-001" / "model-a.wav")
    got = ds[0]["audios"][0].get_all_samples().data.numpy()[0]
    assert np.array_equal(np.round(got * 32768).astype(np.int32), local)


def test_clips_only_for_segment_presets(tmp_path):
    with pytest.raises(ExportError, match="--clips applies to"):
        run(tmp_path, TTS, "kto", "hf-audio", clips=True)


# -- lhotse -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clips", [False, True], ids=["whole", "clips"])
@pytest.mark.parametrize("preset", ["sft-transcription", "reward-segments"])
def test_lhotse_manifests_load_validate_and_play(tmp_path, preset, clips):
    import lhotse
    from lhotse.qa import fix_manifests, validate_recordings_and_supervisions

    summary = run(tmp_path, CALLS, preset, "lhotse", clips=clips)
    out = tmp_path / "ds"
    recordings = lhotse.load_manifest(out / "recordings.jsonl.gz").with_path_prefix(out)
    supervisions = lhotse.load_manifest(out / "supervisions.jsonl.gz")
    assert isinstance(recordings, lhotse.RecordingSet) and isinstance(supervisions, lhotse.SupervisionSet)
    validate_recordings_and_supervisions(recordings, supervisions)
    fixed_r, fixed_s = fix_manifests(recordings, supervisions)
    assert len(fixed_r) == len(recordings) and len(fixed_s) == len(supervisions) == summary.written > 0
    cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions).trim_to_supervisions()
    for cut in cuts:
        audio = cut.load_audio()
        assert audio.shape[1] == cut.num_samples > 0
        sup = cut.supervisions[0]
        assert sup.custom["lineage"]["label_attribute"] == "call-labels"
        if sup.custom["track"] == "speaker":
            assert sup.speaker == sup.custom["label"]
    texts = {s.text for s in supervisions}
    assert "It's the order number W 48172, call me at [PHONE]." in texts
    assert {s.language for s in supervisions} == {"en-US", None}


def test_lhotse_refuses_a_supervision_past_the_end_of_its_recording(tmp_path):
    line = json.loads(CALLS.read_text().splitlines()[0])
    line["call-labels"]["segments"][4].update(start=20.0, end=29.0)  # the media is 21 s long
    manifest = tmp_path / "m.manifest"
    manifest.write_text(json.dumps(line) + "\n" + CALLS.read_text().splitlines()[1] + "\n")
    summary = run(tmp_path, manifest, "sft-transcription", "lhotse")
    assert summary.dropped["media-unreadable"] == 4 and summary.written == 2
    assert any("lhotse validation" in p.detail for p in summary.problems)


# -- nemo ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clips", [False, True], ids=["whole", "clips"])
def test_nemo_manifest_lines_point_at_playable_spans(tmp_path, clips):
    import soundfile

    summary = run(tmp_path, CALLS, "sft-transcription", "nemo", clips=clips)
    out = tmp_path / "ds"
    rows = lines(out / "manifest.json")
    prov = lines(out / "manifest.provenance.jsonl")
    assert len(rows) == len(prov) == summary.written == 6
    for row, p in zip(rows, prov, strict=True):
        R.NemoManifestLine.model_validate(row)
        R.ProvenanceRecord.model_validate(p)
        path = out / row["audio_filepath"]  # NeMo resolves a relative path against the manifest's directory
        assert not Path(row["audio_filepath"]).is_absolute() and path.is_file()
        info = soundfile.info(str(path))
        offset = row.get("offset", 0.0)
        assert ("offset" in row) != clips
        assert offset + row["duration"] <= info.duration + 1e-3
        data, rate = soundfile.read(str(path), start=round(offset * info.samplerate),
                                    frames=round(row["duration"] * info.samplerate))
        assert len(data) == round(row["duration"] * rate)
    assert {r.get("speaker") for r in rows} == {"Agent", "Customer"} and rows[0]["lang"] == "en-US"


# -- Nova DPO, NeMo-Aligner DPO, Nova media blocks -------------------------------------------------------
@pytest.mark.parametrize(("preset", "manifest"), [("preference-correction", CALLS), ("preference-ratings", TTS)])
def test_nova_dpo_lines(tmp_path, preset, manifest):
    summary = run(tmp_path, manifest, preset, "nova-dpo", out="dpo.jsonl")
    rows = lines(tmp_path / "dpo.jsonl")
    assert len(rows) == summary.written > 0
    for row in rows:
        R.NovaDpoRecord.model_validate(row)
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant" and "content" not in assistant
        assert [c["preferenceLabel"] for c in assistant["candidates"]] == ["preferred", "non-preferred"]
    for p in lines(tmp_path / "dpo.provenance.jsonl"):
        R.ProvenanceRecord.model_validate(p)


def test_nova_dpo_of_video_corrections_leads_with_the_video_block(tmp_path):
    line = json.loads(VIDEO.read_text().splitlines()[1])
    line["pre-segments"] = [{"id": "m1", "start": 0.4, "end": 1.3, "text": "The legs flicker."}]
    line["video-labels"]["segments"][0]["presegmentId"] = "m1"
    manifest = tmp_path / "v.manifest"
    manifest.write_text(json.dumps(line) + "\n")
    run(tmp_path, manifest, "preference-correction", "nova-dpo", out="dpo.jsonl")
    (row,) = lines(tmp_path / "dpo.jsonl")
    R.NovaDpoRecord.model_validate(row)
    assert row["messages"][0]["content"][0] == {
        "video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://example-labels-bucket/video/vid-0002.mp4"}}}}


def test_nova_conversation_video_blocks_and_no_mixing(tmp_path):
    run(tmp_path, VIDEO, "sft-transcription", "bedrock-conversation-2024", out="nova.jsonl")
    rows = lines(tmp_path / "nova.jsonl")
    for row in rows:
        R.BedrockConversationRecord.model_validate(row)
        blocks = row["messages"][0]["content"]
        assert len([b for b in blocks if "video" in b]) == 1 and "text" in blocks[-1]  # one video per sample
    run(tmp_path, CALLS, "sft-transcription", "bedrock-conversation-2024", out="audio.jsonl")
    assert all(list(b) == ["text"] for r in lines(tmp_path / "audio.jsonl") for b in r["messages"][0]["content"])
    text = VIDEO.read_text().splitlines()
    mixed = [text[1], text[2].replace("vid-0003.mp4", "vid-0003.png")]
    (tmp_path / "mixed.manifest").write_text("\n".join(mixed) + "\n")
    with pytest.raises(ExportError, match="cannot mix images and videos"):
        run(tmp_path, tmp_path / "mixed.manifest", "sft-transcription", "bedrock-conversation-2024", out="x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


def test_nemo_dpo_lines(tmp_path):
    run(tmp_path, TTS, "preference-ratings", "nemo-dpo", out="dpo.jsonl")
    run(tmp_path, TTS, "preference-ratings", "jsonl", out="pairs.jsonl")
    for row, pair in zip(lines(tmp_path / "dpo.jsonl"), lines(tmp_path / "pairs.jsonl"), strict=True):
        R.NemoDpoRecord.model_validate(row)
        assert row["prompt"] == (f"<extra_id_0>System\n{pair['system']}\n<extra_id_1>User\n{pair['prompt']}\n"
                                 "<extra_id_1>Assistant\n")
        assert row["chosen_response"] == f"{pair['chosen']}\n<extra_id_1>"
        assert (row["chosen_reward"], row["rejected_reward"]) == (pair["chosen_score"], pair["rejected_score"])


# -- TRL stepwise -------------------------------------------------------------------------------------
def test_trl_stepwise_rows(tmp_path, hf_offline, media_chat_tokenizer):
    from datasets import load_dataset
    from trl.data_utils import is_conversational

    summary = run(tmp_path, CALLS, "stepwise", "trl", out="steps.jsonl")
    ds = load_dataset("json", data_files=str(tmp_path / "steps.jsonl"), split="train", cache_dir=hf_offline)
    assert ds.num_rows == summary.written == 2
    assert ds.features["labels"].feature.dtype == "bool" and ds.features["completions"].feature.dtype == "string"
    for row in ds:
        R.TrlStepwiseRecord.model_validate(row)
        assert not is_conversational(row)  # TRL's stepwise type is standard (strings) only
        assert len(row["completions"]) == len(row["labels"])
        # How TRL's PRM trainer tokenized a row: prompt, then each step with a label at its separator.
        ids = [media_chat_tokenizer(s, add_special_tokens=False)["input_ids"] for s in row["completions"]]
        assert all(ids)
    assert ds[0]["labels"] == [True, True, False] and ds[1]["labels"] == [False, True]
