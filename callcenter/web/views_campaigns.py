"""Handlers: outbound campaigns (supervisors/admins) as pages with forms and as JSON API."""
from __future__ import annotations


from . import campaigns as cg
from . import data
from .http import BadRequest, Req, Response, as_json, redirect
from .i18n import label, t


def _ctx(app) -> cg.DialerContext:
    if app.dialer_context is None:
        app.dialer_context = cg.DialerContext.from_config(app.config)
    return app.dialer_context


def _now(app) -> float:
    return app.clock.seconds()


async def _list(app) -> list[dict] | None:
    return await app.db.run(data.campaign_statuses, _now(app), _ctx(app).abandon_days)


def _plan_names(app) -> list[str]:
    try:
        return list(_ctx(app).plans())
    except BadRequest:
        return []


# --- pages -----------------------------------------------------------------------------------

async def list_page(app, req: Req, *, status: int = 200, error: str = "", form: dict | None = None) -> Response:
    from .views_live import _queues

    return app.render(req, "campaigns.html", status, campaigns=await _list(app), kinds=cg.WEB_KINDS,
                      modes=cg.MODES, queues=_queues(app), plan_types=_plan_names(app),
                      window=cg.calling_window(_ctx(app).rules, _now(app)),
                      default_queue=_ctx(app).default_queue, error=error,
                      form=form or {}, actions=_actions_for)


def _actions_for(state: str) -> list[str]:
    return [a for a, (frm, _) in cg.ACTIONS.items() if state in frm]


async def detail_page(app, req: Req, *, status: int = 200, error: str = "") -> Response:
    try:
        c = await app.db.run(cg.detail, req.params["id"], now=_now(app), abandon_days=_ctx(app).abandon_days)
    except cg.NotFound:
        return app.error(req, 404, "error.notfound")
    return app.render(req, "campaign.html", status, c=c, actions=_actions_for(c["state"]),
                      window=cg.calling_window(_ctx(app).rules, _now(app)),
                      error=error, abandon_days=_ctx(app).abandon_days)


async def create_form(app, req: Req) -> Response:
    try:
        fields = cg.parse_create(req.form, _ctx(app))
        c = await app.db.run(cg.create, fields, actor=req.user.username, now=_now(app), ctx=_ctx(app))
    except BadRequest as exc:
        return await list_page(app, req, status=400, form=req.form,
                               error=t(req.lang, "error.bad_request", detail=str(exc)))
    except cg.Conflict as exc:
        return await list_page(app, req, status=409, form=req.form, error=str(exc))
    await app.flash_next(req, "camp.created", name=c["campaign"], n=c["contacts_created"])
    return redirect(f"/campaigns/{c['id']}")


async def action_form(app, req: Req) -> Response:
    action = req.params["action"]
    try:
        c = await app.db.run(cg.change_state, req.params["id"], action, actor=req.user.username,
                             now=_now(app), abandon_days=_ctx(app).abandon_days)
    except cg.NotFound:
        return app.error(req, 404, "error.notfound")
    except cg.Conflict as exc:
        return await detail_page(app, req, status=409, error=str(exc))
    await app.flash_next(req, "camp.state_now", name=c["campaign"],
                         state=label(req.lang, "campaign_state", c["state"]))
    return redirect(f"/campaigns/{c['id']}")


# --- JSON API --------------------------------------------------------------------------------

def _conflict(exc: cg.Conflict) -> Response:
    return as_json(exc.to_dict(), exc.status)


async def list_api(app, req: Req) -> Response:
    rows = await _list(app)
    return as_json({"available": rows is not None, "campaigns": rows or [],
                    "calling_window": cg.calling_window(_ctx(app).rules, _now(app))})


async def detail_api(app, req: Req) -> Response:
    try:
        return as_json(await app.db.run(cg.detail, req.params["id"], now=_now(app),
                                        abandon_days=_ctx(app).abandon_days))
    except cg.NotFound:
        return app.error(req, 404, "error.notfound")


async def create_api(app, req: Req) -> Response:
    fields = cg.parse_create(req.form, _ctx(app))  # BadRequest -> 400 naming the field
    try:
        c = await app.db.run(cg.create, fields, actor=req.user.username, now=_now(app), ctx=_ctx(app))
    except cg.Conflict as exc:
        return _conflict(exc)
    return as_json(c, 201)


async def action_api(app, req: Req) -> Response:
    try:
        c = await app.db.run(cg.change_state, req.params["id"], req.params["action"], actor=req.user.username,
                             now=_now(app), abandon_days=_ctx(app).abandon_days)
    except cg.NotFound:
        return app.error(req, 404, "error.notfound")
    except cg.Conflict as exc:
        return _conflict(exc)
    return as_json(c)
