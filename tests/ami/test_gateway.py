"""The AMI gateway over real TCP against the replay server: every PITFALL it must fix."""
from __future__ import annotations

import asyncio
import random

import pytest
from twisted.internet import task

from callcenter.ami.codec import Message, ProtocolError
from callcenter.ami.gateway import AmiError, AmiGateway, AmiNotConnected, AmiTimeout
from callcenter.ami.replay import ReplayServer, utf8_cuts
from callcenter.ami.tracefile import read_ami, traces_dir
from tests.support.ami import record_parsed


async def until(cond, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.001)


async def retry_scheduled(gw) -> None:
    """Until the supervisor waits out its backoff: the disconnect is seen at the loss, the
    retry scheduled a moment later, and a test clock advanced before that leaves it unfired."""
    await until(lambda: gw.reconnect_at is not None)


def quiet_trace():
    """Trace 12 up to (without) its Shutdown event: a short, idle Asterisk that stays up.

    (The Shutdown event ends the link by itself: ``test_shutdown_event_ends_the_link``.)
    """
    tr = read_ami(traces_dir() / "12-reload-and-shutdown.ami")
    cut = next(i for i, e in enumerate(tr.entries)
               if e.message is not None and e.message.event == "Shutdown")
    tr.entries = tr.entries[:cut]
    return tr


class Rig:
    def __init__(self, trace="01-inbound-answered.ami", *, gw_kw=None, reads="*", **server_kw):
        self.clock = task.Clock()
        self.clock.advance(1_795_346_000)
        if isinstance(trace, str):
            trace = traces_dir() / trace
        self.server = ReplayServer(trace, clock=self.clock, **server_kw)
        self.gw_kw = {"ping_interval": 3600, "ping_timeout": 5, "reconnect_base_delay": 1,
                      "reconnect_max_delay": 8, "rng": random.Random(7), **(gw_kw or {})}
        self.events: list[tuple[Message, float]] = []
        self.reads = reads  # what the test's subscriber declares ("*": the filter is off)

    async def __aenter__(self):
        await self.server.start()
        self.gw = AmiGateway("127.0.0.1", self.server.port, "bridge", "bridge-secret",
                             clock=self.clock, **self.gw_kw)
        self.server.lockstep(self.gw)
        self.gw.subscribe(lambda m, t: self.events.append((m, t)), self.reads)
        await self.gw.start()
        return self

    async def __aexit__(self, *exc):
        await self.gw.stop()
        await self.server.stop()

    async def ready(self):
        """Logged in and the whole recording streamed (the clock stops moving by itself)."""
        await self.gw.wait_connected(5)
        await asyncio.wait_for(self.server.finished.wait(), 20)
        await self.server.sync()

    def actions(self, name):
        return [a for a in self.server.actions if (a.get("Action") or "").lower() == name.lower()]


async def test_utf8_split_across_reads_arrives_intact():
    """PITFALLS 1: every multi-byte character is cut between two TCP reads."""
    async with Rig("01b-inbound-two-overlapping.ami", split_utf8=True) as r:
        await r.gw.wait_connected(5)
        await asyncio.wait_for(r.server.finished.wait(), 20)
        await r.server.sync()
        names = {m["CallerIDName"] for m, _ in r.events if m.event == "QueueCallerJoin"}
        assert names == {"王小明", "Wang Fang"}
        assert not any("\ufffd" in v for m, _ in r.events for _, v in m.headers)
        # the cuts really happened inside characters, in separate reads
        stream = read_ami(traces_dir() / "01b-inbound-two-overlapping.ami").stream()
        assert len(utf8_cuts(stream)) > 100 and r.gw.reads > len(r.events) + 100


def test_panoramisk_drops_the_same_split_characters():
    """The reason for our framing: panoramisk 1.4 loses the character split across reads."""
    from panoramisk.ami_protocol import AMIProtocol

    got = []

    class Factory:
        def dispatch(self, msg):
            got.append(msg)

    p = AMIProtocol()
    p.connection_made(None)
    p.factory, p.encoding = Factory(), "utf8"
    raw = "Event: QueueCallerJoin\r\nCallerIDName: 王小明\r\n\r\n".encode()
    cut = raw.index("王".encode()) + 1
    p.data_received(raw[:cut])
    p.data_received(raw[cut:])
    assert got[0]["CallerIDName"] != "王小明"


async def test_exception_in_subscriber_does_not_kill_the_connection():
    """PITFALLS 4."""
    async with Rig() as r:
        calls = []

        def bad(msg, t):
            calls.append(msg.event)
            raise RuntimeError("bug in a subscriber")

        r.gw.subscribe(bad, "*")
        await r.gw.wait_connected(5)
        await asyncio.wait_for(r.server.finished.wait(), 20)
        await r.server.sync()
        assert r.gw.connected and r.server.connections == 1
        assert r.gw.subscriber_errors == len(calls) > 100
        assert len(r.events) == len(calls)
        pong = await r.gw.action({"Action": "Ping"})
        assert pong["Ping"] == "Pong"


