"""`bedrock`: Amazon Bedrock fine-tuning JSONL for the SFT presets.

Schemas (`--bedrock-schema`): `messages` (Anthropic Claude style: optional `system` string,
user/assistant turns, no extra keys), `conversation-2024` (`bedrock-conversation-2024`, Amazon
Nova and distillation) and `prompt-completion` (text-to-text models). None of them allows extra
keys, so lineage goes to `<out>.provenance.jsonl`, row for row. Amazon Nova's reserved words are
rewritten in every text (or refused, or kept: `--reserved-words`, see toolkit.export.reserved).
"""

from __future__ import annotations

from typing import Any

from toolkit.export.formats.base import Provenance, Writer, basename, dumps, sidecar_uri
from toolkit.export.reserved import ReservedWords

SCHEMAS = ("messages", "conversation-2024", "prompt-completion")
CONVERSATION_2024 = "bedrock-conversation-2024"


def to_bedrock(schema: str, record: dict[str, Any]) -> dict[str, Any]:
    system, prompt, completion = record["system"], record["prompt"], record["completion"]
    if schema == "messages":
        out: dict[str, Any] = {"system": system} if system else {}
        out["messages"] = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        return out
    if schema == "conversation-2024":
        return {
            "schemaVersion": CONVERSATION_2024,
            "system": [{"text": system}] if system else [],
            "messages": [{"role": "user", "content": [{"text": prompt}]},
                         {"role": "assistant", "content": [{"text": completion}]}],
        }
    if schema == "prompt-completion":
        return {"prompt": f"{system}\n\n{prompt}" if system else prompt, "completion": completion}
    raise ValueError(f"unknown Bedrock schema {schema!r} (choose from {', '.join(SCHEMAS)})")


class BedrockWriter(Writer):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reserved = ReservedWords(self.options.reserved_words)

    def write(self, records: list[dict[str, Any]]) -> None:
        if not self.files:
            self._open()
        schema = self.options.bedrock_schema
        name = basename(self.out)
        for record in records:
            line = to_bedrock(schema, record)
            rewrites = self.reserved.apply(line, record)
            self.fh.write(dumps(line))
            self.provenance.add(name, self.written, record, reserved=rewrites)
            self.written += 1

    def _open(self) -> None:
        if self.options.bedrock_schema not in SCHEMAS:
            raise ValueError(f"unknown Bedrock schema {self.options.bedrock_schema!r} "
                             f"(choose from {', '.join(SCHEMAS)})")
        self.fh = self.open(self.out)
        self.provenance = Provenance(self.open(sidecar_uri(self.out)))

    def finish(self) -> None:
        if not self.files:
            self._open()
