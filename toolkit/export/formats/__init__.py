"""Output formats of `gtkit export`: writer class per format name."""

from __future__ import annotations

from toolkit.export.formats.base import ExportError, Writer, WriterOptions
from toolkit.export.formats.bedrock import BedrockWriter
from toolkit.export.formats.bedrock_batch import BatchQuotas, BedrockBatchWriter
from toolkit.export.formats.hf import HfDatasetWriter, HfVideoWriter
from toolkit.export.formats.jsonl import JsonlWriter
from toolkit.export.formats.preference import NemoDpoWriter, NovaDpoWriter
from toolkit.export.formats.rttm import RttmWriter
from toolkit.export.formats.speech import LhotseWriter, NemoWriter
from toolkit.export.formats.trl import TrlWriter
from toolkit.export.formats.webvtt import WebvttWriter

WRITERS: dict[str, type[Writer]] = {
    "jsonl": JsonlWriter,
    "trl": TrlWriter,
    "bedrock": BedrockWriter,
    "bedrock-batch": BedrockBatchWriter,
    "rttm": RttmWriter,
    "webvtt": WebvttWriter,
    "hf-audio": HfDatasetWriter,
    "hf-video": HfVideoWriter,
    "lhotse": LhotseWriter,
    "nemo": NemoWriter,
    "nova-dpo": NovaDpoWriter,
    "nemo-dpo": NemoDpoWriter,
}
# `--format bedrock-conversation-2024` = `--format bedrock --bedrock-schema conversation-2024`
ALIASES = {"bedrock-conversation-2024": ("bedrock", "conversation-2024")}

__all__ = ["ALIASES", "WRITERS", "BatchQuotas", "ExportError", "Writer", "WriterOptions"]
