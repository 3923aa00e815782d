"""The simulator's AMI server: Asterisk 22's manager interface over TCP.

Framing is :mod:`callcenter.ami.codec` (the same code the service's client
uses).  Responses, list responses and error texts are those recorded in
``tests/fixtures/asterisk-traces`` (see the README there): ``Permission denied``
before login, ``Authentication failed`` ~1 s after a wrong secret followed by
a close, ``Originate successfully queued`` then ``OriginateResponse`` …
Events from the PBX go to every logged-in session with events on, filtered by the
user's ``read`` classes; an action outside its ``write`` classes is ``Permission denied``
(manager.c), and ``ListCommands`` lists only what the user may send (``SimConfig``
``read_perm``/``write_perm``, manager.conf syntax).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Any

from callcenter.ami.codec import Message, Parser, ProtocolError, encode

from .channels import UNKNOWN

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
VERSION = "22.10.1"
VERSION_LINE = "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-22 11:13:08 UTC"


# Write class each action needs (0 = none): ast_manager_register_xml* calls in Asterisk
# 22.10.1 main/manager.c, main/pbx.c, apps/app_queue.c, apps/app_mixmonitor.c.
ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    name: (synopsis, frozenset(classes.split(",")) if classes else frozenset())
    for name, synopsis, classes in [
        ("Ping", "Keepalive command.", ""),
        ("Events", "Control Event Flow.", ""),
        ("Logoff", "Logoff Manager.", ""),
        ("Login", "Login Manager.", ""),
        ("Challenge", "Generate Challenge for MD5 Auth.", ""),
        ("ListCommands", "List available manager commands.", ""),
        ("Hangup", "Hangup channel.", "system,call"),
        ("Setvar", "Sets a channel variable or function value.", "call"),
        ("Getvar", "Gets a channel variable or function value.", "call,reporting"),
        ("Redirect", "Redirect (transfer) a call.", "call"),
        ("Originate", "Originate a call.", "originate"),
        ("Command", "Execute Asterisk CLI Command.", "command"),
        ("CoreSettings", "Show PBX core settings (version etc).", "system,reporting"),
        ("CoreStatus", "Show PBX core status variables.", "system,reporting"),
        ("Reload", "Send a reload event.", "system,config"),
        ("GetConfig", "Retrieve configuration.", "system,config"),
        ("CoreShowChannels", "List currently active channels.", "system,reporting"),
        ("ShowDialPlan", "Show dialplan contexts and extensions", "config,reporting"),
        ("QueueStatus", "Show queue status.", ""),
        ("QueueSummary", "Show queue summary.", ""),
        ("QueueAdd", "Add interface to queue.", "agent"),
        ("QueueRemove", "Remove interface from queue.", "agent"),
        ("QueuePause", "Makes a queue member temporarily unavailable.", "agent"),
        ("QueuePenalty", "Set the penalty for a queue member.", "agent"),
        ("MixMonitor", "Record a call and mix the audio during the recording.  Use of StopMixMonitor is "
                       "required to guarantee the audio file is available for processing during dialplan "
                       "execution.", "system"),
        ("StopMixMonitor", "Stop recording a call through MixMonitor, and free the recording's file handle.",
         "system,call"),
    ]}
# manager.c perms[] order (authority_to_str lists classes in this order)
CLASSES = ("system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf", "reporting",
           "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security", "message")


def perm_classes(spec: str) -> frozenset[str]:
    """manager.conf ``read``/``write`` value -> the classes it grants (``all`` = every one)."""
    got = {c.strip().lower() for c in (spec or "").split(",") if c.strip()}
    if "all" in got:
        return frozenset(CLASSES)
    return frozenset(got & set(CLASSES))


def authority_to_str(classes: frozenset[str]) -> str:
    """manager.c: the classes in perms[] order, then ``all`` (any bit set matches INT_MAX)."""
    return ",".join([*(c for c in CLASSES if c in classes), "all"]) if classes else "<none>"

# Actions registered by loadable modules (app_queue, app_mixmonitor), not by manager.c:
# while Asterisk boots (ast_fully_booted false) they are "Invalid/unknown command".
MODULE_ACTIONS = frozenset({"queuestatus", "queuesummary", "queueadd", "queueremove", "queuepause",
                            "queuepenalty", "mixmonitor", "stopmixmonitor"})


def _tv(t: float) -> str:
    d = dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("1", "true", "yes", "on", "y", "t")


def _hms(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class AmiSession(asyncio.Protocol):
    def __init__(self, server: "AmiServer"):
        self.server = server
        self.pbx = server.pbx
        self.parser = Parser()
        self.transport: asyncio.Transport | None = None
        self.authenticated = False
        self.events_on = True
        self.event_classes: set[str] | None = None
        self.closing = False
        self.bytes_sent = 0
        self.session_id = "0x%012x" % (0x7F0790000000 + server.next_session_id())
        self.local = self.remote = ""
        self.connected_at = self.pbx.now()

    # transport -----------------------------------------------------------
    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport
        sock = transport.get_extra_info("sockname") or ("127.0.0.1", 0)
        peer = transport.get_extra_info("peername") or ("127.0.0.1", 0)
        self.local = f"IPV4/TCP/{sock[0]}/{sock[1]}"
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.server.sessions.add(self)
        self.write_raw(BANNER)

    def connection_lost(self, exc):  # type: ignore[override]
        self.server.sessions.discard(self)
        self.closing = True

    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        try:
            msgs = self.parser.feed(data)
        except ProtocolError as exc:
            log.warning("AMI client sent garbage: %s", exc)
            self.close()
            return
        for msg in msgs:
            if self.closing:
                return
            try:
                self.handle(msg)
            except Exception:  # never let one bad action kill the server
                log.exception("simulated AMI action failed")
                self.respond(msg, "Error", [("Message", "Internal error")])

    def write_raw(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)
            self.bytes_sent += len(data)
            self.server.total_bytes += len(data)

    def send(self, headers: list[tuple[str, str]]) -> None:
        self.write_raw(encode(headers))

    def close(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.close()

    def on_event(self, headers: list[tuple[str, str]]) -> None:
        if not (self.authenticated and self.events_on):
            return
        priv = set(headers[1][1].split(",")) if len(headers) > 1 and headers[1][0] == "Privilege" else set()
        priv.discard("all")
        if priv and not (priv & self.server.read):  # manager.conf read classes
            return
        if self.event_classes is not None and not (priv & self.event_classes):
            return
        self.send(headers)

    def set_events(self, value: str | None) -> None:
        """``on``/``off`` or a class list (``call,agent``) like manager.conf's read classes."""
        v = (value or "on").strip().lower()
        self.event_classes = None
        if v in ("off", "no", "false", "0"):
            self.events_on = False
        elif v in ("on", "yes", "true", "1", "all"):
            self.events_on = True
        else:
            self.events_on = True
            self.event_classes = {c.strip() for c in v.split(",") if c.strip()} | {"system"}

    # responses -------------------------------------------------------------
    def respond(self, msg: Message, response: str, fields: list[tuple[str, str]] = ()) -> None:
        out = [("Response", response)]
        if msg.action_id is not None:
            out.append(("ActionID", msg.action_id))
        self.send(out + list(fields))

    def error(self, msg: Message, text: str) -> None:
        self.respond(msg, "Error", [("Message", text)])

    def ok(self, msg: Message, text: str | None = None) -> None:
        self.respond(msg, "Success", [("Message", text)] if text is not None else [])

    def list_start(self, msg: Message, text: str) -> None:
        self.respond(msg, "Success", [("EventList", "start"), ("Message", text)])

    def list_item(self, msg: Message, event: str, fields: list[tuple[str, str]], aid_first: bool = False) -> None:
        aid = [("ActionID", msg.action_id)] if msg.action_id is not None else []
        if aid_first:
            self.send([("Event", event), *aid, *fields])
        else:
            self.send([("Event", event), *fields, *aid])

    def list_complete(self, msg: Message, event: str, n: int) -> None:
        aid = [("ActionID", msg.action_id)] if msg.action_id is not None else []
        self.send([("Event", event), *aid, ("EventList", "Complete"), ("ListItems", str(n))])

    # dispatch ----------------------------------------------------------------
    def handle(self, msg: Message) -> None:
        action = (msg.get("Action") or "").strip()
        key = action.lower()
        if not self.authenticated and key not in ("login", "logoff", "challenge"):
            self.error(msg, "Permission denied")
            return
        fn = getattr(self, "a_" + key.replace("-", "_"), None) if key else None
        if fn is not None and not self.pbx.fully_booted and key in MODULE_ACTIONS:
            fn = None  # manager.c is up, the module that registers it is not loaded yet
        if fn is None:
            if not action:
                self.error(msg, "Missing action in request")
                return
            self.error(msg, f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.")
            self.send([("Event", "RequestBadFormat"), ("Privilege", "security,all"),
                       ("EventTV", _tv(self.pbx.now())), ("Severity", "Error"), ("Service", "AMI"),
                       ("EventVersion", "1"), ("SessionID", self.session_id), ("LocalAddress", self.local),
                       ("RemoteAddress", self.remote), ("RequestType", f"Action: {action}"),
                       ("SessionTV", _tv(self.connected_at)), ("AccountID", self.server.username)])
            return
        needs = ACTIONS.get(self._canonical(key), ("", frozenset()))[1]
        if needs and not (needs & self.server.write):  # manager.c: writeperm & authority
            self.error(msg, "Permission denied")
            return
        fn(msg)

    @staticmethod
    def _canonical(key: str) -> str:
        return next((n for n in ACTIONS if n.lower() == key), key)

    # session actions -----------------------------------------------------------
    def a_login(self, msg: Message) -> None:
        if self.authenticated:
            self.ok(msg, "Already authenticated")
            return
        if msg.get("Username") == self.server.username and msg.get("Secret") == self.server.secret:
            self.authenticated = True
            self.set_events(msg.get("Events"))
            self.ok(msg, "Authentication accepted")
            if self.pbx.fully_booted:  # action_login: only once ast_fully_booted
                up = str(int(self.pbx.now() - self.pbx.started_at))
                rl = str(int(self.pbx.now() - self.pbx.reloaded_at))
                self.on_event([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", up),
                               ("LastReload", rl), ("Status", "Fully Booted")])
            self.on_event([("Event", "SuccessfulAuth"), ("Privilege", "security,all"),
                           ("EventTV", _tv(self.pbx.now())), ("Severity", "Informational"), ("Service", "AMI"),
                           ("EventVersion", "1"), ("AccountID", self.server.username),
                           ("SessionID", self.session_id), ("LocalAddress", self.local),
                           ("RemoteAddress", self.remote), ("UsingPassword", "0"),
                           ("SessionTV", _tv(self.connected_at))])
            return

        def fail() -> None:
            self.error(msg, "Authentication failed")
            self.close()

        self.pbx.timers.call_later(1.0, fail)

    def a_logoff(self, msg: Message) -> None:
        self.respond(msg, "Goodbye", [("Message", "Thanks for all the fish.")])
        self.close()

    def a_ping(self, msg: Message) -> None:
        self.respond(msg, "Success", [("Ping", "Pong"), ("Timestamp", f"{self.pbx.now():.6f}")])

    def a_events(self, msg: Message) -> None:
        self.set_events(msg.get("EventMask") or "off")
        self.respond(msg, "Success", [("Events", "On" if self.events_on else "Off")])

    def a_listcommands(self, msg: Message) -> None:
        """``Name: synopsis (Priv: classes)`` for each action this user may send (manager.c)."""
        mine = {n[2:] for n in dir(self) if n.startswith("a_")}
        rows = [(name, f"{syn}  (Priv: {authority_to_str(needs)})") for name, (syn, needs) in ACTIONS.items()
                if name.lower() in mine and (not needs or needs & self.server.write)]
        self.respond(msg, "Success", rows)

    def a_showdialplan(self, msg: Message) -> None:
        """pbx.c manager_show_dialplan: one ``ListDialplan`` per priority; unknown context: error."""
        context = msg.get("Context") or ""
        exten = msg.get("Extension") or ""
        rows = [r for r in self.pbx.dialplan_listing() if not context or r[0] == context]
        if context and not rows:
            self.error(msg, f"Did not find context {context}")
            return
        if exten:
            rows = [r for r in rows if r[1] == exten]
            if not rows:
                self.error(msg, f"Did not find extension {exten}@{context}" if context
                           else f"Did not find extension {exten} in any context")
                return
        self.list_start(msg, "DialPlan list will follow")
        aid = [("ActionID", msg.action_id)] if msg.action_id is not None else []
        for ctx, ext, prio, app, data in rows:
            self.send([("Event", "ListDialplan"), *aid, ("Context", ctx), ("Extension", ext),
                       ("Priority", str(prio)), ("Application", app), ("AppData", data),
                       ("Registrar", "pbx_config")])
        exts = {(r[0], r[1]) for r in rows}
        self.send([("Event", "ShowDialPlanComplete"), *aid, ("EventList", "Complete"),
                   ("ListItems", str(len(rows))), ("ListExtensions", str(len(exts))),
                   ("ListPriorities", str(len(rows))), ("ListContexts", str(len({r[0] for r in rows})))])

    # channel actions -----------------------------------------------------------
    def a_originate(self, msg: Message) -> None:
        channel = msg.get("Channel")
        if not channel:
            self.error(msg, "Channel not specified")
            return
        variables: dict[str, str] = {}
        for v in msg.getall("Variable"):
            for part in v.split(","):
                k, sep, val = part.partition("=")
                if sep:
                    variables[k.strip()] = val
        try:
            timeout = int(msg.get("Timeout") or 30000)
            priority = int(msg.get("Priority") or 1)
        except ValueError:
            self.error(msg, "Invalid timeout or priority")
            return
        is_async = _truthy(msg.get("Async"))
        app = msg.get("Application")
        context = msg.get("Context")
        exten = msg.get("Exten")
        if not app and not (context or exten):
            context, exten = context or "default", exten or "s"

        def on_result(response: str, reason: int, one: Any) -> None:
            if not is_async and not self.closing:
                if response == "Success":
                    self.ok(msg, "Originate successfully queued")
                else:
                    self.error(msg, "Originate failed")

        self.pbx.originate(channel, context=context, exten=exten, priority=priority, application=app,
                           data=msg.get("Data") or "", callerid=msg.get("CallerID"), variables=variables,
                           timeout_ms=timeout, action_id=msg.action_id if is_async else None,
                           on_result=on_result, emit_response=is_async,
                           respond_first=(lambda: self.ok(msg, "Originate successfully queued")) if is_async else None)

    def a_hangup(self, msg: Message) -> None:
        name = msg.get("Channel") or ""
        try:
            cause = int(msg.get("Cause") or 16)
        except ValueError:
            cause = 16
        if len(name) > 2 and name.startswith("/") and name.endswith("/"):
            try:
                rx = re.compile(name[1:-1])
            except re.error:
                self.error(msg, "Invalid regex")
                return
            matched = [c for c in list(self.pbx.channels.values()) if rx.search(c.name) and not c.hung_up]
            self.list_start(msg, "Channels hung up will follow")
            for c in matched:
                self.list_item(msg, "ChannelHungup", [("Channel", c.name)])
            self.list_complete(msg, "ChannelsHungupListComplete", len(matched))
            for c in matched:
                self.pbx.hangup(c, cause, by="ami-regex")
            return
        ch = self.pbx.find_channel(name)
        if ch is None:
            self.error(msg, "No such channel")
            return
        self.ok(msg, "Channel Hungup")
        self.pbx.hangup(ch, cause)

    def a_redirect(self, msg: Message) -> None:
        ch = self.pbx.find_channel(msg.get("Channel") or "")
        if ch is None:
            self.error(msg, f"Channel does not exist: {msg.get('Channel') or ''}")
            return
        try:
            prio = int(msg.get("Priority") or 1)
        except ValueError:
            self.error(msg, "Invalid priority")
            return
        context, exten = msg.get("Context") or ch.context, msg.get("Exten") or "s"
        if not self.pbx.has_context(context):
            self.error(msg, "Redirect failed")
            return
        self.ok(msg, "Redirect successful")
        self.pbx.redirect(ch, context, exten, prio)

    def _variable_target(self, msg: Message):
        """(variable, channel or None for a global), or None after answering the error."""
        var = msg.get("Variable")
        if not var:
            self.error(msg, "No variable specified")
            return None
        chname = msg.get("Channel")
        ch = None
        if chname:
            ch = self.pbx.find_channel(chname)
            if ch is None:
                self.error(msg, "No such channel")
                return None
        return var, ch

    def a_getvar(self, msg: Message) -> None:
        target = self._variable_target(msg)
        if target is None:
            return
        var, ch = target
        self.respond(msg, "Success", [("Variable", var), ("Value", self.pbx.getvar(ch, var))])

    def a_setvar(self, msg: Message) -> None:
        target = self._variable_target(msg)
        if target is None:
            return
        var, ch = target
        self.ok(msg, "Variable Set")
        self.pbx.setvar(ch, var, msg.get("Value") or "")

    def a_mixmonitor(self, msg: Message) -> None:
        ch = self.pbx.find_channel(msg.get("Channel") or "")
        if ch is None:
            self.error(msg, "No such channel")
            return
        path = msg.get("File") or f"{ch.uniqueid}.wav"
        self.respond(msg, "Success")
        self.pbx.mixmonitor_start(ch, path, msg.get("Options") or "")

    def a_stopmixmonitor(self, msg: Message) -> None:
        ch = self.pbx.find_channel(msg.get("Channel") or "")
        if ch is None:
            self.error(msg, "No such channel")
            return
        self.respond(msg, "Success")
        self.pbx.mixmonitor_stop(ch)

    def a_coreshowchannels(self, msg: Message) -> None:
        self.list_start(msg, "Channels will follow")
        chans = sorted(self.pbx.channels.values(), key=lambda c: -c.created)
        now = self.pbx.now()
        for c in chans:
            bridge = c.bridge["id"] if c.bridge else ""
            self.list_item(msg, "CoreShowChannel", [*c.snapshot(), ("Application", c.app),
                                                    ("ApplicationData", c.appdata),
                                                    ("Duration", _hms(now - c.created)), ("BridgeId", bridge)],
                           aid_first=True)
        self.list_complete(msg, "CoreShowChannelsComplete", len(chans))

    # queue actions ---------------------------------------------------------------
    def a_queuestatus(self, msg: Message) -> None:
        qname = msg.get("Queue")
        member_filter = msg.get("Member")
        self.list_start(msg, "Queue status will follow")
        n = 0
        now = self.pbx.now()
        for q in self.pbx.queues.values():
            if qname and q.name != qname:
                continue
            self.list_item(msg, "QueueParams", q.params_fields())
            n += 1
            for m in q.members:
                if member_filter and m.interface != member_filter:
                    continue
                self.list_item(msg, "QueueMember", m.list_fields(q.name))
                n += 1
            for i, e in enumerate(q.entries):
                c = e.caller
                self.list_item(msg, "QueueEntry", [
                    ("Queue", q.name), ("Position", str(i + 1)), ("Channel", c.name), ("Uniqueid", c.uniqueid),
                    ("CallerIDNum", c.cid_num), ("CallerIDName", c.cid_name), ("ConnectedLineNum", c.cl_num),
                    ("ConnectedLineName", c.cl_name), ("Wait", str(int(now) - int(e.joined))),
                    ("Priority", str(e.priority))])
                n += 1
        self.list_complete(msg, "QueueStatusComplete", n)

    def a_queuesummary(self, msg: Message) -> None:
        qname = msg.get("Queue")
        self.list_start(msg, "Queue summary will follow")
        n = 0
        now = self.pbx.now()
        for q in self.pbx.queues.values():
            if qname and q.name != qname:
                continue
            avail = sum(1 for m in q.members if not m.paused and not m.busy)
            longest = max((int(now) - int(e.joined) for e in q.entries), default=0)
            self.list_item(msg, "QueueSummary", [
                ("Queue", q.name), ("LoggedIn", str(len(q.members))), ("Available", str(avail)),
                ("Callers", str(len(q.entries))), ("HoldTime", str(q.holdtime)), ("TalkTime", str(q.talktime)),
                ("LongestHoldTime", str(longest))])
            n += 1
        self.list_complete(msg, "QueueSummaryComplete", n)

    def a_queueadd(self, msg: Message) -> None:
        q = self.pbx.queues.get(msg.get("Queue") or "")
        iface = msg.get("Interface") or ""
        if not iface:
            self.error(msg, "'Interface' not specified.")
            return
        if q is None:
            self.error(msg, "Unable to add interface to queue: No such queue")
            return
        if q.member(iface) is not None:
            self.error(msg, "Unable to add interface: Already there")
            return
        from .queues import Member

        try:
            penalty = int(msg.get("Penalty") or 0)
        except ValueError:
            penalty = 0
        now = int(self.pbx.now())
        m = Member(iface, msg.get("MemberName") or iface, "dynamic", penalty=penalty, login_time=now,
                   paused=_truthy(msg.get("Paused")), reason=msg.get("Reason") or "")
        if m.paused:
            m.last_pause = now
        q.members.append(m)
        if iface.startswith("Local/") and "@sim-agent" in iface:
            self.pbx.ensure_agent(m.agent_id)
        self.ok(msg, "Added interface to queue")
        self.pbx.dsc(f"Queue:{q.name}_pause_{iface}", "INUSE" if m.paused else "NOT_INUSE")
        self.pbx.ev("QueueMemberAdded", m.event_fields(q.name), "agent,all")
        self.pbx.queue_log.write(now, "NONE", q.name, iface, "ADDMEMBER", "")
        self.pbx._wake_queue(q)

    def a_queueremove(self, msg: Message) -> None:
        q = self.pbx.queues.get(msg.get("Queue") or "")
        iface = msg.get("Interface") or ""
        if q is None:
            self.error(msg, "Unable to remove interface from queue: No such queue")
            return
        if q.member(iface) is None:
            self.error(msg, "Unable to remove interface: Not there")
            return
        self.ok(msg, "Removed interface from queue")
        self.pbx.remove_member(q.name, iface)

    def a_queuepause(self, msg: Message) -> None:
        iface = msg.get("Interface") or ""
        qname = msg.get("Queue")
        if not iface or not msg.get("Paused"):  # manager_pause_queue_member
            self.error(msg, "Need 'Interface' and 'Paused' parameters.")
            return
        paused = _truthy(msg.get("Paused"))
        if not any(q.member(iface) for q in self.pbx.queues.values() if not qname or q.name == qname):
            self.error(msg, "Interface not found")
            return
        self.ok(msg, "Interface paused successfully" if paused else "Interface unpaused successfully")
        self.pbx.pause_member(iface, paused, msg.get("Reason") or "", qname)

    def a_queuepenalty(self, msg: Message) -> None:
        iface = msg.get("Interface") or ""
        qname = msg.get("Queue")
        try:
            penalty = int(msg.get("Penalty") or "")
        except ValueError:
            self.error(msg, "Invalid penalty")
            return
        hits = [(q, q.member(iface)) for q in self.pbx.queues.values() if (not qname or q.name == qname)]
        hits = [(q, m) for q, m in hits if m is not None]
        if not hits:
            self.error(msg, "Invalid interface, queuename or penalty")
            return
        self.ok(msg, "Interface penalty set successfully")
        for q, m in hits:
            m.penalty = penalty
            self.pbx.ev("QueueMemberPenalty", m.event_fields(q.name), "agent,all")
            self.pbx.queue_log.write(self.pbx.now(), "NONE", q.name, m.name, "PENALTY", penalty)

    # system actions ------------------------------------------------------------------
    def a_command(self, msg: Message) -> None:
        cmd = (msg.get("Command") or "").strip()
        out: list[str]
        if cmd == "core show version":
            out = [VERSION_LINE]
        elif cmd.startswith("queue show"):
            out = self._queue_show(cmd[len("queue show"):].strip())
        elif cmd == "core show channels":
            out = [f"{len(self.pbx.channels)} active channels"]
        else:
            out = [f"No such command '{cmd}' (type 'core show help {cmd}' for other possible commands)"]
        self.respond(msg, "Success", [("Message", "Command output follows"), *[("Output", o) for o in out]])

    def _queue_show(self, name: str) -> list[str]:
        out: list[str] = []
        now = self.pbx.now()
        for q in self.pbx.queues.values():
            if name and q.name != name:
                continue
            out.append(f"{q.name} has {len(q.entries)} calls (max unlimited) in '{q.strategy}' strategy "
                       f"({q.holdtime}s holdtime, {q.talktime}s talktime), W:0, C:{q.completed}, "
                       f"A:{q.abandoned}, SL:{q.sl_perf}%, SL2:{q.sl_perf2}% within {q.servicelevel}s")
            out.append("   Members: ")
            for m in q.members:
                state = "In use" if m.busy else "Not in use"
                paused = " (paused)" if m.paused else ""
                taken = (f"has taken {m.calls_taken} calls (last was {int(now) - m.last_call} secs ago)"
                         if m.calls_taken else "has taken no calls yet")
                out.append(f"      {m.name} ({m.interface}) (ringinuse disabled){paused} ({state}) {taken} "
                           f"(login was {int(now) - m.login_time} secs ago)")
            if q.entries:
                out.append("   Callers: ")
                for i, e in enumerate(q.entries):
                    out.append(f"      {i + 1}. {e.caller.name} (wait: {_hms(now - e.joined)[3:]}, prio: {e.priority})")
            else:
                out.append("   No Callers")
            out.append("")
        out.append("")
        return out

    def a_getconfig(self, msg: Message) -> None:
        """manager.c ``action_getconfig``: ``Category-NNNNNN`` / ``Line-NNNNNN-MMMMMM: k=v``
        after ``Response: Success`` (no Message); the simulator's only file is queues.conf.
        Refusals as Asterisk 22.10.1 answered them: an absolute path (outside the config
        directory) "File requires escalated privileges", any other unknown name (``../x``
        included: realpath fails) "Config file not found"."""
        fn = (msg.get("Filename") or "").strip()
        if not fn:
            self.error(msg, "Filename not specified")
            return
        if fn.startswith("/"):
            self.error(msg, "File requires escalated privileges")
            return
        if fn != "queues.conf":
            self.error(msg, "Config file not found")
            return
        wanted = msg.get("Category")
        fields: list[tuple[str, str]] = []
        n = 0
        for category, lines in self.pbx.queues_conf():
            if wanted and category != wanted:
                continue
            fields.append((f"Category-{n:06d}", category))
            fields += [(f"Line-{n:06d}-{i:06d}", f"{k}={v}") for i, (k, v) in enumerate(lines)]
            n += 1
        self.respond(msg, "Success", fields)

    def a_corestatus(self, msg: Message) -> None:
        s = dt.datetime.fromtimestamp(self.pbx.started_at, tz=dt.timezone.utc)
        r = dt.datetime.fromtimestamp(self.pbx.reloaded_at, tz=dt.timezone.utc)
        calls = len({c.linkedid for c in self.pbx.channels.values()})
        self.respond(msg, "Success", [
            ("CoreStartupDate", s.strftime("%Y-%m-%d")), ("CoreStartupTime", s.strftime("%H:%M:%S")),
            ("CoreReloadDate", r.strftime("%Y-%m-%d")), ("CoreReloadTime", r.strftime("%H:%M:%S")),
            ("CoreCurrentCalls", str(calls)), ("CoreProcessedCalls", str(self.pbx.processed_calls))])

    def a_coresettings(self, msg: Message) -> None:
        self.respond(msg, "Success", [
            ("AMIversion", "11.0.0"), ("AsteriskVersion", VERSION), ("SystemName", ""), ("CoreMaxCalls", "0"),
            ("CoreMaxLoadAvg", "0.000000"), ("CoreRunUser", self.pbx.config.run_user), ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", "0"), ("CoreRealTimeEnabled", "No"), ("CoreCDRenabled", "Yes"),
            ("CoreHTTPenabled", "No"), ("SoundsSearchCustomDir", "No")])

    def a_reload(self, msg: Message) -> None:
        module = msg.get("Module")
        self.pbx.reloaded_at = self.pbx.now()
        if module:
            self.ok(msg, "Module Reloaded")
            self.pbx.ev("Reload", [("Module", module), ("Status", "0")], "system,all")
        else:
            self.ok(msg, "Reload successful")


class AmiServer:
    def __init__(self, pbx: Any, username: str = "bridge", secret: str = "bridge-secret",
                 read: str = "all", write: str = "all"):
        self.pbx = pbx
        self.username, self.secret = username, secret
        self.read, self.write = perm_classes(read), perm_classes(write)
        self.sessions: set[AmiSession] = set()
        self._server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self._sid = 0
        self.total_bytes = 0  # every byte written to any session (tests wait for delivery)
        pbx.listeners.append(self._broadcast)

    def next_session_id(self) -> int:
        self._sid += 0x1230
        return self._sid

    def _broadcast(self, headers: list[tuple[str, str]]) -> None:
        for s in list(self.sessions):
            s.on_event(headers)

    @property
    def bytes_sent(self) -> int:
        return sum(s.bytes_sent for s in self.sessions)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: AmiSession(self), host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    def disconnect_all(self, shutdown_event: bool = False) -> None:
        """Drop every AMI connection (what a crashed/restarted Asterisk looks like)."""
        for s in list(self.sessions):
            if shutdown_event:
                s.on_event([("Event", "Shutdown"), ("Privilege", "system,all"), ("Shutdown", "Cleanly"),
                            ("Restart", "False")])
            s.close()

    async def stop(self) -> None:
        self.disconnect_all(shutdown_event=True)
        if self._broadcast in self.pbx.listeners:
            self.pbx.listeners.remove(self._broadcast)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
