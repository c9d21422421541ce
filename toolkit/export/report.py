"""`gtkit report`: a self-contained HTML dataset report of an output manifest.

Streams the manifest once into small aggregates (counters and fixed histograms), then renders one
HTML page with inline CSS and inline SVG bar charts: no scripts, no external resources. Every
piece of text from the data (labels, field names, reasons) is HTML-escaped. Annotation text is
never shown: the report is counts and distributions only.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from toolkit.contract import LabelSchema, load_label_schema
from toolkit.contract.consolidated import ConsolidatedComparison
from toolkit.export.checks import builtin_schema
from toolkit.export.reader import ManifestReader
from toolkit.export.summary import RunSummary
from toolkit.export.system_scores import outcomes_from_votes, system_scores
from toolkit.labeling.compare import candidate_systems
from toolkit.storage import Storage

DURATION_BINS: list[tuple[float, float, str]] = [
    (0, 0.5, "< 0.5 s"), (0.5, 1, "0.5-1 s"), (1, 2, "1-2 s"), (2, 5, "2-5 s"), (5, 10, "5-10 s"),
    (10, 30, "10-30 s"), (30, float("inf"), ">= 30 s")]
AGREEMENT_BINS = [(i / 10, (i + 1) / 10, f"{i / 10:.1f}-{(i + 1) / 10:.1f}") for i in range(10)]


def _bin(value: float, bins: Sequence[tuple[float, float, str]]) -> str:
    for lo, hi, name in bins:
        if lo <= value < hi:
            return name
    return bins[-1][2]


@dataclass
class ReportData:
    summary: RunSummary
    schemas: Counter = field(default_factory=Counter)
    jobs: Counter = field(default_factory=Counter)
    label_attributes: Counter = field(default_factory=Counter)
    segments: int = 0
    media_seconds: float = 0.0
    labels: Counter = field(default_factory=Counter)                   # (category, label)
    durations: Counter = field(default_factory=Counter)
    segment_agreement: Counter = field(default_factory=Counter)
    item_agreement: Counter = field(default_factory=Counter)
    coverage: defaultdict = field(default_factory=lambda: defaultdict(float))   # category -> seconds
    label_seconds: defaultdict = field(default_factory=lambda: defaultdict(float))
    content: defaultdict = field(default_factory=lambda: defaultdict(Counter))  # field -> value -> n
    attributes: defaultdict = field(default_factory=lambda: defaultdict(Counter))  # segment field -> value -> n
    workers: Counter = field(default_factory=Counter)
    # comparison tasks: job -> [(winner system, loser system, weight)], preferred positions, tasks
    outcomes: defaultdict = field(default_factory=lambda: defaultdict(list))
    positions: defaultdict = field(default_factory=lambda: defaultdict(Counter))
    expected_positions: defaultdict = field(default_factory=lambda: defaultdict(Counter))  # without bias
    comparisons: Counter = field(default_factory=Counter)


def collect(storage: Storage, labels: str, label_attribute: str | None = None,
            progress: Callable[[int], None] | None = None) -> ReportData:
    reader = ManifestReader(storage, labels, label_attribute, progress=progress)
    data = ReportData(summary=RunSummary(command="report"))
    for item in reader:
        label = item.label
        data.schemas[label.label_schema or "(unnamed)"] += 1
        data.jobs[item.job_name or "(no job name)"] += 1
        data.label_attributes[item.attribute] += 1
        data.workers[str(label.worker_count)] += 1
        duration = item.duration or 0.0
        data.media_seconds += duration
        if label.agreement.overall is not None:
            data.item_agreement[_bin(label.agreement.overall, AGREEMENT_BINS)] += 1
        covered: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for seg in label.segments:
            data.segments += 1
            data.labels[(seg.category, seg.label)] += 1
            length = max(0.0, seg.end - seg.start)
            data.durations[_bin(length, DURATION_BINS)] += 1
            data.segment_agreement[_bin(seg.agreement, AGREEMENT_BINS)] += 1
            data.label_seconds[(seg.category, seg.label)] += length
            covered[seg.category].append((seg.start, seg.end))
            for name, value in seg.attributes.items():
                for v in value if isinstance(value, list) else [value]:
                    data.attributes[name][str(v)] += 1
        for category, spans in covered.items():
            data.coverage[category] += _union_length(spans)
        if label.comparison is not None:
            _collect_comparison(data, item.job_name or "(no job name)", label.comparison, item.data)
        for name, result in label.content.items():
            value = result.mean if result.mean is not None else result.value
            values = value if isinstance(value, list) else [value]
            for v in values:
                # Mean ratings are binned to the nearest half point.
                key = f"{round(v * 2) / 2:g}" if isinstance(v, float) else str(v)
                data.content[name][key] += 1
    stats = reader.stats
    data.summary.read, data.summary.labeled = stats.lines, stats.labeled
    data.summary.skipped.update(stats.skipped)
    data.summary.problems = stats.problems
    return data


def _collect_comparison(data: ReportData, job: str, comp: ConsolidatedComparison, line: dict) -> None:
    # System ids from the manifest line's candidates (the Lambda never saw them); the candidate id
    # stands in for a missing one.
    systems = {cid: system or f"candidate {cid}" for cid, system in
               (candidate_systems(line) or dict.fromkeys(comp.systems)).items()}
    data.comparisons[job] += 1
    data.outcomes[job].extend(outcomes_from_votes(comp.votes, systems))
    data.positions[job].update(comp.preferred_positions)
    # Without position bias a preference lands on each of the task's N positions with chance 1/N.
    preferences = sum(comp.preferred_positions.values())
    for letter in "ABCD"[:len(systems)]:
        data.expected_positions[job][letter] += preferences / len(systems)


def comparison_section(data: ReportData) -> list[str]:
    """Per job: system win rates with 95 % Wilson intervals, Bradley-Terry strengths, and where the
    preferred candidate was shown (position bias)."""
    if not data.comparisons:
        return []
    out = ["<h2>Comparisons: system scores</h2>",
           "<p class=muted>Pairwise outcomes from each task's consolidated votes (no preference = a tie, half a "
           "win each way). Win rate with a 95 % Wilson interval; Bradley-Terry strength (sums to 1; "
           "P(i beats j) = s<sub>i</sub> / (s<sub>i</sub> + s<sub>j</sub>)).</p>"]
    for job in sorted(data.comparisons):
        rows = "".join(
            f"<tr><th>{esc(s.system)}</th><td>{s.games:g}</td><td>{s.wins:g}</td><td>{s.win_rate:.3f}</td>"
            f"<td>{s.ci_low:.3f} - {s.ci_high:.3f}</td><td>{s.strength:.3f}</td></tr>"
            for s in system_scores(data.outcomes[job]))
        out.append(f"<h3>{esc(job)}: {data.comparisons[job]} tasks</h3><table><tr><th>System</th><th>Games</th>"
                   f"<th>Wins</th><th>Win rate</th><th>95 % CI</th><th>Bradley-Terry</th></tr>{rows}</table>")
        out.append(bar_chart(f"{job}: shown position of the preferred candidate",
                             sorted(data.positions[job].items())))
        expected = data.expected_positions[job]
        out.append(table([(f"Position {letter}: preferred / expected without position bias",
                           f"{data.positions[job].get(letter, 0)} / {expected[letter]:.1f}")
                          for letter in sorted(expected)]))
    return out


def _union_length(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for s, e in sorted(spans):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


# -- rendering -----------------------------------------------------------------------------------
def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def bar_chart(title: str, rows: Sequence[tuple[str, float]], unit: str = "", width: int = 640,
              digits: int = 1) -> str:
    """Horizontal bars as inline SVG; labels are escaped text nodes. A fractional value is shown with
    `digits` decimals."""
    if not rows:
        return f"<section><h3>{esc(title)}</h3><p class=muted>No data.</p></section>"
    label_w, bar_h, gap = 200, 18, 6
    height = len(rows) * (bar_h + gap) + gap
    top = max(v for _, v in rows) or 1
    scale = (width - label_w - 80) / top
    parts = [f'<svg role="img" aria-label="{esc(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">']
    for i, (name, value) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        shown = f"{value:.{digits}f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{esc(name[:40])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{max(1.0, value * scale):.1f}" height="{bar_h}" rx="2"/>'
            f'<text x="{label_w + value * scale + 6:.1f}" y="{y + 13}">{esc(shown)}{esc(unit)}</text>')
    parts.append("</svg>")
    return f"<section><h3>{esc(title)}</h3>{''.join(parts)}</section>"


def table(rows: Sequence[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1f2933;max-width:900px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d9e2ec}
h3{font-size:1rem;margin:1.2rem 0 .4rem}table{border-collapse:collapse}
th,td{padding:2px 12px 2px 0;text-align:left;font-weight:normal}td{font-variant-numeric:tabular-nums}
th{color:#52606d}svg text{font-size:12px;fill:#1f2933}svg rect{fill:#2b7bb9}.muted{color:#7b8794}
"""


