"""The Lambda core: what workers submitted, parsed, validated and consolidated into one label.

- `answers`: crowd-form `answerContent` -> a validated SegmentationAnswer (gtkit and aws-samples).
- `consolidate`: several workers' answers -> one ConsolidatedLabel (IoU matching, votes, agreement).
- `pre_annotation`, `post_annotation`: the two Lambda handlers' code (lambdas/*/handler.py are shims).
- `output_layout`: Ground Truth's output layout (paths, output-manifest lines) for local runs.

Nothing is imported here: each Lambda zip carries only the modules its handler reaches.
"""
