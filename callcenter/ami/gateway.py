"""The one AMI client of the service: panoramisk 1.4 on the socket, our fixes around it.

Data path (``docs/asterisk-pitfalls.md`` numbers in brackets)::

    TCP bytes -> _Protocol(panoramisk.ami_protocol.AMIProtocol).data_received
              -> codec.Parser (bytes kept until a message is whole: UTF-8 safe [1];
                 an event no subscriber declared is only counted, never built [13])
              -> AmiMessage(panoramisk.message.Message) -> AMIProtocol.handle_message
                   |- ActionID of an action in flight -> panoramisk Action.add_message
                   |  (its EventList handling completes the Action's future)
                   '- an event -> factory.dispatch -> the guarded subscribers that
                      declared it (a table by event name, VarSet by variable) [4]
    actions: _Action(panoramisk.actions.Action) -> AMIProtocol.send

What is panoramisk's and what is ours:

* **Framing in** is ours: panoramisk's ``data_received`` decodes each read on its
  own and drops a character split across reads [1], so our protocol subclass
  overrides only ``data_received``: :class:`callcenter.ami.codec.Parser` frames,
  and every complete message is handed to panoramisk's own ``handle_message`` as
  an :class:`AmiMessage` (a ``panoramisk.message.Message`` that also carries our
  ordered :class:`~callcenter.ami.codec.Message` as ``.raw``; subscribers and
  action results get ``.raw``, as the contract says: repeated headers and their
  order intact).  One message's failure inside panoramisk is logged, not fatal.
* **Actions** are panoramisk ``Action`` objects written by ``AMIProtocol.send``
  (``str(action)`` with ``utils.EOL``, which we hold at ``\\r\\n`` [10]: a
  ``panoramisk.testing`` import sets it to ``\\n`` process-wide) and completed by
  panoramisk's ``Action.add_message``.  ``_Action.multi`` (is the answer a list?)
  is ours: ``EventList: start`` or "will follow".  panoramisk's guess would wait
  for more after ``Added interface to queue`` (QueueAdd hangs) and after
  ``Originate successfully queued`` (it would swallow the ``OriginateResponse``
  that subscribers need, and raise KeyError without ``Async`` [3]).  Headers are
  checked by :func:`codec.encode` first (no CR/LF injection); ``Async`` is always
  explicit on Originate [3].  Each action has *our* deadline on the injected clock.
* **Nothing is ever re-sent** [2]: the factory's ``forgetable_actions`` contains
  every action name, so panoramisk's ``close()`` queues nothing in
  ``awaiting_actions`` (cleared anyway on every loss, and nobody calls
  ``send_awaiting_actions``); actions in flight fail with
  :class:`AmiNotConnected` and the caller reconciles (Originate: by ActionID, the
  outcome is the ``OriginateResponse`` event).
* **Shutdown**: panoramisk's ``handle_message`` treats an ``Event: Shutdown`` as
  the end of the link (Asterisk is exiting; the socket may linger after a
  restart's exec); the gateway then reconnects with backoff like after any loss,
  and subscribers still receive the Shutdown event (after ``on_disconnect``).
* **Lifecycle is ours, not ``panoramisk.Manager``**: everything the Manager adds
  over the protocol is a pitfall — fixed 2 s reconnect and a ping that never
  waits for its Pong, both on the loop's real time [5, 8], re-sending awaiting
  actions on ``FullyBooted`` [2], unguarded callbacks [4] matched through
  fnmatch regexes on every event — and its ``on_connect``/``on_disconnect``
  instance attributes would shadow this class's public methods of the same
  names.  So a per-connection :class:`_Factory` plays the part panoramisk's
  protocol expects of a Manager (``dispatch``, ``connection_lost``,
  ``forgetable_actions``, ``awaiting_actions``), and the gateway supervises:
  login, ``FullyBooted`` awaited when the login answer came without it (a restarted
  Asterisk still loading modules refuses QueueStatus & co.), ``on_connect`` hooks
  awaited after every login (resync), ping with a
  deadline (no Pong within ``ping_timeout`` -> half-open, abort, reconnect),
  capped exponential backoff with jitter from an injected RNG; all timers on
  the injected clock, none of panoramisk's.

Event filtering (PITFALLS 13), in the service: every subscriber declares the events it
reads, and for ``VarSet`` the channel variables (:mod:`.interest`; declaring nothing is an
error naming it).  An event nobody declared is not built at all — the parser reads its
``Event:`` line (a ``VarSet``'s ``Variable:`` line) in the decoded text and leaves a
``None`` the gateway counts (``events_received``, the metrics' rate); while an action that
may answer with an event list is in flight, one with an ActionID is built anyway (it may be a
list item of the answer).  Actions whose answer is one ``Response`` (:data:`SINGLE_ANSWER`:
the recorder's ``MixMonitor`` on every recorded call, ``Originate``, ``QueuePause``...) do
not turn that check on: an undeclared event cannot be theirs, and the check lower-cases
every unread event (10–40 % more parse time on bench/ami_ingest.py's stream).  What
is built goes through panoramisk's ``handle_message`` as before and is handed only to the
subscribers that declared it, from a table built when the subscriptions change.  Each
declaration sits next to the code that reads the events (the reducer's is its handler
table, ``reducer.EVENTS``/``VARIABLES``; recordings ``CaptureTracker.EVENTS``/``variables``,
two of them from the config; the dialer's ``engine.EVENTS``; the screen pop's); the tests
replay every recorded trace with each consumer given only what it declares against
everything (tests/queuecalls/test_event_filter.py, tests/test_ami_declarations.py).  On a
real call that leaves about a quarter of the events to build (``VarSet`` of Asterisk's
own variables, ``Newstate``, ``DeviceStateChange``, bridge and dial events are skipped).
An event declared on condition (:class:`~callcenter.ami.interest.When`: the reducer's
``Newexten``, only for a caller whose abandon is pending) is left unbuilt by the parser and
decided here, in order, when its turn comes (the events before it in the same read already
handled): built and delivered if a subscriber's live set holds its ``Uniqueid``, else counted
as skipped.  No consumer but the reducer reads ``Newexten``, so on a real call about half of
what was still built is not.

Asterisk-side filtering stays off: Asterisk 22 could drop events per session (``Action:
Filter``, ``Operation: Add``; include filters → "implied exclude-all first";
``MatchCriteria: name(VarSet),header(Variable)`` is documented for 22 (certified 22.8) but
not 20.7, where ``Filter`` is a full-payload regex; needs ``system`` write; gone at every
reconnect; ``QueueStatus``/``CoreShowChannels`` list items are action output and never
filtered).  It is not needed for the volume (a busy hospital hour is ~300 queue calls ≈ 15
events/s), legacy regex filters move the cost to Asterisk (a regex over every event payload
per session), and the events would be gone for good: a consumer declaring one more event
here gets it at once, with no re-filtering in Asterisk to keep in step.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from panoramisk import utils as pano_utils
from panoramisk.actions import Action as PanoAction
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message as PanoMessage

from ..clock import sleep
from .codec import Deferred, Message, Parser, ProtocolError, encode
from .interest import Interest, Routes, When

log = logging.getLogger(__name__)

EventCallback = Callable[[Message, float], Any]
CRLF = "\r\n"

# Actions Asterisk 22 answers with one Response message and never an event list (read in
# main/manager.c, apps/app_mixmonitor.c and apps/app_queue.c of 22.10.1: none of these calls
# astman_send_listack; an async Originate's OriginateResponse is an event subscribers declare,
# not an answer's list item: ``_Action.multi`` is false for it).  Not ``Hangup``: with a
# /regex/ channel it answers "Channels hung up will follow" and a list.  Lower-cased; any other
# action (QueueStatus, CoreShowChannels, Status, DBGet, an unknown name) is taken to answer
# with a list while it is in flight.
SINGLE_ANSWER = frozenset(n.lower() for n in (
    "Login", "Logoff", "Ping", "Challenge", "Events", "GetConfig", "Getvar", "Setvar",
    "Redirect", "Originate", "MixMonitor", "StopMixMonitor", "MixMonitorMute",
    "QueueAdd", "QueueRemove", "QueuePause", "QueuePenalty", "QueueLog"))


class AmiError(Exception):
    """``Response: Error`` (or Failure) to an action; ``.response`` is the message."""

    def __init__(self, message: str, response: Message | None = None):
        super().__init__(message)
        self.response = response


class AmiTimeout(AmiError):
    """No (complete) answer within the action's deadline."""


