"""Starting recordings on answered calls and cataloguing them when the call ends.

:class:`CaptureTracker` is the sans-IO core: it is fed AMI events and returns
:class:`Start` / :class:`Attach` (a recorded campaign call reached an agent) /
:class:`Stop` commands.  :class:`RecordingsComponent` (service
component ``"recordings"``) runs them: a fact in the local :mod:`.journal` first (on disk;
the facts of a burst share an fsync, :mod:`.journal_writes`), then
``MixMonitor`` on the caller's channel over the AMI gateway at once (never waiting for
the database); the catalogue row (``recording``) follows from the journal, retried
through a database outage; after the caller's ``Hangup`` it reads the file off the loop
and finalises the row.

Why ``Hangup`` and not ``MixMonitorStop``: a monitor left running until the call
ends produces no ``MixMonitorStop`` at all, and ``MixMonitorStop`` never carries
the file name (trace 06); the MixMonitor response has no MixMonitorID either.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from zoneinfo import ZoneInfo

from callcenter.logs import mask_number
from callcenter.ports import AmiClient, require
from callcenter.store.group_commit import GroupCommit
from callcenter.store.retry import TRANSIENT, retrying

from . import catalog, layout
from .journal import Journal, unsettled
from .journal_writes import JournalWrites
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Start:
    uniqueid: str
    channel: str
    kind: str  # queue | complaint | outbound
    group: str  # queue or campaign name: the directory level in the layout
    t: float
    queue: str | None = None
    campaign: str | None = None
    agent: str | None = None
    agent_name: str | None = None
    caller_number: str | None = None
    # Outbound: the component looks the campaign up in the dialer (by id, else by name)
    # for its name and kind, and applies the campaign policy before recording.
    campaign_id: str | None = None


@dataclass(frozen=True)
class Attach:
    """A recorded campaign call was queued to an agent: the recording gets its queue and agent."""

    uniqueid: str
    queue: str | None
    agent: str | None
    agent_name: str | None


@dataclass(frozen=True)
class Stop:
    uniqueid: str
    t: float
    reason: str = "hangup"  # hangup | gone (not found after a reconnect)


@dataclass
class Active:
    start: Start
    monitor_started: bool = False
    monitor_stopped: bool = False
    filename: str | None = None


class CaptureTracker:
    """Decides when to start and when to finalise a recording, from AMI events alone."""

    MAX_REMEMBERED = 20000
    # what :meth:`feed` reads of AMI (declared to the gateway), with :attr:`variables`
    EVENTS = frozenset(("AgentConnect", "OriginateResponse", "Hangup", "MixMonitorStart", "MixMonitorStop"))

    def __init__(self, settings: Settings):
        self.settings = settings
        # the VarSet variables :meth:`_varset` looks at (two of them named by the config)
        self.variables = frozenset((settings.campaign_variable, settings.campaign_id_variable,
                                    "MIXMONITOR_FILENAME"))
        self.active: dict[str, Active] = {}
        self._campaign_of_channel: OrderedDict[str, str] = OrderedDict()
        self._campaign_id_of_channel: OrderedDict[str, str] = OrderedDict()
        self._campaign_of_action: OrderedDict[str, str] = OrderedDict()
        # Answered campaign calls: the campaign policy decides, even when the dialer then
        # queues the patient to an agent (AgentConnect on the same Uniqueid).
        self._outbound: OrderedDict[str, str] = OrderedDict()

    def expect_outbound(self, action_id: str, campaign: str) -> None:
        """The dialer announces the campaign of an Originate it is about to send."""
        self._remember(self._campaign_of_action, action_id, campaign)

    def _remember(self, d: OrderedDict, key: str, value: str) -> None:
        d[key] = value
        d.move_to_end(key)
        while len(d) > self.MAX_REMEMBERED:
            d.popitem(last=False)

    def adopt(self, start: Start) -> None:
        """Track a recording already running (found again after a restart or reconnect)."""
        self.active.setdefault(start.uniqueid, Active(start, monitor_started=True))

    def forget(self, uniqueid: str) -> None:
        self.active.pop(uniqueid, None)

    @staticmethod
    def answered_in_queue(channels: list) -> list:
        """``CoreShowChannel`` items of callers talking to a queue agent: the caller leg runs
        ``Queue`` and is in a bridge (trace 08; a caller still waiting has no BridgeId)."""
        return [m for m in channels if m.get("Application") == "Queue" and m.get("BridgeId")
                and m.get("ChannelState") == "6" and m.get("Uniqueid") and m.get("Channel")]

    def recover(self, channels: list, t: float, campaign_ids: dict[str, str]) -> list[Start]:
        """After a reconnect: answered queue calls nobody records (answered while the AMI link
        was down, so no ``AgentConnect`` was seen) that policy says to record, from now on.
        ``campaign_ids``: the dialer's campaign id of those that are campaign calls."""
        out = []
        for m in self.answered_in_queue(channels):
            uid, channel = m["Uniqueid"], m["Channel"]
            if uid in self.active:
                continue
            queue = (m.get("ApplicationData") or "").split(",")[0]
            cid = campaign_ids.get(uid)
            if cid:  # the campaign's policy decides, once the component has looked it up
                start = Start(uid, channel, "outbound", f"campaign-{cid}", t, caller_number=m.get("CallerIDNum"),
                              campaign_id=cid)
            elif self.settings.policy.record_queue_call(queue, uid):
                start = Start(uid, channel, self.settings.kind_for_queue(queue), queue or "queue", t,
                              queue=queue or None, caller_number=m.get("CallerIDNum"))
            else:
                continue
            self.active[uid] = Active(start)
            out.append(start)
        return out

    def feed(self, msg: Any, t: float) -> list[Start | Stop]:
        ev = msg.event
        if ev == "VarSet":
            return self._varset(msg)
        if ev == "AgentConnect":
            return self._agent_connect(msg, t)
        if ev == "OriginateResponse":
            return self._originate_response(msg, t)
        if ev == "Hangup":
            uid = msg.get("Uniqueid") or ""
            self._campaign_of_channel.pop(uid, None)
            self._campaign_id_of_channel.pop(uid, None)
            self._outbound.pop(uid, None)
            if uid in self.active:
                return [Stop(uid, t)]
            return []
        if ev in ("MixMonitorStart", "MixMonitorStop"):
            a = self.active.get(msg.get("Uniqueid") or "")
            if a is not None:
                if ev == "MixMonitorStart":
                    a.monitor_started = True
                else:
                    a.monitor_stopped = True
        return []

    def _varset(self, msg) -> list:
        var, uid = msg.get("Variable") or "", msg.get("Uniqueid") or ""
        if var == self.settings.campaign_variable and uid:
            self._remember(self._campaign_of_channel, uid, msg.get("Value") or "")
        elif var == self.settings.campaign_id_variable and uid:
            self._remember(self._campaign_id_of_channel, uid, msg.get("Value") or "")
        elif var == "MIXMONITOR_FILENAME" and uid in self.active:
            self.active[uid].filename = msg.get("Value")
        return []

    def _agent_connect(self, msg, t: float) -> list:
        uid, channel, queue = msg.get("Uniqueid"), msg.get("Channel"), msg.get("Queue") or ""
        if uid and uid in self._outbound:  # a campaign call: its policy decided at the answer
            if uid in self.active:
                return [Attach(uid, queue or None, msg.get("Interface"), msg.get("MemberName"))]
            return []
        if not uid or not channel or uid in self.active:
            return []
        if not self.settings.policy.record_queue_call(queue, uid):
            return []
        start = Start(uid, channel, self.settings.kind_for_queue(queue), queue or "queue", t,
                      queue=queue or None, agent=msg.get("Interface"), agent_name=msg.get("MemberName"),
                      caller_number=msg.get("CallerIDNum"))
        self.active[uid] = Active(start)
        return [start]

    def _originate_response(self, msg, t: float) -> list:
        action_id = msg.get("ActionID") or ""
        campaign = self._campaign_of_action.pop(action_id, None)
        if msg.get("Response") != "Success" or msg.get("Reason") != "4":
            return []
        uid, channel = msg.get("Uniqueid"), msg.get("Channel")
        if not uid or uid == "<unknown>" or not channel or uid in self.active:
            return []
        campaign = campaign or self._campaign_of_channel.get(uid)
        campaign_id = self._campaign_id_of_channel.get(uid)
        if not campaign and not campaign_id:
            return []  # not a campaign call (or the dialer told us nothing): queue policy applies
        self._remember(self._outbound, uid, campaign or campaign_id or "")
        # the policy needs the campaign's kind too: the component resolves it, then decides
        start = Start(uid, channel, "outbound", campaign or f"campaign-{campaign_id}", t,
                      campaign=campaign, caller_number=msg.get("CallerIDNum"), campaign_id=campaign_id)
        self.active[uid] = Active(start)
        return [start]


