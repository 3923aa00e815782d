"""panoramisk's FastAGI server, adapted where the ``.agi`` traces show it wrong.

:class:`AgiApplication` is panoramisk's ``fast_agi.Application`` (routes by
``agi_network_script`` via ``add_route``) and :class:`AgiRequest` its
``fast_agi.Request``; replies are panoramisk's ``parse_agi_result`` dicts.
What panoramisk 1.4 gets wrong, and is overridden here:

* ``Request.send_command`` reads exactly one line, so the unsolicited ``HANGUP``
  that Asterisk sends *before* the reply to the command in flight (07b, 07c)
  is taken as that reply and every later reply is off by one;
* it reads one extra line after ``520-``; Asterisk sends a usage block ending in
  ``520 End of proper usage.`` (07, 07d), so the rest is read as later replies;
* at EOF ``readline()`` returns ``b""`` and ``parse_agi_result("")`` raises;
* ``Application.handler`` loops forever if the peer closes before the blank
  line (``read()`` keeps returning ``b""``), keeps no bound on the block, drops
  bytes read past it, and logs-and-swallows ``CancelledError`` from a route;
* ``add_route`` wraps a plain function with ``asyncio.coroutine``, gone in 3.11
  (PITFALLS 6): only ``async def`` routes are accepted.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable

from panoramisk import fast_agi
from panoramisk.utils import parse_agi_result

from .agi import MAX_ENV_BYTES, R200, EnvError, Env, Reply, parse_env
from .agi_transport import AgiConnection

# The server's connections are AgiConnection (reader and writer in one); the tests also drive
# the same code over asyncio.start_server's streams.
Stream = asyncio.StreamReader | asyncio.StreamWriter | AgiConnection

log = logging.getLogger(__name__)
ENV_TIMEOUT = 10.0           # seconds to receive the agi_* block
REPLY_TIMEOUT = 120.0        # seconds Asterisk may take to answer a command, beyond its own timeout
QUICK_TIMEOUT = 10.0         # ... and a command it answers at once (ANSWER, SET/GET VARIABLE, ...)
# Commands Asterisk answers without playing or waiting for anything.
QUICK = ("ANSWER", "SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "NOOP", "CHANNEL STATUS",
         "SET CONTEXT", "SET EXTENSION", "SET PRIORITY", "SET CALLERID", "SET MUSIC", "DATABASE ")
MAX_REPLY_LINE = 1024 * 1024  # a longer "line" is not Asterisk: handled as a closed connection
_CODE = re.compile(r"^\d{3}")
_TIMED = ("GET DATA", "RECORD FILE", "WAIT FOR DIGIT")  # commands whose own timeout adds to the deadline
# The reply lines most commands get ("200 result=0", "200 result=49", "200 result=0 endpos=8000"):
# read straight into a Reply; every other line goes through parse_result + to_reply.  The same
# Reply either way (tests/ivr/test_fastagi_panoramisk.py checks it line by line).
_SIMPLE_200 = re.compile(r"200 result=(-?\d+)(?: endpos=(\d+))?")
EOF = {"status_code": None, "result": ("", ""), "msg": "connection closed by Asterisk",
       "error": "AGIResultHangup", "eof": True, "lines": []}


def parse_result(line: str) -> dict:
    """One reply line as panoramisk's ``parse_agi_result`` dict, corrected where it is wrong.

    Unlike panoramisk's, ``status_code``, ``result`` and ``endpos`` are always
    kept, so a hang-up reply still says what Asterisk said."""
    if not _CODE.match(line):
        # panoramisk: int("") raises ValueError on a line without a status code
        return {"status_code": 0, "result": ("", ""), "msg": line, "error": "AGIUnknownError"}
    if line.startswith("511"):
        # panoramisk: AGIUnknownError; 511 is Asterisk's answer on a dead channel (07b)
        return {"status_code": 511, "result": ("", ""), "msg": line, "error": "AGIResultHangup"}
    m = R200.match(line)
    if m is not None:
        value, data, endpos = m.groups()
        if value == "" or value == "-1" or data == "hangup":
            # panoramisk: "result= (timeout)" (07d) matches nothing, the timeout is lost;
            # "result=-1 [(hangup)] [endpos=N]" (07b, 07c) becomes a bare error without
            # status, data or endpos; and a GET VARIABLE value "hangup" is taken as a hang-up
            out = {"status_code": 200, "result": (value, data or ""), "msg": ""}
            if endpos is not None:
                out["endpos"] = (endpos, "")
            if value == "-1":
                out["error"] = "AGIResultHangup" if data == "hangup" else "AGIAppError"
                out["msg"] = line
            return out
    return parse_agi_result(line)


def to_reply(result: dict) -> Reply | None:
    """The engine's :class:`~ivr_flows.agi.Reply` for a :func:`parse_result` dict (None at EOF)."""
    if result.get("eof"):
        return None
    value, data = result.get("result", ("", ""))
    endpos = None
    if "endpos" in result:
        try:
            endpos = int(result["endpos"][0])
        except ValueError:
            endpos = None
    lines = result.get("lines") or [result.get("msg", "")]
    if len(lines) > 1:  # a multi-line block: its text is the data
        data = "\n".join(lines)
    return Reply(result["status_code"], value, data if data != "" else None, endpos, lines)


