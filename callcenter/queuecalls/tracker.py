"""The "queuecalls" component: gateway events → reducer → batched, idempotent writes.

* every AMI event goes through :func:`reducer.reduce` on the loop (cheap, pure);
  finished queue calls are buffered and written in batches by one writer task via
  ``db.run`` (a worker thread), a write starting at most every ``write_gap`` (0.25 s)
  unless ``batch_size`` calls wait (each write recounts the rollup slots it touches).  A failed write keeps the batch and retries with
  backoff: nothing is dropped, and the merge in :mod:`.store` makes retries safe;
* one tracker per Asterisk server (``server``: its ``[[ami]]`` name): its state, rows,
  checkpoint and outages are that server's (two servers may reuse a Uniqueid);
* a durable checkpoint (``queuecall_server_checkpoints``) says up to when every queue call is
  stored: the moment the tracker last heard from Asterisk with nothing buffered, written
  in the same transaction as each batch and every ``checkpoint_interval`` on a quiet line;
  it does not move while the link is down or a resync is under way;
* on every (re)connect (after ``FullyBooted``, see the gateway): ``QueueStatus`` +
  ``CoreShowChannels`` → :func:`reducer.resync`, retried with backoff while Asterisk
  refuses them; then the time nobody listened — a lost link, or at start-up everything
  since the checkpoint, however short — is recovered from ``queue_log`` and its rotated
  predecessors when ``[ami] queue_log`` is readable, and always stored as an
  ``ami_outages`` row (recovered, or a gap when queue_log is missing or does not reach
  back far enough).  Rebuilt rows keep what was known live (caller name, IVR session);
* ``live()`` and ``subscribe(cb)`` feed the wallboard.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
from typing import Any, Callable

from ..ami.gateway import AmiError, AmiNotConnected
from ..clock import sleep
from ..logs import mask_number
from ..ports import QueueLoadInfo
from ..store.retry import retrying
from . import queueconf, queuelog, store
from .agentstate import agent_state, in_wrapup, wrapup_ends, wrapup_seconds
from .reducer import (EVENTS, FACT_TYPES, VARIABLES, Fact, Finished, LiveCall, MemberChanged, QueueCallRecord, ReducerConfig,
                      TrackerState, conditions, evict, reduce, resync)

log = logging.getLogger(__name__)

# queue_log has whole seconds and a call may end a moment before the checkpoint is taken:
# recovery starts this much earlier (what is already stored merges, never counts twice)
SLACK = 2.0


class QueueCallsTracker:
    name = "queuecalls"

    def __init__(self, db: Any, clock: Any, *, gateway: Any = None, server: str = "default",
                 answer_target: float = 30.0,
                 short_abandon: float = 5.0, region: str = "CN", queue_log: str = "",
                 batch_size: int = 500, flush_interval: float = 1.0, retry_max_delay: float = 30.0,
                 retry_base_delay: float = 0.5, queue_wrapup: float | dict[str, float] | None = None,
                 checkpoint_interval: float = 5.0, resync_max_delay: float = 30.0,
                 write_gap: float = 0.25):
        self.db = db
        self.server = server
        # queues.conf wrapuptime, used when a member's Wrapuptime is 0: None = read from Asterisk
        # (GetConfig, :mod:`.queueconf`) on every login; a number or {queue: s} = given (tests)
        self.read_queue_config = queue_wrapup is None
        self.queue_wrapup: float | dict[str, float] = {} if queue_wrapup is None else queue_wrapup
        self.queue_config_error: str | None = None   # why the queues' wrapuptime is unknown
        self.clock = clock
        self.gateway = gateway
        self.answer_target = answer_target
        self.short_abandon = short_abandon
        self.queue_log = queue_log
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        # at least this long between the starts of two writes while fewer than batch_size
        # calls wait: each write recounts the rollup slots it touches (a busy 15-min slot's
        # every call), so back-to-back writes of a few rows each cost that recount again and
        # again (a write started the moment the last one ended: 8-9 a second in a burst)
        self.write_gap = write_gap
        self._write_started = -math.inf
        self.retry_max_delay = retry_max_delay
        self.retry_base_delay = retry_base_delay
        self.state = TrackerState(ReducerConfig(region=region))
        self.buffer: list[QueueCallRecord] = []
        self.written = 0
        self.write_errors = 0
        self.outage_start: float | None = None
        self._subs: list[tuple[tuple[type, ...], Callable[[Fact], Any]]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._timer: Any = None
        self._wrapup_timer: Any = None
        self._stopping = False
        self._resyncing = False
        self._write_lock = asyncio.Lock()
        self._first_connect = True
        self.checkpoint_interval = checkpoint_interval
        self.resync_max_delay = resync_max_delay
        self.checkpoint: float | None = None   # the last one stored
        self._stopped_at: float | None = None
        self._checkpoint_due = 0.0
        self._synced = False                   # a resync completed on the current link
        self._resync_backoff = False           # waiting to retry a refused resync

    # -- wiring ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.gateway is not None:
            self.gateway.subscribe(self.on_event, EVENTS, VARIABLES, conditions(self.state))
            self.gateway.on_connect(self.resync)
            self.gateway.on_disconnect(self.on_disconnect)
            if self.gateway.connected:
                asyncio.ensure_future(self.resync())  # logged in before we were listening
        self._stopping = False
        self._stopped_at = None
        self._writer = asyncio.ensure_future(self._writer_loop())

    async def stop(self) -> None:
        self._stopping = True
        self._stopped_at = self.clock.seconds()  # events after this are not reduced
        if self.gateway is not None:
            self.gateway.unsubscribe(self.on_event)
        self._wake.set()
        if self._writer is not None:
            try:
                await asyncio.wait_for(self._writer, 30)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                log.error("queuecalls: %d finished calls not written at stop", len(self.buffer))
            self._writer = None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._cancel_wrapup_timer()

    def subscribe(self, cb: Callable[[Fact], Any], *kinds: type) -> None:
        """``cb(fact)`` for every fact of the given types (:data:`reducer.Fact`; all if none)."""
        self._subs.append((kinds or FACT_TYPES, cb))

    # -- events ------------------------------------------------------------------------------
    def on_event(self, msg, t: float) -> None:
        _, facts = reduce(self.state, msg, t)
        if facts:
            self._facts(facts)

    def _facts(self, facts: list[Fact]) -> None:
        members = False
        for fact in facts:
            if isinstance(fact, Finished):
                self.buffer.append(fact.record)
            elif isinstance(fact, MemberChanged):
                members = True
            self._notify(fact)
        if len(self.buffer) >= self.batch_size:
            self._wake.set()
        if members and not self._stopping:
            self._schedule_wrapup()

    def _notify(self, fact: Fact) -> None:
        for kinds, cb in self._subs:
            if isinstance(fact, kinds):
                try:
                    cb(fact)
                except Exception:  # noqa: BLE001
                    log.exception("queuecalls subscriber %r failed", cb)

    # -- agent states ------------------------------------------------------------------------
    def _queue_wrapup(self, queue: str) -> float:
        w = self.queue_wrapup
        return float(w.get(queue, 0.0)) if isinstance(w, dict) else float(w or 0.0)

    def wrapup_of(self, queue: str) -> float:
        """The queue's wrap-up seconds (queues.conf ``wrapuptime`` as read from Asterisk)."""
        return self._queue_wrapup(queue)

    def member_state(self, queue: str, m: Any, now: float | None = None) -> str:
        """The member's named state (:func:`agentstate.agent_state`) at ``now`` (default: the clock)."""
        return agent_state(status=m.state, paused=m.paused, in_call=m.in_call, last_call=m.last_call,
                           wrapuptime=m.wrapuptime, now=self.clock.seconds() if now is None else now,
                           activity=self.state.activity.get(m.interface),
                           queue_wrapup=self._queue_wrapup(queue))

    def _schedule_wrapup(self) -> None:
        """Asterisk sends nothing when a wrap-up ends: wake up then and report the member."""
        now = self.clock.seconds()
        ends = [e for q, ms in self.state.members.items() for m in ms.values()
                if (e := wrapup_ends(m.last_call, wrapup_seconds(m.wrapuptime, self._queue_wrapup(q)), now))
                is not None]
        nxt = min(ends, default=None)
        t = self._wrapup_timer
        if t is not None and t.active():
            if nxt is not None and abs(t.getTime() - nxt) < 1e-6:
                return
            t.cancel()
        self._wrapup_timer = None
        if nxt is not None:
            self._wrapup_timer = self.clock.callLater(max(0.0, nxt - now), self._wrapup_over)

    def _wrapup_over(self) -> None:
        self._wrapup_timer = None
        now = self.clock.seconds()
        for queue, ms in self.state.members.items():
            for m in ms.values():
                w = wrapup_seconds(m.wrapuptime, self._queue_wrapup(queue))
                end = int(m.last_call) + math.ceil(w) if m.last_call and w > 0 else None
                if end is not None and end <= now < end + 1:
                    self._notify(MemberChanged(queue, m))
        self._schedule_wrapup()

    def _cancel_wrapup_timer(self) -> None:
        if self._wrapup_timer is not None and self._wrapup_timer.active():
            self._wrapup_timer.cancel()
        self._wrapup_timer = None

    def on_disconnect(self, t: float) -> None:
        self._synced = False
        if self.outage_start is None:
            self.outage_start = t

    async def resync(self) -> None:
        """Rebuild live state from Asterisk after every login (the gateway awaits this)."""
        self._resyncing = True
        self._synced = False
        try:
            await self._read_queue_config()
            snapshot = await self._snapshot()
            if snapshot is None:
                return  # the link went again: the next login resyncs (the outage stays open)
            qs, ch, asked_at = snapshot
            t = self.clock.seconds()
            lost_at = self.outage_start
            if self._first_connect:
                # nobody listened since the checkpoint (this process was not running)
                self._first_connect = False
                cp = await self._retrying(store.load_checkpoint, self.server)
                if cp is not None and (self.outage_start is None or cp < self.outage_start):
                    self.outage_start = cp
                self.checkpoint = cp
            facts = resync(self.state, qs, ch, t, lost_at=lost_at, asked_at=asked_at)
            self._facts(facts)
            log.info("queuecalls resync: %d calls live", len(self.state.calls))
            if self.outage_start is not None:
                start, self.outage_start = self.outage_start, None
                await self._close_outage(start, t, [f.record for f in facts if isinstance(f, Finished)])
            self._synced = True
        finally:
            self._resyncing = False
            self._wake.set()

    async def _read_queue_config(self) -> None:
        """Each queue's wrapuptime from Asterisk; refused: an error naming it, kept until a
        later login reads it (the wrap-up state then counts only members' own Wrapuptime)."""
        if not self.read_queue_config:
            return
        try:
            self.queue_wrapup = await queueconf.read_wrapup(self.gateway)
            self.queue_config_error = None
            log.info("queuecalls: queues.conf wrapuptime %s", self.queue_wrapup)
        except queueconf.QueueConfigError as exc:
            self.queue_config_error = str(exc)
            log.error("queuecalls: %s", exc)

    async def _snapshot(self) -> tuple[list, list, float] | None:
        """``QueueStatus`` + ``CoreShowChannels``; refused (Asterisk still loading app_queue,
        "Invalid/unknown command") → retried with capped backoff while the link is up."""
        gw = self.gateway
        delay = 1.0
        while True:
            try:
                asked_at = self.clock.seconds()
                qs = await gw.action({"Action": "QueueStatus"})
                ch = await gw.action({"Action": "CoreShowChannels"})
                return (qs if isinstance(qs, list) else [], ch if isinstance(ch, list) else [], asked_at)
            except AmiNotConnected:
                return None
            except AmiError as exc:
                if not gw.connected or self._stopping:
                    return None
                log.warning("queuecalls resync refused by Asterisk (%s); retrying in %.0f s", exc, delay)
            self._resyncing, self._resync_backoff = False, True  # idle until the timer (test steppers)
            try:
                await sleep(self.clock, delay)
            finally:
                self._resyncing, self._resync_backoff = True, False
            delay = min(self.resync_max_delay, delay * 2)

    async def _close_outage(self, start: float, end: float, finished: list[QueueCallRecord]) -> None:
        """Recover ``[start, end]`` from queue_log and store the outage row.  ``finished``:
        the calls the resync just finished (their names and IVR links are merged in)."""
        recovered: list[QueueCallRecord] = []
        ok = False
        note = ""
        span = None
        path = self.queue_log
        members = {(q, m.name): iface for q, ms in self.state.members.items()
                   for iface, m in ms.items() if m.name}
        if path and os.access(path, os.R_OK):
            try:
                span = await self.db.run_blocking(queuelog.read_since, path, start - SLACK)
                recovered = queuelog.recover(span.events, start - SLACK, end, member_interfaces=members,
                                             region=self.state.config.region)
                ok, note = span.complete, span.note
            except OSError as exc:
                note = f"queue_log unreadable: {exc.__class__.__name__}"
        else:
            note = "no queue_log configured" if not path else "queue_log not readable"
        live = set(self.state.calls)
        recovered = [r for r in recovered if r.uniqueid not in live]
        if recovered:
            await self._merge_known(recovered, finished)
        bounded: list[QueueCallRecord] = []
        if span is not None and finished:
            bound = queuelog.crash_bound(span.events, start - SLACK, end)
            if bound is not None:
                bounded = _cut_off(finished, {r.uniqueid for r in recovered}, bound, members)
        # buffered, and subscribers see them
        self._facts([Finished(r) for r in recovered + bounded])
        if ok:
            log.warning("AMI outage of %.1f s: recovered %d queue calls from queue_log",
                        end - start, len(recovered))
        elif recovered:
            log.warning("AMI outage of %.1f s: recovered %d queue calls from queue_log, but it may be "
                        "incomplete (%s): recorded as a gap", end - start, len(recovered), note)
        else:
            log.warning("AMI outage of %.1f s: recorded as a gap (%s)", end - start, note)
        await self._retrying(store.record_outage, start, end, ok, len(recovered), note, self.server)

    async def _merge_known(self, recovered: list[QueueCallRecord], finished: list[QueueCallRecord]) -> None:
        """queue_log has no caller name and no IVR session: take them from what the resync
        just finished, the channel variables seen, then stored rows and ``ivr_sessions``."""
        known: dict[str, tuple[str, int | None]] = {r.uniqueid: (r.caller_name, r.ivr_session_id)
                                                    for r in finished}
        for uid, (variables, _) in self.state.chan_vars.items():
            sid = variables.get("IVR_SESSION")
            if sid is not None and sid.isdigit():
                name, old = known.get(uid, ("", None))
                known[uid] = (name, old or int(sid))
        need = sorted({r.uniqueid for r in recovered
                       if not all(known.get(r.uniqueid, ("", None)))})
        if need:
            for uid, (name, sid) in (await self._retrying(store.known_of, need, self.server)).items():
                old_name, old_sid = known.get(uid, ("", None))
                known[uid] = (old_name or name, old_sid or sid)
        for i, r in enumerate(recovered):
            name, sid = known.get(r.uniqueid, ("", None))
            recovered[i] = dataclasses.replace(r, caller_name=r.caller_name or name,
                                               ivr_session_id=r.ivr_session_id or sid)

    # -- writing ------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write everything buffered now (tests, shutdown)."""
        while self.buffer:
            await self._write_some()

    async def _write_some(self) -> None:
        async with self._write_lock:  # one writer at a time: the batch is the buffer's head
            batch = self.buffer[: self.batch_size]
            if not batch:
                return
            cp = self._safe_point() if len(batch) == len(self.buffer) else None
            await self._retrying(store.write_batch, batch, self.answer_target, cp, self.server)
            del self.buffer[: len(batch)]
            self.written += len(batch)
            self._stored_checkpoint(cp)

    def _safe_point(self) -> float | None:
        """The checkpoint a write may store: now, when the link is up and resynced and
        every call that ended so far has been reduced (an abandon the reducer still
        holds — it waits for what follows — ended at its ``abandon_at``); else None."""
        gw = self.gateway
        if gw is None or not gw.connected or not self._synced or self._resyncing \
                or self.outage_start is not None:
            return None
        t = self.clock.seconds() if self._stopped_at is None else self._stopped_at
        held = [c.abandon_at for c in self.state.calls.values() if c.abandon_at is not None]
        return min([t, *held])

    def _stored_checkpoint(self, cp: float | None) -> None:
        if cp is not None:
            self.checkpoint = max(cp, self.checkpoint or cp)
            self._checkpoint_due = self.clock.seconds() + self.checkpoint_interval

    async def _heartbeat(self, final: bool = False) -> None:
        """On a quiet line: move the checkpoint every ``checkpoint_interval`` (and at stop)."""
        if not final and self.clock.seconds() < self._checkpoint_due:
            return
        cp = self._safe_point()
        if cp is None:
            return
        async with self._write_lock:
            if self.buffer:
                return  # the next batch carries it
            await self._retrying(store.save_checkpoint, cp, self.server)
            self._stored_checkpoint(cp)

    async def _retrying(self, fn, *args) -> Any:
        """Any failure keeps the data and retries (the merge in :mod:`.store` makes it safe),
        waiting on the clock; at stop, after 50 failures, it gives up."""
        def failed(exc: BaseException, delay: float) -> None:
            self.write_errors += 1
            log.error("queuecalls: database write failed (%s); retrying in %.1f s",
                      exc.__class__.__name__, delay)

        return await retrying(self.db, fn, *args, clock=self.clock, base_delay=self.retry_base_delay,
                              max_delay=self.retry_max_delay, retry_on=Exception, on_failure=failed,
                              give_up=lambda: self._stopping and self.write_errors >= 50)

    async def _writer_loop(self) -> None:
        while True:
            if not self.buffer and not self._stopping:
                self._wake.clear()
                self._timer = self.clock.callLater(self.flush_interval, self._wake.set)
                await self._wake.wait()
                if self._timer.active():
                    self._timer.cancel()
                facts = evict(self.state, self.clock.seconds())
                if facts:
                    self._facts(facts)
            elif not self._stopping and len(self.buffer) < self.batch_size:
                gap = self._write_started + self.write_gap - self.clock.seconds()
                if gap > 0:  # the last write began a moment ago: let more calls join the next
                    self._wake.clear()
                    self._timer = self.clock.callLater(gap, self._wake.set)
                    await self._wake.wait()
                    if self._timer.active():
                        self._timer.cancel()
            if self.buffer:
                self._write_started = self.clock.seconds()
                await self._write_some()
            elif self._stopping:
                await self._heartbeat(final=True)
                return
            else:
                await self._heartbeat()

    # -- live view ---------------------------------------------------------------------------
    def live(self) -> dict[str, dict[str, Any]]:
        now = self.clock.seconds()
        out: dict[str, dict[str, Any]] = {}
        for c in self.state.calls.values():
            q = out.setdefault(c.queue, {"waiting": [], "talking": [], "members": []})
            if c.answered_at is None:
                q["waiting"].append(_waiting(c, now))
            else:
                q["talking"].append({"uniqueid": c.uniqueid, "queue": c.queue, "leg": c.leg, "agent": c.agent,
                                     "agent_name": c.agent_name,
                                     "caller_number_masked": mask_number(c.caller_number),
                                     "entered_at": c.entered_at, "since": c.answered_at,
                                     "uncertain": c.uncertain, "direction": c.direction})
        for queue, members in self.state.members.items():
            q = out.setdefault(queue, {"waiting": [], "talking": [], "members": []})
            q["members"] = [self._member_entry(queue, m, now) for m in members.values()]
        for q in out.values():
            q["waiting"].sort(key=lambda w: w["wait"], reverse=True)
        return out

    def queue_load(self, queue: str) -> QueueLoadInfo | None:
        """The IVR's view of ``queue``: longest current wait and agents free to answer.

        ``None`` while the queue is unknown (no member or call seen since the last
        resync): the flow's load condition then does not hold, and the IVR logs why.
        """
        now = self.clock.seconds()
        calls = [c for c in self.state.calls.values() if c.queue == queue]
        members = self.state.members.get(queue)
        if not calls and not members:
            return None
        waits = [now - c.entered_at for c in calls if c.answered_at is None and c.entered_at]
        free = sum(1 for m in (members or {}).values() if self.member_state(queue, m, now) == "available")
        return QueueLoadInfo(longest_wait=max(waits, default=0.0), agents_available=free)

    def _member_entry(self, queue: str, m: Any, now: float) -> dict[str, Any]:
        """A member for the wallboard: ``state`` is the named state (agentstate.STATES)."""
        entry = _member_entry_fields(m)
        entry["state"] = self.member_state(queue, m, now)
        # in wrap-up whatever else (a pause hides it in the state): app_queue would not offer
        # this member a call once unpaused before the wrap-up ends (the dialer's reservation check)
        entry["in_wrapup"] = in_wrapup(m.last_call, wrapup_seconds(m.wrapuptime, self._queue_wrapup(queue)), now)
        entry["wrapup_ends"] = (wrapup_ends(m.last_call, wrapup_seconds(m.wrapuptime, self._queue_wrapup(queue)),
                                            now) if entry["state"] == "wrap_up" else None)
        return entry


