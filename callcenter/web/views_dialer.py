"""Handlers: the agent records the result of an outbound dialer call (screen pop form / API)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError

from callcenter.errors import NotFound

from . import dialer_calls
from .http import Req, Response, as_json, redirect
from .i18n import t


async def _save(app, req: Req) -> dict | Response:
    fields = dialer_calls.parse_outcome(req.form)   # BadRequest -> 400 naming the field
    pop = app.screenpop.current.get(req.user.username) or {}
    popped = (pop.get("dialer") or {}).get("attempt_id")
    now = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)
    run = (dialer_calls.save_outcome, app.domain.dialer, fields)
    kw = dict(user=req.user, popped_attempt=popped, now=now)
    try:
        try:
            return await app.db.run(*run, **kw)
        except IntegrityError:  # a concurrent save of this call won: this one rolled back whole
            return await app.db.run(*run, **kw)   # now Closed (409)
    except NotFound:
        return app.error(req, 404, "error.notfound")
    except dialer_calls.NotYours:
        return app.error(req, 403, "error.forbidden")
    except dialer_calls.Closed as exc:
        return app.error(req, 409, "dial.closed", outcome=exc.outcome)


async def outcome_form(app, req: Req) -> Response:
    result = await _save(app, req)
    if isinstance(result, Response):
        return result
    then = [("dial.dnc_saved", {})] if result["do_not_call"] else []
    await app.flash_next(req, "dial.saved", outcome=t(req.lang, "dial.outcome." + result["outcome"]), then=then)
    return redirect("/agent")


async def outcome_api(app, req: Req) -> Response:
    result = await _save(app, req)
    return result if isinstance(result, Response) else as_json(result, 201)
