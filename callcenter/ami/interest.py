"""What each AMI consumer reads, declared when it subscribes; events are routed by it.

Most events of a real call (``Newexten``, ``VarSet`` of Asterisk's own variables,
``DeviceStateChange``, ``Newstate``, bridge and dial events...) matter to no consumer.
So each subscriber declares the event names it reads and, for ``VarSet``, the channel
variables (:meth:`Interest.declared`); :class:`Routes` hands an event only to the
subscribers that declared it (a table built when the subscriptions change, not a loop
over every subscriber per event), and its :class:`EventFilter` tells the parser which
messages it need not build at all (:meth:`callcenter.ami.codec.Parser.feed`).

The filter is only as good as the declarations, so there is no default: a subscriber
declaring nothing is a :class:`SubscriptionError` naming it.  A consumer that reads one
more event or variable declares it next to the code that reads it (the reducer's
``EVENTS``/``VARIABLES`` are its handler table).  :data:`EVERY` (tools, tests) turns the
filter off while that subscriber is there.

An event a subscriber reads only in some state may be declared *conditional*
(:class:`When`: ``Newexten`` only for a caller whose abandon is pending): the parser then
leaves it as a :class:`~callcenter.ami.codec.Deferred` (its text, unbuilt), and the gateway,
when it comes to dispatch it (every event before it already handled, so the state is
current), builds it only if the one named header's value is in the subscriber's live set
(:meth:`Routes.wanted`).  Built, it is delivered like any other; the subscriber still
decides for itself (it may be built for another).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Container, Iterable

EVERY = "*"
VARSET = "VarSet"


class SubscriptionError(ValueError):
    """A subscriber's declaration of what it reads is missing or malformed."""


def _name(callback: Any) -> str:
    if inspect.ismethod(callback):  # say whose
        return f"{type(callback.__self__).__name__}.{callback.__func__.__name__}"
    if inspect.isfunction(callback):
        return f"{callback.__module__}.{callback.__qualname__}"
    return repr(callback)


@dataclass(frozen=True, eq=False)
class When:
    """``event`` is needed only while its ``header`` (a plain ``Key: value`` line, once) has a
    value in ``values`` — a live container the subscriber keeps (read at each such event)."""

    event: str
    header: str
    values: Container[str]


@dataclass(frozen=True)
class Interest:
    """Event names delivered whole (``VarSet`` among them: every VarSet), and the
    variables whose ``VarSet`` events are delivered; ``every``: all events; ``when``: of the
    events, those needed only in some state (:class:`When`)."""

    events: frozenset[str] = frozenset()
    variables: frozenset[str] = frozenset()
    every: bool = False
    when: tuple[When, ...] = ()

    @classmethod
    def declared(cls, callback: Any, events: Iterable[str] | str | None,
                 variables: Iterable[str] = (), when: Iterable[When] = ()) -> "Interest":
        """The interest a subscriber declares; :class:`SubscriptionError` naming it when it
        declares nothing (or a bare string where names are expected, or a condition on an
        event it does not declare)."""
        who = _name(callback)
        when = tuple(when)
        if events == EVERY:
            if when:
                raise SubscriptionError(f"AMI subscriber {who}: {EVERY!r} reads every event, "
                                        f"a condition on {when[0].event!r} would say otherwise")
            return cls(every=True)
        if isinstance(events, str) or isinstance(variables, str):
            raise SubscriptionError(f"AMI subscriber {who}: events and variables are collections of "
                                    f"names (got a string {events if isinstance(events, str) else variables!r})")
        evs = frozenset(events or ())
        vs = frozenset(variables or ())
        if not evs and not vs:
            raise SubscriptionError(f"AMI subscriber {who} declares no events: name the events it reads "
                                    f"(and the VarSet variables), or {EVERY!r} for every event")
        if EVERY in evs:
            raise SubscriptionError(f"AMI subscriber {who}: {EVERY!r} is the whole declaration, not a name")
        for w in when:
            if w.event not in evs or w.event == VARSET:
                raise SubscriptionError(f"AMI subscriber {who}: a condition on {w.event!r}, "
                                        f"which it does not declare (or VarSet: declare variables)")
        if len({w.event for w in when}) != len(when):
            raise SubscriptionError(f"AMI subscriber {who}: two conditions on one event")
        return cls(evs, vs, when=when)

    def wants(self, event: str, variables: tuple[str, ...] = ()) -> bool:
        """Would this subscriber read ``event`` (a VarSet: of these ``variables``)?"""
        if self.every or event in self.events:
            return True
        return event == VARSET and any(v in self.variables for v in variables)


