"""Handlers: complaint tickets (pages for supervisors, the agent's own tickets, JSON API).

Store work goes through the app's ``Complaints`` service (which writes the ticket's
history and the audit log with the web user as actor) and ``.queries`` (read side),
always on the database thread.  Errors: bad input -> 400 naming each field
(``{"error", "status", "fields"}``); a move the life cycle refuses -> 409 with the
life cycle's message; an unknown ticket -> 404.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.errors import DomainError, InvalidInput, NotFound

from callcenter.web.http import AGENTS, ANY, SUPERVISORS, BadRequest, Req, Response, Route, as_json, redirect
from callcenter.web.i18n import t
from callcenter.web.params import MAX_OFFSET, int_arg

from . import history
from . import service as svc
from .forms import ACTIONS, FieldErrors, offered_actions, parse_action, parse_edit, parse_open

log = logging.getLogger(__name__)

_REF = re.compile(r"^(?:[1-9][0-9]{0,11}|TS-[0-9]{4}-[0-9]{6})$", re.IGNORECASE)


def _now(app) -> dt.datetime:
    return dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)


def _tz(app) -> ZoneInfo:
    return ZoneInfo(app.config.hospital.timezone)


def _today(app) -> dt.date:
    return dt.datetime.fromtimestamp(app.clock.seconds(), _tz(app)).date()


def _ref(req: Req) -> str:
    ref = req.params.get("id", "")
    if not _REF.match(ref):
        raise NotFound(f"no complaint ticket {ref[:40]!r}")
    return ref


def _when(app):
    tz = _tz(app)

    def when(iso: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if not iso:
            return "—"
        return dt.datetime.fromisoformat(iso).astimezone(tz).strftime(fmt)
    return when


def _field_errors(exc: InvalidInput) -> DomainError:
    """The service's bad input, as the form's per-field errors when it names a field."""
    return FieldErrors({exc.field: exc.message}) if exc.field else exc


# --- database work (worker thread) ---------------------------------------------------------

def _open(s, complaints: svc.Complaints, *, actor: str, fields: dict, now: dt.datetime) -> dict:
    from callcenter.complaints import queries

    try:
        with s.begin_nested():
            ticket = complaints.open_ticket(s, actor=actor, **fields)
    except InvalidInput as exc:
        raise _field_errors(exc) from None
    return queries.ticket_view(s, ticket.id, now=now)


def _act(s, complaints: svc.Complaints, ref: str, *, actor: str, step: dict, now: dt.datetime) -> dict:
    from callcenter.complaints import queries

    ticket = svc.get_ticket(s, ref)   # TicketNotFound is a NotFound: 404
    action, note = step["action"], step.get("note", "")
    handler = step.get("changes", {}).get("assigned_to")
    if handler and handler not in _handlers(s):
        raise FieldErrors({"assigned_to": f"no active user {handler!r}"})
    try:
        with s.begin_nested():
            if action == "progress":
                complaints.record_progress(s, ticket.id, actor=actor, at=now, note=note,
                                    expected_resolution=step.get("expected_resolution"))
            elif action == "reopen":
                complaints.reopen(s, ticket.id, actor=actor, at=now, reason=note)
            elif action == "revisit":
                complaints.record_revisit(s, ticket.id, step["satisfied"], note, now, actor=actor,
                                   score=step.get("score"), strict=True)
            elif action == "edit":
                complaints.update_ticket(s, ticket.id, actor=actor, at=now, **step["changes"])
            else:
                complaints.transition(s, ticket.id, ACTIONS[action], actor=actor, at=now, note=note)
    except InvalidInput as exc:   # IllegalTransition is a Conflict: 409 as it is
        raise _field_errors(exc) from None
    return queries.ticket_view(s, ticket.id, now=now)


def _handlers(s) -> dict[str, str]:
    """Who may handle a ticket ("handled by"): the active users, user name -> display name."""
    from sqlalchemy import select

    from callcenter.store.models import User

    return {u.username: u.display_name or u.username
            for u in s.scalars(select(User).where(User.active.is_(True)).order_by(User.display_name, User.username))}


def _page_view(s, ref: str, *, now: dt.datetime, viewer: str) -> tuple[dict, dict[str, str], dict[str, str]]:
    """The ticket, the users who may handle it, and every name its history mentions."""
    from sqlalchemy import select

    from callcenter.store.models import User

    view = _view(s, ref, now=now, viewer=viewer)
    names = {u.username: u.display_name or u.username for u in s.scalars(select(User))}
    return view, _handlers(s), names


def _view(s, ref: str, *, now: dt.datetime, viewer: str) -> dict:
    from callcenter.complaints import queries
    from callcenter.store.models import audit

    view = queries.ticket_view(s, ref, now=now)
    if view is None:
        raise NotFound(f"no complaint ticket {ref}")
    # the view shows the patient's name and number: who looked is recorded
    audit(s, viewer, "complaint.viewed", "complaint", view["number"])
    return view


_STATUS_FILTERS = ("open", "received", "acknowledged", "investigating", "answered", "resolved", "revisited",
                   "closed")


def _filters(req: Req) -> dict[str, Any]:
    from callcenter.complaints.deadlines import SEVERITIES
    from callcenter.complaints.models import CATEGORIES

    status = [x for x in req.arg("status").split(",") if x]
    for x in status:
        if x not in _STATUS_FILTERS:
            raise BadRequest(f"status: must be one of {', '.join(_STATUS_FILTERS)}")
    category = req.arg("category") or None
    if category is not None and category not in (*CATEGORIES, "none"):
        raise BadRequest(f"category: must be one of {', '.join(CATEGORIES)}, none")
    severity = req.arg("severity") or None
    if severity is not None and severity not in SEVERITIES:
        raise BadRequest(f"severity: must be one of {', '.join(SEVERITIES)}")
    overdue = req.arg("overdue") in ("1", "true", "on", "yes")
    limit = int_arg(req.args, "limit", 100, 1, 500)
    offset = int_arg(req.args, "offset", 0, 0, MAX_OFFSET)
    return {"status": status, "category": category, "severity": severity, "overdue": overdue,
            "limit": limit, "offset": offset}


async def _list(app, req: Req, *, mine: bool = False) -> dict:
    from callcenter.complaints import queries

    f = _filters(req)
    if mine:
        f["created_by"] = req.user.username
    return await app.db.run(lambda s: queries.list_tickets(s, now=_now(app), **f))


def _changed(app) -> None:
    """A ticket changed: let the escalation component re-check now, so the wallboard's
    alerts follow at once instead of at the next periodic check."""
    if app.escalation is not None:  # None: [complaints] enabled = false
        app.spawn(app.escalation.refresh())


def _api_error(exc: DomainError) -> Response:
    return as_json(exc.to_dict(), exc.status)


# --- JSON API -----------------------------------------------------------------------------

async def list_api(app, req: Req) -> Response:
    return as_json(await _list(app, req))


async def mine_api(app, req: Req) -> Response:
    return as_json(await _list(app, req, mine=True))


async def detail_api(app, req: Req) -> Response:
    try:
        ref = _ref(req)
        return as_json(await app.db.run(_view, ref, now=_now(app), viewer=req.user.username))
    except DomainError as exc:
        return _api_error(exc)


async def open_api(app, req: Req) -> Response:
    now = _now(app)
    try:
        fields = parse_open(req.form, now=now, tz=_tz(app), lang=req.lang)
        view = await app.db.run(_open, app.domain.complaints, actor=req.user.username, fields=fields, now=now)
    except DomainError as exc:
        return _api_error(exc)
    _changed(app)
    resp = as_json(view, 201)
    resp.headers["Location"] = f"/api/complaints/{view['id']}"
    return resp


async def _step(app, req: Req, step_of) -> dict:
    ref = _ref(req)
    step = step_of(req.form)
    view = await app.db.run(_act, app.domain.complaints, ref, actor=req.user.username, step=step, now=_now(app))
    _changed(app)
    return view


def _edit_step(form: dict) -> dict:
    return {"action": "edit", "changes": parse_edit(form)}


async def transition_api(app, req: Req) -> Response:
    try:
        return as_json(await _step(app, req, lambda f: parse_action(f, tz=_tz(app), today=_today(app))))
    except DomainError as exc:
        return _api_error(exc)


async def edit_api(app, req: Req) -> Response:
    try:
        return as_json(await _step(app, req, _edit_step))
    except DomainError as exc:
        return _api_error(exc)


# --- pages --------------------------------------------------------------------------------

def _ctx(app) -> dict:
    from callcenter.complaints.deadlines import CHANNELS, SEVERITIES
    from callcenter.complaints.models import CATEGORIES

    return {"categories": CATEGORIES, "severities": SEVERITIES, "channels": CHANNELS,
            "statuses": _STATUS_FILTERS, "when": _when(app)}


async def list_page(app, req: Req, *, errors: dict | None = None, status: int = 200) -> Response:
    result = await _list(app, req)
    return app.render(req, "complaints.html", status, result=result, args=req.args, errors=errors or {},
                      form=req.form if errors else {}, **_ctx(app))


async def mine_page(app, req: Req) -> Response:
    result = await _list(app, req, mine=True)
    return app.render(req, "agent_complaints.html", result=result, **_ctx(app))


async def detail_page(app, req: Req, *, error: str = "", errors: dict | None = None,
                      status: int = 200) -> Response:
    try:
        ref = _ref(req)
        view, handlers, names = await app.db.run(_page_view, ref, now=_now(app), viewer=req.user.username)
    except NotFound:
        return app.error(req, 404, "error.notfound")
    lang = req.lang

    def tr(key: str, **kw) -> str:
        return t(lang, key, **kw)

    when = _when(app)
    events = [{**e, "what": history.describe(e, tr, when, names), "said": history.note(e, tr),
               "by": history.actor(e["actor"], tr, names)} for e in view["events"]]
    handlers = dict(handlers)
    if view["assigned_to"] and view["assigned_to"] not in handlers:  # a disabled user still holds it
        handlers[view["assigned_to"]] = names.get(view["assigned_to"], view["assigned_to"])
    return app.render(req, "complaint.html", status, c=view, error=error, errors=errors or {},
                      offered=offered_actions(view["status"]), handlers=handlers, events=events,
                      recordings_url=app.recordings is not None, **_ctx(app))


async def open_form(app, req: Req) -> Response:
    now = _now(app)
    try:
        fields = parse_open(req.form, now=now, tz=_tz(app), lang=req.lang, default_channel="online")
        view = await app.db.run(_open, app.domain.complaints, actor=req.user.username, fields=fields, now=now)
    except FieldErrors as exc:
        req.args = {}
        return await list_page(app, req, errors=exc.fields, status=400)
    except DomainError as exc:
        req.args = {}
        return await list_page(app, req, errors={"ticket": str(exc)}, status=exc.status)
    _changed(app)
    await app.flash_next(req, "cp.opened", id=view["number"])
    return redirect(f"/complaints/{view['id']}")


async def _step_form(app, req: Req, step_of) -> Response:
    try:
        view = await _step(app, req, step_of)
    except NotFound:
        return app.error(req, 404, "error.notfound")
    except FieldErrors as exc:
        return await detail_page(app, req, error=t(req.lang, "error.bad_request", detail=str(exc)),
                                 errors=exc.fields, status=400)
    except DomainError as exc:
        return await detail_page(app, req, error=str(exc), status=exc.status)
    await app.flash_next(req, "cp.saved")
    return redirect(f"/complaints/{view['id']}")


async def transition_form(app, req: Req) -> Response:
    return await _step_form(app, req, lambda f: parse_action(f, tz=_tz(app), today=_today(app)))


async def edit_form(app, req: Req) -> Response:
    return await _step_form(app, req, _edit_step)


# --- the complaints' part of the web's route table ------------------------------------------

_CP_FILTERS = (("status", "string", "comma-separated: open | received | acknowledged | investigating | answered | "
                                     "resolved | revisited | closed"),
               ("category", "string", "medical | attitude | environment | fees | communication | none (unclassified)"),
               ("severity", "string", "urgent | normal | complex"),
               ("overdue", "boolean", "only tickets with a deadline already past due"),
               ("limit", "integer", "1-500, default 100"), ("offset", "integer", "default 0"))
_CP_OPEN_BODY = (("summary", "string", "what the patient complains about", True),
                 ("category", "string", "medical | attitude | environment | fees | communication (empty: "
                                        "not yet classified)", False),
                 ("severity", "string", "urgent | normal (default) | complex; fixed at opening", False),
                 ("channel", "string", "phone | voicemail | online | email | api (default api)", False),
                 ("department", "string", "department concerned", False),
                 ("demand", "string", "what the patient asks for", False),
                 ("tags", "array", "free tags, 1-32 characters each (or comma-separated text)", False),
                 ("patient_phone", "string", "patient's phone number", False),
                 ("patient_name", "string", "patient's name", False),
                 ("language", "string", "zh | en", False),
                 ("received_at", "string", "ISO 8601 (default now; local time if no offset)", False),
                 ("call_uniqueid", "string", "link a call (Asterisk uniqueid)", False),
                 ("recording_id", "integer", "link a recording", False))
_CP_STEP_BODY = (("action", "string", "acknowledge | investigate | answer | resolve | close | progress | reopen | "
                                      "revisit", True),
                 ("to", "string", "instead of action: the state (acknowledged, investigating, answered, "
                                  "resolved, closed)", False),
                 ("note", "string", "what was done; required for reopen (the reason), progress, and for "
                                    "close without a revisit", False),
                 ("expected_resolution", "string(date)", "progress: the expected resolution date", False),
                 ("satisfied", "boolean", "revisit: was the patient satisfied", False),
                 ("score", "integer", "revisit: satisfaction 1-5", False))
_CP_EDIT_BODY = (("category", "string", "classification", False), ("department", "string", "", False),
                 ("assigned_to", "string", "who handles it", False), ("tags", "array", "free tags", False),
                 ("summary", "string", "", False), ("demand", "string", "", False))
_CP_TICKET = {"type": "object", "properties": {
    "id": {"type": "integer"}, "number": {"type": "string"}, "status": {"type": "string"},
    "deadlines": {"type": "array", "items": {"type": "object", "properties": {
        "kind": {"type": "string"}, "due_at": {"type": "string"},
        "state": {"type": "string", "enum": ["due", "approaching", "overdue", "met", "replaced"]}}}},
    "events": {"type": "array", "items": {"type": "object"}},
    "links": {"type": "array", "items": {"type": "object"}},
    "recordings": {"type": ["array", "null"], "items": {"type": "object"}}}}
_CP_LIST = {"type": "object", "properties": {"total": {"type": "integer"},
                                             "tickets": {"type": "array", "items": {"type": "object"}}}}
_CP_ERROR = "400: {error, status, fields: {field: message}}; 404: no such ticket; 409: the life cycle refuses"

ROUTES: list[Route] = [
    Route("GET", "/complaints", SUPERVISORS, list_page, "page", "Complaint tickets",
          query=_CP_FILTERS),
    Route("POST", "/complaints", SUPERVISORS, open_form, "form",
          "Open a complaint ticket (online/e-mail complaints; form)", body=_CP_OPEN_BODY),
    Route("GET", "/complaints/{id}", SUPERVISORS, detail_page, "page",
          "One complaint ticket: deadlines, history, calls, recordings (viewing is audited)"),
    Route("POST", "/complaints/{id}/transition", SUPERVISORS, transition_form, "form",
          "Move a ticket through its life cycle (form)", body=_CP_STEP_BODY),
    Route("POST", "/complaints/{id}/edit", SUPERVISORS, edit_form, "form",
          "Classify / assign a ticket (form)", body=_CP_EDIT_BODY),
    Route("GET", "/api/complaints", SUPERVISORS, list_api, "api",
          "Complaint tickets, newest first (patients masked)", query=_CP_FILTERS, response=_CP_LIST),
    Route("POST", "/api/complaints", ANY, open_api, "api",
          "Open a complaint ticket (201 with the ticket; " + _CP_ERROR + ")", body=_CP_OPEN_BODY,
          response=_CP_TICKET),
    Route("GET", "/api/complaints/{id}", SUPERVISORS, detail_api, "api",
          "One complaint ticket by id or number (viewing is audited)", response=_CP_TICKET),
    Route("POST", "/api/complaints/{id}/transition", SUPERVISORS, transition_api, "api",
          "A life-cycle step: acknowledge, investigate, progress, answer, resolve, close, reopen, revisit ("
          + _CP_ERROR + ")", body=_CP_STEP_BODY, response=_CP_TICKET),
    Route("POST", "/api/complaints/{id}/edit", SUPERVISORS, edit_api, "api",
          "Classify / assign a ticket (" + _CP_ERROR + ")", body=_CP_EDIT_BODY, response=_CP_TICKET),
    Route("GET", "/agent/complaints", AGENTS, mine_page, "page",
          "Complaint tickets this agent opened", query=_CP_FILTERS),
    Route("GET", "/api/agent/complaints", AGENTS, mine_api, "api",
          "Complaint tickets this agent opened", query=_CP_FILTERS, response=_CP_LIST),
]
