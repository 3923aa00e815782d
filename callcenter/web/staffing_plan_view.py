"""The staffing-plan report for the web: the 7 days after the period's end, off the event loop.

A plan is made from the complete days before it (never today's partial day), on a worker
thread, and shown again for :data:`PLAN_SECONDS`.  The web keeps today's plan made
(:func:`keep_plans`: at start and again before it expires), so a supervisor opening the
reports page never waits for it: its forecast is 1-2 s of Python and SQL for 8 queues.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from zoneinfo import ZoneInfo

from .. import clock as clocks
from ..forecast import ForecastError
from ..staffing_plan import HISTORY_WEEKS, NotEnoughHistory, load_plan

log = logging.getLogger(__name__)

PLAN_DAYS = 7
PLAN_SECONDS = 600  # how long a plan made for the page is shown again (it reads complete past days only)
REFRESH_SECONDS = PLAN_SECONDS * 0.9  # today's plan is made again before the shown one expires


class PlanCache:
    """The plans made in the last :data:`PLAN_SECONDS` (injected clock), by what they were made
    from: the forecast of 8 queues takes 1-2 s, and every other view of the reports page (a
    filter, the next page of abandoned calls, another plan day) would make it again from the
    same complete days.  A plan being made is awaited, not made twice.  The plan says when it
    was made (``made_at``)."""

    MAX = 32

    def __init__(self, clock, seconds: float = PLAN_SECONDS):
        self.clock, self.seconds = clock, seconds
        self._plans: dict[tuple, tuple[float, dict]] = {}
        self.making: dict[tuple, asyncio.Task] = {}

    def get(self, key: tuple) -> dict | None:
        hit = self._plans.get(key)
        if hit is None or self.clock.seconds() - hit[0] >= self.seconds:
            return None
        return hit[1]

    def __len__(self) -> int:
        """Plans kept (stale ones too, until the next ``put``)."""
        return len(self._plans)

    def put(self, key: tuple, plan: dict) -> None:
        now = self.clock.seconds()
        self._plans = {k: v for k, v in self._plans.items() if now - v[0] < self.seconds}
        if len(self._plans) >= self.MAX:
            self._plans.pop(min(self._plans, key=lambda k: self._plans[k][0]))
        self._plans[key] = (now, plan)


def _today(app, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(app.clock.seconds(), tz).date()


def _key(app, first: dt.date) -> tuple:
    """What the plan for ``first`` .. ``first`` + 6 is made from: the history's end (``first``,
    or today when ``first`` is later: complete days only), the last day it plans, the settings.
    A plan covers at least the 8 days from its history's end, so the page's usual views, up to
    today (``first`` tomorrow) and up to yesterday (``first`` today), share one."""
    h = app.config.hospital
    end = min(first, _today(app, ZoneInfo(h.timezone)))
    last = max(first + dt.timedelta(days=PLAN_DAYS - 1), end + dt.timedelta(days=PLAN_DAYS))
    return (end, last, float(h.answer_target_seconds), float(app.config.web.staffing_goal),
            float(h.short_abandon_seconds))


async def _make(app, key: tuple) -> dict:
    """Make the plan of ``key`` on a worker thread and keep it in ``app.plans``."""
    end, last, target, goal, short = key
    tz = ZoneInfo(app.config.hospital.timezone)
    made_at = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc).isoformat(timespec="seconds")
    days = [end + dt.timedelta(days=i) for i in range((last - end).days + 1)]
    try:
        plan = await app.db.run(load_plan, app.domain.complaints.calendar, tz=tz, end=end, days=days,
                                target=target, goal=goal, short_abandon=short)
    except NotEnoughHistory as e:  # the usual case on a new system: the page says it in the user's language
        plan = {"rows": [], "columns": [], "history_error": str(e), "no_history": True,
                "history_weeks": HISTORY_WEEKS}
    except ForecastError as e:
        plan = {"rows": [], "columns": [], "history_error": str(e)}
    plan["made_at"] = made_at
    app.plans.put(key, plan)
    return plan


async def _made(app, key: tuple, *, again: bool = False) -> dict:
    """The plan of ``key``: kept (unless ``again``), being made (awaited), or made now."""
    if not again:
        kept = app.plans.get(key)
        if kept is not None:
            return kept
    task = app.plans.making.get(key)
    if task is None:
        task = asyncio.ensure_future(_make(app, key))
        app.plans.making[key] = task
        task.add_done_callback(lambda _: app.plans.making.pop(key, None))
    return await asyncio.shield(task)  # a viewer who leaves does not stop it for the others


async def staffing_plan(app, end: dt.date) -> dict:
    """Plan for ``end``+1 .. ``end``+7 from the complete days before it (never today's partial day)."""
    first = end + dt.timedelta(days=1)
    plan = await _made(app, _key(app, first))
    days = {(first + dt.timedelta(days=i)).isoformat() for i in range(PLAN_DAYS)}
    return {**plan, "rows": [r for r in plan["rows"] if r["day"] in days]}


async def keep_plans(app) -> None:
    """Make the plan the page shows for today and yesterday (:func:`_key` of tomorrow) at start,
    again every :data:`REFRESH_SECONDS` and just after local midnight; on worker threads, until
    cancelled (``WebApp.close``)."""
    tz = ZoneInfo(app.config.hospital.timezone)
    while True:
        try:
            await _made(app, _key(app, _today(app, tz) + dt.timedelta(days=1)), again=True)
        except Exception:  # noqa: BLE001 - a failed plan (database down) is made at the next view or round
            log.exception("staffing plan: making today's plan failed; trying again in %.0f s", REFRESH_SECONDS)
        now = dt.datetime.fromtimestamp(app.clock.seconds(), tz)
        midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tz)
        await clocks.sleep(app.clock, min(REFRESH_SECONDS, midnight.timestamp() - now.timestamp() + 1.0))


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