class AmiNotConnected(AmiError):
    """Not logged in, or the link dropped before the answer (the action may have run)."""


class AmiNotSent(AmiNotConnected):
    """Refused before a byte was written (no link): the action certainly did not run."""


class AmiMessage(PanoMessage):
    """A panoramisk ``Message`` over one of our parsed messages (kept as ``.raw``), built lazily.

    Same mapping as ``panoramisk.message.Message.from_line``: case-insensitive
    keys, a repeated key becomes a list, a ``content`` key (the bare lines of a
    ``Follows`` answer here).  But the mapping (a second copy of every header) is
    only built when something reads it: an action's answer (``Action.add_message``).
    What ``AMIProtocol.handle_message`` asks of every event (its ``id``, ``action_id``
    and ``event``) is read from the parsed headers, so the events, nearly all of the
    traffic, pass through panoramisk without being copied (bench/ami_ingest.py).
    """

    def __init__(self, raw: Message):
        d = self.__dict__
        d["raw"], d["manager"], d["_built"], d["_ids"] = raw, None, None, None

    @property
    def _store(self) -> dict:
        store = self.__dict__["_built"]
        if store is None:
            store = self.__dict__["_built"] = _store_of(self.raw.headers)
        return store

    @_store.setter
    def _store(self, value: dict) -> None:
        self.__dict__["_built"] = value

    def _id_headers(self) -> tuple[str | None, str | None, bool]:
        """(CommandID, ActionID, unique): one pass, cached; not unique -> ask the mapping."""
        ids = self.__dict__["_ids"]
        if ids is None and self.raw.has_id is False:
            ids = self.__dict__["_ids"] = (None, None, True)
        if ids is None:
            cid = aid = None
            unique = True
            for n, v in self.raw.headers:
                if len(n) == 8 and n.lower() == "actionid":
                    unique, aid = unique and aid is None, v
                elif len(n) == 9 and n.lower() == "commandid":
                    unique, cid = unique and cid is None, v
            ids = self.__dict__["_ids"] = (cid, aid, unique)
        return ids

    @property
    def id(self):
        cid, aid, unique = self._id_headers()
        if not unique:
            return PanoMessage.id.fget(self)
        return cid if cid is not None else aid

    @property
    def action_id(self):
        _, aid, unique = self._id_headers()
        return aid if unique else PanoMessage.action_id.fget(self)

    def __contains__(self, key) -> bool:
        hs = self.raw.headers
        if key == "event" and hs and hs[0][0] == "Event" and self.__dict__["_built"] is None:
            return True  # Asterisk's events start with Event:
        return super().__contains__(key)

    def __getitem__(self, key):
        hs = self.raw.headers
        if key == "event" and hs and hs[0][0] == "Event" and self.__dict__["_built"] is None:
            return hs[0][1]  # the first Event: (a repeated one would be a list panoramisk cannot .lower())
        return super().__getitem__(key)


