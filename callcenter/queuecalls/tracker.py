"""The "queuecalls" component: gateway events → reducer → batched, idempotent writes.

* every AMI event goes through :func:`reducer.reduce` on the loop (cheap, pure);
  finished queue calls are buffered and written in batches by one writer task via
  ``db.run`` (a worker thread).  A failed write keeps the batch and retries with
  backoff: nothing is dropped, and the merge in :mod:`.store` makes retries safe;
* on every (re)connect: ``QueueStatus`` + ``CoreShowChannels`` → :func:`reducer.resync`;
  after an outage (a lost link, or at start-up the time since the last stored call
  while the bridge was not running) the calls that began or ended in it are recovered from
  ``queue_log`` when ``[ami] queue_log`` is readable, otherwise the outage is
  stored as a gap (``ami_outages``);
* ``live()`` and ``subscribe(cb)`` feed the wallboard.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
from typing import Any, Callable

from ..logs import mask_number
from ..ports import QueueLoadInfo
from ..store.retry import retrying
from . import queuelog, store
from .agentstate import agent_state, in_wrapup, wrapup_ends, wrapup_seconds
from .reducer import (FACT_TYPES, Fact, Finished, LiveCall, MemberChanged, QueueCallRecord, ReducerConfig,
                      TrackerState, evict, reduce, resync)

log = logging.getLogger(__name__)


class QueueCallsTracker:
    name = "queuecalls"

    def __init__(self, db: Any, clock: Any, *, gateway: Any = None, answer_target: float = 30.0,
                 short_abandon: float = 5.0, region: str = "CN", queue_log: str = "",
                 batch_size: int = 500, flush_interval: float = 1.0, retry_max_delay: float = 30.0,
                 retry_base_delay: float = 0.5, queue_wrapup: float | dict[str, float] = 0.0):
        self.db = db
        # queues.conf wrapuptime (AMI does not report it): used when a member's Wrapuptime is 0
        self.queue_wrapup = queue_wrapup
        self.clock = clock
        self.gateway = gateway
        self.answer_target = answer_target
        self.short_abandon = short_abandon
        self.queue_log = queue_log
        self.batch_size = batch_size
        self.flush_interval = flush_interval
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
        self.restart_gap = 60.0  # a restart shorter than this is not worth an outage row

    # -- wiring ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.gateway is not None:
            self.gateway.subscribe(self.on_event)
            self.gateway.on_connect(self.resync)
            self.gateway.on_disconnect(self.on_disconnect)
            if self.gateway.connected:
                asyncio.ensure_future(self.resync())  # logged in before we were listening
        self._stopping = False
        self._writer = asyncio.ensure_future(self._writer_loop())

    async def stop(self) -> None:
        self._stopping = True
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
        if self.outage_start is None:
            self.outage_start = t

    async def resync(self) -> None:
        """Rebuild live state from Asterisk after every login (the gateway awaits this)."""
        gw = self.gateway
        self._resyncing = True
        try:
            qs = await gw.action({"Action": "QueueStatus"})
            ch = await gw.action({"Action": "CoreShowChannels"})
            t = self.clock.seconds()
            facts = resync(self.state, qs if isinstance(qs, list) else [],
                           ch if isinstance(ch, list) else [], t)
            self._facts(facts)
            log.info("queuecalls resync: %d calls live", len(self.state.calls))
            if self._first_connect:
                # the bridge itself was not running since its last stored call: an outage too
                self._first_connect = False
                last = await self._retrying(store.last_seen)
                if last is not None and t - last > self.restart_gap and self.outage_start is None:
                    self.outage_start = last
            if self.outage_start is not None:
                start, self.outage_start = self.outage_start, None
                await self._close_outage(start, t)
        finally:
            self._resyncing = False
            self._wake.set()

    async def _close_outage(self, start: float, end: float) -> None:
        recovered: list[QueueCallRecord] = []
        ok = False
        note = ""
        path = self.queue_log
        if path and os.access(path, os.R_OK):
            members = {(q, m.name): iface for q, ms in self.state.members.items()
                       for iface, m in ms.items() if m.name}
            try:
                events = await self.db.run_blocking(queuelog.read_tail, path, start)
                recovered = queuelog.recover(events, start, end, member_interfaces=members,
                                             region=self.state.config.region)
                ok = True
            except OSError as exc:
                note = f"queue_log unreadable: {exc.__class__.__name__}"
        else:
            note = "no queue_log configured" if not path else "queue_log not readable"
        live = set(self.state.calls)
        recovered = [r for r in recovered if r.uniqueid not in live]
        self._facts([Finished(r) for r in recovered])  # buffered, and subscribers see them
        log.warning("AMI outage of %.1f s: %s", end - start,
                    f"recovered {len(recovered)} queue calls from queue_log" if ok
                    else f"recorded as a gap ({note})")
        await self._retrying(store.record_outage, start, end, ok, len(recovered), note)

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
            await self._retrying(store.write_calls, batch, self.answer_target)
            del self.buffer[: len(batch)]
            self.written += len(batch)

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
            if self.buffer:
                await self._write_some()
            elif self._stopping:
                return

    # -- live view ---------------------------------------------------------------------------
    def live(self) -> dict[str, dict[str, Any]]:
        now = self.clock.seconds()
        out: dict[str, dict[str, Any]] = {}
        for c in self.state.calls.values():
            q = out.setdefault(c.queue, {"waiting": [], "talking": [], "members": []})
            if c.answered_at is None:
                q["waiting"].append(_waiting(c, now))
            else:
                q["talking"].append({"uniqueid": c.uniqueid, "agent": c.agent,
                                     "agent_name": c.agent_name,
                                     "caller_number_masked": mask_number(c.caller_number),
                                     "since": c.answered_at, "direction": c.direction})
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


def _member_entry_fields(m: Any) -> dict[str, Any]:
    return {"interface": m.interface, "name": m.name, "device_state": m.state, "paused": m.paused,
            "reason": m.reason, "in_call": m.in_call, "last_call": m.last_call, "wrapuptime": m.wrapuptime}


def _waiting(c: LiveCall, now: float) -> dict[str, Any]:
    return {"uniqueid": c.uniqueid, "caller_number_masked": mask_number(c.caller_number),
            "entered_at": c.entered_at, "wait": (now - c.entered_at) if c.entered_at else None,
            "position": c.position, "uncertain": c.uncertain, "direction": c.direction,
            "campaign_id": c.campaign_id}
