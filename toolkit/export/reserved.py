"""Amazon Nova's reserved words in Bedrock exports: found, and rewritten (default), kept, or refused.

A Nova fine-tuning job fails as a whole when any text holds one of them. The list is the Amazon Nova
user guide's ("Preparing data for fine-tuning Understanding models": `User:`, `Bot:`, `Assistant:`,
`System:`, `<image>`, `<video>`, `[EOS]`) plus `Thought:` and `<unk>`, which AWS's own dataset
validation script (aws-samples/amazon-nova-samples, nova_ft_dataset_validator.py) also rejects. Like
that script, matching ignores case and word boundaries (`superuser:` holds `user:`).

The rewrite swaps each word's ASCII punctuation for its fullwidth form (`:` U+FF1A, `<` `>` U+FF1C
U+FF1E, `[` `]` U+FF3B U+FF3D) and keeps its letters and case: `User:` -> `User：`, `<image>` ->
`＜image＞`. One character for one, so offsets do not move; `restore()` reverts it, exactly when given
the rewrites the provenance sidecar lists (`reserved: [{field, at, word}]`), and by the reverse
mapping otherwise (exact unless the source text itself held a fullwidth form of a reserved word).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from toolkit.export.formats.base import ExportError

RESERVED_WORDS = ("User:", "Bot:", "Assistant:", "System:", "Thought:", "<image>", "<video>", "<unk>", "[EOS]")
MODES = ("rewrite", "fail", "keep")
FULLWIDTH = str.maketrans({":": "\uff1a", "<": "\uff1c", ">": "\uff1e", "[": "\uff3b", "]": "\uff3d"})
ASCII = str.maketrans({v: k for k, v in FULLWIDTH.items()})
PATTERN = re.compile("|".join(re.escape(w) for w in RESERVED_WORDS), re.IGNORECASE)
REWRITTEN = re.compile("|".join(re.escape(w.translate(FULLWIDTH)) for w in RESERVED_WORDS), re.IGNORECASE)
CANONICAL = {w.lower(): w for w in RESERVED_WORDS}
# Keys of a Bedrock line whose values are fixed identifiers, never text a model reads.
NOT_TEXT = frozenset({"schemaVersion", "role", "type", "anthropic_version", "recordId",
                      "uri", "bucketOwner", "format", "preferenceLabel"})  # media references and labels


class ReservedWordError(ExportError):
    """A reserved word in a text with `--reserved-words fail`."""


class RewritesMismatch(ExportError):
    """`restore` given rewrites (from the provenance sidecar) that do not match the text."""


def canonical(word: str) -> str:
    """The listed spelling of a matched word (`USER:` -> `User:`), for counting."""
    return CANONICAL[word.lower()]


def rewrite(text: str) -> tuple[str, list[tuple[int, str]]]:
    """(text without reserved words, [(offset, word as it was)])."""
    hits = [(m.start(), m.group()) for m in PATTERN.finditer(text)]
    if not hits:
        return text, []
    out, last = [], 0
    for at, word in hits:
        out += [text[last:at], word.translate(FULLWIDTH)]
        last = at + len(word)
    out.append(text[last:])
    return "".join(out), hits


def restore(text: str, rewrites: list[tuple[int, str]] | None = None) -> str:
    """The text as it was before `rewrite`: from the listed rewrites, else by the reverse mapping."""
    if rewrites is None:
        return REWRITTEN.sub(lambda m: m.group().translate(ASCII), text)
    chars = list(text)
    for at, word in rewrites:
        if text[at:at + len(word)] != word.translate(FULLWIDTH):
            raise RewritesMismatch(f"offset {at}: no rewritten {word!r} there")
        chars[at:at + len(word)] = word
    return "".join(chars)


def _texts(node: Any, path: str) -> Iterator[tuple[Any, Any, str]]:
    """(container, key, dotted path) of every text in a Bedrock line."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, str):
            if key not in NOT_TEXT:
                yield node, key, where
        elif isinstance(value, dict | list):
            yield from _texts(value, where)


class ReservedWords:
    """Applies one mode to every line of an export and counts the words per listed spelling."""

    def __init__(self, mode: str = "rewrite"):
        if mode not in MODES:
            raise ExportError(f"--reserved-words must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.counts: Counter[str] = Counter()

    def apply(self, line: dict[str, Any], record: dict[str, Any]) -> list[dict[str, Any]]:
        """Check (and in rewrite mode change) `line` in place; the rewrites, for the provenance sidecar."""
        done: list[dict[str, Any]] = []
        for node, key, where in list(_texts(line, "")):
            text = node[key]
            if PATTERN.search(text) is None:
                continue
            if self.mode == "fail":
                word = PATTERN.search(text).group()  # type: ignore[union-attr]
                line_no = record.get("lineage", {}).get("line")
                at = f" (manifest line {line_no})" if line_no is not None else ""
                raise ReservedWordError(
                    f"record {record.get('id')}{at}: {where} holds {canonical(word)!r}, a word Amazon Nova "
                    f"reserves (the fine-tuning job would fail); --reserved-words rewrite rewrites it reversibly")
            new, hits = rewrite(text)
            self.counts.update(canonical(word) for _, word in hits)
            if self.mode == "rewrite":
                node[key] = new
                done += [{"field": where, "at": at, "word": word} for at, word in hits]
        return done
