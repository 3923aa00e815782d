"""Handlers: the wallboard, and the patient look-up (the agent desk: :mod:`.views_agent`)."""
from __future__ import annotations

import datetime as dt
import logging

from callcenter.store.models import audit

from .http import SSE, BadRequest, Req, Response, as_json
from .lookups import audit_view
from .i18n import catalogue

log = logging.getLogger(__name__)


def _queues(app) -> list[str]:
    names = list(getattr(app.config.web, "queues", []) or [])
    live = app.wallboard._live()
    for q in (live or {}):
        if q not in names:
            names.append(q)
    return names


async def _wallboard(app) -> dict:
    feed = app.wallboard
    if feed.latest is None:
        await feed.refresh()
    return feed.latest


def _complaint_alerts(app) -> dict:
    return app.alerts.document()


def reason_labels(app, lang: str) -> dict[str, str]:
    """The configured pause reasons' labels (``[web] pause_reasons``) as the board's script
    looks them up (``agent.reason.<code>``; ``agent.reason.dialer`` for the dialer's hold)."""
    labels = {f"agent.reason.{r['code']}": r["label"] for r in app.pause_reasons.options(lang)}
    labels["agent.reason.dialer"] = app.pause_reasons.label("dialer:0", lang)
    return labels


async def wallboard_page(app, req: Req) -> Response:
    """The wallboard; ``?kiosk=1``: the wall-screen layout (full screen, no navigation)."""
    kiosk = req.arg("kiosk")
    if kiosk not in ("", "0", "1"):
        raise BadRequest("kiosk must be 1 (wall screen) or 0")
    board = await app.wallboard.snapshot()
    messages = {**catalogue(req.lang, "state."), **catalogue(req.lang, "cp.dl."),
                **catalogue(req.lang, "cp.sev."), **catalogue(req.lang, "cat."),
                **catalogue(req.lang, "wb."), **catalogue(req.lang, "queue."), **reason_labels(app, req.lang)}
    return app.render(req, "wallboard.html", board=board, complaints=_complaint_alerts(app),
                      messages=messages, kiosk=kiosk == "1")


async def wallboard_api(app, req: Req) -> Response:
    server = req.arg("server") or None
    names = [s.name for s in app.config.ami_servers]
    if server is not None and server not in names:
        raise BadRequest(f"server: unknown Asterisk server {server!r} (known: {', '.join(names)})")
    return as_json({**await app.wallboard.snapshot(server), "complaints": _complaint_alerts(app)})


async def wallboard_events(app, req: Req):
    """The full document first (current, with its version), then ``patch`` events."""
    board = await app.wallboard.refresh()
    return SSE("wallboard", [("wallboard", board), ("complaints", _complaint_alerts(app))])


async def patient_api(app, req: Req) -> Response:
    from . import data

    number = req.arg("number").strip()
    if not number or len(number) > 32:
        raise BadRequest("number is required (the caller's phone number)")
    wait = app.lookup_limit.take(req.user.username)  # checked and counted before any await
    if wait > 0:
        resp = as_json({"error": "too many patient look-ups; try again later", "code": "rate_limited",
                        "status": 429}, 429)
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    now = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)
    user, ip, first_refusal_next = req.user.username, req.remote, app.lookup_limit.at_limit(req.user.username)

    def look(s):
        rec = data.patient_record(s, number, "", app.config.hospital.region, now)
        audit_view(s, user, rec, via="lookup", ip=ip)
        if first_refusal_next:  # the next look-up will be refused: say so once, in the audit
            audit(s, user, "patient.lookups_limited", "user", user, burst=app.lookup_limit.burst,
                  window=app.lookup_limit.window, ip=ip)
        return rec
    return as_json(await app.db.run(look))
