"""Issue 17: the admin workers page's charts in chromium, under the service's Content-Security-Policy.
The page's SVG bars are drawn on the server and styled by portal.css (no inline style, no script):
they must render (boxes of the widths drawn, the stylesheet's fill) with no policy violation."""

from __future__ import annotations

import pytest
from test_serve_browser import PASSWORD, new_page, sign_in
from test_worker_report import gt_layout

from toolkit.contract import load_label_schema
from toolkit.service import jobs, migrate, people
from toolkit.service.db import Database
from toolkit.service.portal import PortalServer
from toolkit.service.web import ServeConfig, create_app
from toolkit.service.web.app import stop

pytestmark = pytest.mark.browser


def test_worker_charts_render_without_csp_violations(browser, tmp_path):
    db = Database.for_data_dir(tmp_path / "data")
    migrate.upgrade(db)
    people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    team = people.create_team(db, "calls")
    out = tmp_path / "out"
    job_dir = gt_layout(out)  # out/calls-job: a Ground Truth-style output with a gold object
    manifest = job_dir / "manifests" / "output" / "output.manifest"
    job = jobs.create_job(db, name="calls-job", manifest=str(manifest), schema=load_label_schema("call-center"),
                          team_id=team.id, output_uri=str(out), workers_per_object=2)
    app = create_app(ServeConfig(db=db, output_uri=str(out), secure_cookies=False, run_queue=False))
    errors: list[str] = []
    try:
        with PortalServer(app) as server:
            ctx, page = new_page(browser, errors)
            sign_in(page, server.url, "admin@example.org")
            page.goto(f"{server.url}/admin/jobs/{job.id}/workers")
            page.wait_for_selector("#worker-charts svg")
            charts = page.evaluate("""() => [...document.querySelectorAll('#worker-charts section')].map(s => ({
                title: s.querySelector('h3').textContent,
                bars: [...s.querySelectorAll('rect')].map(r => ({
                    drawn: Number(r.getAttribute('width')), shown: r.getBoundingClientRect().width,
                    fill: getComputedStyle(r).fill})),
                values: [...s.querySelectorAll('text')].filter((t, i) => i % 2 === 1).map(t => t.textContent)}))""")
            ctx.close()
    finally:
        stop(app)
        db.dispose()
    assert errors == [], "\n".join(errors)
    by_title = {c["title"]: c for c in charts}
    # in pseudonym order: compared as sets (test_worker_report pins who has which)
    assert sorted(by_title["Gold F1 per worker"]["values"]) == ["0.571", "1"]  # 2 of the 3 answered gold
    assert sorted(by_title["Tasks per hour"]["values"]) == ["120", "30", "45"]
    assert sorted(by_title["Time per task relative to media duration (median)"]["values"]) == [
        "1.50 ×", "3 ×", "5.25 ×"]
    for chart in charts:
        for bar in chart["bars"]:
            assert bar["fill"] == "rgb(43, 123, 185)"  # portal.css reached the SVG: the stylesheet is allowed
            assert bar["shown"] == pytest.approx(bar["drawn"], abs=0.5) and bar["shown"] > 0