class _Awaiting:
    """A port whose ``run(fn)`` is ``fn()``: :func:`retrying` around a coroutine function."""

    @staticmethod
    def run(fn):
        return fn()


def utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)


class RecordingsComponent:
    """Service component ``"recordings"``: MixMonitor on answer, catalogue on hang-up."""

    name = "recordings"

    COMPACT_EVERY = 500  # settled recordings between journal compactions
    # Real seconds between the starts of two catalogue transactions / two journal flushes
    # under load (one right away after a quiet spell).  Each wakes a thread that trades the
    # interpreter lock with the loop at every statement or system call; on the AMI ingest
    # bench (one core, 2,000 calls in ~6 s) back-to-back writes made ~11,000 thread switches
    # in the window and the loop's own work (the parse, the queue-call reducer) took 1.3-1.5x
    # its CPU.  A journal flush gates MixMonitor: it waits at most JOURNAL_GAP more.
    CATALOGUE_GAP = 0.25
    JOURNAL_GAP = 0.03

    def __init__(self, settings: Settings, *, db, clock, gateway: AmiClient, journal: Journal | None = None,
                 server: str = "default"):
        self.settings = settings
        self.server = server  # the Asterisk server ([[ami]] name) this capture records on
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.journal = journal or Journal(settings.journal_path)
        # file work (journal, fingerprints) never queues behind a database that hangs
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recordings-io")
        self._journal = JournalWrites(self.journal, self._file_io, gap=self.JOURNAL_GAP)  # many facts per fsync
        self._catalogue_writes = GroupCommit(db, gap=self.CATALOGUE_GAP)  # many catalogue writes per transaction
        self._catalogue_many = self._catalogue_writes.many()  # ... and many rows per statement
        self.tracker = CaptureTracker(settings)
        self._ids: dict[str, tuple[int, str]] = {}  # uniqueid -> (recording id, relative path)
        self._rows: dict[str, asyncio.Future] = {}  # uniqueid -> its catalogue insert (retried)
        self._settled_since_compact = 0
        self._end_unknown: set[str] = set()
        self._campaigns: dict[str, tuple[str, str | None]] = {}  # "id|name" -> (name, kind)
        self._writes: dict[asyncio.Future, list] = {}  # tasks awaiting a catalogue write -> its failures
        self._starting: dict[str, asyncio.Future] = {}
        self._timers: dict[str, Any] = {}
        # recordings whose finalisation is due: finalised together by one task (one file job
        # reads them, one transaction writes them, one fsync settles them); what falls due
        # while a batch is under way goes in the next (a task, a file job, a write and a
        # journal wait per call were most of capture's share of the event loop)
        self._due: list[tuple[str, float, int, bool]] = []
        self._finalizer: asyncio.Future | None = None
        self._tasks: set[asyncio.Future] = set()
        self._listeners: list[Callable[[str, int, str, str], None]] = []
        self._zone = ZoneInfo(settings.timezone)
        self._stopping = False
        self._closed = False  # stopped: events and reconnects are no longer ours to act on

    # -- public API ---------------------------------------------------------------------
    def expect_outbound(self, action_id: str, campaign: str) -> None:
        """Call before ``gateway.originate(action_id, ...)`` so an answered call of this
        campaign is recorded per the campaign policy (alternative: set the channel
        variable named by ``[recordings] campaign_variable`` on the Originate)."""
        self.tracker.expect_outbound(action_id, campaign)

    def subscribe(self, cb: Callable[[str, int, str, str], None]) -> None:
        """``cb(what, recording_id, uniqueid, status)``, what = started|finalized."""
        self._listeners.append(cb)

    async def wait_finalized(self, uniqueid: str, timeout: float = 30.0) -> int:
        """Resolve with the recording id once the recording of ``uniqueid`` is settled."""
        fut = asyncio.get_running_loop().create_future()

        def cb(what, rec_id, uid, status):
            if what == "finalized" and uid == uniqueid and not fut.done():
                fut.set_result(rec_id)

        self._listeners.append(cb)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._listeners.remove(cb)

    async def idle(self) -> None:
        """Wait until no catalogue/AMI work is in flight (scheduled finalisations excepted)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def scheduled(self) -> int:
        """How many finalisations wait for their delay (tests, status pages)."""
        return sum(1 for c, _t in self._timers.values() if c.active())

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        require(self.gateway, AmiClient, "recordings capture")
        if self.settings.policy.campaign_names:
            check_campaign_names(self.settings.policy, await self.db.run(_campaign_names))
        await self._file_io(lambda: self.settings.directory.mkdir(parents=True, exist_ok=True))
        try:
            entries = await self._file_io(self.journal.open)
        except OSError as exc:
            raise RuntimeError(f"recordings journal {self.journal.path} cannot be opened ({exc}); "
                               "set [recordings] journal to a writable file on a local disk") from None
        await self._replay(entries)
        self.gateway.subscribe(self._on_event, CaptureTracker.EVENTS, self.tracker.variables)
        self.gateway.on_connect(self._resync)
        if self.gateway.connected:
            self._spawn(self._resync())

    async def stop(self) -> None:
        self._stopping = True
        for task, failed in list(self._writes.items()):
            if failed:  # waiting out an outage: the journal has it
                task.cancel()
        while True:  # (a batch under way may schedule a file's next look: settled here too)
            for uid, (call, t) in list(self._timers.items()):
                if call.active():
                    call.cancel()
                    self._spawn(self._finalize(uid, t, attempt=10**6))
            self._timers.clear()
            if not self._tasks:
                break
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        # nothing awaited since the drain: from here an event (a Hangup while serve stops) or a
        # reconnect would start work on the journal and file thread closed below
        self.gateway.unsubscribe(self._on_event)
        self._closed = True
        await self._catalogue_writes.close()
        await self._journal.drained()
        owed = await self._file_io(self.journal.compact)
        if owed:
            log.warning("recordings: %d recording(s) not yet catalogued; kept in %s for the next start",
                        owed, self.journal.path)
        await self._file_io(self.journal.close)
        self._io.shutdown(wait=True)

    async def _file_io(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def _replay(self, entries: list[dict]) -> None:
        """Catalogue what a previous run started but could not store (its database was down,
        or it stopped first); settle what has ended, follow the rest like adopted calls."""
        owed = unsettled(entries)
        if owed:
            log.info("recordings: %d recording(s) from the journal to catalogue", len(owed))
        for uid, o in owed.items():
            f = o.start
            self._catalogue_soon(f)
            if o.refused is not None:
                self._spawn(self._settle_refused(uid, o.refused, f["t"]))
            elif o.ended is not None:
                self._spawn(self._finalize(uid, o.ended, attempt=0))
            else:
                self.tracker.adopt(Start(uid, f["channel"], f["kind"], f["rel"].split("/")[-2], f["t"],
                                         queue=f.get("queue"), campaign=f.get("campaign"),
                                         caller_number=f.get("caller_number")))

    # -- events -------------------------------------------------------------------------
    def _spawn(self, coro) -> asyncio.Future:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recordings: background work failed", exc_info=task.exception())

    def _on_event(self, msg, t: float) -> None:
        for cmd in self.tracker.feed(msg, t):
            if isinstance(cmd, Start):
                self._starting[cmd.uniqueid] = self._spawn(self._start(cmd))
            elif isinstance(cmd, Attach):
                self._spawn(self._attach(cmd))
            else:
                self._on_event_stop(cmd)

    def _notify(self, what: str, rec_id: int, uid: str, status: str) -> None:
        for cb in list(self._listeners):
            try:
                cb(what, rec_id, uid, status)
            except Exception:  # noqa: BLE001 - a listener must not break capture
                log.exception("recordings listener failed")

    async def _start(self, cmd: Start) -> None:
        if cmd.kind == "outbound":
            key = f"{cmd.campaign_id}|{cmd.campaign}"
            known = self._campaigns.get(key)  # a campaign's name and kind never wait twice
            if known is not None:
                name, kind = known
            else:
                try:
                    name, kind = await self.db.run(_campaign, cmd.campaign_id, cmd.campaign)
                except Exception:  # noqa: BLE001 - database down: the policy cannot be applied
                    log.exception("recordings: cannot look up campaign %s; not recording %s",
                                  cmd.campaign or cmd.campaign_id, cmd.uniqueid)
                    self.tracker.forget(cmd.uniqueid)
                    self._starting.pop(cmd.uniqueid, None)
                    return
                if name is not None:
                    self._campaigns[key] = (name, kind)
            name = name or cmd.campaign or f"campaign-{cmd.campaign_id}"
            if not self.settings.policy.record_campaign_call(name, kind, cmd.uniqueid):
                self.tracker.forget(cmd.uniqueid)
                self._starting.pop(cmd.uniqueid, None)
                return
            cmd = dataclasses.replace(cmd, campaign=name, group=name, campaign_id=None,
                                      kind="complaint" if kind == "complaint_followup" else cmd.kind)
        when = dt.datetime.fromtimestamp(cmd.t, tz=self._zone)
        rel = layout.relative_path(when, cmd.group, cmd.uniqueid, self.settings.format, self.server)
        fact = {"op": "start", "uid": cmd.uniqueid, "rel": rel, "kind": cmd.kind, "channel": cmd.channel,
                "t": cmd.t, "queue": cmd.queue, "campaign": cmd.campaign, "agent": cmd.agent,
                "agent_name": cmd.agent_name, "caller_number": cmd.caller_number}
        try:
            await self._journal.append(fact)
        except OSError as exc:  # no durable note: a recording nobody could find is not made
            log.error("recordings: journal %s not writable (%s); not recording %s",
                      self.journal.path, exc, cmd.uniqueid)
            self.tracker.forget(cmd.uniqueid)
            self._starting.pop(cmd.uniqueid, None)
            return
        self._catalogue_soon(fact)
        action = [("Action", "MixMonitor"), ("Channel", cmd.channel),
                  ("File", self.settings.asterisk_path(rel))]
        if self.settings.mixmonitor_options:
            action.append(("Options", self.settings.mixmonitor_options))
        try:
            resp = await self.gateway.action(action)
            if isinstance(resp, list):
                resp = resp[0]
            if resp.get("Response") not in ("Success", None):
                raise RuntimeError(resp.get("Message") or resp.get("Response"))
        except Exception as exc:  # noqa: BLE001 - AmiError, timeout, not connected
            log.warning("recordings: MixMonitor refused for %s (%s): %s",
                        cmd.uniqueid, mask_number(cmd.caller_number), exc)
            self.tracker.forget(cmd.uniqueid)
            self._starting.pop(cmd.uniqueid, None)
            await self._journal.append({"op": "refused", "uid": cmd.uniqueid,
                                                      "error": f"MixMonitor: {exc}"})
            await self._settle_refused(cmd.uniqueid, f"MixMonitor: {exc}", cmd.t)
            return
        log.info("recording of %s started for %s %s", cmd.uniqueid, cmd.kind, cmd.group)

    async def _write(self, fn, *args, many: bool = False, **kw):
        """A catalogue write, retried while the database is unavailable (:meth:`_retried`).
        The writes of a burst of calls share a transaction (group commit); ``many``: ``fn``
        takes a list of items (``args``: this write's one), those of a transaction share
        its statements."""
        if many:  # one of many rows of a statement (``fn(session, items)``, the item in args)
            return await self._retried(self._catalogue_many, fn, *args)
        return await self._retried(self._catalogue_writes, lambda s: fn(s, *args, **kw))

    async def _retried(self, port, fn, *args):
        """``port.run(fn, *args)`` through :func:`store.retry.retrying`; at stop a write
        waiting to retry is abandoned (the journal keeps its fact for the next start): the
        task awaiting it is cancelled (no task of its own, one less per write)."""
        failed: list[BaseException] = []

        def on_failure(exc, delay):
            failed.append(exc)
            log.warning("recordings: database unavailable (%s); retrying in %.1f s",
                        exc.__class__.__name__, delay)
        task = asyncio.current_task()
        self._writes[task] = failed
        try:
            return await retrying(port, fn, *args, clock=self.clock, base_delay=0.5, max_delay=10.0,
                                  give_up=lambda: self._stopping, on_failure=on_failure)
        finally:
            self._writes.pop(task, None)

    def _start_item(self, f: dict) -> dict:
        """:func:`catalog.start_many`'s item for a journal ``start`` fact."""
        return dict(rel=f["rel"], kind=f["kind"], uniqueid=f["uid"], channel=f["channel"],
                    started_at=utc(f["t"]), settings=self.settings, queue=f.get("queue"),
                    campaign=f.get("campaign"), agent=f.get("agent"), agent_name=f.get("agent_name"),
                    caller_number=f.get("caller_number"), fmt=self.settings.format, server=self.server)

    def _catalogue_soon(self, f: dict) -> None:
        """The ``recording`` row of a journal ``start`` fact (idempotent: a replay finds it),
        queued for the next catalogue transaction without a task of its own; only a write
        that meets an unavailable database becomes one (:meth:`_catalogue`, retried)."""
        uid = f["uid"]
        fut = self._catalogue_writes.run_many(catalog.start_many, self._start_item(f))
        self._rows[uid] = fut
        self._tasks.add(fut)

        def landed(fut: asyncio.Future) -> None:
            self._tasks.discard(fut)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is None:
                self._catalogued(f, fut.result())
            elif isinstance(exc, TRANSIENT) and not self._stopping:
                log.warning("recordings: database unavailable (%s); retrying", exc.__class__.__name__)
                self._rows[uid] = self._spawn(self._catalogue(f))  # (before a waiting _row resumes)
            else:
                log.error("recordings: catalogue row of %s not written", uid, exc_info=exc)
        fut.add_done_callback(landed)

    async def _catalogue(self, f: dict) -> None:
        """:meth:`_catalogue_soon`'s write again, retried while the database is unavailable."""
        rec_id = await self._write(catalog.start_many, self._start_item(f), many=True)
        self._catalogued(f, rec_id)

    def _catalogued(self, f: dict, rec_id: int) -> None:
        self._ids[f["uid"]] = (rec_id, f["rel"])
        self._notify("started", rec_id, f["uid"], "recording")

    async def _row(self, uid: str) -> tuple[int, str] | None:
        """The catalogue row of ``uid``, once its insert got through (None: it never will)."""
        while uid not in self._ids:
            pending = self._rows.get(uid)
            if pending is None:
                break
            await asyncio.gather(pending, return_exceptions=True)
            if self._rows.get(uid) is pending:  # not handed on to a retry: that was its end
                break
        return self._ids.get(uid)

    async def _settle_refused(self, uid: str, error: str, t: float) -> None:
        row = await self._row(uid)
        if row is None:
            return
        await self._write(catalog.mark_failed, row[0], error, utc(t))
        await self._settled(uid)
        self._notify("finalized", row[0], uid, "failed")

    async def _settled(self, uid: str) -> None:
        await self._settled_all([uid])

    async def _settled_all(self, uids: list[str]) -> None:
        """The journal says these are settled (one fsync); compacted every COMPACT_EVERY."""
        facts = []
        for uid in uids:
            self._ids.pop(uid, None)
            self._rows.pop(uid, None)
            facts.append(self._journal.append({"op": "settled", "uid": uid}))
        for fact in facts:  # one flush: the first wait ends when they are all on disk
            await fact
        self._settled_since_compact += len(uids)
        if self._settled_since_compact >= self.COMPACT_EVERY:
            self._settled_since_compact = 0
            await self._file_io(self.journal.compact)

    async def _attach(self, cmd: Attach) -> None:
        starting = self._starting.get(cmd.uniqueid)
        if starting is not None and not starting.done():
            await asyncio.gather(starting, return_exceptions=True)
        row = await self._row(cmd.uniqueid)  # None: dropped by the policy or a refused MixMonitor
        if row is not None:
            await self._write(catalog.set_agent, row[0], queue=cmd.queue, agent=cmd.agent,
                              agent_name=cmd.agent_name)

    def _on_event_stop(self, cmd: Stop) -> None:
        """The call ended: its ``ended`` fact in the journal, then its finalisation scheduled
        (a task only when its start is still under way; otherwise callbacks)."""
        starting = self._starting.get(cmd.uniqueid)
        if starting is not None and not starting.done():
            self._spawn(self._stopped(cmd))
            return
        self._starting.pop(cmd.uniqueid, None)
        if not self._owns(cmd):
            return
        written = self._journal.append({"op": "ended", "uid": cmd.uniqueid, "t": cmd.t})
        self._tasks.add(written)
        written.add_done_callback(lambda fut: self._ended(cmd, fut))

    def _owns(self, cmd: Stop) -> bool:
        """Is the call's recording ours to finalise (catalogued, or its row on the way)?"""
        if cmd.uniqueid not in self._rows and cmd.uniqueid not in self._ids:
            return False
        if cmd.reason == "gone":  # noticed after a reconnect: the call's length is not known
            self._end_unknown.add(cmd.uniqueid)
        return True

    def _ended(self, cmd: Stop, written: asyncio.Future) -> None:
        self._tasks.discard(written)
        if written.cancelled():
            return
        if written.exception() is not None:  # not durable: the next start finds the call gone
            log.error("recordings: journal %s: the end of %s not written", self.journal.path, cmd.uniqueid,
                      exc_info=written.exception())
            return
        if self._stopping:
            self._spawn(self._finalize(cmd.uniqueid, cmd.t, attempt=10**6))
        else:
            self._schedule(cmd.uniqueid, cmd.t, 0, self.settings.finalize_delay)

    async def _stopped(self, cmd: Stop) -> None:
        """:meth:`_on_event_stop` once the call's start, still under way, is done."""
        starting = self._starting.get(cmd.uniqueid)
        if starting is not None:
            await asyncio.gather(starting, return_exceptions=True)
        self._on_event_stop(cmd)

    def _schedule(self, uid: str, t: float, attempt: int, delay: float) -> None:
        self._timers[uid] = (self.clock.callLater(delay, self._fall_due, uid, t, attempt), t)

    def _fall_due(self, uid: str, t: float, attempt: int) -> None:
        self._timers.pop(uid, None)
        self._due.append((uid, t, attempt, True))
        if self._finalizer is None or self._finalizer.done():
            self._finalizer = self._spawn(self._finalize_due())

    async def _finalize_due(self) -> None:
        await asyncio.sleep(0)  # what this turn of the loop makes due goes in the same batch
        while self._due:
            batch, self._due = self._due, []
            await self._finalize_many(batch)

    async def _finalize(self, uid: str, t: float, attempt: int, end_known: bool = True) -> None:
        await self._finalize_many([(uid, t, attempt, end_known)])

    async def _finalize_many(self, batch: list[tuple[str, float, int, bool]]) -> None:
        """Fingerprint the files of ``batch`` ((uid, end, attempt, end known)) and finalise
        their rows; a file not there yet is looked for again later, up to finalize_attempts."""
        todo = []
        for uid, t, attempt, end_known in batch:
            self._timers.pop(uid, None)
            row = await self._row(uid)
            if row is not None:
                todo.append((uid, t, attempt, end_known, *row))
        if not todo:
            return
        infos = await self._file_io(_inspect_all, self.settings, [rel for *_, rel in todo])
        items, uids = [], []
        for (uid, t, attempt, end_known, rec_id, _rel), info in zip(todo, infos):
            active = self.tracker.active.get(uid)
            if info is None and attempt + 1 < self.settings.finalize_attempts and not self._stopping:
                self._schedule(uid, t, attempt + 1, max(1.0, self.settings.finalize_delay) * 2 ** attempt)
                continue
            error = ""
            if info is None and active is not None and not active.monitor_started:
                error = "file not found; no MixMonitorStart was seen"
            end_known = end_known and uid not in self._end_unknown
            self._end_unknown.discard(uid)
            items.append(catalog.Finalize(rec_id, info, utc(t), error, end_known))
            uids.append(uid)
        if not items:
            return
        done = []
        for uid, item, status in zip(uids, items, await self._write_items(catalog.finalize_many, items)):
            if isinstance(status, BaseException):  # this row's own failure; the others go on
                log.error("recordings: recording %s of %s not finalised", item.rec_id, uid, exc_info=status)
                continue
            self.tracker.forget(uid)
            done.append((uid, item.rec_id, status))
        await self._settled_all([uid for uid, _, _ in done])
        for uid, rec_id, status in done:
            if status == "ready":
                log.info("recording %s %s", rec_id, status)
            self._notify("finalized", rec_id, uid, status)

    async def _write_items(self, fn_many, items: list) -> list:
        """``fn_many``'s result for each item, or the exception of that item alone: one
        statement of one catalogue transaction for them all; the items the database was
        unavailable for are tried again as :meth:`_write` is (:meth:`_retried`)."""
        results: dict[int, Any] = {}

        async def attempt():
            waits = [(i, self._catalogue_writes.run_many(fn_many, items[i]))
                     for i in range(len(items)) if i not in results]
            unavailable = None
            for i, fut in waits:
                try:
                    results[i] = await fut
                except TRANSIENT as exc:
                    unavailable = exc
                except Exception as exc:  # noqa: BLE001 - this item's own error, handed back
                    results[i] = exc
            if unavailable is not None:
                raise unavailable
            return [results[i] for i in range(len(items))]
        return await self._retried(_Awaiting, attempt)

    async def _resync(self) -> None:
        """After (re)connecting: settle rows left ``recording`` whose channel is gone, keep
        tracking those whose call is still up (MixMonitor runs on in Asterisk), and start
        recording answered calls that were answered while the link was down."""
        if self._closed:
            return
        try:
            resp = await self.gateway.action([("Action", "CoreShowChannels")])
        except Exception as exc:  # noqa: BLE001
            log.warning("recordings: cannot list channels after connect: %s", exc)
            return
        channels = [m for m in (resp if isinstance(resp, list) else [resp]) if m.get("Uniqueid")]
        live = {m.get("Uniqueid") for m in channels}
        now = self.clock.seconds()
        try:
            rows = await self.db.run(lambda s: [(r.id, r.uniqueid, r.channel, r.kind, r.path)
                                                for r in catalog.pending(s)])
        except TRANSIENT as exc:  # the journal knows what this process started; the rest waits
            log.warning("recordings: database unavailable after connect (%s); rows left 'recording' "
                        "are settled at the next connect", exc.__class__.__name__)
            rows = []
        for rec_id, uid, channel, kind, path in rows:
            if uid in live and uid not in self.tracker.active:
                self.tracker.adopt(Start(uid, channel, kind, path.split("/")[-2], now))
                self._ids[uid] = (rec_id, path)
            elif uid not in live and uid not in self._rows:  # (in _rows: this run finalises it already,
                self._ids[uid] = (rec_id, path)                 # with the end the journal knows)
                if uid in self.tracker.active:
                    self.tracker.forget(uid)
                self._spawn(self._finalize(uid, now, attempt=10**6, end_known=False))
        for uid in [u for u in self.tracker.active if u not in live and u in self._rows]:
            self._on_event_stop(Stop(uid, now, "gone"))  # journal-known, ended while we were away
        campaign_ids = {}
        for m in self.tracker.answered_in_queue(channels):
            if m["Uniqueid"] not in self.tracker.active:
                campaign_ids[m["Uniqueid"]] = await self._channel_var(m["Channel"],
                                                                      self.settings.campaign_id_variable)
        for cmd in self.tracker.recover(channels, now, {u: c for u, c in campaign_ids.items() if c}):
            log.warning("recordings: %s was answered while the AMI link was down; recording from now on",
                        cmd.uniqueid)
            self._starting[cmd.uniqueid] = self._spawn(self._start(cmd))

    async def _channel_var(self, channel: str, name: str) -> str:
        try:
            resp = await self.gateway.action([("Action", "Getvar"), ("Channel", channel), ("Variable", name)])
        except Exception as exc:  # noqa: BLE001 - the channel went meanwhile: nothing to record
            log.info("recordings: Getvar %s on %s: %s", name, channel, exc)
            return ""
        if isinstance(resp, list):
            resp = resp[0]
        return resp.get("Value") or ""


def _campaign(session, campaign_id: str | None, name: str | None) -> tuple[str | None, str | None]:
    """The dialer's campaign (name, kind) for a ``CAMPAIGN_ID`` (else ``CAMPAIGN``) channel
    variable; (None, None) when the dialer has no such campaign."""
    from sqlalchemy import select

    from dialer.models import Campaign  # the dialer's table: loaded with the models at start

    c = session.get(Campaign, int(campaign_id)) if campaign_id and campaign_id.isdigit() else None
    if c is None and name:
        c = session.scalar(select(Campaign).where(Campaign.name == name))
    return (c.name, c.kind) if c is not None else (None, None)


def _campaign_names(session) -> list[str]:
    from sqlalchemy import select

    from dialer.models import Campaign

    return list(session.scalars(select(Campaign.name)))


def check_campaign_names(policy, known: list[str]) -> None:
    """Start-up check: every ``name:`` entry of ``[recordings] campaign_policy`` names a
    campaign the dialer has, or one it creates on first use (complaint-followup, callback)."""
    from callcenter.config import ConfigError
    from dialer.campaigns import AUTO_CREATED, auto_name

    names = sorted(set(known) | {auto_name(k) for k in AUTO_CREATED})
    for name in policy.campaign_names:
        if name not in names:
            raise ConfigError(f"[recordings] campaign_policy: entry name:{name}: no campaign named {name!r} "
                              f"(known: {', '.join(names)}); create it first or use kind:<kind>")


def _inspect_all(settings: Settings, rels: list[str]) -> list:
    """The fingerprint of each file (None: not there, or not readable): one job on the file
    thread for a batch, the recordings directory resolved once for it."""
    from .wav import inspect_file

    try:
        base = layout.real_root(settings.directory)
    except OSError:
        return [None] * len(rels)
    out = []
    for rel in rels:
        try:
            full = layout.resolve_inside(settings.directory, rel, base=base)
            out.append(inspect_file(full, settings.format) if full.is_file() else None)
        except (OSError, layout.UnsafePath):
            out.append(None)
    return out
