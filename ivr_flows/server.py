"""FastAGI server: runs a flow per connection (component ``"agi"``).

The server is panoramisk's ``fast_agi.Application`` with one route per flow
(``agi_network_script`` = flow name), adapted in :mod:`ivr_flows.fastagi` where
panoramisk 1.4 misreads Asterisk (unsolicited ``HANGUP``, multi-line 520, EOF
in the environment; see that module).  The call logic is the sans-IO
:class:`~ivr_flows.engine.Engine`; this module only feeds it the replies of
``Request.send_command`` (as Replies: ``AgiRequest.command``), runs effects (database hooks) off the loop, and
records the session.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.errors import DomainError
from callcenter.logs import RepeatLimiter, mask_number
from callcenter.clock import sleep
from callcenter.ports import (Appointments, AssemblyError, Callbacks, ComplaintIntake, QueueLoad, Ratings, Surveys,
                             VoiceMessages, require_all)
from callcenter.queuecalls.ratings import QueueCallNotStored
from callcenter.store.retry import TRANSIENT

from .agi import EnvError
from .agi_transport import AgiConnection
from .engine import Done, Effect, Engine, warm_holidays
from .fastagi import REPLY_TIMEOUT, AgiApplication, AgiRequest
from .flow import FLOWS_DIR, Flow, FlowError, flow_file, flow_path, load_flow
from . import session_rows
from .writes import SessionWrites

log = logging.getLogger(__name__)
SESSION_TIMEOUT = 3600  # no IVR call lasts an hour: drop the connection
STALLED = 2.0           # s without a reply to a quick AGI command: at the session cap, shed first
RATING_LINK_WAIT = 600.0  # s a rating waits for its queue call to be stored (the tracker's batches)
FLOW_RECHECK = 1.0      # s (injected clock) between two looks at a served flow's file


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)


@dataclass(frozen=True)
class IvrPorts:
    """What the IVR asks of other features, passed in by the composition root.

    ``queue_load``: the live queues (``longest_wait_over`` conditions); the others
    run inside the session's database transaction: voice messages are catalogued
    (recordings), complaint messages open tickets (complaints), callback requests,
    survey answers and appointment look-ups and answers go to the dialer; post-call ratings
    go to the queue calls (``ratings``).
    """

    queue_load: QueueLoad
    voice_messages: VoiceMessages
    tickets: ComplaintIntake
    callbacks: Callbacks
    surveys: Surveys
    ratings: Ratings
    appointments: Appointments

    def __post_init__(self) -> None:
        require_all([(self.queue_load, QueueLoad, "IVR queue_load"),
                     (self.voice_messages, VoiceMessages, "IVR voice_messages"),
                     (self.tickets, ComplaintIntake, "IVR tickets"),
                     (self.callbacks, Callbacks, "IVR callbacks"),
                     (self.surveys, Surveys, "IVR surveys"),
                     (self.ratings, Ratings, "IVR ratings"),
                     (self.appointments, Appointments, "IVR appointments")])


def close_interrupted(s: Any, now: float) -> int:
    """``ended_at`` NULL = a session whose process died (kill -9, crash) mid-flow: end it
    at ``now``, result "interrupted".  A session still running in another process
    rewrites both when it finishes."""
    from sqlalchemy import update

    from .models import IvrSession

    return s.execute(update(IvrSession).where(IvrSession.ended_at.is_(None), IvrSession.started_at <= _utc(now))
                     .values(ended_at=_utc(now), result="interrupted")).rowcount


class AgiServer:
    """A service component (``name = "agi"``) serving ``agi://HOST:PORT/<flow>``.

    ``ports`` (:class:`IvrPorts`) are the other features the flows use; ``db`` is a
    :class:`callcenter.store.Database` (sessions are stored when given);
    ``recordings_dir`` is where Asterisk writes voice messages (its own view).
    ``latency`` (a list) receives the server's own time per AGI round trip, in seconds.
    """

    name = "agi"

    def __init__(self, host: str = "127.0.0.1", port: int = 4573, *, clock: Any, ports: IvrPorts,
                 recordings_dir: str, db: Any = None, flows_dir: str | Path | None = None,
                 timezone: str = "Asia/Shanghai", country: str = "CN", region: str = "CN",
                 prompt_base: str = "callcenter", latency: list | None = None,
                 shutdown_write_timeout: float = 10.0, max_sessions: int = 256,
                 reply_timeout: float = REPLY_TIMEOUT, sounds_dir: str | Path | None = None):
        if not isinstance(ports, IvrPorts):
            raise AssemblyError(f"AgiServer: ports must be IvrPorts, not {type(ports).__name__}")
        self.host, self.port = host, port
        self.clock = clock
        self.db = db
        self.flows_dir = Path(flows_dir) if flows_dir else None
        self.timezone, self.country, self.region = timezone, country, region
        self.prompt_base = prompt_base
        self.recordings_dir = recordings_dir
        self.ports = ports
        self.latency = latency
        self.sounds_dir = Path(sounds_dir) if sounds_dir else None
        self.missing_prompts: list[str] = []  # what the start-up check found
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._flows: dict[str, tuple[float, Flow]] = {}
        self._flow_seen: dict[str, float] = {}  # name -> when its file was last looked at
        self.sessions_total = 0
        self.active = 0
        self.writes: SessionWrites | None = None  # the sessions' database writes (start)
        self.shutdown_write_timeout = shutdown_write_timeout
        self.max_sessions = max_sessions  # more at once are refused at accept: the fds stay bounded
        self.refused = 0
        self.shed = 0
        self._no_env: dict[AgiConnection, asyncio.Task] = {}  # connected, no environment yet
        self._in_flow: dict[AgiConnection, AgiRequest] = {}
        self._refusals = RepeatLimiter(log, self, interval=60.0)
        self.app = AgiApplication(resolve=self._resolve, latency=latency, reply_timeout=reply_timeout)

    # -- component ------------------------------------------------------------
    async def start(self) -> None:
        if self.db is not None and (self.writes is None or self.writes.closing):
            self.writes = SessionWrites(self.db, self.clock)
        if self.db is not None:
            await self._close_interrupted()
        for path in sorted(self.flows_root().glob("*.y*ml")):
            if flow_path(path.stem, self.flows_dir) is not None and path.stem not in self.app._route:
                self.app.add_route(path.stem, self._run_flow)
                self.flow(path.stem)  # parsed now, not in the first caller's session on the loop
        local_day = dt.datetime.fromtimestamp(self.now(), ZoneInfo(self.timezone)).date()
        try:
            warm_holidays(self.country, local_day)
        except Exception as exc:  # noqa: BLE001 - as in the engine: flows then see no holidays
            log.warning("no public holidays known for %r (%s): holiday conditions are false", self.country, exc)
        self.check_prompts()
        handle = self._handle  # one plain Protocol per connection: no streams layer per reply
        self._server = await asyncio.get_running_loop().create_server(
            lambda: AgiConnection(handle), self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("FastAGI listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.writes is not None:  # flush what the database takes; log (masked) the rest
            await self.writes.close(self.shutdown_write_timeout)

    async def _close_interrupted(self) -> None:
        """Sessions a previous run left open (killed mid-menu) are closed now as
        "interrupted"; the moment they ended is unknown (at most now)."""
        try:
            n = await self.db.run(close_interrupted, self.now())
        except Exception as exc:  # noqa: BLE001 - the database may be down at start: try next start
            log.error("could not close the IVR sessions left open by the last run (%s); "
                      "they stay open until the next start", exc.__class__.__name__)
            return
        if n:
            log.warning("closed %d IVR sessions left open by the last run (result 'interrupted')", n)

    def check_prompts(self) -> list[str]:
        """Log (ERROR, naming them) the prompt files of the served flows that Asterisk's
        sounds directory lacks: a caller would hear nothing there."""
        from .prompts import missing_files

        if self.sounds_dir is None:
            log.info("IVR prompts not checked: [agi] sounds_dir not set (Asterisk's sounds directory)")
            return []
        if not self.sounds_dir.is_dir():
            log.error("IVR prompts not checked: sounds directory %s is not readable here", self.sounds_dir)
            return []
        flows = [f for f in (self.flow(name) for name in sorted(self.app._route)) if f is not None]
        self.missing_prompts = missing_files(flows, self.sounds_dir, self.prompt_base)
        if self.missing_prompts:
            log.error("IVR prompts missing in %s (callers hear nothing there; `callcenter prompts build "
                      "--out %s/%s`): %s", self.sounds_dir, self.sounds_dir, self.prompt_base,
                      ", ".join(self.missing_prompts))
        return self.missing_prompts

    def flows_root(self) -> Path:
        return self.flows_dir or FLOWS_DIR

    def now(self) -> float:
        return self.clock.seconds()

    def seconds(self) -> float:  # IReactorTime-like, for the repeat limiter
        return self.now()

    # -- flows ------------------------------------------------------------------
    def flow(self, name: str) -> Flow | None:
        """The flow for a request path; reloaded when the file changes.

        The file is looked at (one ``stat``) at most every ``FLOW_RECHECK`` seconds, not
        per call: a ``stat`` blocks the loop, every caller's replies wait behind it, and on
        a network share it can take milliseconds.  An edit is served within a second."""
        cached = self._flows.get(name)
        now = self.now()
        if cached is not None and 0 <= now - self._flow_seen.get(name, -FLOW_RECHECK) < FLOW_RECHECK:
            return cached[1]
        found = flow_file(name, self.flows_dir)
        self._flow_seen[name] = now
        if found is None:
            self._flows.pop(name, None)
            return None
        path, mtime = found
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            flow = load_flow(path)
        except FlowError as exc:
            log.error("flow %s is invalid, not served:\n%s", path, exc)
            return cached[1] if cached else None
        self._flows[name] = (mtime, flow)
        return flow

    def queue_load(self, queue: str) -> dict | None:
        """The engine's view of a queue's load (``None``: unknown, the condition fails)."""
        info = self.ports.queue_load.queue_load(queue)
        if info is None:
            return None
        return {"longest_wait": info.longest_wait, "agents_available": info.agents_available}

    # -- connection -------------------------------------------------------------
    def _resolve(self, name: str):
        """A route for a flow file that appeared after start (served like the others)."""
        return self._run_flow if flow_path(name, self.flows_dir) is not None else None

    async def _handle(self, reader: AgiConnection, writer: AgiConnection) -> None:
        if self.active >= self.max_sessions and not self._shed_one():
            self.refused += 1
            self._refusals.warning("cap", "FastAGI session refused: %d sessions open ([agi] max_sessions)",
                                   self.active)
            writer.transport.abort()
            return
        task = asyncio.current_task()
        self._no_env[writer] = task
        self._tasks.add(task)
        self.active += 1
        try:
            async with asyncio.timeout(SESSION_TIMEOUT):  # no second task per session, unlike wait_for
                await self.app.handler(reader, writer)
        except (asyncio.TimeoutError, ConnectionError, EnvError) as exc:
            log.info("FastAGI connection ended: %s", exc.__class__.__name__)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("FastAGI session failed")
        finally:
            self.active -= 1
            self._tasks.discard(task)
            self._no_env.pop(writer, None)
            try:
                writer.close()
            except Exception:  # pragma: no cover
                pass

    def _shed_one(self) -> bool:
        """At the cap, drop the oldest connection that has not sent its environment: Asterisk
        sends it at once, so that is not a caller, and a flood of them must not keep one out."""
        for writer in self._no_env:
            del self._no_env[writer]
            self.shed += 1
            self._refusals.info("shed", "FastAGI session cap reached: a connection without its "
                                        "environment dropped for a new one")
            writer.transport.abort()
            return True
        # Next: the session longest without a reply to a command Asterisk answers at once
        # (ANSWER, SET VARIABLE...), if that is over STALLED seconds: that is no PBX either.
        now = asyncio.get_running_loop().time()
        stalled = [(r.waiting_quick, w) for w, r in self._in_flow.items()
                   if r.waiting_quick is not None and now - r.waiting_quick > STALLED]
        if stalled:
            _, writer = min(stalled, key=lambda x: x[0])
            del self._in_flow[writer]
            self.shed += 1
            self._refusals.info("shed-stalled", "FastAGI session cap reached: a session without a reply "
                                                "to a quick command dropped for a new one")
            writer.transport.abort()
            return True
        return False

    async def _run_flow(self, request: AgiRequest) -> None:
        """The route of every flow: run the engine over the request's commands."""
        self._no_env.pop(request.writer, None)
        self._in_flow[request.writer] = request
        try:
            await self._flow(request)
        finally:
            self._in_flow.pop(request.writer, None)

    async def _flow(self, request: AgiRequest) -> None:
        env = request.env
        flow = self.flow(env.script)
        if flow is None:
            log.error("FastAGI: no flow for request %r", env.script)
            return
        self.sessions_total += 1
        engine = Engine(flow, env, now=self.now, timezone=self.timezone, country=self.country,
                        region=self.region, prompt_base=self.prompt_base, recordings_dir=self.recordings_dir)
        request.on_hangup = engine.hangup_seen
        record = _SessionRecord(self, engine)
        step = engine.start()
        try:
            while not isinstance(step, Done):
                if isinstance(step, Effect):
                    step = engine.send(await self._effect(step, engine, record))
                    continue
                reply = await request.command(step.line)
                record.begin()  # once: the insert reaches the database after the next command is written
                if reply is None:  # connection closed by Asterisk
                    engine.hangup_seen()
                step = engine.send(reply)
        finally:
            await record.finish(engine)
        if log.isEnabledFor(logging.INFO):  # the arguments cost more than the call when it is off
            log.info("IVR %s caller %s: %s via %s", flow.name, mask_number(engine.caller_number),
                     engine.result, "/".join(engine.path))

    async def prepare_voice_message(self, path: str) -> str | None:
        """Make the voice message's directory exist (off the loop); None, or why not (logged)."""
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, self.ports.voice_messages.prepare_voice_message, path)
        except OSError as exc:
            log.error("voice message cannot be recorded: %s", exc)
            return str(exc)
        return None

    async def _effect(self, eff: Effect, engine: Engine, record: "_SessionRecord") -> Any:
        try:
            if eff.name == "queue_load":
                return self.queue_load(eff.args["queue"])
            if eff.name == "session_id":
                return await record.session_id()
            if eff.name == "voicemail_prepare":
                return await self.prepare_voice_message(eff.args["path"])
            if eff.name == "voicemail":
                return await record.voicemail(eff.args)
            if eff.name == "callback":
                return await record.callback(eff.args)
            if eff.name == "survey_result":
                return await record.survey_result(eff.args)
            if eff.name == "rating":
                return await record.rating(eff.args)
            if eff.name == "appointment":
                return await record.appointment(eff.args)
            if eff.name == "appointment_answer":
                return await record.appointment_answer(eff.args)
            if eff.name == "notification_message":
                return await record.notification_message(eff.args)
        except (LookupError, DomainError) as exc:  # caller/network data we cannot use: bad input, not a bug
            log.warning("IVR effect %s refused: %s", eff.name, exc)
            engine.warn(f"{eff.name} refused: {exc}")
        except Exception:
            log.exception("IVR effect %s failed", eff.name)
            engine.warn(f"{eff.name} failed")
        return None


