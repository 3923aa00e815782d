"""Pure reducer: AMI events → *queue calls* (docs/architecture.md, "Vocabulary").

``reduce(state, msg, t) -> (state, facts)``: no I/O, time passed in (``t`` =
the bridge's clock at the event's arrival: AMI events carry no timestamp, so
sub-second ``wait_seconds`` come from these).  For speed the state is mutated in
place and returned.  Facts are frozen dataclasses (:data:`Fact`): :class:`Joined`,
:class:`Answered`, :class:`Finished` (the :class:`QueueCallRecord` to store),
:class:`MemberChanged`, :class:`MemberRemoved`.

What the traces taught (``tests/fixtures/asterisk-traces/README.md``, "Queue lifecycle"):

* keyed by the caller channel's ``Uniqueid`` (= Linkedid of the call); agent
  channels (Local ``;1`` halves of ``Local/<id>@…/n`` members) are only seen in
  ``Dest*`` fields, the member is the ``Interface``;
* ``QueueCallerLeave`` comes *before* ``AgentConnect``: the leave time is the
  answer time, the connect that follows decides "answered";
* ``QueueCallerAbandon`` means hang-up, caller-side timeout *or* AMI Redirect;
  what follows on the caller channel tells them apart: a ``HangupRequest``
  before it or a ``Hangup`` after → abandoned; ``VarSet QUEUESTATUS`` →
  timeout; ``Newexten`` → redirected;
* ``AgentComplete`` may carry no channel fields at all: matched by queue + interface;
* a call first seen at ``AgentConnect``/``AgentComplete`` (joined while the link
  was down) is reconstructed from ``HoldTime``/``TalkTime`` and flagged ``gap``;
* a dialer call is a queue call too (the answered patient waits for an agent), but it
  is *outbound*: the dialer's Originate variables arrive as ``VarSet`` on the patient's
  channel before it joins (traces 04/05: ``Uniqueid`` = the Originate's channel) —
  ``ATTEMPT_ID``, ``CAMPAIGN_ID``, ``PATIENT_NUMBER``/``PATIENT_NAME`` (the channel's
  caller ID is the hospital's own number, not the patient's).

Stale state is evicted (:func:`evict`), so memory depends on the calls in
progress, not on the calls handled.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ami.codec import Message
from ..ami.interest import When
from ..phones import canonical

OUTCOMES = ("answered", "abandoned", "timeout", "transferred", "redirected", "unknown")


@dataclass(slots=True)
class QueueCallRecord:
    """One finished queue call, as stored (times are epoch seconds)."""

    uniqueid: str
    linkedid: str
    queue: str
    leg: int
    caller_number: str
    caller_name: str
    entered_at: float | None
    answered_at: float | None
    ended_at: float | None
    wait_seconds: float | None
    agent: str
    agent_name: str
    talk_seconds: float | None
    outcome: str
    position: int | None
    ivr_session_id: int | None
    gap: bool
    source: str = "ami"  # or "queue_log"
    direction: str = "inbound"  # or "outbound": a dialer call (attempt_id set)
    campaign_id: int | None = None
    attempt_id: int | None = None

    def within(self, target: float) -> bool | None:
        """Answered within ``target`` seconds; None when not answered."""
        if self.outcome not in ("answered", "transferred") or self.wait_seconds is None:
            return None
        return self.wait_seconds <= target


@dataclass(slots=True)
class LiveCall:
    uniqueid: str
    linkedid: str
    channel: str
    queue: str
    leg: int
    caller_number: str
    caller_name: str
    entered_at: float | None
    position: int | None = None
    ivr_session_id: int | None = None
    uncertain: bool = False
    left_at: float | None = None
    answered_at: float | None = None
    agent: str = ""
    agent_name: str = ""
    hangup_requested: bool = False
    abandon_at: float | None = None
    abandon_hold: int | None = None
    transferred: bool = False
    ringing: str = ""
    answer_uncertain: bool = False  # answered while the link was down: moment unknown
    uncertain_join: bool = False    # entered_at estimated (adopted), not measured
    campaign_id: int | None = None  # set with attempt_id: an outbound (dialer) call
    attempt_id: int | None = None
    priority: int = 0               # QUEUE_PRIO set by the IVR (urgent complaints: above 0)

    @property
    def direction(self) -> str:
        return "outbound" if self.attempt_id is not None else "inbound"


@dataclass(slots=True)
class Member:
    interface: str
    name: str = ""
    state: int = 0           # Asterisk device state number (Status)
    paused: bool = False
    reason: str = ""
    in_call: bool = False
    last_call: int = 0       # LastCall: epoch second the member's last queue call ended
    wrapuptime: int = 0      # Wrapuptime: the member's own wrap-up (0: the queue's)


@dataclass
class ReducerConfig:
    region: str = "CN"
    abandon_grace: float = 10.0   # an abandon nothing explains by then is a hang-up
    max_wait: float = 6 * 3600    # a "waiting" caller older than this is stale
    max_talk: float = 12 * 3600
    var_ttl: float = 6 * 3600     # IVR_SESSION set on a channel that never queued
    finished_ttl: float = 600.0   # how long a finished uid is remembered (resync races)
    evict_every: float = 30.0


@dataclass
class TrackerState:
    config: ReducerConfig = field(default_factory=ReducerConfig)
    calls: dict[str, LiveCall] = field(default_factory=dict)
    by_member: dict[tuple[str, str], str] = field(default_factory=dict)
    # uid -> ({IVR_SESSION/ATTEMPT_ID/...: value}, t): variables set before the channel queued
    chan_vars: dict[str, tuple[dict[str, str], float]] = field(default_factory=dict)
    legs: dict[str, tuple[dict[str, int], float]] = field(default_factory=dict)  # uid -> joins per queue
    members: dict[str, dict[str, Member]] = field(default_factory=dict)
    # interface -> "ringing" | "on_call" | "ring_ended" from AgentCalled/AgentConnect/
    # AgentRingNoAnswer until the device is idle again (agentstate.py: with
    # Local members QueueMemberStatus cannot tell ringing from talking); one per agent
    activity: dict[str, str] = field(default_factory=dict)
    # uid -> t finished: a resync snapshot taken just before a call ended must not revive it
    finished: dict[str, float] = field(default_factory=dict)
    # uids of the calls whose abandon is pending (abandon_at set, not answered, not finished):
    # the only ones a Newexten is read for (:func:`conditions`); kept in place, never rebound
    abandon_pending: set[str] = field(default_factory=set)
    last_evict: float = 0.0
    last_t: float = 0.0
    events: int = 0


@dataclass(frozen=True)
class Joined:
    """A caller entered a queue (or was found waiting by a resync)."""
    call: LiveCall


@dataclass(frozen=True)
class Answered:
    """An agent took the call."""
    call: LiveCall


@dataclass(frozen=True)
class Finished:
    """The queue call is over: its record is ready to store."""
    record: QueueCallRecord


@dataclass(frozen=True)
class MemberChanged:
    """A queue member's status, pause or call counters changed."""
    queue: str
    member: Member


