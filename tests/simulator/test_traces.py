"""The simulator against the recorded Asterisk traces, field by field, over real TCP.

Each scenario replays the trace's own actions at their recorded times (the harness
knobs the README lists are applied as setup), then compares per event type the header
names and their order, value formats (Uniqueid pattern, integer seconds vs ms, ...),
and the sequence of significant events (Queue*/Agent*/Dial*/Hangup/OriginateResponse/
Bridge*) with uniqueids, channel numbers and session values normalised.
"""
from __future__ import annotations

import pytest

from callcenter.ami.tracefile import read_ami, traces_dir

from .harness import Harness, compare, replay


def _agents(delay=None, talk=None, queue=None, say=None):
    def setup(pbx):
        for qname, q in pbx.queues.items():
            if queue and qname != queue:
                continue
            for m in q.members:
                if delay is not None:
                    pbx.globals[f"AGENT_DELAY_{m.agent_id}"] = str(delay)
                if talk is not None:
                    pbx.globals[f"AGENT_TALK_{m.agent_id}"] = str(talk)
        if say is not None:
            pbx.globals["AGENT_SAY"] = say
    return setup


def _load(name):
    return read_ami(traces_dir() / name)


async def run_trace(tmp_path, name, setup=None, schedule=()):
    trace = _load(name)
    h = await Harness.create(tmp_path, epoch=int(trace.epoch or 1795346592))
    try:
        await replay(h, trace, setup=setup, schedule=schedule)
    finally:
        await h.close()
    return trace, h


def assert_same(trace, h, **kw):
    problems = compare(trace, h.received, **kw)
    assert not problems, "\n".join(problems)


async def test_01_inbound_answered(tmp_path):
    trace, h = await run_trace(tmp_path, "01-inbound-answered.ami", _agents(3, 5))
    assert_same(trace, h)
    evs = [m.event for m in h.messages() if m.event]
    # QueueCallerLeave is sent before AgentConnect (same instant)
    assert evs.index("QueueCallerLeave") < evs.index("AgentConnect")
    connect = next(m for m in h.messages() if m.event == "AgentConnect")
    complete = next(m for m in h.messages() if m.event == "AgentComplete")
    assert (connect["HoldTime"], connect["RingTime"]) == ("3", "3")
    assert complete["Reason"] == "agent" and complete["TalkTime"] in ("5", "6")