def simple_reply(line: str) -> Reply | None:
    """The Reply of a plain ``200 result=N[ endpos=M]`` line, read directly (else None): the
    same as ``to_reply`` of its :func:`parse_result` dict, without building the dict."""
    m = _SIMPLE_200.fullmatch(line)
    if m is None:
        return None
    value, endpos = m.groups()
    return Reply(200, value, None, int(endpos) if endpos is not None else None, [line])


def is_quick(command: str) -> bool:
    return command.upper().startswith(QUICK)


def reply_deadline(command: str, base: float, quick: float = QUICK_TIMEOUT) -> float:
    """Seconds to wait for the reply to ``command``: ``quick`` for a command Asterisk answers
    at once; else ``base`` (prompt playback, a busy PBX) plus the time the command itself may
    legitimately take (GET DATA's digit timeout per digit, RECORD FILE's maximum length,
    WAIT FOR DIGIT's timeout)."""
    return _deadline(command, is_quick(command), base, quick)


def _deadline(command: str, quick_command: bool, base: float, quick: float = QUICK_TIMEOUT) -> float:
    """:func:`reply_deadline` for a command already known quick or not (asked once per command)."""
    if quick_command:
        return min(quick, base)
    if not command.startswith(_TIMED):  # STREAM FILE, HANGUP...: nothing of its own to add
        return base + 0.0
    words = command.split()
    extra_ms = 0
    try:
        if command.startswith("GET DATA") and len(words) >= 4:
            extra_ms = int(words[3]) * max(1, int(words[4]) if len(words) > 4 else 1)
        elif command.startswith("RECORD FILE") and len(words) >= 6:
            extra_ms = int(words[5])
        elif command.startswith("WAIT FOR DIGIT") and len(words) >= 4:
            extra_ms = int(words[3])
    except ValueError:
        extra_ms = 0
    return base + max(0, extra_ms) / 1000.0


class ReplyTimeout(EnvError):
    """Asterisk did not answer a command within its deadline: the session is dropped."""


class ReplyDeadline:
    """The deadline of the command in flight, on one timer per session.

    ``asyncio.timeout`` per command put a timer on the loop's heap and cancelled it for
    every round trip.  Here the timer moves only when a deadline comes *sooner* than it;
    a later deadline is looked at when the timer fires (and the timer set to it then).
    At the deadline the waiting task is cancelled, and :meth:`expired` tells the
    cancellation apart from any other, as ``asyncio.timeout`` does."""

    __slots__ = ("loop", "task", "due", "handle", "fired")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.task: asyncio.Task | None = None
        self.due: float | None = None
        self.handle: asyncio.TimerHandle | None = None
        self.fired = False

    def arm(self, seconds: float) -> None:
        self.task = asyncio.current_task()
        self.due = when = self.loop.time() + seconds
        if self.handle is None or self.handle.when() > when:
            if self.handle is not None:
                self.handle.cancel()
            self.handle = self.loop.call_at(when, self._fire)

    def disarm(self) -> None:
        self.due = None

    def close(self) -> None:
        self.due = None
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def expired(self) -> bool:
        """True once per deadline that cancelled the task, if nothing else cancelled it too."""
        if not self.fired:
            return False
        self.fired = False
        return self.task is not None and self.task.uncancel() == 0

    def _fire(self) -> None:
        self.handle = None
        if self.due is None or self.task is None:
            return
        if self.loop.time() < self.due:  # a later command's deadline
            self.handle = self.loop.call_at(self.due, self._fire)
            return
        self.due = None
        self.fired = True
        self.task.cancel()