@dataclass(frozen=True)
class MemberRemoved:
    queue: str
    interface: str


Fact = Joined | Answered | Finished | MemberChanged | MemberRemoved
FACT_TYPES = (Joined, Answered, Finished, MemberChanged, MemberRemoved)


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


def _finish(state: TrackerState, c: LiveCall, outcome: str, t: float | None,
            facts: list[Fact], *, talk: float | None = None, gap: bool = False) -> None:
    state.calls.pop(c.uniqueid, None)
    state.abandon_pending.discard(c.uniqueid)
    state.finished.pop(c.uniqueid, None)
    state.finished[c.uniqueid] = state.last_t
    if c.agent:
        key = (c.queue, c.agent)
        if state.by_member.get(key) == c.uniqueid:
            del state.by_member[key]
    if outcome in ("answered", "transferred"):
        ans = c.answered_at
        wait = (ans - c.entered_at) if (ans is not None and c.entered_at is not None) else None
        if talk is None and t is not None and ans is not None:
            talk = max(0.0, t - ans)
    else:
        stop = c.abandon_at or c.left_at or t
        wait = (stop - c.entered_at) if (stop is not None and c.entered_at is not None) else None
        if wait is None and c.abandon_hold is not None:
            wait = float(c.abandon_hold)
    if wait is not None and wait < 0:
        wait = 0.0
    facts.append(Finished(QueueCallRecord(
        uniqueid=c.uniqueid, linkedid=c.linkedid, queue=c.queue, leg=c.leg,
        caller_number=c.caller_number, caller_name=c.caller_name, entered_at=c.entered_at,
        answered_at=c.answered_at, ended_at=t, wait_seconds=wait, agent=c.agent,
        agent_name=c.agent_name, talk_seconds=talk, outcome=outcome, position=c.position,
        ivr_session_id=c.ivr_session_id, gap=gap or c.uncertain, direction=c.direction,
        campaign_id=c.campaign_id, attempt_id=c.attempt_id)))


