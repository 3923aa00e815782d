"""Ratings in the store: on the queue call they rate, never twice, never guessed; an
unsatisfied complaint call reopens its resolved ticket; the flow checker's scale rules."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from callcenter.errors import InvalidInput
from callcenter.queuecalls.models import QueueCall
from callcenter.queuecalls.ratings import CallRatings, QueueCallNotStored, RatingMismatch, check
from ivr_flows.flow import parse_text
from tests import support

T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)


def _queue_call(s, uid="1795400000.7", queue="complaint", agent="Local/2001@sim-agent/n"):
    s.add(QueueCall(uniqueid=uid, linkedid=uid, queue=queue, leg=1, caller_number="+8613800138001",
                    entered_at=T0, answered_at=T0, ended_at=T0, wait_seconds=3.0, agent=agent,
                    talk_seconds=60.0, outcome="answered", within_target=True))
    s.flush()


@pytest.mark.postgres
def test_a_rating_waits_for_its_queue_call_and_is_stored_once(db):
    ratings = support.domain().ratings
    kw = dict(uniqueid="1795400000.7", queue="complaint", agent="Local/2001@sim-agent/n", outcome="rated",
              score=1, level="satisfied", at=T0, ivr_session_id=5)
    with db.session() as s, pytest.raises(QueueCallNotStored):
        ratings.record_rating(s, **kw)  # the tracker has not written the call yet
    with db.session() as s:
        _queue_call(s)
    with db.session() as s:
        with pytest.raises(RatingMismatch, match="answered by 'Local/2001@sim-agent/n'"):
            ratings.record_rating(s, **{**kw, "agent": "Local/2002@sim-agent/n"})
        assert ratings.record_rating(s, **kw)["tickets"] == []
    with db.session() as s:  # a second rating of the same call keeps the first
        assert ratings.record_rating(s, **{**kw, "score": 3, "level": "unsatisfied", "ivr_session_id": 6})["already"]
        row = s.scalars(select(QueueCall)).one()
        assert (row.rating_outcome, row.rating_score, row.rating_level, row.rating_session_id) == \
            ("rated", 1, "satisfied", 5)


@pytest.mark.postgres
def test_an_unsatisfied_rating_reopens_the_resolved_ticket_of_the_call(db):
    d = support.domain()
    with db.session() as s:
        _queue_call(s)
        t = d.complaints.open_ticket(s, actor="agent2", category="attitude", severity="normal", channel="phone",
                                     summary="rude", received_at=T0, call_uniqueid="1795400000.7")
        d.complaints.transition(s, t.id, "investigating", actor="sup", at=T0)
        d.complaints.transition(s, t.id, "resolved", actor="sup", at=T0)
        tid = t.id
    with db.session() as s:
        out = d.ratings.record_rating(s, uniqueid="1795400000.7", queue="complaint", agent="", outcome="rated",
                                      score=3, level="unsatisfied", at=T0 + dt.timedelta(minutes=1),
                                      ivr_session_id=None)
        assert out["tickets"] == [tid]
        from callcenter.complaints.service import events, get_ticket

        ticket = get_ticket(s, tid)
        assert (ticket.status, ticket.reopen_count) == ("investigating", 1)
        assert [e.action for e in events(s, tid)][-1] == "reopened"
    # a consultation call rated unsatisfied touches no ticket (not a complaint queue)
    with db.session() as s:
        _queue_call(s, uid="1795400000.9", queue="consultation")
        assert d.ratings.record_rating(s, uniqueid="1795400000.9", queue="consultation", agent="", outcome="rated",
                                       score=3, level="unsatisfied", at=T0, ivr_session_id=None)["tickets"] == []


def test_ratings_are_what_happened():
    check("hangup", None, "")
    check("rated", 2, "neutral")
    for bad in [("rated", None, "neutral"), ("rated", 2, "happy"), ("no_input", 1, ""), ("maybe", None, "")]:
        with pytest.raises(InvalidInput):
            check(*bad)
    with pytest.raises(Exception, match="ratings complaints"):
        CallRatings(complaints=object())


def test_the_checker_names_a_bad_scale_with_its_line():
    text = """flow: r
start: rate
prompts:
  q: {zh: "请按键", en: "press"}
nodes:
  rate:
    type: rating
    prompt: q
    scale: {"1": satisfied, "12": neutral, "3": angry}
    next: bye
    default: bye
  bye: {type: hangup}
"""
    problems = [str(p) for p in parse_text(text, "r.yaml")[0]]
    assert "r.yaml:9: rating 'rate': scale key '12' is not one digit 0-9" in problems
    assert any(p.startswith("r.yaml:9: rating 'rate': level 'angry' for key 3") for p in problems)