async def test_event_times_are_the_clock_at_arrival():
    async with Rig() as r:
        await r.gw.wait_connected(5)
        await asyncio.wait_for(r.server.finished.wait(), 20)
        await r.server.sync()
        t = {m.event: t for m, t in r.events if m.event in ("QueueCallerJoin", "AgentConnect")}
        assert t["AgentConnect"] - t["QueueCallerJoin"] == pytest.approx(6.416 - 3.410, abs=0.002)


async def test_half_open_link_detected_by_ping_deadline():
    """PITFALLS 5: Asterisk stops answering; the ping deadline notices and reconnects."""
    lost = []
    async with Rig(quiet_trace(), answer_pings=False,
                   gw_kw={"ping_interval": 10, "ping_timeout": 5}) as r:
        r.gw.on_disconnect(lost.append)
        await r.gw.wait_connected(5)
        await asyncio.wait_for(r.server.finished.wait(), 20)
        start = r.clock.seconds()
        r.clock.advance(10)
        await until(lambda: len(r.actions("Ping")) == 1)
        assert r.gw.connected
        r.clock.advance(4.9)
        await asyncio.sleep(0.01)
        assert r.gw.connected
        r.clock.advance(0.2)
        await until(lambda: not r.gw.connected)
        assert lost == [pytest.approx(start + 15.1)]
        await retry_scheduled(r.gw)
        r.clock.advance(8)  # past the (jittered) backoff
        await until(lambda: r.gw.connected and r.server.connections == 2)


async def test_ping_answered_keeps_the_link():
    async with Rig(quiet_trace(), gw_kw={"ping_interval": 10, "ping_timeout": 5}) as r:
        await r.ready()
        for n in range(1, 4):
            r.clock.advance(10)
            await until(lambda: len(r.actions("Ping")) == n)
            await until(lambda: not r.gw._pending)
        r.clock.advance(5)
        assert r.gw.connected and r.server.connections == 1


async def test_originate_is_sent_once_and_not_resent_after_reconnect():
    """PITFALLS 2 and 3: explicit Async, and a lost answer is never retried by the gateway."""
    def silent_originate(action):
        return [] if action.get("Action") == "Originate" else None

    async with Rig(quiet_trace(), responder=silent_originate) as r:
        await r.ready()
        fut = asyncio.ensure_future(r.gw.originate(
            "dial-42", "Local/answer@sim-patient", context="survey", exten="s", priority=1,
            caller_id='"City Hospital" <02100000000>', variables={"ATTEMPT_ID": "42"}))
        await until(lambda: len(r.actions("Originate")) == 1)
        r.server.drop_connections()
        with pytest.raises(AmiNotConnected):
            await fut
        await retry_scheduled(r.gw)
        r.clock.advance(8)
        await until(lambda: r.gw.connected and r.server.connections == 2)
        r.clock.advance(60)
        pong = await r.gw.action({"Action": "Ping"})
        assert pong["Ping"] == "Pong"
        sent = r.actions("Originate")
        assert len(sent) == 1
        assert sent[0]["Async"] == "true" and sent[0]["ActionID"] == "dial-42"
        assert sent[0].getall("Variable") == ["ATTEMPT_ID=42"]


async def test_action_timeout_on_the_injected_clock():
    async with Rig(quiet_trace(),
                   responder=lambda a: [] if a.get("Action") == "Getvar" else None) as r:
        await r.ready()
        fut = asyncio.ensure_future(r.gw.action({"Action": "Getvar", "Variable": "X"}, timeout=2))
        await until(lambda: len(r.actions("Getvar")) == 1)
        r.clock.advance(1.9)
        await asyncio.sleep(0.01)
        assert not fut.done()
        r.clock.advance(0.2)
        with pytest.raises(AmiTimeout):
            await fut
        assert r.gw.connected and not r.gw._pending


async def test_event_list_collected_and_errors_raised():
    qs = read_ami(traces_dir() / "08-queue-status.ami")
    listing = [e.message.headers for e in qs.received
               if e.message is not None and e.message.get("ActionID") == "qs-all"]

    def responder(action):
        if action.get("Action") == "QueueStatus":
            return listing
        if action.get("Action") == "NoSuchAction":
            return [[("Response", "Error"), ("Message", "Invalid/unknown command: NoSuchAction.")]]
        return None

    async with Rig(quiet_trace(), responder=responder) as r:
        await r.ready()
        got = await r.gw.action({"Action": "QueueStatus"})
        assert [m.event for m in got[1:]] == [m.get("Event") for m in map(Message, listing[1:])]
        assert got[0]["EventList"] == "start" and got[-1]["ListItems"] == "7"
        # list items went to the action, not to subscribers
        assert not any(m.event == "QueueEntry" for m, _ in r.events)
        with pytest.raises(AmiError) as err:
            await r.gw.action({"Action": "NoSuchAction"})
        assert "Invalid/unknown command" in str(err.value)
        assert err.value.response["Response"] == "Error"
        with pytest.raises(ProtocolError):
            await r.gw.action({"Action": "Setvar", "Value": "x\r\nAction: Originate"})


