"""Agents' login and pause stretches from the tracker's member facts — pure.

Asterisk speaks of queue *members* (one interface in one queue); the report speaks of
agents.  An agent is logged in while a member of at least one queue, and paused while
paused in every queue they are a member of (then no queue offers them a call; a pause
in one queue of two is not time off).  The pause reason is the one Asterisk reports
(``PausedReason``), the first non-empty one of their queues; the dialer's reservations
(``dialer:<attempt>``) are one reason, ``dialer``.

:func:`AgentLog.apply` takes a ``MemberChanged``/``MemberRemoved`` fact and the time
and returns the edges (:class:`Opened`, :class:`Closed`) to store; a change of pause
reason closes one pause and opens the next.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .reducer import MemberChanged, MemberRemoved

KINDS = ("login", "pause")


@dataclass(frozen=True)
class Opened:
    interface: str
    kind: str          # login | pause
    at: float
    reason: str = ""
    name: str = ""


@dataclass(frozen=True)
class Closed:
    interface: str
    kind: str
    at: float


Edge = Opened | Closed


@dataclass(frozen=True)
class AgentStatus:
    logged_in: bool = False
    paused: bool = False
    reason: str = ""


@dataclass
class AgentLog:
    # interface -> queue -> (paused, reason)
    members: dict[str, dict[str, tuple[bool, str]]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    status: dict[str, AgentStatus] = field(default_factory=dict)

    def apply(self, fact: MemberChanged | MemberRemoved, t: float) -> list[Edge]:
        if isinstance(fact, MemberChanged):
            m = fact.member
            self.members.setdefault(m.interface, {})[fact.queue] = (bool(m.paused), reason_code(m.reason or ""))
            if m.name:
                self.names[m.interface] = m.name
            iface = m.interface
        elif isinstance(fact, MemberRemoved):
            iface = fact.interface
            self.members.get(iface, {}).pop(fact.queue, None)
        else:
            raise TypeError(f"not a member fact: {fact!r}")
        return self._edges(iface, t)

    def close_all(self, t: float) -> list[Edge]:
        """Everything open ends at ``t`` (the service stops listening)."""
        out: list[Edge] = []
        for iface, st in sorted(self.status.items()):
            if st.paused:
                out.append(Closed(iface, "pause", t))
            if st.logged_in:
                out.append(Closed(iface, "login", t))
        self.status.clear()
        self.members.clear()
        return out

    def _edges(self, iface: str, t: float) -> list[Edge]:
        queues = self.members.get(iface, {})
        if not queues:
            self.members.pop(iface, None)
        new = _status(queues)
        old = self.status.get(iface, AgentStatus())
        name = self.names.get(iface, "")
        out: list[Edge] = []
        if old.paused and (not new.paused or new.reason != old.reason):
            out.append(Closed(iface, "pause", t))
        if old.logged_in and not new.logged_in:
            out.append(Closed(iface, "login", t))
        if new.logged_in and not old.logged_in:
            out.append(Opened(iface, "login", t, name=name))
        if new.paused and (not old.paused or new.reason != old.reason):
            out.append(Opened(iface, "pause", t, reason=new.reason, name=name))
        if new.logged_in:
            self.status[iface] = new
        else:
            self.status.pop(iface, None)
        return out


def reason_code(reason: str) -> str:
    """The pause reason as a code: the dialer pauses an agent it reserves for an outbound
    call as ``dialer:<attempt id>`` (one code, "dialer", whatever the attempt)."""
    return "dialer" if reason.startswith("dialer:") else reason


def _status(queues: dict[str, tuple[bool, str]]) -> AgentStatus:
    if not queues:
        return AgentStatus()
    paused = all(p for p, _ in queues.values())
    reason = next((r for _, (p, r) in sorted(queues.items()) if p and r), "") if paused else ""
    return AgentStatus(logged_in=True, paused=paused, reason=reason)
