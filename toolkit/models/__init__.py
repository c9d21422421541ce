"""The data contract: one pydantic model per thing that crosses a boundary.

JSON Schema for each is exported to static/schema/ by `gtkit schema export`.
"""

from toolkit.models.answer import (
    ANSWER_FIELD,
    AnswerProblem,
    AnswerSegment,
    AnswerTrack,
    SegmentationAnswer,
    validate_answer,
)
from toolkit.models.consolidated import ConsolidatedLabel, ConsolidatedSegment, ContentResult, WorkerAnswer
from toolkit.models.feedback import FeedbackRecord
from toolkit.models.manifest import ManifestLine, PeaksFile, PeaksHeader, PreSegment, Sidecar, SpectrogramHeader
from toolkit.models.records import EXPORT_RECORD_MODELS
from toolkit.models.schema import FieldSpec, LabelSchema, TrackCategory, load_label_schema

# name of the exported JSON Schema file -> model
EXPORTED_MODELS = {
    "feedback-record": FeedbackRecord,
    "manifest-line": ManifestLine,
    "sidecar": Sidecar,
    "peaks": PeaksFile,
    "peaks-header": PeaksHeader,
    "spectrogram-header": SpectrogramHeader,
    "label-schema": LabelSchema,
    "segmentation-answer": SegmentationAnswer,
    "consolidated-label": ConsolidatedLabel,
}
EXPORTED_MODELS.update(EXPORT_RECORD_MODELS)

__all__ = [
    "ANSWER_FIELD",
    "EXPORTED_MODELS",
    "AnswerProblem",
    "AnswerSegment",
    "AnswerTrack",
    "ConsolidatedLabel",
    "ConsolidatedSegment",
    "ContentResult",
    "FeedbackRecord",
    "FieldSpec",
    "LabelSchema",
    "ManifestLine",
    "PeaksFile",
    "PeaksHeader",
    "PreSegment",
    "SegmentationAnswer",
    "Sidecar",
    "SpectrogramHeader",
    "TrackCategory",
    "WorkerAnswer",
    "load_label_schema",
    "validate_answer",
]
