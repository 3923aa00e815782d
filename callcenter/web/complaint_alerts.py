"""Complaint deadline alerts on the wallboard.

The ``complaints`` component (escalation) keeps the open alerts (tickets approaching or
past a deadline) and calls its watchers whenever that list changes; this feed turns the
list into what the wallboard shows and pushes it as event ``complaints`` on the
``wallboard`` SSE topic.  No patient data: ticket number, deadline, state, due time,
severity, category, department, status, handler.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

_ORDER = {"overdue": 0, "approaching": 1}


def alerts_document(alerts: list[dict], *, now: float, tz: ZoneInfo) -> dict[str, Any]:
    """Pure: the component's alert dicts -> the wallboard's complaints panel."""
    rows = []
    for a in alerts:
        due = dt.datetime.fromisoformat(a["due_at"])
        if due.tzinfo is None:
            due = due.replace(tzinfo=dt.timezone.utc)
        rows.append({"ticket": a["ticket"], "ticket_id": a["ticket_id"], "deadline": a["deadline"],
                     "state": a["state"], "due_at": due.isoformat(),
                     "due_local": due.astimezone(tz).strftime("%m-%d %H:%M"),
                     "minutes_left": round((due.timestamp() - now) / 60),
                     "severity": a.get("severity", ""), "category": a.get("category", ""),
                     "department": a.get("department", ""), "status": a.get("status", ""),
                     "assigned_to": a.get("assigned_to", "")})
    rows.sort(key=lambda r: (_ORDER.get(r["state"], 2), r["due_at"], r["ticket"]))
    return {"at": dt.datetime.fromtimestamp(now, tz).isoformat(timespec="seconds"),
            "available": True, "alerts": rows,
            "overdue": sum(r["state"] == "overdue" for r in rows),
            "approaching": sum(r["state"] == "approaching" for r in rows)}


class ComplaintAlertsFeed:
    """Follows the ``complaints`` component; ``document()`` for pages, pushes on change."""

    def __init__(self, app, component=None):
        self.app = app
        self.component = component
        self.tz = ZoneInfo(app.config.hospital.timezone)
        self.pushes = 0
        if component is not None:
            component.watch(self._changed)

    def document(self, alerts: list[dict] | None = None) -> dict[str, Any]:
        if self.component is None:
            return {"at": None, "available": False, "alerts": [], "overdue": 0, "approaching": 0}
        if alerts is None:
            alerts = self.component.alerts()
        return alerts_document(alerts, now=self.app.clock.seconds(), tz=self.tz)

    def _changed(self, current: list[dict]) -> None:
        if self.app.closed:
            return
        self.pushes += 1
        self.app.broker.publish("wallboard", "complaints", self.document(current))

    def close(self) -> None:
        if self.component is not None and hasattr(self.component, "unsubscribe"):
            self.component.unsubscribe(self._changed)
