"""Handlers: the wallboard and the agent desk (queue log-in/pause, screen pop, outcome)."""
from __future__ import annotations

import datetime as dt
import logging

from callcenter.errors import InvalidInput
from callcenter.store.models import audit

from .http import SSE, BadRequest, Req, Response, as_json, redirect
from .lookups import audit_view
from .i18n import catalogue, t

log = logging.getLogger(__name__)

OUTCOMES = ("consultation", "appointment", "query", "complaint", "suggestion", "callback", "other")
CATEGORIES = ("medical", "attitude", "environment", "fees", "communication")
PAUSE_REASONS = ("break", "meal", "training", "paperwork")
QUEUE_ACTIONS = ("login", "logout", "pause", "unpause")


async def _wallboard(app) -> dict:
    feed = app.wallboard
    if feed.latest is None:
        await feed.refresh()
    return feed.latest


def _complaint_alerts(app) -> dict:
    return app.alerts.document()


async def wallboard_page(app, req: Req) -> Response:
    board = await app.wallboard.snapshot()
    messages = {**catalogue(req.lang, "state."), **catalogue(req.lang, "cp.dl."),
                **catalogue(req.lang, "cp.sev."), **catalogue(req.lang, "cat."),
                **catalogue(req.lang, "wb.alert.")}
    return app.render(req, "wallboard.html", board=board, complaints=_complaint_alerts(app),
                      messages=messages)


async def wallboard_api(app, req: Req) -> Response:
    return as_json({**await app.wallboard.snapshot(), "complaints": _complaint_alerts(app)})


async def wallboard_events(app, req: Req):
    board = await app.wallboard.snapshot()
    return SSE("wallboard", [("wallboard", board), ("complaints", _complaint_alerts(app))])


# --- agent desk -------------------------------------------------------------------------------

def _queues(app) -> list[str]:
    names = list(getattr(app.config.web, "queues", []) or [])
    live = app.wallboard._live()
    for q in (live or {}):
        if q not in names:
            names.append(q)
    return names


def agent_status(app, user) -> dict:
    """Which queues this agent's interface is in, and whether it is paused (from the live tracker)."""
    live = app.wallboard._live()
    queues = []
    for q in _queues(app):
        member = None
        for m in ((live or {}).get(q) or {}).get("members", []):
            if user.interface and m.get("interface") == user.interface:
                member = m
        queues.append({"queue": q, "member": member is not None,
                       "paused": bool(member and member.get("paused")),
                       "reason": (member or {}).get("reason") or ""})
    return {"interface": user.interface, "live": live is not None,
            "ami_connected": bool(app.ami.connected), "queues": queues}


async def agent_page(app, req: Req) -> Response:
    pop = app.screenpop.current.get(req.user.username)
    return app.render(req, "agent.html", status=agent_status(app, req.user), pop=pop,
                      outcomes=OUTCOMES, categories=CATEGORIES, reasons=PAUSE_REASONS,
                      notice=req.arg("notice"),
                      messages={**catalogue(req.lang, "pop."), **catalogue(req.lang, "dial."),
                                **_department_names(req.lang)})


def _department_names(lang: str) -> dict[str, str]:
    """The departments as the reminder says them (ivr_flows/spoken/departments.yaml), for the pop."""
    from ivr_flows.segments import load_departments

    return {f"pop.dept.{code}": names[lang] for code, names in load_departments().items()}


async def agent_events(app, req: Req):
    initial = [("status", agent_status(app, req.user))]
    pop = app.screenpop.current.get(req.user.username)
    if pop:
        initial.append(("pop", pop))
    return SSE(f"agent:{req.user.username}", initial)


async def agent_status_api(app, req: Req) -> Response:
    return as_json(agent_status(app, req.user))


