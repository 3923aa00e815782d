"""The simulator's side of the ``AgiChannel`` protocol (CONTRACTS.md) for ``run_agi``.

Digits come from the simulated caller's DTMF, hang-ups from the PBX; variables
set through AGI are channel variables (``VarSet`` events like Asterisk).
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

from .agi_client import check_message_format, wav_header, write_message


class _ChannelVars(dict):
    def __init__(self, pbx: Any, ch: Any):
        super().__init__(ch.variables)
        self._pbx, self._ch = pbx, ch

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        if not self._ch.hung_up:
            self._pbx.varset(self._ch, key, value)
        else:
            self._ch.variables[key] = str(value)

    def __getitem__(self, key: str) -> str:
        return self._ch.variables[key] if key in self._ch.variables else super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self._ch.variables.get(key, super().get(key, default))

    def __contains__(self, key: object) -> bool:
        return key in self._ch.variables or super().__contains__(key)


class _FutureWaiter:
    def __init__(self, fut: asyncio.Future):
        self.fut = fut

    def fire(self, value: Any = None, sync: bool = False) -> None:
        if not self.fut.done():
            self.fut.set_result(value)


class SimAgiChannel:
    def __init__(self, pbx: Any, ch: Any):
        self.pbx, self.ch = pbx, ch
        self.clock = pbx.clock
        self.uniqueid = ch.uniqueid
        self.name = ch.name
        self.variables = _ChannelVars(pbx, ch)
        self._timer = None

    @property
    def hung_up(self) -> bool:
        return bool(self.ch.hung_up or self.ch.data.get("dead"))

    async def next_digit(self, timeout: float) -> str | None:
        buf = self.ch.data.setdefault("dtmf", [])
        if buf:
            return buf.pop(0)
        if self.hung_up:
            return ""
        fut = asyncio.get_running_loop().create_future()
        self.ch.data["digit_waiter"] = _FutureWaiter(fut)
        self.on_hangup(lambda: fut.done() or fut.set_result("hangup"))
        timer = None
        if timeout is not None and timeout >= 0:
            timer = self.pbx.timers.call_later(timeout, lambda: fut.done() or fut.set_result(None))
        try:
            res = await fut
        finally:
            self.pbx.timers.cancel(timer)
            self.ch.data.pop("digit_waiter", None)
        if res == "hangup":
            return ""
        if res is None:
            return None
        return buf.pop(0) if buf else None

    def on_hangup(self, cb: Callable[[], None]) -> None:
        if self.hung_up:
            cb()
            return
        self.ch.data.setdefault("on_hangup", []).append(cb)

    def play_seconds(self, filename: str) -> float | None:
        """Seconds a sound file plays; None when the PBX has no such file (only known when
        the simulator is given a sounds directory: ``pbx.sounds_dir``)."""
        if not self.pbx.has_sound(filename):
            return None
        return float(self.pbx.config.prompt_seconds.get(filename.rsplit("/", 1)[-1], 1.0))

    def _spool_path(self, path: str, fmt: str) -> Path:
        """Asterisk's file name on the simulator's disk: ``/var/spool/asterisk/...`` maps
        below spool_dir, other absolute paths are used as they are."""
        p = Path(path if path.endswith("." + fmt) else f"{path}.{fmt}")
        spool = self.pbx.spool_dir
        if spool is not None and not p.is_absolute():
            p = spool / p
        elif spool is not None and str(p).startswith("/var/spool/asterisk"):
            p = spool / p.relative_to("/var/spool/asterisk")
        return p

    @property
    def carries_audio(self) -> bool:
        """What the caller's line carries, as for MixMonitor (``SimConfig.media``): phones
        send frames all along; the trace harness's Local channels carry none."""
        return self.pbx.config.media == "phones"

    def record_open(self, path: str, fmt: str) -> None:
        """``ast_writefile``: opens (creates) the file and no directory, so a missing one
        raises here and RECORD FILE answers ``(writefile)`` like Asterisk; a full disk is
        ``pbx.disk_full`` (the file is created, nothing can be written into it)."""
        if self.carries_audio:
            check_message_format(fmt)
        p = self._spool_path(path, fmt)
        with open(p, "wb") as fh:
            if fmt.lower() == "wav" and not self.pbx.disk_full:
                fh.write(wav_header(0))

    def record(self, path: str, fmt: str, seconds: float) -> int:
        """RECORD FILE ended after ``seconds``: a phone's message is in the file and endpos
        is its samples; a Local channel carries no audio, so (like trace 07c) the WAV stays
        a 44-byte header and endpos is 0."""
        if not self.carries_audio:
            return 0
        return write_message(self._spool_path(path, fmt), fmt, seconds, writable=not self.pbx.disk_full)

    def hangup(self) -> None:
        """The AGI sent HANGUP: soft hang-up now (cause 32); the channel goes when AGI() returns."""
        if self.hung_up:
            return
        from .runner import ChannelHangup

        self.pbx.soft_hangup_request(self.ch, 32)
        self.ch.data["pending_hangup"] = ChannelHangup(0, "agi")
        self.ch.data["dead"] = True
        for cb in self.ch.data.pop("on_hangup", []):
            cb()

    def answer(self) -> None:
        """Channels reach AGI already answered (Answer() runs before it)."""

    def sleep(self, seconds: float) -> "asyncio.Future":
        fut = asyncio.get_running_loop().create_future()
        self.pbx.timers.call_later(seconds, lambda: fut.done() or fut.set_result(None))
        return fut

    # optional hooks for run_agi: AMI AGIExecStart/AGIExecEnd around every command (trace 04/07)
    def agi_exec_start(self, command: str) -> str:
        """Emit AGIExecStart; returns the CommandId to pass to :meth:`agi_exec_end`."""
        # ast_random() like res_agi; its own generator so AGI traffic does not shift the
        # simulation's other random draws
        cid = str(self.pbx.agi_rng.randrange(1, 2 ** 31))
        self.pbx.chev("AGIExecStart", self.ch, ("CommandId", cid), ("Command", command.rstrip("\n")),
                      priv="agi,all")
        return cid

    def agi_exec_end(self, command_id: str, command: str, reply: str) -> None:
        first = reply.splitlines()[0] if reply else ""
        code = first[:3]
        result = {"200": "Success", "510": "Invalid or unknown command",
                  "511": "Command Not Permitted on a dead channel or intercept routine",
                  "520": "Usage"}.get(code, first[4:])
        self.pbx.chev("AGIExecEnd", self.ch, ("CommandId", command_id), ("Command", command.rstrip("\n")),
                      ("ResultCode", code), ("Result", result), priv="agi,all")

    def close(self) -> None:
        self.ch.data.pop("on_hangup", None)
