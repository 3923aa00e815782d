"""The Asterisk side of FastAGI, for the simulated PBX (and tests, bench).

``run_agi(url, env, channel)`` connects to ``agi://HOST:PORT/<script>``, sends
the ``agi_*`` block in Asterisk's order, then executes the server's commands on
``channel`` (an :class:`AgiChannel`, see ``/work/notes/agi_channel.md``) with
Asterisk 22's exact reply lines and result encodings (traces 04, 07, 07b, 07c,
07d): ASCII codes for STREAM FILE / WAIT FOR DIGIT / RECORD FILE, the digit
string for GET DATA, ``endpos`` in 8 kHz samples, ``510``/multi-line ``520``,
and after a hang-up one unsolicited ``HANGUP`` line then ``511`` for commands
that need a live channel.  Arguments are split like Asterisk's ``parse_args``.
It returns ``AGISTATUS``: ``SUCCESS``, ``HANGUP`` or ``FAILURE``.
"""
from __future__ import annotations

import asyncio
import logging
import math
import re
import struct
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol
from urllib.parse import urlsplit

from ivr_flows.agi import DEAD_CHANNEL, encode_env, parse_args

from .mixmonitor import FORMATS

log = logging.getLogger(__name__)
SAMPLE_RATE = 8000
HANGUP_NOTICE_DELAY = 0.04  # idle delay before the unsolicited HANGUP (trace 04: ~41 ms)
GETDATA_DEFAULT_MS = 6000
DTMF_REWIND = 0.2  # s res_agi's RECORD FILE chops off a message ended by a key (ast_stream_rewind 200)

