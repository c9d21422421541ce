"""Export presets: YAML files that say which records to build from a label schema.

Built-in presets live in toolkit/export/presets/; `--preset` also takes a path to your own file.
A preset may carry per-schema overrides under `schemas: {<schema name>: {...}}`. Values marked
`auto` are resolved against the label schema (which content field holds the rating, which the
summary, the rating threshold).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from toolkit.contract import FieldSpec, LabelSchema
from toolkit.errors import GtkitError

PRESET_DIR = Path(__file__).resolve().parent / "presets"

Kind = Literal["sft-transcription", "sft-summary", "preference-correction", "preference-ratings", "kto",
               "reward-segments", "dense-preference", "stepwise", "preference-model",
               "preference-compare"]

# Which output formats each preset kind supports (`jsonl` always).
# hf-audio/hf-video: a Hugging Face dataset carrying the media (toolkit.export.formats.hf).
FORMATS: dict[str, tuple[str, ...]] = {
    "sft-transcription": ("jsonl", "trl", "bedrock", "bedrock-batch", "rttm", "webvtt", "hf-audio", "hf-video",
                          "lhotse", "nemo"),
    "sft-summary": ("jsonl", "trl", "bedrock", "bedrock-batch", "hf-audio", "hf-video"),
    "preference-correction": ("jsonl", "trl", "bedrock-batch", "hf-audio", "hf-video", "nova-dpo", "nemo-dpo"),
    "preference-ratings": ("jsonl", "trl", "bedrock-batch", "hf-audio", "hf-video", "nova-dpo", "nemo-dpo"),
    "kto": ("jsonl", "trl", "bedrock-batch", "hf-audio", "hf-video"),
    "reward-segments": ("jsonl", "rttm", "webvtt", "hf-audio", "hf-video", "lhotse"),
    "dense-preference": ("jsonl", "hf-audio", "hf-video"),
    "stepwise": ("jsonl", "trl"),
    # human-corrected (chosen) vs model text (rejected) of a field pre-filled from `gtkit bedrock import`
    "preference-model": ("jsonl", "trl"),
    "preference-compare": ("jsonl", "trl", "nemo-dpo"),
}

ITEM_VARS = frozenset({"interaction_id", "source_ref", "media_type", "duration", "language_code",
                       "transcript", "prompt_key", "prompt_text"})
CANDIDATE_VARS = frozenset({"candidate_ref", "candidate_id"})  # preference-compare: the response's candidate
SEGMENT_VARS = frozenset({"segment_id", "start", "end", "track", "label"})
TEMPLATE_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Template:
    """`{name}` substitution. Deliberately not str.format on the raw text: a preset must not reach
    attributes or indexes (`{x.__class__}`), so the text is compiled to a format string in which
    only plain `{name}` fields survive and every other brace is literal."""

    def __init__(self, text: str):
        self.text = text
        self.names = frozenset(TEMPLATE_NAME.findall(text))
        parts = TEMPLATE_NAME.split(text)  # literal, name, literal, name, ...
        self._format = "".join(
            "{" + part + "}" if i % 2 else part.replace("{", "{{").replace("}", "}}")
            for i, part in enumerate(parts))
        self._static = len(parts) == 1

    def render(self, values: Mapping[str, Any]) -> str:
        return self.text if self._static else self._format.format_map(values)


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # anthropic: Messages body (anthropic.*); converse: Converse/Nova messages body (amazon.nova* by InvokeModel,
    # any other model as a Converse job); llama: Llama 3 prompt (meta.llama*); titan: inputText (amazon.titan-text*)
    body: Literal["anthropic", "converse", "llama", "titan"] = "anthropic"
    anthropic_version: str = "bedrock-2023-05-31"
    max_tokens: int = Field(default=512, gt=0)


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Kind
    description: str = ""
    system: str = ""
    prompt: str = ""
    response: str = "{source_ref}"
    full_content_prompt: str = "Transcribe {source_ref}."
    field: str | None = Field(default=None, description="Content field: rating or text; `auto` = from schema")
    full_content_field: str | None = None
    threshold: float | Literal["auto"] = "auto"
    margin: float = Field(default=1.0, ge=0)
    prompt_key: str = "prompt_key"
    min_agreement: float = Field(default=0.0, ge=0, le=1)
    tracks: list[str] = Field(default_factory=list)
    rttm_tracks: list[str] | None = Field(default=None, description="Track categories for RTTM; default speaker")
    batch: BatchBody = Field(default_factory=BatchBody)
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def formats(self) -> tuple[str, ...]:
        return FORMATS[self.kind]


class PresetError(GtkitError, ValueError):
    pass


def builtin_preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str | Path) -> Preset:
    path = Path(name_or_path)
    if not path.exists():
        builtin = PRESET_DIR / f"{name_or_path}.yaml"
        if not builtin.exists():
            raise PresetError(f"preset {str(name_or_path)!r} is neither a file nor a built-in preset "
                              f"({', '.join(builtin_preset_names())})")
        path = builtin
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise PresetError(f"{path}: a preset must be a YAML mapping")
    try:
        return Preset.model_validate(data)
    except ValidationError as exc:
        raise PresetError(f"{path}: {exc}") from exc


class ResolvedPreset:
    """A preset with its per-schema overrides applied and `auto` values fixed against the schema."""

    def __init__(self, preset: Preset, schema: LabelSchema | None, need_schema: bool = True):
        """`need_schema=False`: nothing will be built (an input without any labelled item), so what only
        the schema can resolve (rating and text fields, content_* names) is left unresolved."""
        data = preset.model_dump()
        if schema is not None and schema.name in preset.schemas:
            data.update(preset.schemas[schema.name])
        data["schemas"] = {}
        try:
            self.preset = Preset.model_validate(data)
        except ValidationError as exc:
            raise PresetError(f"preset {preset.name}: schemas.{schema.name if schema else ''}: {exc}") from exc
        self.schema = schema
        p = self.preset
        self.kind = p.kind
        self.name = p.name
        self.rating: FieldSpec | None = None
        self.text_field: str | None = None
        self.threshold: float = 0.0
        resolve = need_schema or schema is not None
        if p.kind in ("preference-ratings", "kto", "reward-segments") and resolve:
            self.rating = self._rating_field(p.field)
            self.threshold = (self.rating.min + 0.75 * (self.rating.max - self.rating.min)
                              if p.threshold == "auto" else float(p.threshold))
        if p.kind in ("sft-summary", "preference-model") and resolve:
            self.text_field = self._text_field(p.field, ("summary",), required=True)
        if p.kind == "preference-correction":
            self.text_field = self._text_field(
                p.full_content_field, ("transcript", "transcription", "corrected_transcript"), required=False)
        self.system = Template(p.system)
        self.prompt = Template(p.prompt)
        self.response = Template(p.response)
        self.full_content_prompt = Template(p.full_content_prompt)
        allowed = set(ITEM_VARS) | {f"content_{f.name}" for f in (schema.content_fields if schema else [])}
        segment_level = p.kind in ("sft-transcription", "preference-correction")
        for label, template in (("system", self.system), ("prompt", self.prompt), ("response", self.response),
                                ("full_content_prompt", self.full_content_prompt)):
            ok = allowed | (SEGMENT_VARS if segment_level and label in ("prompt", "system") else set())
            if p.kind == "preference-compare" and label == "response":
                ok = ok | CANDIDATE_VARS
            unknown = sorted(n for n in template.names - ok if resolve or not n.startswith("content_"))
            if unknown:
                raise PresetError(f"preset {p.name}: {label} uses unknown template names {unknown}; "
                                  f"available: {sorted(ok)}")

    def _schema_or_fail(self, what: str) -> LabelSchema:
        if self.schema is None:
            raise PresetError(f"preset {self.name} needs the label schema to find {what}; pass --schema")
        return self.schema

    def _rating_field(self, name: str | None) -> FieldSpec:
        schema = self._schema_or_fail("the rating field")
        ratings = [f for f in schema.content_fields if f.type == "rating"]
        if name and name != "auto":
            spec = schema.content_field(name)
            if spec is None or spec.type != "rating":
                raise PresetError(f"preset {self.name}: field {name!r} is not a rating content field of "
                                  f"schema {schema.name}")
            return spec
        if not ratings:
            raise PresetError(f"preset {self.name}: schema {schema.name} has no rating content field")
        return ratings[0]

    def _text_field(self, name: str | None, preferred: tuple[str, ...], required: bool) -> str | None:
        if name and name != "auto":
            schema = self.schema
            if schema is not None:
                spec = schema.content_field(name)
                if spec is None or spec.type != "text":
                    raise PresetError(f"preset {self.name}: field {name!r} is not a text content field of "
                                      f"schema {schema.name}")
            return name
        if self.schema is None:
            if required:
                self._schema_or_fail("the text field")
            return None
        texts = [f.name for f in self.schema.content_fields if f.type == "text"]
        for candidate in preferred:
            if candidate in texts:
                return candidate
        if required:
            if not texts:
                raise PresetError(f"preset {self.name}: schema {self.schema.name} has no text content field")
            return texts[0]
        return None

    def normalise(self, score: float) -> float:
        assert self.rating is not None
        span = self.rating.max - self.rating.min
        return max(0.0, min(1.0, (score - self.rating.min) / span))

    def rttm_tracks(self) -> set[str] | None:
        if self.preset.rttm_tracks is not None:
            return set(self.preset.rttm_tracks) or None
        if self.schema is not None and self.schema.track("speaker") is not None:
            return {"speaker"}
        return None
