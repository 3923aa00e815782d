"""The simulated dialplan: the ``;1`` side's applications and the contexts of the
recording harness (``DIALPLAN``)."""
from __future__ import annotations

from typing import Any, Callable

from .agi_channel import SimAgiChannel
from .agi_client import run_agi
from .channels import Channel
from .profiles import ChannelRedirect
from .runner import ChannelHangup


class DialplanMixin:
    """Part of :class:`~callcenter.simulator.pbx.SimulatedPBX` (a mixin: ``self`` is the PBX)."""

    # ------------------------------------------------------------------ dialplan of the ;1 side
    def _enter_dialplan(self, one: Channel) -> None:
        o = one.data["originate"]
        if o.get("application"):
            gen = self._run_application(one, o["application"], o.get("data") or "")
        else:
            gen = self.run_dialplan(one, o["context"] or "default", o["exten"] or "s", int(o["priority"] or 1))
        self.start_proc(one, gen)

    def _run_application(self, one: Channel, app: str, data: str):
        """Originate with Application: the app runs on ;1 (no Newexten), then both halves go."""
        one.app, one.appdata = app, data
        try:
            if app.lower() == "playback":
                yield from self.app_playback(one, data)
            elif app.lower() == "wait":
                yield float(data or 1)
        except ChannelHangup as h:
            self.teardown_pair_from_one(one, h.cause, requested=True)
            return
        two = one.peer
        if two is not None and not two.hung_up:
            self.hangup_request(two, 0)
            self.soft_hangup_request(two, 16)
            two.data["hangup_requested"] = True
        self.hangup_event(one, 0)
        self.dsc(one.name.rsplit("-", 1)[0], "NOT_INUSE")
        if two is not None and not two.hung_up:
            self.hangup_event(two, 0)
            self.dsc(two.name.rsplit("-", 1)[0], "NOT_INUSE")
            self.kill(two, ChannelHangup(0))

    def run_dialplan(self, ch: Channel, context: str, exten: str, priority: int):
        """Run ``ch`` through the dialplan; Redirect restarts it elsewhere; ends with the hang-up."""
        cause = 16
        while True:
            ch.context, ch.exten, ch.priority = context, exten, priority
            try:
                fn = DIALPLAN.get(context)
                if fn is None:
                    break
                yield from fn(self, ch)
                break
            except ChannelRedirect as r:
                context, exten, priority = r.context, r.exten, r.priority
                continue
            except ChannelHangup as h:
                cause = h.cause
                self.teardown_pair_from_one(ch, cause, requested=True)
                return
        self.teardown_pair_from_one(ch, cause)

    def teardown_pair_from_one(self, one: Channel, cause: int = 16, requested: bool = False,
                               app_end: bool = False) -> None:
        """``;1`` leaves (end of dialplan or hang-up): hang up both halves in Asterisk's order."""
        if one.data.get("hangup_sent"):
            return
        two = one.peer
        self.soft_hangup_request(one, 16)
        if two is not None and not two.data.get("hangup_requested") and not two.hung_up:
            self.hangup_request(two, cause)
            two.data["hangup_requested"] = True
        self.hangup_event(one, 0 if app_end else cause)
        self.dsc(one.name.rsplit("-", 1)[0], "NOT_INUSE")
        if two is not None and not two.hung_up:
            self.soft_hangup_request(two, 16)
            self.hangup_event(two, 0 if app_end else cause)
            self.dsc(two.name.rsplit("-", 1)[0], "NOT_INUSE")
            self.kill(two, ChannelHangup(cause))
        call = one.data.get("simcall")
        if call is not None and not call.done:
            call.done = True
            call.outcome = call.outcome or "ivr-hangup"

    # applications -------------------------------------------------------
    def app_playback(self, ch: Channel, file: str):
        yield float(self.config.prompt_seconds.get(file, 1.0))
        self.varset(ch, "PLAYBACKSTATUS", "SUCCESS")

    def app_read(self, ch: Channel, var: str, prompt: str, maxdigits: int, timeout: float):
        self.varset(ch, "READSTATUS", "ERROR")
        got = ""
        while len(got) < maxdigits:
            d = yield from self.next_digit(ch, timeout)
            if d is None:
                break
            if d == "#":
                break
            got += d
        self.varset(ch, var, got)
        self.varset(ch, "READSTATUS", "OK" if got else "TIMEOUT")
        return got

    def app_agi(self, ch: Channel, flow: str):
        """AGI(agi://host:port/flow): FastAGI client (IVR helper's ``run_agi``) or a plugged handler."""
        url = f"agi://{self.agi_host}:{self.agi_port}/{flow}"
        self.newexten(ch, "AGI", url)
        handler = self.agi_handler or run_agi
        env = self.agi_env(ch, url, flow)
        agi_ch = SimAgiChannel(self, ch)
        try:
            status = yield handler(url, env, agi_ch)
        finally:
            agi_ch.close()
        status = status or "SUCCESS"
        pending = ch.data.pop("pending_hangup", None)
        if pending is not None:
            status = "HANGUP"
        self.varset(ch, "AGISTATUS", status)
        if pending is not None:
            raise pending
        return status

    def agi_env(self, ch: Channel, url: str, flow: str) -> dict[str, str]:
        return {
            "agi_network": "yes", "agi_network_script": flow, "agi_request": url,
            "agi_channel": ch.name, "agi_language": "en", "agi_type": "Local",
            "agi_uniqueid": ch.uniqueid, "agi_version": "22.10.1",
            "agi_callerid": ch.cid_num, "agi_calleridname": ch.cid_name,
            "agi_callingpres": "0", "agi_callingani2": "0", "agi_callington": "0", "agi_callingtns": "0",
            "agi_dnid": "unknown", "agi_rdnis": "unknown", "agi_context": ch.context,
            "agi_extension": ch.exten, "agi_priority": str(ch.priority), "agi_enhanced": "0.0",
            "agi_accountcode": "", "agi_threadid": str(140000000000000 + self.rng.randrange(10 ** 9)),
        }

