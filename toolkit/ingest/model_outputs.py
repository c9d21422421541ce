"""Bedrock batch inference results (`.jsonl.out`) in, `ImportedModelOutput` lines out.

The one codec of the `.jsonl.out` format: each line is `{"recordId", "modelInput", "modelOutput"}`,
or `error` instead of `modelOutput` when the model failed the record. `modelOutput` is the model's
InvokeModel response body (Converse's response for a Converse job), whose shape depends on the model
family:

    anthropic  {"content": [{"type": "text", "text"}], "stop_reason", "usage": {"input_tokens", "output_tokens"}}
    nova       {"output": {"message": {"content": [{"text"}]}}, "stopReason", "usage": {"inputTokens", ...}}
               (also every model's Converse response)
    llama      {"generation", "stop_reason", "prompt_token_count", "generation_token_count"}
    titan      {"inputTextTokenCount", "results": [{"outputText", "completionReason", "tokenCount"}]}
    mistral    {"outputs": [{"text", "stop_reason"}]}

The family comes from the model id (inference profile prefixes such as `us.` ignored), else from
the shape. A shape the family does not have is an `unknown-shape` record naming record and model.

Streaming: the records maps (recordId -> interaction) and, on a rerun, the records already masked
go to SQLite scratch tables, so memory stays flat whatever the job size. Masked results are also
appended to `<out>.partial` as they are made: a killed run loses no guardrail call, and the rerun
skips every record already masked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from toolkit.contract.model_output import ImportedModelOutput
from toolkit.errors import GtkitError, Problem
from toolkit.storage import Storage, is_s3, join_uri
from toolkit.storage.lines import iter_raw_lines
from toolkit.storage.scratch import LabelIndex

FAMILY_PREFIXES = (("anthropic.", "anthropic"), ("amazon.nova", "nova"), ("meta.llama", "llama"),
                   ("amazon.titan-text", "titan"), ("amazon.titan-tg1", "titan"), ("mistral.", "mistral"))
PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|us-gov|global|ca|jp|au)\.")
RECORD_ID = re.compile(rb'"recordId"\s*:\s*"([A-Za-z0-9]{1,64})"')
PROMPT_KEYS = frozenset({"messages", "system", "prompt", "inputText"})


class ModelOutputError(GtkitError, ValueError):
    """A problem with the import as a whole (no records map, an unreadable job.json)."""


class ShapeError(ValueError):
    """The model output does not have its family's documented shape."""


def family_of(model_id: str) -> str | None:
    name = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    name = PROFILE_PREFIX.sub("", name)
    for prefix, family in FAMILY_PREFIXES:
        if name.startswith(prefix):
            return family
    return None


def guess_family(output: dict[str, Any]) -> str | None:
    if "content" in output and ("stop_reason" in output or output.get("type") == "message"):
        return "anthropic"
    if "output" in output:
        return "nova"
    if "generation" in output:
        return "llama"
    if "results" in output:
        return "titan"
    if "outputs" in output:
        return "mistral"
    return None


@dataclass
class Extracted:
    text: str
    stop_reason: str | None
    input_tokens: int | None
    output_tokens: int | None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _texts(blocks: Any, where: str) -> str:
    if not isinstance(blocks, list):
        raise ShapeError(f"{where} is not a list")
    texts = [b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str)
             and b.get("type", "text") == "text"]
    if not texts and blocks:
        raise ShapeError(f"{where} has no text block")
    return "".join(texts)


