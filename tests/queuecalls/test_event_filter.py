"""The events the consumers declare, over every recorded trace: what nobody declared is never
built (so it cannot reach the reducer or the store), everything declared arrives, and the
stored queue calls are the same as with nothing filtered."""
from __future__ import annotations

import pytest

from callcenter.ami import codec
from callcenter.ami.gateway import AmiGateway
from callcenter.ami.interest import Interest, SubscriptionError
from callcenter.ami.tracefile import traces_dir
from callcenter.queuecalls import reducer
from callcenter.queuecalls import tracker as tracker_module
from callcenter.queuecalls.tracker import QueueCallsTracker
from callcenter.sites import Sites
from tests.support.ami import record_parsed

TRACES = sorted(p.name for p in traces_dir().glob("*.ami") if p.name != "09-login-failure.ami")
TRACKER = Interest(reducer.EVENTS, reducer.VARIABLES)


def _row(r) -> tuple:
    return (r.uniqueid, r.queue, r.leg, r.outcome, r.caller_number, r.caller_name, r.entered_at,
            r.answered_at, r.ended_at, r.wait_seconds, r.agent, r.talk_seconds, r.ivr_session_id, r.gap)


async def _replay(bridge, name: str, monkeypatch, *, every: bool) -> dict:
    """Replay ``name``; what the parser built, what the tracker was handed, the stored rows.
    ``every``: the tracker subscribes to every event, as it did before declarations (and
    one more subscriber records them): a reducer that reads an event it does not declare
    would store something else."""
    received: list = []
    on_event = QueueCallsTracker.on_event
    built = record_parsed(monkeypatch)

    def spy_event(self, msg, t):
        received.append(msg.headers)
        on_event(self, msg, t)

    monkeypatch.setattr(QueueCallsTracker, "on_event", spy_event)
    if every:
        monkeypatch.setattr(tracker_module, "EVENTS", "*")
        monkeypatch.setattr(tracker_module, "conditions", lambda state: ())
    everything: list = []
    async with bridge(name) as b:
        if every:
            b.gw.subscribe(lambda m, t: everything.append(m), "*")
        await b.until(lambda: b.gw.connects >= 1, 5)
        await b.replayed()
        rows = sorted(_row(r) for r in await b.settle())
        events = b.gw.events_received
    monkeypatch.undo()
    return {"built": built, "received": received, "rows": rows, "events": events, "everything": everything}


@pytest.mark.parametrize("name", TRACES)
async def test_declared_events_arrive_and_the_rest_is_never_built(bridge, monkeypatch, name):
    shipped = await _replay(bridge, name, monkeypatch, every=False)
    full = await _replay(bridge, name, monkeypatch, every=True)
    # the tracker got exactly the events of the whole stream that it declared, in order, and
    # stored what it stores when it reads every event
    assert full["received"] == [m.headers for m in full["everything"]]
    declared = [m.headers for m in full["everything"] if TRACKER.wants(m.event, tuple(m.getall("Variable")))]
    # Newexten (declared on condition, reducer.conditions) only on a caller whose abandon is
    # pending: the rest is as declared, in order; those delivered are of the stream's, in order,
    # each after an abandon of its caller
    def rest(ms):
        return [h for h in ms if h[0] != ("Event", "Newexten")]

    def newexten(ms):
        return [h for h in ms if h[0] == ("Event", "Newexten")]
    assert rest(shipped["received"]) == rest(declared)
    got, stream = newexten(shipped["received"]), iter(newexten(declared))
    assert all(h in stream for h in got)  # an ordered sub-list
    abandons = [i for i, m in enumerate(full["everything"]) if m.event == "QueueCallerAbandon"]
    for h in got:
        uid = dict(h)["Uniqueid"]
        at = next(i for i, m in enumerate(full["everything"]) if m.headers == h)
        assert any(i < at and full["everything"][i]["Uniqueid"] == uid for i in abandons)
    assert shipped["rows"] == full["rows"]
    assert shipped["events"] == full["events"] == len(full["everything"])
    # nothing undeclared was built: not by the tracker, nor the gateway (FullyBooted, Shutdown),
    # except the list items of an action in flight (QueueStatus, CoreShowChannels...)
    skipped = sum(1 for m in shipped["built"] if m is None)
    deferred = [m for m in shipped["built"] if isinstance(m, codec.Deferred)]
    assert {m.name for m in deferred} <= {"Newexten"} and len(deferred) >= len(got)
    assert bool(deferred) == bool(newexten(declared))
    for m in shipped["built"]:
        if isinstance(m, codec.Message) and m.headers[0][0] == "Event" and not m.has_id:
            assert TRACKER.wants(m.event, tuple(m.getall("Variable"))) or m.event in ("FullyBooted", "Shutdown")
    undeclared = [m for m in full["everything"] if not TRACKER.wants(m.event, tuple(m.getall("Variable")))
                  and m.event not in ("FullyBooted", "Shutdown")]
    # an undeclared event with an ActionID is built while an action is in flight (it may be its answer)
    assert len([m for m in undeclared if not m.has_id]) <= skipped <= len(undeclared)