def _store_of(hs: list[tuple[str, str]]) -> dict:
    """panoramisk's mapping of ``hs``: lower-cased key -> (key, value or list of values)."""
    store = {k.lower(): (k, v) for k, v in hs}
    content = ""
    if len(store) != len(hs) or "" in store:
        store = {}
        bare = []
        for k, v in hs:
            if not k:
                bare.append(v)
                continue
            lk = k.lower()
            old = store.get(lk)
            if old is None:
                store[lk] = (k, v)
            else:
                prev = old[1]
                store[lk] = (k, (prev if isinstance(prev, list) else [prev]) + [v])
        content = "\n".join(bare)
    store["content"] = ("content", content)
    return store


class _Action(PanoAction):
    """A panoramisk ``Action`` whose list detection is ours (see the module docstring)."""

    def __init__(self, pairs: list[tuple[str, str]]):
        data: dict[str, Any] = {}
        lower: dict[str, str] = {}
        for k, v in pairs:
            key = lower.setdefault(k.lower(), k)
            if key in data:
                prev = data[key]
                data[key] = (prev if isinstance(prev, list) else [prev]) + [v]
            else:
                data[key] = v
        super().__init__(data, as_list=None)
        self.timer: Any = None
        self.name = str(self.get("Action", "?"))
        self.lists = self.name.lower() not in SINGLE_ANSWER  # may its answer be an event list?

    @property
    def multi(self) -> bool:
        if self.as_list is not None:
            return bool(self.as_list)
        first = self.responses[0]
        if first.response not in PanoMessage.success_responses:
            return False
        return (str(first.get("EventList", "")).lower() == "start"
                or "will follow" in str(first.get("Message", "")).lower())

    @property
    def completed(self) -> bool:
        last = self.responses[-1]
        if len(self.responses) > 1 and str(last.get("EventList", "")).lower() == "complete":
            return True
        return super().completed