def _next_leg(state: TrackerState, uid: str, queue: str, t: float) -> int:
    per_queue = state.legs.get(uid, ({}, t))[0]
    leg = per_queue.get(queue, 0) + 1
    per_queue[queue] = leg
    state.legs[uid] = (per_queue, t)
    return leg


def reduce(state: TrackerState, msg: Message, t: float) -> tuple[TrackerState, list[Fact]]:
    """Apply one AMI event; return the (same, mutated) state and the facts it produced.

    Any other event only moves ``last_t`` (and may run the eviction due every
    ``evict_every``); the tracker is handed only :data:`EVENTS` and the VarSets of
    :data:`VARIABLES`, so there ``last_t`` is the arrival of the last of those (the
    writer loop evicts every second anyway)."""
    facts: list[Fact] = []
    headers = msg.headers
    if not headers or headers[0][0] != "Event":
        return state, facts
    ev = headers[0][1]
    state.events += 1
    state.last_t = t
    handler = _HANDLERS.get(ev)
    if handler is not None:
        handler(state, dict(headers), t, facts)
    if t - state.last_evict >= state.config.evict_every:
        evict(state, t, facts)
    return state, facts


# -- handlers (h = first-value dict of the event's headers) -----------------------------------

def _join(state: TrackerState, h: dict, t: float, facts: list[Fact]) -> None:
    uid = h.get("Uniqueid")
    queue = h.get("Queue", "")
    if not uid:
        return
    c = state.calls.get(uid)
    if c is not None and c.queue == queue and c.answered_at is None and c.abandon_at is None:
        # adopted by a resync a moment ago: the join is the truth
        c.entered_at, c.position = t, _int(h.get("Position"))
        c.uncertain = c.uncertain_join = False
        return
    if c is not None:
        _finish(state, c, "unknown", t, facts, gap=True)
    c = LiveCall(
        uniqueid=uid, linkedid=h.get("Linkedid") or uid, channel=h.get("Channel", ""),
        queue=queue, leg=_next_leg(state, uid, queue, t),
        caller_number=canonical(h.get("CallerIDNum"), state.config.region),
        caller_name=_name(h.get("CallerIDName")), entered_at=t,
        position=_int(h.get("Position")))
    _apply_vars(state, c)
    state.calls[uid] = c
    facts.append(Joined(c))


def _name(v: str | None) -> str:
    return "" if not v or v == "<unknown>" else v


# channel variables the reducer keeps (set by the IVR / the dialer's Originate)
_CALL_VARS = ("IVR_SESSION", "ATTEMPT_ID", "CAMPAIGN_ID", "PATIENT_NUMBER", "PATIENT_NAME", "QUEUE_PRIO")


def _apply_vars(state: TrackerState, c: LiveCall) -> None:
    """Variables seen on the channel before it queued: the IVR session; for a dialer call
    the attempt, campaign and the patient (instead of the hospital's caller ID)."""
    got = state.chan_vars.pop(c.uniqueid, None)
    if got is None:
        return
    for var, value in got[0].items():
        _set_var(state, c, var, value)


def _set_var(state: TrackerState, c: LiveCall, var: str, value: str) -> None:
    if var == "IVR_SESSION":
        c.ivr_session_id = _int(value)
    elif var == "ATTEMPT_ID":
        c.attempt_id = _int(value)
    elif var == "CAMPAIGN_ID":
        c.campaign_id = _int(value)
    elif var == "PATIENT_NUMBER" and value:
        c.caller_number = canonical(value, state.config.region)
    elif var == "PATIENT_NAME":
        c.caller_name = _name(value)
    elif var == "QUEUE_PRIO":
        c.priority = _int(value) or 0