class AgiRequest(fast_agi.Request):
    """One FastAGI connection: panoramisk's Request with a ``send_command`` that
    follows Asterisk (unsolicited ``HANGUP``, 511, multi-line 5xx, EOF).

    ``hungup`` turns true when Asterisk announced the hang-up (``HANGUP`` line)
    and ``on_hangup()`` is called once then.  ``latency`` (a list) receives the
    time from the last reply bytes read to the next command written."""

    def __init__(self, app: Any, reader: Stream, writer: Stream,
                 encoding: str = "utf-8", *, latency: list | None = None,
                 reply_timeout: float = REPLY_TIMEOUT):
        super().__init__(app, OrderedDict(), reader, writer, encoding=encoding)
        self.reply_timeout = reply_timeout
        self.env = Env({})
        self.hungup = False
        self.on_hangup: Callable[[], Any] | None = None
        self.latency = latency
        self._buf = b""
        self._t_read: float | None = None
        self.waiting_quick: float | None = None  # loop time since a quick command awaits its reply
        self.deadline = ReplyDeadline(asyncio.get_running_loop())

    async def read_env(self) -> bool:
        """Read the ``agi_*`` block up to its blank line; False if the peer closed first.

        Bad lines are counted in ``env.malformed``, never fatal; more than
        ``MAX_ENV_BYTES`` without the blank line raises :class:`EnvError`.  The block is
        found in what was read (one search for the blank line per chunk), not line by line;
        bytes after it stay for the replies."""
        buf, searched = self._buf, 0
        while True:
            end = 0 if buf[:1] == b"\n" else buf.find(b"\n\n", max(0, searched - 1)) + 1
            if end > 0 or buf[:1] == b"\n":  # ``end``: the blank line's LF
                if end > MAX_ENV_BYTES:
                    raise EnvError(f"no end of the agi environment within {MAX_ENV_BYTES} bytes")
                block, self._buf = buf[:end], buf[end + 1:]
                break
            if len(buf) > MAX_ENV_BYTES:  # the block, when its end comes, is longer
                raise EnvError(f"no end of the agi environment within {MAX_ENV_BYTES} bytes")
            chunk = await self.reader.read(65536)
            if not chunk:
                self._buf = buf
                return False
            searched, buf = len(buf), buf + chunk
        self.env = parse_env(block)
        self._t_read = None  # latency is per command round trip: env -> first command is not one
        self.headers = OrderedDict(self.env.values)
        return True

    def _hangup(self) -> None:
        if not self.hungup:
            self.hungup = True
            if self.on_hangup is not None:
                self.on_hangup()

    async def send_command(self, command: str) -> dict:
        """Send one command line, return its reply as a :func:`parse_result` dict.

        An unsolicited ``HANGUP`` before the reply is noted (``hungup``), not
        returned; ``100 Trying`` is skipped; a ``NNN-`` block is read to its
        ``NNN `` line (``lines`` holds every line); at EOF the dict has ``eof``.
        No reply within :func:`reply_deadline` raises :class:`ReplyTimeout`."""
        return await self.command(command, False)

    async def command(self, command: str, as_reply: bool = True) -> Any:
        """:meth:`send_command`, the reply as ``to_reply`` of its dict (None at EOF), without
        the dict for the usual ``200 result=N`` lines: the server's path, once per round trip.

        One coroutine from the command written to its reply parsed (the reply read inline,
        not through a readline coroutine per line): each layer is paid on every wake-up of
        the session, and the caller hears that time."""
        writer = self.writer
        writer.write((command + "\n").encode(self.encoding))
        if self.latency is not None and self._t_read is not None:
            self.latency.append(time.perf_counter() - self._t_read)
        if writer.transport.get_write_buffer_size():
            # Bytes the socket did not take (a peer not reading): wait below the high-water
            # mark.  With nothing buffered drain() would return at once; a lost connection
            # is seen by the reply read below, as it is after drain's ConnectionError.
            try:
                await writer.drain()
            except ConnectionError:
                pass
        quick = is_quick(command)
        seconds = _deadline(command, quick, self.reply_timeout)
        deadline = self.deadline
        if quick:
            self.waiting_quick = deadline.loop.time()
        deadline.arm(seconds)
        try:
            block: list[str] | None = None
            while True:
                buf = self._buf
                idx = buf.find(b"\n")
                if idx < 0:  # no whole line yet: read (a partial line at EOF is dropped)
                    if len(buf) > MAX_REPLY_LINE:  # no line end where Asterisk sends one
                        return None if as_reply else dict(EOF)
                    chunk = await self.reader.read(65536)
                    self._t_read = time.perf_counter()
                    if not chunk:
                        return None if as_reply else dict(EOF)
                    self._buf = buf + chunk if buf else chunk
                    continue
                raw, self._buf = buf[:idx], buf[idx + 1:]
                line = raw.rstrip(b"\r").decode(self.encoding, "replace")
                if block is None and as_reply:
                    reply = simple_reply(line)  # the usual line, without the dict
                    if reply is not None:
                        return reply
                result = self._line(line, block)
                if result is None:
                    continue
                if isinstance(result, list):
                    block = result
                    continue
                return to_reply(result) if as_reply else result
        except asyncio.CancelledError:
            if deadline.expired():
                raise ReplyTimeout(f"no reply to {command.split(' ', 2)[:2]} within {seconds:g} s") from None
            raise
        finally:
            deadline.disarm()
            self.waiting_quick = None

    def _line(self, line: str, block: list[str] | None) -> dict | list | None:
        """One reply line other than a plain ``200 result=N``: the reply's dict when it ends
        the reply, the block so far when it starts or continues a ``NNN-`` block, None for a
        line that is no reply (``HANGUP``, ``100 Trying``, blank)."""
        if line == "HANGUP":
            self._hangup()
            return None
        if block is not None:
            block.append(line)
            if _CODE.match(line) and line[3:4] == " ":
                result = parse_result(block[0])
                result["msg"] = "\n".join(block)
                result["lines"] = block
                return result
            return block
        if not line:
            return None
        if _CODE.match(line) and line[3:4] == "-":
            return [line]
        result = parse_result(line)
        if result.get("status_code") == 100:
            return None
        if result.get("status_code") == 511:
            self._hangup()
        result["lines"] = [line]
        return result