@dataclass(frozen=True)
class EventFilter:
    """What the parser may leave unbuilt: an ``Event:`` message whose name is not in
    ``events`` (a ``VarSet``: whose one ``Variable`` is not in ``variables``).  With
    ``check_ids`` (an action is in flight) only one without an ActionID/CommandID header:
    it may be an answer's list item.  An event of ``when`` (needed only in some state) is
    left unbuilt as a :class:`~callcenter.ami.codec.Deferred`, for :meth:`Routes.wanted`."""

    events: frozenset[str]
    variables: frozenset[str]
    check_ids: bool = False
    when: frozenset[str] = frozenset()


Callback = Callable[..., Any]


class Routes:
    """The subscribers and the routing table built from their interests.

    ``always``: events the owner itself reads (the gateway: ``FullyBooted``, ``Shutdown``):
    never filtered, delivered only to subscribers that declared them."""

    def __init__(self, always: Iterable[str] = ()):
        self.always = frozenset(always)
        self.subs: list[tuple[Callback, Interest]] = []
        self._build()

    def add(self, callback: Callback, interest: Interest) -> None:
        self.subs.append((callback, interest))
        self._build()

    def remove(self, callback: Callback) -> None:
        for i, (cb, _) in enumerate(self.subs):
            if cb == callback:
                del self.subs[i]
                self._build()
                return

    def clear(self) -> None:
        self.subs.clear()
        self._build()

    @property
    def callbacks(self) -> list[Callback]:
        return [cb for cb, _ in self.subs]

    def _build(self) -> None:
        subs = self.subs
        names = set().union(*(i.events for _, i in subs)) | self.always
        # an event every subscriber of which reads it only in some state: its conditions
        cond: dict[str, list[When]] = {}
        for _, i in subs:
            for w in i.when:
                cond.setdefault(w.event, []).append(w)
        plain = self.always.union(*(i.events - {w.event for w in i.when} for _, i in subs))
        self.when = {n: tuple(ws) for n, ws in cond.items() if n not in plain}
        variables = frozenset().union(*(i.variables for _, i in subs))
        self.every = tuple(cb for cb, i in subs if i.every)           # for names nobody declared
        self.by_event = {n: tuple(cb for cb, i in subs if i.wants(n)) for n in names}
        self.by_event.pop(VARSET, None)                                # routed by variable
        self.varset_any = tuple(cb for cb, i in subs if i.wants(VARSET))
        self.by_variable = {v: tuple(cb for cb, i in subs if i.wants(VARSET, (v,))) for v in variables}
        if any(i.every for _, i in subs):
            self.filter = self.filter_ids = None
        else:
            built, when = frozenset(names - self.when.keys()), frozenset(self.when)
            self.filter = EventFilter(built, variables, when=when)
            self.filter_ids = EventFilter(built, variables, check_ids=True, when=when)

    def wanted(self, deferred: Any) -> bool:
        """Is a :class:`~callcenter.ami.codec.Deferred` event needed now?  Yes when a
        subscriber's live set holds its header's value, or the header is not plainly there
        once (then it is built: the subscriber decides); also when the subscriptions changed
        since the parse and someone declares it without condition."""
        ws = self.when.get(deferred.name)
        if ws is None:
            return self.filter is None or deferred.name in self.filter.events
        for w in ws:
            v = deferred.header(w.header)
            if v is None or v in w.values:
                return True
        return False

    def for_event(self, name: str, msg: Any) -> tuple[Callback, ...]:
        """The subscribers of an event named ``name`` (``msg``: its message, for a VarSet's
        ``Variable`` headers; none counts as the variable ``""``)."""
        if name != VARSET:
            return self.by_event.get(name, self.every)
        values = msg.getall("Variable") or [""]
        if len(values) == 1:
            return self.by_variable.get(values[0], self.varset_any)
        vs = tuple(values)
        return tuple(cb for cb, i in self.subs if i.wants(VARSET, vs))
