"""Pure scheduling and compliance rules (windows, holidays, retries, pacing ratio)."""
from __future__ import annotations

import datetime as dt

import pytest

from dialer import compliance
from dialer.compliance import Rules, after_attempt, in_window, next_window_open, predictive_ratio
from dialer.plans import PlanError, load_plans, parse_plans
from dialer.tracker import AttemptTracker, CauseSeen, Connected, Ended, Originated, disposition_for

from tests.support.dialer import msg, ts

R = Rules()


def test_window_edges_are_half_open():
    assert not in_window(R, ts(2026, 11, 24, 8, 59, 59))
    assert in_window(R, ts(2026, 11, 24, 9, 0, 0))
    assert in_window(R, ts(2026, 11, 24, 19, 59, 59))
    assert not in_window(R, ts(2026, 11, 24, 20, 0, 0))


def test_window_is_in_the_hospital_timezone():
    # 01:30 UTC = 09:30 in Shanghai: callable; the same instant is night in New York.
    t = dt.datetime(2026, 11, 24, 1, 30, tzinfo=dt.timezone.utc).timestamp()
    assert in_window(R, t)
    assert not in_window(Rules(timezone="America/New_York", country="US"), t)


def test_next_window_open_after_close_is_next_morning():
    assert next_window_open(R, ts(2026, 11, 24, 20, 0)) == ts(2026, 11, 25, 9, 0)
    assert next_window_open(R, ts(2026, 11, 24, 7, 0)) == ts(2026, 11, 24, 9, 0)
    now = ts(2026, 11, 24, 12, 0)
    assert next_window_open(R, now) == now


def test_public_holidays_and_shifted_days_off_are_skipped():
    # National Day 2026: Oct 1-3 holidays, Oct 4 Sunday (callable: weekends allowed by default),
    # Oct 5 observed, Oct 6-7 days off (调休); Sat Oct 10 is a working Saturday.
    assert not in_window(R, ts(2026, 10, 1, 10))
    assert in_window(R, ts(2026, 10, 4, 10))
    assert next_window_open(R, ts(2026, 10, 4, 21)) == ts(2026, 10, 8, 9)
    assert in_window(R, ts(2026, 10, 10, 10))
    no_skip = Rules(skip_holidays=False)
    assert in_window(no_skip, ts(2026, 10, 1, 10))


def test_call_days_restrict_weekdays():
    weekdays = Rules(call_days=frozenset({"mon", "tue", "wed", "thu", "fri"}))
    assert not in_window(weekdays, ts(2026, 11, 28, 10))  # Saturday
    assert next_window_open(weekdays, ts(2026, 11, 27, 20, 30)) == ts(2026, 11, 30, 9)


@pytest.mark.parametrize("disp,minutes", [("busy", 15), ("no_answer", 60), ("congestion", 5),
                                          ("failed", 120), ("hungup", 30), ("abandoned", 60)])
def test_retry_delay_by_disposition(disp, minutes):
    now = ts(2026, 11, 24, 10, 0)
    nxt = after_attempt(R, disp, attempts=1, now=now)
    assert nxt.retry_at == now + minutes * 60 and nxt.outcome == ""


def test_retry_moves_into_next_window():
    nxt = after_attempt(R, "no_answer", attempts=1, now=ts(2026, 11, 24, 19, 30))
    assert nxt.retry_at == ts(2026, 11, 25, 9, 0)


def test_max_attempts_and_deadline_give_up_as_unreachable():
    now = ts(2026, 11, 24, 10)
    assert after_attempt(R, "busy", attempts=3, now=now).retry_at is None
    assert after_attempt(R, "busy", attempts=3, now=now).outcome == "unreachable"
    assert after_attempt(R, "busy", attempts=3, now=now, max_attempts=5).retry_at is not None
    assert after_attempt(R, "busy", attempts=1, now=now, due_before=now + 60).outcome == "unreachable"


def test_final_dispositions_end_the_contact():
    for disp in ("completed", "reached", "opted_out", "invalid"):
        assert after_attempt(R, disp, 1, ts(2026, 11, 24, 10)) == compliance.Next(None, disp)


def test_unknown_outcome_waits_the_longest_retry():
    assert compliance.retry_delay(R, "unknown") == 120 * 60 == R.longest_retry