def _set_activity(state, h, facts, value: str | None) -> None:
    iface = h.get("Interface", "")
    if not iface:
        return
    act = state.activity
    if value is None:
        if act.pop(iface, None) is None:
            return
    elif act.get(iface) == value:
        return
    else:
        act[iface] = value
    m = state.members.get(h.get("Queue", ""), {}).get(iface)
    if m is not None:
        facts.append(MemberChanged(h.get("Queue", ""), m))


def _called(state, h, t, facts):
    c = state.calls.get(h.get("Uniqueid", ""))
    if c is not None:
        c.ringing = h.get("Interface", "")
    _set_activity(state, h, facts, "ringing")


def _ring_no_answer(state, h, t, facts):
    # the device still says INUSE until the agent channel is gone (the next QueueMemberStatus)
    if state.activity.get(h.get("Interface", "")) == "ringing":
        _set_activity(state, h, facts, "ring_ended")


def _leave(state, h, t, facts):
    c = state.calls.get(h.get("Uniqueid", ""))
    if c is not None and c.left_at is None and c.answered_at is None:
        c.left_at = t


def _abandon(state, h, t, facts):
    uid = h.get("Uniqueid", "")
    c = state.calls.get(uid)
    if c is None:
        return
    c.abandon_at = t
    c.abandon_hold = _int(h.get("HoldTime"))
    state.abandon_pending.add(uid)
    if c.hangup_requested:
        _finish(state, c, "abandoned", t, facts)


def _connect(state, h, t, facts):
    _set_activity(state, h, facts, "on_call")
    uid = h.get("Uniqueid", "")
    queue = h.get("Queue", "")
    c = state.calls.get(uid)
    if c is None:
        if not uid:
            return
        hold = _int(h.get("HoldTime")) or 0
        c = LiveCall(uniqueid=uid, linkedid=h.get("Linkedid") or uid, channel=h.get("Channel", ""),
                     queue=queue, leg=_next_leg(state, uid, queue, t),
                     caller_number=canonical(h.get("CallerIDNum"), state.config.region),
                     caller_name=_name(h.get("CallerIDName")), entered_at=t - hold, uncertain=True,
                     uncertain_join=True)
        _apply_vars(state, c)
        state.calls[uid] = c
    c.answered_at = c.left_at if c.left_at is not None else t
    c.answer_uncertain = False
    if c.entered_at is None:
        hold = _int(h.get("HoldTime"))
        c.entered_at = c.answered_at - hold if hold is not None else None
    c.agent = h.get("Interface", "")
    c.agent_name = h.get("MemberName", "")
    c.abandon_at = None
    state.abandon_pending.discard(uid)
    state.by_member[(c.queue, c.agent)] = uid
    facts.append(Answered(c))


def _complete(state, h, t, facts):
    _set_activity(state, h, facts, None)
    uid = h.get("Uniqueid")
    queue = h.get("Queue", "")
    iface = h.get("Interface", "")
    c = state.calls.get(uid) if uid else None
    if c is None:
        key = state.by_member.get((queue, iface))
        c = state.calls.get(key) if key else None
    talk = _int(h.get("TalkTime"))
    hold = _int(h.get("HoldTime"))
    if c is None:
        if not uid:
            return  # nothing to attach it to; an earlier Hangup already finished it
        # joined and answered while we were not listening: rebuild from Asterisk's figures
        answered = t - (talk or 0)
        c = LiveCall(uniqueid=uid, linkedid=h.get("Linkedid") or uid, channel=h.get("Channel", ""),
                     queue=queue, leg=_next_leg(state, uid, queue, t),
                     caller_number=canonical(h.get("CallerIDNum"), state.config.region),
                     caller_name=_name(h.get("CallerIDName")),
                     entered_at=answered - (hold or 0), uncertain=True)
        _apply_vars(state, c)
        c.answered_at = answered
        c.agent, c.agent_name = iface, h.get("MemberName", "")
        _finish(state, c, "answered", t, facts, talk=float(talk or 0), gap=True)
        return
    if c.answered_at is None or (c.answer_uncertain and (talk is not None or hold is not None)):
        # answered while we were not listening: Asterisk's whole seconds are all we have
        if c.entered_at is not None and hold is not None and c.uncertain_join is False:
            c.answered_at = c.entered_at + hold
        else:
            c.answered_at = t - (talk or 0)
            if hold is not None:
                c.entered_at = c.answered_at - hold
    if c.entered_at is None and hold is not None:
        c.entered_at = c.answered_at - hold
    if not c.agent:
        c.agent, c.agent_name = iface, h.get("MemberName", "")
    if c.uncertain and c.answered_at is not None and hold is not None and c.entered_at is not None \
            and abs((c.answered_at - c.entered_at) - hold) > 1.5:
        c.entered_at = c.answered_at - hold  # adopted mid-call: Asterisk's HoldTime is better
    outcome = "transferred" if (c.transferred or h.get("Reason") == "transfer") else "answered"
    _finish(state, c, outcome, t, facts)