def extract(family: str, out: Any) -> Extracted:
    """The text, stop reason and token counts of one modelOutput; ShapeError if it is not the family's."""
    if not isinstance(out, dict):
        raise ShapeError("modelOutput is not an object")
    if family == "anthropic":
        if "content" not in out:
            raise ShapeError("no `content`")
        usage = out["usage"] if isinstance(out.get("usage"), dict) else {}
        return Extracted(_texts(out["content"], "content"), out.get("stop_reason"),
                         _int(usage.get("input_tokens")), _int(usage.get("output_tokens")))
    if family == "nova":
        message = (out.get("output") or {}).get("message") if isinstance(out.get("output"), dict) else None
        if not isinstance(message, dict) or "content" not in message:
            raise ShapeError("no `output.message.content`")
        usage = out["usage"] if isinstance(out.get("usage"), dict) else {}
        return Extracted(_texts(message["content"], "output.message.content"), out.get("stopReason"),
                         _int(usage.get("inputTokens")), _int(usage.get("outputTokens")))
    if family == "llama":
        if not isinstance(out.get("generation"), str):
            raise ShapeError("no `generation` text")
        return Extracted(out["generation"], out.get("stop_reason"), _int(out.get("prompt_token_count")),
                         _int(out.get("generation_token_count")))
    if family == "titan":
        results = out.get("results")
        if not isinstance(results, list) or not results or not isinstance(results[0], dict) \
                or not isinstance(results[0].get("outputText"), str):
            raise ShapeError("no `results[0].outputText`")
        return Extracted(results[0]["outputText"], results[0].get("completionReason"),
                         _int(out.get("inputTextTokenCount")), _int(results[0].get("tokenCount")))
    if family == "mistral":
        outputs = out.get("outputs")
        if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], dict) \
                or not isinstance(outputs[0].get("text"), str):
            raise ShapeError("no `outputs[0].text`")
        return Extracted(outputs[0]["text"], outputs[0].get("stop_reason"), None, None)
    raise ShapeError(f"unknown family {family!r}")


def prompt_of(model_input: Any) -> dict[str, str] | None:
    """system and user text of the modelInput (Anthropic, Nova/Converse, Llama, Titan bodies)."""
    if not isinstance(model_input, dict):
        return None
    system = model_input.get("system", "")
    if isinstance(system, list):
        system = "".join(b.get("text", "") for b in system if isinstance(b, dict))
    prompt = model_input.get("prompt") or model_input.get("inputText") or ""
    for message in model_input.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            prompt = content if isinstance(content, str) else "".join(
                b.get("text", "") for b in content or [] if isinstance(b, dict))
            break
    return {"system": system if isinstance(system, str) else "", "prompt": prompt if isinstance(prompt, str) else ""}


def params_of(model_input: Any) -> dict[str, Any]:
    if not isinstance(model_input, dict):
        return {}
    return {k: v for k, v in model_input.items() if k not in PROMPT_KEYS}


# -- the records maps ------------------------------------------------------------------------------

def records_maps(storage: Storage, source: str) -> list[str]:
    """`--records`: an export root (its jobs.json names the maps) or one records map file."""
    plan_uri = join_uri(source, "jobs.json")
    if source.endswith(".jsonl"):
        return [source]
    if not storage.exists(plan_uri):
        raise ModelOutputError(f"--records {source}: neither a records map (.jsonl) nor an export with jobs.json")
    plan = storage.read_json(plan_uri)
    maps = [join_uri(source, j["records_map"]) for j in plan.get("jobs", []) if j.get("records_map")]
    if not maps:
        raise ModelOutputError(f"--records {source}: its jobs.json names no records maps (exported before they "
                           "existed? export again)")
    return maps


def load_index(storage: Storage, maps: Iterable[str], index: LabelIndex) -> int:
    count = 0
    for uri in maps:
        for number, text in storage.iter_lines(uri):
            if text.strip():
                try:
                    entry = orjson.loads(text)
                    index.add(entry["recordId"], entry)
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ModelOutputError(f"{uri} line {number}: not a records map line ({exc})") from exc
                count += 1
    return count


# -- masking -----------------------------------------------------------------------------------------

