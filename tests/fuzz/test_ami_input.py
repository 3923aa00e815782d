"""Bad AMI input: the codec, the reducer and the gateway over real TCP.

Properties (hypothesis):
* the parser raises nothing but ``ProtocolError`` on arbitrary bytes, and the
  messages it returns do not depend on how the bytes were split across reads;
* after any garbage (under 1 MiB) and a message end, a well-formed message is
  returned intact (nothing that follows garbage is lost);
* encode -> parse round-trips any header list, split anywhere;
* the queue-call reducer never raises on events with the right names and junk values;
* the gateway fed garbage over TCP keeps delivering events: on the same connection,
  or after reconnecting when the garbage was not AMI at all (> 1 MiB without an end).
"""
from __future__ import annotations

import asyncio
import random

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor

from callcenter.ami.codec import MAX_MESSAGE_BYTES, Message, Parser, ProtocolError, encode
from callcenter.ami.gateway import AmiGateway
from callcenter.ami.interest import Interest, Routes
from callcenter.queuecalls import reducer as queue_reducer
from callcenter.queuecalls.reducer import ReducerConfig, TrackerState, evict, reduce

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# bytes that matter to the framing, mixed with anything
_special = st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\n\n", b": ", b":", b"Event: X",
                            "张三".encode(), "张".encode()[:2], b"\xff", b"\x00", b"Response: Success"])
junk = st.lists(st.one_of(st.binary(max_size=40), _special), max_size=40).map(b"".join)
# Well-formed = storable: the parser drops NUL and other C0 controls (callcenter.text.clean;
# tests/faults/test_unstorable_input.py), so round trips are over text without them.
header_name = st.text(st.characters(blacklist_characters=":\r\n", blacklist_categories=("Cs", "Cc")),
                      min_size=1, max_size=12).filter(lambda s: s.strip() == s and s)
header_value = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs", "Cc")),
                       max_size=30)
headers = st.lists(st.tuples(header_name, header_value), min_size=1, max_size=8)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


def parse_all(chunks: list[bytes], banner: bool) -> tuple[list[list], str | None, bool]:
    p = Parser(expect_banner=banner)
    msgs: list[list] = []
    failed = False
    for c in chunks:
        try:
            msgs.extend(m.headers for m in p.feed(c))
        except ProtocolError:
            failed = True
    return msgs, p.banner, failed


@FUZZ
@given(data=junk, cuts=st.lists(st.integers(0, 10_000), max_size=12), banner=st.booleans())
def test_parser_only_protocol_errors_and_split_invariant(data, cuts, banner):
    whole = parse_all([data], banner)
    pieces = parse_all(split_at(data, cuts), banner)
    assert whole == pieces
    for hs in whole[0]:
        assert hs and all(isinstance(k, str) and isinstance(v, str) for k, v in hs)


@FUZZ
@given(garbage=junk, good=headers, cuts=st.lists(st.integers(0, 10_000), max_size=8),
       banner=st.booleans())
def test_well_formed_message_after_garbage_is_not_lost(garbage, good, cuts, banner):
    stream = (b"Asterisk Call Manager/11.0.0\r\n" if banner else b"") + garbage + b"\r\n\r\n" + encode(good)
    msgs, _, failed = parse_all(split_at(stream, cuts), banner)
    assert not failed
    assert msgs and msgs[-1] == good


@FUZZ
@given(msgs=st.lists(headers, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 10_000), max_size=10))
def test_encode_parse_round_trip_any_split(msgs, cuts):
    stream = b"".join(encode(h) for h in msgs)
    got, _, failed = parse_all(split_at(stream, cuts), False)
    assert not failed and got == msgs


def test_oversized_garbage_is_a_protocol_error_and_the_parser_recovers():
    p = Parser()
    try:
        p.feed(b"x" * (MAX_MESSAGE_BYTES + 10))
    except ProtocolError as exc:
        assert "1 MiB" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no ProtocolError")
    assert [m.headers for m in p.feed(b"\r\n\r\nEvent: Ping\r\n\r\n")] == [[("Event", "Ping")]]


# -- the parser's filter: an event nobody declared is left unbuilt, nothing else changes --------
_ROUTES = Routes(always=("FullyBooted", "Shutdown"))
_ROUTES.add(print, Interest.declared(print, ("Hangup", "QueueEntry"), ("QUEUESTATUS", "IVR_SESSION")))
_first = st.sampled_from(["Event: VarSet", "Event: Newexten", "Event: Hangup", "Event: DeviceStateChange",
                          "Event: Shutdown", "Event: SHUTDOWN", "Event: shutdown", "Event: QueueEntry",
                          "Event: FullyBooted", "Event: VarSet ", "event: VarSet", "Event:VarSet",
                          "Response: Success", "Uniqueid: 1.1"])
