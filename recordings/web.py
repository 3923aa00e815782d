"""Controlled access to recordings over HTTP: ``RecordingsResource(db, authorize, settings=...)``.

Mounted by the web app at ``/recordings``:

- ``GET /recordings/`` → the search page for a browser (``Accept: text/html``,
  :mod:`recordings.page`), else the JSON list (filters of :mod:`recordings.search`:
  ``from``/``to`` local days, ``agent``, ``queue``, ``number``, ``ticket``, ``kind``,
  ``status``, ``uniqueid``, ``limit`` ≤ 500, ``offset``)
- ``GET /recordings/<id>`` → JSON metadata of one recording
- ``GET /recordings/<id>/audio`` → the file, inline (for an ``<audio>`` element)
- ``GET /recordings/<id>/download`` → the file as an attachment

Only users whose role is in ``[recordings] allowed_roles`` get anything (401 without
login, 403 otherwise); every request, allowed or not, is written to the audit log
with who, which recording, what byte range and from where — audio once per *play*
(the requests of one listening, :mod:`recordings.plays`), not once per byte range.
Files are named by numeric id only; the catalogue path is resolved with
:func:`recordings.layout.resolve_inside`, so no parameter can reach a file
outside the recordings directory.  File reads run in worker threads and the
body is pushed with back-pressure (a push producer), so a slow client or a
large file never stalls the event loop.  ``Range: bytes=`` requests get 206 with
``Content-Range``; unsatisfiable or malformed byte ranges get 416.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import re
from typing import Any, Callable
from zoneinfo import ZoneInfo

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

from callcenter.store.models import audit
from callcenter.web.http import STREAMED, BadRequest, Route, wants_html

from . import catalog, layout, search
from .plays import Plays
from .settings import Settings

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
_ID = re.compile(r"^[1-9][0-9]{0,17}$")


class RangeNotSatisfiable(ValueError):
    pass


_DIGITS = re.compile(r"[0-9]{1,20}")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``Range`` header → inclusive (start, end), or None to send the whole file.

    Only single ``bytes`` ranges are honoured; other units and multi-range requests
    are answered with the whole file (RFC 9110 lets a server ignore Range).  A bytes
    range that is malformed or starts beyond the end raises :class:`RangeNotSatisfiable`.
    """
    if not header:
        return None
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    if "," in spec:
        return None
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    # ASCII digits only: "²".isdigit() is true but int("²") fails (was a 500, and unaudited)
    if not dash or (first and not _DIGITS.fullmatch(first)) or (last and not _DIGITS.fullmatch(last)) \
            or not (first or last):
        raise RangeNotSatisfiable(header)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(header)
    return start, min(end, size - 1)


@implementer(IPushProducer)
class _FileSender:
    """Push ``length`` bytes of ``fh`` from ``start``: reads in a thread, pauses when the
    transport's buffer is full, stops when the client goes away."""

    def __init__(self, request, fh, start: int, length: int):
        self.request, self.fh, self.start, self.length = request, fh, start, length
        self._resume = asyncio.Event()
        self._resume.set()
        self._stopped = False

    def pauseProducing(self) -> None:
        self._resume.clear()

    def resumeProducing(self) -> None:
        self._resume.set()

    def stopProducing(self) -> None:
        self._stopped = True
        self._resume.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.request.registerProducer(self, True)
        try:
            await loop.run_in_executor(None, self.fh.seek, self.start)
            remaining = self.length
            while remaining > 0 and not self._stopped:
                await self._resume.wait()
                if self._stopped:
                    break
                block = await loop.run_in_executor(None, self.fh.read, min(CHUNK, remaining))
                if not block:
                    break
                self.request.write(block)
                remaining -= len(block)
        finally:
            await loop.run_in_executor(None, self.fh.close)
            if self.request.channel is not None:  # None once the client has gone
                self.request.unregisterProducer()


def _role(user: Any) -> str:
    return user.role or ""


def _username(user: Any) -> str:
    return user.username or "?"


