"""Print a few records of each `make demo` output, so a newcomer sees what the loop produced.

Usage: python scripts/demo_sample.py demo-out [--records 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

WIDTH = 100


def _records(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _said(messages: list[dict]) -> str:
    return " ".join(m["content"] for m in messages if m["role"] == "assistant")


def _asked(messages: list[dict]) -> str:
    return next((m["content"] for m in messages if m["role"] == "user"), "")


def _line(label: str, text: str) -> str:
    first = f"    {label:<9}"
    return textwrap.fill(text.replace("\n", " "), WIDTH, initial_indent=first, subsequent_indent=" " * len(first),
                         break_on_hyphens=False, break_long_words=False)


def sample(out: Path, n: int) -> str:
    parts: list[str] = []

    def section(name: str, what: str, rows: list[dict]) -> None:
        parts.append(f"\n{name}  ({len(rows)} records; {what})")

    pref = _records(out / "preference-correction.trl.jsonl")
    corrected = {_said(r["chosen"]) for r in pref}
    sft = _records(out / "sft-transcription.trl.jsonl")
    section("sft-transcription.trl.jsonl", "segment audio -> corrected transcript", sft)
    # Corrected targets first: they are what the human labels added.
    for r in sorted(sft, key=lambda r: _said(r["messages"]) not in corrected)[:n]:
        parts += [_line("prompt", _asked(r["messages"])), _line("target", _said(r["messages"]))]

    section("preference-correction.trl.jsonl", "human correction chosen over the ASR text", pref)
    for r in pref[:n]:
        parts += [_line("prompt", _asked(r["prompt"])), _line("chosen", _said(r["chosen"])),
                  _line("rejected", _said(r["rejected"]))]

    reward = _records(out / "reward-segments.jsonl")
    section("reward-segments.jsonl", "overall rating normalised to 0-1, with the labelled spans", reward)
    for r in reward:
        parts.append(f"    {r['id']:<9}score {r['score']:.3f}  (mean rating {r['raw_score']:g}, "
                     f"{len(r['spans'])} spans, agreement {r['lineage']['agreement']})")

    summary = _records(out / "sft-summary.trl.jsonl")
    section("sft-summary.trl.jsonl", "call transcript -> the workers' summary", summary)
    for r in summary[:n]:
        parts.append(_line("summary", _said(r["completion"])))
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--records", type=int, default=2)
    args = parser.parse_args(argv)
    sys.stdout.write(sample(args.out, args.records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
