"""The twisted.web side: one dispatcher over the route table.

Every request goes through :meth:`WebApp.handle`: match a route, load the
session, refuse anonymous users (pages: redirect to the login form; API and
event streams: 401) and wrong roles (403), check the CSRF token on every POST,
then call the handler.  Security headers are set here for every answer, so no
route can forget them.  Handlers are coroutines running as asyncio tasks on
the shared loop; database work inside them goes through ``db.run``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from callcenter.logs import RepeatLimiter
from callcenter.ports import AmiClient, LiveQueues, require_all
from callcenter.store.models import audit
from recordings.web import routes as recordings_routes

from . import auth, flash
from callcenter.errors import DomainError, InvalidInput, Unavailable
from callcenter.store.retry import TRANSIENT
from callcenter.text import clean, unstorable

from .clientaddr import TrustedProxies
from .http import (DEFAULT_BODY, NO_ROUTE_BODY, SSE, STREAMED, BadRequest, Req, Response, Route, Upload, as_json,
                   html, redirect, wants_html)
from .lookups import LookupLimit
from .i18n import LANGUAGES, catalogue, column, label, t

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "cc_session"
LOGIN_COOKIE = "cc_login"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; media-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Server": "callcenter",  # not TwistedWeb/<version>: no version hints for scanners
}


def set_security_headers(request, *, cacheable: bool = False) -> None:
    for k, v in SECURITY_HEADERS.items():
        request.setHeader(k, v)
    # Patient data must not stay in browser or proxy caches.
    request.setHeader("Cache-Control", "public, max-age=300" if cacheable else "no-store")
    if not cacheable:
        request.setHeader("Pragma", "no-cache")


class WebApp:
    """The web application: routes, auth, pages and live feeds over its collaborators.

    ``ami`` sends agents' queue actions and feeds screen pops; ``live`` (the queue-calls
    tracker) feeds the wallboard; ``escalation`` (the complaints component, ``None``
    when ``[complaints] enabled = false``) feeds deadline alerts; ``recordings`` is the
    ``/recordings`` resource; ``domain`` (:class:`callcenter.domain.Domain`) the
    complaints service and dialer API the handlers call; ``ops`` the health and metrics
    routes (:func:`callcenter.web.views_ops.routes`).
    """

    def __init__(self, config, db, clock, *, ami: AmiClient, live: LiveQueues, domain: Any,
                 escalation=None, recordings: Any = None, reactor=None, routes: list[Route] | None = None,
                 ops: list[Route] = ()):
        from .routes import ROUTES

        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        from .sse import Broker
        from .stream_caps import StreamCaps

        require_all([(ami, AmiClient, "web ami"), (live, LiveQueues, "web live")])
        self.config = config
        self.db = db
        self.clock = clock
        self.ami = ami
        self.live = live
        self.escalation = escalation
        self.domain = domain
        self.reactor = reactor
        if routes is None:
            routes = ROUTES + (recordings_routes(recordings.settings) if recordings is not None else []) + list(ops)
        self.routes = routes
        self.broker = Broker(reactor, StreamCaps.from_config(config.web))
        self.login_throttle = auth.LoginThrottle(self.clock)
        self.lookup_limit = LookupLimit(self.clock)
        from .staffing_plan_view import PlanCache

        self.plans = PlanCache(self.clock)  # the reports page's staffing plans, a few minutes each
        self.session_hours = float(self.config.web.session_hours)
        self.secure_cookies = bool(self.config.web.secure_cookies)
        self.proxies = TrustedProxies.parse(self.config.web.trusted_proxies)
        self._stream_refusals = RepeatLimiter(log, reactor, interval=60.0)
        self.jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=True, undefined=jinja2.StrictUndefined,
        )
        self.jinja.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str,
                                                    "ensure_ascii": False}
        self.static = {p.name: p.read_bytes() for p in (HERE / "static").iterdir() if p.is_file()}
        self.recordings = recordings
        self.recording_roles = frozenset(recordings.settings.allowed_roles) if recordings is not None else frozenset()
        self.resource = _Root(self)
        self._tasks: set[asyncio.Task] = set()
        self._plan_keeper: asyncio.Task | None = None
        self.closed = True  # until served (WebComponent.start -> open()): a web that is built
                            # but not serving does no work for the feeds it follows
        from .complaint_alerts import ComplaintAlertsFeed
        from .live import WallboardFeed
        from .agent_desk import AgentDesk
        from .pause_reasons import PauseReasons
        from .screenpop import ScreenPop

        self.wallboard = WallboardFeed(self, live, gateway=ami)
        self.screenpop = ScreenPop(self, ami)
        self.pause_reasons = PauseReasons.from_config(config)
        from ivr_flows.segments import load_departments

        # the departments as the reminders say them (ivr_flows/spoken/departments.yaml): read
        # once here, not from disk on every agent page
        self.department_names = load_departments()
        self.agent_desk = AgentDesk(self, live, self.pause_reasons)
        self.alerts = ComplaintAlertsFeed(self, escalation)
        self.dialer_context: Any = None  # campaigns pages: built on first use from the config
        from .import_uploads import ImportUploads

        self.import_uploads = ImportUploads(clock)  # CSV files between preview and confirmation

    # -- helpers for handlers ---------------------------------------------------------------
    def render(self, req: Req, template: str, code: int = 200, **ctx) -> Response:
        lang = req.lang
        page = self.jinja.get_template(template).render(
            t=lambda key, **kw: t(lang, key, **kw), col=lambda key: column(lang, key),
            label=lambda kind, code: label(lang, kind, code),
            lang=lang, user=req.user, req=req, flash=req.flash, recording_roles=self.recording_roles,
            csrf=req.user.csrf_token if req.user else "", hospital=self.config.hospital.name, **ctx)
        return html(page, code)

    def error(self, req: Req, status: int, key: str, **kw) -> Response:
        if req.route is None or req.route.kind in ("api", "sse") or req.path.startswith("/api/"):
            return as_json({"error": t("en", key, **kw), "status": status}, status)
        return self.render(req, "error.html", status, message=t(req.lang, key, **kw))

    def domain_error(self, req: Req, exc: DomainError) -> Response:
        """The one mapping from a domain error to an answer: its code's status, its message."""
        if req.route is None or req.route.kind in ("api", "sse") or req.path.startswith("/api/"):
            return as_json(exc.to_dict(), exc.status)
        if isinstance(exc, InvalidInput):
            return self.render(req, "error.html", exc.status, message=t(req.lang, "error.bad_request", detail=str(exc)))
        key = {404: "error.notfound", 403: "error.forbidden", 503: "error.unavailable"}.get(exc.status)
        return self.render(req, "error.html", exc.status, message=t(req.lang, key) if key else str(exc))

    def default_language(self) -> str:
        lang = self.config.hospital.language
        return lang if lang in LANGUAGES else "zh"

    def spawn(self, coro) -> asyncio.Task | None:
        if self.closed:  # stopping: no new work (events may still arrive from other components)
            coro.close()
            return None
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the dispatcher ---------------------------------------------------------------------
    def find(self, method: str, path: str) -> tuple[Route | None, dict, bool]:
        parts = [p for p in path.split("/") if p]
        path_known = False
        for route in self.routes:
            params = route.match(parts)
            if params is None:
                continue
            path_known = True
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, params, True
        return None, {}, path_known

    def client_address(self, request) -> str:
        """The browser's address: ``X-Forwarded-For`` only from a trusted proxy."""
        return self.proxies.client(_remote(request), request.getHeader("x-forwarded-for"))

    def over_tls(self, request) -> bool:
        """Did the browser use HTTPS (to us, or to a trusted proxy that says so)?"""
        return self.proxies.tls(_remote(request), request.isSecure(), request.getHeader("x-forwarded-proto"))

    def body_limit(self, method: str, path: str) -> int:
        """Bytes of body accepted for this request, known from the route before any is read."""
        route, _, _ = self.find(method, path)
        if route is None or route.method != "POST":
            return NO_ROUTE_BODY
        return route.max_body or DEFAULT_BODY

    async def current_user(self, request) -> auth.CurrentUser | None:
        token = _cookie(request, SESSION_COOKIE)
        if not token or len(token) > 100:
            return None
        return await self.db.run(auth.load, token, self.clock.seconds())

    async def handle(self, request) -> None:
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("utf-8", "replace")
        route, params, known = self.find(method, path)
        set_security_headers(request, cacheable=bool(route and route.kind == "static"))
        req = Req(method, path, route, params, _query(request), {}, None, self.default_language(),
                  self.client_address(request), request, _cookies(request))
        try:
            try:
                resp = await self._dispatch(req, request, route, known)
            except DomainError as exc:
                resp = self.domain_error(req, exc)
            except TRANSIENT:  # the database refuses connections: say so, and when to come back
                log.warning("database unavailable for %s %s", method, path)
                resp = self.domain_error(req, Unavailable("the database is not answering; try again shortly"))
                resp.headers["Retry-After"] = "5"
            except Exception:  # noqa: BLE001 - never show internals (or secrets) to the browser
                log.exception("error handling %s %s", method, path)
                resp = self.error(req, 500, "error.server")
            if isinstance(resp, SSE):
                self._start_sse(request, resp, req.stream_slot)
                return
            if resp is STREAMED:
                return
            self._write(request, resp)
        finally:  # an event stream's place, unless its stream holds it now (refused, failed, gone)
            if req.stream_slot is not None and not req.stream_slot.held_by_stream:
                req.stream_slot.release()

    async def _dispatch(self, req: Req, request, route: Route | None, known: bool):
        _check_text("query parameter", req.args)
        _check_text("path segment", req.params)
        if route is None:
            if req.path.startswith("/api/") or not known:
                user = await self.current_user(request)
                if user:
                    req.lang = user.language
                return self.error(req, 405 if known else 404,
                                  "error.bad_request" if known else "error.notfound",
                                  **({"detail": f"method {req.method} not allowed"} if known else {}))
            return self.error(req, 405, "error.bad_request", detail=f"method {req.method} not allowed")
        if route.roles is not None:
            bearer = _bearer(request) if route.kind == "api" else None
            if bearer is not None:  # machine clients: API routes only, instead of a session
                from . import tokens

                user = await self.db.run(tokens.authenticate, bearer, self.clock.seconds(), method=req.method,
                                         path=req.path, remote=req.remote)
                if user is None:
                    resp = as_json({"error": "invalid or revoked API token", "status": 401}, 401)
                    resp.headers["WWW-Authenticate"] = 'Bearer realm="callcenter", error="invalid_token"'
                    return resp
            else:
                user = await self.current_user(request)
            if user is None:
                await self._audit_refusal(route, req, "anonymous", "not logged in")
                if route.kind == "page" or (route.kind == "stream" and wants_html(request.getHeader("accept"))):
                    return redirect("/login?next=" + quote(req.path), 303)  # a browser: to the login form
                resp = as_json({"error": "login required", "status": 401}, 401)
                resp.headers["WWW-Authenticate"] = 'Cookie realm="callcenter"'
                return resp
            req.user = user
            req.lang = user.language if user.language in LANGUAGES else self.default_language()
            if user.role not in route.roles:
                await self._audit_refusal(route, req, user.username, f"role {user.role!r}")
                return self.error(req, 403, "error.forbidden")
            if user.flash and route.kind == "page" and req.method == "GET":  # shown once, by this page
                await self.db.run(flash.clear, user.session_id)
                req.flash = flash.text(req.lang, user.flash)
            if route.kind == "sse":  # its place first: checked and counted before the handler's awaits
                refused = self._take_stream(req)
                if refused is not None:
                    return refused
        else:
            req.lang = self._anon_language(req)
        if req.method == "POST":
            if _is_multipart(request):  # a form with a file (CSV import): parsed off the loop (up to 20 MB)
                req.form, req.files = await asyncio.get_running_loop().run_in_executor(
                    None, _multipart, request, route.max_body or DEFAULT_BODY)
            else:
                req.form = _body(request) if not route.raw_body or _is_form(request) else {}  # raw: handler reads it
            _check_text("field", req.form)
            if route.csrf and not (req.user is not None and req.user.via_token):
                given = req.form.get("csrf_token") or _header(request, "X-CSRF-Token")
                if req.user is None or not auth.csrf_ok(req.user.csrf_token, given):
                    return self.error(req, 403, "error.csrf")
        return await route.handler(self, req)

    def _take_stream(self, req: Req) -> Response | None:
        """A place for this event stream (:mod:`.stream_caps`), or the refusal in the reader's
        language: 429 over the user's cap, 503 over the service's."""
        from .stream_caps import StreamRefused

        try:
            req.stream_slot = self.broker.caps.take(req.user.username)
            return None
        except StreamRefused as exc:
            mine = exc.scope == "user"
            status = 429 if mine else 503
            self._stream_refusals.info(exc.scope, "event stream refused: %s cap %d reached (%s)", exc.scope,
                                       exc.limit, req.user.username if mine else "all users")
            resp = as_json({"error": t(req.lang, "error.too_many_streams" if mine else "error.streams_full",
                                       limit=exc.limit),
                            "code": "too_many_streams" if mine else "streams_full", "status": status,
                            "limit": exc.limit}, status)
            resp.headers["Retry-After"] = "5"
            return resp

    async def _audit_refusal(self, route: Route, req: Req, who: str, reason: str) -> None:
        if route.audit_as:
            await self.db.run(lambda s: audit(s, who, f"{route.audit_as}.denied", route.audit_as,
                                              req.path[:64], reason=reason, ip=req.remote))

    def _anon_language(self, req: Req) -> str:
        lang = req.args.get("lang") or req.cookies.get("cc_lang", "")
        return lang if lang in LANGUAGES else self.default_language()

    def _write(self, request, resp: Response) -> None:
        if getattr(request, "_disconnected", False) or request.finished:
            return
        request.setResponseCode(resp.status)
        request.setHeader("Content-Type", resp.content_type)
        for k, v in resp.headers.items():
            request.setHeader(k, v)
        secure = self.secure_cookies or self.over_tls(request)  # HTTPS here or at a trusted proxy
        for c in resp.cookies:
            if secure and "; Secure" not in c:
                c += "; Secure"
            request.responseHeaders.addRawHeader("Set-Cookie", c)
        if request.method != b"HEAD":
            request.write(resp.body)
        request.finish()

    def _start_sse(self, request, sse: SSE, slot) -> None:
        from .sse import format_event

        if slot is None:
            raise RuntimeError(f"{request.path!r} answered an event stream but its route is not of kind 'sse'")
        if getattr(request, "_disconnected", False):
            return
        request.setResponseCode(200)
        request.setHeader("Content-Type", "text/event-stream; charset=utf-8")
        request.setHeader("X-Accel-Buffering", "no")
        if request.method == b"HEAD":  # the headers only: no stream (its sends would be a body)
            request.finish()
            return
        first = [b"retry: 2000\n\n", *(format_event(event, data) for event, data in sse.initial)]
        self.broker.add(sse.topic, request, slot, first)

    def cookie(self, name: str, value: str, *, max_age: int | None = None, http_only: bool = True) -> str:
        parts = [f"{name}={value}", "Path=/", "SameSite=Strict"]
        if http_only:
            parts.append("HttpOnly")
        if self.secure_cookies:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts)

    async def flash_next(self, req: Req, key: str, *, then=(), **values) -> None:
        """Leave a one-time message (a catalogue key; ``then``: more ``(key, values)``
        sentences) for the next page of this session."""
        await self.db.run(lambda s: flash.put(s, req.user.session_id, key, then=then, **values))

    def new_login_token(self) -> str:
        return secrets.token_urlsafe(24)

    async def authorize_request(self, request) -> auth.CurrentUser | None:
        return await self.current_user(request)

    def open(self) -> None:
        """Start taking work (requests, feed refreshes), and keep today's staffing plan made
        for the reports page (:func:`staffing_plan_view.keep_plans`)."""
        from .staffing_plan_view import keep_plans

        self.closed = False
        self._plan_keeper = self.spawn(keep_plans(self))

    async def close(self) -> None:
        """Stop taking work, end event streams, and wait for handlers in flight to finish."""
        self.closed = True
        if self._plan_keeper is not None:  # it waits for its next round: not work in flight
            self._plan_keeper.cancel()
        self.ami.unsubscribe(self.screenpop.on_ami)
        self.alerts.close()
        self.wallboard.close()
        self.agent_desk.close()
        self.broker.close()
        tasks = [t for t in self._tasks | set(self.plans.making.values()) if not t.done()]  # and plans being made
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=5)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)