_line = st.sampled_from(["Variable: QUEUESTATUS", "Variable: BRIDGEPEER", "variable: IVR_SESSION",
                         "VARIABLE: QUEUESTATUS", "Variable:QUEUESTATUS", "Variable: ", "Variable: IVR_SESSION",
                         "ActionID: 1", "actionid: 2", "CommandID: 3", "Uniqueid: 1.1", "Value: 张三",
                         "Value: a\x00b", "Privilege: call,all", "bare line", ""])
_eol = st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"])
_message = st.builds(lambda first, lines, eols: "".join(x + e for x, e in zip([first, *lines], eols)),
                     _first, st.lists(_line, max_size=6), st.lists(_eol, min_size=8, max_size=8))


@FUZZ
@given(msgs=st.lists(st.tuples(_message, _eol), max_size=12), cuts=st.lists(st.integers(0, 10_000), max_size=8),
       ids=st.booleans())
def test_filtered_parse_is_the_full_parse_less_undeclared_events(msgs, cuts, ids):
    """With the filter, every message is built exactly as without it, or is ``None``, and then
    it is an event no subscriber declared: not a Shutdown (any case), a VarSet whose variables
    nobody named, and (an action in flight) one without an ActionID/CommandID."""
    stream = "".join(m + eol for m, eol in msgs).encode()
    flt = _ROUTES.filter_ids if ids else _ROUTES.filter
    full, filtered = Parser(), Parser()
    want, got = [], []
    for chunk in split_at(stream, cuts):
        want += full.feed(chunk)
        got += filtered.feed(chunk, flt)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if g is not None:
            assert g.headers == w.headers
            continue
        name = w.headers[0][1]
        assert w.headers[0][0] == "Event" and name.lower() != "shutdown"
        assert name not in _ROUTES.always and _ROUTES.for_event(name, w) == ()
        if ids:
            assert not any(k.lower() in ("actionid", "commandid") for k, _ in w.headers)


def test_the_filter_skips_what_nobody_declared():
    """The property above holds trivially if nothing is ever skipped: it is, and the rest not."""
    text = ("Event: Newexten\r\nUniqueid: 1\r\n\r\nEvent: VarSet\r\nVariable: BRIDGEPEER\r\n\r\n"
            "Event: VarSet\r\nVariable: QUEUESTATUS\r\n\r\nEvent: Hangup\r\n\r\n"
            "Event: QueueParams\r\nActionID: 7\r\n\r\nEvent: SHUTDOWN\r\n\r\n")
    names = [None if m is None else m.event for m in Parser().feed(text.encode(), _ROUTES.filter)]
    assert names == [None, None, "VarSet", "Hangup", None, "SHUTDOWN"]
    names = [None if m is None else m.event for m in Parser().feed(text.encode(), _ROUTES.filter_ids)]
    assert names == [None, None, "VarSet", "Hangup", "QueueParams", "SHUTDOWN"]


# -- the reducer: right event names, junk values -------------------------------------------
EVENTS = ["QueueCallerJoin", "AgentCalled", "QueueCallerLeave", "QueueCallerAbandon", "AgentConnect",
          "AgentComplete", "VarSet", "Newexten", "HangupRequest", "SoftHangupRequest", "Hangup",
          "BlindTransfer", "AttendedTransfer", "QueueMemberStatus", "QueueMemberAdded",
          "QueueMemberPause", "QueueMemberPaused", "QueueMember", "QueueMemberRemoved"]
FIELDS = ["Channel", "Uniqueid", "Linkedid", "Queue", "Position", "Count", "CallerIDNum", "CallerIDName",
          "Interface", "MemberName", "HoldTime", "RingTime", "TalkTime", "Reason", "Variable", "Value",
          "Cause", "Extension", "Application", "Paused", "Status", "DestChannel", "DestUniqueid",
          "DestLinkedid", "TransfereeUniqueid", "TransfereeLinkedid", "OrigTransfererUniqueid", "PausedReason",
          "StateInterface", "Membership", "Penalty", "CallsTaken", "LastCall", "InCall", "Context"]
junk_value = st.one_of(st.sampled_from(["", "1", "-1", "0", "1e999", "nan", "inf", "<unknown>", "2.5",
                                        "1795346775.48", "QUEUESTATUS", "IVR_SESSION", "abc", "9" * 40,
                                        "consultation", "Local/1001@sim-agent/n", "TIMEOUT"]),
                       header_value)