def _varset(state, h, t, facts):
    var = h.get("Variable")
    if var == "QUEUESTATUS":
        c = state.calls.get(h.get("Uniqueid", ""))
        if c is not None and c.answered_at is None and (c.abandon_at is not None or c.left_at is not None):
            _finish(state, c, "timeout", t, facts)
    elif var in _CALL_VARS:
        uid = h.get("Uniqueid", "")
        value = h.get("Value") or ""
        if not uid or (var in ("IVR_SESSION", "ATTEMPT_ID", "CAMPAIGN_ID", "QUEUE_PRIO") and _int(value) is None):
            return
        c = state.calls.get(uid)
        if c is not None:
            _set_var(state, c, var, value)
        else:
            got = state.chan_vars.get(uid)
            if got is None:
                got = state.chan_vars[uid] = ({}, t)
            got[0][var] = value


def _newexten(state, h, t, facts):
    # read only for a uid in state.abandon_pending (conditions): keep the two in step
    c = state.calls.get(h.get("Uniqueid", ""))
    if c is not None and c.abandon_at is not None and c.answered_at is None:
        # the hang-up handler (exten h) runs after a hang-up, not after a Redirect
        _finish(state, c, "abandoned" if h.get("Extension") == "h" else "redirected", t, facts)


def _hangup_request(state, h, t, facts):
    c = state.calls.get(h.get("Uniqueid", ""))
    if c is not None and c.answered_at is None and c.abandon_at is None:
        c.hangup_requested = True


def _hangup(state, h, t, facts):
    uid = h.get("Uniqueid", "")
    state.chan_vars.pop(uid, None)
    c = state.calls.get(uid)
    if c is not None:
        if c.answered_at is not None:
            _finish(state, c, "transferred" if c.transferred else "answered", t, facts)
        else:
            _finish(state, c, "abandoned", t, facts)
    state.legs.pop(uid, None)


def _transfer(state, h, t, facts):
    for k, v in h.items():
        if k.endswith("Uniqueid"):
            c = state.calls.get(v)
            if c is not None and c.answered_at is not None:
                c.transferred = True


def _member_key(h: dict) -> tuple[str, str]:
    return h.get("Queue", ""), h.get("Interface") or h.get("Location") or ""


def _member(state, h, t, facts):
    queue, iface = _member_key(h)
    if not queue or not iface:
        return
    ms = state.members.setdefault(queue, {})
    m = ms.get(iface)
    if m is None:
        m = ms[iface] = Member(iface)
    m.name = h.get("MemberName") or h.get("Name") or m.name
    if "Status" in h:
        m.state = _int(h.get("Status")) or 0
    if "Paused" in h:
        m.paused = h.get("Paused") == "1"
    m.reason = h.get("PausedReason", h.get("Reason", m.reason)) or ""
    if "InCall" in h:
        m.in_call = h.get("InCall") == "1"
    if "LastCall" in h:
        m.last_call = _int(h.get("LastCall")) or 0
    if "Wrapuptime" in h:
        m.wrapuptime = _int(h.get("Wrapuptime")) or 0
    act = state.activity.get(iface)
    if m.in_call:
        state.activity[iface] = "on_call"  # QueueStatus after a reconnect
    elif act is not None and (m.state in _IDLE_DEVICE or (act == "on_call" and "Location" in h)):
        del state.activity[iface]  # the device is idle again (rings cancelled, call over)
    facts.append(MemberChanged(queue, m))