def _check_text(what: str, values: dict) -> None:
    """Refuse what no store keeps (NUL, lone surrogates, control characters), naming the field;
    JSON arrays/objects arrive as JSON text, so their strings are checked inside it too."""
    for key, value in values.items():
        for text in _strings(key, value):
            problem = unstorable(text)
            if problem:
                raise BadRequest(f"{what} {clean(str(key))[:40]!r} {problem}")


def _strings(key, value):
    yield str(key)
    if isinstance(value, str):
        yield value
        if value[:1] in "[{":
            try:
                stack = [json.loads(value)]
            except ValueError:
                return
            while stack:
                v = stack.pop()
                if isinstance(v, str):
                    yield v
                elif isinstance(v, dict):
                    stack.extend(v.keys())
                    stack.extend(v.values())
                elif isinstance(v, list):
                    stack.extend(v)


def _cookie(request, name: str) -> str | None:
    value = request.getCookie(name.encode())
    return value.decode("ascii", "replace") if value else None


def _cookies(request) -> dict[str, str]:
    raw = request.getHeader("cookie") or ""
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001
        return {}
    return {k: m.value for k, m in jar.items()}


def _header(request, name: str) -> str | None:
    v = request.getHeader(name)
    return v if v else None


def _is_form(request) -> bool:
    ctype = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
    return ctype == "application/x-www-form-urlencoded"