class Masker:
    """The default redactor or a GuardrailRedactor, with what it did to the last text."""

    def __init__(self, redactor: Any, guardrail: str | None = None):
        self.redactor = redactor
        self.guardrail = guardrail

    def method(self) -> tuple[str, str | None]:
        """What masks: a rerun resumes only records masked the same way."""
        if self.redactor is None:
            return "none", None
        return ("guardrail", self.guardrail) if self.guardrail else ("regex", None)

    def mask(self, text: str) -> tuple[str | None, dict[str, Any], bool]:
        """(masked text, masking record, blocked)."""
        if self.redactor is None:
            return text, {"method": "none"}, False
        before = Counter(self.redactor.counts)
        masked = self.redactor.redact(text)
        if self.guardrail:
            counts = dict(self.redactor.last_counts)
            blocked = bool(self.redactor.last_blocked)
            return (None if blocked else masked), {"method": "guardrail", "guardrail": self.guardrail,
                                                   "action": self.redactor.last_action, "masked": counts}, blocked
        after = Counter(self.redactor.counts)
        after.subtract(before)
        return masked, {"method": "regex", "masked": {k: v for k, v in after.items() if v > 0}}, False


# -- import ------------------------------------------------------------------------------------------

@dataclass
class ImportStats:
    lines: int = 0
    written: int = 0
    resumed: int = 0
    masked_now: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)  # record, file:line and model named, never text
    unanswered: int = 0  # map records with no output line

    def problem(self, base: dict[str, Any], rid: str | None, text: str) -> str:
        """Note the problem `text` of record `rid` (its source and model in `base`); returns the line's
        `problem` field: `record R (FILE line N, model M): text`."""
        source, model = base["source"], base["model_id"]
        if len(self.problems) < 50:
            self.problems.append(Problem(f"record {rid or '?'}", f"{text} (model {model})",
                                         f"{source['file']}:{source['line']}"))
        return f"record {rid or '?'} ({source['file']} line {source['line']}, model {model}): {text}"


def job_info(storage: Storage, out_file: str) -> dict[str, Any]:
    """`job.json` beside a fetched .jsonl.out (written by `gtkit bedrock fetch`), if any."""
    uri = join_uri(out_file.rsplit("/", 1)[0], "job.json") if "/" in out_file else "job.json"
    return storage.read_json(uri) if storage.exists(uri) else {}


def _resume(path: Path, index: LabelIndex) -> int:
    """Records already masked (or blocked by the guardrail), from a finished import and a killed run's journal."""
    count = 0
    for candidate in (path, path.with_name(path.name + ".partial")):
        if not candidate.exists():
            continue
        with candidate.open("rb") as fh:
            for _, raw in iter_raw_lines(fh, str(candidate)):
                try:
                    entry = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue  # the journal's last line, cut by the kill
                if entry.get("status") in ("ok", "blocked") and entry.get("masking"):
                    index.add(entry["key"], entry)
                    count += 1
    return count


def iter_output_lines(storage: Storage, uri: str) -> Iterator[tuple[int, bytes]]:
    with storage.open_read(uri, binary=True) as fh:
        for number, raw in iter_raw_lines(fh, uri):
            if raw.strip():
                yield number, raw


