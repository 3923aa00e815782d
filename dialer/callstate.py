"""Sans-IO: which patients' numbers are on a call now, and whose call ended a moment ago.

A patient on any call — inbound to the hotline (still in the IVR, waiting, talking)
or outbound — is not dialled, and an IVR callback request is not dialled while its
caller is still on the line (the request is made *during* that call) nor within
``after_call`` seconds of its end.  The dial attempts table knows our own outbound
calls; the rest comes from Asterisk: every channel's caller ID (``Newchannel``,
``NewCallerid``, a ``CoreShowChannel`` after a reconnect) until its ``Hangup``.
On an inbound call the caller ID is the caller's number; on our own Originates it is
the hospital's, which is never a patient's number (and the claim guards those by
attempt).  Numbers are E.164 (:func:`callcenter.phones.canonical`,
the form contacts store).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from callcenter.phones import canonical


@dataclass
class CallState:
    region: str = "CN"
    keep_ended: float = 3600.0   # how long an ended call's number is remembered
    by_channel: dict[str, str] = field(default_factory=dict)   # Uniqueid -> E.164
    ended: dict[str, float] = field(default_factory=dict)      # E.164 -> t of its last Hangup

    EVENTS = frozenset(("Newchannel", "NewCallerid", "CoreShowChannel", "Hangup"))  # what feed reads

    def feed(self, msg, t: float) -> None:
        ev = msg.get("Event")
        if ev in ("Newchannel", "NewCallerid", "CoreShowChannel"):
            uid = msg.get("Uniqueid") or ""
            number = canonical(msg.get("CallerIDNum"), self.region)
            if uid and number:
                self.by_channel[uid] = number
        elif ev == "Hangup":
            number = self.by_channel.pop(msg.get("Uniqueid") or "", None)
            if number and number not in self.by_channel.values():
                self.ended[number] = t

    def resync(self, channels: list, t: float) -> None:
        """After an AMI (re)connect: ``CoreShowChannel`` items are the channels up now;
        the ones we knew that are gone ended while we were away (at ``t`` at the latest)."""
        alive = {m.get("Uniqueid") for m in channels if m.get("Event") == "CoreShowChannel"}
        for uid in [u for u in self.by_channel if u not in alive]:
            number = self.by_channel.pop(uid)
            self.ended[number] = t
        for m in channels:
            self.feed(m, t)

    def on_call(self) -> set[str]:
        return set(self.by_channel.values())

    def busy(self, now: float, after_call: float) -> set[str]:
        """On a call now, or their last call ended less than ``after_call`` seconds ago."""
        for number in [n for n, at in self.ended.items() if now - at > self.keep_ended]:
            del self.ended[number]
        out = self.on_call()
        if after_call > 0:
            out.update(n for n, at in self.ended.items() if now - at < after_call)
        return out
