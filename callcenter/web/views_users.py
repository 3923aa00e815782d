"""Handlers: the administrator's users page (list, add, change, disable/enable, new password)
and ``/api/users``.  The account rules live in :mod:`.users` (shared with ``callcenter users``);
a refused change shows the page again (400/404/409) with the field named in the reader's
language; a done one redirects with a one-time confirmation (:mod:`.flash`)."""
from __future__ import annotations

from urllib.parse import unquote

from . import users
from .auth import ROLES
from .http import Req, Response, as_json, redirect
from .i18n import t

ACTIONS = ("edit", "password", "disable", "enable")
FIELD_LABELS = {"username": "login.username", "name": "pop.name", "role": "users.role",
                "interface": "agent.interface", "language": "users.language", "password": "login.password"}


def _error_text(lang: str, exc: users.AccountError) -> str:
    label = t(lang, FIELD_LABELS[exc.field]) if exc.field in FIELD_LABELS else exc.field
    return t(lang, "users.err", field=label, why=t(lang, "users.err." + exc.reason))


async def page(app, req: Req, *, error: users.AccountError | None = None, target: str = "",
               status: int = 200) -> Response:
    rows = await app.db.run(users.listing)
    if target not in {u["username"] for u in rows}:
        target = ""  # no row to show it beside: above the table
    return app.render(req, "users.html", status, users=rows, roles=ROLES, languages=users.LANGUAGES,
                      error=_error_text(req.lang, error) if error else "",
                      error_field=error.field if error else "", target=target,
                      form=req.form if error and req.path == "/admin/users" else {}, me=req.user.username,
                      default_language=app.default_language())


async def api(app, req: Req) -> Response:
    return as_json({"users": await app.db.run(users.listing)})


async def add_form(app, req: Req) -> Response:
    f = req.form
    if f.get("password", "") != f.get("password2", ""):
        return await page(app, req, error=users.AccountInvalid("the passwords differ", field="password",
                                                               reason="mismatch"), status=400)
    try:
        user = await app.db.run(users.add, actor=req.user.username, username=f.get("username", ""),
                                role=f.get("role", ""), password=f.get("password", ""), name=f.get("name", ""),
                                interface=f.get("interface", ""),
                                language=f.get("language") or app.default_language())
    except users.AccountError as exc:
        return await page(app, req, error=exc, status=exc.status)
    app.screenpop.users.forget()  # the screen pop asks again who sits at each interface
    await app.flash_next(req, "users.added", user=user.username)
    return redirect("/admin/users")


async def action_form(app, req: Req) -> Response:
    name, action, f, me = unquote(req.params["username"]), req.params["action"], req.form, req.user.username
    try:
        if action == "edit":
            await app.db.run(users.update, actor=me, username=name, role=f.get("role", ""),
                             interface=f.get("interface", ""), language=f.get("language", ""),
                             name=f.get("name", ""))
        elif action == "password":
            if f.get("password", "") != f.get("password2", ""):
                raise users.AccountInvalid("the passwords differ", field="password", reason="mismatch")
            await app.db.run(users.set_password, actor=me, username=name, password=f.get("password", ""))
        else:
            await app.db.run(users.set_active, actor=me, username=name, active=action == "enable")
    except users.AccountError as exc:
        return await page(app, req, error=exc, target=name, status=exc.status)
    app.screenpop.users.forget()  # the screen pop asks again who sits at each interface
    await app.flash_next(req, "users.done." + action, user=name)
    return redirect("/admin/users")
