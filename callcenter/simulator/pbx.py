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
from pathlib import Path
from typing import Any, Callable

from .ami_actions import ActionsMixin
from .channel_ops import ChannelsMixin
from .channels import Channel
from .dialplan import DIALPLAN, DialplanMixin
from .events import EventsMixin
from .originate import OriginateMixin
from .persons import PersonsMixin
from .profiles import AgentProfile, Headers, PatientProfile, SimCall, SimConfig, _fmt_num
from .queue_app import QueueAppMixin
from .queues import Member, Queue, QueueLog
from .runner import Timers

log = logging.getLogger("callcenter.simulator.pbx")  # one logger for the whole PBX


class SimulatedPBX(EventsMixin, ChannelsMixin, OriginateMixin, PersonsMixin, DialplanMixin, QueueAppMixin,
                   ActionsMixin):
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
        opts = self.config.hotline_queue_options
        hotline_after = after if "c" not in opts else [  # docs/asterisk: the rating after the call
            after[0], ("Queue", f"${{QUEUE}},{opts}"), ("GotoIf", '$["${QUEUESTATUS}" = "CONTINUE"]?rating'),
            ("Hangup", ""), ("AGI", f"{agi}/satisfaction"), ("Hangup", "")]
        steps = {
            "hotline": [("NoOp", "Hotline call from ${CALLERID(all)}"), ("Answer", ""),
                        ("AGI", f"{agi}/hotline"), *hotline_after],
            "hotline-continue": [("Answer", ""), ("Queue", "consultation,c"), ("NoOp", "QUEUESTATUS=${QUEUESTATUS}"),
                                 ("Playback", "hello-world"), ("Hangup", "")],
            "survey": [("NoOp", "Survey call for ${CALLERID(num)}"), ("AGI", f"{agi}/${{SURVEY_FLOW}}"), *after],
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
        self._close_mixmonitors()
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
                      retry=self.config.retry, wrapuptime=self.config.wrapuptime)
            self.queues[name] = q
        return q

    def queues_conf(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """queues.conf as Asterisk's config parser has it: (category, [(key, value)])."""
        general = [("persistentmembers", "yes"), ("autofill", "yes"), ("shared_lastcall", "yes")]
        return [("general", general), *((q.name, q.conf_lines()) for q in self.queues.values())]

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
