"""The one AMI client of the service: login, actions, events, ping, reconnect.

Why this is written on asyncio with our sans-IO codec instead of wrapping
``panoramisk.Manager`` (panoramisk stays the dependency for FastAGI):
every job the Manager does is one of the pitfalls in ``shared/PITFALLS.md`` —
its framing drops UTF-8 split across reads (1), it re-sends unanswered actions
after a reconnect (2: a patient called twice), it raises inside the protocol on
an ``Originate`` without ``Async`` (3), a failing callback kills the connection
(4), its ping never waits for the Pong and its reconnect delay is a fixed 2 s
(5), and its timers run on the loop's real time so an injected clock cannot
drive them (8).  Overriding all of that leaves only the socket, which asyncio
already gives us; so the gateway owns the protocol directly:

* framing: :class:`callcenter.ami.codec.Parser` (bytes kept until a message is
  complete, then decoded: UTF-8 safe across reads);
* actions: each gets an ActionID and its *own* deadline on the injected clock;
  nothing is ever re-sent — after a disconnect pending actions fail with
  :class:`AmiNotConnected` and the caller reconciles (for ``Originate``: by
  ActionID, the outcome is the ``OriginateResponse`` event);
* EventList actions (``QueueStatus``, ``CoreShowChannels``, regex ``Hangup`` …)
  return ``[response, items…, complete]``; their list items go to the action,
  not to subscribers;
* every subscriber call is guarded: an exception is logged, the connection lives;
* ping with a deadline: no answer within ``ping_timeout`` → the link is treated as
  half-open, aborted and re-established;
* reconnect with capped exponential backoff and jitter from an injected RNG;
* ``on_connect`` hooks are awaited after every successful login (resync).

Event filtering (PITFALLS 13) — measured, deliberately **not** enabled.  What the
consumers read: the queue-call reducer ``QueueCallerJoin/Leave/Abandon``, ``Agent{Called,
RingNoAnswer,Connect,Complete}``, ``QueueMember{Status,Added,Pause,Paused,Removed}``,
``HangupRequest``, ``SoftHangupRequest``, ``Hangup``, ``Blind/AttendedTransfer``, ``Newexten``
(after an abandon: ``h`` = hang-up, else Redirect) and ``VarSet`` of ``QUEUESTATUS`` and
``IVR_SESSION``; recordings ``AgentConnect``, ``OriginateResponse``, ``Hangup``,
``MixMonitorStart/Stop``, ``VarSet`` ``MIXMONITOR_FILENAME``/``CAMPAIGN``/``CAMPAIGN_ID``
(names configurable); the dialer tracker and the screen pop ``OriginateResponse``, ``Hangup``,
``AgentConnect/Complete``, ``QueueCallerAbandon``, ``VarSet ATTEMPT_ID``; the gateway
``FullyBooted``/``Shutdown``.  Over all recorded traces that keeps 601 of 2,435 events
(252 of 960 kB): −75 %, mostly ``VarSet`` (1,002), ``Newexten`` (315), ``DeviceStateChange``.
Asterisk 22 could drop the rest per session (``Action: Filter``, ``Operation: Add``;
include filters → "implied exclude-all first"; ``MatchCriteria: name(VarSet),header(Variable)``
is documented for 22 (certified 22.8) but not 20.7, where ``Filter`` is a full-payload regex; needs ``system`` write; gone at every
reconnect, so it would be re-added in an ``on_connect`` hook; ``QueueStatus``/
``CoreShowChannels`` list items are action output and are never filtered).  Why it stays off:
(1) it is not needed — a busy hospital hour is ~300 queue calls ≈ 15 events/s against
≥ 48,000 events/s measured here (README, ``bench/ami_ingest.py``); (2) an include list fails
silently: a consumer that starts reading one more event or channel variable (a new outcome,
``channelvars`` in the screen pop, a renamed ``[recordings] campaign_variable``) gets nothing
and the numbers are quietly wrong, which the service's contract (no lost calls) forbids;
(3) legacy regex filters move the cost to Asterisk (a regex over every event payload per
session).  If volume ever demands it: build the include list from the consumers
(the reducer's handler table, the recordings/dialer feeds), add it on connect only when
``Filter`` answers Success, and replay every trace with and without it.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import random
from typing import Any, Awaitable, Callable, Iterable

from .codec import Message, Parser, ProtocolError, encode

log = logging.getLogger(__name__)

EventCallback = Callable[[Message, float], Any]


class AmiError(Exception):
    """``Response: Error`` (or Failure) to an action; ``.response`` is the message."""

    def __init__(self, message: str, response: Message | None = None):
        super().__init__(message)
        self.response = response


class AmiTimeout(AmiError):
    """No (complete) answer within the action's deadline."""


