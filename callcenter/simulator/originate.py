"""``Action: Originate`` on the simulated PBX: Local pairs to patients and people."""
from __future__ import annotations

import re
from typing import Callable

from .channels import Channel, parse_callerid
from .profiles import PatientProfile
from .runner import ChannelHangup, Proc, Waiter


class OriginateMixin:
    """Part of :class:`~callcenter.simulator.pbx.SimulatedPBX` (a mixin: ``self`` is the PBX)."""

    # ------------------------------------------------------------------ Originate
    def originate(self, channel: str, *, context: str | None = None, exten: str | None = None,
                  priority: int = 1, application: str | None = None, data: str = "",
                  callerid: str | None = None, variables: dict[str, str] | None = None,
                  timeout_ms: int = 30000, action_id: str | None = None,
                  on_result: Callable[[str, int, Channel | None], None] | None = None,
                  emit_response: bool = True, respond_first: Callable[[], None] | None = None) -> Channel | None:
        """Start an originate like ``Action: Originate``; the result goes to ``on_result``.

        Returns the ``;1`` channel (None when the dial string cannot be dialled at all).
        """
        m = re.match(r"^Local/([^@/]+)@([^/]+?)(/n)?$", channel or "", re.I)
        cid_num, cid_name = parse_callerid(callerid)
        variables = dict(variables or {})

        def respond(ok: bool, reason: int, one: Channel | None) -> None:
            if emit_response:
                fields = [("ActionID", action_id)] if action_id is not None else []
                if ok:
                    fields += [("Response", "Success"), ("Channel", one.name), ("Context", context or ""),
                               ("Exten", exten or ""), ("Reason", str(reason)), ("Uniqueid", one.uniqueid)]
                else:
                    fields += [("Response", "Failure"), ("Channel", channel), ("Context", context or ""),
                               ("Exten", exten or ""), ("Reason", str(reason)), ("Uniqueid", "<unknown>")]
                if application and not context:
                    fields = [(k, v) for k, v in fields if k not in ("Context", "Exten")]
                    fields.insert(len(fields) - 2, ("Application", application))
                    fields.insert(len(fields) - 2, ("Data", data))
                fields += [("CallerIDNum", cid_num), ("CallerIDName", cid_name)]
                self.ev("OriginateResponse", fields)
            if on_result:
                on_result("Success" if ok else "Failure", reason, one if ok else None)

        if respond_first is not None:
            respond_first()
        if not m:
            self.timers.call_later(0, respond, False, 0, None)
            return None
        lexten, lcontext = m.group(1), m.group(2)
        one, two = self.new_local_pair(lexten, lcontext, role=lcontext)
        self.processed_calls += 1
        self.newexten(one, "AppDial2", "(Outgoing Line)")
        for k, v in reversed(list(variables.items())):
            self.varset(one, k, v)
        self.set_callerid(one, cid_num, cid_name)
        for k, v in variables.items():
            self.varset(two, k, v)
        two.cl_num, two.cl_name = cid_num, cid_name
        self.set_callerid(two, cid_num, cid_name)
        behaviour = self._local_dialplan(lcontext, lexten, two)
        if behaviour is None:  # no such extension: channels die at once, no DialBegin
            respond(False, 0, None)
            self.hangup_event(two, 0)
            self.hangup_event(one, 0)
            self.dsc(f"Local/{lexten}@{lcontext}", "INVALID")
            self.dsc(f"Local/{lexten}@{lcontext}", "INVALID")
            return None
        self.local_bridge(one, two, "Yes")
        self.ev("DialBegin", [*one.snapshot("Dest"), ("DialString", f"{lexten}@{lcontext}")])
        w = Waiter(timeout=max(0.001, timeout_ms / 1000.0), timeout_value=("noanswer", 19))
        one.data["dial_waiter"] = w
        one.data["originate"] = dict(context=context, exten=exten, priority=priority, application=application,
                                     data=data)

        def orig_proc():
            outcome = yield w
            kind, cause = outcome
            if kind == "answer":
                self.newstate(one, 6)
                self.ev("DialEnd", [*one.snapshot("Dest"), ("DialStatus", "ANSWER")])
                self._enter_dialplan(one)
                self.dsc(f"Local/{lexten}@{lcontext}", "INUSE")
                respond(True, 4, one)
                return
            if kind == "noanswer":
                self.hangup_request(two, 19)
                respond(False, 3, None)
                self.soft_hangup_request(two, 16)
                self._hangup_local(two, 19)
                self._hangup_local(one, 19)
                self.kill(two, ChannelHangup(19))
                return
            if kind in ("busy", "congestion"):
                self.ev("DialEnd", [*one.snapshot("Dest"), ("DialStatus", kind.upper())])
                self.hangup_request(two, 0)
                self.soft_hangup_request(two, 16)
                respond(False, 5 if kind == "busy" else 8, None)
                self._hangup_local(two, cause)
                self._hangup_local(one, 0)
                return
            # rejected (dialplan Hangup(cause)) or the person hung up before answer
            self._hangup_local(two, cause)
            self.ev("DialEnd", [*one.snapshot("Dest"), ("DialStatus", "NOANSWER")])
            respond(False, 0, None)
            self._hangup_local(one, cause)

        Proc(self.timers, orig_proc(), f"originate {one.name}").start()
        self.start_proc(two, behaviour)
        return one

    def _local_dialplan(self, context: str, exten: str, two: Channel):
        if context == "sim-caller":
            return self._sim_caller(two)
        if context == "sim-patient":
            prof = self._patient_profile(exten, two)
            if prof is None:
                return None
            return self._sim_patient(two, prof)
        if context == "sim-agent" and exten in self.agents:
            return self._sim_agent_plain(two)
        return None

    def _patient_profile(self, exten: str, two: Channel) -> PatientProfile | None:
        if exten in self.patients:
            return self.patients[exten]
        v = two.variables
        num = lambda k, d: float(v.get(k) or d)  # noqa: E731
        if exten == "answer":
            return PatientProfile("answer", num("RING", 2), num("DELAY", 3), v.get("SURVEY_DIGITS") or "4",
                                  num("HOLD", 20))
        if exten in ("busy", "noanswer", "congestion"):
            return PatientProfile(exten)
        if exten == "rejected":
            return PatientProfile("reject")
        if exten.isdigit() or exten.startswith("+"):
            return PatientProfile("answer")
        return None
