"""Escalation: tickets approaching or past a deadline (component ``"complaints"``).

A periodic check on the injected clock marks deadlines, set-based: one UPDATE
... RETURNING per level over ``complaint_deadlines`` (no per-ticket loop), so it
stays cheap with thousands of open tickets.

* *approaching*: ``warn_at`` passed (``warn_fraction`` of the allowed time used;
  urgent tickets at once), not yet met;
* *overdue*: ``due_at`` passed, not met.

Each new mark is logged once as a structured line for other systems to pick up::

    complaint-alert ticket=TS-2026-000123 deadline=answer state=overdue due=2026-10-12T07:00:00+00:00

(no patient data), and :meth:`ComplaintsComponent.alerts` lists every open alert
for the supervisors' dashboard.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Callable

from sqlalchemy import and_, select, update

from . import service as svc
from .models import ComplaintDeadline, ComplaintTicket
from .workdays import to_datetime

log = logging.getLogger("callcenter.complaints")
alert_log = logging.getLogger("callcenter.complaints.alerts")

_OPEN_TICKET = select(ComplaintTicket.id).where(ComplaintTicket.status != "closed")


def _mark(session, now: dt.datetime, level: str, condition) -> list[int]:
    D = ComplaintDeadline
    stmt = (update(D).where(D.active.is_(True), D.met_at.is_(None), D.ticket_id.in_(_OPEN_TICKET),
                            condition)
            .values(level=level, alerted_at=now).returning(D.id))
    return list(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())


def _describe(session, where) -> list[dict]:
    D, T = ComplaintDeadline, ComplaintTicket
    rows = session.execute(
        select(D.id, D.kind, D.level, D.due_at, D.warn_at, D.alerted_at, D.round, T.id, T.number,
               T.severity, T.category, T.department, T.status, T.assigned_to)
        .join(T, T.id == D.ticket_id).where(where).order_by(D.due_at, D.id)).all()
    return [{"deadline_id": r[0], "deadline": r[1], "state": r[2],
             "due_at": to_datetime(r[3]).isoformat(), "warn_at": to_datetime(r[4]).isoformat(),
             "alerted_at": to_datetime(r[5]).isoformat() if r[5] else None, "round": r[6],
             "ticket_id": r[7], "ticket": r[8], "severity": r[9], "category": r[10],
             "department": r[11], "status": r[12], "assigned_to": r[13]} for r in rows]


def scan(session, now: dt.datetime | float) -> list[dict]:
    """Mark deadlines that became approaching/overdue at ``now``; return the new alerts."""
    now = to_datetime(now).astimezone(dt.timezone.utc)
    D = ComplaintDeadline
    overdue = _mark(session, now, "overdue", and_(D.due_at <= now, D.level != "overdue"))
    approaching = _mark(session, now, "approaching", and_(D.warn_at <= now, D.due_at > now, D.level == "ok"))
    ids = overdue + approaching
    new = _describe(session, D.id.in_(ids)) if ids else []
    for a in new:
        alert_log.warning("complaint-alert ticket=%s deadline=%s state=%s due=%s",
                          a["ticket"], a["deadline"], a["state"], a["due_at"])
    return new


def open_alerts(session) -> list[dict]:
    """Every unmet deadline of an open ticket that is approaching or overdue."""
    D = ComplaintDeadline
    return _describe(session, and_(D.active.is_(True), D.met_at.is_(None),
                                   D.level.in_(("approaching", "overdue")),
                                   D.ticket_id.in_(_OPEN_TICKET)))


def check(session, now: dt.datetime | float, complaints: svc.Complaints) -> tuple[list[dict], list[dict]]:
    """One escalation pass in one transaction: (new alerts, all open alerts)."""
    new = scan(session, now)
    complaints.retry_pending_followups(session)
    return new, open_alerts(session)


class ComplaintsComponent:
    """Runs :func:`check` every ``interval`` seconds of the injected clock."""

    name = "complaints"

    def __init__(self, db, clock, *, complaints: svc.Complaints, interval: float = 60.0):
        self.db, self.clock, self.interval = db, clock, interval
        self.complaints = complaints
        self._alerts: list[dict] = []
        self._subscribers: list[Callable[[list[dict], list[dict]], Any]] = []
        self._watchers: list[Callable[[list[dict]], Any]] = []
        self._lock = asyncio.Lock()
        self._call = None
        self._task: asyncio.Future | None = None
        self._stopped = False

    def alerts(self) -> list[dict]:
        """Open alerts (approaching/overdue, most urgent first), no patient data."""
        return list(self._alerts)

    def subscribe(self, callback: Callable[[list[dict], list[dict]], Any]) -> None:
        """``callback(new_alerts, all_open_alerts)`` after every check that found something new."""
        self._subscribers.append(callback)

    def watch(self, callback: Callable[[list[dict]], Any]) -> None:
        """``callback(all_open_alerts)`` whenever that list changed: new alerts, and also
        alerts that went away (deadline met, ticket closed) — what a dashboard needs."""
        self._watchers.append(callback)

    def unsubscribe(self, callback) -> None:
        for group in (self._subscribers, self._watchers):
            if callback in group:
                group.remove(callback)

    async def refresh(self) -> list[dict]:
        """Check now (a ticket changed), outside the periodic rhythm; errors are logged."""
        if self._stopped:
            return []
        try:
            return await self.check()
        except Exception:  # noqa: BLE001 - the periodic check tries again
            log.exception("complaint escalation check failed")
            return []

    async def start(self) -> None:
        self._stopped = False
        await self.check()
        self._schedule()

    async def stop(self) -> None:
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def idle(self) -> None:
        """Wait for a check the clock started (tests advance a Clock, then await this)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def check(self) -> list[dict]:
        async with self._lock:  # one pass at a time (periodic and on-demand)
            new, current = await self.db.run(check, self.clock.seconds(), self.complaints)
            changed = _signature(current) != _signature(self._alerts)
            self._alerts = current
        calls: list = []
        if new:
            calls += [(cb, (new, current)) for cb in self._subscribers]
        if new or changed:
            calls += [(cb, (current,)) for cb in self._watchers]
        for cb, args in calls:
            try:
                cb(*args)
            except Exception:  # noqa: BLE001 - a dashboard bug must not stop escalation
                log.exception("complaint alert subscriber failed")
        return new

    def _schedule(self) -> None:
        if not self._stopped:
            self._call = self.clock.callLater(self.interval, self._tick)

    def _tick(self) -> None:
        self._call = None

        async def run() -> None:
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - keep checking; the next pass retries
                log.exception("complaint escalation check failed")
            finally:
                self._schedule()

        self._task = asyncio.ensure_future(run())


def _signature(alerts: list[dict]) -> list[tuple]:
    return [(a["deadline_id"], a["state"]) for a in alerts]
