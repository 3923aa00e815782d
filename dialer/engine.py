"""The dialer component: claims due contacts, originates, records dispositions.

Each tick (on the injected clock) it checks the calling window, then for every
running campaign works out how many calls it may start (progressive: free agents
minus calls still ringing; predictive: free agents x a ratio held under the
abandon-rate cap; survey: channels), claims that many contacts in one
transaction (attempt rows committed *before* any Originate), and sends the
Originates through the AMI gateway at the configured pace.  AMI events become
facts (:mod:`dialer.tracker`) applied to the store in arrival order by one
worker.  On start, and every minute, attempts whose outcome was lost are
reconciled, never re-originated.
"""
from __future__ import annotations

import asyncio
import logging
import math
import socket
from dataclasses import dataclass

from callcenter.ami.gateway import AmiNotConnected, AmiNotSent, AmiTimeout
from callcenter.logs import mask_number
from callcenter.ports import AgentAvailability, AmiClient, require_all
from callcenter.store.retry import retrying

from . import compliance, store
from .campaigns import Settings
from .pacing import Pacer, wait_for_slot
from .phones import dial_string
from .tracker import AttemptTracker, Fact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DialSettings:
    caller_id: str = '"City Hospital" <02100000000>'
    channel_template: str = "PJSIP/{number}@trunk"
    dial_format: str = "national"
    originate_timeout: float = 30.0
    survey_context: str = "survey"
    agent_context: str = "dialer-agent"
    max_rate: float = 5.0
    max_channels: int = 30
    predictive_max_abandon: float = 0.03
    predictive_window_days: float = 30.0
    predictive_max_ratio: float = 1.5
    short_call_seconds: float = 5.0
    tick_seconds: float = 1.0
    phone_gap_minutes: float = 60.0
    maintenance_seconds: float = 60.0
    stale_answered_seconds: float = 4 * 3600.0

    @classmethod
    def from_config(cls, config) -> "DialSettings":
        d = config.dialer
        return cls(caller_id=d.caller_id, channel_template=d.channel_template, dial_format=d.dial_format,
                   originate_timeout=d.originate_timeout, survey_context=d.survey_context,
                   agent_context=d.agent_context, max_rate=d.max_rate, max_channels=d.max_channels,
                   predictive_max_abandon=d.predictive_max_abandon,
                   predictive_window_days=d.predictive_window_days,
                   predictive_max_ratio=d.predictive_max_ratio, short_call_seconds=d.short_call_seconds,
                   tick_seconds=d.tick_seconds, phone_gap_minutes=d.phone_gap_minutes)


