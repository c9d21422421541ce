"""Feedback records in, labeling inputs out: the input manifest and what its tasks point at.

- `build`: processed feedback records (JSONL/CSV) -> Ground Truth input manifest (+ sidecars).
- `transcribe`: Amazon Transcribe output -> speaker turns (the manifest's pre-segments).
- `peaks`: min/max waveform peaks of long media (ffmpeg + numpy), written as JSON or binary files.
- `spectrogram`: a precomputed spectrogram of long media, computed in the same decode as the peaks.
"""