def test_the_filter_is_large_on_a_real_call():
    """Trace 01 (one answered call): most of its events matter to no queue-call consumer."""
    from callcenter.ami.tracefile import read_ami

    events = [e for e in read_ami(traces_dir() / "01-inbound-answered.ami").events]
    kept = [m for m in events if TRACKER.wants(m.event, tuple(m.getall("Variable")))]
    assert len(events) > 150 and len(kept) < len(events) / 3


def test_a_subscriber_declaring_nothing_is_refused_naming_it():
    gw = AmiGateway("127.0.0.1", 1, "u", "s", clock=None)

    def on_event(msg, t):
        pass

    for events, variables in ((None, ()), ((), ()), ([], [])):
        with pytest.raises(SubscriptionError, match="on_event declares no events"):
            gw.subscribe(on_event, events, variables)
    with pytest.raises(SubscriptionError, match="collections of names"):
        gw.subscribe(on_event, "Hangup")
    tracker = QueueCallsTracker(None, None)
    with pytest.raises(SubscriptionError, match="QueueCallsTracker.resync declares no events"):
        Sites(["default"]).ami.subscribe(tracker.resync)
    gw.subscribe(on_event, (), ("IVR_SESSION",))  # only VarSets of a variable: a declaration
    gw.subscribe(on_event, "*")


def test_routes_deliver_by_name_and_variable_in_subscription_order():
    from callcenter.ami.codec import Message
    from callcenter.ami.interest import Routes

    r = Routes(always=("FullyBooted",))
    a, b, c, d = (lambda m, t: None for _ in range(4))
    r.add(a, Interest.declared(a, ("Hangup",), ("IVR_SESSION",)))
    r.add(b, Interest.declared(b, "*"))
    r.add(c, Interest.declared(c, ("VarSet", "Hangup")))
    r.add(d, Interest.declared(d, (), ("QUEUESTATUS", "")))

    def to(*headers):
        m = Message(list(headers))
        return r.for_event(m.event, m)
    assert to(("Event", "Hangup")) == (a, b, c)
    assert to(("Event", "Newexten")) == (b,)
    assert to(("Event", "FullyBooted")) == (b,)
    assert to(("Event", "VarSet"), ("Variable", "IVR_SESSION")) == (a, b, c)
    assert to(("Event", "VarSet"), ("Variable", "BRIDGEPEER")) == (b, c)
    assert to(("Event", "VarSet")) == (b, c, d)  # no Variable header: the variable ""
    assert to(("Event", "VarSet"), ("Variable", "X"), ("variable", "QUEUESTATUS")) == (b, c, d)
    r.remove(b)
    assert to(("Event", "Newexten")) == () and r.filter is not None
    assert r.filter.events == {"Hangup", "VarSet", "FullyBooted"}
    assert r.filter.variables == {"IVR_SESSION", "QUEUESTATUS", ""}


# -- Newexten: built only for a caller whose abandon is pending (reducer.conditions) ----------

class _Transport:
    def write(self, data):
        pass

    def get_extra_info(self, *a):
        return None

    def abort(self):
        pass

    def close(self):
        pass