class RecordingsHttp:
    """The recordings' HTTP side (see the module docstring) for one :class:`Settings`;
    the web app serves it through :func:`routes`."""

    def __init__(self, db, *, settings, clock):
        self.settings = settings
        self.db = db
        self.clock = clock
        self.plays = Plays()
        self.tz = ZoneInfo(settings.timezone)

    async def serve(self, request, user: Any, segments: list[str]) -> None:
        """:meth:`handle`, and a failure answered as Asterisk-free JSON 500 (or the
        connection dropped once the file has started to flow); never a traceback out."""
        try:
            await self.handle(request, user, segments)
        except Exception as exc:  # noqa: BLE001 - logged; the client gets a clean end
            log.error("recordings request failed: %s", exc.__class__.__name__, exc_info=exc)
            if request.finished or getattr(request, "_disconnected", False):
                return
            if not request.startedWriting:
                self._json(request, 500, {"error": "internal error"})
            else:
                request.loseConnection()

    # -- helpers -------------------------------------------------------------------------

    def _json(self, request, code: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"content-length", str(len(data)).encode())
        if request.method != b"HEAD":
            request.write(data)
        request.finish()

    async def _audit(self, actor: str, action: str, object_id: Any, **detail) -> None:
        await self.db.run(lambda s: audit(s, actor, action, "recording", object_id, **detail))

    def _client(self, request) -> str:
        peer = request.getClientAddress()
        return getattr(peer, "host", "") or ""

    async def handle(self, request, user: Any, segments: list[str]) -> None:
        """Answer ``request`` for the path ``segments`` below ``/recordings`` by ``user``
        (``None``: not logged in); writes and finishes the response."""
        target = "/".join(segments)[:64] or "*"
        ip = self._client(request)
        if user is None:
            await self._audit("anonymous", "recording.denied", target, reason="not logged in", ip=ip)
            request.setHeader(b"www-authenticate", b'Cookie realm="callcenter"')
            return self._json(request, 401, {"error": "login required"})
        who = _username(user)
        if _role(user) not in self.settings.allowed_roles:
            await self._audit(who, "recording.denied", target, reason=f"role {_role(user)!r}", ip=ip)
            return self._json(request, 403, {"error": "your role may not access recordings"})
        if not segments:
            return await self._list(request, who, ip)
        if not _ID.match(segments[0]) or len(segments) > 2:
            await self._audit(who, "recording.refused", target, reason="bad path", ip=ip)
            return self._json(request, 404, {"error": "no such recording"})
        rec_id = int(segments[0])
        if len(segments) == 1:
            return await self._meta(request, who, ip, rec_id)
        if segments[1] in ("audio", "download"):
            return await self._send(request, who, ip, rec_id, download=segments[1] == "download")
        await self._audit(who, "recording.refused", target, reason="bad path", ip=ip)
        return self._json(request, 404, {"error": "no such recording"})

    def parse_search(self, args: dict) -> search.Search:
        """The query parameters of the list or the page as a search (BadRequest names the parameter)."""
        return search.parse(args, tz=self.tz, region=self.settings.phone_region)

    def find(self, s, who: str, ip: str, query: search.Search) -> list[Any]:
        """The recordings ``query`` finds (database thread); viewing the list is audited."""
        filters = dict(query.filters)
        if query.ticket:
            from callcenter.complaints.service import TicketNotFound, get_ticket

            try:
                filters["ticket_id"] = get_ticket(s, query.ticket).id
            except TicketNotFound:
                raise BadRequest(f"no complaint ticket {query.ticket}", field="ticket") from None
        rows = catalog.query(s, limit=query.limit, offset=query.offset, **filters)
        shown = {k: str(v) for k, v in filters.items()}
        audit(s, who, "recording.list", "recording", "*", filters=shown, count=len(rows), ip=ip)
        return rows

    async def _list(self, request, who: str, ip: str) -> None:
        args = {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}
        try:
            query = self.parse_search(args)
            rows = await self.db.run(lambda s: [r.as_dict() for r in self.find(s, who, ip, query)])
        except BadRequest as exc:
            return self._json(request, 400, {"error": f"bad query parameter: {exc}"})
        return self._json(request, 200, {"recordings": rows, "limit": query.limit, "offset": query.offset})

    async def _meta(self, request, who: str, ip: str, rec_id: int) -> None:
        def fetch(s):
            rec = catalog.get(s, rec_id)
            audit(s, who, "recording.view", "recording", rec_id, found=rec is not None, ip=ip)
            return rec.as_dict() if rec is not None else None

        row = await self.db.run(fetch)
        if row is None:
            return self._json(request, 404, {"error": "no such recording"})
        return self._json(request, 200, row)

    async def _send(self, request, who: str, ip: str, rec_id: int, *, download: bool) -> None:
        action = "recording.download" if download else "recording.play"
        row = await self.db.run(lambda s: (lambda r: r and (r.path, r.status, r.format, r.duration))(
            catalog.get(s, rec_id)))
        range_header = (request.getHeader(b"range") or b"").decode("latin-1")[:100]
        if row is None:
            await self._audit(who, action, rec_id, ok=False, reason="unknown id", range=range_header, ip=ip)
            return self._json(request, 404, {"error": "no such recording"})
        path, status, fmt, duration = row
        if status != "ready":
            await self._audit(who, action, rec_id, ok=False, reason=f"status {status}", range=range_header, ip=ip)
            return self._json(request, 404, {"error": f"recording is {status}"})
        loop = asyncio.get_running_loop()
        try:
            full = layout.resolve_inside(self.settings.directory, path)
            fh = await loop.run_in_executor(None, open, full, "rb")
        except layout.UnsafePath as exc:
            log.warning("recording %s refused: %s", rec_id, exc)
            await self._audit(who, action, rec_id, ok=False, reason="path outside the recordings directory",
                              range=range_header, ip=ip)
            return self._json(request, 404, {"error": "no such recording"})
        except OSError:
            await self._audit(who, action, rec_id, ok=False, reason="file missing", range=range_header, ip=ip)
            return self._json(request, 404, {"error": "recording file is missing"})
        size = os.fstat(fh.fileno()).st_size
        try:
            rng = parse_range(range_header, size)
        except RangeNotSatisfiable:
            await loop.run_in_executor(None, fh.close)
            await self._audit(who, action, rec_id, ok=False, reason="range not satisfiable",
                              range=range_header, ip=ip)
            request.setHeader(b"content-range", f"bytes */{size}".encode())
            return self._json(request, 416, {"error": "range not satisfiable", "size": size})
        start, end = rng if rng is not None else (0, size - 1)
        length = max(0, end - start + 1)
        # a download is audited each time; audio requests once per play (recordings/plays.py)
        if download or self.plays.starts_play(who, rec_id, self.clock.seconds(), duration):
            await self._audit(who, action, rec_id, ok=True, range=range_header,
                              bytes=[start, end] if length else [], size=size, ip=ip)
        request.setResponseCode(206 if rng is not None else 200)
        if rng is not None:
            request.setHeader(b"content-range", f"bytes {start}-{end}/{size}".encode())
        request.setHeader(b"accept-ranges", b"bytes")
        request.setHeader(b"content-type", b"audio/wav" if fmt == "wav" else b"application/octet-stream")
        request.setHeader(b"content-length", str(length).encode())
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        disposition = "attachment" if download else "inline"
        request.setHeader(b"content-disposition", f'{disposition}; filename="recording-{rec_id}.{fmt}"'.encode())
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        if request.method == b"HEAD" or length == 0:
            await loop.run_in_executor(None, fh.close)
        else:
            await _FileSender(request, fh, start, length).run()
        if not gone:
            request.finish()


