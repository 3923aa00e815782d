"""The dialer component: claims due contacts, originates, records dispositions.

Each tick (on the injected clock) it checks the calling window, then for every
running campaign works out how many calls it may start — per *queue*, across all
campaigns and dialer instances: members app_queue would offer a call to (not
paused, not in wrap-up, idle) minus agents already reserved (:mod:`.reservations`)
minus inbound callers already waiting; predictive multiplies by a ratio held under
the abandon-rate cap and subtracts the queue's predictive calls not yet with an
agent; survey: channels — claims that many contacts in one transaction (attempt
rows committed *before* any Originate; patients on a call are skipped,
:mod:`.callstate`), reserves one agent per progressive call (paused with reason
``dialer:<attempt>``, unpaused when the answered patient joins the queue ahead of
inbound callers, released whatever the outcome), and sends the Originates through
the AMI gateway at the configured pace.  AMI events become
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
from callcenter.phones import dial_string
from callcenter.ports import AgentAvailability, AmiClient, require_all
from callcenter.store.retry import retrying

from . import compliance, reservations, store
from .callstate import CallState
from .campaigns import DEFAULT_SURVEY_FLOW, SURVEY_FLOWS, Settings
from .pacing import Pacer, wait_for_slot
from .tracker import Abandoned, AttemptTracker, Connected, Ended, Fact, Originated, Queued, ends_attempt

# what Dialer.on_event reads of AMI: the call state's and the attempt tracker's events, and
# QueueMemberPause (the dialplan unpaused a reserved agent)
EVENTS = CallState.EVENTS | AttemptTracker.EVENTS | {"QueueMemberPause"}

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
    callback_after_call_seconds: float = 120.0  # an IVR callback waits this long after the call ended
    connect_timeout: float = 20.0     # answered patient without an agent by then: apology, callback later
    queue_priority: int = 10          # QUEUE_PRIO of answered patients: ahead of inbound callers
    sorry_prompt: str = "dialer-sorry-callback"
    abandon_connect_seconds: float = 2.0
    keep_free_agents: int = 0         # per queue, left to inbound callers (blending)

    @classmethod
    def from_config(cls, config) -> "DialSettings":
        d = config.dialer
        return cls(caller_id=d.caller_id, channel_template=d.channel_template, dial_format=d.dial_format,
                   originate_timeout=d.originate_timeout, survey_context=d.survey_context,
                   agent_context=d.agent_context, max_rate=d.max_rate, max_channels=d.max_channels,
                   predictive_max_abandon=d.predictive_max_abandon,
                   predictive_window_days=d.predictive_window_days,
                   predictive_max_ratio=d.predictive_max_ratio, short_call_seconds=d.short_call_seconds,
                   tick_seconds=d.tick_seconds, phone_gap_minutes=d.phone_gap_minutes,
                   callback_after_call_seconds=d.callback_after_call_seconds,
                   connect_timeout=d.connect_timeout, queue_priority=d.queue_priority,
                   sorry_prompt=d.sorry_prompt, abandon_connect_seconds=d.abandon_connect_seconds,
                   keep_free_agents=d.keep_free_agents)


class Dialer:
    name = "dialer"

    def __init__(self, *, db, clock, gateway=None, rules: compliance.Rules | None = None,
                 dial: DialSettings | None = None, settings: Settings | None = None,
                 agents: AgentAvailability, instance: str = "", region: str = "CN",
                 autotick: bool = True, server: str = "default"):
        self.db, self.clock, self.gateway = db, clock, gateway
        self.server = server  # originates the campaigns assigned to this Asterisk server, on it
        self.rules = rules or compliance.Rules()
        self.dial = dial or DialSettings()
        self.settings = settings or Settings()
        self.agents = agents
        self.instance = instance or socket.gethostname()[:64]
        self.region = region
        self.autotick = autotick
        self.tracker = AttemptTracker()
        self.calls = CallState(region=region)
        self.reserved: dict[int, str] = {}    # attempt -> interface we reserved (row written)
        self._paused: set[int] = set()        # ... and still paused by us (unpause owed)
        self.reservations_released = 0
        self._side: set[asyncio.Task] = set()  # reservation releases/unpauses in flight
        self._turn = 0                          # which running campaign goes first this tick
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
        self.gateway.subscribe(self.on_event, EVENTS, AttemptTracker.VARIABLES)
        self.gateway.on_connect(self.resync)
        lost = await self.db.run(store.reconcile, now=self.clock.seconds(), instance=self.instance,
                                 stale_dialing=self._stale_dialing, stale_answered=self.dial.stale_answered_seconds,
                                 rules=self.rules)
        if self.gateway.connected:
            await self.reconcile_reservations()
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
                await self.release_agent(aid)
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
        """Until every fact received so far has been written to the store (and the agent
        reservations those facts released are released)."""
        if self._facts is not None:
            await self._facts.join()
        while self._side:
            await asyncio.gather(*list(self._side), return_exceptions=True)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._side.add(task)
        task.add_done_callback(self._side_done)

    def _side_done(self, task: asyncio.Task) -> None:
        self._side.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("dialer: reservation step failed", exc_info=task.exception())

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
            await self._release_stale_reservations(now)
        if not compliance.in_window(self.rules, now):
            opens = compliance.next_window_open(self.rules, now)
            return min(max(opens - now, self.dial.tick_seconds), 300.0)
        if not self.gateway.connected:
            return self.dial.tick_seconds
        campaigns = await self.db.run(store.running_campaigns, self.server)
        if campaigns:  # campaigns sharing a queue take turns at its free agents
            k = self._turn % len(campaigns)
            campaigns, self._turn = campaigns[k:] + campaigns[:k], self._turn + 1
        for c in campaigns:
            cap, free = await self._capacity(c, self.clock.seconds())
            if cap <= 0:
                continue
            # read after the awaits: the attempt is stamped (and checked due) when the
            # capacity was decided, not when the tick began (a slow database turn in between
            # made a progressive call look dialled before its agent was free)
            now = self.clock.seconds()
            after = self.dial.callback_after_call_seconds if c["kind"] == "callback" else 0.0
            claimed = await self.db.run(store.claim, campaign_id=c["id"], limit=cap, now=now,
                                        instance=self.instance, guard_seconds=self.rules.longest_retry,
                                        phone_gap=self.dial.phone_gap_minutes * 60.0,
                                        exclude_phones=self.calls.busy(now, after))
            self._unsent.update(cl.attempt_id for cl in claimed)
            for cl in claimed:
                if c["mode"] == "progressive" and not await self._reserve(c, cl, free):
                    continue
                await self._originate(c, cl)
        return self.dial.tick_seconds

    async def _release_stale_reservations(self, now: float) -> None:
        """Reservations whose attempt is over, of any instance (one that died for good)."""
        if not self.gateway.connected:
            return
        for aid, iface, instance in await self.db.run(reservations.stale, now - self._stale_dialing):
            if instance == self.instance and aid in self.reserved:
                continue  # ours and still being released
            try:
                await self._unpause(iface, aid)
            except Exception as exc:  # noqa: BLE001 - logged out meanwhile: nothing to unpause
                log.warning("stale reservation of %s (attempt %d): unpause failed (%s)", iface, aid, exc)
            await self.db.run(reservations.drop, [aid])
            log.warning("reservation of %s for attempt %d (instance %s) outlived its call: released",
                        iface, aid, instance)

    def _maintenance(self, session, now: float) -> None:
        store.reconcile(session, now=now, instance=None, stale_dialing=self._stale_dialing,
                        stale_answered=self.dial.stale_answered_seconds, rules=self.rules)
        store.expire(session, now)

    async def _capacity(self, c: dict, now: float) -> tuple[int, list[str]]:
        """How many calls this campaign may start now, and the members free for them.

        Per queue, whatever campaign or dialer instance the other calls belong to:
        free members (agentstate: not paused, not in wrap-up, idle) not reserved by any
        dialer, less the inbound callers already waiting for them."""
        cid = c["id"]
        if c["mode"] == "survey":
            busy = len(self.inflight.get(cid, ()))
            limit = int((c["settings"] or {}).get("max_channels") or self.dial.max_channels)
            return limit - busy, []
        queue = c["queue"] or self.settings.default_queue
        load = self.agents.free_agents(queue)
        taken = await self.db.run(reservations.reserved_interfaces)
        free = [i for i in load.free if i not in taken]
        net = len(free) - load.waiting - self.dial.keep_free_agents
        if c["mode"] == "predictive":
            ratio = await self._predictive_ratio(cid, now)
            ringing = await self.db.run(store.unconnected_on_queue, queue, self.settings.default_queue)
            return int(math.floor(max(0, net) * ratio)) - ringing, []
        held_back = load.waiting + self.dial.keep_free_agents
        return net, free[held_back:] if held_back > 0 else free

    async def _reserve(self, c: dict, cl: store.Claimed, free: list[str]) -> bool:
        """Take one free member out of inbound distribution for this attempt before dialling;
        False (attempt handed back uncounted) when none can be had."""
        aid = cl.attempt_id
        queue = c["queue"] or self.settings.default_queue
        while free:
            iface = await self.db.run(reservations.reserve, list(free), queue=queue, attempt_id=aid,
                                      instance=self.instance, now=self.clock.seconds())
            if iface is None:
                break
            free.remove(iface)
            self.reserved[aid] = iface
            try:
                await self.gateway.action([("Action", "QueuePause"), ("Interface", iface), ("Paused", "true"),
                                           ("Reason", reservations.reason_for(aid))])
            except Exception as exc:  # noqa: BLE001 - the member went away, or AMI did
                log.warning("attempt %d: could not reserve %s (%s)", aid, iface, exc)
                await self.release_agent(aid, paused=False)
                continue
            self._paused.add(aid)
            if iface in self.agents.free_agents(queue).in_call:
                # app_queue offered the member a call between our look and the pause, or its
                # wrap-up began (events before the response are in): not free for this patient
                log.info("attempt %d: %s took a call or is in wrap-up; not reserved", aid, iface)
                await self.release_agent(aid)
                continue
            log.info("attempt %d: agent %s reserved", aid, iface)
            return True
        self._unsent.discard(aid)
        await self.db.run(store.release_unsent, aid, self.clock.seconds(), 0.0)
        return False

    async def release_agent(self, aid: int, *, paused: bool | None = None) -> None:
        """End the attempt's reservation: unpause the member if we still hold it paused, then
        delete the row (kept when the unpause failed: reconciliation retries it)."""
        iface = self.reserved.pop(aid, None)
        owed = aid in self._paused if paused is None else paused
        self._paused.discard(aid)
        if iface is None:
            return
        if owed:
            try:
                await self._unpause(iface, aid)
            except Exception as exc:  # noqa: BLE001 - reconcile_reservations retries it
                log.warning("attempt %d: could not unpause %s (%s); reconciled at the next login", aid, iface, exc)
                return
        await self.db.run(reservations.drop, [aid])
        self.reservations_released += 1

    async def _unpause(self, iface: str, aid: int) -> None:
        await self.gateway.action([("Action", "QueuePause"), ("Interface", iface), ("Paused", "false"),
                                   ("Reason", reservations.reason_for(aid))])

    async def reconcile_reservations(self) -> int:
        """After a start or an AMI login: release this instance's reservations whose attempt
        is not in progress here, and unpause members left paused with a ``dialer:`` reason
        that no reservation row explains (a crash between the pause and the row's delete).
        Returns how many members were unpaused."""
        rows = await self.db.run(reservations.of_instance, self.instance)
        unpaused = 0
        seen: set[str] = set()
        for aid, iface in rows:
            if aid in self.tracker.live:
                continue
            seen.add(iface)
            try:
                await self._unpause(iface, aid)
                unpaused += 1
            except Exception as exc:  # noqa: BLE001 - "Interface not found": logged out meanwhile
                log.warning("reservation of %s for attempt %d: unpause failed (%s)", iface, aid, exc)
            await self.db.run(reservations.drop, [aid])
            self.reserved.pop(aid, None)
            self._paused.discard(aid)
        try:
            resp = await self.gateway.action([("Action", "QueueStatus")])
        except Exception as exc:  # noqa: BLE001 - the next login tries again
            log.warning("dialer: QueueStatus failed (%s); paused members not checked", exc)
            return unpaused
        held = {aid for aid, _ in await self.db.run(reservations.held)}
        for m in resp if isinstance(resp, list) else []:
            if m.get("Event") != "QueueMember" or m.get("Paused") != "1":
                continue
            reason = m.get("PausedReason") or ""
            iface = m.get("Location") or m.get("Interface") or ""
            if not reservations.is_dialer_reason(reason) or iface in seen:
                continue
            tail = reason[len(reservations.REASON_PREFIX):]
            aid = int(tail) if tail.isdigit() else -1
            if aid in held or aid in self.tracker.live:
                continue
            seen.add(iface)
            try:
                await self._unpause(iface, aid)
                unpaused += 1
            except Exception as exc:  # noqa: BLE001
                log.warning("left-over dialer pause of %s: unpause failed (%s)", iface, exc)
        if unpaused:
            log.warning("dialer %s: %d agent(s) left reserved by an earlier run released", self.instance, unpaused)
        return unpaused

    async def _predictive_ratio(self, cid: int, now: float) -> float:
        ratio, at = self._ratio.get(cid, (1.0, -1e18))
        if now - at >= 60.0:
            answered, abandoned = await self.db.run(
                store.abandon_counts, cid, now - self.dial.predictive_window_days * 86400,
                self.dial.abandon_connect_seconds)
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
        # PATIENT_*: the queue call is stored with the patient, not the caller ID we send
        variables = {"ATTEMPT_ID": str(aid), "CAMPAIGN_ID": str(c["id"]), "PATIENT_NUMBER": cl.phone,
                     "PATIENT_NAME": cl.name}
        if c["mode"] == "survey":
            where = dict(context=self.dial.survey_context, exten="s", priority=1)
            # The survey's AGI sees our CallerID as agi_callerid; this is who was dialled.
            variables["PATIENT_NUMBER"] = cl.phone
            # which flow the survey context runs (its AGI request path), in the patient's language
            variables["SURVEY_FLOW"] = (c["settings"] or {}).get("flow") or SURVEY_FLOWS.get(
                c["kind"], DEFAULT_SURVEY_FLOW)
            if cl.language:
                variables["PATIENT_LANGUAGE"] = cl.language
        else:
            variables.update(QUEUE=c["queue"] or self.settings.default_queue, AGENT=self.reserved.get(aid, ""),
                             QUEUE_PRIO=str(self.dial.queue_priority),
                             CONNECT_TIMEOUT=f"{self.dial.connect_timeout:g}", SORRY_PROMPT=self.dial.sorry_prompt,
                             AUTO_ANSWER="1")  # agents' phones auto-answer: the 2 s rule counts the ring
            where = dict(context=self.dial.agent_context, exten="s", priority=1)
        caller_id = (c["settings"] or {}).get("caller_id") or self.dial.caller_id
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
                                         caller_id=caller_id, variables=variables, **where)
            self.originated += 1
            log.info("attempt %d: dialling %s for campaign %s", aid, mask_number(cl.phone), c["name"])
        except AmiNotSent as exc:
            # Refused before anything was written: undo the attempt, retry soon.
            log.warning("attempt %d: not sent (%s); contact retried in 30 s", aid, exc)
            self._done(aid)
            await self.release_agent(aid)
            await self.db.run(store.release_unsent, aid, self.clock.seconds(), 30.0)
        except (AmiTimeout, AmiNotConnected) as exc:
            # Written but unanswered (timeout, link lost): Asterisk may have it.  Keep the
            # attempt 'dialing'; its OriginateResponse or reconciliation decides, never a resend.
            log.warning("attempt %d: Originate not acknowledged (%s); awaiting its outcome", aid, exc)
        except Exception as exc:  # noqa: BLE001 - an Error response (or a bug): the attempt failed
            log.warning("attempt %d: Originate refused: %s", aid, exc)
            self._facts.put_nowait(Originated(aid, self.clock.seconds(), disposition="failed",
                                        reason=None))

    def _forget_stale(self, now: float) -> None:
        """Free capacity held by attempts whose outcome never came (reconciliation owns them)."""
        for aid, at in list(self._sent_at.items()):
            live = self.tracker.live.get(aid)
            if now - at > self._stale_dialing and (live is None or not live.answered):
                self._done(aid)

    def _done(self, aid: int) -> None:
        if aid in self.reserved and self._facts is not None:
            self._spawn(self.release_agent(aid))
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
        (their OriginateResponse went to the lost session).  Who is on a call is rebuilt from
        the same channel list, and reservations left over are released."""
        try:
            resp = await self.gateway.action([("Action", "CoreShowChannels")])
        except Exception as exc:  # noqa: BLE001 - try again at the next reconnect / stale sweep
            log.warning("dialer resync: CoreShowChannels failed: %s", exc)
            return 0
        items = resp if isinstance(resp, list) else [resp]
        self.calls.resync(items, self.clock.seconds())
        await self.reconcile_reservations()
        answered = {live.uniqueid: aid for aid, live in self.tracker.live.items() if live.answered}
        alive = {m.get("Uniqueid") for m in items if m.get("Uniqueid")}
        closed = 0
        now = self.clock.seconds()
        for uid, aid in answered.items():
            if uid not in alive:
                self.tracker.forget(aid)
                if self._facts is not None:
                    self._facts.put_nowait(Ended(aid, now))
                closed += 1
        if closed:
            log.info("dialer resync: %d call(s) ended during the AMI outage", closed)
        return closed

    # -- events ------------------------------------------------------------------------
    def on_event(self, msg, t: float) -> None:
        """(What it reads: :data:`EVENTS` and VarSet of ``ATTEMPT_ID``.)"""
        self.calls.feed(msg, t)
        if msg.get("Event") == "QueueMemberPause" and msg.get("Paused") == "0":
            # [dialer-agent]'s UnpauseQueueMember(,${AGENT},,dialer:${ATTEMPT_ID}) ran: no AMI round trip
            tail = (msg.get("PausedReason") or "")[len(reservations.REASON_PREFIX):]
            if reservations.is_dialer_reason(msg.get("PausedReason") or "") and tail.isdigit():
                self._paused.discard(int(tail))
        for fact in self.tracker.feed(msg, t):
            aid = fact.attempt_id
            if isinstance(fact, Queued):
                # the answered patient is in the queue, ahead of inbound callers: its agent must be
                # free now (the dialplan unpauses it just before Queue(); a dialplan without that
                # step costs an AMI round trip here)
                if aid in self._paused:
                    log.warning("attempt %d: the dialplan did not unpause agent %s; unpausing over AMI",
                                aid, self.reserved.get(aid))
                    self._paused.discard(aid)
                    self._spawn(self._unpause_for(aid))
                continue
            if isinstance(fact, Connected):
                cid = self._campaign_of.get(aid)
                if cid is not None:
                    self.unconnected.get(cid, set()).discard(aid)
            ended = ends_attempt(fact) or isinstance(fact, (Abandoned, Connected))
            if ended and aid in self.reserved:
                self._spawn(self.release_agent(aid))
            if self._facts is not None:
                self._facts.put_nowait(fact)

    async def _unpause_for(self, aid: int) -> None:
        iface = self.reserved.get(aid)
        if iface is None:
            return
        try:
            await self._unpause(iface, aid)
        except Exception as exc:  # noqa: BLE001 - still owed: released at the attempt's end
            log.warning("attempt %d: unpausing %s for the patient failed (%s)", aid, iface, exc)
            self._paused.add(aid)

    async def _apply_loop(self) -> None:
        while True:
            fact = await self._facts.get()
            try:
                await self._store_fact(fact)
                if ends_attempt(fact):
                    self._sent_at.pop(fact.attempt_id, None)
                    cid = self._campaign_of.pop(fact.attempt_id, None)
                    if cid is not None:
                        self.inflight.get(cid, set()).discard(fact.attempt_id)
                        self.unconnected.get(cid, set()).discard(fact.attempt_id)
                elif isinstance(fact, Abandoned):
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