def _is_multipart(request) -> bool:
    ctype = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
    return ctype == "multipart/form-data"


def _multipart(request, limit: int) -> tuple[dict[str, str], dict[str, Upload]]:
    """Text fields and files of a multipart/form-data body (the stdlib's MIME parser)."""
    import email
    import email.policy

    request.content.seek(0)
    raw = request.content.read(limit + 1)
    if len(raw) > limit:
        raise BadRequest("request body too large")
    ctype = request.getHeader("content-type") or ""
    msg = email.message_from_bytes(b"Content-Type: " + ctype.encode("latin-1", "replace") + b"\r\n\r\n" + raw,
                                   policy=email.policy.HTTP)
    if not msg.is_multipart():
        raise BadRequest("form is not valid multipart/form-data")
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = Upload(str(filename)[-200:], data)
            continue
        try:
            fields[str(name)] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"field {str(name)[:40]!r} is not UTF-8") from None
    return fields, files


def _bearer(request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` ("" if empty); None without one (other
    schemes, e.g. a proxy's Basic, are not ours: the session cookie decides)."""
    value = request.getHeader("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _remote(request) -> str:
    addr = request.getClientAddress()
    return getattr(addr, "host", "") or ""


def _query(request) -> dict[str, str]:
    out = {}
    for k, vs in request.args.items():
        if vs and isinstance(k, bytes) and request.uri and b"?" in request.uri:
            pass
    qs = request.uri.split(b"?", 1)[1] if b"?" in request.uri else b""
    for k, v in parse_qsl(qs.decode("utf-8", "replace"), keep_blank_values=True):
        out[k] = v
    return out


def _body(request) -> dict[str, str]:
    ctype = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
    request.content.seek(0)
    raw = request.content.read(1_000_001)
    if len(raw) > 1_000_000:
        raise BadRequest("request body too large")
    if ctype == "application/json":
        try:
            data = json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        # Same shape as a form (text or None), so no handler meets an int or a bool where it
        # expects text: numbers and booleans in their JSON spelling, arrays/objects as JSON.
        return {str(k): v if isinstance(v, str) or v is None else json.dumps(v)
                for k, v in data.items()}
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise BadRequest("form is not UTF-8") from None
    return dict(pairs)


class _Leaf(Resource):
    isLeaf = True

    def __init__(self, app: WebApp):
        super().__init__()
        self.app = app

    def render(self, request):
        if self.app.closed:
            request.setResponseCode(503)
            return b"stopping"
        self.app.spawn(self.app.handle(request))
        return NOT_DONE_YET


class _Root(Resource):
    def __init__(self, app: WebApp):
        super().__init__()
        self.app = app
        self.leaf = _Leaf(app)

    def getChildWithDefault(self, name, request):
        return self.leaf

    def render(self, request):  # pragma: no cover - traversal always reaches the leaf
        return self.leaf.render(request)

