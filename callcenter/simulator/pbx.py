"""The simulated PBX: channels, dialplan, queues, originate, people.

Everything is driven by the injected clock through generator processes
(:mod:`.runner`), and every AMI event is emitted in the order and with the
fields the recorded Asterisk 22 traces show (``tests/fixtures/asterisk-traces``).
Calls use Local channel pairs exactly like the recording harness did:

* inbound: ``Local/s@sim-caller-XXXXXXXX;1`` is the caller as the PBX sees it
  (runs ``hotline``/``hotline-plain``/``hotline-timeout``, joins a queue);
  ``;2`` is the simulated person (answers, waits DELAY, sends DIGITS, waits
  HOLD, hangs up);
* agents: queue members ``Local/<id>@sim-agent/n``; ``;2`` rings for
  ``AGENT_DELAY_<id>`` s, answers, talks ``AGENT_TALK_<id>`` s, hangs up;
* outbound: ``Local/<exten>@sim-patient`` where exten is an outcome keyword
  (answer/busy/noanswer/congestion/rejected) or a number given to
  :meth:`SimulatedPBX.set_patient`.
"""
from __future__ import annotations

import logging
import random
import re
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .channels import CAUSE_TEXT, UNKNOWN, Channel, parse_callerid
from .queues import Entry, Member, Queue, QueueLog
from .runner import ChannelHangup, Proc, Timers, Waiter

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

PROMPT_SECONDS = {"hello-world": 1.42, "beep": 0.44}
CID_PRES = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
QUEUE_TIME_VARS = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")


class ChannelRedirect(ChannelHangup):
    """AMI Redirect: leave the current application, continue at context/exten/priority."""

    def __init__(self, context: str, exten: str, priority: int):
        super().__init__(0, "redirect")
        self.context, self.exten, self.priority = context, exten, priority


@dataclass
class AgentProfile:
    answer_delay: float = 3.0
    talk_time: float = 5.0
    talk_sd: float = 0.0  # >0: talk time ~ N(talk_time, talk_sd) from the seeded RNG
    wrapup: float = 0.0


@dataclass
class PatientProfile:
    outcome: str = "answer"  # answer|busy|noanswer|congestion|reject
    ring: float = 2.0
    delay: float = 3.0
    survey_digits: str = "4"
    hold: float = 20.0


@dataclass
class SimConfig:
    """Queues and members at start (the trace configuration by default)."""

    queues: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {
        "consultation": [("1001", "Agent 1001"), ("1002", "Agent 1002")],
        "complaint": [("2001", "Agent 2001"), ("2002", "Agent 2002")],
    })
    servicelevel: int = 30
    ring_timeout: int = 15
    retry: int = 1
    agent_answer_delay: float = 3.0
    agent_talk_time: float = 5.0
    queue_log: str | Path | None = None
    username: str = "bridge"
    secret: str = "bridge-secret"
    read_perm: str = "all"   # manager.conf read/write classes of the AMI user
    write_perm: str = "all"
    run_user: str = ""  # asterisk.conf runuser (CoreSettings CoreRunUser)
    prompt_seconds: dict[str, float] = field(default_factory=lambda: dict(PROMPT_SECONDS))