class _EveryAction:
    """``forgetable_actions`` for panoramisk's ``close()``: every action name [2]."""

    def __contains__(self, name: object) -> bool:
        return True


class _Factory:
    """What panoramisk's ``AMIProtocol`` calls its factory (a ``Manager`` there), for one connection."""

    forgetable_actions = _EveryAction()

    def __init__(self, gateway: "AmiGateway", proto: "_Protocol"):
        self.gw, self.proto = gateway, proto
        self.awaiting_actions: deque = deque()
        self.save_stream = None

    def dispatch(self, message: AmiMessage) -> None:
        self.gw._event(self.proto, message.raw, message.raw.event)

    def connection_lost(self, exc: Any) -> None:
        self.awaiting_actions.clear()
        self.gw._lost(self.proto, exc)


class _Protocol(AMIProtocol):
    """panoramisk's protocol with UTF-8-safe framing; never lets an exception reach asyncio."""

    def __init__(self, gateway: "AmiGateway"):
        self.gw = gateway
        self.parser = Parser(expect_banner=True)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.t = 0.0
        self.booted = False  # FullyBooted seen on this connection
        self.boot_waiter: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.factory = _Factory(self.gw, self)
        self.encoding = "utf8"
        self.log = log

    def data_received(self, data: bytes) -> None:
        gw = self.gw
        gw.bytes_received += len(data)
        gw.reads += 1
        routes = gw._routes
        # while an action that may answer with a list is in flight, an unread event may be an item
        lists = any(a.lists for a in self.responses.values())
        try:
            msgs = self.parser.feed(data, routes.filter_ids if lists else routes.filter)
        except ProtocolError as exc:
            gw._why = f"stream is not AMI ({exc})"  # said once, in the reconnect line
            self.transport.abort()
            return
        if self.version is None and self.parser.banner is not None:
            self.version = self.parser.banner.partition("/")[2].strip()
            gw.banner = self.parser.banner
        if not msgs:
            return
        self.t = gw.clock.seconds()
        handle = self.handle_message
        live = self is gw._proto
        skipped, before = 0, gw.events_received
        for msg in msgs:
            if self.closed:
                break  # Shutdown: the rest of this read belongs to a dead link
            if msg is None:  # an event nobody declared (parser filter): counted, not built
                skipped += live
                continue
            if msg.__class__ is Deferred:  # needed only in some state: asked now, all before it handled
                if not routes.wanted(msg):
                    skipped += live
                    continue
                msg = msg.build()
            try:
                handle(AmiMessage(msg))
            except Exception:  # noqa: BLE001 - one odd message must not kill the link
                log.exception("AMI message not handled: %r", msg.event or msg.get("Response"))
        gw.events_received += skipped
        if gw._counters and gw.events_received > before:
            gw._count(gw.events_received - before)


@dataclass
class Outage:
    """From the loss of a link until a new one has stayed up ``healthy_after`` seconds
    (``end`` is then; the outage proper ended ``healthy_after`` before it)."""
    start: float
    end: float | None = None
    logins: int = 0          # logins during the outage (the last one is the one that held)


