"""Starting recordings on answered calls and cataloguing them when the call ends.

:class:`CaptureTracker` is the sans-IO core: it is fed AMI events and returns
:class:`Start` / :class:`Stop` commands.  :class:`RecordingsComponent` (service
component ``"recordings"``) runs them: catalogue row first (``recording``), then
``MixMonitor`` on the caller's channel over the AMI gateway; after the caller's
``Hangup`` it reads the file off the loop and finalises the row.

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
from dataclasses import dataclass, field
from typing import Any, Callable
from zoneinfo import ZoneInfo

from callcenter.logs import mask_number
from callcenter.ports import AmiClient, require

from . import catalog, layout
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
    # Outbound with only the dialer's campaign id known: the component looks the
    # campaign up (name, kind) and applies the campaign policy before recording.
    campaign_id: str | None = None


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

    def __init__(self, settings: Settings):
        self.settings = settings
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
        if not uid or not channel or uid in self.active or uid in self._outbound:
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
        if campaign and not self.settings.policy.record_campaign_call(campaign, uid):
            return []
        start = Start(uid, channel, "outbound", campaign or f"campaign-{campaign_id}", t,
                      campaign=campaign, caller_number=msg.get("CallerIDNum"),
                      campaign_id=None if campaign else campaign_id)
        self.active[uid] = Active(start)
        return [start]


def utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)


class RecordingsComponent:
    """Service component ``"recordings"``: MixMonitor on answer, catalogue on hang-up."""

    name = "recordings"

    def __init__(self, settings: Settings, *, db, clock, gateway: AmiClient):
        self.settings = settings
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.tracker = CaptureTracker(settings)
        self._ids: dict[str, tuple[int, str]] = {}  # uniqueid -> (recording id, relative path)
        self._starting: dict[str, asyncio.Future] = {}
        self._timers: dict[str, Any] = {}
        self._tasks: set[asyncio.Future] = set()
        self._listeners: list[Callable[[str, int, str, str], None]] = []
        self._zone = ZoneInfo(settings.timezone)
        self._stopping = False

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
        await self.db.run_blocking(lambda: self.settings.directory.mkdir(parents=True, exist_ok=True))
        self.gateway.subscribe(self._on_event)
        self.gateway.on_connect(self._resync)
        if self.gateway.connected:
            self._spawn(self._resync())

    async def stop(self) -> None:
        self._stopping = True
        for uid, (call, t) in list(self._timers.items()):
            if call.active():
                call.cancel()
                self._spawn(self._finalize(uid, t, attempt=10**6))
        self._timers.clear()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

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
            else:
                self._spawn(self._stopped(cmd))

    def _notify(self, what: str, rec_id: int, uid: str, status: str) -> None:
        for cb in list(self._listeners):
            try:
                cb(what, rec_id, uid, status)
            except Exception:  # noqa: BLE001 - a listener must not break capture
                log.exception("recordings listener failed")

    async def _start(self, cmd: Start) -> None:
        if cmd.campaign_id is not None:
            try:
                name, kind = await self.db.run(_campaign, cmd.campaign_id)
            except Exception:  # noqa: BLE001 - no dialer tables: fall back to the id
                log.warning("recordings: cannot look up campaign %s", cmd.campaign_id, exc_info=True)
                name, kind = None, None
            name = name or f"campaign-{cmd.campaign_id}"
            if not self.settings.policy.record_campaign_call(name, cmd.uniqueid):
                self.tracker.forget(cmd.uniqueid)
                self._starting.pop(cmd.uniqueid, None)
                return
            cmd = dataclasses.replace(cmd, campaign=name, group=name, campaign_id=None,
                                      kind="complaint" if kind == "complaint_followup" else cmd.kind)
        when = dt.datetime.fromtimestamp(cmd.t, tz=self._zone)
        rel = layout.relative_path(when, cmd.group, cmd.uniqueid, self.settings.format)
        try:
            rec_id = await self.db.run(
                catalog.start, rel=rel, kind=cmd.kind, uniqueid=cmd.uniqueid, channel=cmd.channel,
                started_at=utc(cmd.t), settings=self.settings, queue=cmd.queue,
                campaign=cmd.campaign, agent=cmd.agent, agent_name=cmd.agent_name,
                caller_number=cmd.caller_number, fmt=self.settings.format)
        except Exception:  # noqa: BLE001 - e.g. a duplicate path after a restart
            log.exception("recordings: cannot catalogue %s; not recording it", cmd.uniqueid)
            self.tracker.forget(cmd.uniqueid)
            self._starting.pop(cmd.uniqueid, None)
            return
        self._ids[cmd.uniqueid] = (rec_id, rel)
        self._notify("started", rec_id, cmd.uniqueid, "recording")
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
            self._ids.pop(cmd.uniqueid, None)
            self._starting.pop(cmd.uniqueid, None)
            await self.db.run(catalog.mark_failed, rec_id, f"MixMonitor: {exc}", utc(cmd.t))
            self._notify("finalized", rec_id, cmd.uniqueid, "failed")
            return
        log.info("recording %s started for %s %s", rec_id, cmd.kind, cmd.group)

    async def _stopped(self, cmd: Stop) -> None:
        starting = self._starting.pop(cmd.uniqueid, None)
        if starting is not None:
            await asyncio.gather(starting, return_exceptions=True)
        if cmd.uniqueid not in self._ids:
            return
        if self._stopping:
            await self._finalize(cmd.uniqueid, cmd.t, attempt=10**6)
        else:
            self._schedule(cmd.uniqueid, cmd.t, 0, self.settings.finalize_delay)

    def _schedule(self, uid: str, t: float, attempt: int, delay: float) -> None:
        self._timers[uid] = (self.clock.callLater(
            delay, lambda: self._spawn(self._finalize(uid, t, attempt))), t)

    async def _finalize(self, uid: str, t: float, attempt: int) -> None:
        self._timers.pop(uid, None)
        if uid not in self._ids:
            return
        rec_id, rel = self._ids[uid]
        active = self.tracker.active.get(uid)
        info = await self.db.run_blocking(_inspect, self.settings, rel)
        if info is None and attempt + 1 < self.settings.finalize_attempts and not self._stopping:
            self._schedule(uid, t, attempt + 1, max(1.0, self.settings.finalize_delay) * 2 ** attempt)
            return
        error = ""
        if info is None and active is not None and not active.monitor_started:
            error = "file not found; no MixMonitorStart was seen"
        status = await self.db.run(catalog.finalize, rec_id, info, utc(t), error=error)
        self.tracker.forget(uid)
        self._ids.pop(uid, None)
        log.info("recording %s %s", rec_id, status)
        self._notify("finalized", rec_id, uid, status)

    async def _resync(self) -> None:
        """After (re)connecting: settle rows left ``recording`` whose channel is gone, and
        keep tracking those whose call is still up (MixMonitor runs on in Asterisk)."""
        try:
            live = await self._live_uniqueids()
        except Exception as exc:  # noqa: BLE001
            log.warning("recordings: cannot list channels after connect: %s", exc)
            return
        rows = await self.db.run(lambda s: [(r.id, r.uniqueid, r.channel, r.kind, r.path)
                                            for r in catalog.pending(s)])
        now = self.clock.seconds()
        for rec_id, uid, channel, kind, path in rows:
            if uid in live and uid not in self.tracker.active:
                self.tracker.adopt(Start(uid, channel, kind, path.split("/")[-2], now))
                self._ids[uid] = (rec_id, path)
            elif uid not in live:
                self._ids[uid] = (rec_id, path)
                if uid in self.tracker.active:
                    self.tracker.forget(uid)
                self._spawn(self._finalize(uid, now, attempt=10**6))

    async def _live_uniqueids(self) -> set[str]:
        resp = await self.gateway.action([("Action", "CoreShowChannels")])
        items = resp if isinstance(resp, list) else [resp]
        return {m.get("Uniqueid") for m in items if m.get("Uniqueid")}


def _campaign(session, campaign_id: str) -> tuple[str | None, str | None]:
    """The dialer's campaign (name, kind) for a ``CAMPAIGN_ID`` channel variable, if known."""
    from dialer.models import Campaign  # the dialer's table: loaded with the models at start

    try:
        c = session.get(Campaign, int(campaign_id))
    except ValueError:
        return None, None
    return (c.name, c.kind) if c is not None else (None, None)


def _inspect(settings: Settings, rel: str):
    from .wav import inspect_file

    try:
        full = layout.resolve_inside(settings.directory, rel)
        return inspect_file(full, settings.format) if full.is_file() else None
    except (OSError, layout.UnsafePath):
        return None
