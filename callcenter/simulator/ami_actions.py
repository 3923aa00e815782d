"""What AMI actions do to the simulated PBX (hang-up, pause, redirect, variables,
MixMonitor)."""
from __future__ import annotations

import logging
from pathlib import Path

from .channels import Channel
from . import voices
from .dialplan import DIALPLAN
from .mixmonitor import MixMonitorFile
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
        try:
            f = MixMonitorFile(p, self.now(), media=self.config.media, disk_full=lambda: self.disk_full,
                               bridged_only="b" in options)
        except ValueError as exc:  # Asterisk: "No such format", no file, no recording
            log.error("MixMonitor on %s: %s", ch.name, exc)
            return
        rec = {"path": p, "file": f, "options": options, "flush": None}
        self._mixmonitors.setdefault(ch.name, []).append(rec)
        if ch.bridge is not None:
            f.bridged(self.now(), ch.bridge["conversation"])
        self._schedule_flush(rec)
        self.varset(ch, "MIXMONITOR_FILENAME", path)
        self.chev("MixMonitorStart", ch)

    def _schedule_flush(self, rec: dict) -> None:
        """Phones send frames all the time: the buffer reaches the disk every 32 KiB."""
        if self.config.media != "phones":
            return
        f = rec["file"]
        rec["flush"] = self.timers.call_later(f.next_flush() - self.now(), self._flush, rec)

    def _flush(self, rec: dict) -> None:
        rec["file"].advance(self.now())
        self._schedule_flush(rec)

    def record_audio(self, ch: Channel, prompt_name: str, seconds: float) -> None:
        """``prompt_name`` (``seconds`` long) is played into ``ch`` from now on."""
        clip = voices.prompt(prompt_name, seconds)
        for rec in self._mixmonitors.get(ch.name, []):
            rec["file"].play(self.now(), clip)

    def monitors_bridged(self, ch: Channel, bridge: dict | None) -> None:
        """``ch`` entered (``bridge``) or left (None) a bridge: the peer's voice starts/stops."""
        for rec in self._mixmonitors.get(ch.name, []):
            if bridge is None:
                rec["file"].unbridged(self.now())
            else:
                rec["file"].bridged(self.now(), bridge["conversation"])

    def mixmonitor_stop(self, ch: Channel) -> bool:
        recs = self._mixmonitors.get(ch.name)
        if not recs:
            return False
        self._end_mixmonitors(ch, stop_event=True)
        return True

    def _end_mixmonitors(self, ch: Channel, stop_event: bool) -> None:
        recs = self._mixmonitors.pop(ch.name, [])
        for rec in recs:
            self.timers.cancel(rec["flush"])
            try:
                rec["file"].close(self.now())
            except OSError:
                log.exception("closing recording %s failed", rec["path"])
        if recs and stop_event:
            self.chev("MixMonitorStop", ch)

    def _close_mixmonitors(self) -> None:
        """Shut-down: Asterisk hangs up every channel, so every MixMonitor file is finished
        (header sizes written) — none is left open or half-written."""
        for name in list(self._mixmonitors):
            for rec in self._mixmonitors.pop(name):
                self.timers.cancel(rec["flush"])
                try:
                    rec["file"].close(self.now())
                except OSError:
                    log.exception("closing recording %s failed", rec["path"])

    def recordings(self) -> list[Path]:
        return []