class _What:
    """A write's name in the log (masked), as of when it was queued; formatted only when a log
    line needs it (two writes a session, and nearly none is ever logged)."""

    __slots__ = ("kind", "flow", "number", "uniqueid")

    def __init__(self, kind: str, flow: str, number: str, uniqueid: str):
        self.kind, self.flow, self.number, self.uniqueid = kind, flow, number, uniqueid

    def __str__(self) -> str:
        return f"{self.kind} ({self.flow}, caller {mask_number(self.number)}, uniqueid {self.uniqueid[:32]!r})"


class _SessionRecord:
    """The ``ivr_sessions`` row of one session, and the hooks run in its name.

    Every write goes through the session's lane (:mod:`.writes`): the row insert
    first, then what the caller asked for, then the row's completion, in that order
    and retried through a database outage.  The caller waits for a write only while
    the database answers (the row id for ``IVR_SESSION``, ids for the session's
    detail); during an outage the flow carries on and the writes follow later.

    A retried write may have committed before its connection failed, so each one
    checks first: the insert looks for its row, and every hook marks its work in the
    row's ``detail["done"]`` in the same transaction (a second run returns the first
    run's ids instead of opening a second ticket or callback).
    """

    def __init__(self, server: AgiServer, engine: Engine):
        self.server = server
        self.engine = engine
        self.started = engine.started_at
        self.number = engine.caller_number[:64]  # as first inserted (a retried insert looks for it)
        self.sid: int | None = None  # set by the insert, in lane order before later writes
        self._insert_tried = False
        self.lane = server.writes.lane() if server.db is not None and server.writes is not None else None
        self._insert = None
        self.hooked = False  # a hook's write was queued: it may have written ids into the row's detail

    def begin(self) -> None:
        """Queue the row's insert (once; before any other write of the session).

        The session calls it after the first reply (ANSWER's, which Asterisk sends at once):
        the insert then reaches the database thread after the next command is written, while
        the caller hears the first prompt, instead of competing for the CPU and the
        interpreter lock with the answer's round trip the caller waits on."""
        if self.lane is not None and self._insert is None:
            self._insert = self.lane.submit(self._create, self._what("IVR session"), connection=True)

    def _hook(self, work, what: _What):
        """Queue a hook's write (after the row's insert, before its completion)."""
        self.begin()
        self.hooked = True
        return self.lane.submit(work, what)

    def _what(self, kind: str) -> "_What":
        e = self.engine
        return _What(kind, e.flow.name, e.caller_number, e.uniqueid)

    # -- the row ------------------------------------------------------------------
    def _create(self, conn) -> int:
        e = self.engine
        uniqueid, number = e.uniqueid[:64], self.number
        if self._insert_tried:  # an earlier try may have committed: find its row
            sid = session_rows.find_row(conn, flow=e.flow.name, uniqueid=uniqueid, caller_number=number,
                                        started=self.started)
            if sid is not None:
                self.sid = sid
                return sid
        self._insert_tried = True
        self.sid = session_rows.insert_row(conn, flow=e.flow.name, uniqueid=uniqueid, caller_number=number,
                                           started_at=_utc(self.started), language=e.language)
        return self.sid

    def _row(self, s):
        from .models import IvrSession

        return s.get(IvrSession, self.sid) if self.sid is not None else None

    @staticmethod
    def _done_before(row, name: str) -> dict | None:
        """The ids stored by an earlier committed run of effect ``name``, else None."""
        detail = (row.detail or {}) if row is not None else {}
        return detail if name in (detail.get("done") or []) else None

    @staticmethod
    def _mark(row, name: str, **ids: Any) -> None:
        if row is not None:
            detail = dict(row.detail or {})
            detail.update({k: v for k, v in ids.items() if v is not None})
            detail["done"] = [*(detail.get("done") or []), name]
            row.detail = detail

    async def session_id(self) -> int | None:
        """The row's id, unless the database is unavailable (then None: no ``IVR_SESSION``)."""
        self.begin()
        if self._insert is None:
            return None
        try:
            return await self.server.writes.wait(self._insert, None)
        except Exception:
            log.exception("could not store the IVR session")
            return None

    async def finish(self, engine: Engine) -> None:
        if self.lane is None:
            return
        self.begin()  # a session that ended before its first reply still has its row
        ended = self.server.now()
        detail = dict(engine.details)
        if engine.warnings:
            detail["warnings"] = engine.warnings[:20]
        path, digits = list(engine.path), ",".join(engine.digits)[:256]
        number = engine.caller_number[:64]  # an outbound survey learns the patient's number after ANSWER
        result, language = (engine.result or "hangup")[:64], engine.language
        hooked = self.hooked  # else the row's detail is still the insert's {}: nothing to read back

        def upd(conn):
            if self.sid is None:  # the insert failed for good (logged)
                return
            session_rows.complete_row(conn, self.sid, ended_at=_utc(ended), path=path, digits=digits,
                                      result=result, language=language, caller_number=number,
                                      detail=detail, merge=hooked)  # keeps ids written by the hooks
        # the row's own writes: not a hook; Core statements, no ORM session
        w = self.lane.submit(upd, self._what("IVR session end"), connection=True)
        try:
            await self.server.writes.wait(w)
        except Exception:
            log.exception("could not complete IVR session %s", self.sid)

    # -- hooks --------------------------------------------------------------------
    async def voicemail(self, args: dict) -> dict:
        """Store the message (recordings) and, unless it cannot be acted on (not recorded, or
        under ``min_seconds`` of audio: the catalogue says why), open a ticket or a callback
        request."""
        ports = self.server.ports
        eng = self.engine
        out: dict = {"voice_message": args["path"]}
        if self.lane is None:
            return out

        def work(s):
            row = self._row(s)
            before = self._done_before(row, "voicemail")
            if before is not None:
                return {**out, **{k: before[k] for k in ("recording_id", "ticket_id", "contact_id", "unusable")
                                  if k in before}}
            res = dict(out)
            rid = None
            try:  # a catalogue failure must not lose the ticket / callback
                with s.begin_nested():
                    rid = ports.voice_messages.add_voice_message(
                        s, path=args["path"], uniqueid=eng.uniqueid, caller_number=eng.caller_number,
                        started_at=_utc(args["started_at"]), duration=args["duration"])
                res["recording_id"] = rid
                why = ports.voice_messages.unusable(s, rid, args["min_seconds"])
                if why is not None:  # empty, cut short, not there, or nothing said
                    res["unusable"] = why
                    self._mark(row, "voicemail", recording_id=rid, unusable=why)
                    return res
            except TRANSIENT:
                raise
            except Exception as exc:
                log.exception("voice message not catalogued")
                eng.warn(f"voice message not catalogued: {exc.__class__.__name__}")
            if args["link"] == "complaint":
                res["ticket_id"] = ports.tickets.open_from_voice_message(
                    s, caller_number=eng.caller_number, uniqueid=eng.uniqueid, ivr_session_id=self.sid,
                    caller_name=eng.caller_name, recording_id=rid, received_at=_utc(args["started_at"]),
                    language=eng.language)
            elif args["link"] == "callback" and not args.get("callback_phone"):
                eng.warn("voice message kept; caller ID withheld, no callback requested")
            elif args["link"] == "callback":
                res["contact_id"] = ports.callbacks.request_callback(
                    s, phone=args["callback_phone"], name=eng.caller_name, reason="voice message",
                    requested_at=_utc(args["started_at"]), ivr_session_id=self.sid)
            self._mark(row, "voicemail", **{k: v for k, v in res.items() if k != "voice_message"})
            return res
        w = self._hook(work, self._what("voice message " + str(args.get("link"))))
        return await self.server.writes.wait(w, out)

    async def callback(self, args: dict) -> int | None:
        callbacks = self.server.ports.callbacks
        eng = self.engine
        if self.lane is None:
            eng.warn("callback requested but IVR sessions are not stored (no database)")
            return None
        requested_at = _utc(self.server.now())

        def work(s):
            row = self._row(s)
            before = self._done_before(row, "callback")
            if before is not None:
                return before.get("contact_id")
            cid = callbacks.request_callback(s, phone=args["phone"], name=eng.caller_name,
                                             reason=args["reason"], requested_at=requested_at,
                                             ivr_session_id=self.sid)
            self._mark(row, "callback", contact_id=cid)
            return cid
        w = self._hook(work, self._what("callback request"))
        # database down: the request is queued and retried until stored, so it may be confirmed
        return await self.server.writes.wait(w, "queued")

    async def survey_result(self, args: dict) -> Any:
        surveys = self.server.ports.surveys
        eng = self.engine
        if self.lane is None or not args.get("attempt_id"):
            eng.details["survey"] = {"answers": args["answers"], "opted_out": args["opted_out"]}
            return None
        answers = {k: v for k, v in args["answers"].items() if v is not None}
        at = _utc(self.server.now())  # when the patient answered, not when the write got through

        def work(s):
            row = self._row(s)
            if self._done_before(row, "survey") is not None:
                return None
            out = surveys.record_survey_result(s, attempt_id=args["attempt_id"], answers=answers,
                                               opted_out=args["opted_out"], completed=args["completed"],
                                               ivr_session_id=self.sid, at=at)
            self._mark(row, "survey")
            return out
        w = self._hook(work, self._what(f"survey answers of attempt {str(args['attempt_id'])[:20]}"))
        return await self.server.writes.wait(w, None)

    async def rating(self, args: dict) -> Any:
        """Store the post-call rating on its queue call (and flag the call's tickets when it is
        unsatisfied).  The call's row may not be written yet (the tracker writes in batches):
        then the write is tried again in the background, so the caller hears the thanks at once;
        the rating is in the session's ``detail`` whatever happens."""
        eng = self.engine
        if self.lane is None:
            eng.warn("rating not stored: IVR sessions are not stored (no database)")
            return None
        ratings = self.server.ports.ratings
        at = _utc(self.server.now())  # when the caller answered, not when the write got through

        def work(s):
            row = self._row(s)
            before = self._done_before(row, "rating")
            if before is not None:
                return {"queue_call_id": before.get("queue_call_id"), "tickets": before.get("tickets") or []}
            out = ratings.record_rating(s, uniqueid=args["uniqueid"], queue=args["queue"], agent=args["agent"],
                                        outcome=args["outcome"], score=args["score"], level=args["level"],
                                        at=at, ivr_session_id=self.sid)
            self._mark(row, "rating", queue_call_id=out["queue_call_id"], tickets=out["tickets"] or None)
            return out
        what = self._what(f"rating {args['outcome']} of the {args['queue'][:32]} call")
        try:
            return self._told(await self.server.writes.wait(self._hook(work, what), None))
        except QueueCallNotStored:
            task = asyncio.ensure_future(self._rating_later(work, what))
            self.server._tasks.add(task)
            task.add_done_callback(self.server._tasks.discard)
            return None

    async def _rating_later(self, work, what: _What) -> None:
        clock, deadline, delay = self.server.clock, self.server.now() + RATING_LINK_WAIT, 1.0
        try:
            while True:
                await sleep(clock, delay)
                try:
                    self._told(await self.server.writes.wait(self._hook(work, what), None))
                    return
                except QueueCallNotStored:
                    if self.server.now() >= deadline:
                        log.error("IVR: %s not linked: its queue call was not stored within %.0f s "
                                  "(kept in the IVR session's detail)", what, RATING_LINK_WAIT)
                        return
                    delay = min(delay * 2, 30.0)
        except asyncio.CancelledError:
            log.error("IVR: %s not linked at shutdown (kept in the IVR session's detail)", what)
            raise
        except Exception:
            log.exception("IVR: %s failed", what)

    def _told(self, out: Any) -> Any:
        """A rating just committed: tell who follows them (the wallboard)."""
        if isinstance(out, dict) and out.get("fact") is not None:
            self.server.ports.ratings.rated(out["fact"])
        return out

    async def appointment(self, args: dict) -> dict | None:
        """The appointment the call is about (a read: nothing to mark as done)."""
        if self.lane is None:
            self.engine.warn("appointment look-up needs the database (IVR sessions not stored)")
            return None
        appointments, at = self.server.ports.appointments, _utc(self.server.now())

        def work(s):
            return appointments.find_appointment(s, by=args["by"], attempt_id=args.get("attempt_id"),
                                                 caller_number=args.get("caller_number") or "",
                                                 patient_number=args.get("patient_number"), at=at)
        w = self._hook(work, self._what("appointment look-up"))
        return await self.server.writes.wait(w, None)

    async def appointment_answer(self, args: dict) -> bool:
        """Store the patient's answer on the appointment (retried through an outage, once)."""
        if self.lane is None:
            self.engine.warn("appointment answer not stored: IVR sessions are not stored (no database)")
            return False
        appointments, eng = self.server.ports.appointments, self.engine
        at = _utc(self.server.now())  # when the patient pressed the key
        via = "reminder" if args.get("attempt_id") else "hotline"

        def work(s):
            row = self._row(s)
            if self._done_before(row, "appointment_answer") is not None:
                return True
            ok = appointments.answer_appointment(s, appointment_id=int(args["appointment_id"]),
                                                 answer=args["answer"], via=via, attempt_id=args.get("attempt_id"),
                                                 ivr_session_id=self.sid, at=at)
            self._mark(row, "appointment_answer", appointment_answer=args["answer"])
            return ok
        w = self._hook(work, self._what(f"appointment answer {args['answer']} ({eng.flow.name})"))
        return await self.server.writes.wait(w, True)  # database down: queued, so it will be stored

    async def notification_message(self, args: dict) -> str | None:
        if self.lane is None or not args.get("attempt_id"):
            return None
        appointments = self.server.ports.appointments

        def work(s):
            return appointments.notification_message(s, attempt_id=args["attempt_id"])
        w = self._hook(work, self._what("notification message"))
        return await self.server.writes.wait(w, None)