class Dialer:
    name = "dialer"

    def __init__(self, *, db, clock, gateway=None, rules: compliance.Rules | None = None,
                 dial: DialSettings | None = None, settings: Settings | None = None,
                 agents: AgentAvailability, instance: str = "", region: str = "CN",
                 autotick: bool = True):
        self.db, self.clock, self.gateway = db, clock, gateway
        self.rules = rules or compliance.Rules()
        self.dial = dial or DialSettings()
        self.settings = settings or Settings()
        self.agents = agents
        self.instance = instance or socket.gethostname()[:64]
        self.region = region
        self.autotick = autotick
        self.tracker = AttemptTracker()
        self.pacer = Pacer(clock, self.dial.max_rate)
        self.inflight: dict[int, set[int]] = {}      # campaign -> attempts not yet ended
        self.unconnected: dict[int, set[int]] = {}   # campaign -> attempts not yet with an agent
        self._campaign_of: dict[int, int] = {}
        self._sent_at: dict[int, float] = {}
        self._unsent: set[int] = set()   # claimed in this tick, Originate not written yet
        self._ratio: dict[int, tuple[float, float]] = {}  # campaign -> (ratio, computed at)
        self._facts: asyncio.Queue[Fact] | None = None
        self._worker: asyncio.Task | None = None
        self._timer = None
        self._tick_task: asyncio.Task | None = None
        self._next_maintenance = 0.0
        self._stopping = False
        self.originated = 0
        self.send_times: list[float] = []  # clock time of each Originate sent (bench/tests)
        self.send_lag: list[float] = []    # ... and how late against its pacing slot

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        require_all([(self.gateway, AmiClient, "dialer gateway"),
                     (self.agents, AgentAvailability, "dialer agents")])
        self._stopping = False
        self._facts = asyncio.Queue()
        self.gateway.subscribe(self.on_event)
        self.gateway.on_connect(self.resync)
        lost = await self.db.run(store.reconcile, now=self.clock.seconds(), instance=self.instance,
                                 stale_dialing=self._stale_dialing, stale_answered=self.dial.stale_answered_seconds,
                                 rules=self.rules)
        if lost:
            log.warning("dialer %s: %d attempt(s) left open by a previous run marked unknown "
                        "(not redialled before the longest retry delay)", self.instance, lost)
        self._worker = asyncio.ensure_future(self._apply_loop())
        self._schedule(0)

    async def stop(self) -> None:
        self._stopping = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._tick_task is not None and not self._tick_task.done():
            self._tick_task.cancel()
            try:
                await self._tick_task
            except (asyncio.CancelledError, Exception):
                pass
        if self._unsent:  # stopped mid-batch: the rest of the claim goes back, uncounted
            unsent, self._unsent = sorted(self._unsent), set()
            for aid in unsent:
                await self.db.run(store.release_unsent, aid, self.clock.seconds(), 0.0)
        self.gateway.unsubscribe(self.on_event)
        if self._facts is not None:
            await self.idle()
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
            self._worker = None

    async def idle(self) -> None:
        """Until every fact received so far has been written to the store."""
        if self._facts is not None:
            await self._facts.join()

    @property
    def _stale_dialing(self) -> float:
        return self.dial.originate_timeout + 90.0

    def _schedule(self, delay: float) -> None:
        if not self._stopping and self.autotick:
            self._timer = self.clock.callLater(max(0.0, delay), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._tick_task = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        delay = self.dial.tick_seconds
        try:
            delay = await self.run_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep dialling after a transient DB/AMI error
            log.exception("dialer tick failed")
        self._schedule(delay)

    # -- one tick ----------------------------------------------------------------------
    async def run_once(self) -> float:
        """Do one round of work; returns the delay until the next round."""
        now = self.clock.seconds()
        if now >= self._next_maintenance:
            self._next_maintenance = now + self.dial.maintenance_seconds
            await self.db.run(self._maintenance, now)
            self._forget_stale(now)
        if not compliance.in_window(self.rules, now):
            opens = compliance.next_window_open(self.rules, now)
            return min(max(opens - now, self.dial.tick_seconds), 300.0)
        if not self.gateway.connected:
            return self.dial.tick_seconds
        campaigns = await self.db.run(store.running_campaigns)
        for c in campaigns:
            cap = await self._capacity(c, now)
            if cap <= 0:
                continue
            claimed = await self.db.run(store.claim, campaign_id=c["id"], limit=cap, now=now,
                                        instance=self.instance, guard_seconds=self.rules.longest_retry,
                                        phone_gap=self.dial.phone_gap_minutes * 60.0)
            self._unsent.update(cl.attempt_id for cl in claimed)
            for cl in claimed:
                await self._originate(c, cl)
        return self.dial.tick_seconds

    def _maintenance(self, session, now: float) -> None:
        store.reconcile(session, now=now, instance=None, stale_dialing=self._stale_dialing,
                        stale_answered=self.dial.stale_answered_seconds, rules=self.rules)
        store.expire(session, now)

    async def _capacity(self, c: dict, now: float) -> int:
        cid = c["id"]
        busy = len(self.inflight.get(cid, ()))
        if c["mode"] == "survey":
            limit = int((c["settings"] or {}).get("max_channels") or self.dial.max_channels)
            return limit - busy
        queue = c["queue"] or self.settings.default_queue
        free = self.agents.agents_free(queue)
        ringing = len(self.unconnected.get(cid, ()))
        if c["mode"] == "predictive":
            ratio = await self._predictive_ratio(cid, now)
            return int(math.floor(free * ratio)) - ringing
        return free - ringing

    async def _predictive_ratio(self, cid: int, now: float) -> float:
        ratio, at = self._ratio.get(cid, (1.0, -1e18))
        if now - at >= 60.0:
            answered, abandoned = await self.db.run(
                store.abandon_counts, cid, now - self.dial.predictive_window_days * 86400)
            ratio = compliance.predictive_ratio(answered, abandoned, target=self.dial.predictive_max_abandon,
                                                max_ratio=self.dial.predictive_max_ratio, current=ratio)
            self._ratio[cid] = (ratio, now)
        return ratio

    async def _originate(self, c: dict, cl: store.Claimed) -> None:
        aid = cl.attempt_id
        slot = None
        if compliance.in_window(self.rules, self.clock.seconds()):
            slot = self.clock.seconds() + self.pacer.reserve()
            await wait_for_slot(self.clock, slot - self.clock.seconds())
        if slot is None or not compliance.in_window(self.rules, self.clock.seconds()):
            # paced past the end of the calling window: give the claim back, uncounted
            self._unsent.discard(aid)
            await self.db.run(store.release_unsent, aid, self.clock.seconds(), 0.0)
            return
        variables = {"ATTEMPT_ID": str(aid), "CAMPAIGN_ID": str(c["id"])}
        if c["mode"] == "survey":
            where = dict(context=self.dial.survey_context, exten="s", priority=1)
        else:
            variables["QUEUE"] = c["queue"] or self.settings.default_queue
            where = dict(context=self.dial.agent_context, exten="s", priority=1)
        channel = self.dial.channel_template.format(number=dial_string(cl.phone, self.dial.dial_format))
        self.tracker.expect(aid)
        self.inflight.setdefault(c["id"], set()).add(aid)
        if c["mode"] != "survey":
            self.unconnected.setdefault(c["id"], set()).add(aid)
        self._campaign_of[aid] = c["id"]
        self._sent_at[aid] = self.clock.seconds()
        self._unsent.discard(aid)
        self.send_times.append(self.clock.seconds())
        self.send_lag.append(self.clock.seconds() - slot)
        try:
            await self.gateway.originate(str(aid), channel, timeout_ms=int(self.dial.originate_timeout * 1000),
                                         caller_id=self.dial.caller_id, variables=variables, **where)
            self.originated += 1
            log.info("attempt %d: dialling %s for campaign %s", aid, mask_number(cl.phone), c["name"])
        except AmiNotSent as exc:
            # Refused before anything was written: undo the attempt, retry soon.
            log.warning("attempt %d: not sent (%s); contact retried in 30 s", aid, exc)
            self._done(aid)
            await self.db.run(store.release_unsent, aid, self.clock.seconds(), 30.0)
        except (AmiTimeout, AmiNotConnected) as exc:
            # Written but unanswered (timeout, link lost): Asterisk may have it.  Keep the
            # attempt 'dialing'; its OriginateResponse or reconciliation decides, never a resend.
            log.warning("attempt %d: Originate not acknowledged (%s); awaiting its outcome", aid, exc)
        except Exception as exc:  # noqa: BLE001 - an Error response (or a bug): the attempt failed
            log.warning("attempt %d: Originate refused: %s", aid, exc)
            self._facts.put_nowait(Fact("originated", aid, self.clock.seconds(), disposition="failed",
                                        reason=None))

    def _forget_stale(self, now: float) -> None:
        """Free capacity held by attempts whose outcome never came (reconciliation owns them)."""
        for aid, at in list(self._sent_at.items()):
            live = self.tracker.live.get(aid)
            if now - at > self._stale_dialing and (live is None or not live.answered):
                self._done(aid)

    def _done(self, aid: int) -> None:
        self._sent_at.pop(aid, None)
        cid = self._campaign_of.pop(aid, None)
        if cid is not None:
            self.inflight.get(cid, set()).discard(aid)
            self.unconnected.get(cid, set()).discard(aid)
        self.tracker.forget(aid)

    async def resync(self) -> int:
        """After an AMI reconnect: answered calls whose channel is gone ended while we were
        away (their Hangup was missed); finish them now instead of holding capacity for hours.
        Returns how many were closed.  Unanswered attempts keep waiting for reconciliation
        (their OriginateResponse went to the lost session)."""
        answered = {live.uniqueid: aid for aid, live in self.tracker.live.items() if live.answered}
        if not answered:
            return 0
        try:
            resp = await self.gateway.action([("Action", "CoreShowChannels")])
        except Exception as exc:  # noqa: BLE001 - try again at the next reconnect / stale sweep
            log.warning("dialer resync: CoreShowChannels failed: %s", exc)
            return 0
        items = resp if isinstance(resp, list) else [resp]
        alive = {m.get("Uniqueid") for m in items if m.get("Uniqueid")}
        closed = 0
        now = self.clock.seconds()
        for uid, aid in answered.items():
            if uid not in alive:
                self.tracker.forget(aid)
                if self._facts is not None:
                    self._facts.put_nowait(Fact("ended", aid, now))
                closed += 1
        if closed:
            log.info("dialer resync: %d call(s) ended during the AMI outage", closed)
        return closed

    # -- events ------------------------------------------------------------------------
    def on_event(self, msg, t: float) -> None:
        for fact in self.tracker.feed(msg, t):
            if fact.kind == "connected":
                cid = self._campaign_of.get(fact.attempt_id)
                if cid is not None:
                    self.unconnected.get(cid, set()).discard(fact.attempt_id)
            if self._facts is not None:
                self._facts.put_nowait(fact)

    async def _apply_loop(self) -> None:
        while True:
            fact = await self._facts.get()
            try:
                await self._store_fact(fact)
                ended = fact.kind == "ended" or (fact.kind == "originated" and fact.disposition != "answered")
                if ended:
                    self._sent_at.pop(fact.attempt_id, None)
                    cid = self._campaign_of.pop(fact.attempt_id, None)
                    if cid is not None:
                        self.inflight.get(cid, set()).discard(fact.attempt_id)
                        self.unconnected.get(cid, set()).discard(fact.attempt_id)
                elif fact.kind == "abandoned":
                    cid = self._campaign_of.get(fact.attempt_id)
                    if cid is not None:
                        self.unconnected.get(cid, set()).discard(fact.attempt_id)
            except Exception:  # noqa: BLE001 - one bad fact must not stop the others
                log.exception("dialer: could not record %s for attempt %s", fact.kind, fact.attempt_id)
            finally:
                self._facts.task_done()

    async def _store_fact(self, fact: Fact) -> None:
        """Apply one fact; while the database is unreachable, retry it (facts stay in order)
        instead of dropping it: a lost 'completed' would leave the attempt open and
        reconciliation would call the patient again."""
        def failed(exc: BaseException, delay: float) -> None:
            log.warning("dialer: database unavailable (%s); %s of attempt %s kept, retry in %.1f s",
                        exc.__class__.__name__, fact.kind, fact.attempt_id, delay)

        await retrying(self.db, store.apply_fact, fact, self.rules, self.dial.short_call_seconds,
                       clock=self.clock, base_delay=0.1, max_delay=5.0,
                       give_up=lambda: self._stopping, on_failure=failed)