def convert(raw: bytes, *, number: int, file: str, model_id: str, job_arn: str | None,
            index: LabelIndex, masker: Masker, stats: ImportStats) -> dict[str, Any]:
    """One .jsonl.out line as an ImportedModelOutput dict (every line gives one, whatever its state)."""
    base: dict[str, Any] = {"model_id": model_id, "family": family_of(model_id), "job_arn": job_arn,
                            "source": {"file": file, "line": number}}
    try:
        line = orjson.loads(raw)
        if not isinstance(line, dict):
            raise orjson.JSONDecodeError("not an object", "", 0)
    except orjson.JSONDecodeError:
        found = RECORD_ID.search(raw)
        rid = found.group(1).decode() if found else None
        return _joined(base, rid, index, "truncated", f"the line is cut off or not JSON ({len(raw)} bytes); rerun "
                       "the job for it or fetch the file again", stats)
    rid = line.get("recordId")
    rid = rid if isinstance(rid, str) else None
    model_input = line.get("modelInput")
    base["prompt"] = prompt_of(model_input)
    base["params"] = params_of(model_input)
    if "error" in line and "modelOutput" not in line:
        error = line["error"] if isinstance(line["error"], dict) else {"message": str(line["error"])}
        code, message = error.get("errorCode"), error.get("errorMessage", error.get("message"))
        base["error"] = {"code": code if isinstance(code, int | str) and not isinstance(code, bool) else None,
                         "message": None if message is None else str(message)[:2000]}
        return _joined(base, rid, index, "error", f"the model failed it (error {base['error']['code']})", stats)
    output = line.get("modelOutput")
    family = base["family"] or (guess_family(output) if isinstance(output, dict) else None)
    base["family"] = family
    try:
        if family is None:
            raise ShapeError("no known family for this model id or output")
        got = extract(family, output)
    except ShapeError as exc:
        if family != "nova" and isinstance(output, dict) and "output" in output:  # a Converse job of any model
            try:
                got = extract("nova", output)
            except ShapeError:
                got = None
        else:
            got = None
        if got is None:
            keys = sorted(output) if isinstance(output, dict) else type(output).__name__
            return _joined(base, rid, index, "unknown-shape", f"its output ({family or 'unknown family'}) has no "
                           f"known shape: {exc}; its keys: {keys}", stats)
    base.update(stop_reason=got.stop_reason if isinstance(got.stop_reason, str) else None,
                usage={"input_tokens": got.input_tokens, "output_tokens": got.output_tokens})
    entry = _joined(base, rid, index, "ok", None, stats)
    if entry["status"] != "ok":
        return entry
    text, masking, blocked = masker.mask(got.text)
    entry.update(text=text, masking=masking)
    if blocked:
        entry.update(status="blocked",
                     problem=stats.problem(base, rid, f"guardrail {masker.guardrail} blocked the text"))
    stats.masked_now += 1
    return entry


def _joined(base: dict[str, Any], rid: str | None, index: LabelIndex, status: str, problem: str | None,
            stats: ImportStats) -> dict[str, Any]:
    """The line's entry; `problem`: what is wrong with it, noted in `stats` (with the record's place)."""
    found = index.take(rid) if rid else None
    if found is None and rid is not None:
        status = "unjoined" if status == "ok" else status
        problem = problem or "its recordId is in none of the records maps (another export's output?)"
    entry = {"key": f"{base['model_id']}/{rid}", "record_id": rid, **base, "status": status,
             "problem": stats.problem(base, rid, problem) if problem else None,
             "id": None, "interaction_id": None, "segment_id": None, "source_ref": None, "line": None, "text": None}
    if found is not None:
        entry.update(id=found["id"], interaction_id=found["interaction_id"], segment_id=found.get("segment_id"),
                     source_ref=found["source_ref"], line=found["line"])
    return entry


