"""The recordings search page (``GET /recordings/`` from a browser): find a recording by
day, agent, queue, caller number or complaint ticket and play it in the page.

The same search and audit as the JSON list (:meth:`RecordingsHttp.find`); times in the
hospital's local time; the ``<audio>`` element loads nothing until the user presses
play (``preload="none"``), so only real plays reach the audit (:mod:`recordings.plays`).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from callcenter.web.http import BadRequest, Req, Response
from callcenter.web.i18n import t

from . import catalog
from .models import Recording
from .search import KINDS, STATUSES


def _choices(s) -> tuple[list[tuple[str, str]], list[str]]:
    """Agents (interface, name) and queues to choose from: users with a phone, and the
    agents and queues the catalogue has seen."""
    from callcenter.store.models import User

    agents = {u.interface: u.display_name or u.username
              for u in s.scalars(select(User).where(User.interface != ""))}
    for iface, name in s.execute(select(Recording.agent, Recording.agent_name)
                                 .where(Recording.agent.is_not(None)).distinct()):
        agents.setdefault(iface, name or iface)
    queues = sorted(q for (q,) in s.execute(select(Recording.queue).where(Recording.queue.is_not(None)).distinct()))
    return sorted(agents.items(), key=lambda kv: kv[1]), queues


_LABELS = {"from": "rec.from", "to": "rec.to", "agent": "rec.agent", "queue": "rec.queue", "number": "rec.number",
           "ticket": "rec.ticket", "status": "rec.status", "kind": "rec.kind", "uniqueid": "rec.call",
           "limit": "rec.limit", "offset": "rec.offset"}


def _said(lang: str, exc: BadRequest) -> str:
    """A refused search parameter in the reader's words (the field named)."""
    if exc.field not in _LABELS:
        return t(lang, "error.bad_request", detail=str(exc))
    return t(lang, "rec.bad", field=t(lang, _LABELS[exc.field]), why=t(lang, "rec.bad." + exc.field))


def _ticket_numbers(s, ids: set[int]) -> dict[int, str]:
    from callcenter.complaints.models import ComplaintTicket

    if not ids:
        return {}
    return dict(s.execute(select(ComplaintTicket.id, ComplaintTicket.number).where(ComplaintTicket.id.in_(ids))).all())


async def page(app, req: Req) -> Response:
    http = app.recordings
    who, ip = req.user.username, req.remote
    error, query = "", None
    try:
        query = http.parse_search(req.args)
    except BadRequest as exc:
        error = _said(req.lang, exc)

    def fetch(s):
        nonlocal error
        rows: list = []
        if query is not None:
            try:
                with s.begin_nested():
                    rows = [{**r.as_dict(), "caller_number": r.caller_number} for r in http.find(s, who, ip, query)]
            except BadRequest as exc:  # an unknown ticket: said on the page
                error = _said(req.lang, exc)
        return rows, _choices(s), _ticket_numbers(s, {r["ticket_id"] for r in rows if r["ticket_id"]})

    rows, (agents, queues), tickets = await app.db.run(fetch)
    tz = http.tz
    names = dict(agents)

    def local(iso: str | None) -> str:
        if not iso:
            return "—"
        return catalog.as_utc(dt.datetime.fromisoformat(iso)).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    def length(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        m, s = divmod(int(round(seconds)), 60)
        return f"{m}:{s:02d}"

    limit = query.limit if query is not None else 100
    offset = query.offset if query is not None else 0
    return app.render(req, "recordings.html", 400 if error else 200, rows=rows, agents=agents, queues=queues,
                      names=names, tickets=tickets, kinds=KINDS, statuses=STATUSES, args=req.args, error=error,
                      local=local, length=length,
                      limit=limit, offset=offset, more=len(rows) == limit, timezone=http.settings.timezone)