USAGE = {
    "GET DATA": ["Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
                 "Returns the digits received from the channel at the other end."],
}
# Commands that still work on a hung-up channel (res_agi.c "dead" flag; trace 07b).
DEAD_OK = {"SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "EXEC", "VERBOSE", "NOOP"}
KNOWN_APPS = {"playback", "background", "wait", "set", "noop", "answer", "hangup", "verbose",
              "log", "queue", "dial", "mixmonitor", "stopmixmonitor", "record", "read",
              "senddtmf", "ringing", "progress", "saydigits", "saynumber", "startmusiconhold",
              "stopmusiconhold", "musiconhold", "goto", "gotoif", "execif", "userevent"}


class AgiChannel(Protocol):
    clock: Any
    uniqueid: str
    name: str
    variables: dict[str, str]
    hung_up: bool

    def next_digit(self, timeout: float) -> Awaitable[str | None]: ...
    def on_hangup(self, cb: Callable[[], None]) -> None: ...
    def play_seconds(self, filename: str) -> float | None: ...
    def record_open(self, path: str, fmt: str) -> None: ...  # raises OSError like ast_writefile
    # the message ended after ``seconds`` of recording: write its audio, return endpos (samples)
    def record(self, path: str, fmt: str, seconds: float) -> int | None: ...
    # optional: def hangup(self) -> None   (AGI HANGUP command)
    # optional: def agi_exec_start(self, command: str) -> str   (AMI AGIExecStart; returns CommandId)
    # optional: def agi_exec_end(self, command_id: str, command: str, reply: str) -> None


def wav_header(data_bytes: int, rate: int = SAMPLE_RATE) -> bytes:
    """The 44-byte header of an 8 kHz 16-bit mono PCM WAV (what Asterisk's wav format writes)."""
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", data_bytes))


def check_message_format(fmt: str) -> None:
    """A channel with audio records only formats the simulator can encode: another one is
    refused when the file is opened (``OSError``: RECORD FILE answers ``(writefile)``)."""
    if fmt.lower() not in FORMATS:
        raise OSError(f"the simulated Asterisk cannot write format {fmt!r} (it writes {', '.join(FORMATS)})")


def write_message(target: Path, fmt: str, seconds: float, *, writable: bool = True) -> int:
    """What RECORD FILE leaves in ``target`` (opened by ``record_open``) after ``seconds`` of
    a caller on a phone, whose channel sends frames all along: that many seconds of 8 kHz
    audio (silence: what is said does not matter here, and RECORD FILE's silence detection
    ``s=`` is not simulated) and, for a WAV, the header's sizes patched at close.  Returns
    endpos, the samples written, like Asterisk.  ``writable=False`` (a full disk): nothing
    goes into the file; endpos is still what the stream was handed."""
    samples = int(round(seconds * SAMPLE_RATE))
    if writable:
        fmt = fmt.lower()
        if fmt in ("wav", "sln", "raw"):  # 16-bit linear: 2 bytes of 0 per sample
            data = bytes(2 * samples)
        else:  # G.711: one byte per sample, silence is 0xFF (mu-law) / 0xD5 (A-law)
            data = (b"\xff" if fmt == "ulaw" else b"\xd5") * samples
        with open(target, "r+b" if fmt == "wav" else "ab") as fh:
            if fmt == "wav":
                fh.write(wav_header(len(data)))
            fh.seek(0, 2)
            fh.write(data)
    return samples


class _Hangup(Exception):
    pass


def _split_url(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    script = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    return parts.hostname or "127.0.0.1", parts.port or 4573, script


def build_env(url: str, env: dict[str, str], channel: AgiChannel) -> dict[str, str]:
    """The environment Asterisk would send; ``env`` values win (keys with or without ``agi_``)."""
    _, _, script = _split_url(url)
    values = {
        "agi_network": "yes", "agi_network_script": script, "agi_request": url,
        "agi_channel": channel.name, "agi_language": "en",
        "agi_type": channel.name.split("/", 1)[0] if "/" in channel.name else "Local",
        "agi_uniqueid": channel.uniqueid, "agi_version": "22.10.1", "agi_callerid": "unknown",
        "agi_calleridname": "unknown", "agi_callingpres": "0", "agi_callingani2": "0",
        "agi_callington": "0", "agi_callingtns": "0", "agi_dnid": "unknown", "agi_rdnis": "unknown",
        "agi_context": "default", "agi_extension": "s", "agi_priority": "1", "agi_enhanced": "0.0",
        "agi_accountcode": "", "agi_threadid": "139671642920640",
    }
    for key, value in env.items():
        values[key if key.startswith("agi_") else f"agi_{key}"] = str(value)
    return values


async def run_agi(url: str, env: dict[str, str], channel: AgiChannel, *, delays: list | None = None,
                  commands: list | None = None) -> str:
    """Play Asterisk's side of one FastAGI session.  For benches: ``delays`` (a list) receives
    the time from each reply written to the next command line read (the delay a caller
    hears), ``commands`` every command line read."""
    host, port, _ = _split_url(url)
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        log.warning("FastAGI %s unreachable: %s", url, exc)
        return "FAILURE"
    session = AgiSession(channel, build_env(url, env, channel), reader, writer, delays=delays,
                         commands=commands)
    try:
        await session.run()
    except (ConnectionError, OSError):
        pass
    finally:
        session.close()
    if session.failed:  # a command failed on a live channel: FAILURE sticks (res_agi run_agi)
        return "FAILURE"
    return "HANGUP" if channel.hung_up or session._hangup_seen else "SUCCESS"


class AgiSession:
    def __init__(self, channel: AgiChannel, env: dict[str, str], reader, writer, *, delays: list | None = None,
                 commands: list | None = None):
        self.ch = channel
        self.delays, self.commands = delays, commands
        self._replied: float | None = None
        self.env = env
        self.reader, self.writer = reader, writer
        self.loop = asyncio.get_event_loop()
        self._waiters: set[asyncio.Future] = set()
        self._notice_due = False
        self._notice_sent = False
        self._notice_call = None
        self._busy = False
        self._hangup_seen = channel.hung_up
        self._closed = False
        self._agi_hangup = False
        self.failed = False  # a handler returned RESULT_FAILURE while the channel was up
        channel.on_hangup(self._on_hangup)

    # -- hang-up handling ------------------------------------------------------
    def _on_hangup(self) -> None:
        if self._closed:
            return
        self._hangup_seen = True
        for fut in list(self._waiters):
            if not fut.done():
                fut.set_result(None)
        if not self._notice_sent and not self._notice_due:
            self._notice_due = True
            if not self._busy:
                self._schedule_notice()

    def _schedule_notice(self) -> None:
        if self._notice_call is None and not self._notice_sent and not self._closed:
            self._notice_call = self.ch.clock.callLater(HANGUP_NOTICE_DELAY, self._idle_notice)

    def _idle_notice(self) -> None:
        self._notice_call = None
        if not self._busy:
            self._send_notice()

    def _send_notice(self) -> None:
        if self._notice_due and not self._notice_sent and not self._closed:
            self._notice_sent = True
            self.writer.write(b"HANGUP\n")

    @property
    def dead(self) -> bool:
        return self._hangup_seen or self.ch.hung_up

    def close(self) -> None:
        self._closed = True
        if self._notice_call is not None and self._notice_call.active():
            self._notice_call.cancel()
        self._notice_call = None
        for fut in list(self._waiters):
            if not fut.done():
                fut.cancel()
        try:
            self.writer.close()
        except Exception:  # pragma: no cover
            pass

    # -- waiting on the channel's clock ----------------------------------------
    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of channel time; returns early (raising) on hang-up."""
        if self.dead:
            raise _Hangup
        if seconds > 0:
            fut = self.loop.create_future()
            call = self.ch.clock.callLater(seconds, lambda: fut.done() or fut.set_result(None))
            self._waiters.add(fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)
                if call.active():
                    call.cancel()
        if self.dead:
            raise _Hangup

    async def _digit(self, seconds: float, accept: str | None) -> str | None:
        """The first digit in ``accept`` (None: any) within ``seconds`` (<0: forever)."""
        clock = self.ch.clock
        deadline = math.inf if seconds < 0 else clock.seconds() + seconds
        while True:
            if self.dead:
                raise _Hangup
            left = deadline - clock.seconds()
            if left <= 1e-9:
                return None
            try:
                got = await self.ch.next_digit(-1 if math.isinf(left) else left)
            except Exception:
                raise _Hangup from None
            if got == "" or self.dead:
                raise _Hangup
            if got is None:
                return None
            if accept is None or got in accept:
                return got

    # -- main loop ---------------------------------------------------------------
    async def run(self) -> None:
        self.writer.write(encode_env(self.env))
        await self.writer.drain()
        while True:
            line = await self.reader.readline()
            if not line:
                return
            if self.delays is not None and self._replied is not None:
                self.delays.append(time.perf_counter() - self._replied)
                self._replied = None
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            if self.commands is not None:
                self.commands.append(text)
            self._busy = True
            command_id = self._exec_start(text)
            try:
                reply = await self.execute(text)
            finally:
                self._busy = False
            if self._closed:
                return
            self.writer.write(reply.encode("utf-8"))
            self._exec_end(command_id, text, reply)
            if self._notice_due and not self._notice_sent:
                self._schedule_notice()
            await self.writer.drain()
            if self.delays is not None:
                self._replied = time.perf_counter()

    # AMI AGIExecStart/AGIExecEnd (res_agi publishes them around every command, also on a dead
    # channel and for unknown commands; the End follows the reply: traces 04, 07, 07b-d)
    def _exec_start(self, text: str):
        hook = getattr(self.ch, "agi_exec_start", None)
        if not callable(hook):
            return None
        try:
            return hook(text)
        except Exception:
            log.exception("AGIExecStart hook failed")
            return None

    def _exec_end(self, command_id, text: str, reply: str) -> None:
        hook = getattr(self.ch, "agi_exec_end", None)
        if command_id is None or not callable(hook):
            return
        try:
            hook(command_id, text, reply)
        except Exception:
            log.exception("AGIExecEnd hook failed")

    def _pre_reply(self, started_dead: bool) -> None:
        """A command that began after the hang-up: the HANGUP line goes first."""
        if started_dead:
            self._send_notice()

    async def execute(self, line: str) -> str:
        args = parse_args(line)
        words = [a.upper() for a in args[:3]]
        name = None
        for n in (3, 2, 1):
            cand = " ".join(words[:n])
            if cand in HANDLERS:
                name = cand
                break
        started_dead = self.dead and self._notice_due
        if name is None:
            self._pre_reply(started_dead)
            return "510 Invalid or unknown command\n"
        if self.dead and name not in DEAD_OK:
            self._pre_reply(started_dead)
            return f"511 {DEAD_CHANNEL}\n"
        handler, min_args, max_args = HANDLERS[name]
        if len(args) < min_args or (max_args is not None and len(args) > max_args):
            self._pre_reply(started_dead)
            usage = USAGE.get(name, [f"Usage: {name} (see 'agi show commands')"])
            return ("520-Invalid command syntax.  Proper usage follows:\n" + "".join(
                u + "\n" for u in usage) + "520 End of proper usage.\n")
        reply = await handler(self, args)
        self._pre_reply(started_dead)
        return reply

    # -- commands ------------------------------------------------------------------
    async def c_answer(self, args):
        answer = getattr(self.ch, "answer", None)
        if callable(answer):
            answer()
        return "200 result=0\n"

    async def c_stream_file(self, args):
        filename, escape = args[2], args[3]
        seconds = self.ch.play_seconds(filename)
        if seconds is None:  # ast_openstream failed: RESULT_FAILURE, AGISTATUS ends FAILURE
            log.warning("simulated Asterisk: File %s does not exist in any format", filename)
            self.failed = not self.dead
            return "200 result=-1 endpos=0\n"
        t0 = self.ch.clock.seconds()
        try:
            if escape:
                digit = await self._digit(seconds, escape)
            else:
                await self._sleep(seconds)
                digit = None
        except _Hangup:
            pos = int(round((self.ch.clock.seconds() - t0) * SAMPLE_RATE))
            return f"200 result=-1 endpos={pos}\n"
        if digit:
            pos = int(round((self.ch.clock.seconds() - t0) * SAMPLE_RATE))
            return f"200 result={ord(digit)} endpos={pos}\n"
        return f"200 result=0 endpos={int(round(seconds * SAMPLE_RATE))}\n"

    async def c_get_data(self, args):
        filename = args[2]
        timeout_ms = int(args[3]) if len(args) > 3 and re.match(r"^-?\d+$", args[3]) else 0
        maxdigits = int(args[4]) if len(args) > 4 and args[4].isdigit() else 1024
        timeout = (timeout_ms if timeout_ms > 0 else GETDATA_DEFAULT_MS) / 1000.0
        digits = ""
        seconds = self.ch.play_seconds(filename)
        if seconds is None:  # ast_app_getdata_full: ast_streamfile < 0 -> "result=-1" at once
            log.warning("simulated Asterisk: File %s does not exist in any format", filename)
            return "200 result=-1\n"
        try:
            first = await self._digit(seconds, None) if seconds > 0 else None
            if first is not None:
                if first == "#":
                    return "200 result=\n"
                digits = first
            while len(digits) < maxdigits:
                got = await self._digit(timeout, None)
                if got is None:
                    return f"200 result={digits} (timeout)\n"
                if got == "#":
                    break
                digits += got
        except _Hangup:
            return "200 result=-1\n"
        return f"200 result={digits}\n"

    async def c_wait_for_digit(self, args):
        try:
            ms = int(args[3])
        except ValueError:
            ms = -1
        try:
            digit = await self._digit(ms / 1000.0 if ms >= 0 else -1, None)
        except _Hangup:
            return "200 result=-1\n"
        return f"200 result={ord(digit) if digit else 0}\n"

    async def c_record_file(self, args):
        """Like res_agi ``handle_recordfile``: the file is opened (``ast_writefile``, which
        creates no directory) before anything is recorded; if that fails the reply is
        ``200 result=-1 (writefile)`` at once and AGISTATUS ends up FAILURE."""
        path, fmt, escape = args[2], args[3], args[4]
        if not re.match(r"^\s*-?\d+", args[5]):
            return ("520-Invalid command syntax.  Proper usage follows:\n"
                    "Usage: RECORD FILE (see 'agi show commands')\n520 End of proper usage.\n")
        ms = int(re.match(r"^\s*(-?\d+)", args[5]).group(1))
        try:
            self.ch.record_open(path, fmt)
        except OSError as exc:
            log.warning("simulated Asterisk: Unable to open %s.%s: %s", path, fmt, exc.strerror or exc)
            self.failed = not self.dead
            return "200 result=-1 (writefile)\n"
        t0 = self.ch.clock.seconds()
        outcome, digit = "timeout", None
        try:
            digit = await self._digit(ms / 1000.0 if ms >= 0 else -1, escape or "#")
            if digit:
                outcome = "dtmf"
        except _Hangup:
            outcome = "hangup"
        seconds = max(0.0, self.ch.clock.seconds() - t0)
        if ms >= 0:  # frames past the timeout are not written
            seconds = min(seconds, ms / 1000.0)
        if outcome == "dtmf":  # the key's own tone is not kept
            seconds = max(0.0, seconds - DTMF_REWIND)
        endpos = int(self.ch.record(path, fmt, seconds) or 0)
        if outcome == "dtmf":
            return f"200 result={ord(digit)} (dtmf) endpos={endpos}\n"
        if outcome == "hangup":
            return f"200 result=-1 (hangup) endpos={endpos}\n"
        return f"200 result=0 (timeout) endpos={endpos}\n"

    async def c_set_variable(self, args):
        self.ch.variables[args[2]] = args[3]
        return "200 result=1\n"

    def _lookup(self, name: str) -> str | None:
        up = name.upper()
        if up == "CALLERID(NAME)":
            return self.env.get("agi_calleridname", "")
        if up in ("CALLERID(NUM)", "CALLERID(NUMBER)"):
            return self.env.get("agi_callerid", "")
        if up == "UNIQUEID":
            return self.ch.uniqueid
        if up == "CHANNEL":
            return self.ch.name
        return self.ch.variables.get(name)

    async def c_get_variable(self, args):
        value = self._lookup(args[2])
        if value is None:
            return "200 result=0\n"
        return f"200 result=1 ({value})\n"

    async def c_get_full_variable(self, args):
        text = re.sub(r"\$\{([^}]*)\}", lambda m: self._lookup(m.group(1)) or "", args[3])
        return f"200 result=1 ({text})\n"

    async def c_exec(self, args):
        app = args[1] if len(args) > 1 else ""
        data = args[2] if len(args) > 2 else ""
        low = app.lower()
        if low not in KNOWN_APPS:
            return "200 result=-2\n"
        if self.dead:
            return "200 result=0\n"
        try:
            if low in ("playback", "background"):
                for f in data.split(",")[0].split("&"):
                    await self._sleep(self.ch.play_seconds(f) or 0.0)
            elif low == "wait":
                await self._sleep(float(data or 0))
            elif low == "set" and "=" in data:
                k, _, v = data.partition("=")
                self.ch.variables[k] = v
            elif low == "hangup":
                return await self.c_hangup(args)
        except _Hangup:
            return "200 result=-1\n"
        except ValueError:
            pass
        return "200 result=0\n"

    async def c_channel_status(self, args):
        return "200 result=6\n"

    async def c_verbose(self, args):
        return "200 result=1\n"

    async def c_noop(self, args):
        return "200 result=0\n"

    async def c_hangup(self, args):
        hang = getattr(self.ch, "hangup", None)
        try:
            if callable(hang):
                hang()
            elif not self.ch.hung_up:
                self.ch.hung_up = True
        except Exception:  # a channel without a way to hang up: the session still treats it as dead
            log.debug("channel %s cannot be hung up from AGI", self.ch.name, exc_info=True)
        self._agi_hangup = True
        self._on_hangup()
        return "200 result=1\n"


# name -> (handler, min argc, max argc) with argc counting the command words (res_agi)
HANDLERS: dict[str, tuple[Callable, int, int | None]] = {
    "ANSWER": (AgiSession.c_answer, 1, 1),
    "STREAM FILE": (AgiSession.c_stream_file, 4, 5),
    "GET DATA": (AgiSession.c_get_data, 3, 5),
    "WAIT FOR DIGIT": (AgiSession.c_wait_for_digit, 4, 4),
    "RECORD FILE": (AgiSession.c_record_file, 6, 9),
    "SET VARIABLE": (AgiSession.c_set_variable, 4, 4),
    "GET VARIABLE": (AgiSession.c_get_variable, 3, 3),
    "GET FULL VARIABLE": (AgiSession.c_get_full_variable, 4, 5),
    "EXEC": (AgiSession.c_exec, 2, None),
    "CHANNEL STATUS": (AgiSession.c_channel_status, 2, 3),
    "VERBOSE": (AgiSession.c_verbose, 2, 3),
    "NOOP": (AgiSession.c_noop, 1, None),
    "HANGUP": (AgiSession.c_hangup, 1, 2),
}


class ScriptedCaller:
    """A minimal :class:`AgiChannel` for tests and the bench (the simulator has its own).

    ``keys``: ``(delay, key)`` pairs; each key is pressed ``delay`` seconds after the
    caller starts waiting for it (the first ``next_digit`` call after the previous key).
    ``hangup_at``: seconds after creation when the caller hangs up (``None``: never).
    ``prompts``: seconds per file (default ``default_prompt``); ``missing``: files that
    do not exist on the PBX (``play_seconds`` -> ``None``).  RECORD FILE writes a real file
    (``/var/spool/asterisk/...`` below ``spool_dir`` when given) and, like Asterisk, fails
    with ``(writefile)`` when its directory does not exist.  A key ``"hangup"`` in ``keys``
    is the caller hanging up at that moment (e.g. at the beep of a voice message).

    ``audio``: the caller is on a phone, whose channel carries audio (default: patients
    call from phones): RECORD FILE writes the seconds recorded and answers endpos = their
    samples.  ``audio=False`` is a Local channel (the recording rig, the traces): the file
    stays a 44-byte WAV header and endpos is 0 (trace 07c).
    """

    def __init__(self, clock, *, uniqueid: str = "1795346775.48", name: str = "Local/s@sim-caller-00000018;1",
                 keys: list[tuple[float, str]] | None = None, hangup_at: float | None = None,
                 prompts: dict[str, float] | None = None, default_prompt: float = 1.0,
                 missing: set[str] | None = None, variables: dict[str, str] | None = None,
                 spool_dir: str | Path | None = None, audio: bool = True):
        self.clock = clock
        self.audio = audio
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.uniqueid, self.name = uniqueid, name
        self.variables: dict[str, str] = dict(variables or {})
        self.hung_up = False
        self.keys = list(keys or [])
        self.prompts = {"beep": 0.44, "hello-world": 1.42, **(prompts or {})}
        self.default_prompt = default_prompt
        self.missing = set(missing or ())
        self.recorded: list[tuple[str, str, float]] = []
        self.played: list[str] = []
        self._listen_since: float | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._wake: asyncio.Future | None = None
        self._hangup_call = clock.callLater(hangup_at, self.hangup) if hangup_at is not None else None

    def on_hangup(self, cb: Callable[[], None]) -> None:
        self._callbacks.append(cb)

    def hangup(self) -> None:
        if self.hung_up:
            return
        self.hung_up = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        for cb in self._callbacks:
            cb()

    def close(self) -> None:
        if self._hangup_call is not None and self._hangup_call.active():
            self._hangup_call.cancel()

    def play_seconds(self, filename: str) -> float | None:
        self.played.append(filename)
        if filename in self.missing:
            return None
        return self.prompts.get(filename, self.default_prompt)

    def _target(self, path: str, fmt: str) -> Path:
        target = Path(f"{path}.{fmt}")
        if self.spool_dir is not None and str(target).startswith("/var/spool/asterisk/"):
            target = self.spool_dir / target.relative_to("/var/spool/asterisk")
        return target

    def record_open(self, path: str, fmt: str) -> None:
        """``ast_writefile`` on the machine's own file system: the directory must exist."""
        if self.audio:
            check_message_format(fmt)
        with open(self._target(path, fmt), "wb") as fh:  # OSError (no such directory) -> "(writefile)"
            if fmt.lower() == "wav":
                fh.write(wav_header(0))

    def record(self, path: str, fmt: str, seconds: float) -> int:
        self.recorded.append((f"{path}.{fmt}", fmt, seconds))
        if not self.audio:
            return 0  # a Local channel: no audio frames, endpos=0 (trace 07c)
        return write_message(self._target(path, fmt), fmt, seconds)

    async def next_digit(self, timeout: float) -> str | None:
        if self.hung_up:
            return ""
        now = self.clock.seconds()
        if self._listen_since is None:
            self._listen_since = now
        deadline = math.inf if timeout < 0 else now + timeout
        due = self._listen_since + self.keys[0][0] if self.keys else math.inf
        until = min(deadline, due)
        if until > now:
            if math.isinf(until):
                until = now + 3600.0
            loop = asyncio.get_event_loop()
            self._wake = fut = loop.create_future()
            call = self.clock.callLater(until - now, lambda: fut.done() or fut.set_result(None))
            try:
                await fut
            finally:
                if call.active():
                    call.cancel()
                self._wake = None
        if self.hung_up:
            return ""
        if self.keys and self.clock.seconds() >= due - 1e-9:
            self._listen_since = None
            key = self.keys.pop(0)[1]
            if key == "hangup":
                self.hangup()
                return ""
            return key
        return None
