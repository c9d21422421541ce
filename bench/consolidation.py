"""Consolidation throughput and peak memory: 1,000 objects x 3 workers x 50 segments.

Target (issue 4): under 10 s and under 512 MB on one core. Prints figures, asserts nothing.

    .venv/bin/python bench/consolidation.py [--objects 1000] [--workers 3] [--segments 50]

Phases timed separately: parsing the workers' JSON answers (what the post-Lambda does first),
consolidating, and serialising the labels to JSON. The baseline measured in the same run is the
cost of just parsing + re-serialising every answer (no consolidation), so the ratio shows what
consolidation adds on top of the unavoidable I/O work.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
import tracemalloc

from toolkit.contract import ANSWER_FIELD, load_label_schema
from toolkit.labeling.answers import worker_answer
from toolkit.labeling.consolidate import consolidate, consolidate_batch, label_json

EMOTIONS = ["Neutral", "Happy", "Frustrated", "Angry", "Sad", "Confused"]


def make_contents(objects: int, workers: int, segments: int, seed: int = 7) -> list[list[str]]:
    """Per object, each worker's answerContent JSON string (as in the Lambda payload)."""
    rng = random.Random(seed)
    out = []
    for _ in range(objects):
        base = []
        t = 0.0
        for i in range(segments):
            length = rng.uniform(1.0, 6.0)
            base.append((i % 2, t, t + length))
            t += length + rng.uniform(0.1, 1.0)
        duration = t + 1
        per_object = []
        for _w in range(workers):
            segs = []
            for i, (who, start, end) in enumerate(base):
                if rng.random() < 0.03:
                    continue  # a worker misses a segment now and then
                segs.append({"id": f"s{i}", "track": "t1" if who == 0 else "t2",
                             "start": round(max(0.0, start + rng.gauss(0, 0.08)), 3),
                             "end": round(end + rng.gauss(0, 0.08), 3),
                             "text": f"segment {i} words " * 3,
                             "attributes": {"emotion": rng.choice(EMOTIONS[:2])}})
            answer = {"mediaDuration": duration,
                      "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"},
                                 {"id": "t2", "category": "speaker", "label": "Customer"}],
                      "segments": segs,
                      "content": {"background_noise": ["None"], "overall_rating": rng.randint(3, 5),
                                  "summary": "a summary"}}
            per_object.append(json.dumps({ANSWER_FIELD: json.dumps(answer)}))
        out.append(per_object)
    return out


def _no_s3(uri: str) -> str:
    raise AssertionError("inline answers only")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--segments", type=int, default=50)
    args = parser.parse_args(argv)
    schema = load_label_schema("call-center")

    contents = make_contents(args.objects, args.workers, args.segments)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Baseline: parse + validate every answer and serialise it back (no consolidation).
    t0 = time.perf_counter()
    size = 0
    for per_object in contents:
        for i, content in enumerate(per_object):
            w = worker_answer(f"w{i}", content, schema=schema)
            size += len(w.answer.model_dump_json(by_alias=True))
    baseline = time.perf_counter() - t0

    t_parse = t_cons = t_dump = 0.0
    out_bytes = 0
    segments_out = 0
    for per_object in contents:
        a = time.perf_counter()
        answers = [worker_answer(f"w{i}", c, schema=schema) for i, c in enumerate(per_object)]
        b = time.perf_counter()
        label = consolidate(answers, schema)
        c = time.perf_counter()
        out_bytes += len(json.dumps(label_json(label)))
        d = time.perf_counter()
        t_parse += b - a
        t_cons += c - b
        t_dump += d - c
        segments_out += len(label.segments)
    # Memory in a separate pass: tracemalloc slows allocation-heavy code several times over.
    tracemalloc.start()
    for per_object in contents:
        answers = [worker_answer(f"w{i}", c, schema=schema) for i, c in enumerate(per_object)]
        json.dumps(label_json(consolidate(answers, schema)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total = t_parse + t_cons + t_dump

    # The Lambda's shape: one payload with every object, all responses held until returned.
    payload = [{"datasetObjectId": str(i), "dataObject": {"s3Uri": f"s3://b/{i}.wav"},
                "annotations": [{"workerId": f"w{w}", "annotationData": {"content": c}}
                                for w, c in enumerate(per_object)]}
               for i, per_object in enumerate(contents)]
    t0 = time.perf_counter()
    responses, _stats = consolidate_batch(payload, label_attribute="segments", read_text=_no_s3, schema=schema)
    batch_json = json.dumps(responses)
    t_batch = time.perf_counter() - t0
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    n = args.objects
    print(f"objects={n} workers={args.workers} segments/worker={args.segments} python={sys.version.split()[0]}")
    print(f"parse+validate answers : {t_parse:7.2f} s")
    print(f"consolidate            : {t_cons:7.2f} s  ({n / t_cons:,.0f} objects/s)")
    print(f"serialise labels (JSON): {t_dump:7.2f} s  ({out_bytes / 1e6:.1f} MB, {segments_out:,} segments)")
    print(f"total                  : {total:7.2f} s  ({n / total:,.0f} objects/s; target < 10 s)")
    print(f"baseline parse+dump    : {baseline:7.2f} s  (total/baseline = {total / baseline:.2f}x)")
    print(f"consolidate_batch      : {t_batch:7.2f} s  (whole payload incl. response JSON, "
          f"{len(batch_json) / 1e6:.1f} MB)")
    print(f"peak traced memory     : {peak / 2**20:7.1f} MB (Python allocations while streaming objects)")
    print(f"peak RSS               : {rss_after:7.1f} MB (process, incl. the generated input; "
          f"{rss_before:.1f} MB before the run; target < 512 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
