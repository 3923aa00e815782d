"""The staffing-plan report for the web: the 7 days after the period's end, off the event loop."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ..forecast import NotEnoughHistory
from ..staffing_plan import load_plan

PLAN_DAYS = 7


async def staffing_plan(app, end: dt.date) -> dict:
    """Plan for ``end``+1 .. ``end``+7 from the complete days before it (never today's partial day)."""
    h = app.config.hospital
    tz = ZoneInfo(h.timezone)
    today = dt.datetime.fromtimestamp(app.clock.seconds(), tz).date()
    days = [end + dt.timedelta(days=i) for i in range(1, PLAN_DAYS + 1)]
    try:
        return await app.db.run(load_plan, app.domain.complaints.calendar, tz=tz, end=min(days[0], today),
                                days=days, target=float(h.answer_target_seconds),
                                goal=float(app.config.web.staffing_goal),
                                short_abandon=float(h.short_abandon_seconds))
    except NotEnoughHistory as e:
        return {"rows": [], "columns": [], "history_error": str(e)}
