"""Handlers: login/logout, language, home, static files, /api/me (users: views_users.py)."""
from __future__ import annotations

import mimetypes
from urllib.parse import quote, unquote, urlsplit

from . import auth
from .http import BadRequest, Req, Response, as_json, redirect
from .i18n import LANGUAGES, t

HOME = {"agent": "/agent", "supervisor": "/wallboard", "admin": "/wallboard"}


def _same_origin_path(target: str) -> bool:
    """True for a path on this site, as every browser will read it.  Browsers drop tabs and
    line breaks inside a URL and read ``\\`` as ``/``, so ``/\t/evil`` and ``/\\evil`` are
    ``//evil``: another origin.  Checked on the text and on it percent-decoded once."""
    for text in (target, unquote(target)):
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text) or "\\" in text:
            return False
        if not text.startswith("/") or text.startswith("//"):
            return False
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            return False
    return True


def _safe_next(target: str, role: str) -> str:
    """Where to go after login: ``target`` when it is a same-origin path (not /login), else
    the role's start page.  No open redirect to another site."""
    if target and _same_origin_path(target) and urlsplit(target).path != "/login":
        return quote(target, safe="/?=&%#:@!$'()*+,;~-._")
    return HOME.get(role, "/")


async def home(app, req: Req) -> Response:
    return redirect(HOME.get(req.user.role, "/login"))


async def login_form(app, req: Req, *, status: int = 200, message: str = "") -> Response:
    if req.user is None:
        try:
            req.user = await app.current_user(req.raw)
        except Exception:  # noqa: BLE001
            req.user = None
        if req.user is not None and not message:
            return redirect(_safe_next(req.arg("next"), req.user.role))
        req.user = None
    token = req.cookies.get("cc_login") or ""
    if len(token) < 20 or len(token) > 64:
        token = app.new_login_token()
    resp = app.render(req, "login.html", status, message=message, login_token=token,
                      next=req.arg("next") or req.form.get("next", ""),
                      other_lang="en" if req.lang == "zh" else "zh")
    resp.cookies.append(app.cookie("cc_login", token, max_age=3600))
    if req.args.get("lang") in LANGUAGES:  # remembered for the next anonymous pages
        resp.cookies.append(app.cookie("cc_lang", req.args["lang"], max_age=365 * 86400))
    return resp


async def login_post(app, req: Req) -> Response:
    # Login CSRF: double-submit token (cookie set with the form == hidden field).
    cookie_token = req.cookies.get("cc_login", "")
    if not cookie_token or not auth.csrf_ok(cookie_token, req.form.get("login_token")):
        return await login_form(app, req, status=403, message=t(req.lang, "error.csrf"))
    username = (req.form.get("username") or "").strip()[:64]
    password = req.form.get("password") or ""
    wait, reached = app.login_throttle.attempt(username, req.remote)  # checked and counted at once
    if wait > 0:
        resp = await login_form(app, req, status=429,
                                message=t(req.lang, "login.locked", seconds=int(wait) + 1))
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    result = await app.db.run(auth.login, username, password, app.clock.seconds(), app.session_hours,
                              req.remote)
    if result is None:
        if reached:  # this failure slows the next attempts down: audited once per slow-down
            await app.db.run(auth.audit_throttled, username, req.remote, reached)
        return await login_form(app, req, status=401, message=t(req.lang, "login.failed"))
    app.login_throttle.succeeded(username, req.remote)
    token, user = result
    resp = redirect(_safe_next(req.form.get("next", ""), user.role))
    resp.cookies.append(app.cookie("cc_session", token, max_age=int(app.session_hours * 3600)))
    resp.cookies.append(app.cookie("cc_login", "", max_age=0))
    return resp


async def logout(app, req: Req) -> Response:
    await app.db.run(auth.logout, req.user.session_id, req.user.username)
    resp = redirect("/login")
    resp.cookies.append(app.cookie("cc_session", "", max_age=0))
    return resp


async def set_language(app, req: Req) -> Response:
    lang = req.form.get("lang", "")
    if lang not in LANGUAGES:
        raise BadRequest(f"lang must be one of {', '.join(LANGUAGES)}")
    await app.db.run(auth.set_language, req.user.id, lang)
    back = req.form.get("back", "")
    return redirect(_safe_next(back, req.user.role))


async def static(app, req: Req) -> Response:
    name = req.params["name"]
    body = app.static.get(name)
    if body is None:
        return app.error(req, 404, "error.notfound")
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return Response(200, body, ctype)


async def me(app, req: Req) -> Response:
    u = req.user
    return as_json({"username": u.username, "name": u.display_name, "role": u.role,
                    "interface": u.interface, "language": u.language, "csrf_token": u.csrf_token})


async def openapi(app, req: Req) -> Response:
    from .openapi import document

    return as_json(document(app.routes))


def login_path(next_path: str) -> str:
    return "/login?next=" + quote(next_path)
