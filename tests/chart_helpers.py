"""Read back the inline SVG bar charts of a page (toolkit/export/report.py bar_chart): per chart title,
the bars as (label, shown value, bar width)."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
_SECTION = re.compile(r"<section><h3>(.*?)</h3>(<svg\b.*?</svg>|<p class=muted>No data\.</p>)</section>", re.S)


def parse_charts(page: str) -> dict[str, list[tuple[str, str, float]]]:
    out: dict[str, list[tuple[str, str, float]]] = {}
    for title, body in _SECTION.findall(page):
        bars: list[tuple[str, str, float]] = []
        if body.startswith("<svg"):
            svg = ET.fromstring(body.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))
            children = list(svg)
            assert len(children) % 3 == 0, "each bar is a label, a rect and a value"
            for label, rect, value in zip(children[::3], children[1::3], children[2::3], strict=True):
                assert (label.tag, rect.tag, value.tag) == (f"{SVG}text", f"{SVG}rect", f"{SVG}text")
                assert not any("style" in el.attrib for el in (label, rect, value))  # nothing the CSP refuses
                bars.append((label.text or "", value.text or "", float(rect.attrib["width"])))
        out[html.unescape(title)] = bars
    return out
