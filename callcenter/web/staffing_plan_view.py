"""The staffing-plan report for the web: the 7 days after the period's end, off the event loop."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ..forecast import ForecastError
from ..staffing_plan import HISTORY_WEEKS, NotEnoughHistory, load_plan

PLAN_DAYS = 7
PLAN_SECONDS = 600  # how long a plan made for the page is shown again (it reads complete past days only)


class PlanCache:
    """The plans made in the last :data:`PLAN_SECONDS` (injected clock), by what they were made
    from: the forecast of 8 queues takes 1-2 s of Python, and every other view of the reports
    page (a filter, the next page of abandoned calls, another plan day) would make it again
    from the same complete days.  The plan says when it was made (``made_at``)."""

    MAX = 32

    def __init__(self, clock, seconds: float = PLAN_SECONDS):
        self.clock, self.seconds = clock, seconds
        self._plans: dict[tuple, tuple[float, dict]] = {}

    def get(self, key: tuple) -> dict | None:
        hit = self._plans.get(key)
        if hit is None or self.clock.seconds() - hit[0] >= self.seconds:
            return None
        return hit[1]

    def put(self, key: tuple, plan: dict) -> None:
        now = self.clock.seconds()
        self._plans = {k: v for k, v in self._plans.items() if now - v[0] < self.seconds}
        if len(self._plans) >= self.MAX:
            self._plans.pop(min(self._plans, key=lambda k: self._plans[k][0]))
        self._plans[key] = (now, plan)


async def staffing_plan(app, end: dt.date) -> dict:
    """Plan for ``end``+1 .. ``end``+7 from the complete days before it (never today's partial day)."""
    h = app.config.hospital
    tz = ZoneInfo(h.timezone)
    now = app.clock.seconds()
    today = dt.datetime.fromtimestamp(now, tz).date()
    days = [end + dt.timedelta(days=i) for i in range(1, PLAN_DAYS + 1)]
    target, goal = float(h.answer_target_seconds), float(app.config.web.staffing_goal)
    key = (min(days[0], today), days[0], target, goal, float(h.short_abandon_seconds))
    made = app.plans.get(key)
    if made is not None:
        return made
    made_at = dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds")
    try:
        plan = await app.db.run(load_plan, app.domain.complaints.calendar, tz=tz, end=min(days[0], today),
                                days=days, target=target, goal=goal, short_abandon=float(h.short_abandon_seconds))
    except NotEnoughHistory as e:  # the usual case on a new system: the page says it in the user's language
        plan = {"rows": [], "columns": [], "history_error": str(e), "no_history": True,
                "history_weeks": HISTORY_WEEKS}
    except ForecastError as e:
        plan = {"rows": [], "columns": [], "history_error": str(e)}
    plan["made_at"] = made_at
    app.plans.put(key, plan)
    return plan


COLOURS = ("#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#c62828")


def plan_svg(rows: list[dict], *, title: str, width: int = 720, height: int = 220) -> str:
    """Agents needed per half hour over the plan's days, one step line per queue (standalone SVG)."""
    from xml.sax.saxutils import escape

    if not rows:
        return ""
    left, bottom, top, right = 36, 34, 28, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    days = sorted({r["day"] for r in rows})
    queues = sorted({r["queue"] for r in rows})
    peak = max(r["agents_needed"] for r in rows) or 1
    step = plot_w / (len(days) * 48)

    def x(r) -> float:
        h, m = r["time"].split(":")
        return left + (days.index(r["day"]) * 48 + int(h) * 2 + int(m) // 30) * step

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{escape(title)}" class="chart" id="plan-chart">',
             f'<title>{escape(title)}</title>',
             f'<text x="{left}" y="16" font-size="13" fill="#222">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#555"/>',
             f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end" fill="#555">{peak}</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end" fill="#555">0</text>']
    for i, d in enumerate(days):
        parts.append(f'<text x="{left + (i * 48 + 24) * step:.1f}" y="{top + plot_h + 14}" font-size="11" '
                     f'text-anchor="middle" fill="#333">{escape(d[5:])}</text>')
    for qi, q in enumerate(queues):
        colour = COLOURS[qi % len(COLOURS)]
        pts = []
        for r in sorted((r for r in rows if r["queue"] == q), key=x):
            y = top + plot_h - plot_h * r["agents_needed"] / peak
            pts += [f"{x(r):.1f},{y:.1f}", f"{x(r) + step:.1f},{y:.1f}"]
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="1.5">'
                     f'<title>{escape(q)}</title></polyline>')
        parts.append(f'<text x="{left + 8 + qi * 120}" y="{height - 4}" font-size="11" fill="{colour}">'
                     f'{escape(q)}</text>')
    parts.append("</svg>")
    return "".join(parts)