_IDLE_DEVICE = (0, 1, 4, 5)  # UNKNOWN, NOT_INUSE, INVALID, UNAVAILABLE


def _member_removed(state, h, t, facts):
    queue, iface = _member_key(h)
    ms = state.members.get(queue)
    if ms and ms.pop(iface, None) is not None:
        facts.append(MemberRemoved(queue, iface))


_HANDLERS = {
    "QueueCallerJoin": _join,
    "AgentCalled": _called,
    "AgentRingNoAnswer": _ring_no_answer,
    "QueueCallerLeave": _leave,
    "QueueCallerAbandon": _abandon,
    "AgentConnect": _connect,
    "AgentComplete": _complete,
    "VarSet": _varset,
    "Newexten": _newexten,
    "HangupRequest": _hangup_request,
    "SoftHangupRequest": _hangup_request,
    "Hangup": _hangup,
    "BlindTransfer": _transfer,
    "AttendedTransfer": _transfer,
    "QueueMemberStatus": _member,
    "QueueMemberAdded": _member,
    "QueueMemberPause": _member,
    "QueueMemberPaused": _member,
    "QueueMember": _member,
    "QueueMemberRemoved": _member_removed,
}

# what the reducer reads of AMI (the tracker declares it to the gateway): its handlers'
# events, VarSet only of the variables :func:`_varset` looks at
EVENTS = frozenset(_HANDLERS) - {"VarSet"}
VARIABLES = frozenset(("QUEUESTATUS", *_CALL_VARS))


def conditions(state: TrackerState) -> tuple[When, ...]:
    """Of :data:`EVENTS`, those read only in some state (declared with them): ``Newexten``
    (about half of a real call's events) only on a caller whose abandon is pending — the
    rest need not be built (:class:`callcenter.ami.interest.When`)."""
    return (When("Newexten", "Uniqueid", state.abandon_pending),)


def evict(state: TrackerState, t: float, facts: list[Fact] | None = None) -> list[Fact]:
    """Finish what nothing will ever finish; drop stale per-channel data."""
    facts = [] if facts is None else facts
    cfg = state.config
    state.last_evict = t
    for c in list(state.calls.values()):
        if c.abandon_at is not None and t - c.abandon_at >= cfg.abandon_grace:
            _finish(state, c, "abandoned", c.abandon_at, facts)
        elif c.answered_at is None and c.entered_at is not None and t - c.entered_at > cfg.max_wait:
            _finish(state, c, "unknown", None, facts, gap=True)
        elif c.answered_at is not None and t - c.answered_at > cfg.max_talk:
            _finish(state, c, "answered", None, facts, gap=True)
    fin = state.finished
    while fin:
        uid = next(iter(fin))
        if t - fin[uid] <= cfg.finished_ttl:
            break
        del fin[uid]
    for uid in [u for u, (_, vt) in state.chan_vars.items() if t - vt > cfg.var_ttl]:
        del state.chan_vars[uid]
    for k in [k for k, (_, lt) in state.legs.items() if t - lt > cfg.max_wait + cfg.max_talk]:
        del state.legs[k]
    return facts


