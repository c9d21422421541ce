"""The constants the worker UI shares with the Python side, as one generated JS module.

`gtkit schema export` writes `static/js/contract.js` from `contract_js()`; the browser modules
import these values from it instead of repeating them, and a test fails when the committed file
differs from what the models generate. Each value is read from the model or constant that
defines it (a default, an alias, a `Literal`), so changing the model changes the UI's copy.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from toolkit.contract.answer import (
    ANSWER_FIELD,
    ANSWER_SCHEMA_VERSION,
    CONTENT_FIELD_PREFIX,
    TIME_DECIMALS,
    TIME_TOLERANCE,
)
from toolkit.contract.manifest import (
    GOLD_ANSWER_KEY,
    PEAKS_MAGIC,
    SPECTROGRAM_MAGIC,
    ManifestLine,
    PeaksFile,
    PeaksHeader,
    Sidecar,
    SpectrogramHeader,
)
from toolkit.contract.review import (
    DISAGREEMENT_KINDS,
    REVIEW_DECISIONS,
    REVIEW_NOTE_MAX_CHARS,
    Disagreement,
    ReviewInput,
    ReviewNote,
)
from toolkit.contract.schema import FieldSpec, SegmentText

CONTRACT_JS = "js/contract.js"  # under static/
REGENERATE = "`gtkit schema export` (`make schema`)"


@dataclass(frozen=True)
class Constant:
    name: str
    value: Any
    doc: str  # what it is and where it comes from


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields that have a plain (non-None) default, with that default."""
    return {name: field.default for name, field in model.model_fields.items()
            if not field.is_required() and field.default is not None and field.default_factory is None}


def _aliases(model: type[BaseModel]) -> dict[str, str]:
    return {name: field.alias or name for name, field in model.model_fields.items()}


def _version(model: type[BaseModel]) -> int:
    return model.model_fields["version"].default


def ui_constants() -> list[Constant]:
    """Every constant of contract.js, in file order."""
    return [
        Constant("ANSWER_SCHEMA_VERSION", ANSWER_SCHEMA_VERSION,
                 "SegmentationAnswer.schemaVersion the UI writes (models/answer.py)."),
        Constant("ANSWER_FIELD", ANSWER_FIELD,
                 "Name of the crowd-form input that carries the answer JSON (models/answer.py)."),
        Constant("CONTENT_FIELD_PREFIX", CONTENT_FIELD_PREFIX,
                 "Full-content fields are also posted as native inputs named PREFIX + field name "
                 "(contract/answer.py; toolkit/labeling/answers.py skips them when reading a response)."),
        Constant("TIME_DECIMALS", TIME_DECIMALS,
                 "Answer times are seconds rounded to this many decimals, i.e. milliseconds (models/answer.py)."),
        Constant("TIME_STEP", round(10.0 ** -TIME_DECIMALS, TIME_DECIMALS),
                 "The smallest time difference an answer can carry: a segment shorter than this would "
                 "round to an empty one, which validation refuses (10 ** -TIME_DECIMALS)."),
        Constant("TIME_TOLERANCE", TIME_TOLERANCE,
                 "How far past the media duration a segment end may be (models/answer.py, structural_problems)."),
        Constant("FIELD_DEFAULTS", _defaults(FieldSpec),
                 "Defaults of a FieldSpec (models/schema.py): a rating scale without min/max is 1 to 5."),
        Constant("SEGMENT_TEXT_DEFAULTS", SegmentText().model_dump(),
                 "LabelSchema.segment_text when the schema does not set it (models/schema.py SegmentText)."),
        Constant("TASK_INPUT_KEYS", {k: v for k, v in _aliases(ManifestLine).items() if v != GOLD_ANSWER_KEY},
                 "Task input (= manifest line minus gold-answer) keys: model field name -> wire key "
                 "(models/manifest.py ManifestLine)."),
        Constant("SIDECAR_KEYS", _aliases(Sidecar),
                 "Sidecar file keys: model field name -> wire key (models/manifest.py Sidecar)."),
        Constant("REVIEW_KEYS", _aliases(ReviewInput),
                 "Keys of a review task's `review` input: model field name -> wire key (contract/review.py "
                 "ReviewInput; docs/review.md)."),
        Constant("DISAGREEMENT_KEYS", _aliases(Disagreement),
                 "Keys of one `review.disagreements` entry (contract/review.py Disagreement)."),
        Constant("DISAGREEMENT_KINDS", list(DISAGREEMENT_KINDS),
                 "Disagreement.kind values (contract/review.py)."),
        Constant("REVIEW_NOTE_KEYS", _aliases(ReviewNote),
                 "Keys of `review-note` on a re-labeling task's line (contract/review.py ReviewNote)."),
        Constant("REVIEW_DECISIONS", list(REVIEW_DECISIONS),
                 "SegmentationAnswer.review.decision values (contract/answer.py ReviewDecision)."),
        Constant("REVIEW_NOTE_MAX_CHARS", REVIEW_NOTE_MAX_CHARS,
                 "Longest review note (contract/answer.py ReviewDecision.note); a reject needs one."),
        Constant("PEAKS_MAGIC", PEAKS_MAGIC.decode("ascii"),
                 "First 4 bytes of a binary peaks file (models/manifest.py PEAKS_MAGIC)."),
        Constant("PEAKS_BINARY_VERSION", _version(PeaksHeader),
                 "PeaksHeader.version of a binary peaks file (models/manifest.py)."),
        Constant("PEAKS_JSON_VERSION", _version(PeaksFile),
                 "PeaksFile.version of a JSON peaks file (models/manifest.py)."),
        Constant("SPECTROGRAM_MAGIC", SPECTROGRAM_MAGIC.decode("ascii"),
                 "First 4 bytes of a precomputed spectrogram file (models/manifest.py SPECTROGRAM_MAGIC)."),
        Constant("SPECTROGRAM_VERSION", _version(SpectrogramHeader),
                 "SpectrogramHeader.version (models/manifest.py)."),
    ]


def _js_value(value: Any) -> str:
    if isinstance(value, dict):
        return f"Object.freeze({json.dumps(value, ensure_ascii=False, indent=2)})"
    return json.dumps(value, ensure_ascii=False)


def _doc_comment(doc: str) -> list[str]:
    lines = textwrap.wrap(doc, width=96)
    if len(lines) == 1:
        return [f"/** {lines[0]} */"]
    return ["/**", *(f" * {line}" for line in lines), " */"]


def contract_js() -> str:
    """The text of static/js/contract.js (stable: same models, same bytes)."""
    lines = [
        f"// Generated by {REGENERATE} from toolkit/contract (toolkit/contract/ui_contract.py): do not edit.",
        "// The constants the worker UI shares with the Python side. tests/test_models.py fails when this",
        "// file differs from what the models generate; change the model, then regenerate.",
        "",
    ]
    for constant in ui_constants():
        lines += [*_doc_comment(constant.doc), f"export const {constant.name} = {_js_value(constant.value)}", ""]
    return "\n".join(lines[:-1]) + "\n"
