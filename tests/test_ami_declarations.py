"""Each AMI consumer's declaration is complete: over every recorded trace, its sans-IO core
given only the events it declares does exactly what it does given every event (the gateway
hands it nothing else; tests/queuecalls/test_event_filter.py does the same for the queue-call
reducer through the gateway and the store)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from callcenter.ami.codec import Message
from callcenter.ami.interest import Interest
from callcenter.ami.tracefile import read_ami, traces_dir
from callcenter.web.screenpop import EVENTS as SCREENPOP_EVENTS
from dialer.callstate import CallState
from dialer.engine import EVENTS as DIALER_EVENTS
from dialer.tracker import AttemptTracker, LinkedAttempts
from recordings.capture import CaptureTracker
from recordings.settings import Settings

TRACES = sorted(p.name for p in traces_dir().glob("*.ami"))


def _events(name: str) -> list:
    """(message, arrival time) of every event of a trace."""
    tr = read_ami(traces_dir() / name)
    return [(e.message, e.t) for e in tr.received if e.message is not None and e.message.event]


def _wanted(interest: Interest, m) -> bool:
    return interest.wants(m.event, tuple(m.getall("Variable")) or ("",))


NOTHING = "[]"


def _recordings(events: list, trace: list) -> tuple[list, tuple]:
    """(what each event gave, the state after)."""
    tr = CaptureTracker(Settings(directory=Path("/rec"), spool_dir=Path("/spool")))
    out = [repr(tr.feed(m, t)) for m, t in events]
    return out, (repr(tr.active), dict(tr._campaign_of_channel), dict(tr._campaign_id_of_channel),
                 dict(tr._outbound))


def _as_attempt(m: Message) -> Message:
    """The recorded Originates' ActionIDs (``dial-0001``) as the dialer's (the attempt id)."""
    return Message([(k, re.sub(r"^dial-0*(\d+)$", r"\1", v) if k == "ActionID" else v) for k, v in m.headers])


def _dialer(events: list, trace: list) -> tuple[list, tuple]:
    tracker, calls = AttemptTracker(), CallState()
    for m, _ in trace:  # every attempt of the trace is one of ours (else nothing is followed)
        for v in (_as_attempt(m).get("ActionID") or "", m.get("Value") or ""):
            if re.fullmatch(r"\d{1,9}", v):
                tracker.expect(int(v))
    out = []
    for m, t in events:
        m = _as_attempt(m)
        calls.feed(m, t)
        facts = tracker.feed(m, t)
        # Dialer.on_event reads QueueMemberPause itself
        pause = (m.get("Paused"), m.get("PausedReason")) if m.get("Event") == "QueueMemberPause" else None
        out.append(NOTHING if not facts and pause is None else repr((facts, pause)))
    return out, (calls.by_channel, calls.ended, repr(tracker.live), dict(tracker.linked.by_linked))


def _screenpop(events: list, trace: list) -> tuple[list, tuple]:
    """ScreenPop.on_ami: its four call events (with the attempt they belong to), VarSet to
    LinkedAttempts."""
    linked = LinkedAttempts()
    out = []
    for m, _ in events:
        if m.event in SCREENPOP_EVENTS:
            out.append(repr((m.event, linked.attempt_for(m))))
        elif m.event == "VarSet":
            out.append(NOTHING if linked.feed(m) is None else "remembered")
        else:
            out.append(NOTHING)
    return out, (dict(linked.by_linked),)


_SETTINGS = Settings(directory=Path("/rec"), spool_dir=Path("/spool"))
CONSUMERS = {
    "recordings": (Interest(CaptureTracker.EVENTS, CaptureTracker(_SETTINGS).variables), _recordings),
    "dialer": (Interest(DIALER_EVENTS, AttemptTracker.VARIABLES), _dialer),
    "screenpop": (Interest(SCREENPOP_EVENTS, LinkedAttempts.VARIABLES), _screenpop),
}


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
@pytest.mark.parametrize("name", TRACES)
def test_declared_events_are_all_a_consumer_reads(consumer, name):
    interest, run = CONSUMERS[consumer]
    events = _events(name)
    keep = [_wanted(interest, m) for m, _ in events]
    every_out, every_state = run(events, events)
    only_out, only_state = run([e for e, k in zip(events, keep) if k], events)
    assert all(o == NOTHING for o, k in zip(every_out, keep) if not k)  # what it does not declare: no-op
    assert only_out == [o for o, k in zip(every_out, keep) if k]
    assert only_state == every_state


def test_the_traces_exercise_the_declarations():
    """Not vacuous: the recorded calls make each consumer act."""
    rec, dial = _events("06-mixmonitor.ami"), _events("04-outbound-answered-survey.ami")
    assert any(o != NOTHING for o in _recordings(rec, rec)[0])
    outputs, (_, ended, *_rest) = _dialer(dial, dial)
    assert any(o != NOTHING for o in outputs) and ended  # the call state saw the numbers hang up
    assert any(o != NOTHING for o in _screenpop(rec, rec)[0])  # (no trace has a VarSet ATTEMPT_ID:
    # tests/web/test_dialer_screen.py feeds those)