def resync(state: TrackerState, queue_status: list[Message], channels: list[Message],
           t: float, *, lost_at: float | None = None, asked_at: float | None = None) -> list[Fact]:
    """Reconcile live state with ``QueueStatus`` + ``CoreShowChannels`` after a (re)connect.

    Callers still waiting are kept (or adopted, join time = now − ``Wait``,
    flagged uncertain); callers gone while we were away are finished with what we
    know (``gap``), ended at ``lost_at`` (when the link was lost: they were last known
    alive then; after an Asterisk crash that is when they died) with the talk time up to
    it; connected callers we did not know are adopted and completed from
    ``AgentComplete``'s figures later.  A uniqueid is never counted twice.  A caller whose
    join we saw after the snapshot was asked for (``asked_at``) is newer than the
    snapshot, not gone.
    """
    facts: list[Fact] = []
    state.last_t = max(state.last_t, t)
    entries: dict[str, dict] = {}
    for m in queue_status:
        ev = m.event
        if ev == "QueueEntry":
            h = m.as_dict()
            if h.get("Uniqueid"):
                entries[h["Uniqueid"]] = h
        elif ev == "QueueMember":
            _member(state, m.as_dict(), t, facts)
    alive: dict[str, dict] = {}
    for m in channels:
        if m.event == "CoreShowChannel":
            h = m.as_dict()
            if h.get("Uniqueid"):
                alive[h["Uniqueid"]] = h
    for c in list(state.calls.values()):
        if asked_at is not None and not c.uncertain_join and c.entered_at is not None \
                and c.entered_at >= asked_at:
            continue
        ch = alive.get(c.uniqueid)
        in_queue_app = ch is not None and ch.get("Application") == "Queue"
        if c.answered_at is None and c.abandon_at is None:
            e = entries.get(c.uniqueid)
            if e is not None:
                c.position = _int(e.get("Position")) or c.position
            elif in_queue_app and ch.get("BridgeId"):
                c.answered_at = t  # answered while away: the moment is unknown
                c.uncertain = c.answer_uncertain = True
                facts.append(Answered(c))
            else:
                _finish(state, c, "unknown", _bound(c, lost_at), facts, gap=True)
        elif c.abandon_at is not None and c.answered_at is None:
            _finish(state, c, "abandoned", c.abandon_at, facts)
        elif ch is None:
            _finish(state, c, "transferred" if c.transferred else "answered", _bound(c, lost_at),
                    facts, gap=True)
    for uid, e in entries.items():
        if uid in state.calls or uid in state.finished:
            continue
        wait = float(_int(e.get("Wait")) or 0)
        queue = e.get("Queue", "")
        c = LiveCall(uniqueid=uid, linkedid=(alive.get(uid) or {}).get("Linkedid") or uid,
                     channel=e.get("Channel", ""), queue=queue,
                     leg=_next_leg(state, uid, queue, t),
                     caller_number=canonical(e.get("CallerIDNum"), state.config.region),
                     caller_name=_name(e.get("CallerIDName")), entered_at=t - wait,
                     position=_int(e.get("Position")), uncertain=True, uncertain_join=True)
        state.calls[uid] = c
        facts.append(Joined(c))
    agent_chans = {h.get("Linkedid"): h.get("Channel", "") for h in alive.values()
                   if h.get("Application") == "AppQueue"}
    for uid, ch in alive.items():
        if (uid in state.calls or uid in state.finished or ch.get("Application") != "Queue"
                or not ch.get("BridgeId")):
            continue
        queue = (ch.get("ApplicationData") or "").split(",")[0]
        c = LiveCall(uniqueid=uid, linkedid=ch.get("Linkedid") or uid, channel=ch.get("Channel", ""),
                     queue=queue, leg=_next_leg(state, uid, queue, t),
                     caller_number=canonical(ch.get("CallerIDNum"), state.config.region),
                     caller_name=_name(ch.get("CallerIDName")), entered_at=None, uncertain=True,
                     uncertain_join=True)
        c.answered_at = t
        c.answer_uncertain = True
        m = _member_of(state, queue, agent_chans.get(uid, ""))
        if m is not None:
            c.agent, c.agent_name = m.interface, m.name
            state.by_member[(queue, m.interface)] = uid
        state.calls[uid] = c
        facts.append(Answered(c))
    return facts


def _bound(c: LiveCall, lost_at: float | None) -> float | None:
    """When a call gone during an outage ended, at the earliest: when the link was lost
    (never before what was seen of it)."""
    if lost_at is None:
        return None
    return max([lost_at, *(v for v in (c.entered_at, c.answered_at) if v is not None)])


def _member_of(state: TrackerState, queue: str, channel: str) -> Member | None:
    """The queue member whose interface a channel name belongs to.

    ``PJSIP/1001-0000002a`` → ``PJSIP/1001``; ``Local/1001@ctx-00000020;1`` →
    ``Local/1001@ctx/n``: strip the ``-<hex>`` channel suffix, compare the base.
    """
    if not channel:
        return None
    base = channel.split(";")[0]
    head, sep, tail = base.rpartition("-")
    if sep and tail and all(ch in "0123456789abcdef" for ch in tail):
        base = head
    for iface, m in state.members.get(queue, {}).items():
        if iface == base or (iface.endswith("/n") and iface[:-2] == base):
            return m
    return None