async def queue_action(app, req: Req, *, api: bool) -> Response:
    """QueueAdd / QueueRemove / QueuePause for the agent's own interface."""
    from callcenter.ami.gateway import AmiError

    user = req.user
    action = req.form.get("action", "")
    queue = (req.form.get("queue") or "").strip()
    reason = (req.form.get("reason") or "").strip()[:64]
    if action not in QUEUE_ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(QUEUE_ACTIONS)}")
    if not user.interface:
        raise BadRequest(t("en", "agent.no_interface"))
    if action in ("login", "logout") and queue not in _queues(app):
        raise BadRequest(f"queue: unknown {queue!r}")
    if queue and queue not in _queues(app):
        raise BadRequest(f"queue: unknown {queue!r}")
    if action == "pause" and reason and reason not in PAUSE_REASONS:
        raise BadRequest(f"reason must be one of {', '.join(PAUSE_REASONS)}")
    headers: dict[str, str]
    if action == "login":
        headers = {"Action": "QueueAdd", "Queue": queue, "Interface": user.interface,
                   "MemberName": user.display_name, "Paused": "false"}
    elif action == "logout":
        headers = {"Action": "QueueRemove", "Queue": queue, "Interface": user.interface}
    else:
        headers = {"Action": "QueuePause", "Interface": user.interface,
                   "Paused": "true" if action == "pause" else "false"}
        if queue:
            headers["Queue"] = queue
        if action == "pause" and reason:
            headers["Reason"] = reason
    ok, message = False, ""
    try:
        resp = await app.ami.action(headers)
        first = resp[0] if isinstance(resp, list) else resp
        message = first.get("Message") or ""
        ok = (first.get("Response") or "").lower() == "success"
    except AmiError as exc:
        message = str(exc) or exc.__class__.__name__
    await app.db.run(lambda s: audit(s, user.username, f"queue_{action}", "queue", queue or "*",
                                     interface=user.interface, reason=reason, ok=ok, message=message))
    if api:
        return as_json({"ok": ok, "message": message, "action": action, "queue": queue},
                       200 if ok else 502)
    key = "agent.done" if ok else "agent.failed"
    from urllib.parse import quote

    return redirect("/agent?notice=" + quote(t(req.lang, key, what=message or action)))


async def queue_action_form(app, req: Req) -> Response:
    return await queue_action(app, req, api=False)


async def queue_action_api(app, req: Req) -> Response:
    return await queue_action(app, req, api=True)


def _save_outcome(s, complaints, *, user, form: dict, now: dt.datetime, lang: str, region: str) -> dict:
    from callcenter.phones import canonical

    from .models import CallOutcome

    outcome = form.get("outcome", "")
    if outcome not in OUTCOMES:
        raise BadRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
    uniqueid = (form.get("uniqueid") or "").strip()[:64]
    if not uniqueid:
        raise BadRequest("uniqueid is required (the call this outcome belongs to)")
    note = (form.get("note") or "").strip()[:4000]
    number = canonical((form.get("caller_number") or "").strip()[:32], region)
    ticket = None
    if form.get("open_complaint") in ("1", "on", "true", True):
        category = form.get("category", "")
        if category not in CATEGORIES:
            raise BadRequest(f"category must be one of {', '.join(CATEGORIES)}")
        severity = "urgent" if form.get("urgent") in ("1", "on", "true", True) else (form.get("severity") or "normal")
        if severity not in ("urgent", "normal", "complex"):
            raise BadRequest("severity must be one of urgent, normal, complex")
        try:
            ticket = complaints.open_ticket(
                s, actor=user.username, category=category, severity=severity,
                department=str(form.get("department") or "")[:64],
                channel="phone", summary=note or outcome, received_at=now, patient_phone=number,
                patient_name=(form.get("caller_name") or "").strip()[:64], language=lang,
                call_uniqueid=uniqueid)
        except InvalidInput as exc:  # the complaint's own validation (ComplaintError)
            raise BadRequest(str(exc)) from None
    row = CallOutcome(uniqueid=uniqueid, queue=(form.get("queue") or "")[:64], caller_number=number,
                      agent=user.username, outcome=outcome, note=note,
                      complaint_id=ticket.id if ticket is not None else None, created_at=now)
    s.add(row)
    s.flush()
    audit(s, user.username, "call_outcome", "call", uniqueid, outcome=outcome,
          complaint=ticket.number if ticket is not None else None)
    return {"id": row.id, "uniqueid": uniqueid, "outcome": outcome,
            "complaint": {"id": ticket.id, "number": ticket.number} if ticket is not None else None}


async def outcome(app, req: Req, *, api: bool) -> Response:
    now = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)
    result = await app.db.run(_save_outcome, app.domain.complaints, user=req.user, form=req.form, now=now,
                              lang=req.lang, region=app.config.hospital.region)
    if api:
        return as_json(result, 201)
    from urllib.parse import quote

    msg = t(req.lang, "outcome.saved")
    if result["complaint"]:
        msg += " " + t(req.lang, "outcome.ticket", id=result["complaint"]["number"])
    return redirect("/agent?notice=" + quote(msg))


async def outcome_form(app, req: Req) -> Response:
    return await outcome(app, req, api=False)


async def outcome_api(app, req: Req) -> Response:
    return await outcome(app, req, api=True)


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
