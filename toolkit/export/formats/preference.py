"""Preference pairs for two more trainers, lineage row for row in `<out>.provenance.jsonl`.

- `nova-dpo`: Amazon Nova DPO (Nova user guide / SageMaker "Direct preference optimization"): the
  `bedrock-conversation-2024` conversation whose last, assistant turn holds `candidates`, one
  `preferenceLabel: "preferred"` and one `"non-preferred"`, each with `content` text blocks. The
  user turn leads with the item's `video`/`image` block by `s3Location` when it has one (Nova takes
  no audio); Nova's reserved words are handled as in every Bedrock format.
- `nemo-dpo`: NeMo-Aligner DPO lines: `prompt` rendered with NeMo's default chat template
  (`<extra_id_0>System`, `<extra_id_1>User`, `<extra_id_1>Assistant`), `chosen_response` and
  `rejected_response` each ending the turn with `<extra_id_1>`, and `chosen_reward`/`rejected_reward`
  (the consolidated ratings) for rating pairs, as NeMo-Aligner's RPO variants read them.
"""

from __future__ import annotations

from typing import Any

from toolkit.export.formats.base import Provenance, Writer, basename, dumps, sidecar_uri
from toolkit.export.formats.bedrock import CONVERSATION_2024, NovaMedia
from toolkit.export.reserved import ReservedWords

NEMO_SYSTEM, NEMO_TURN = "<extra_id_0>", "<extra_id_1>"


def to_nova_dpo(record: dict[str, Any], media: NovaMedia) -> dict[str, Any]:
    system = record["system"]
    return {
        "schemaVersion": CONVERSATION_2024,
        "system": [{"text": system}] if system else [],
        "messages": [
            {"role": "user", "content": [*media.blocks(record), {"text": record["prompt"]}]},
            {"role": "assistant", "candidates": [
                {"content": [{"text": record["chosen"]}], "preferenceLabel": "preferred"},
                {"content": [{"text": record["rejected"]}], "preferenceLabel": "non-preferred"}]},
        ],
    }


def to_nemo_dpo(record: dict[str, Any]) -> dict[str, Any]:
    prompt = (f"{NEMO_SYSTEM}System\n{record['system']}\n{NEMO_TURN}User\n{record['prompt']}\n"
              f"{NEMO_TURN}Assistant\n")
    out: dict[str, Any] = {"prompt": prompt, "chosen_response": f"{record['chosen']}\n{NEMO_TURN}",
                           "rejected_response": f"{record['rejected']}\n{NEMO_TURN}"}
    if "chosen_score" in record:
        out["chosen_reward"] = record["chosen_score"]
        out["rejected_reward"] = record["rejected_score"]
    return out


class PreferencePairWriter(Writer):
    def _open(self) -> None:
        self.fh = self.open(self.out)
        self.provenance = Provenance(self.open(sidecar_uri(self.out)))

    def line(self, record: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        raise NotImplementedError

    def write(self, records: list[dict[str, Any]]) -> None:
        if not self.files:
            self._open()
        name = basename(self.out)
        for record in records:
            line, rewrites = self.line(record)
            self.fh.write(dumps(line))
            self.provenance.add(name, self.written, record, reserved=rewrites)
            self.written += 1

    def finish(self) -> None:
        if not self.files:
            self._open()


class NovaDpoWriter(PreferencePairWriter):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reserved = ReservedWords(self.options.reserved_words)
        self.nova_media = NovaMedia()

    def line(self, record: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        line = to_nova_dpo(record, self.nova_media)
        return line, self.reserved.apply(line, record)


class NemoDpoWriter(PreferencePairWriter):
    def line(self, record: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return to_nemo_dpo(record), []