def _ctx_hotline_plain(pbx: Any, ch: Channel):
    if ch.priority <= 1:
        pbx.newexten(ch, "NoOp", f'Plain hotline call from "{ch.cid_name}" <{ch.cid_num}>', priority=1)
        pbx.newexten(ch, "Answer", "", priority=2)
        pbx.newexten(ch, "Playback", "hello-world", priority=3)
        yield from pbx.app_playback(ch, "hello-world")
        pbx.newexten(ch, "Read", "choice,beep,1,,,5", priority=4)
        choice = yield from pbx.app_read(ch, "choice", "beep", 1, 5)
        is2 = choice == "2"
        pbx.newexten(ch, "GotoIf", f"{1 if is2 else 0}?complaint", priority=5)
        if not is2:
            ch.priority = 6
            yield from pbx.app_queue(ch, "consultation")
            pbx.newexten(ch, "Hangup", "", priority=7)
            return
        ch.priority = 8
    ch.priority = 8
    yield from pbx.app_queue(ch, "complaint")
    pbx.newexten(ch, "Hangup", "", priority=9)


def _after_agi(pbx: Any, ch: Channel, start_priority: int, queue_options: str = ""):
    """CONTRACTS: QUEUE set -> Queue(${QUEUE}[,options]) prio ${QUEUE_PRIO}; elif TRANSFER ->
    operator; else Hangup.  With option ``c`` (the hotline): QUEUESTATUS=CONTINUE (the agent
    hung up) -> AGI satisfaction (the post-call rating), then Hangup."""
    qname = ch.variables.get("QUEUE", "")
    transfer = ch.variables.get("TRANSFER", "")
    pbx.newexten(ch, "NoOp", f"AGISTATUS={ch.variables.get('AGISTATUS', '')} QUEUE={qname}",
                 priority=start_priority)
    if qname:
        ch.priority = start_priority + 1
        prio = int(ch.variables.get("QUEUE_PRIO") or 0)
        status = yield from pbx.app_queue(ch, qname, prio=prio, options=queue_options)
        if status == "CONTINUE":
            pbx.newexten(ch, "GotoIf", "1?rating", priority=start_priority + 2)
            ch.priority = start_priority + 3
            yield from pbx.app_agi(ch, "satisfaction")
            pbx.newexten(ch, "Hangup", "", priority=start_priority + 4)
            return
    elif transfer:
        pbx.newexten(ch, "Dial", transfer, priority=start_priority + 1)
        yield from _ctx_operator(pbx, ch)
        return
    pbx.newexten(ch, "Hangup", "", priority=start_priority + 2)


def _ctx_hotline(pbx: Any, ch: Channel):
    pbx.newexten(ch, "NoOp", f'Hotline call from "{ch.cid_name}" <{ch.cid_num}>', priority=1)
    pbx.newexten(ch, "Answer", "", priority=2)
    ch.priority = 3
    yield from pbx.app_agi(ch, "hotline")
    yield from _after_agi(pbx, ch, 4, queue_options=pbx.config.hotline_queue_options)


