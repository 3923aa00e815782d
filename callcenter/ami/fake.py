"""A test double of the AMI client port (:class:`callcenter.ports.AmiClient`).

For unit tests of one feature that play Asterisk themselves: the test emits events
to the subscribers and sees the actions sent.  Tests of the whole product use the
simulator (:mod:`callcenter.simulator`) over real TCP instead.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from .codec import Message
from .interest import Interest, Routes


def message(**headers: Any) -> Message:
    """An AMI message from keyword headers (values as text)."""
    return Message([(k, str(v)) for k, v in headers.items()])


class FakeAmi:
    """Records actions (``sent``, as dicts) and Originates (``originates``).

    ``reply(headers) -> Message | list`` answers an action (default: ``Response:
    Success``); ``live`` are the channel Uniqueids ``CoreShowChannels`` reports;
    ``fail_with`` makes ``originate`` raise.  ``reconnect()`` runs the on-connect hooks
    as a new login would; ``disconnect(t)`` the on-disconnect ones.
    """

    name = "ami"

    def __init__(self, clock: Any = None, *, reply: Callable[[dict], Any] | None = None,
                 live: list[str] | set[str] | None = None):
        self.clock = clock
        self.connected = True
        self.reply = reply
        self.live = live if live is not None else []
        self.sent: list[dict] = []
        self.originates: list[dict] = []
        self.fail_with: Exception | None = None
        self.routes = Routes()  # as the gateway routes: only what each subscriber declared
        self.counters: list[Callable[[int], Any]] = []
        self.connect_hooks: list[Callable[[], Awaitable[Any]]] = []
        self.disconnect_hooks: list[Callable[[float], Any]] = []

    # -- the port ---------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Message, float], Any], events: Any = None,
                  variables: Any = (), when: Any = ()) -> Callable:
        """As the gateway's; a conditional event (``when``) is emitted whole all the same
        (there is no parser here to leave it unbuilt)."""
        self.routes.add(callback, Interest.declared(callback, events, variables, when))
        return callback

    def unsubscribe(self, callback: Callable[[Message, float], Any]) -> None:
        self.routes.remove(callback)

    def count_events(self, callback: Callable[[int], Any]) -> None:
        self.counters.append(callback)

    def on_connect(self, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        self.connect_hooks.append(coro_fn)

    def on_disconnect(self, callback: Callable[[float], Any]) -> None:
        self.disconnect_hooks.append(callback)

    async def action(self, headers: Any, *, timeout: float | None = None) -> Any:
        h = dict(headers)
        self.sent.append(h)
        if self.reply is not None:
            return self.reply(h)
        aid = h.get("ActionID", f"fake-{len(self.sent)}")
        if h.get("Action") == "CoreShowChannels":
            return ([message(Response="Success", EventList="start")]
                    + [message(Event="CoreShowChannel", Uniqueid=u) for u in sorted(self.live)]
                    + [message(Event="CoreShowChannelsComplete", EventList="Complete")])
        return message(Response="Success", ActionID=aid, Message="Added interface to queue")

    async def originate(self, action_id: str, channel: str, **kw: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.originates.append(dict(action_id=action_id, channel=channel, t=self.now(), **kw))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    # -- playing Asterisk -------------------------------------------------------------
    def now(self) -> float:
        return self.clock.seconds() if self.clock is not None else 0.0

    def emit(self, msg: Message, t: float | None = None) -> None:
        """Deliver ``msg`` at ``t`` (default: the clock) to the subscribers that declared it."""
        t = self.now() if t is None else t
        for cb in self.counters:
            cb(1)
        name = msg.event
        if name is not None:
            for cb in self.routes.for_event(name, msg):
                cb(msg, t)

    def event(self, **headers: Any) -> None:
        """``emit`` of a message built from keyword headers."""
        self.emit(message(**headers))

    async def reconnect(self) -> None:
        for fn in self.connect_hooks:
            await fn()

    def disconnect(self, t: float | None = None) -> None:
        t = self.now() if t is None else t
        for cb in self.disconnect_hooks:
            cb(t)