def test_predictive_ratio_holds_abandon_rate():
    assert predictive_ratio(0, 0) == 1.0
    assert predictive_ratio(100, 3, target=0.03) == 1.0       # at the cap: progressive
    assert predictive_ratio(100, 5, target=0.03) == 1.0
    r = predictive_ratio(1000, 0, target=0.03, max_ratio=1.5, current=1.0)
    assert r == pytest.approx(1.1)                              # rises slowly
    assert predictive_ratio(1000, 0, current=1.45) == pytest.approx(1.5)
    assert predictive_ratio(1000, 25, current=1.5) < 1.1        # close to the cap: drops at once


def test_disposition_from_reason_and_cause():
    assert disposition_for(4) == "answered"
    assert disposition_for(5, 17) == "busy"
    assert disposition_for(8, 34) == "congestion"
    assert disposition_for(3, 19) == "no_answer"
    assert disposition_for(0, 21) == "failed"
    assert disposition_for(0, 1) == "invalid"
    assert disposition_for(0, 17) == "busy"


def test_tracker_correlates_failure_by_actionid_and_cause_by_linkedid():
    tr = AttemptTracker()
    tr.expect(7)
    assert tr.feed(msg(Event="VarSet", Uniqueid="1.1", Linkedid="1.1", Variable="ATTEMPT_ID", Value="7"), 1) == []
    f = tr.feed(msg(Event="Hangup", Uniqueid="1.2", Linkedid="1.1", Cause="17"), 2)
    assert [(type(x), x.cause) for x in f] == [(CauseSeen, 17)]
    f = tr.feed(msg(Event="OriginateResponse", ActionID="7", Response="Failure", Reason="5",
                    Uniqueid="<unknown>"), 3)
    assert [(type(x), x.disposition, x.cause) for x in f] == [(Originated, "busy", 17)]
    assert tr.feed(msg(Event="Hangup", Uniqueid="1.1", Linkedid="1.1", Cause="0"), 4) == []
    assert 7 not in tr.live
    # someone else's OriginateResponse is ignored
    assert tr.feed(msg(Event="OriginateResponse", ActionID="99", Response="Success", Reason="4",
                       Uniqueid="5.5"), 5) == []


def test_tracker_answered_call_ends_on_its_channel_hangup():
    tr = AttemptTracker()
    tr.expect(3)
    f = tr.feed(msg(Event="OriginateResponse", ActionID="3", Response="Success", Reason="4",
                    Channel="Local/answer@sim-patient-0e;1", Uniqueid="9.1"), 1)
    assert f[0].disposition == "answered" and f[0].uniqueid == "9.1"
    f = tr.feed(msg(Event="AgentConnect", Uniqueid="9.1", Linkedid="9.1", MemberName="Agent 1"), 2)
    assert isinstance(f[0], Connected) and f[0].agent == "Agent 1"
    f = tr.feed(msg(Event="Hangup", Uniqueid="9.1", Linkedid="9.1", Cause="16"), 9)
    assert [(type(x), x.cause) for x in f] == [(Ended, 16)]


def test_shipped_plans_cover_the_six_treatments():
    plans = load_plans()
    assert set(plans) >= {"cleaning", "filling", "root_canal", "extraction", "implant", "orthodontics"}
    assert [s.day for s in plans["root_canal"].steps] == [1, 7, 30]


def test_bad_plans_file_reports_file_and_line(tmp_path):
    f = tmp_path / "plans.yaml"
    f.write_text("filling:\n  steps:\n    - {day: 1}\n    - {day: -3}\n    - {day: 7, colour: red}\nImplant: {}\n")
    with pytest.raises(PlanError) as err:
        from dialer.plans import load_plans as lp

        lp(f)
    text = str(err.value)
    assert f"{f}:4: filling: day must be a whole number >= 0" in text
    assert f"{f}:5: filling: unknown step key 'colour'" in text
    assert f"{f}:6: treatment type 'Implant'" in text
    with pytest.raises(PlanError, match="not valid YAML"):
        parse_plans("a: [", "x.yaml")


def test_pacer_keeps_an_absolute_schedule():
    from twisted.internet.task import Clock

    from dialer.pacing import Pacer

    clock = Clock()
    p = Pacer(clock, 50)
    assert p.reserve() == 0
    assert p.reserve() == pytest.approx(0.02)
    clock.advance(0.1)                      # a 100 ms stall: overdue slots go at once...
    assert p.reserve() == pytest.approx(-0.06)
    assert p.reserve() == pytest.approx(-0.04)
    for _ in range(3):
        p.reserve()
    assert p.reserve() == pytest.approx(0.04)   # ...and the schedule (slot k = k/50) holds
    clock.advance(10)                       # idle: fresh start, no burst of 500 calls
    assert p.reserve() == 0
