"""What AMI actions do to the simulated PBX (hang-up, pause, redirect, variables,
MixMonitor)."""
from __future__ import annotations

import logging
import wave
from pathlib import Path

from .channels import Channel
from .dialplan import DIALPLAN
from .profiles import ChannelRedirect
from .runner import ChannelHangup

log = logging.getLogger("callcenter.simulator.pbx")  # one logger for the whole PBX


class ActionsMixin:
    """Part of :class:`~callcenter.simulator.pbx.SimulatedPBX` (a mixin: ``self`` is the PBX)."""

    # ------------------------------------------------------------------ actions used by AMI
    def hangup(self, ch: Channel, cause: int = 16, by: str = "ami") -> None:
        """AMI Hangup: the channel (usually a caller ;1) is hung up with ``cause``."""
        if ch.hung_up:
            return
        if not self.kill(ch, ChannelHangup(cause, by)):
            if ch.peer is not None and ch.name.endswith(";2"):
                self._person_hangup_ami(ch, cause)
            else:
                self.teardown_pair_from_one(ch, cause)

    def _person_hangup_ami(self, two: Channel, cause: int) -> None:
        one = two.peer
        self.soft_hangup_request(two, cause)
        self.hangup_request(one, cause)
        two.data["hangup_requested"] = True
        if not self.kill(one, ChannelHangup(cause, "hangup")):
            self.teardown_pair_from_one(one, cause)

    def pause_member(self, interface: str, paused: bool, reason: str = "", queue: str | None = None) -> int:
        """QueuePause: (un)pause ``interface`` in ``queue`` (all queues if None); members changed."""
        now = int(self.now())
        n = 0
        for q in self.queues.values():
            if queue and q.name != queue:
                continue
            m = q.member(interface)
            if m is None:
                continue
            n += 1
            if n == 1 and not queue:  # app_queue set_member_paused: all queues -> PAUSEALL first
                self.queue_log.write(now, "NONE", "NONE", m.name, "PAUSEALL" if paused else "UNPAUSEALL", reason)
            m.paused = paused
            # set_queue_member_pause: an unpause with a reason shows it in the event and the
            # queue_log line, then clears it
            m.reason = reason
            if paused:
                m.last_pause = now
            self.dsc(f"Queue:{q.name}_pause_{m.interface}", "INUSE" if paused else "NOT_INUSE")
            self.queue_log.write(now, "NONE", q.name, m.name, "PAUSE" if paused else "UNPAUSE", m.reason)
            self.ev("QueueMemberPause", m.event_fields(q.name), "agent,all")
            if not paused:
                m.reason = ""
                self._wake_queue(q)
        return n

    def remove_member(self, queue: str, interface: str) -> bool:
        """QueueRemove (agent logs out)."""
        q = self.queues.get(queue)
        m = q.member(interface) if q else None
        if m is None:
            return False
        q.members.remove(m)
        self.ev("QueueMemberRemoved", m.event_fields(q.name), "agent,all")
        self.queue_log.write(self.now(), "NONE", q.name, interface, "REMOVEMEMBER", "")
        return True

    def redirect(self, ch: Channel, context: str, exten: str, priority: int) -> bool:
        if context not in DIALPLAN:
            return False
        return self.kill(ch, ChannelRedirect(context, exten, priority))

    def getvar(self, ch: Channel | None, name: str) -> str:
        if ch is None:
            return self.globals.get(name, "")
        up = name.upper()
        if up == "CALLERID(NAME)":
            return ch.cid_name
        if up in ("CALLERID(NUM)", "CALLERID(NUMBER)"):
            return ch.cid_num
        if up == "CALLERID(ALL)":
            return f'"{ch.cid_name}" <{ch.cid_num}>'
        if up == "UNIQUEID":
            return ch.uniqueid
        if up == "CHANNEL":
            return ch.name
        return ch.variables.get(name, "")

    def setvar(self, ch: Channel | None, name: str, value: str) -> None:
        if ch is None:
            self.globals[name] = value
            self.ev("VarSet", [("Channel", "none"), ("Uniqueid", "none"), ("Variable", name), ("Value", value)],
                    "dialplan,all")
            return
        self.varset(ch, name, value)

    SOUND_FORMATS = ("wav", "gsm", "ulaw", "alaw", "sln", "g722", "wav16")

    def has_sound(self, name: str) -> bool:
        if self.sounds_dir is None:
            return True
        base = Path(name) if Path(name).is_absolute() else self.sounds_dir / name
        return any(base.with_name(f"{base.name}.{ext}").is_file() for ext in self.SOUND_FORMATS) \
            or any((self.sounds_dir / "en" / name).with_name(f"{Path(name).name}.{ext}").is_file()
                   for ext in self.SOUND_FORMATS)

    # MixMonitor ------------------------------------------------------------
    def mixmonitor_start(self, ch: Channel, path: str, options: str = "") -> None:
        p = Path(path)
        if self.spool_dir is not None and not p.is_absolute():
            p = self.spool_dir / p
        elif self.spool_dir is not None and str(p).startswith("/var/spool/asterisk"):
            p = self.spool_dir / p.relative_to("/var/spool/asterisk")
        p.parent.mkdir(parents=True, exist_ok=True)  # MixMonitor does ast_mkdir (RECORD FILE does not)
        if self.disk_full:
            p.write_bytes(b"")
            w = None
        else:
            w = wave.open(str(p), "wb")
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
        rec = {"path": p, "wave": w, "start": self.now(), "options": options}
        self._mixmonitors.setdefault(ch.name, []).append(rec)
        self.varset(ch, "MIXMONITOR_FILENAME", path)
        self.chev("MixMonitorStart", ch)

    def record_audio(self, ch: Channel, seconds: float) -> None:
        """Audio heard on ``ch`` (Local channels carry only what is played: no silence)."""
        for rec in self._mixmonitors.get(ch.name, []):
            if rec["wave"] is not None:
                self._write_tone(rec["wave"], seconds)

    def record_silence(self, ch: Channel, seconds: float) -> None:
        """Silence heard on ``ch`` (a trunk caller's stream between words: SimConfig.talk_audio)."""
        for rec in self._mixmonitors.get(ch.name, []):
            if rec["wave"] is not None:
                rec["wave"].writeframes(b"\x00\x00" * int(8000 * seconds))

    def _write_tone(self, w, seconds: float) -> None:
        import math
        import struct

        n = int(8000 * seconds)
        frames = b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(n))
        w.writeframes(frames)

    def mixmonitor_stop(self, ch: Channel) -> bool:
        recs = self._mixmonitors.get(ch.name)
        if not recs:
            return False
        self._end_mixmonitors(ch, stop_event=True)
        return True

    def _end_mixmonitors(self, ch: Channel, stop_event: bool) -> None:
        recs = self._mixmonitors.pop(ch.name, [])
        for rec in recs:
            try:
                if rec["wave"] is not None:
                    rec["wave"].close()
            except Exception:
                log.exception("closing recording failed")
        if recs and stop_event:
            self.chev("MixMonitorStop", ch)

    def recordings(self) -> list[Path]:
        return []
