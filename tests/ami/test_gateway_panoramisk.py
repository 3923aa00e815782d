"""panoramisk 1.4 is in the gateway's data path (protocol, messages, actions), pitfalls fixed."""
from __future__ import annotations

import asyncio

import pytest
from panoramisk import utils as pano_utils
from panoramisk.actions import Action as PanoAction
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message as PanoMessage

from callcenter.ami.codec import Message, Parser
from callcenter.ami.gateway import AmiMessage, AmiNotConnected
from callcenter.ami.tracefile import read_ami, traces_dir

from .test_gateway import Rig, quiet_trace, until


def spy(monkeypatch, cls, name):
    """Count calls of ``cls.name`` (the real method still runs)."""
    calls = []
    real = getattr(cls, name)

    def wrapper(self, *a, **kw):
        calls.append(a)
        return real(self, *a, **kw)

    monkeypatch.setattr(cls, name, wrapper)
    return calls


async def test_events_go_through_panoramisk_protocol(monkeypatch):
    handled = spy(monkeypatch, AMIProtocol, "handle_message")
    async with Rig() as r:
        await r.ready()
        proto = r.gw._proto
        assert isinstance(proto, AMIProtocol) and proto.version == "11.0.0"
        assert all(isinstance(m, PanoMessage) for (m,) in handled)
        # every event subscribers saw passed through panoramisk's handle_message
        assert len(handled) >= len(r.events) > 100
        assert [m for m, _ in r.events] == [m.raw for (m,) in handled if "event" in m][-len(r.events):]
        assert {m.event for m, _ in r.events} >= {"QueueCallerJoin", "AgentConnect", "Hangup"}


async def test_event_list_completed_by_panoramisk_action(monkeypatch):
    qs = read_ami(traces_dir() / "08-queue-status.ami")
    listing = [e.message.headers for e in qs.received
               if e.message is not None and e.message.get("ActionID") == "qs-all"]
    added = spy(monkeypatch, PanoAction, "add_message")
    sent = spy(monkeypatch, AMIProtocol, "send")

    def responder(action):
        return listing if action.get("Action") == "QueueStatus" else None

    async with Rig(quiet_trace(), responder=responder) as r:
        await r.ready()
        before = len(added)
        got = await r.gw.action({"Action": "QueueStatus"})
        assert len(got) == len(listing) == len(added) - before
        assert isinstance(sent[-1][0], PanoAction) and sent[-1][0]["Action"] == "QueueStatus"
        assert all(isinstance(m, Message) for m in got)
        assert [m.headers[0] for m in got[1:]] == [h[0] for h in listing[1:]]
        assert not r.gw._proto.responses and not r.gw._pending


async def test_queueadd_and_originate_answers_are_single_messages():
    """panoramisk's own list guess would hang on these (QueueAdd) or swallow the outcome event."""
    def responder(action):
        name = action.get("Action")
        if name == "QueueAdd":
            return [[("Response", "Success"), ("Message", "Added interface to queue")]]
        if name == "Originate":
            return [[("Response", "Success"), ("Message", "Originate successfully queued")],
                    [("Event", "OriginateResponse"), ("Response", "Success"),
                     ("Channel", "Local/answer@sim-patient-00000001;1"), ("Reason", "4")]]
        return None

    async with Rig(quiet_trace(), responder=responder) as r:
        await r.ready()
        resp = await r.gw.action({"Action": "QueueAdd", "Queue": "q", "Interface": "Local/1@a"},
                                 timeout=5)
        assert resp["Message"] == "Added interface to queue"
        resp = await r.gw.originate("dial-7", "Local/answer@sim-patient", context="survey", exten="s")
        assert resp["Message"] == "Originate successfully queued"
        await until(lambda: any(m.event == "OriginateResponse" for m, _ in r.events))
        out = next(m for m, _ in r.events if m.event == "OriginateResponse")
        assert out["ActionID"] == "dial-7" and out["Reason"] == "4"


async def test_nothing_is_queued_for_resending_after_a_drop():
    """PITFALLS 2 at panoramisk's level: its close() files nothing in awaiting_actions."""
    async with Rig(quiet_trace(), responder=lambda a: [] if a.get("Action") != "Ping" else None) as r:
        await r.ready()
        proto = r.gw._proto
        assert "originate" in proto.factory.forgetable_actions
        assert "anything" in proto.factory.forgetable_actions
        futs = [asyncio.ensure_future(r.gw.originate("dial-9", "Local/x@y", context="c", exten="s")),
                asyncio.ensure_future(r.gw.action({"Action": "Getvar", "Variable": "X"}))]
        await until(lambda: len(r.server.actions) >= 3)
        assert len(proto.responses) == 2
        r.server.drop_connections()
        for f in futs:
            with pytest.raises(AmiNotConnected):
                await f
        assert proto.closed and not proto.responses and not proto.factory.awaiting_actions
        r.clock.advance(8)
        await until(lambda: r.gw.connected and r.server.connections == 2)
        await r.gw.action({"Action": "Ping"})
        assert len(r.actions("Originate")) == 1 and len(r.actions("Getvar")) == 1


