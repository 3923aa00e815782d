"""The pure reducer on hand-made event sequences (cases the recordings do not contain)."""
from __future__ import annotations

import pytest

from callcenter.ami.codec import Message
from callcenter.queuecalls.reducer import Finished, ReducerConfig, TrackerState, evict, reduce

UID, AGENT = "1800000000.1", "PJSIP/1001"


def ev(name, **f):
    return Message([("Event", name), *((k, str(v)) for k, v in f.items())])


def caller(uid=UID, **f):
    return {"Channel": "PJSIP/trunk-00000001", "Uniqueid": uid, "Linkedid": uid,
            "CallerIDNum": "13800138001", "CallerIDName": "王小明", **f}


def run(events, state=None):
    state = state or TrackerState()
    done = []
    for t, msg in events:
        _, facts = reduce(state, msg, t)
        done += [f.record for f in facts if isinstance(f, Finished)]
    return state, done


def answered_call(uid=UID, t0=0.0, reason="agent", queue="consultation", extra=()):
    return [
        (t0, ev("QueueCallerJoin", Queue=queue, Position=1, Count=1, **caller(uid))),
        (t0 + 0.1, ev("AgentCalled", Queue=queue, Interface=AGENT, MemberName="Ann", **caller(uid))),
        (t0 + 4.2, ev("QueueCallerLeave", Queue=queue, Position=1, Count=0, **caller(uid))),
        (t0 + 4.2, ev("AgentConnect", Queue=queue, Interface=AGENT, MemberName="Ann", HoldTime=4,
                      RingTime=4, DestChannel="PJSIP/1001-00000002", **caller(uid))),
        *extra,
        (t0 + 60, ev("AgentComplete", Queue=queue, Interface=AGENT, MemberName="Ann", HoldTime=4,
                     TalkTime=56, Reason=reason, **caller(uid))),
        (t0 + 60, ev("Hangup", Cause=16, **caller(uid))),
    ]


def test_pjsip_member_answer_with_sub_second_wait_and_ivr_link():
    st, (r,) = run([(-5, ev("VarSet", Variable="IVR_SESSION", Value="42", **caller()))]
                   + answered_call())
    assert (r.outcome, r.agent, r.agent_name, r.ivr_session_id) == ("answered", AGENT, "Ann", 42)
    assert r.wait_seconds == pytest.approx(4.2) and r.talk_seconds == pytest.approx(55.8)
    assert r.caller_number == "+8613800138001" and r.within(30) is True and r.within(4) is False
    assert not st.calls and not st.by_member and not st.chan_vars and not st.legs


def test_transfer_reason_and_transfer_events():
    _, (r,) = run(answered_call(reason="transfer"))
    assert r.outcome == "transferred"
    blind = (30.0, ev("BlindTransfer", TransfererUniqueid="x", TransfereeUniqueid=UID))
    _, (r,) = run(answered_call(extra=[blind]))
    assert r.outcome == "transferred"


def test_agent_complete_without_channel_fields_matches_queue_and_interface():
    events = answered_call()[:-2] + [
        (50.0, ev("AgentComplete", Queue="consultation", Interface=AGENT, MemberName="Ann",
                  HoldTime=4, TalkTime=46, Reason="caller"))]
    _, (r,) = run(events)
    assert r.outcome == "answered" and r.talk_seconds == pytest.approx(45.8)


def test_abandon_hangup_timeout_redirect_told_apart():
    join = (0.0, ev("QueueCallerJoin", Queue="q", Position=1, **caller()))
    abandon = (9.0, ev("QueueCallerAbandon", Queue="q", Position=1, OriginalPosition=1, HoldTime=9, **caller()))
    leave = (9.0, ev("QueueCallerLeave", Queue="q", **caller()))
    cases = {
        "abandoned": [(8.9, ev("HangupRequest", Cause=16, **caller())), abandon, leave],
        "timeout": [abandon, leave, (9.0, ev("VarSet", Variable="QUEUESTATUS", Value="TIMEOUT", **caller()))],
        "redirected": [abandon, leave, (9.0, ev("Newexten", Context="operator", Extension="s", **caller()))],
    }
    for outcome, tail in cases.items():
        _, (r,) = run([join, *tail])
        assert (r.outcome, r.wait_seconds) == (outcome, 9.0), outcome
    _, (r,) = run([join, abandon, leave, (9.1, ev("Newexten", Context="x", Extension="h", **caller()))])
    assert r.outcome == "abandoned"  # the hang-up handler is not a redirect
    # leave without abandon or connect (leavewhenempty) then QUEUESTATUS: a timeout
    _, (r,) = run([join, leave, (9.0, ev("VarSet", Variable="QUEUESTATUS", Value="LEAVEEMPTY", **caller()))])
    assert r.outcome == "timeout"