def import_outputs(storage: Storage, outputs: list[str], out: str, *, records: str, masker: Masker,
                   model_id: str | None = None, resume: bool = True, scratch_dir: str | None = None,
                   progress: Callable[[int], None] = lambda _n: None) -> ImportStats:
    """Stream `outputs` (.jsonl.out files), join, extract, mask; write one ImportedModelOutput per line to
    `out` (atomically; a local `out` also gets the `.partial` journal that makes reruns resumable)."""
    stats = ImportStats()
    local = not is_s3(out)
    with LabelIndex(scratch_dir) as index, LabelIndex(scratch_dir) as done:
        load_index(storage, records_maps(storage, records), index)
        if resume and local:
            _resume(Path(out), done)
        journal_path = Path(out).with_name(Path(out).name + ".partial") if local else None
        if journal_path is not None:
            journal_path.parent.mkdir(parents=True, exist_ok=True)
        journal: IO[bytes] | None = journal_path.open("ab") if journal_path is not None else None
        try:
            with storage.open_write(out, binary=True, content_type="application/jsonl") as fh:
                for file in outputs:
                    info = job_info(storage, file)
                    model = model_id or info.get("modelId")
                    if not model:
                        raise ModelOutputError(f"{file}: which model? no job.json beside it (gtkit bedrock fetch "
                                           "writes one); pass --model")
                    for number, raw in iter_output_lines(storage, file):
                        stats.lines += 1
                        progress(len(raw) + 1)
                        found = RECORD_ID.search(raw)
                        key = f"{model}/{found.group(1).decode()}" if found else None
                        previous = done.take(key) if key else None
                        masking = (previous or {}).get("masking") or {}
                        if previous is not None and previous["source"]["file"] == file \
                                and (masking.get("method"), masking.get("guardrail")) == masker.method():
                            index.take(previous["record_id"])  # joined before: not "unanswered"
                            entry = previous
                            stats.resumed += 1
                        else:
                            entry = convert(raw, number=number, file=file, model_id=model,
                                            job_arn=info.get("jobArn"), index=index, masker=masker, stats=stats)
                            ImportedModelOutput.model_validate(entry)  # a stray key is a defect
                            if journal is not None and entry.get("masking"):  # a masking call was spent on it
                                journal.write(orjson.dumps(entry) + b"\n")
                                journal.flush()
                        stats.by_status[entry["status"]] += 1
                        fh.write(orjson.dumps(entry) + b"\n")
                        stats.written += 1
                stats.unanswered = index.unused()
        finally:
            if journal is not None:
                journal.close()
    if journal_path is not None:  # the import is complete and committed: the journal is no longer needed
        journal_path.unlink(missing_ok=True)
    return stats


# -- pre-filled answers for `gtkit manifest build --model-outputs` -----------------------------------

CONTENT_ID = re.compile(r"/content\.([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class PreContentIndex:
    """Imported model outputs by interaction and content field: what `manifest build` pre-fills.

    Only `ok` outputs about a whole item (no segment) are used; the first per (interaction, field)
    wins and the others are counted as candidates for a comparison task. Lookups happen on one
    thread (the builder's input order), so a SQLite scratch table serves."""

    index: LabelIndex
    fields: set[str] = field(default_factory=set)
    loaded: int = 0
    attached: int = 0
    not_used: Counter[str] = field(default_factory=Counter)

    def take(self, interaction_id: str) -> dict[str, dict[str, Any]]:
        out = {}
        for name in sorted(self.fields):
            found = self.index.take(f"{interaction_id}\0{name}")
            if found is not None:
                out[name] = found
        self.attached += bool(out)
        return out


def load_pre_content(storage: Storage, uri: str, index: LabelIndex, field_name: str | None = None) -> PreContentIndex:
    """Read `gtkit bedrock import` output into `index`; counts what is not used and why."""
    pre = PreContentIndex(index)
    seen: set[str] = set()
    for number, text in storage.iter_lines(uri):
        if not text.strip():
            continue
        try:
            record = ImportedModelOutput.model_validate_json(text)
        except ValueError as exc:
            raise ModelOutputError(f"{uri} line {number}: not a `gtkit bedrock import` record "
                                   f"({str(exc).splitlines()[0]})") from None
        if record.status != "ok" or record.text is None:
            pre.not_used[f"status {record.status}"] += 1
            continue
        if record.segment_id is not None or record.interaction_id is None:
            pre.not_used["about a segment, not the whole item"] += 1
            continue
        found = CONTENT_ID.search(record.id or "")
        name = field_name or (found.group(1) if found else None)
        if name is None:
            pre.not_used["no content field (pass --model-output-field)"] += 1
            continue
        key = f"{record.interaction_id}\0{name}"
        if key in seen:
            pre.not_used["another output for the same field (a comparison candidate)"] += 1
            continue
        seen.add(key)
        prompt = record.prompt.model_dump() if record.prompt else {"system": "", "prompt": ""}
        index.add(key, {"value": record.text, "model_id": record.model_id, "record_id": record.record_id,
                        "key": record.key, "system": prompt["system"], "prompt": prompt["prompt"],
                        "params": record.params, "source": "bedrock-batch"})
        pre.fields.add(name)
        pre.loaded += 1
    return pre