async def test_shutdown_event_ends_the_link():
    """panoramisk's Shutdown handling: the link ends on the event, even if the socket lingers."""
    lost = []
    async with Rig("12-reload-and-shutdown.ami") as r:  # the server does NOT close
        r.gw.on_disconnect(lost.append)
        r.gw.subscribe(lambda m, t: m.event == "Shutdown" and lost.append(m.event), ("Shutdown",))
        await r.gw.wait_connected(5)
        await until(lambda: len(lost) == 2)
        assert isinstance(lost[0], float) and lost[1] == "Shutdown"
        assert not r.gw.connected and r.gw._proto.closed
        r.clock.advance(8)
        await until(lambda: r.gw.connected and r.server.connections == 2)
        pong = await r.gw.action({"Action": "Ping"})
        assert pong["Ping"] == "Pong"


async def test_actions_keep_crlf_even_after_panoramisk_testing_changed_eol(monkeypatch):
    """PITFALLS 10: panoramisk.testing sets utils.EOL to "\\n" for the whole process."""
    monkeypatch.setattr(pano_utils, "EOL", "\n")
    writes = []
    async with Rig(quiet_trace()) as r:
        await r.ready()
        real = r.gw._proto.transport.write
        r.gw._proto.transport.write = lambda data: (writes.append(data), real(data))[1]
        pong = await r.gw.action({"Action": "Ping"})
        assert pong["Ping"] == "Pong" and pano_utils.EOL == "\r\n"
        assert writes and writes[-1].endswith(b"\r\n\r\n") and b"Action: Ping\r\n" in writes[-1]


@pytest.mark.parametrize("trace", ["01-inbound-answered.ami", "08-queue-status.ami",
                                   "10-misc-actions.ami", "06-mixmonitor.ami"])
def test_amimessage_maps_like_panoramisk_from_line(trace):
    """Our fast constructor builds what panoramisk's own parser builds for the same message."""
    tr = read_ami(traces_dir() / trace)
    n = 0
    for e in tr.received:
        if e.message is None:
            continue
        # (panoramisk's data_received also strip()s the block, losing an empty last
        # header such as "AppData: "; from_line on the block itself is the mapping)
        want = PanoMessage.from_line(e.raw.decode().rstrip("\r\n"))
        if want is None or want.response in ("Follows", "Fail"):
            continue
        (mine,) = Parser().feed(e.raw)
        got = AmiMessage(mine)
        assert dict(got.items()) == dict(want.items()), e.raw
        assert (got.id, got.action_id, got.event, got.success) == \
            (want.id, want.action_id, want.event, want.success)
        n += 1
    assert n > 10


def _pano(raw: Message) -> PanoMessage:
    """The panoramisk Message panoramisk itself would build from these headers."""
    m = PanoMessage({})
    for k, v in raw.headers:
        if k:
            lk = k.lower()
            if lk in m._store:
                prev = m._store[lk][1]
                m._store[lk] = (k, (prev if isinstance(prev, list) else [prev]) + [v])
            else:
                m._store[lk] = (k, v)
    m._store["content"] = ("content", "\n".join(v for k, v in raw.headers if not k))
    return m


def test_events_reach_panoramisk_without_a_copy_of_their_headers():
    """What ``handle_message`` reads of an event (id, action_id, 'event') comes from the parsed
    headers; the panoramisk mapping is built only when read, and then equals panoramisk's."""
    msgs = [e.message for tr in ("01-inbound-answered.ami", "08-queue-status.ami")
            for e in read_ami(traces_dir() / tr).received if e.message is not None]
    msgs.append(Message([("Event", "UserEvent"), ("ActionID", "a"), ("actionid", "b")]))  # repeated id
    msgs.append(Message([("Response", "Follows"), ("", "line 1"), ("CommandID", "c"), ("ActionID", "d")]))
    assert len(msgs) > 150
    for raw in msgs:
        lazy, want = AmiMessage(raw), _pano(raw)
        assert (lazy.id, lazy.action_id, "event" in lazy) == (want.id, want.action_id, "event" in want)
        if "event" in want:
            assert lazy["event"] == want["event"]
        if raw.headers[0][0] == "Event" and len(raw.getall("ActionID")) <= 1:
            assert lazy.__dict__["_built"] is None, raw  # nothing copied for an event
        assert dict(lazy.items()) == dict(want.items()) and lazy.get("Uniqueid") == want.get("Uniqueid")


def test_parser_marks_messages_without_an_action_id():
    p = Parser()
    a, b, c = p.feed(b"Event: Newexten\r\nUniqueid: 1.1\r\n\r\n"
                     b"Event: QueueEntry\r\nactionID: qs-1\r\n\r\n"
                     b"Response: Success\r\nCommandID: c-1\r\n\r\n")
    assert (a.has_id, b.has_id, c.has_id) == (False, True, True)
    assert AmiMessage(a).id is None and AmiMessage(b).id == "qs-1" and AmiMessage(c).id == "c-1"
    assert Message([("ActionID", "x")]).has_id is None and AmiMessage(Message([("ActionID", "x")])).id == "x"