class SimCall:
    """Handle on one simulated inbound call (caller ``;1`` channel and outcome)."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.outcome: str | None = None  # answered|abandoned|timeout|redirected|ivr-hangup
        self.queue: str | None = None
        self.agent: str | None = None
        self.done = False

    @property
    def uniqueid(self) -> str:
        return self.channel.uniqueid


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


class SimulatedPBX:
    """A protocol-faithful Asterisk stand-in.  See the package docstring for the API."""

    def __init__(self, clock: Any, seed: int = 1, spool_dir: str | Path | None = None,
                 agi_host: str = "127.0.0.1", agi_port: int = 4573,
                 config: SimConfig | None = None, queue_log: str | Path | None = None):
        self.clock = clock
        self.config = config or SimConfig()
        self.rng = random.Random(seed)
        self.agi_rng = random.Random(seed + 0x4A61)  # AGIExecStart CommandIds
        self.timers = Timers(clock)
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.agi_host, self.agi_port = agi_host, agi_port
        self.listeners: list[Callable[[Headers], None]] = []
        self.channels: dict[str, Channel] = {}
        self.queues: dict[str, Queue] = {}
        self.globals: dict[str, str] = {"AGENT_TALK_DEFAULT": _fmt_num(self.config.agent_talk_time), "AGENT_SAY": ""}
        self.agents: dict[str, AgentProfile] = {}
        self.patients: dict[str, PatientProfile] = {}
        self.calls: list[SimCall] = []
        self.queue_log = QueueLog(queue_log or self.config.queue_log)
        self.agi_handler: Callable | None = None  # async fn(url, env, channel) -> AGISTATUS
        self.started_at = clock.seconds()
        self.reloaded_at = self.started_at
        self.fully_booted = True  # False during start(boot_seconds=...): Asterisk still loading
        self.processed_calls = 0
        self._uid_seq = 0
        self._local_seq = 0
        self.ami = None
        self.ami_port: int | None = None
        self._mixmonitors: dict[str, list[dict]] = {}
        # A full disk under the spool: files are still created (a directory entry fits) but
        # not a byte goes into them, so MixMonitor leaves 0-byte files (like Asterisk on ENOSPC).
        self.disk_full = False
        # Asterisk's sounds directory; when set, a file not in it (any format) is missing
        # for STREAM FILE / GET DATA like on a real PBX.  None: every sound exists.
        self.sounds_dir: Path | None = None
        self.queue_log.write(self.started_at, "NONE", "NONE", "NONE", "QUEUESTART", "")
        for qname, members in self.config.queues.items():
            q = self.add_queue(qname)
            for agent_id, name in members:
                self.add_agent(q.name, agent_id, name, answer_delay=self.config.agent_answer_delay,
                               talk_time=self.config.agent_talk_time)

    def ensure_agent(self, agent_id: str) -> None:
        """A simulated person behind a member added at run time (QueueAdd), default behaviour."""
        self.agents.setdefault(agent_id, AgentProfile())

    def has_context(self, context: str) -> bool:
        """Whether the simulated dialplan has ``context`` (Redirect/Originate targets)."""
        return context in DIALPLAN

    def dialplan_listing(self) -> list[tuple[str, str, int, str, str]]:
        """(context, extension, priority, application, data) of every context, as
        ``ShowDialPlan`` lists them (the same steps the context functions below run)."""
        agi = f"agi://{self.agi_host}:{self.agi_port}"
        after = [("NoOp", "AGISTATUS=${AGISTATUS} QUEUE=${QUEUE}"), ("Queue", "${QUEUE},,,,,,,,,"),
                 ("Hangup", "")]
        steps = {
            "hotline": [("NoOp", "Hotline call from ${CALLERID(all)}"), ("Answer", ""),
                        ("AGI", f"{agi}/hotline"), *after],
            "survey": [("NoOp", "Survey call for ${CALLERID(num)}"), ("AGI", f"{agi}/revisit_survey"), *after],
            "hotline-plain": [("NoOp", "Plain hotline call"), ("Answer", ""), ("Playback", "hello-world"),
                              ("Read", "choice,beep,1,,,5"), ("GotoIf", '$["${choice}" = "2"]?complaint'),
                              ("Queue", "consultation"), ("Hangup", ""), ("Queue", "complaint"), ("Hangup", "")],
            "hotline-timeout": [("Answer", ""), ("Queue", "consultation,,,,${QTIMEOUT}"),
                                ("NoOp", "QUEUESTATUS=${QUEUESTATUS}"), ("Hangup", "")],
            "operator": [("NoOp", "Operator takes ${CALLERID(all)}"), ("Wait", "2"), ("Hangup", "")],
            "dialer-agent": [("NoOp", "Dialer call ${ATTEMPT_ID}"), ("Queue", "${QUEUE}"), ("Hangup", "")],
        }
        return [(ctx, "s", i, app, data) for ctx in DIALPLAN for i, (app, data) in enumerate(steps[ctx], 1)]

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", ami_port: int = 0,
                    boot_seconds: float = 0.0) -> "SimulatedPBX":
        """Listen for AMI.  ``boot_seconds`` > 0 is the boot window of a restarted Asterisk:
        the manager accepts logins at once but sends no ``FullyBooted`` and answers the
        module actions (QueueStatus, …) "Invalid/unknown command" until the modules are
        loaded; then every session gets ``FullyBooted`` (main/asterisk.c publish_fully_booted)."""
        from .ami_server import AmiServer

        self.ami = AmiServer(self, username=self.config.username, secret=self.config.secret,
                             read=self.config.read_perm, write=self.config.write_perm)
        await self.ami.start(host, ami_port)
        self.ami_port = self.ami.port
        if boot_seconds > 0:
            self.fully_booted = False
            self.timers.call_later(boot_seconds, self._fully_booted)
        return self

    def logger_rotate(self, strategy: str = "sequential", *, compress: bool = False) -> Path | None:
        """The CLI's ``logger rotate`` for queue_log (see :meth:`QueueLog.rotate`)."""
        return self.queue_log.rotate(strategy, compress=compress, now=self.now())

    def _fully_booted(self) -> None:
        self.fully_booted = True
        now = self.now()
        self.ev("FullyBooted", [("Status", "Fully Booted"), ("Uptime", str(int(now - self.started_at))),
                                ("LastReload", str(int(now - self.reloaded_at)))], "system,all")

    async def stop(self) -> None:
        """Close the AMI server, cancel the FastAGI sessions still running (their sockets close)
        and every pending timer: no stray task, no DelayedCall.  Dialplan processes stop where
        they are (no further events).  Safe to call twice."""
        for ch in list(self.channels.values()):
            proc = ch.proc
            if proc is not None and not proc.finished:
                proc.finished = True
                proc._clear()
                try:
                    proc.gen.close()  # run its finally blocks now, not at garbage collection
                except Exception:
                    log.debug("closing the dialplan of %s failed", ch.name, exc_info=True)
        if self.ami is not None:
            await self.ami.stop()
            self.ami = None
        await self.timers.aclose()
        self.queue_log.close()

    def now(self) -> float:
        return self.clock.seconds()

    # ------------------------------------------------------------------ configuration API
    def add_queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = Queue(name, servicelevel=self.config.servicelevel, timeout=self.config.ring_timeout,
                      retry=self.config.retry)
            self.queues[name] = q
        return q

    def add_agent(self, queue: str, agent_id: str, name: str | None = None, *, answer_delay: float = 3,
                  talk_time: float = 5, talk_sd: float = 0.0, wrapup: float = 0.0, static: bool = True) -> Member:
        """Add member ``Local/<agent_id>@sim-agent/n`` to ``queue`` with its behaviour."""
        q = self.add_queue(queue)
        self.agents[agent_id] = AgentProfile(answer_delay, talk_time, talk_sd, wrapup)
        self.globals[f"AGENT_DELAY_{agent_id}"] = _fmt_num(answer_delay)
        self.globals[f"AGENT_TALK_{agent_id}"] = _fmt_num(talk_time)
        iface = f"Local/{agent_id}@sim-agent/n"
        m = q.member(iface)
        if m is None:
            m = Member(iface, name or f"Agent {agent_id}", "static" if static else "dynamic",
                       login_time=int(self.now()))
            q.members.append(m)
        self._sync_wrapup(agent_id)
        return m

    def _sync_wrapup(self, agent_id: str) -> None:
        """The agent's wrap-up is its members' ``Wrapuptime`` (per member, whole seconds)."""
        w = int(round(self.agents.get(agent_id, AgentProfile()).wrapup))
        for q in self.queues.values():
            for m in q.members:
                if m.agent_id == agent_id:
                    m.wrapuptime = w

    def set_agent(self, agent_id: str, **kw: Any) -> None:
        prof = self.agents.setdefault(agent_id, AgentProfile())
        for k, v in kw.items():
            setattr(prof, k, v)
        if "answer_delay" in kw:
            self.globals[f"AGENT_DELAY_{agent_id}"] = _fmt_num(kw["answer_delay"])
        if "talk_time" in kw:
            self.globals[f"AGENT_TALK_{agent_id}"] = _fmt_num(kw["talk_time"])
        if "wrapup" in kw:
            self._sync_wrapup(agent_id)

    def set_patient(self, number: str, outcome: str = "answer", ring: float = 2, survey_digits: str = "4",
                    hold: float = 20, delay: float = 3) -> None:
        """How the patient at ``number`` behaves when the dialer calls ``Local/<number>@sim-patient``."""
        if outcome not in ("answer", "busy", "noanswer", "congestion", "reject", "rejected"):
            raise ValueError(f"unknown patient outcome {outcome!r}")
        self.patients[number] = PatientProfile("reject" if outcome == "rejected" else outcome,
                                               ring, delay, survey_digits, hold)

    # ------------------------------------------------------------------ event helpers
    def emit(self, headers: Headers) -> None:
        for fn in list(self.listeners):
            try:
                fn(headers)
            except Exception:  # a broken listener must not break the PBX
                log.exception("AMI event listener failed")

    def ev(self, name: str, fields: Iterable[tuple[str, str]], priv: str = "call,all") -> None:
        self.emit([("Event", name), ("Privilege", priv), *fields])

    def chev(self, name: str, ch: Channel, *extra: tuple[str, str], priv: str = "call,all") -> None:
        self.ev(name, [*ch.snapshot(), *extra], priv)

    def newexten(self, ch: Channel, app: str, data: str = "", *, priority: int | None = None,
                 extension: str | None = None) -> None:
        if priority is not None:
            ch.priority = priority
        ch.app, ch.appdata = app, data
        self.chev("Newexten", ch, ("Extension", extension or ch.exten), ("Application", app),
                  ("AppData", data), priv="dialplan,all")

    def varset(self, ch: Channel, var: str, value: Any) -> None:
        ch.variables[var] = str(value)
        self.chev("VarSet", ch, ("Variable", var), ("Value", str(value)), priv="dialplan,all")

    def newstate(self, ch: Channel, state: int) -> None:
        ch.state = state
        self.chev("Newstate", ch)

    def dsc(self, device: str, state: str) -> None:
        self.ev("DeviceStateChange", [("Device", device), ("State", state)])

    def hangup_event(self, ch: Channel, cause: int) -> None:
        if ch.data.get("hangup_sent"):
            return
        ch.data["hangup_sent"] = True
        ch.hung_up = True
        self.chev("Hangup", ch, ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown")))
        self.channels.pop(ch.name, None)
        self._end_mixmonitors(ch, stop_event=False)

    def _hangup_local(self, ch: Channel, cause: int) -> None:
        sent = ch.data.get("hangup_sent")
        self.hangup_event(ch, cause)
        if not sent:
            self.dsc(ch.name.rsplit("-", 1)[0], "NOT_INUSE")

    def soft_hangup_request(self, ch: Channel, cause: int = 16) -> None:
        self.chev("SoftHangupRequest", ch, ("Cause", str(cause)))

    def hangup_request(self, ch: Channel, cause: int = 16) -> None:
        self.chev("HangupRequest", ch, ("Cause", str(cause)))

    def member_status(self, q: Queue, m: Member) -> None:
        self.ev("QueueMemberStatus", m.event_fields(q.name), "agent,all")

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
            yield hold
            if two.data.get("stay_when_connected") and two.peer.bridge is not None:
                yield Waiter()  # talking to an agent: stay until the agent ends the call
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
        handler = self.agi_handler
        if handler is None:
            try:
                from .agi_client import run_agi as handler  # type: ignore
            except ImportError:
                handler = None
        status = "FAILURE"
        if handler is not None:
            from .agi_channel import SimAgiChannel

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

    # ------------------------------------------------------------------ the Queue application
    def app_queue(self, ch: Channel, qname: str, timeout: float | None = None, prio: int = 0):
        """Generator for ``Queue(qname,,,,timeout)``: returns QUEUESTATUS."""
        appdata = qname if timeout is None else f"{qname},,,,{_fmt_num(timeout)}"
        self.newexten(ch, "Queue", appdata)
        q = self.queues.get(qname)
        if q is None:
            self.varset(ch, "QUEUESTATUS", "JOINEMPTY")
            return "JOINEMPTY"
        for var in QUEUE_TIME_VARS:
            self.varset(ch, var, "")
        now = self.now()
        entry = Entry(ch, q, joined=now, original_position=0, priority=prio,
                      deadline=(now + timeout) if timeout else None)
        idx = len(q.entries)
        for i, e in enumerate(q.entries):
            if e.priority < prio:
                idx = i
                break
        q.entries.insert(idx, entry)
        entry.original_position = idx + 1
        ch.data["queue_entry"] = entry
        if ch.data.get("simcall") is not None:
            ch.data["simcall"].queue = qname
        self.dsc(f"Queue:{qname}", "RINGING")
        self.ev("QueueCallerJoin", [*ch.snapshot(), ("Queue", qname), ("Position", str(idx + 1)),
                                    ("Count", str(len(q.entries)))], "agent,all")
        self.queue_log.write(now, ch.uniqueid, qname, "NONE", "ENTERQUEUE", "", ch.cid_num, idx + 1)
        self.chev("MusicOnHoldStart", ch, ("Class", "default"))
        status = "TIMEOUT"
        try:
            while True:
                now = self.now()
                if entry.deadline is not None and now >= entry.deadline - 1e-9:
                    break
                member = None
                ahead = [e for e in q.entries[: q.position(entry) - 1] if e.ringing is None]
                if not ahead:
                    member = q.pick_member(now)
                if member is None:
                    wait = q.retry if entry.deadline is None else min(q.retry, entry.deadline - now)
                    w = Waiter(timeout=wait)
                    q_waiters = q.__dict__.setdefault("_waiters", [])
                    q_waiters.append(w)
                    yield w
                    if w in q_waiters:
                        q_waiters.remove(w)
                    continue
                result = yield from self._ring_member(entry, member)
                if result == "answered":
                    status = "ANSWERED"
                    return status
                if result == "timeout":
                    break
                # no answer: wait `retry` before the next attempt (or until the caller timeout)
                wait = q.retry if entry.deadline is None else min(q.retry, max(0.0, entry.deadline - self.now()))
                yield wait
            # caller-side timeout (Queue()'s 5th argument)
            self._queue_exit(entry, "timeout")
            self.varset(ch, "QUEUESTATUS", "TIMEOUT")
            if ch.data.get("simcall") is not None:
                ch.data["simcall"].outcome = "timeout"
            return "TIMEOUT"
        except ChannelHangup as h:
            if isinstance(h, ChannelRedirect):  # the channel is already at its new place
                ch.context, ch.exten, ch.priority = h.context, h.exten, h.priority
            if entry in q.entries:
                self._queue_exit(entry, "redirect" if isinstance(h, ChannelRedirect) else "hangup")
                if ch.data.get("simcall") is not None:
                    ch.data["simcall"].outcome = "redirected" if isinstance(h, ChannelRedirect) else "abandoned"
            raise

    def _wake_queue(self, q: Queue) -> None:
        for w in list(q.__dict__.get("_waiters", [])):
            w.fire("member")
        q.__dict__["_waiters"] = []

    def _queue_exit(self, entry: Entry, why: str) -> None:
        """Caller leaves unanswered: abandon (hang-up/redirect) or timeout; Asterisk's event order."""
        ch, q = entry.caller, entry.queue
        now = self.now()
        hold = int(now) - int(entry.joined)
        pos = q.position(entry)
        if why == "hangup":
            self.chev("MusicOnHoldStop", ch)
        if entry.ringing is not None:
            self._cancel_ring(entry, why)
        if why != "timeout":
            self.varset(ch, "QUEUEWAIT", hold)
            self.varset(ch, "QUEUEWAIT_MS", int(round((now - entry.joined) * 1000)))
            self.varset(ch, "DIALEDTIME", int(now - ch.created))
            self.varset(ch, "DIALEDTIME_MS", int(round((now - ch.created) * 1000)))
            self.varset(ch, "ANSWEREDTIME", 0)
            self.varset(ch, "ANSWEREDTIME_MS", 0)
            self.varset(ch, "ABANDONED", "TRUE")
            for k, v in q.queue_vars():
                self.varset(ch, k, v)
        q.record_abandon(hold)
        self.ev("QueueCallerAbandon", [*ch.snapshot(), ("Queue", q.name), ("Position", str(pos)),
                                       ("OriginalPosition", str(entry.original_position)),
                                       ("HoldTime", str(hold))], "agent,all")
        if why != "timeout":
            for k, v in q.queue_vars():
                self.varset(ch, k, v)
        self.queue_log.write(now, ch.uniqueid, q.name, "NONE",
                             "EXITWITHTIMEOUT" if why == "timeout" else "ABANDON", pos,
                             entry.original_position, hold)
        q.entries.remove(entry)
        if why == "timeout":
            self.chev("MusicOnHoldStop", ch)
        if not q.entries:
            self.dsc(f"Queue:{q.name}", "NOT_INUSE")
        self.ev("QueueCallerLeave", [*ch.snapshot(), ("Queue", q.name), ("Position", str(pos)),
                                     ("Count", str(len(q.entries)))], "agent,all")
        self.varset(ch, "QUEUEPOSITION", pos)
        ring = ch.data.pop("ring_leftover", None)
        if ring is not None:
            self._finish_cancelled_ring(ring)

    # ring one member ------------------------------------------------------
    def _ring_member(self, entry: Entry, member: Member):
        ch, q = entry.caller, entry.queue
        agent_id = member.agent_id
        member.busy = True
        a1, a2 = self.new_local_pair(agent_id, "sim-agent", linkedid=ch.linkedid, role="agent")
        ring = dict(member=member, a1=a1, a2=a2, start=self.now(), queue=q)
        entry.ringing = ring
        a1.cid_num, a1.cid_name = ch.cid_num, ch.cid_name
        self.newexten(a1, "AppQueue", "(Outgoing Line)")
        self.chev("NewCallerid", a1, CID_PRES)
        self.varset(a1, "DIALEDPEERNUMBER", f"{agent_id}@sim-agent/n")
        self.varset(a2, "DIALEDPEERNUMBER", f"{agent_id}@sim-agent/n")
        a2.cl_num, a2.cl_name = ch.cid_num, ch.cid_name
        self.set_callerid(a2, ch.cid_num, ch.cid_name, connected=True)
        self.local_bridge(a1, a2, "No")
        dest_called = [(k, v) for k, v in a1.snapshot("Dest")]
        dest_called = [(k, ("s" if k == "DestExten" else ch.cid_num if k == "DestConnectedLineNum" else
                            ch.cid_name if k == "DestConnectedLineName" else v)) for k, v in dest_called]
        self.ev("AgentCalled", [*ch.snapshot(), *dest_called, ("Queue", q.name),
                                ("Interface", member.interface), ("MemberName", member.name)], "agent,all")
        self.ev("DialBegin", [*ch.snapshot(), *a1.snapshot("Dest"), ("DialString", member.interface)])
        w = Waiter(timeout=None)
        a1.data["dial_waiter"] = w
        a1.data["ring"] = ring
        self.start_proc(a2, self._sim_agent(a2, ch))
        self.ev("DialState", [*ch.snapshot(), *a1.snapshot("Dest"), ("DialStatus", "RINGING")])
        self.dsc(f"Local/{agent_id}@sim-agent", "INUSE")
        self.member_status(q, member)
        self.dsc(f"Queue:{q.name}_avail", "NOT_INUSE" if any(not m.busy and not m.paused for m in q.members)
                 else "INUSE")
        limit = float(q.timeout)
        timed_by_caller = False
        if entry.deadline is not None and entry.deadline - self.now() < limit:
            limit = max(0.0, entry.deadline - self.now())
            timed_by_caller = True
        w.timeout = limit
        w.timeout_value = ("noanswer", 0)
        res = yield w
        kind = res[0]
        if kind == "answer":
            yield from self._connect(entry, ring)
            return "answered"
        # ring timeout: RNA, DialEnd NOANSWER + CANCEL, agent pair torn down
        ring_ms = int(round((self.now() - ring["start"]) * 1000))
        self.ev("AgentRingNoAnswer", [*ch.snapshot(), *a1.snapshot("Dest"), ("Queue", q.name),
                                      ("Interface", member.interface), ("MemberName", member.name),
                                      ("RingTime", str(ring_ms))], "agent,all")
        self.queue_log.write(self.now(), ch.uniqueid, q.name, member.name, "RINGNOANSWER", ring_ms)
        self.ev("DialEnd", [*ch.snapshot(), *a1.snapshot("Dest"), ("DialStatus", "NOANSWER")])
        self.ev("DialEnd", [*ch.snapshot(), *a1.snapshot("Dest"), ("DialStatus", "CANCEL")])
        if timed_by_caller:
            ch.data["ring_leftover"] = ring
            entry.ringing = None
            return "timeout"
        self._finish_cancelled_ring(ring)
        entry.ringing = None
        return "noanswer"

    def _finish_cancelled_ring(self, ring: dict) -> None:
        a1, a2, member, q = ring["a1"], ring["a2"], ring["member"], ring["queue"]
        self.hangup_request(a2, 0)
        self.hangup_event(a1, 0)
        self.soft_hangup_request(a2, 16)
        self.hangup_event(a2, 0)
        self.kill(a2, ChannelHangup(0))
        self._member_free(q, member, ring)

    def _cancel_ring(self, entry: Entry, why: str) -> None:
        ring = entry.ringing
        entry.ringing = None
        ch, a1, a2 = entry.caller, ring["a1"], ring["a2"]
        self.ev("DialEnd", [*ch.snapshot(), *a1.snapshot("Dest"), ("DialStatus", "CANCEL")])
        self.ev("DialEnd", [*ch.snapshot(), *a1.snapshot("Dest"), ("DialStatus", "CANCEL")])
        self.hangup_request(a2, 0)
        self.hangup_event(a1, 0)
        ms = int(round((self.now() - ring["start"]) * 1000))
        self.queue_log.write(self.now(), ch.uniqueid, entry.queue.name, ring["member"].name, "RINGCANCELED", ms)
        ring["pending_tail"] = True
        ch.data["ring_leftover"] = ring

    def _member_free(self, q: Queue, member: Member, ring: dict | None = None) -> None:
        member.busy = False
        member.in_call = False
        agent_dev = f"Local/{member.agent_id}@sim-agent"
        self.dsc(agent_dev, "NOT_INUSE")
        self.member_status(q, member)
        if ring is not None and ring.get("pending_tail"):
            self.dsc(agent_dev, "NOT_INUSE")
        self._wake_queue(q)

    def _sim_agent(self, a2: Channel, caller: Channel):
        """Context sim-agent: Ringing, Wait(D), Answer, [Playback], Wait(T), Hangup."""
        agent_id = a2.exten
        a1 = a2.peer
        prof = self.agents.get(agent_id, AgentProfile())
        try:
            self.newexten(a2, "NoOp", f"Agent {agent_id} is ringing")
            self.newexten(a2, "Ringing", "", priority=2)
            a1.state = 5
            a1.exten = "s"
            a1.cl_num, a1.cl_name = caller.cid_num, caller.cid_name
            self.chev("Newstate", a1)
            self.newexten(a1, "AppQueue", "(Outgoing Line)")
            self.chev("NewConnectedLine", a1)
            d = self.globals.get(f"AGENT_DELAY_{agent_id}") or "2"
            if caller.variables.get("AUTO_ANSWER"):
                # a dialer patient: the agent's phone auto-answers (in production a predial
                # handler adds "Call-Info: answer-after=0"; here the phone answers after 0.5 s)
                d = self.globals.get("AGENT_AUTOANSWER_DELAY") or "0.5"
            t = self.globals.get(f"AGENT_TALK_{agent_id}") or self.globals.get("AGENT_TALK_DEFAULT") or "5"
            if prof.talk_sd > 0:
                t = _fmt_num(max(1, round(self.rng.gauss(float(t), prof.talk_sd))))
            self.newexten(a2, "Set", f"D={d}", priority=3)
            self.varset(a2, "D", d)
            self.newexten(a2, "Set", f"T={t}", priority=4)
            self.varset(a2, "T", t)
            self.newexten(a2, "Wait", d, priority=5)
            yield float(d)
            self.newexten(a2, "Answer", "", priority=6)
            self.newstate(a2, 6)
            a1.state = 6
            self.chev("Newstate", a1)
            w = a1.data.get("dial_waiter")
            yield 0.005  # the answer reaches app_queue through the Local channel a moment later
            if w is not None:
                w.fire(("answer", 0), sync=True)
            yield 0.495
            say = self.globals.get("AGENT_SAY", "")
            self.newexten(a2, "ExecIf", f"1?Playback({say})" if say else "0?Playback()", priority=7)
            if say:
                secs = float(self.config.prompt_seconds.get(say, 1.0))
                if a1.bridge:
                    for other in a1.bridge["channels"]:
                        self.record_audio(other, secs)
                yield secs
            self.newexten(a2, "Wait", t, priority=8)
            yield float(t)
            self.newexten(a2, "Hangup", "", priority=9)
            self.soft_hangup_request(a2, 16)
            self.hangup_request(a1, 16)
            bw = a1.data.get("bridge_waiter")
            if bw is not None:
                bw.fire("agent", sync=True)
        except ChannelHangup:
            return

    # connect + talk --------------------------------------------------------
    def _connect(self, entry: Entry, ring: dict):
        ch, q, member, a1, a2 = entry.caller, entry.queue, ring["member"], ring["a1"], ring["a2"]
        now = self.now()
        ring_s = int(now) - int(ring["start"])
        hold = int(now) - int(entry.joined)
        call = ch.data.get("simcall")
        self.ev("DialEnd", [*ch.snapshot(), *a1.snapshot("Dest"), ("DialStatus", "ANSWER")])
        agent_dev = f"Local/{member.agent_id}@sim-agent"
        self.dsc(agent_dev, "INUSE")
        self.chev("MusicOnHoldStop", ch)
        self.dsc(agent_dev, "INUSE")
        mvars = [("MEMBERINTERFACE", member.interface), ("MEMBERNAME", member.name),
                 ("MEMBERCALLS", member.calls_taken), ("MEMBERLASTCALL", member.last_call),
                 ("MEMBERPENALTY", member.penalty), ("MEMBERDYNAMIC", 0 if member.membership == "static" else 1),
                 ("MEMBERREALTIME", 0)]
        for k, v in mvars:
            self.varset(ch, k, v)
        for k, v in mvars:
            self.varset(a1, k, v)
        q.record_connect(hold)
        for target in (ch, a1):
            self.varset(target, "QEHOLDTIME", hold)
            self.varset(target, "QEORIGINALPOS", entry.original_position)
        for target in (ch, a1):
            for k, v in q.queue_vars():
                self.varset(target, k, v)
        pos = q.position(entry)
        q.entries.remove(entry)
        entry.ringing = None
        if not q.entries:
            self.dsc(f"Queue:{q.name}", "NOT_INUSE")
        self.ev("QueueCallerLeave", [*ch.snapshot(), ("Queue", q.name), ("Position", str(pos)),
                                     ("Count", str(len(q.entries)))], "agent,all")
        self.varset(ch, "QUEUEPOSITION", pos)
        self.varset(ch, "QUEUEWAIT", hold)
        self.varset(ch, "QUEUEWAIT_MS", int(round((now - entry.joined) * 1000)))
        self.ev("AgentConnect", [*ch.snapshot(), *a1.snapshot("Dest"), ("Queue", q.name),
                                 ("Interface", member.interface), ("MemberName", member.name),
                                 ("HoldTime", str(hold)), ("RingTime", str(ring_s))], "agent,all")
        self.queue_log.write(now, ch.uniqueid, q.name, member.name, "CONNECT", hold, a1.uniqueid, ring_s)
        member.in_call = True
        if call is not None:
            call.outcome, call.agent = "answered", member.interface
        bridge = self._bridge_create()
        self._bridge_enter(bridge, a1)
        self._bridge_enter(bridge, ch)
        self.varset(a1, "BRIDGEPEER", ch.name)
        self.varset(ch, "BRIDGEPEER", a1.name)
        connected_at = now
        bw = Waiter()
        a1.data["bridge_waiter"] = bw
        ch.data["bridge_waiter"] = bw
        reason = "agent"
        ami_hangup = False
        try:
            yield bw
        except ChannelHangup as h:
            reason = "caller"
            ami_hangup = h.by == "ami-regex"  # torn down with its peer: no channel fields
        talk = int(self.now()) - int(connected_at)
        member.calls_taken += 1
        member.last_call = int(self.now())
        member.in_call = False
        if member.wrapuptime > 0:
            # app_queue: not rung while time(NULL) - lastcall < wrapuptime (whole seconds)
            member.wrapup_until = member.last_call + member.wrapuptime
            self.timers.call_later(member.wrapup_until - self.now(), self._wake_queue, q)
        q.record_complete(talk)
        complete_fields = [("Queue", q.name), ("Interface", member.interface), ("MemberName", member.name),
                           ("HoldTime", str(hold)), ("TalkTime", str(talk)), ("Reason", reason)]
        self.queue_log.write(self.now(), ch.uniqueid, q.name, member.name,
                             "COMPLETEAGENT" if reason == "agent" else "COMPLETECALLER", hold, talk,
                             entry.original_position)
        if reason == "agent":
            self.ev("AgentComplete", [*ch.snapshot(), *a1.snapshot("Dest"), *complete_fields], "agent,all")
            self.hangup_event(a2, 16)
            self.varset(a1, "BRIDGEPEER", "")
            self.varset(ch, "BRIDGEPEER", "")
            self._bridge_leave(bridge, a1)
            self.hangup_event(a1, 16)
            self._member_free(q, member, dict(pending_tail=True))
            self._bridge_leave(bridge, ch)
            self._bridge_destroy(bridge)
            for k, v in q.queue_vars():
                self.varset(ch, k, v)
            self.varset(ch, "ANSWEREDTIME", talk)
            self.varset(ch, "ANSWEREDTIME_MS", int(round((self.now() - connected_at) * 1000)))
            self.varset(ch, "DIALEDTIME", int(self.now() - ch.created))
            self.varset(ch, "DIALEDTIME_MS", int(round((self.now() - ch.created) * 1000)))
            for k, v in q.queue_vars():
                self.varset(ch, k, v)
            raise ChannelHangup(16, "bridge")
        # the caller hung up (person or AMI Hangup)
        self._bridge_leave(bridge, ch)
        self._bridge_leave(bridge, a1)
        self._bridge_destroy(bridge)
        if ami_hangup:
            self.ev("AgentComplete", complete_fields, "agent,all")
        else:
            self.ev("AgentComplete", [*ch.snapshot(), *a1.snapshot("Dest"), *complete_fields], "agent,all")
        self.soft_hangup_request(a1, 16)
        self.hangup_event(a1, 16)
        self.hangup_request(a2, 16)
        self.hangup_event(a2, 16)
        self.kill(a2, ChannelHangup(16))
        self._member_free(q, member, dict(pending_tail=True))
        raise ChannelHangup(16, "hangup")

    def _bridge_fields(self, b: dict) -> Headers:
        return [("BridgeUniqueid", b["id"]), ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"),
                ("BridgeCreator", "<unknown>"), ("BridgeName", "<unknown>"),
                ("BridgeNumChannels", str(len(b["channels"]))), ("BridgeVideoSourceMode", "none")]

    def _bridge_create(self) -> dict:
        b = {"id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "channels": []}
        self.ev("BridgeCreate", self._bridge_fields(b))
        return b

    def _bridge_enter(self, b: dict, ch: Channel) -> None:
        b["channels"].append(ch)
        ch.bridge = b
        self.ev("BridgeEnter", [*self._bridge_fields(b), *ch.snapshot()])

    def _bridge_leave(self, b: dict, ch: Channel) -> None:
        if ch in b["channels"]:
            b["channels"].remove(ch)
        ch.bridge = None
        self.ev("BridgeLeave", [*self._bridge_fields(b), *ch.snapshot()])

    def _bridge_destroy(self, b: dict) -> None:
        self.ev("BridgeDestroy", self._bridge_fields(b))

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

    # ------------------------------------------------------------------ people: inbound calls
    def inbound_call(self, number: str, name: str = "", context: str = "hotline", *, digits: str = "1",
                     digit_delay: float = 3, patience: float = 60, hold: float | None = None,
                     stay_when_connected: bool = False) -> SimCall:
        """A caller dials the hotline: ``;1`` enters ``context``; the person sends ``digits``
        after ``digit_delay`` s and hangs up ``patience`` s later — also while talking to an
        agent (like the trace harness) unless ``stay_when_connected``."""
        cid = f'"{name}" <{number}>' if name else number
        variables = {"DIGITS": digits, "DELAY": _fmt_num(digit_delay),
                     "HOLD": _fmt_num(patience if hold is None else hold)}
        one = self.originate("Local/s@sim-caller", context=context, exten="s", priority=1, callerid=cid,
                             variables=variables, emit_response=False)
        call = SimCall(one)
        one.data["simcall"] = call
        if one.peer is not None:
            one.peer.data["stay_when_connected"] = stay_when_connected
        self.calls.append(call)
        return call


# --------------------------------------------------------------------------- dialplan contexts
def _ctx_hotline_plain(pbx: SimulatedPBX, ch: Channel):
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


def _after_agi(pbx: SimulatedPBX, ch: Channel, start_priority: int):
    """CONTRACTS: QUEUE set -> Queue(${QUEUE}) prio ${QUEUE_PRIO}; elif TRANSFER -> operator; else Hangup."""
    qname = ch.variables.get("QUEUE", "")
    transfer = ch.variables.get("TRANSFER", "")
    pbx.newexten(ch, "NoOp", f"AGISTATUS={ch.variables.get('AGISTATUS', '')} QUEUE={qname}",
                 priority=start_priority)
    if qname:
        ch.priority = start_priority + 1
        prio = int(ch.variables.get("QUEUE_PRIO") or 0)
        yield from pbx.app_queue(ch, qname, prio=prio)
    elif transfer:
        pbx.newexten(ch, "Dial", transfer, priority=start_priority + 1)
        yield from _ctx_operator(pbx, ch)
        return
    pbx.newexten(ch, "Hangup", "", priority=start_priority + 2)


def _ctx_hotline(pbx: SimulatedPBX, ch: Channel):
    pbx.newexten(ch, "NoOp", f'Hotline call from "{ch.cid_name}" <{ch.cid_num}>', priority=1)
    pbx.newexten(ch, "Answer", "", priority=2)
    ch.priority = 3
    yield from pbx.app_agi(ch, "hotline")
    yield from _after_agi(pbx, ch, 4)


def _ctx_hotline_timeout(pbx: SimulatedPBX, ch: Channel):
    pbx.newexten(ch, "Answer", "", priority=1)
    ch.priority = 2
    t = float(ch.variables.get("QTIMEOUT") or 10)
    status = yield from pbx.app_queue(ch, "consultation", timeout=t)
    pbx.newexten(ch, "NoOp", f"QUEUESTATUS={status}", priority=3)
    pbx.newexten(ch, "Hangup", "", priority=4)


def _ctx_survey(pbx: SimulatedPBX, ch: Channel):
    pbx.newexten(ch, "NoOp", f"Survey call for {ch.cid_num}", priority=1)
    ch.priority = 2
    yield from pbx.app_agi(ch, "revisit_survey")
    yield from _after_agi(pbx, ch, 3)


def _ctx_operator(pbx: SimulatedPBX, ch: Channel):
    call = ch.data.get("simcall")
    if call is not None:
        call.outcome = "redirected" if call.outcome in (None, "abandoned") else call.outcome
    pbx.newexten(ch, "NoOp", f'Operator takes "{ch.cid_name}" <{ch.cid_num}>', priority=1)
    pbx.newexten(ch, "Wait", "2", priority=2)
    yield 2
    pbx.newexten(ch, "Hangup", "", priority=3)


def _ctx_dialer_agent(pbx: SimulatedPBX, ch: Channel):
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
    "survey": _ctx_survey,
    "operator": _ctx_operator,
}
