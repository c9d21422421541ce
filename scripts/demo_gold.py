"""Make one gold object for the demo: a copy of a job's output manifest whose first line carries
`gold-answer`, here its own consolidated label as the answer a worker would submit (standing in for an
expert's; a real job has the gold lines in its manifest from the start). For `gtkit report --workers
--manifest` (docs/export.md, weights from the workers' gold scores).

Usage: python scripts/demo_gold.py demo-out/local-call-center demo-out/gold.manifest
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toolkit.contract import consolidated
from toolkit.contract.base import dump
from toolkit.contract.manifest import GOLD_ANSWER_KEY
from toolkit.export.reader import find_label_attribute
from toolkit.labeling.review import consolidated_to_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", type=Path, help="the job's output folder (<out>/<job>)")
    parser.add_argument("out", type=Path, help="the manifest to write")
    args = parser.parse_args()
    source = args.job / "manifests" / "output" / "output.manifest"
    lines = [json.loads(text) for text in source.read_text(encoding="utf-8").splitlines() if text.strip()]
    attribute = find_label_attribute(lines[0])
    if attribute is None:
        raise SystemExit(f"{source} line 1: no label attribute")
    label = consolidated.decode(lines[0][attribute])
    lines[0][GOLD_ANSWER_KEY] = dump(consolidated_to_answer(label))
    args.out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    print(f"wrote {args.out}: line 1 ({lines[0].get('interaction-id')}) is a gold object")


if __name__ == "__main__":
    main()