async def test_only_an_action_that_may_answer_with_a_list_makes_the_parser_look_for_ids(monkeypatch):
    """An undeclared event carrying an ActionID, in the read of an answer: while a list-capable
    action (QueueStatus) is in flight it is built (it is one of the list's items and reaches
    the action); while only a single-answer action (MixMonitor) is, it is left unbuilt."""
    from callcenter.ami import codec

    qs = read_ami(traces_dir() / "08-queue-status.ami")
    listing = [e.message.headers for e in qs.received
               if e.message is not None and e.message.get("ActionID") == "qs-all"]
    stray = [("Event", "Newstate"), ("Channel", "Local/1001@sim-agent-0001;1"), ("ActionID", "elsewhere-1")]

    def responder(action):
        if action.get("Action") == "QueueStatus":
            return listing
        if action.get("Action") == "MixMonitor":
            return [stray, [("Response", "Success"), ("ActionID", action.get("ActionID"))]]
        return None

    built = record_parsed(monkeypatch)
    async with Rig(quiet_trace(), responder=responder, reads=("Hangup",)) as r:
        await r.ready()
        got = await r.gw.action({"Action": "QueueStatus"})
        assert len(got) == len(listing) and got[-1]["ListItems"] == "7"  # every item built
        del built[:]
        await r.gw.action({"Action": "MixMonitor", "Channel": "Local/1001@sim-agent-0001;1",
                           "ActionID": "mm-1", "File": "/tmp/x.wav"})
        names = [m.event if isinstance(m, codec.Message) else m for m in built]
        assert "Newstate" not in names and None in names  # counted, never built
        assert not any(m.event == "Newstate" for m, _ in r.events)


def test_which_actions_may_answer_with_a_list():
    """Asterisk 22 answers these with one Response; a regex Hangup, QueueStatus, Status,
    CoreShowChannels and any name not known answer with a list (its items carry the action's
    ActionID: tests/fixtures/asterisk-traces/README.md)."""
    from callcenter.ami.gateway import _Action

    for name in ("MixMonitor", "mixmonitor", "Originate", "QueuePause", "Getvar", "Ping"):
        assert not _Action([("Action", name)]).lists, name
    for name in ("Hangup", "QueueStatus", "Status", "CoreShowChannels", "DBGet", "SomethingNew"):
        assert _Action([("Action", name)]).lists, name


async def test_not_connected_raises():
    gw = AmiGateway("127.0.0.1", 1, "u", "s", clock=task.Clock())
    with pytest.raises(AmiNotConnected):
        await gw.action({"Action": "Ping"})


def test_backoff_is_capped_exponential_with_injected_jitter():
    gw = AmiGateway("h", 1, "u", "s", clock=task.Clock(), reconnect_base_delay=0.5,
                    reconnect_max_delay=30, rng=random.Random(3))
    delays = [gw.backoff_delay(a) for a in range(12)]
    for a, d in enumerate(delays):
        cap = min(30, 0.5 * 2 ** a)
        assert cap / 2 <= d <= cap
    assert max(delays) <= 30 and delays[-1] >= 15
    again = AmiGateway("h", 1, "u", "s", clock=task.Clock(), reconnect_base_delay=0.5,
                       reconnect_max_delay=30, rng=random.Random(3))
    assert [again.backoff_delay(a) for a in range(12)] == delays


async def test_shutdown_then_reconnect_with_backoff():
    """Asterisk restarts (trace 12): the link closes, the gateway retries with growing delays."""
    lost = []
    async with Rig("12-reload-and-shutdown.ami", honour_close=True) as r:
        r.gw.on_disconnect(lost.append)
        await r.gw.wait_connected(5)
        await until(lambda: lost)
        assert any(m.event == "Shutdown" for m, _ in r.events)
        await retry_scheduled(r.gw)
        r.clock.advance(8)
        await until(lambda: r.gw.connected and r.server.connections == 2)


def test_from_config(config):
    from callcenter.ami.gateway import AmiGateway

    gw = AmiGateway.from_config(config.ami, clock=task.Clock())
    assert (gw.host, gw.port, gw.name) == ("127.0.0.1", 5038, "ami")
    assert gw.ping_timeout == config.ami.ping_timeout
