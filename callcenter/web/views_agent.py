"""Handlers: the agent desk — own state, queue log-in/pause, the call and its pop, the outcome."""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError

from callcenter.store.models import audit

from . import call_outcomes, dialer_calls
from .http import SSE, BadRequest, Req, Response, as_json, redirect
from .i18n import catalogue, label, t
from .views_live import _queues

QUEUE_ACTIONS = ("login", "logout", "pause", "unpause")


def _status(app, req: Req) -> dict:
    return app.agent_desk.status(req.user, req.lang, _queues(app))


async def agent_page(app, req: Req) -> Response:
    user = req.user
    pop = app.screenpop.current.get(user.username)
    status = _status(app, req)
    chosen = req.arg("reason")
    messages = {**catalogue(req.lang, "pop."), **catalogue(req.lang, "dial."), **catalogue(req.lang, "call."),
                **catalogue(req.lang, "state."), **catalogue(req.lang, "agent."),
                **catalogue(req.lang, "camp.kind."), **catalogue(req.lang, "treatment."),
                **catalogue(req.lang, "step."), **catalogue(req.lang, "queue."),
                **catalogue(req.lang, "cat."), **catalogue(req.lang, "cp.state."), **catalogue(req.lang, "rep.v."),
                **_department_names(app, req.lang)}
    return app.render(req, "agent.html", status=status, pop=pop, call=app.screenpop.calls.get(user.username),
                      outcomes=call_outcomes.OUTCOMES, categories=call_outcomes.CATEGORIES,
                      reasons=app.pause_reasons.options(req.lang), kinds=tuple(dialer_calls.OUTCOMES),
                      chosen_reason=status["reason"] or (chosen if chosen in app.pause_reasons.codes else ""),
                      messages=messages)


def _department_names(app, lang: str) -> dict[str, str]:
    """The departments as the reminder says them (read at start: ``app.department_names``), for the pop."""
    return {f"pop.dept.{code}": names[lang] for code, names in app.department_names.items()}


async def agent_events(app, req: Req):
    app.agent_desk.watch(req.user, req.lang)
    initial = [("status", _status(app, req))]
    pop = app.screenpop.current.get(req.user.username)
    if pop:
        initial.append(("pop", pop))
    call = app.screenpop.calls.get(req.user.username)
    if call:
        initial.append(("call", call))
    return SSE(f"agent:{req.user.username}", initial)


async def agent_status_api(app, req: Req) -> Response:
    return as_json(_status(app, req))


async def queue_action(app, req: Req, *, api: bool) -> Response:
    """QueueAdd / QueueRemove / QueuePause for the agent's own interface."""
    from callcenter.ami.gateway import AmiError

    user = req.user
    action = req.form.get("action", "")
    queue = (req.form.get("queue") or "").strip()
    reason = (req.form.get("reason") or "").strip()[:64]
    codes = app.pause_reasons.codes
    if action not in QUEUE_ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(QUEUE_ACTIONS)}")
    if not user.interface:
        raise BadRequest(t("en", "agent.no_interface"))
    if action in ("login", "logout") and queue not in _queues(app):
        raise BadRequest(f"queue: unknown {queue!r}")
    if queue and queue not in _queues(app):
        raise BadRequest(f"queue: unknown {queue!r}")
    if action == "pause" and reason and reason not in codes:
        raise BadRequest(f"reason must be one of {', '.join(codes)} ([web] pause_reasons)")
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
    key, values = queue_action_message(req.lang, action, queue, ok, message)
    await app.flash_next(req, key, **values)
    back = "/agent"
    if action == "pause" and reason:
        back += "?reason=" + quote(reason)   # the choice stays as chosen
    return redirect(back)


# Asterisk's replies to QueueAdd/QueueRemove/QueuePause (app_queue.c), in our own words.
ASTERISK_REFUSALS = {"Unable to add interface: Already there": "agent.refused.already_in",
                     "Unable to remove interface: Not there": "agent.refused.not_in",
                     "Interface not found": "agent.refused.not_in",
                     "Unable to add interface to queue: No such queue": "agent.refused.no_queue",
                     "Unable to remove interface from queue: No such queue": "agent.refused.no_queue"}


def queue_action_message(lang: str, action: str, queue: str, ok: bool, message: str) -> tuple[str, dict]:
    """What the agent reads after a queue action, as (catalogue key, values): our message
    for what was done, never Asterisk's English reply ("Interface paused successfully"); a
    refusal Asterisk gives for a known reason in our words, any other one as "Asterisk
    refused" with its text."""
    if ok:
        return "agent.did." + action, {"queue": label(lang, "queue", queue) if queue else t(lang, "agent.all_queues")}
    key = ASTERISK_REFUSALS.get(message.strip())
    if key == "agent.refused.not_in" and not queue:
        return "agent.refused.not_in_any", {}
    if key:
        return key, {"queue": label(lang, "queue", queue) if queue else queue}
    return "agent.failed", {"what": message or action}



async def queue_action_form(app, req: Req) -> Response:
    return await queue_action(app, req, api=False)


async def queue_action_api(app, req: Req) -> Response:
    return await queue_action(app, req, api=True)


async def _save_outcome(app, req: Req) -> dict:
    form = call_outcomes.parse(req.form, app.config.hospital.region)
    now = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)
    args = dict(user=req.user, form=form, now=now, lang=req.lang,
                on_screen=app.screenpop.shown_to(req.user.username, form.uniqueid))
    try:
        return await app.db.run(call_outcomes.save, app.domain.complaints, **args)
    except IntegrityError:
        # a concurrent save of this call stored its row first: read it (created: false)
        return await app.db.run(call_outcomes.save, app.domain.complaints, **args)


async def outcome_form(app, req: Req) -> Response:
    result = await _save_outcome(app, req)
    then = [("outcome.ticket", {"id": result["complaint"]["number"]})] if result["complaint"] else []
    await app.flash_next(req, "outcome.saved" if result["created"] else "outcome.already", then=then)
    return redirect("/agent")


async def outcome_api(app, req: Req) -> Response:
    result = await _save_outcome(app, req)
    return as_json(result, 201 if result["created"] else 200)
