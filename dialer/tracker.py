"""Sans-IO: turn AMI events into facts about our dial attempts.

Correlation follows the traces (04/05): the ``OriginateResponse`` carries our
ActionID (= attempt id); on failure it has ``Uniqueid: <unknown>``, so hang-up
causes are tied to an attempt through the ``VarSet ATTEMPT_ID`` that Asterisk
emits on the new channels (same ``Linkedid``); after a success the patient's
channel ``Uniqueid`` identifies the call until its ``Hangup``.  Events may arrive
in any order (the response can precede or follow the channels' hang-ups).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

# OriginateResponse Reason (Asterisk's outgoing control frame) -> disposition
REASONS = {4: "answered", 5: "busy", 8: "congestion", 3: "no_answer", 1: "failed", 0: "failed"}
# Hang-up causes that say more than Reason 0/1 does.
CAUSES = {17: "busy", 18: "no_answer", 19: "no_answer", 34: "congestion", 38: "congestion",
          42: "congestion", 1: "invalid", 3: "invalid", 28: "invalid"}


def disposition_for(reason: int | None, cause: int | None = None) -> str:
    """Disposition of a failed/answered Originate from its Reason, refined by the cause."""
    disp = REASONS.get(reason if reason is not None else 0, "failed")
    if disp == "failed" and cause in CAUSES:
        return CAUSES[cause]
    return disp


class LinkedAttempts:
    """Linkedid -> attempt id from ``VarSet ATTEMPT_ID`` (the one place dial attempts are
    correlated with the calls Asterisk reports; the dialer's tracker and the agent's screen
    pop both use it).  ``ChanVariable`` headers are read too when manager.conf
    ``channelvars`` lists ATTEMPT_ID.  Bounded: the oldest entries are dropped."""

    VARIABLES = frozenset(("ATTEMPT_ID",))  # the VarSet feed reads

    def __init__(self, limit: int = 5000):
        self.limit = limit
        self.by_linked: OrderedDict[str, int] = OrderedDict()

    def feed(self, msg) -> int | None:
        """Remember a ``VarSet ATTEMPT_ID``; returns the attempt it names (None otherwise)."""
        if msg.get("Event") != "VarSet" or msg.get("Variable") != "ATTEMPT_ID":
            return None
        value = msg.get("Value") or ""
        linked = msg.get("Linkedid") or msg.get("Uniqueid") or ""
        if not linked or not value.isdigit() or len(value) > 18:
            return None
        self.remember(linked, int(value))
        return int(value)

    def remember(self, linked: str, attempt_id: int) -> None:
        self.by_linked[linked] = attempt_id
        self.by_linked.move_to_end(linked)
        while len(self.by_linked) > self.limit:
            self.by_linked.popitem(last=False)

    def get(self, linked: str) -> int | None:
        return self.by_linked.get(linked)

    def attempt_for(self, msg) -> int | None:
        """The attempt behind the call of an event (``AgentConnect``, ``QueueCallerJoin``...)."""
        for header in ("ChanVariable", "ChanVariableCaller"):
            for v in msg.getall(header) if hasattr(msg, "getall") else []:
                name, _, value = (v or "").partition("=")
                if name == "ATTEMPT_ID" and value.isdigit():
                    return int(value)
        for key in (msg.get("Linkedid"), msg.get("Uniqueid")):
            if key and key in self.by_linked:
                return self.by_linked[key]
        return None

    def forget(self, attempt_id: int) -> None:
        for k in [k for k, v in self.by_linked.items() if v == attempt_id]:
            del self.by_linked[k]


@dataclass(frozen=True)
class Fact:
    """Something that happened to one dial attempt at ``t``; the subclasses are the facts."""
    attempt_id: int
    t: float

    @property
    def kind(self) -> str:  # for log lines
        return type(self).__name__.lower()


@dataclass(frozen=True)
class Originated(Fact):
    """The Originate's outcome: ``disposition`` answered, or why it failed."""
    disposition: str = ""
    reason: int | None = None
    cause: int | None = None
    channel: str = ""
    uniqueid: str = ""


@dataclass(frozen=True)
class CauseSeen(Fact):
    """A hang-up cause of the attempt's channels (refines a failed Originate)."""
    cause: int | None = None


@dataclass(frozen=True)
class Queued(Fact):
    """The answered patient joined the queue."""
    uniqueid: str = ""


@dataclass(frozen=True)
class Connected(Fact):
    """An agent took the patient."""
    agent: str = ""
    interface: str = ""


@dataclass(frozen=True)
class Abandoned(Fact):
    """The patient left the queue before an agent took the call."""


@dataclass(frozen=True)
class Ended(Fact):
    """The patient's channel hung up."""
    cause: int | None = None


