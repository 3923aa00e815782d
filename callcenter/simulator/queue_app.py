"""The ``Queue()`` application: joining, ringing members, connecting, leaving."""
from __future__ import annotations

import uuid

from .channels import Channel
from .profiles import AgentProfile, CID_PRES, ChannelRedirect, Headers, QUEUE_TIME_VARS, _fmt_num
from .queues import Entry, Member, Queue
from .runner import ChannelHangup, Waiter
from .voices import Conversation


TALK_AFTER = 0.8  # s after the bridge forms before the caller starts speaking


class QueueAppMixin:
    """Part of :class:`~callcenter.simulator.pbx.SimulatedPBX` (a mixin: ``self`` is the PBX)."""

    # ------------------------------------------------------------------ the Queue application
    def app_queue(self, ch: Channel, qname: str, timeout: float | None = None, prio: int = 0,
                  options: str = ""):
        """Generator for ``Queue(qname,options,,,timeout)``: returns QUEUESTATUS.

        Option ``c`` (app_queue OPT_GO_ON): when the *called* party (the agent) hangs up, the
        caller continues in the dialplan with QUEUESTATUS=CONTINUE; without it the caller is
        hung up with the bridge.  A caller who hangs up ends the call either way (Asterisk
        still sets QUEUESTATUS=CONTINUE on the dying channel with ``c``)."""
        appdata = qname + (f",{options}" if options else "")
        if timeout is not None:
            appdata = f"{qname},{options},,,{_fmt_num(timeout)}"
        self.newexten(ch, "Queue", appdata)
        ch.data["queue_continue"] = "c" in options
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
                if result == "continue":  # option c: the agent hung up, the caller goes on
                    return "CONTINUE"
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
            yield from self._connect(entry, ring)  # ends by ChannelHangup unless option c
            return "continue"
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
                    a1.bridge["conversation"].hold_until(self.now() + secs)
                    for other in a1.bridge["channels"]:
                        self.record_audio(other, say, secs)
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
        if q.wrapup_of(member) > 0:
            # app_queue: not rung while time(NULL) - lastcall < wrapuptime (whole seconds)
            member.wrapup_until = member.last_call + q.wrapup_of(member)
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
            if ch.data.get("queue_continue"):
                # Queue(...,c): QUEUESTATUS=CONTINUE, then the next priority (trace of 22.10.1:
                # BridgeDestroy, QUEUENAME x2, VarSet QUEUESTATUS, Newexten)
                self.varset(ch, "QUEUESTATUS", "CONTINUE")
                person = ch.peer.data.pop("bridge_ended", None) if ch.peer is not None else None
                if person is not None:
                    person.fire("continue")
                return
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
        if ch.data.get("queue_continue"):  # set on the dying channel; no dialplan runs after
            for k, v in q.queue_vars():
                self.varset(ch, k, v)
            self.varset(ch, "QUEUESTATUS", "CONTINUE")
        raise ChannelHangup(16, "hangup")

    def _bridge_fields(self, b: dict) -> Headers:
        return [("BridgeUniqueid", b["id"]), ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"),
                ("BridgeCreator", "<unknown>"), ("BridgeName", "<unknown>"),
                ("BridgeNumChannels", str(len(b["channels"]))), ("BridgeVideoSourceMode", "none")]

    def _bridge_create(self) -> dict:
        bid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        # the people in it talk (phones carry their voices); seeded by the id: replayable
        b = {"id": bid, "channels": [], "conversation": Conversation(bid, self.now() + TALK_AFTER)}
        self.ev("BridgeCreate", self._bridge_fields(b))
        return b

    def _bridge_enter(self, b: dict, ch: Channel) -> None:
        b["channels"].append(ch)
        ch.bridge = b
        self.monitors_bridged(ch, b)
        self.ev("BridgeEnter", [*self._bridge_fields(b), *ch.snapshot()])

    def _bridge_leave(self, b: dict, ch: Channel) -> None:
        if ch in b["channels"]:
            b["channels"].remove(ch)
        ch.bridge = None
        self.monitors_bridged(ch, None)
        self.ev("BridgeLeave", [*self._bridge_fields(b), *ch.snapshot()])

    def _bridge_destroy(self, b: dict) -> None:
        self.ev("BridgeDestroy", self._bridge_fields(b))
