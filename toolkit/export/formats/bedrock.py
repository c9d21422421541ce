"""`bedrock`: Amazon Bedrock fine-tuning JSONL for the SFT presets.

Schemas (`--bedrock-schema`): `messages` (Anthropic Claude style: optional `system` string,
user/assistant turns, no extra keys), `conversation-2024` (`bedrock-conversation-2024`, Amazon
Nova and distillation) and `prompt-completion` (text-to-text models). None of them allows extra
keys, so lineage goes to `<out>.provenance.jsonl`, row for row. Amazon Nova's reserved words are
rewritten in every text (or refused, or kept: `--reserved-words`, see toolkit.export.reserved).
In `conversation-2024` a video or image item's user turn starts with its `video`/`image` block by
`s3Location` (Nova takes no audio: audio items stay text only).
"""

from __future__ import annotations

from typing import Any

from toolkit.export.formats.base import ExportError, Provenance, Writer, basename, dumps, sidecar_uri
from toolkit.export.reserved import ReservedWords

SCHEMAS = ("messages", "conversation-2024", "prompt-completion")
CONVERSATION_2024 = "bedrock-conversation-2024"
# What Amazon Nova understanding fine-tuning takes as media (Nova user guide, "Preparing data for
# fine-tuning Understanding models" and the Nova 2 SFT data page): images and videos by S3 location,
# at most one video per sample, never images and videos in one dataset; no audio.
NOVA_VIDEO = {".mp4": "mp4", ".mov": "mov", ".mkv": "mkv"}
NOVA_IMAGE = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif"}


def media_uri(record: dict[str, Any]) -> str | None:
    """The medium a record's prompt is about; None for a rating pair (its two media are the candidates)."""
    media = record.get("media")
    return media["uri"] if isinstance(media, dict) else record["lineage"].get("source_ref")


def nova_media_block(uri: str | None) -> dict[str, Any] | None:
    """The Converse content block for a video or image in S3 (`s3Location`); None for audio and the rest."""
    if not uri or not uri.startswith("s3://"):
        return None
    suffix = ("." + uri.rsplit(".", 1)[-1].lower()) if "." in uri.rsplit("/", 1)[-1] else ""
    if suffix in NOVA_VIDEO:
        return {"video": {"format": NOVA_VIDEO[suffix], "source": {"s3Location": {"uri": uri}}}}
    if suffix in NOVA_IMAGE:
        return {"image": {"format": NOVA_IMAGE[suffix], "source": {"s3Location": {"uri": uri}}}}
    return None


class NovaMedia:
    """Media blocks for one export, refusing what Nova refuses: images and videos in one dataset."""

    def __init__(self) -> None:
        self.kinds: set[str] = set()

    def blocks(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        block = nova_media_block(media_uri(record))
        if block is None:
            return []
        self.kinds.update(block)
        if len(self.kinds) > 1:
            raise ExportError(f"record {record.get('id')}: Amazon Nova fine-tuning datasets cannot mix images and "
                              "videos; export them separately")
        return [block]


def to_bedrock(schema: str, record: dict[str, Any], media: NovaMedia | None = None) -> dict[str, Any]:
    system, prompt, completion = record["system"], record["prompt"], record["completion"]
    if schema == "messages":
        out: dict[str, Any] = {"system": system} if system else {}
        out["messages"] = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        return out
    if schema == "conversation-2024":
        return {
            "schemaVersion": CONVERSATION_2024,
            "system": [{"text": system}] if system else [],
            "messages": [{"role": "user", "content": [*(media.blocks(record) if media else []), {"text": prompt}]},
                         {"role": "assistant", "content": [{"text": completion}]}],
        }
    if schema == "prompt-completion":
        return {"prompt": f"{system}\n\n{prompt}" if system else prompt, "completion": completion}
    raise ExportError(f"--bedrock-schema: unknown Bedrock schema {schema!r} (choose from {', '.join(SCHEMAS)})")


class BedrockWriter(Writer):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reserved = ReservedWords(self.options.reserved_words)
        self.nova_media = NovaMedia()

    def write(self, records: list[dict[str, Any]]) -> None:
        if not self.files:
            self._open()
        schema = self.options.bedrock_schema
        name = basename(self.out)
        for record in records:
            line = to_bedrock(schema, record, self.nova_media)
            rewrites = self.reserved.apply(line, record)
            self.fh.write(dumps(line))
            self.provenance.add(name, self.written, record, reserved=rewrites)
            self.written += 1

    def _open(self) -> None:
        if self.options.bedrock_schema not in SCHEMAS:
            raise ExportError(f"--bedrock-schema: unknown Bedrock schema {self.options.bedrock_schema!r} "
                              f"(choose from {', '.join(SCHEMAS)})")
        self.fh = self.open(self.out)
        self.provenance = Provenance(self.open(sidecar_uri(self.out)))

    def finish(self) -> None:
        if not self.files:
            self._open()