class AmiGateway:
    """A service component (``name = "ami"``); see the module docstring."""

    @classmethod
    def from_config(cls, c: Any, *, clock: Any) -> "AmiGateway":
        """From the ``[ami]`` config section."""
        return cls(c.host, c.port, c.username, c.secret, clock=clock, ping_interval=c.ping_interval,
                   ping_timeout=c.ping_timeout, action_timeout=c.action_timeout,
                   reconnect_max_delay=c.reconnect_max_delay, healthy_after=c.healthy_after)

    name = "ami"

    def __init__(self, host: str, port: int, username: str, secret: str, *, clock: Any,
                 ping_interval: float = 10, ping_timeout: float = 5, action_timeout: float = 10,
                 reconnect_max_delay: float = 30, reconnect_base_delay: float = 0.5,
                 connect_timeout: float = 10, rng: random.Random | None = None,
                 events: str = "on", healthy_after: float = 30,
                 boot_timeout: float = 300):
        self.host, self.port = host, port
        self.username, self._secret = username, secret
        self.clock = clock
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.action_timeout = action_timeout
        self.reconnect_max_delay = reconnect_max_delay
        self.reconnect_base_delay = reconnect_base_delay
        self.connect_timeout = connect_timeout
        self.healthy_after = healthy_after  # the backoff resets only after a link stayed up this long
        self.outages: list[Outage] = []     # ended outages (a lost link until one is healthy again)
        self.outage: Outage | None = None   # the one in progress
        self._login_at: float | None = None
        self._healthy_timer = None
        self._why = ""
        # how long to wait after login for FullyBooted before running the on_connect hooks anyway
        self.boot_timeout = boot_timeout
        self.rng = rng or random.Random()
        self.events = events
        self.connected = False
        self.connecting = False
        # when the supervisor will try again (clock seconds) while it waits out a backoff, else
        # None: with ``connecting`` it tells a stepped test clock the link's state is settled
        self.reconnect_at: float | None = None
        self.banner: str | None = None
        # counters (tests synchronise on bytes; the bench reports them)
        self.bytes_received = 0
        self.reads = 0
        self.events_received = 0
        self.connects = 0
        self.subscriber_errors = 0
        self._routes = Routes(always=("FullyBooted", "Shutdown"))  # the gateway reads those itself
        self._counters: list[Callable[[int], Any]] = []
        self._on_connect: list[Callable[[], Awaitable[Any]]] = []
        self._on_disconnect: list[Callable[[float], Any]] = []
        self._pending: dict[str, _Action] = {}
        self._ids = itertools.count(1)
        self._id_prefix = f"cc{self.rng.randrange(16**6):06x}-"
        self._proto: _Protocol | None = None
        self._lost_future: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._ping_task: asyncio.Task | None = None
        self._stopping = False
        self._connected_event = asyncio.Event()

    # -- registration ---------------------------------------------------------------------
    def subscribe(self, callback: EventCallback, events: Iterable[str] | str | None = None,
                  variables: Iterable[str] = (), when: Iterable[When] = ()) -> EventCallback:
        """``callback(msg, t)`` for the events it reads (t = clock at arrival); errors are logged.

        ``events``: the event names (``"*"``: every event); ``variables``: the channel
        variables whose ``VarSet`` it reads; ``when``: of those events, the ones it needs only
        while a header's value is in a set it keeps (:class:`~callcenter.ami.interest.When`).
        Nothing else reaches it, and what no subscriber reads is not even built
        (:mod:`.interest`); declaring nothing is a
        :class:`~callcenter.ami.interest.SubscriptionError` naming the callback."""
        self._routes.add(callback, Interest.declared(callback, events, variables, when))
        return callback

    def unsubscribe(self, callback: EventCallback) -> None:
        self._routes.remove(callback)

    def count_events(self, callback: Callable[[int], Any]) -> None:
        """``callback(n)`` after each read with the number of events in it, read or not
        (the metrics' event rate needs no message)."""
        self._counters.append(callback)

    def on_connect(self, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        """``await coro_fn()`` after every successful login (resync hook)."""
        self._on_connect.append(coro_fn)

    def on_disconnect(self, callback: Callable[[float], Any]) -> None:
        """``callback(t)`` when a logged-in link is lost."""
        self._on_disconnect.append(callback)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._usable(self._proto) and self.connected:
            try:
                # bounded in real time too: a test clock may never advance
                await asyncio.wait_for(self.action({"Action": "Logoff"}, timeout=1), 1.0)
            except (AmiError, asyncio.TimeoutError):
                pass
        for task in (self._ping_task, self._task):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._ping_task = self._task = None
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.abort()
        self._fail_pending(AmiNotConnected("gateway stopped"))
        self.connected = False

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Until logged in and the on_connect hooks ran (``timeout`` in real seconds)."""
        await asyncio.wait_for(self._connected_event.wait(), timeout)

    # -- actions ---------------------------------------------------------------------------
    async def action(self, headers: dict | Iterable[tuple[str, str]], *,
                     timeout: float | None = None) -> Message | list[Message]:
        """Send one action; one response, or ``[response, items…, complete]`` for lists."""
        if not self.connected:
            raise AmiNotSent(f"AMI not connected to {self.host}:{self.port}")
        return await self._send(headers, timeout)

    async def originate(self, action_id: str, channel: str, *, context: str | None = None,
                        exten: str | None = None, priority: int | str | None = None,
                        application: str | None = None, data: str | None = None,
                        timeout_ms: int = 30000, caller_id: str | None = None,
                        variables: dict | None = None) -> Message:
        """Async Originate, sent exactly once; the outcome is the ``OriginateResponse``
        event with the same ActionID (via :meth:`subscribe`)."""
        h: list[tuple[str, str]] = [("Action", "Originate"), ("ActionID", action_id),
                                    ("Channel", channel)]
        if application:
            h.append(("Application", application))
            if data is not None:
                h.append(("Data", data))
        else:
            if context is None or exten is None:
                raise ValueError("originate needs context+exten or application")
            h += [("Context", context), ("Exten", exten), ("Priority", str(priority or 1))]
        h.append(("Timeout", str(int(timeout_ms))))
        if caller_id:
            h.append(("CallerID", caller_id))
        h.append(("Async", "true"))  # PITFALLS 3: always explicit
        for k, v in (variables or {}).items():
            h.append(("Variable", f"{k}={v}"))
        return await self.action(h)

    @staticmethod
    def _usable(proto: _Protocol | None) -> bool:
        return (proto is not None and proto.transport is not None and not proto.closed
                and not proto.transport.is_closing())

    async def _send(self, headers, timeout: float | None) -> Message | list[Message]:
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
        aid = next((v for k, v in pairs if k.lower() == "actionid"), None)
        if aid is None:
            aid = f"{self._id_prefix}{next(self._ids)}"
            pairs.insert(1 if pairs and pairs[0][0].lower() == "action" else 0, ("ActionID", aid))
        if aid in self._pending:
            raise AmiError(f"ActionID {aid!r} is already in flight")
        encode(pairs)  # refuses CR/LF in names and values: no header injection
        proto = self._proto
        if not self._usable(proto):
            raise AmiNotSent(f"AMI not connected to {self.host}:{self.port}")
        if pano_utils.EOL != CRLF:  # PITFALLS 10: panoramisk.testing sets it to "\n"
            log.warning("panoramisk utils.EOL was %r; reset to CRLF", pano_utils.EOL)
            pano_utils.EOL = CRLF
        action = _Action(pairs)
        self._pending[aid] = action
        delay = self.action_timeout if timeout is None else timeout
        action.timer = self.clock.callLater(delay, self._expire, proto, aid, action, delay)
        fut = proto.send(action, as_list=None)
        try:
            result = await fut
        finally:
            if action.timer is not None and action.timer.active():
                action.timer.cancel()
            if self._pending.get(aid) is action:
                del self._pending[aid]
            if proto.responses.get(aid) is action:  # expired/cancelled: no late completion
                del proto.responses[aid]
        if isinstance(result, list):
            return [m.raw for m in result]
        msg = result.raw
        resp = msg.get("Response") or ""
        if resp not in ("Success", "Goodbye", "Follows"):
            raise AmiError(msg.get("Message") or f"{action.name} failed: {resp or msg.event}", msg)
        return msg

    def _expire(self, proto: _Protocol, aid: str, action: _Action, delay: float) -> None:
        if self._pending.get(aid) is action:
            del self._pending[aid]
        if proto.responses.get(aid) is action:
            del proto.responses[aid]
        if not action.future.done():
            action.future.set_exception(
                AmiTimeout(f"no answer to {action.name} ({aid}) within {delay:g} s"))

    def _fail_pending(self, exc: AmiError) -> None:
        pending, self._pending = self._pending, {}
        for action in pending.values():
            if action.timer is not None and action.timer.active():
                action.timer.cancel()
            if not action.future.done():
                action.future.set_exception(AmiNotConnected(str(exc)))

    # -- incoming (called by panoramisk's handle_message through _Factory) ------------------
    def _event(self, proto: _Protocol, msg: Message, name: str) -> None:
        """An event (``name``: its ``Event`` header) to the subscribers that declared it."""
        if proto is not self._proto:
            return
        self.events_received += 1
        if name == "FullyBooted":
            proto.booted = True
            if proto.boot_waiter is not None and not proto.boot_waiter.done():
                proto.boot_waiter.set_result(None)
        t = proto.t
        for cb in self._routes.for_event(name, msg):
            try:
                cb(msg, t)
            except Exception:  # noqa: BLE001 - PITFALLS 4: never kill the link
                self.subscriber_errors += 1
                log.exception("AMI subscriber %r failed on %s", cb, name)

    def _count(self, n: int) -> None:
        for cb in self._counters:
            try:
                cb(n)
            except Exception:  # noqa: BLE001
                log.exception("AMI event counter %r failed", cb)

    def _lost(self, proto: _Protocol, exc: Any) -> None:
        if proto is not self._proto:
            return
        was = self.connected
        self.connected = False
        self._connected_event.clear()
        self._fail_pending(AmiNotConnected("AMI connection lost before the answer; "
                                           "the action may have run"))
        if self._ping_task is not None:
            self._ping_task.cancel()
            self._ping_task = None
        if self._lost_future is not None and not self._lost_future.done():
            self._lost_future.set_result(exc)
        if self._healthy_timer is not None and self._healthy_timer.active():
            self._healthy_timer.cancel()
        self._healthy_timer = None
        if was:
            self._why = self._why or ("Asterisk shut down" if isinstance(exc, PanoMessage)
                                      else str(exc) if exc else "connection closed")
            t = self.clock.seconds()
            if self.outage is None:
                self.outage = Outage(start=t)
            for cb in list(self._on_disconnect):
                try:
                    cb(t)
                except Exception:  # noqa: BLE001
                    log.exception("AMI on_disconnect callback %r failed", cb)

    # -- connection supervisor -------------------------------------------------------------
    def backoff_delay(self, attempt: int) -> float:
        """Capped exponential backoff with jitter in [d/2, d]."""
        d = min(self.reconnect_max_delay, self.reconnect_base_delay * (2 ** min(attempt, 30)))
        return d / 2 + self.rng.random() * d / 2

    async def _run(self) -> None:
        """Connect, and after each loss wait a backoff that grows until a link has stayed up
        ``healthy_after`` seconds: a server that takes the login and drops at once gets a
        few logins a minute, not one a second.  One log line per cycle."""
        attempt = 0
        while not self._stopping:
            logged_in = False
            self._why = ""
            self._login_at = None
            try:
                logged_in = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except (OSError, AmiError) as exc:
                self._why = self._why or str(exc) or exc.__class__.__name__
            except Exception:  # noqa: BLE001
                log.exception("AMI connection to %s:%s failed", self.host, self.port)
                self._why = "unexpected error (logged above)"
            finally:
                if self._proto is not None and self._proto.transport is not None:
                    self._proto.transport.abort()
            if self._stopping:
                break
            now = self.clock.seconds()
            up = now - self._login_at if logged_in and self._login_at is not None else None
            healthy = up is not None and up >= self.healthy_after
            attempt = 0 if healthy else attempt + 1
            if self.outage is None:
                self.outage = Outage(start=now)
            delay = self.backoff_delay(attempt)
            lasted = f"lost {up:.1f} s after login" if up is not None else "no link"
            log.warning("AMI %s:%s: %s (%s); reconnect in %.1f s (outage since %.0f s, %d login(s) in it)",
                        self.host, self.port, lasted, self._why or "closed", delay,
                        now - self.outage.start, self.outage.logins)
            self.reconnect_at = now + delay
            try:
                await sleep(self.clock, delay)
            finally:
                self.reconnect_at = None

    def _link_healthy(self) -> None:
        """The link stayed up ``healthy_after`` seconds: the outage (if any) is over."""
        self._healthy_timer = None
        if self.outage is not None and self.connected:
            self.outage.end = self.clock.seconds()
            self.outages.append(self.outage)
            log.warning("AMI %s:%s: outage over after %.0f s (%d login(s) that did not hold)",
                        self.host, self.port, self.outage.end - self.outage.start - self.healthy_after,
                        self.outage.logins - 1)
            self.outage = None

    async def _connect_once(self) -> bool:
        loop = asyncio.get_running_loop()
        self._lost_future = loop.create_future()
        self._proto = None
        self.connecting = True  # TCP connect and login under way (stepped test clocks wait on it)
        try:
            transport, proto = await self._with_timeout(
                loop.create_connection(lambda: _Protocol(self), self.host, self.port),
                self.connect_timeout, "connect")
            self._proto = proto
            self.banner = proto.parser.banner  # None until the banner line arrived
            resp = await self._send([("Action", "Login"), ("Username", self.username),
                                     ("Secret", self._secret), ("Events", self.events)],
                                    self.action_timeout)
        finally:
            self.connecting = False
        self.connected = True
        self.connects += 1
        self._login_at = self.clock.seconds()
        if self.outage is None:
            log.info("AMI logged in to %s:%s (%s)", self.host, self.port, self.banner or "no banner")
        else:  # in an outage the cycle's one line says it
            self.outage.logins += 1
        self._healthy_timer = self.clock.callLater(self.healthy_after, self._link_healthy)
        del resp
        if not proto.booted:
            await self._wait_booted(proto)
        for hook in list(self._on_connect):
            if not self.connected:
                break
            try:
                await hook()
            except AmiNotConnected:
                break  # the link went during the resync: the reconnect line says so
            except Exception:  # noqa: BLE001 - a failed resync must not drop the link
                log.exception("AMI on_connect hook %r failed", hook)
        if self.connected:
            self._connected_event.set()
            self._ping_task = asyncio.ensure_future(self._ping_loop(proto))
        await self._lost_future
        return True

    async def _wait_booted(self, proto: _Protocol) -> None:
        """Asterisk accepts logins while it is still loading modules (after a restart): it
        sends ``FullyBooted`` after the login answer only once booted, else to every session
        when it is; until then module actions (QueueStatus…) are "Invalid/unknown command".
        So the on_connect hooks (resync) wait for it — at most ``boot_timeout`` (a user
        without the ``system`` read class never gets it; the hooks then retry)."""
        log.info("AMI %s:%s: Asterisk is still booting; waiting for FullyBooted", self.host, self.port)
        fut = proto.boot_waiter = asyncio.get_running_loop().create_future()
        dc = self.clock.callLater(self.boot_timeout, lambda: fut.done() or fut.set_result(None))
        try:
            await asyncio.wait([fut, self._lost_future], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if dc.active():
                dc.cancel()
            proto.boot_waiter = None
        if not proto.booted and self.connected:
            log.warning("AMI %s:%s: no FullyBooted within %g s of login (is 'system' missing from "
                        "the manager user's read classes?); resyncing anyway", self.host, self.port,
                        self.boot_timeout)
        elif proto.booted:
            log.info("AMI %s:%s: Asterisk fully booted", self.host, self.port)

    async def _ping_loop(self, proto: _Protocol) -> None:
        while self.connected and proto is self._proto:
            await sleep(self.clock, self.ping_interval)
            if not self.connected or proto is not self._proto:
                return
            try:
                await self._send({"Action": "Ping"}, self.ping_timeout)
            except AmiTimeout:
                log.warning("AMI %s:%s: no Pong within %g s; link is half-open, reconnecting",
                            self.host, self.port, self.ping_timeout)
                if proto.transport is not None:
                    proto.transport.abort()
                return
            except AmiNotConnected:
                return
            except AmiError:
                pass  # an Error response is still an answer: the link is alive

    async def _with_timeout(self, aw, timeout: float, what: str):
        task = asyncio.ensure_future(aw)
        expired = []

        def expire():
            expired.append(True)
            task.cancel()

        dc = self.clock.callLater(timeout, expire)
        try:
            return await task
        except asyncio.CancelledError:
            if expired:
                raise AmiTimeout(f"{what} to {self.host}:{self.port} took over {timeout:g} s") from None
            raise
        finally:
            if dc.active():
                dc.cancel()