def _ctx_hotline_timeout(pbx: Any, ch: Channel):
    pbx.newexten(ch, "Answer", "", priority=1)
    ch.priority = 2
    t = float(ch.variables.get("QTIMEOUT") or 10)
    status = yield from pbx.app_queue(ch, "consultation", timeout=t)
    pbx.newexten(ch, "NoOp", f"QUEUESTATUS={status}", priority=3)
    pbx.newexten(ch, "Hangup", "", priority=4)


def _ctx_hotline_continue(pbx: Any, ch: Channel):
    """``[hotline-continue]`` (trace 13): ``Queue(consultation,c)``; when the agent hangs up the
    caller goes on (QUEUESTATUS=CONTINUE) to a Playback; a caller who hangs up ends it there."""
    pbx.newexten(ch, "Answer", "", priority=1)
    ch.priority = 2
    status = yield from pbx.app_queue(ch, "consultation", options="c")
    pbx.newexten(ch, "NoOp", f"QUEUESTATUS={status}", priority=3)
    pbx.newexten(ch, "Playback", "hello-world", priority=4)
    yield from pbx.app_playback(ch, "hello-world")
    pbx.newexten(ch, "Hangup", "", priority=5)


def _ctx_survey(pbx: Any, ch: Channel):
    """``[survey]`` (docs/asterisk/extensions.conf): the flow the dialer named in SURVEY_FLOW
    (reminder, notification, revisit survey), revisit_survey when the Originate set none."""
    pbx.newexten(ch, "NoOp", f"Survey call for {ch.cid_num}", priority=1)
    ch.priority = 2
    yield from pbx.app_agi(ch, ch.variables.get("SURVEY_FLOW") or "revisit_survey")
    yield from _after_agi(pbx, ch, 3)


def _ctx_operator(pbx: Any, ch: Channel):
    call = ch.data.get("simcall")
    if call is not None:
        call.outcome = "redirected" if call.outcome in (None, "abandoned") else call.outcome
    pbx.newexten(ch, "NoOp", f'Operator takes "{ch.cid_name}" <{ch.cid_num}>', priority=1)
    pbx.newexten(ch, "Wait", "2", priority=2)
    yield 2
    pbx.newexten(ch, "Hangup", "", priority=3)


def _ctx_dialer_agent(pbx: Any, ch: Channel):
    """``[dialer-agent]`` (docs/dialer.md): the answered patient of a progressive/predictive
    dialer call (``;1`` of the originated Local channel) waits in ``Queue(${QUEUE})`` for an agent.
    Asterisk's Queue() without a queue name fails and the channel hangs up; so here."""
    pbx.newexten(ch, "NoOp", f"Dialer call {ch.variables.get('ATTEMPT_ID', '')}", priority=1)
    qname = ch.variables.get("QUEUE", "")
    agent = ch.variables.get("AGENT", "")
    reason = f"dialer:{ch.variables.get('ATTEMPT_ID', '')}"
    # ExecIf($["${AGENT}" != ""]?UnpauseQueueMember(,${AGENT},,dialer:${ATTEMPT_ID})): the agent the
    # dialer reserved is handed back to the queue just before the patient joins it, ahead of
    # inbound callers (app_queue upqm_exec: UPQMSTATUS UNPAUSED | NOTFOUND)
    pbx.newexten(ch, "ExecIf", f'{1 if agent else 0}?UnpauseQueueMember(,{agent},,{reason})', priority=2)
    if agent:
        found = pbx.pause_member(agent, False, reason)
        pbx.varset(ch, "UPQMSTATUS", "UNPAUSED" if found else "NOTFOUND")
    status = ""
    if qname:
        ch.priority = 3
        # Queue(${QUEUE},,,,${CONNECT_TIMEOUT}) with the channel's QUEUE_PRIO (ahead of inbound
        # callers); music on hold while the agent's phone rings
        timeout = float(ch.variables.get("CONNECT_TIMEOUT") or 0) or None
        status = yield from pbx.app_queue(ch, qname, timeout=timeout,
                                          prio=int(ch.variables.get("QUEUE_PRIO") or 0))
    if status == "TIMEOUT":  # nobody took the patient: apology, we call back later
        prompt = ch.variables.get("SORRY_PROMPT") or "dialer-sorry-callback"
        pbx.newexten(ch, "Playback", prompt, priority=4)
        yield from pbx.app_playback(ch, prompt)
    pbx.newexten(ch, "Hangup", "", priority=5)


DIALPLAN: dict[str, Callable] = {
    "dialer-agent": _ctx_dialer_agent,
    "hotline": _ctx_hotline,
    "hotline-plain": _ctx_hotline_plain,
    "hotline-timeout": _ctx_hotline_timeout,
    "hotline-continue": _ctx_hotline_continue,
    "survey": _ctx_survey,
    "operator": _ctx_operator,
}