def test_unexplained_abandon_and_stale_callers_are_evicted():
    st = TrackerState(ReducerConfig(abandon_grace=10, max_wait=3600))
    run([(0.0, ev("QueueCallerJoin", Queue="q", **caller())),
         (5.0, ev("QueueCallerAbandon", Queue="q", HoldTime=5, **caller())),
         (6.0, ev("QueueCallerJoin", Queue="q", **caller("1800000000.9")))], st)
    (r,) = [f.record for f in evict(st, 20.0) if isinstance(f, Finished)]
    assert (r.outcome, r.wait_seconds) == ("abandoned", 5.0)
    (r,) = [f.record for f in evict(st, 6.0 + 3601) if isinstance(f, Finished)]
    assert (r.outcome, r.gap, r.uniqueid) == ("unknown", True, "1800000000.9")
    assert not st.calls


def test_same_channel_in_two_queues_and_twice_in_one():
    seq = []
    for i, q in enumerate(["consultation", "complaint", "consultation"]):
        t = i * 100.0
        seq += [(t, ev("QueueCallerJoin", Queue=q, **caller())),
                (t + 10, ev("QueueCallerAbandon", Queue=q, HoldTime=10, **caller())),
                (t + 10, ev("VarSet", Variable="QUEUESTATUS", Value="TIMEOUT", **caller()))]
    seq.append((300.0, ev("Hangup", **caller())))
    st, rows = run(seq)
    assert [(r.queue, r.leg, r.outcome) for r in rows] == [
        ("consultation", 1, "timeout"), ("complaint", 1, "timeout"), ("consultation", 2, "timeout")]
    assert not st.legs


def test_memory_is_bounded_by_calls_in_flight():
    st = TrackerState()
    total = 0
    for i in range(5000):
        uid = f"1800000000.{i}"
        _, done = run(answered_call(uid, t0=i * 10.0), st)
        total += len(done)
    evict(st, 5000 * 10.0 + 10_000)
    assert total == 5000
    assert not st.calls and not st.by_member and not st.legs and not st.chan_vars
    assert len(st.finished) == 0


def test_resync_snapshot_older_than_a_join_does_not_end_that_call():
    """QueueStatus asked at t=9.8; the caller's join arrives at 10.0 before the snapshot is
    applied: the snapshot does not know her, she is newer than it, not gone."""
    from callcenter.queuecalls.reducer import resync

    state, _ = run([(10.0, ev("QueueCallerJoin", Queue="consultation", Position=1, Count=1, **caller()))])
    facts = resync(state, [], [], 10.2, asked_at=9.8)
    assert not [f for f in facts if isinstance(f, Finished)] and UID in state.calls
    facts = resync(state, [], [], 20.0, asked_at=19.9, lost_at=15.0)  # really gone by now
    (rec,) = [f.record for f in facts if isinstance(f, Finished)]
    assert (rec.outcome, rec.ended_at, rec.gap) == ("unknown", 15.0, True)


def test_dialer_call_is_outbound_with_the_patient_not_the_caller_id():
    """The dialer's Originate variables arrive as VarSet on the patient's channel before it
    joins (trace 04): the queue call is outbound, with attempt, campaign and the patient."""
    hospital = {"CallerIDNum": "02100000000", "CallerIDName": "City Hospital"}
    pre = [(-5.0, ev("VarSet", Variable=v, Value=x, **caller(**hospital)))
           for v, x in (("ATTEMPT_ID", "42"), ("CAMPAIGN_ID", "3"), ("PATIENT_NUMBER", "+8613900139003"),
                        ("PATIENT_NAME", "张三"))]
    call = [(t, Message([(k, hospital.get(k, v)) for k, v in m.headers])) for t, m in answered_call()]
    state, done = run(pre + call)
    (r,) = done
    assert (r.direction, r.attempt_id, r.campaign_id) == ("outbound", 42, 3)
    assert (r.caller_number, r.caller_name) == ("+8613900139003", "张三")
    assert not state.chan_vars
    _, (inbound,) = run(answered_call())
    assert (inbound.direction, inbound.attempt_id, inbound.caller_number) == ("inbound", None, "+8613800138001")
    # a garbage ATTEMPT_ID (a channel variable: anything from the network) is ignored
    bad = [(-1.0, ev("VarSet", Variable="ATTEMPT_ID", Value="x1", **caller()))]
    _, (r2,) = run(bad + answered_call())
    assert r2.direction == "inbound"