class AmiNotConnected(AmiError):
    """Not logged in, or the link dropped before the answer (the action may have run)."""


class _Pending:
    __slots__ = ("future", "items", "is_list", "timer", "name")

    def __init__(self, future: asyncio.Future, name: str):
        self.future = future
        self.items: list[Message] = []
        self.is_list = False
        self.timer: Any = None
        self.name = name


class _Protocol(asyncio.Protocol):
    """Feeds bytes to the gateway's parser; never lets an exception reach asyncio."""

    def __init__(self, gateway: "AmiGateway"):
        self.gw = gateway
        self.parser = Parser(expect_banner=True)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        gw = self.gw
        gw.bytes_received += len(data)
        gw.reads += 1
        try:
            msgs = self.parser.feed(data)
        except ProtocolError as exc:
            log.error("AMI stream from %s:%s is not AMI (%s); reconnecting", gw.host, gw.port, exc)
            self.transport.abort()
            return
        if msgs:
            gw._dispatch(self, msgs)

    def connection_lost(self, exc) -> None:
        self.gw._lost(self, exc)


class AmiGateway:
    """A service component (``name = "ami"``); see the module docstring."""

    name = "ami"

    def __init__(self, host: str, port: int, username: str, secret: str, *, clock: Any,
                 ping_interval: float = 10, ping_timeout: float = 5, action_timeout: float = 10,
                 reconnect_max_delay: float = 30, reconnect_base_delay: float = 0.5,
                 connect_timeout: float = 10, rng: random.Random | None = None,
                 events: str = "on"):
        self.host, self.port = host, port
        self.username, self._secret = username, secret
        self.clock = clock
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.action_timeout = action_timeout
        self.reconnect_max_delay = reconnect_max_delay
        self.reconnect_base_delay = reconnect_base_delay
        self.connect_timeout = connect_timeout
        self.rng = rng or random.Random()
        self.events = events
        self.connected = False
        self.banner: str | None = None
        # counters (tests synchronise on bytes; the bench reports them)
        self.bytes_received = 0
        self.reads = 0
        self.events_received = 0
        self.connects = 0
        self.subscriber_errors = 0
        self._subscribers: list[EventCallback] = []
        self._on_connect: list[Callable[[], Awaitable[Any]]] = []
        self._on_disconnect: list[Callable[[float], Any]] = []
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._id_prefix = f"cc{self.rng.randrange(16**6):06x}-"
        self._proto: _Protocol | None = None
        self._lost_future: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._ping_task: asyncio.Task | None = None
        self._stopping = False
        self._connected_event = asyncio.Event()

    # -- registration ---------------------------------------------------------------------
    def subscribe(self, callback: EventCallback) -> EventCallback:
        """``callback(msg, t)`` for every event (t = clock at arrival); errors are logged."""
        self._subscribers.append(callback)
        return callback

    def unsubscribe(self, callback: EventCallback) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def on_connect(self, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        """``await coro_fn()`` after every successful login (resync hook)."""
        self._on_connect.append(coro_fn)

    def on_disconnect(self, callback: Callable[[float], Any]) -> None:
        """``callback(t)`` when a logged-in link is lost."""
        self._on_disconnect.append(callback)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, service: Any = None) -> None:
        self._stopping = False
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._proto is not None and self._proto.transport is not None and self.connected:
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
            raise AmiNotConnected(f"AMI not connected to {self.host}:{self.port}")
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

    async def _send(self, headers, timeout: float | None) -> Message | list[Message]:
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
        aid = next((v for k, v in pairs if k.lower() == "actionid"), None)
        if aid is None:
            aid = f"{self._id_prefix}{next(self._ids)}"
            pairs.insert(1 if pairs and pairs[0][0].lower() == "action" else 0, ("ActionID", aid))
        if aid in self._pending:
            raise AmiError(f"ActionID {aid!r} is already in flight")
        name = next((v for k, v in pairs if k.lower() == "action"), "?")
        data = encode(pairs)  # refuses CR/LF in values
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            raise AmiNotConnected(f"AMI not connected to {self.host}:{self.port}")
        fut = asyncio.get_running_loop().create_future()
        p = _Pending(fut, name)
        self._pending[aid] = p
        delay = self.action_timeout if timeout is None else timeout
        p.timer = self.clock.callLater(delay, self._expire, aid, name, delay)
        proto.transport.write(data)
        try:
            return await fut
        finally:
            if p.timer is not None and p.timer.active():
                p.timer.cancel()
            if self._pending.get(aid) is p:
                del self._pending[aid]

    def _expire(self, aid: str, name: str, delay: float) -> None:
        p = self._pending.pop(aid, None)
        if p is not None and not p.future.done():
            p.future.set_exception(AmiTimeout(f"no answer to {name} ({aid}) within {delay:g} s"))

    def _fail_pending(self, exc: AmiError) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if p.timer is not None and p.timer.active():
                p.timer.cancel()
            if not p.future.done():
                p.future.set_exception(AmiNotConnected(str(exc)))

    # -- incoming --------------------------------------------------------------------------
    def _dispatch(self, proto: _Protocol, msgs: list[Message]) -> None:
        if proto is not self._proto:
            return
        if self.banner is None and proto.parser.banner is not None:
            self.banner = proto.parser.banner
        t = self.clock.seconds()
        pending = self._pending
        subs = self._subscribers
        for msg in msgs:
            first = msg.headers[0][0] if msg.headers else ""
            if pending:
                aid = msg.get("ActionID")
                p = pending.get(aid) if aid is not None else None
                if p is not None and self._to_action(p, msg, first):
                    continue
            if first == "Event":
                self.events_received += 1
                for cb in subs:
                    try:
                        cb(msg, t)
                    except Exception:  # noqa: BLE001 - PITFALLS 4: never kill the link
                        self.subscriber_errors += 1
                        log.exception("AMI subscriber %r failed on %s", cb, msg.event)
            elif first == "Response":
                log.debug("AMI response without a waiting action: %s", msg.get("ActionID"))

    @staticmethod
    def _to_action(p: _Pending, msg: Message, first: str) -> bool:
        """Route ``msg`` to its action; False if it is not part of the answer."""
        fut = p.future
        if fut.done():
            return False
        if first == "Response":
            if p.is_list or p.items:
                return False
            resp = msg.get("Response", "")
            if resp not in ("Success", "Goodbye", "Follows"):
                fut.set_exception(AmiError(msg.get("Message") or f"{p.name} failed: {resp}", msg))
                return True
            if (msg.get("EventList", "").lower() == "start"
                    or "will follow" in (msg.get("Message") or "")):
                p.is_list = True
                p.items.append(msg)
                return True
            fut.set_result(msg)
            return True
        if first == "Event" and p.is_list:
            p.items.append(msg)
            if msg.get("EventList", "").lower() == "complete" or (msg.event or "").endswith("Complete"):
                fut.set_result(p.items)
            return True
        return False

    def _lost(self, proto: _Protocol, exc: BaseException | None) -> None:
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
        if was:
            log.warning("AMI connection to %s:%s lost%s", self.host, self.port,
                        f": {exc}" if exc else "")
            t = self.clock.seconds()
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
        attempt = 0
        while not self._stopping:
            logged_in = False
            try:
                logged_in = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except (OSError, AmiError) as exc:
                log.warning("AMI %s:%s: %s", self.host, self.port, exc)
            except Exception:  # noqa: BLE001
                log.exception("AMI connection to %s:%s failed", self.host, self.port)
            finally:
                if self._proto is not None and self._proto.transport is not None:
                    self._proto.transport.abort()
            if self._stopping:
                break
            attempt = 0 if logged_in else attempt + 1
            delay = self.backoff_delay(attempt)
            log.info("AMI reconnect to %s:%s in %.1f s", self.host, self.port, delay)
            await self._sleep(delay)

    async def _connect_once(self) -> bool:
        loop = asyncio.get_running_loop()
        self._lost_future = loop.create_future()
        self._proto = None
        transport, proto = await self._with_timeout(
            loop.create_connection(lambda: _Protocol(self), self.host, self.port),
            self.connect_timeout, "connect")
        self._proto = proto
        self.banner = None
        resp = await self._send([("Action", "Login"), ("Username", self.username),
                                 ("Secret", self._secret), ("Events", self.events)],
                                self.action_timeout)
        self.connected = True
        self.connects += 1
        log.info("AMI logged in to %s:%s (%s)", self.host, self.port,
                 self.banner or "no banner")
        del resp
        for hook in list(self._on_connect):
            if not self.connected:
                break
            try:
                await hook()
            except Exception:  # noqa: BLE001 - a failed resync must not drop the link
                log.exception("AMI on_connect hook %r failed", hook)
        if self.connected:
            self._connected_event.set()
            self._ping_task = asyncio.ensure_future(self._ping_loop(proto))
        await self._lost_future
        return True

    async def _ping_loop(self, proto: _Protocol) -> None:
        while self.connected and proto is self._proto:
            await self._sleep(self.ping_interval)
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

    async def _sleep(self, delay: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        dc = self.clock.callLater(delay, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            if dc.active():
                dc.cancel()

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


def from_service(service: Any) -> AmiGateway:
    """The service's gateway, from the ``[ami]`` config section."""
    c = service.config.ami
    return AmiGateway(c.host, c.port, c.username, c.secret, clock=service.clock,
                      ping_interval=c.ping_interval, ping_timeout=c.ping_timeout,
                      action_timeout=c.action_timeout, reconnect_max_delay=c.reconnect_max_delay)