class RecordingsResource(Resource):
    """:class:`RecordingsHttp` as a stand-alone twisted.web resource (mounted on its own
    ``Site``); ``authorize(request) -> user | None`` (may return an awaitable)."""

    isLeaf = True

    def __init__(self, db, authorize: Callable[[Any], Any], *, settings, clock):
        super().__init__()
        self.http = RecordingsHttp(db, settings=settings, clock=clock)
        self.authorize = authorize

    def render_GET(self, request):
        async def go():
            segments = [s.decode("utf-8", "replace") for s in request.postpath]
            if segments and segments[-1] == "":
                segments = segments[:-1]
            user = self.authorize(request)
            if inspect.isawaitable(user):
                user = await user
            await self.http.serve(request, user, segments)

        asyncio.ensure_future(go())
        return NOT_DONE_YET

    def render_HEAD(self, request):
        return self.render_GET(request)


_LIST_QUERY = (("from", "string(date)", "first local day (YYYY-MM-DD)"),
               ("to", "string(date)", "last local day (YYYY-MM-DD)"),
               ("agent", "string", "the agent's phone (queue member interface), e.g. PJSIP/1001"),
               ("queue", "string", "queue name"), ("number", "string", "caller's number"),
               ("ticket", "string", "complaint ticket number (TS-2026-000123) or id (also: ticket_id)"),
               ("kind", "string", "queue | complaint | voice_message | outbound"),
               ("status", "string", "recording | ready | missing | failed | purged"),
               ("uniqueid", "string", "the call"),
               ("limit", "integer", "1-500, default 100"), ("offset", "integer", "default 0"))


def routes(settings: Settings) -> list[Route]:
    """The recordings' part of the web's route table: the roles of ``[recordings]
    allowed_roles``; every request, refused ones included, is audited (audio: once per
    play, see :mod:`recordings.plays`)."""
    roles = frozenset(settings.allowed_roles)

    def route(path: str, summary: str, **kw: Any) -> Route:
        return Route("GET", path, roles, _serve, "stream", summary, audit_as="recording", **kw)

    return [
        route("/recordings/", "Recordings: the search page for a browser (Accept: text/html), else the "
                              "JSON list; newest first; viewing the list is audited", query=_LIST_QUERY),
        route("/recordings/{id}", "One recording's metadata (JSON; audited)"),
        route("/recordings/{id}/audio", "The recording for an <audio> element (Range requests answered "
                                        "206; every play audited: recordings/plays.py)"),
        route("/recordings/{id}/download", "The recording as a file download (audited)"),
    ]


async def _serve(app, req) -> object:
    segments = [p for p in req.path.split("/") if p][1:]
    if not segments and wants_html(req.raw.getHeader("accept")):
        from .page import page

        return await page(app, req)
    await app.recordings.serve(req.raw, req.user, segments)
    return STREAMED