def _link():
    """A gateway with a live link fed by hand, and a reducer subscribed as the tracker is."""
    from twisted.internet import task

    from callcenter.ami.gateway import _Protocol

    gw = AmiGateway("127.0.0.1", 1, "u", "s", clock=task.Clock())
    proto = _Protocol(gw)
    proto.connection_made(_Transport())
    gw._proto = proto
    proto.data_received(b"Asterisk Call Manager/11.0.0\r\n")
    state, got, facts = reducer.TrackerState(), [], []

    def on_event(msg, t):
        got.append(msg)
        facts.extend(reducer.reduce(state, msg, t)[1])
    gw.subscribe(on_event, reducer.EVENTS, reducer.VARIABLES, reducer.conditions(state))
    return gw, proto, state, got, facts


def _ev(name, uid, **kw):
    return codec.encode([("Event", name), ("Channel", "PJSIP/trunk-0001"), ("Uniqueid", uid),
                         *kw.items()])


def test_newexten_after_a_pending_abandon_is_built_even_in_the_same_read():
    """The redirected rule through the filter: the abandon and the Newexten after it arrive in
    one TCP read, so the parser cannot know; the gateway asks when the Newexten's turn comes."""
    gw, proto, state, got, facts = _link()
    proto.data_received(_ev("QueueCallerJoin", "1.1", Queue="consultation", Position="1")
                        + _ev("Newexten", "1.1", Context="hotline", Extension="s")  # not pending yet
                        + _ev("QueueCallerAbandon", "1.1", Queue="consultation", HoldTime="4")
                        + _ev("Newexten", "1.1", Context="operator", Extension="s"))
    assert [m.event for m in got] == ["QueueCallerJoin", "QueueCallerAbandon", "Newexten"]
    assert got[-1]["Context"] == "operator" and gw.events_received == 4
    (fin,) = [f for f in facts if isinstance(f, reducer.Finished)]
    assert fin.record.outcome == "redirected" and state.abandon_pending == set()
    # the call is over: its later Newexten (and any other caller's) is counted, not built
    proto.data_received(_ev("Newexten", "1.1", Context="operator", Extension="s", Priority="2")
                        + _ev("Newexten", "2.2", Context="hotline", Extension="s"))
    assert len(got) == 3 and gw.events_received == 6


def test_an_unneeded_newexten_is_not_built(monkeypatch):
    built = []
    build = codec.Deferred.build

    def spy(self):
        built.append(self.name)
        return build(self)
    monkeypatch.setattr(codec.Deferred, "build", spy)
    gw, proto, state, got, facts = _link()
    out = codec.Parser().feed(_ev("Newexten", "3.3", Extension="s"), gw._routes.filter)
    assert [type(m) for m in out] == [codec.Deferred] and out[0].header("Uniqueid") == "3.3"
    proto.data_received(_ev("QueueCallerJoin", "3.3", Queue="consultation")
                        + _ev("Newexten", "3.3", Extension="s") + _ev("Newexten", "4.4", Extension="s"))
    assert [m.event for m in got] == ["QueueCallerJoin"] and built == [] and gw.events_received == 3
    # a Newexten whose Uniqueid cannot be read plainly once is built (the reducer decides)
    proto.data_received(codec.encode([("Event", "Newexten"), ("Uniqueid", "3.3"), ("Uniqueid", "3.3")]))
    assert built == ["Newexten"] and [m.event for m in got] == ["QueueCallerJoin", "Newexten"]
    assert state.calls["3.3"].abandon_at is None  # and it changed nothing


def test_a_subscriber_reading_every_newexten_gets_every_one():
    """Another consumer declaring Newexten without a condition: all of them are built again."""
    gw, proto, state, got, facts = _link()
    every = []
    gw.subscribe(lambda m, t: every.append(m["Uniqueid"]), ("Newexten",))
    proto.data_received(_ev("Newexten", "5.5", Extension="s") + _ev("Newexten", "6.6", Extension="s"))
    assert every == ["5.5", "6.6"] and [m.event for m in got] == ["Newexten", "Newexten"]
    assert gw._routes.filter.when == frozenset()


def test_a_condition_must_be_on_a_declared_event():
    from callcenter.ami.interest import When

    def on_event(msg, t):
        pass
    with pytest.raises(SubscriptionError, match="on_event: a condition on 'Newexten'"):
        Interest.declared(on_event, ("Hangup",), (), (When("Newexten", "Uniqueid", set()),))
    with pytest.raises(SubscriptionError, match="reads every event"):
        Interest.declared(on_event, "*", (), (When("Newexten", "Uniqueid", set()),))
