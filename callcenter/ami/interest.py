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
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable

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


@dataclass(frozen=True)
class Interest:
    """Event names delivered whole (``VarSet`` among them: every VarSet), and the
    variables whose ``VarSet`` events are delivered; ``every``: all events."""

    events: frozenset[str] = frozenset()
    variables: frozenset[str] = frozenset()
    every: bool = False

    @classmethod
    def declared(cls, callback: Any, events: Iterable[str] | str | None,
                 variables: Iterable[str] = ()) -> "Interest":
        """The interest a subscriber declares; :class:`SubscriptionError` naming it when it
        declares nothing (or a bare string where names are expected)."""
        who = _name(callback)
        if events == EVERY:
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
        return cls(evs, vs)

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
    it may be an answer's list item."""

    events: frozenset[str]
    variables: frozenset[str]
    check_ids: bool = False


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
        variables = frozenset().union(*(i.variables for _, i in subs))
        self.every = tuple(cb for cb, i in subs if i.every)           # for names nobody declared
        self.by_event = {n: tuple(cb for cb, i in subs if i.wants(n)) for n in names}
        self.by_event.pop(VARSET, None)                                # routed by variable
        self.varset_any = tuple(cb for cb, i in subs if i.wants(VARSET))
        self.by_variable = {v: tuple(cb for cb, i in subs if i.wants(VARSET, (v,))) for v in variables}
        if any(i.every for _, i in subs):
            self.filter = self.filter_ids = None
        else:
            self.filter = EventFilter(frozenset(names), variables)
            self.filter_ids = EventFilter(frozenset(names), variables, check_ids=True)

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