Route = Callable[[AgiRequest], Awaitable[Any]]


class AgiApplication(fast_agi.Application):
    """panoramisk's FastAGI Application: routes by ``agi_network_script``.

    ``resolve(name)`` (optional) may supply a route for a name not yet added
    (e.g. a flow file dropped in after start); it is then added.  Names are
    :attr:`Env.script`: ``[A-Za-z0-9_-]`` only, from ``agi_network_script`` or
    the path of ``agi_request``."""

    def __init__(self, default_encoding: str = "utf-8", loop: Any = None, *,
                 resolve: Callable[[str], Route | None] | None = None,
                 latency: list | None = None, env_timeout: float = ENV_TIMEOUT,
                 reply_timeout: float = REPLY_TIMEOUT):
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None  # panoramisk asks get_event_loop(); it only stores it
        super().__init__(default_encoding=default_encoding, loop=loop)
        self.resolve = resolve
        self.latency = latency
        self.env_timeout = env_timeout
        self.reply_timeout = reply_timeout

    def add_route(self, path: str, endpoint: Route) -> None:
        # panoramisk wraps a plain function with asyncio.coroutine, gone in 3.11 (PITFALLS 6)
        if not inspect.iscoroutinefunction(endpoint):
            raise TypeError(f"FastAGI route {path!r} must be an async function")
        super().add_route(path, endpoint)

    def route(self, name: str | None) -> Route | None:
        if not name:
            return None
        endpoint = self._route.get(name)
        if endpoint is None and self.resolve is not None:
            endpoint = self.resolve(name)
            if endpoint is not None:
                self.add_route(name, endpoint)
        return endpoint

    async def handler(self, reader: Stream, writer: Stream) -> None:
        """Read the environment, run the route for it, close.  Errors propagate to the caller
        (the server logs them); the socket is closed in every case."""
        request = AgiRequest(self, reader, writer, encoding=self.default_encoding, latency=self.latency,
                             reply_timeout=self.reply_timeout)
        try:
            async with asyncio.timeout(self.env_timeout):  # no task of its own, unlike wait_for
                if not await request.read_env():
                    return
            env = request.env
            if env.malformed:
                log.warning("FastAGI: %d malformed line(s) in the agi environment ignored", env.malformed)
            name = env.script
            endpoint = self.route(name)
            if endpoint is None:
                log.error("FastAGI: no flow for request %r", name or env.get("agi_request")[:80])
                return
            await endpoint(request)
        finally:
            request.deadline.close()
            try:
                writer.close()
            except Exception:  # pragma: no cover
                pass
