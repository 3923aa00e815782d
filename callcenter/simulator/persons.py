"""The simulated people behind the ``;2`` halves: callers, patients, agents."""
from __future__ import annotations

from .channels import Channel
from .profiles import PatientProfile, SimCall, _fmt_num
from .runner import ChannelHangup, Waiter


class PersonsMixin:
    """Part of :class:`~callcenter.simulator.pbx.SimulatedPBX` (a mixin: ``self`` is the PBX)."""

    # ------------------------------------------------------------------ simulated people (;2 halves)
    def _answer_local(self, two: Channel) -> None:
        """The ;2 half answers: the ;1 half (being dialled) sees the answer."""
        self.newexten(two, "Answer", "")
        self.newstate(two, 6)
        self.dsc(two.name.rsplit("-", 1)[0], "INUSE")
        w = two.peer.data.get("dial_waiter")
        if w is not None:
            w.fire(("answer", 0), sync=True)

    def _person_hangup(self, two: Channel, priority: int) -> None:
        """The simulated person (;2) runs Hangup(): the ;1 half's dialplan gets the hang-up."""
        self.newexten(two, "Hangup", "", priority=priority)
        self.soft_hangup_request(two, 16)
        one = two.peer
        self.hangup_request(one, 16)
        two.data["hangup_requested"] = True
        if not self.kill(one, ChannelHangup(16, "hangup")):
            self.teardown_pair_from_one(one, 16)
        elif one.data.get("pending_hangup") is not None:
            self.hangup_event(two, 16)  # the person is gone; ;1 waits for its AGI session to end

    def _sim_caller(self, two: Channel):
        v = two.variables
        digits = v.get("DIGITS", "")
        delay = float(v.get("DELAY") or 3)
        hold = float(v.get("HOLD") or 60)
        try:
            self._answer_local(two)
            yield 0
            self.newexten(two, "Wait", _fmt_num(delay), priority=2)
            yield delay
            self.newexten(two, "ExecIf", f"1?SendDTMF({digits})" if digits else "0?SendDTMF()", priority=3)
            yield from self._send_dtmf(two, digits)
            self.newexten(two, "Wait", _fmt_num(hold), priority=4)
            stay = two.data.get("stay_when_connected")
            # a caller who stays: patience ends the wait unanswered; Queue(...,c) fires it when the
            # agent hangs up (the caller is still on the line for the rating)
            ended = two.data["bridge_ended"] = Waiter(timeout=hold) if stay else None
            got = yield (ended if stay else hold)
            if stay and got != "continue" and two.peer.bridge is not None:
                ended = two.data["bridge_ended"] = Waiter()
                got = yield ended  # talking to an agent: stay until the agent ends the call
            if stay and got == "continue":
                rate, after = v.get("RATE", ""), float(v.get("RATE_DELAY") or 2)
                self.newexten(two, "Wait", _fmt_num(after), priority=6)
                yield after
                if rate:
                    self.newexten(two, "SendDTMF", rate, priority=7)
                    yield from self._send_dtmf(two, rate)
                self.newexten(two, "Wait", "30", priority=8)
                yield 30.0  # the rating flow hangs up first
            self._person_hangup(two, 5)
        except ChannelHangup:
            return

    def _send_dtmf(self, two: Channel, digits: str):
        first = True
        for d in digits:
            if d in "wW":
                yield 0.5
                continue
            yield 0.1 if first else 0.25
            first = False
            one = two.peer
            if one.hung_up:
                return
            self.chev("DTMFBegin", one, ("Digit", d), ("Direction", "Received"), priv="dtmf,all")
            yield 0.1
            if one.hung_up:
                return
            self.chev("DTMFEnd", one, ("Digit", d), ("DurationMs", "100"), ("Direction", "Received"),
                      priv="dtmf,all")
            self._deliver_digit(one, d)
        if digits:
            yield 0.25

    def _deliver_digit(self, ch: Channel, d: str) -> None:
        ch.data.setdefault("dtmf", []).append(d)
        w = ch.data.pop("digit_waiter", None)
        if w is not None:
            w.fire("digit")

    def next_digit(self, ch: Channel, timeout: float):
        """Generator: the caller's next DTMF digit or None after ``timeout``."""
        buf = ch.data.setdefault("dtmf", [])
        if not buf:
            w = Waiter(timeout=timeout, timeout_value=None)
            ch.data["digit_waiter"] = w
            yield w
            ch.data.pop("digit_waiter", None)
        return buf.pop(0) if buf else None

    def _sim_patient(self, two: Channel, prof: PatientProfile):
        one = two.peer
        w = one.data.get("dial_waiter")
        try:
            if prof.outcome in ("busy", "congestion"):
                self.newexten(two, "Busy" if prof.outcome == "busy" else "Congestion", "5")
                self.newstate(two, 7)
                self.dsc(two.name.rsplit("-", 1)[0], "INUSE")
                w.fire((prof.outcome, 17 if prof.outcome == "busy" else 34), sync=True)
                return
            if prof.outcome == "reject":
                cause = int(two.variables.get("CAUSE") or 21)
                self.newexten(two, "Hangup", str(cause))
                self.soft_hangup_request(two, 16)
                self.hangup_request(one, cause)
                w.fire(("rejected", cause), sync=True)
                return
            self.newexten(two, "Ringing", "")
            self.newstate(one, 5)
            if prof.outcome == "noanswer":
                self.newexten(two, "Wait", "40", priority=2)
                self.ev("DialState", [*one.snapshot("Dest"), ("DialStatus", "RINGING")])
                self.dsc(two.name.rsplit("-", 1)[0], "INUSE")
                yield 40
                self.newexten(two, "Hangup", "", priority=3)
                w.fire(("rejected", 16), sync=True)
                return
            self.newexten(two, "Wait", _fmt_num(prof.ring), priority=2)
            self.ev("DialState", [*one.snapshot("Dest"), ("DialStatus", "RINGING")])
            self.dsc(two.name.rsplit("-", 1)[0], "INUSE")
            yield prof.ring
            self.newexten(two, "Answer", "", priority=3)
            self.newstate(two, 6)
            self.dsc(two.name.rsplit("-", 1)[0], "INUSE")
            w.fire(("answer", 0), sync=True)
            yield 0
            self.newexten(two, "Wait", _fmt_num(prof.delay), priority=4)
            yield prof.delay
            self.newexten(two, "SendDTMF", prof.survey_digits, priority=5)
            yield from self._send_dtmf(two, prof.survey_digits)
            self.newexten(two, "Wait", _fmt_num(prof.hold), priority=6)
            yield prof.hold
            self._person_hangup(two, 7)
        except ChannelHangup:
            return

    def _sim_agent_plain(self, two: Channel):
        """An agent dialled directly (not through a queue): answers after its delay."""
        yield from ()
        return

    # ------------------------------------------------------------------ people: inbound calls
    def inbound_call(self, number: str, name: str = "", context: str = "hotline", *, digits: str = "1",
                     digit_delay: float = 3, patience: float = 60, hold: float | None = None,
                     stay_when_connected: bool = False, rate: str = "", rate_delay: float = 2) -> SimCall:
        """A caller dials the hotline: ``;1`` enters ``context``; the person sends ``digits``
        after ``digit_delay`` s and hangs up ``patience`` s later — also while talking to an
        agent (like the trace harness) unless ``stay_when_connected``.  A caller who stays is
        still there when the agent hangs up (``Queue(...,c)``): ``rate_delay`` s later it
        presses ``rate`` (nothing if empty) and waits for the rating flow to end the call."""
        cid = f'"{name}" <{number}>' if name else number
        variables = {"DIGITS": digits, "DELAY": _fmt_num(digit_delay),
                     "HOLD": _fmt_num(patience if hold is None else hold)}
        if stay_when_connected:
            variables.update(RATE=rate, RATE_DELAY=_fmt_num(rate_delay))
        one = self.originate("Local/s@sim-caller", context=context, exten="s", priority=1, callerid=cid,
                             variables=variables, emit_response=False)
        call = SimCall(one)
        one.data["simcall"] = call
        if one.peer is not None:
            one.peer.data["stay_when_connected"] = stay_when_connected
        self.calls.append(call)
        return call


# --------------------------------------------------------------------------- dialplan contexts
