"""Channels of the simulated PBX: Local pairs, caller IDs, processes, hang-ups."""
from __future__ import annotations

import logging
from typing import Callable

from .channels import Channel
from .profiles import CID_PRES, ChannelRedirect
from .runner import ChannelHangup, Proc

log = logging.getLogger("callcenter.simulator.pbx")  # one logger for the whole PBX


class ChannelsMixin:
    """Part of :class:`~callcenter.simulator.pbx.SimulatedPBX` (a mixin: ``self`` is the PBX)."""

    # ------------------------------------------------------------------ channels
    def _uniqueid(self) -> str:
        uid = f"{int(self.now())}.{self._uid_seq}"
        self._uid_seq += 1
        return uid

    def new_local_pair(self, exten: str, context: str, linkedid: str | None = None,
                       role: str = "") -> tuple[Channel, Channel]:
        base = f"Local/{exten}@{context}-{self._local_seq:08x}"
        self._local_seq += 1
        u1 = self._uniqueid()
        u2 = self._uniqueid()
        link = linkedid or u1
        now = self.now()
        one = Channel(base + ";1", u1, link, context, exten, state=0, created=now, role=role)
        two = Channel(base + ";2", u2, link, context, exten, state=4, created=now, role=role + "2")
        one.peer, two.peer = two, one
        self.channels[one.name] = one
        self.channels[two.name] = two
        self.chev("Newchannel", one)
        self.chev("Newchannel", two)
        return one, two

    def find_channel(self, name: str) -> Channel | None:
        ch = self.channels.get(name)
        if ch is not None:
            return ch
        low = name.lower()
        for c in self.channels.values():
            if c.name.lower() == low:
                return c
        return None

    def set_callerid(self, ch: Channel, num: str, name: str, connected: bool = True) -> None:
        ch.cid_num, ch.cid_name = num, name
        self.chev("NewCallerid", ch, CID_PRES)
        if connected and (ch.cl_num, ch.cl_name) != (num, name):
            ch.cl_num, ch.cl_name = num, name
            self.chev("NewConnectedLine", ch)
        elif connected:
            self.chev("NewConnectedLine", ch)

    def local_bridge(self, one: Channel, two: Channel, optimization: str) -> None:
        self.ev("LocalBridge", [*one.snapshot("LocalOne"), *two.snapshot("LocalTwo"),
                                ("Context", one.context), ("Exten", one.exten),
                                ("LocalOptimization", optimization)])

    def start_proc(self, ch: Channel, gen, on_exit: Callable | None = None) -> Proc:
        ch.proc = Proc(self.timers, gen, ch.name, on_exit)
        ch.proc.start()
        return ch.proc

    def kill(self, ch: Channel, exc: ChannelHangup) -> bool:
        """Deliver a hang-up/redirect to the channel's dialplan; False if it has none running."""
        if not isinstance(exc, ChannelRedirect):
            ch.data["dead"] = True
            for cb in ch.data.pop("on_hangup", []):
                try:
                    cb()
                except Exception:
                    log.exception("hang-up callback failed")
        proc = ch.proc
        if proc is None or proc.finished:
            return False
        if proc._future is not None and not isinstance(exc, ChannelRedirect):
            # inside AGI(): Asterisk lets the FastAGI session finish on the dead channel and
            # hangs up when it returns (AGISTATUS=HANGUP), see app_agi
            ch.data.setdefault("pending_hangup", exc)
            return True
        if proc.gen.gi_running:
            self.timers.call_later(0, proc.throw, exc)
        else:
            proc.throw(exc)
        return True
