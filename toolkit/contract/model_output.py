"""What `gtkit bedrock import` writes: one line per line of a batch job's `.jsonl.out` files.

Every output line becomes one record, whatever happened to it: `status` says whether it carries a
model text (`ok`), the model failed it (`error`, Bedrock's `error` object instead of `modelOutput`),
the line was cut off (`truncated`), its output shape is unknown to the importer (`unknown-shape`),
its recordId is in no records map (`unjoined`) or a guardrail blocked the text (`blocked`). Only
`ok` records are used downstream (pre-filled answers, preference pairs); the rest are reported.

The text is masked (the default redactor or an ApplyGuardrail guardrail) before it is written: what
`masking` says was applied. The prompt comes from the job's own `modelInput`, which the export had
already masked. snake_case throughout.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["ok", "error", "truncated", "unknown-shape", "unjoined", "blocked"]
Family = Literal["anthropic", "nova", "llama", "titan", "mistral"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(_Model):
    input_tokens: int | None = None
    output_tokens: int | None = None


class Masking(_Model):
    method: Literal["regex", "guardrail", "none"]
    guardrail: str | None = Field(default=None, description="ID:VERSION of the guardrail applied")
    action: str | None = Field(default=None, description="ApplyGuardrail action: NONE | GUARDRAIL_INTERVENED")
    masked: dict[str, int] = Field(default_factory=dict, description="Masked entities per type (never the values)")


class OutputSource(_Model):
    file: str = Field(description="The .jsonl.out file")
    line: int = Field(description="1-based line in `file`")


class ModelError(_Model):
    code: str | int | None = None
    message: str | None = None


class ModelPrompt(_Model):
    system: str = ""
    prompt: str = ""


class ImportedModelOutput(_Model):
    """One model output, joined back to the interaction (and segment) its prompt came from."""

    key: str = Field(description="model_id + recordId: what a rerun uses to skip records already masked")
    record_id: str | None = Field(description="Bedrock recordId; None when a truncated line lost it")
    status: Status
    problem: str | None = Field(default=None, description="Why the record is not `ok`, naming record and model")
    model_id: str
    family: Family | None = None
    job_arn: str | None = None
    id: str | None = Field(default=None, description="The export record id (provenance.jsonl)")
    interaction_id: str | None = None
    segment_id: str | None = None
    source_ref: str | None = None
    line: int | None = Field(default=None, description="1-based line of the labeled output manifest")
    text: str | None = Field(default=None, description="The model's text, masked")
    stop_reason: str | None = Field(default=None, description="As the model family reports it (end_turn, length...)")
    usage: Usage = Field(default_factory=Usage)
    prompt: ModelPrompt | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="Inference parameters of the modelInput")
    error: ModelError | None = None
    masking: Masking | None = None
    source: OutputSource


MODEL_OUTPUT_MODELS: dict[str, type[BaseModel]] = {"bedrock-imported-output": ImportedModelOutput}