uids = st.sampled_from(["1.1", "1.2", "2.1", ""])
event = st.builds(
    lambda ev, uid, fields: Message([("Event", ev), ("Uniqueid", uid), ("Linkedid", uid), *fields]),
    st.sampled_from(EVENTS), uids,
    st.lists(st.tuples(st.sampled_from(FIELDS), junk_value), max_size=10))


@FUZZ
@given(events=st.lists(event, max_size=30), dt=st.floats(0, 5000, allow_nan=False))
def test_reducer_never_raises_on_junk_values(events, dt):
    state = TrackerState(ReducerConfig())
    t = 1_795_346_000.0
    for msg in events:
        reduce(state, msg, t)
        t += 1.5
    evict(state, t + dt + 10_000)


# -- the gateway over TCP ---------------------------------------------------------------------
class GarbageAmi:
    """A minimal AMI server: banner, accepts any Login (then ``FullyBooted``, as a booted
    Asterisk sends), then writes what the test says."""

    def __init__(self):
        self.sessions: list[asyncio.StreamWriter] = []
        self.server = None
        self.port = 0

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        self.sessions.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        p = Parser()
        try:
            while data := await reader.read(65536):
                for m in p.feed(data):
                    aid = m.get("ActionID", "")
                    writer.write(encode([("Response", "Success"), ("ActionID", aid), ("Message", "ok")]))
                    if m.get("Action") == "Login":
                        writer.write(encode([("Event", "FullyBooted"), ("Privilege", "system,all"),
                                             ("Status", "Fully Booted")]))
        except (ConnectionError, ProtocolError):
            pass

    async def stop(self):
        for w in self.sessions:
            w.close()
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.parametrize("declared", [True, False], ids=["filtered", "every-event"])
async def test_gateway_survives_garbage_over_tcp(declared):
    """120 garbage bursts, each followed by a marker event: every marker arrives (same link
    or after a reconnect), the gateway never stops, subscribers never see an exception.
    Filtered: the subscribers declare what they read, as the service's do (the parser skips
    the rest); every-event: nothing is skipped, the reducer sees every junk event too."""
    srv = GarbageAmi()
    await srv.start()
    gw = AmiGateway("127.0.0.1", srv.port, "bridge", "secret", clock=reactor, ping_interval=3600,
                    reconnect_base_delay=0.01, reconnect_max_delay=0.05, rng=random.Random(3))
    seen: list[str] = []
    events = []

    def on_event(msg, t):
        events.append(msg)
        if msg.event == "UserEvent":
            seen.append(msg.get("UserEvent"))
    gw.subscribe(on_event, ("UserEvent",) if declared else "*")
    state = TrackerState(ReducerConfig())  # the real reducer sees the junk events too
    gw.subscribe(lambda msg, t: reduce(state, msg, t),
                 *((queue_reducer.EVENTS, queue_reducer.VARIABLES) if declared else ("*",)))
    rng = random.Random(10)
    loop = asyncio.get_running_loop()
    bursts: list[bytes] = []
    specials = [b"\r\n", b"\n", b"\r", b": ", b":", "张".encode()[:2], b"\xff", b"\x00", b"Event: X\r\n",
                b"Response: Error\r\nActionID: nope\r\n", b"Event: QueueCallerJoin\r\nPosition: -x\r\n"]
    for _ in range(120):
        parts = [rng.choice(specials) if rng.random() < 0.4 else rng.randbytes(rng.randrange(60))
                 for _ in range(rng.randrange(1, 30))]
        bursts.append(b"".join(parts))
    bursts[40] = b"z" * (MAX_MESSAGE_BYTES + 100)  # not AMI at all: the gateway must reconnect
    await gw.start()
    try:
        await gw.wait_connected(5)
        for i, burst in enumerate(bursts):
            before = gw.connects
            mark = f"mark-{i}"
            srv.sessions[-1].write(burst + b"\r\n\r\n" + encode([("Event", "UserEvent"), ("UserEvent", mark)]))
            end = loop.time() + 5
            while mark not in seen:
                assert loop.time() < end, f"marker {i} lost"
                if gw.connects > before and gw.connected and srv.sessions[-1] is not None:
                    # reconnected: the marker went to the dead link; send it on the new one
                    before = gw.connects
                    srv.sessions[-1].write(encode([("Event", "UserEvent"), ("UserEvent", mark)]))
                await asyncio.sleep(0.002)
        assert gw.connected
        assert gw.connects == 2  # exactly one reconnect: the oversized burst
        assert gw.subscriber_errors == 0
        assert seen == [f"mark-{i}" for i in range(len(bursts))]
    finally:
        await gw.stop()
        await srv.stop()