def render_html(data: ReportData, title: str, schema: LabelSchema | None = None) -> str:
    s = data.summary
    overview = [("Lines read", s.read), ("Labelled items", s.labeled), ("Segments", data.segments),
                ("Media duration (min)", f"{data.media_seconds / 60:.1f}")]
    overview += [(f"Skipped: {k}", v) for k, v in sorted(s.skipped.items())]
    sections = [f"<h1>{esc(title)}</h1>", "<h2>Counts</h2>", table(overview),
                bar_chart("Items per label schema", sorted(data.schemas.items())),
                bar_chart("Items per labeling job", sorted(data.jobs.items())),
                bar_chart("Items by number of workers", sorted(data.workers.items(), key=lambda kv: int(kv[0])))]
    sections += comparison_section(data)
    sections.append("<h2>Labels</h2>")
    by_category: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (category, label), n in sorted(data.labels.items()):
        by_category[category].append((label, n))
    for category, rows in by_category.items():
        sections.append(bar_chart(f"Segments per label: {category}", rows))
    sections.append("<h2>Full-content answers</h2>")
    for name in sorted(data.content):
        counts = data.content[name]
        spec = schema.content_field(name) if schema else None
        if spec is not None and spec.type == "text":
            sections.append(table([(f"{name}: answered", sum(counts.values()))]))
            continue
        rows = _ordered(counts, spec.options if spec is not None and spec.options else None)
        kind = "rating" if spec is not None and spec.type == "rating" else "answers"
        sections.append(bar_chart(f"{name} ({kind})", rows))
    sections.append("<h2>Segments</h2>")
    for name in sorted(data.attributes):
        spec = schema.segment_field(name) if schema else None
        if spec is not None and spec.type == "text":
            continue
        rows = _ordered(data.attributes[name], spec.options if spec is not None and spec.options else None)
        sections.append(bar_chart(f"Segment field: {name}", rows))
    sections.append(bar_chart("Segment duration", [(n, data.durations.get(n, 0)) for _, _, n in DURATION_BINS]))
    sections.append(bar_chart("Segment agreement",
                              [(n, data.segment_agreement.get(n, 0)) for _, _, n in AGREEMENT_BINS]))
    sections.append(bar_chart("Item overall agreement",
                              [(n, data.item_agreement.get(n, 0)) for _, _, n in AGREEMENT_BINS]))
    sections.append("<h2>Per-track coverage</h2>")
    total = data.media_seconds or 1.0
    sections.append(bar_chart("Share of media time covered, per track category",
                              [(c, 100 * v / total) for c, v in sorted(data.coverage.items())], unit="%"))
    sections.append(bar_chart("Labelled seconds per label",
                              [(f"{c}: {lab}", round(v, 1)) for (c, lab), v in sorted(data.label_seconds.items())],
                              unit=" s"))
    body = "\n".join(sections)
    return (f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def _ordered(counts: Counter, options: list[str] | None) -> list[tuple[str, float]]:
    if options:
        rows = [(o, counts.get(o, 0)) for o in options]
        return rows + sorted((k, v) for k, v in counts.items() if k not in options)

    def key(kv: tuple[str, int]) -> tuple[int, float | str]:
        try:
            return (0, float(kv[0]))
        except ValueError:
            return (1, kv[0])

    return sorted(counts.items(), key=key)


def default_title(data: ReportData, labels: str, most: int = 3) -> str:
    """What the labels are: job name(s) and label attribute, e.g. "Dataset report: calls-1
    (label attribute: segments)"; the file name only when the manifest names no job."""
    jobs = [name for name, _ in data.jobs.most_common() if name != "(no job name)"]
    if not jobs:
        what = labels.rstrip("/").rsplit("/", 1)[-1]
    else:
        what = ", ".join(jobs[:most]) + (f" and {len(jobs) - most} more jobs" if len(jobs) > most else "")
    attributes = [name for name, _ in data.label_attributes.most_common()]
    if attributes:
        noun = "label attribute" if len(attributes) == 1 else "label attributes"
        what += f" ({noun}: {', '.join(attributes)})"
    return f"Dataset report: {what}"


def report(storage: Storage, labels: str, out: str, label_attribute: str | None = None,
           schema: str | None = None, title: str | None = None,
           progress: Callable[[int], None] | None = None) -> RunSummary:
    data = collect(storage, labels, label_attribute, progress)
    label_schema = None
    if schema:
        label_schema = load_label_schema(schema)
    elif len(data.schemas) == 1 and next(iter(data.schemas)) != "(unnamed)":
        label_schema = builtin_schema(next(iter(data.schemas)))  # from the data: built-in names only
    page = render_html(data, title or default_title(data, labels), label_schema)
    storage.write_bytes(out, page.encode("utf-8"), content_type="text/html; charset=utf-8")
    data.summary.written = 1
    data.summary.unit = "files"
    data.summary.files = [out]
    return data.summary
