"""toolkit.storage.scratch: the on-disk label index of `gtkit merge` and the prompt groups of
`preference-ratings`."""

from __future__ import annotations

import json
from pathlib import Path

from toolkit.export import merge
from toolkit.storage import Storage
from toolkit.storage.scratch import BATCH, Groups, LabelIndex

FIXTURES = Path(__file__).parent / "fixtures" / "export"
CALLS = FIXTURES / "call_center.output.manifest"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"


def test_entries_come_back_unchanged_and_last_one_wins(tmp_path):
    entry = {"job_name": "j", "agreement": {"overall": 0.1 + 0.2}, "segments": [{"start": 1e-7, "text": "é \u202e"}]}
    with LabelIndex(str(tmp_path)) as index:
        # More than one batch, with a duplicate id in both batches.
        for i in range(BATCH + 5):
            index.add(f"int-{i}", {"n": i})
        index.add("int-3", entry)
        index.add("int-4", {"n": "first"})
        index.add("int-4", {"n": "second"})
        assert len(index) == BATCH + 5
        assert index.duplicates == 3
        assert index.take("int-3") == entry
        assert json.dumps(index.take("int-3")) == json.dumps(entry)  # same key order, same floats
        assert index.take("int-4") == {"n": "second"}
        assert index.take(f"int-{BATCH + 4}") == {"n": BATCH + 4}
        assert index.take("missing") is None
        assert index.unused() == BATCH + 5 - 3  # taken twice still counts once
    assert list(tmp_path.iterdir()) == []  # the scratch database is removed


def test_merge_counts_duplicate_and_unmatched_labels(tmp_path, examples):
    lines = CALLS.read_text().splitlines()
    first = json.loads(lines[0])
    stray = json.loads(lines[0])
    stray["interaction-id"] = "int-not-in-feedback"
    changed = json.loads(lines[0])
    changed["call-labels"]["segments"] = changed["call-labels"]["segments"][:1]
    labels = tmp_path / "labels.manifest"
    labels.write_text("\n".join([json.dumps(first), json.dumps(stray), json.dumps(changed)]) + "\n")
    out = tmp_path / "enriched.jsonl"
    summary = merge(Storage([MIRROR]), str(examples / "feedback" / "processed_feedback.jsonl"), str(labels),
                    str(out))
    assert summary.labeled == 2
    assert summary.dropped["label-duplicate-interaction-id (last wins)"] == 1
    assert summary.extra["labels not matched to feedback"] == 1
    assert summary.extra["records with labels"] == 1
    merged = next(json.loads(x) for x in out.read_text().splitlines() if f'"{first["interaction-id"]}"' in x)
    assert len(merged["human_labels"]["cc-seg-1"]["segments"]) == 1  # the later line won


def test_groups_come_back_in_first_seen_order_with_entries_in_added_order(tmp_path):
    expected: dict[str, list[dict]] = {}
    with Groups(str(tmp_path)) as groups:
        for i in range(BATCH * 2 + 7):  # several batches; keys interleaved, some seen late
            key = f"prompt-{(i * 7) % 13}" if i % 5 else f"late-{i // 500}"
            entry = {"seq": i, "score": i / 3, "text": "ü" * (i % 4)}
            groups.add(key, entry)
            expected.setdefault(key, []).append(entry)
        assert list(groups.groups()) == list(expected.items())
    assert list(tmp_path.iterdir()) == []
