"""Hold off slow and greedy HTTP clients before a request reaches the dispatcher.

twisted.web on its own keeps a connection for 12 hours of idleness, resets that
timer on every byte (a client dribbling one header byte a second is never cut),
accepts any number of connections, and spools any body to a temporary file
before a handler sees it.  :class:`GuardedSite` adds:

* an idle timeout (no byte from the client between requests),
* a header deadline (from the first byte of a request to its blank line) and a
  body deadline (from the blank line to the last body byte): time to send a
  request is bounded however slowly the bytes come;
* a cap on open connections, in total and per client address, so the web can
  never take the file descriptors FastAGI needs.  At the cap a new connection
  takes the place of the oldest one that has not yet sent a whole request (a
  slow client, or a keep-alive connection idle between requests): a flood of
  slow clients cannot keep ``/login`` from answering.  Only when every open
  connection is busy with a request (event streams, handlers running) is the new
  socket closed at accept.  Trusted proxies are exempt from the per-client cap
  (every user behind them shares their address);
* a body limit per route, checked against ``Content-Length`` as soon as the
  headers are in (413 before one body byte is read; chunked bodies are counted).

Timers run on the injected ``IReactorTime`` (``task.Clock`` in tests).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Callable

from twisted.web.http import HTTPChannel
from twisted.web.server import Site

from callcenter.logs import RepeatLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    idle_timeout: float = 15.0       # s without a byte between requests (also before the first)
    header_timeout: float = 10.0     # s from a request's first byte to the end of its headers
    body_timeout: float = 30.0       # s from the end of the headers to the last body byte
    abort_timeout: float = 5.0       # s after a polite close before the socket is aborted
    max_connections: int = 512       # open HTTP connections in total
    max_per_client: int = 128        # open HTTP connections per client address


def _plain(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message, "status": status}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nCache-Control: no-store\r\n"
            f"X-Content-Type-Options: nosniff\r\nServer: callcenter\r\n\r\n").encode() + body


class GuardedChannel(HTTPChannel):
    """HTTPChannel with header/body deadlines and a per-route body limit."""

    def __init__(self):
        super().__init__()
        self._deadline = None        # IDelayedCall of the header or body deadline
        self._phase = "idle"         # idle | headers | body | handling
        self.client = ""             # the peer's address (set by the site)
        self._body_left: int | None = None
        self._refused = False

    # -- the deadlines -----------------------------------------------------------
    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.callLater(seconds, self._too_slow, what)

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _too_slow(self, what: str) -> None:
        self._deadline = None
        self.site.too_slow(what)
        self._refuse(408, "Request Timeout", f"request {what} not received in time")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        if self._refused:
            return
        self._refused = True
        self._disarm()
        self.setTimeout(None)
        self.transport.write(_plain(status, reason, message))
        # Ignore whatever else the client sends; close now, abort if it does not go.
        self.dataReceived = lambda data: None  # type: ignore[method-assign]
        self.transport.loseConnection()
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)

    def shed(self) -> None:
        """Make room for a new connection: this one has not sent a whole request."""
        self._refuse(503, "Service Unavailable", "too many connections; this one was idle or slow")

    def dataReceived(self, data: bytes) -> None:
        if self._phase == "idle" and data:
            self._phase = "headers"
            self._arm(self.site.limits.header_timeout, "headers")
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._disarm()
        limit = self.site.body_limit(self._command.decode("ascii", "replace"),
                                     self._path.split(b"?", 1)[0].decode("utf-8", "replace"))
        if self.length is not None and self.length > limit:
            self.site.refused("body over the limit")
            self._refuse(413, "Payload Too Large", f"request body larger than {limit} bytes")
            return
        self._body_left = limit if self.length is None else None  # chunked: counted as it comes
        if self.length != 0:
            self._phase = "body"
            self._arm(self.site.limits.body_timeout, "body")
        super().allHeadersReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        if self._body_left is not None:
            self._body_left -= len(data)
            if self._body_left < 0:
                self.site.refused("body over the limit")
                self._refuse(413, "Payload Too Large", "request body too large")
                return
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        self._disarm()
        self._phase = "handling"
        self.site.busy(self)
        self._body_left = None
        super().allContentReceived()

    def requestDone(self, request) -> None:
        self._phase = "idle"
        self.site.waiting(self)
        super().requestDone(request)

    def connectionLost(self, reason) -> None:
        self._disarm()
        self.site.closed(self)
        super().connectionLost(reason)


class GuardedSite(Site):
    """A Site with :class:`HttpLimits`; ``body_limit(method, path)`` gives each route's limit."""

    protocol = GuardedChannel
    displayTracebacks = False

    def __init__(self, resource, *, limits: HttpLimits, body_limit: Callable[[str, str], int],
                 reactor=None, access_log: Callable | None = None, trusted_proxies=()):
        super().__init__(resource, timeout=limits.idle_timeout, reactor=reactor)
        self.limits = limits
        self.body_limit = body_limit
        self.access_log = access_log
        self.trusted_proxies = trusted_proxies
        self.open_total = 0
        self.open_by_client: dict[str, int] = {}
        self.shed_total = 0
        self._channels: dict[int, GuardedChannel] = {}
        self._waiting: dict[int, GuardedChannel] = {}   # no whole request yet, oldest first
        self._refusals = RepeatLimiter(log, reactor if reactor is not None else self.reactor, interval=60.0)

    def _shed_one(self, host: str | None) -> bool:
        """Close the oldest connection (of ``host``, if given) still waiting for a request."""
        for key, ch in self._waiting.items():
            if host is None or ch.client == host:
                del self._waiting[key]
                self.shed_total += 1
                self._refusals.info("shed", "HTTP connection cap reached: the oldest idle/slow connection "
                                            "closed for a new one")
                ch.shed()
                self._forget(ch)  # its socket goes a moment later; the count frees now
                return True
        return False

    def buildProtocol(self, addr):
        host = getattr(addr, "host", "") or ""
        if self.open_total >= self.limits.max_connections and not self._shed_one(None):
            self.refused("connection cap")
            return None  # the port closes the accepted socket at once
        if (host not in self.trusted_proxies and self.open_by_client.get(host, 0) >= self.limits.max_per_client
                and not self._shed_one(host)):
            self.refused("per-client connection cap")
            return None
        channel = super().buildProtocol(addr)
        channel.abortTimeout = self.limits.abort_timeout
        channel.client = host
        self.open_total += 1
        self.open_by_client[host] = self.open_by_client.get(host, 0) + 1
        self._channels[id(channel)] = channel
        self._waiting[id(channel)] = channel
        return channel

    def waiting(self, channel) -> None:
        if id(channel) in self._channels:
            self._waiting.pop(id(channel), None)
            self._waiting[id(channel)] = channel  # now the newest

    def busy(self, channel) -> None:
        self._waiting.pop(id(channel), None)

    def _forget(self, channel) -> None:
        if self._channels.pop(id(channel), None) is None:
            return
        self._waiting.pop(id(channel), None)
        self.open_total -= 1
        host = channel.client
        left = self.open_by_client.get(host, 1) - 1
        if left > 0:
            self.open_by_client[host] = left
        else:
            self.open_by_client.pop(host, None)

    def closed(self, channel) -> None:
        self._forget(channel)

    def refused(self, why: str) -> None:
        self._refusals.warning(why, "HTTP connection refused: %s", why)

    def too_slow(self, what: str) -> None:
        self._refusals.info("slow " + what, "HTTP client cut: request %s not received in time", what)

    def log(self, request) -> None:
        if self.access_log is not None:
            self.access_log(request)
