"""The data contract: one pydantic model per thing that crosses a boundary, and one codec module per
wire format (`worker_response`, `consolidation`, `pre_annotation`, `output_manifest`, `peaks`,
`spectrogram`; the table is in docs/data-contract.md).

JSON Schema for each model is exported to static/schema/ by `gtkit schema export`. Only the models
are imported here: the codecs are imported by name, so a Lambda zip carries the ones it uses (and
no numpy, which the peaks and spectrogram codecs need).
"""

from toolkit.contract.answer import (
    ANSWER_FIELD,
    AnswerProblem,
    AnswerSegment,
    AnswerTrack,
    SegmentationAnswer,
    validate_answer,
)
from toolkit.contract.consolidated import ConsolidatedLabel, ConsolidatedSegment, ContentResult, WorkerAnswer
from toolkit.contract.feedback import FeedbackRecord
from toolkit.contract.manifest import ManifestLine, PeaksFile, PeaksHeader, PreSegment, Sidecar, SpectrogramHeader
from toolkit.contract.model_output import MODEL_OUTPUT_MODELS, ImportedModelOutput
from toolkit.contract.records import EXPORT_RECORD_MODELS
from toolkit.contract.review import ReviewedLabel, ReviewedLabelMetadata, ReviewInput
from toolkit.contract.schema import FieldSpec, LabelSchema, TrackCategory, load_label_schema
from toolkit.contract.worker_report import WorkerReportDoc

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
    "review-input": ReviewInput,
    "reviewed-label": ReviewedLabel,
    "reviewed-label-metadata": ReviewedLabelMetadata,
    "worker-report": WorkerReportDoc,
}
EXPORTED_MODELS.update(EXPORT_RECORD_MODELS)
EXPORTED_MODELS.update(MODEL_OUTPUT_MODELS)

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
    "ImportedModelOutput",
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
    "WorkerReportDoc",
    "load_label_schema",
    "validate_answer",
]