def _cut_off(finished: list[QueueCallRecord], recovered: set[str], bound: queuelog.CrashBound,
             members: dict[tuple[str, str], str]) -> list[QueueCallRecord]:
    """Calls the resync ended at the link loss that queue_log has no end for, while it shows
    Asterisk restarting in the outage: they died with the old Asterisk, after its last line
    (and were answered if it shows their CONNECT)."""
    out = []
    for r in finished:
        if (not r.gap or r.uniqueid in recovered or r.ended_at is None or r.ended_at >= bound.died_at
                or r.outcome not in ("unknown", "answered", "transferred")):
            continue
        end = bound.died_at
        change: dict[str, Any] = {"ended_at": end}
        seen = bound.connected.get(r.uniqueid)
        answered = r.answered_at
        if answered is None and seen is not None:
            answered = seen[0]
            change.update(answered_at=answered, agent_name=seen[1], outcome="answered",
                          agent=members.get((r.queue, seen[1]), seen[1]))
        if answered is not None:
            change["talk_seconds"] = max(0.0, end - answered)
        if r.entered_at is not None:
            change["wait_seconds"] = max(0.0, (answered if answered is not None else end) - r.entered_at)
        out.append(dataclasses.replace(r, **change))
    return out


def _member_entry_fields(m: Any) -> dict[str, Any]:
    return {"interface": m.interface, "name": m.name, "device_state": m.state, "paused": m.paused,
            "reason": m.reason, "in_call": m.in_call, "last_call": m.last_call, "wrapuptime": m.wrapuptime}


def _waiting(c: LiveCall, now: float) -> dict[str, Any]:
    return {"uniqueid": c.uniqueid, "caller_number_masked": mask_number(c.caller_number),
            "entered_at": c.entered_at, "wait": (now - c.entered_at) if c.entered_at else None,
            "position": c.position, "priority": c.priority, "uncertain": c.uncertain,
            "direction": c.direction, "campaign_id": c.campaign_id}
