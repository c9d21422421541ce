"""What a run did: lines read, records written, skipped with reasons, redactions per type."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from toolkit.export.reader import Problem


@dataclass
class RunSummary:
    command: str
    read: int = 0
    labeled: int = 0
    written: int = 0
    unit: str = "records"
    skipped: Counter = field(default_factory=Counter)      # whole lines / items, by reason
    dropped: Counter = field(default_factory=Counter)      # segments or pairs not turned into records
    redactions: Counter = field(default_factory=Counter)
    reserved: Counter = field(default_factory=Counter)     # Amazon Nova reserved words, per listed spelling
    reserved_mode: str = "rewrite"
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command, "read": self.read, "labeled": self.labeled, "written": self.written,
            "unit": self.unit, "skipped": dict(sorted(self.skipped.items())),
            "dropped": dict(sorted(self.dropped.items())), "redactions": dict(sorted(self.redactions.items())),
            "reserved_words": {"mode": self.reserved_mode, "counts": dict(sorted(self.reserved.items()))},
            "files": self.files, "problems": [p.__dict__ for p in self.problems], **self.extra,
        }

    def rows(self) -> list[tuple[str, str]]:
        """(what, how many) rows for the summary table, in reading order."""
        rows = [("lines read", str(self.read)), ("labelled items", str(self.labeled)),
                (f"{self.unit} written", str(self.written))]
        rows += [(f"skipped: {k}", str(v)) for k, v in sorted(self.skipped.items())]
        rows += [(f"not exported: {k}", str(v)) for k, v in sorted(self.dropped.items())]
        rows += [(f"redacted: {k}", str(v)) for k, v in sorted(self.redactions.items())]
        done = {"rewrite": "rewritten", "keep": "kept"}.get(self.reserved_mode, self.reserved_mode)
        rows += [(f"reserved word {done}: {k}", str(v)) for k, v in sorted(self.reserved.items())]
        rows += [(k, str(v)) for k, v in self.extra.items() if isinstance(v, int | float | str)]
        return rows


def render_summary(summary: RunSummary, console: Any) -> None:
    """Rich table on `console` (stderr), then the first problems by line number (no content)."""
    from rich.table import Table

    table = Table(title=f"gtkit {summary.command}", show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("count", justify="right")
    for what, count in summary.rows():
        table.add_row(what, count)
    console.print(table)
    for problem in summary.problems[:10]:
        console.print(f"  {problem.where()}: {problem.reason}: {problem.detail}", highlight=False,
                      markup=False, soft_wrap=True)
    if len(summary.problems) > 10:
        console.print(f"  ... {len(summary.problems) - 10} more problems listed in --summary-json", markup=False)
    for uri in summary.files[:5]:
        console.print(f"  wrote {uri}", highlight=False, markup=False)
    if len(summary.files) > 5:
        console.print(f"  ... and {len(summary.files) - 5} more files", markup=False)