def ends_attempt(fact: Fact) -> bool:
    """Whether the attempt is over with this fact (hung up, or an Originate that failed)."""
    return isinstance(fact, Ended) or (isinstance(fact, Originated) and fact.disposition != "answered")


@dataclass
class _Live:
    attempt_id: int
    answered: bool = False
    uniqueid: str = ""
    cause: int | None = None
    failed: bool = False


@dataclass
class AttemptTracker:
    """Feed every AMI event; get back the facts concerning attempts we placed."""

    live: dict[int, _Live] = field(default_factory=dict)
    linked: LinkedAttempts = field(default_factory=LinkedAttempts)
    by_uniqueid: dict[str, int] = field(default_factory=dict)

    def expect(self, attempt_id: int) -> None:
        self.live[attempt_id] = _Live(attempt_id)

    def forget(self, attempt_id: int) -> None:
        live = self.live.pop(attempt_id, None)
        if live and live.uniqueid:
            self.by_uniqueid.pop(live.uniqueid, None)
        self.linked.forget(attempt_id)

    # what feed reads of AMI (declared to the gateway by the dialer)
    EVENTS = frozenset(("OriginateResponse", "Hangup", "AgentConnect", "QueueCallerJoin", "QueueCallerAbandon"))
    VARIABLES = LinkedAttempts.VARIABLES

    def feed(self, msg, t: float) -> list[Fact]:
        ev = msg.get("Event")
        if ev == "OriginateResponse":
            return self._originate_response(msg, t)
        if ev == "VarSet":
            if msg.get("Variable") == "ATTEMPT_ID" and msg.get("Linkedid"):
                aid = self.linked.feed(msg)
                if aid is not None and aid not in self.live:
                    self.linked.forget(aid)  # another instance's call: not ours to follow
            return []
        if ev == "Hangup":
            return self._hangup(msg, t)
        if ev == "AgentConnect":
            aid = self._by_call(msg)
            if aid is not None:
                iface = msg.get("Interface", "")
                return [Connected(aid, t, agent=msg.get("MemberName") or iface, interface=iface)]
            return []
        if ev == "QueueCallerJoin":
            # may come before the OriginateResponse: the VarSet (same Linkedid) names the attempt
            aid = self._by_call(msg)
            if aid is None:
                aid = self.linked.get(msg.get("Linkedid", ""))
            if aid is not None and aid in self.live:
                return [Queued(aid, t, uniqueid=msg.get("Uniqueid", ""))]
            return []
        if ev == "QueueCallerAbandon":
            aid = self._by_call(msg)
            if aid is not None:
                return [Abandoned(aid, t)]
        return []

    def _by_call(self, msg) -> int | None:
        aid = self.by_uniqueid.get(msg.get("Uniqueid", ""))
        if aid is None:
            aid = self.by_uniqueid.get(msg.get("Linkedid", ""))
        return aid

    def _originate_response(self, msg, t: float) -> list[Fact]:
        try:
            aid = int(msg.get("ActionID", ""))
        except ValueError:
            return []
        live = self.live.get(aid)
        if live is None:
            return []
        try:
            reason = int(msg.get("Reason", "0"))
        except ValueError:
            reason = 0
        uniqueid = msg.get("Uniqueid", "")
        if msg.get("Response") == "Success" and uniqueid and uniqueid != "<unknown>":
            live.answered, live.uniqueid = True, uniqueid
            self.by_uniqueid[uniqueid] = aid
            return [Originated(aid, t, disposition="answered", reason=reason,
                         channel=msg.get("Channel", ""), uniqueid=uniqueid)]
        live.failed = True
        disp = disposition_for(reason, live.cause)
        facts = [Originated(aid, t, disposition=disp, reason=reason, cause=live.cause)]
        return facts

    def _hangup(self, msg, t: float) -> list[Fact]:
        try:
            cause = int(msg.get("Cause", "0"))
        except ValueError:
            cause = 0
        uid = msg.get("Uniqueid", "")
        aid = self.by_uniqueid.get(uid)
        if aid is not None:  # the answered patient's channel ended
            self.forget(aid)
            return [Ended(aid, t, cause=cause)]
        aid = self.linked.get(msg.get("Linkedid", ""))
        if aid is None:
            return []
        live = self.live.get(aid)
        facts: list[Fact] = []
        if live is not None and not live.answered and cause and live.cause is None:
            live.cause = cause
            facts.append(CauseSeen(aid, t, cause=cause))
        if uid == msg.get("Linkedid") and live is not None and live.failed:
            self.forget(aid)  # the root channel of a failed attempt is gone: nothing more to learn
        return facts
