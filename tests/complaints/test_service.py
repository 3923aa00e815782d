"""Tickets in the store: opening, the life cycle, audit, revisits and reopening."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.complaints import lifecycle
from callcenter.complaints import service
from callcenter.complaints.models import ComplaintDeadline, ComplaintFollowup, ComplaintTicket
from callcenter.store.models import AuditEntry

from tests import support

svc = support.complaints()  # the service as the product builds it (default policy)

SH = ZoneInfo("Asia/Shanghai")


def sh(*a) -> dt.datetime:
    return dt.datetime(*a, tzinfo=SH)


def utc(t) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _open(s, **kw):
    args = dict(actor="agent1", category="attitude", severity="normal", channel="phone",
                summary="rude reply at the front desk", received_at=sh(2026, 10, 9, 10, 0),
                department="front desk", tags=["front-desk", "front-desk", "repeat"],
                patient_phone="13800138001", patient_name="王小明", call_uniqueid="1700000000.42")
    args.update(kw)
    return svc.open_ticket(s, **args)


# -- pure state machine ------------------------------------------------------

@pytest.mark.parametrize("frm,to,needle", [
    ("received", "closed", "from 'received' to 'closed'"),
    ("received", "resolved", "allowed from 'received': acknowledged, investigating"),
    ("acknowledged", "answered", "from 'acknowledged' to 'answered'"),
    ("resolved", "revisited", "only a revisit"),
    ("revisited", "investigating", "that is a reopen"),
    ("resolved", "closed", "needs a note"),
    ("closed", "resolved", "from 'closed' to 'resolved'"),
    ("investigating", "archived", "unknown state"),
])
def test_illegal_moves_name_from_and_to(frm, to, needle):
    with pytest.raises(lifecycle.IllegalTransition) as err:
        lifecycle.check(frm, to)
    assert needle in str(err.value)
    assert err.value.from_state == frm and err.value.to_state == to


def test_legal_moves():
    assert lifecycle.check("received", "investigating") == "investigating"
    assert lifecycle.check("resolved", "revisited", via="revisit") == "revisited"
    assert lifecycle.check("resolved", "closed", note="patient unreachable 3 times") == "closed"
    assert lifecycle.check("closed", "investigating", via="reopen") == "investigating"


# -- store -------------------------------------------------------------------

@pytest.mark.postgres
def test_open_phone_ticket_numbers_links_deadlines_audit(db):
    with db.session() as s:
        t1 = _open(s)
        t2 = _open(s, received_at=sh(2026, 10, 9, 11, 0), call_uniqueid=None)
        t3 = _open(s, received_at=sh(2027, 1, 4, 9, 0), call_uniqueid=None)
        ids = t1.id, t2.id, t3.id
    with db.session() as s:
        t1, t2, t3 = (s.get(ComplaintTicket, i) for i in ids)
        assert (t1.number, t2.number, t3.number) == ("TS-2026-000001", "TS-2026-000002", "TS-2027-000001")
        assert t1.status == "acknowledged"                      # phone: the agent acknowledged it
        assert t1.tags == ["front-desk", "repeat"]
        assert utc(t1.acknowledged_at) == sh(2026, 10, 9, 10, 0)
        assert utc(t1.start_due) == sh(2026, 10, 10, 10, 0)    # Sat 10-10 is a make-up working day
        assert utc(t1.answer_due) == sh(2026, 10, 13, 10, 0)
        assert t1.ack_due is None
        assert [(l.kind, l.ref) for l in svc.links(s, t1.id)] == [("call", "1700000000.42")]
        ev = [(e.action, e.field, e.from_value, e.to_value, e.actor) for e in svc.events(s, t1.id)]
        assert ev[0] == ("opened", "status", None, "received", "agent1")
        assert ("moved", "status", "received", "acknowledged", "agent1") in ev
        assert ("linked", "call", None, "1700000000.42", "agent1") in ev
        assert svc.get_ticket(s, "ts-2026-000002").id == t2.id
        audits = s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == "TS-2026-000001")).all()
        assert "complaint.opened" in audits and "complaint.moved" in audits


@pytest.mark.postgres
def test_full_life_cycle_with_satisfied_revisit(db):
    with db.session() as s:
        t = _open(s, channel="online", received_at=sh(2026, 10, 9, 17, 10))
        tid = t.id
        assert t.status == "received" and utc(t.ack_due) == sh(2026, 10, 10, 8, 40)
        svc.transition(s, tid, "acknowledged", actor="sup", at=sh(2026, 10, 10, 8, 20))
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 10, 10, 9, 0))
        svc.transition(s, tid, "answered", actor="sup", at=sh(2026, 10, 12, 9, 0))
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 12, 10, 0))
    with db.session() as s:
        t = s.get(ComplaintTicket, tid)
        assert t.status == "resolved" and utc(t.revisit_due) == sh(2026, 10, 13, 10, 0)
        fu = s.scalars(select(ComplaintFollowup).where(ComplaintFollowup.ticket_id == tid)).one()
        assert fu.status == "scheduled" and fu.contact_id and utc(fu.due_before) == sh(2026, 10, 13, 10, 0)
        assert svc.pending_followups(s) == []  # handed to the dialer in the same transaction
        with pytest.raises(lifecycle.IllegalTransition, match="only a revisit"):
            svc.transition(s, tid, "revisited", actor="sup", at=sh(2026, 10, 12, 11, 0))
    with db.session() as s:
        svc.record_revisit(s, tid, True, "thanks", sh(2026, 10, 12, 15, 0), score=5)
    with db.session() as s:
        t = s.get(ComplaintTicket, tid)
        assert t.status == "closed" and t.satisfied is True and t.satisfaction == 5
        assert utc(t.closed_at) == sh(2026, 10, 12, 15, 0)
        dls = {d.kind: d for d in svc.ticket_deadlines(s, tid)}
        assert all(d.met_at is not None for d in dls.values())
        assert utc(dls["ack"].met_at) == sh(2026, 10, 10, 8, 20)
        assert utc(dls["answer"].met_at) == sh(2026, 10, 12, 9, 0)
        assert s.get(ComplaintFollowup, fu.id).status == "done"
        moves = [(e.from_value, e.to_value) for e in svc.events(s, tid) if e.field == "status"]
        assert moves == [(None, "received"), ("received", "acknowledged"), ("acknowledged", "investigating"),
                         ("investigating", "answered"), ("answered", "resolved"),
                         ("resolved", "revisited"), ("revisited", "closed")]


@pytest.mark.postgres
def test_unsatisfied_revisit_reopens_with_new_deadlines(db):
    with db.session() as s:
        tid = _open(s).id
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 10, 9, 11, 0))
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 9, 16, 0))
        svc.record_revisit(s, tid, False, "still waiting for the refund", sh(2026, 10, 10, 9, 0), actor="dialer")
    with db.session() as s:
        t = s.get(ComplaintTicket, tid)
        assert t.status == "investigating" and t.reopen_count == 1 and t.satisfied is False
        assert utc(t.answer_due) == sh(2026, 10, 14, 9, 0)     # 3 working days from Sat 10-10 09:00
        rounds = sorted((d.round, d.kind) for d in svc.ticket_deadlines(s, tid))
        assert rounds == [(0, "answer"), (0, "revisit"), (0, "start"), (1, "answer")]
        ev = [(e.action, e.from_value, e.to_value) for e in svc.events(s, tid) if e.field == "status"]
        assert ev[-2:] == [("moved", "resolved", "revisited"), ("reopened", "revisited", "investigating")]
        # the second resolution gets its own revisit and follow-up round
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 12, 10, 0))
        fus = s.scalars(select(ComplaintFollowup.round).where(ComplaintFollowup.ticket_id == tid)
                        .order_by(ComplaintFollowup.id)).all()
        assert fus == [0, 1]
        svc.record_revisit(s, tid, True, "ok now", sh(2026, 10, 12, 18, 0))
        assert s.get(ComplaintTicket, tid).status == "closed"


@pytest.mark.postgres
def test_voice_message_hook_opens_unclassified_ticket(db, caplog):
    with db.session() as s:
        tid = svc.open_from_voice_message(s, caller_number="13912345678", caller_name="李四",
                                          recording_id=17, received_at=sh(2026, 10, 9, 21, 0).timestamp(),
                                          language="zh", uniqueid="1700000001.7")
    with db.session() as s:
        t = s.get(ComplaintTicket, tid)
        assert (t.channel, t.category, t.status, t.created_by) == ("voicemail", "", "received", "ivr")
        assert utc(t.ack_due) == sh(2026, 10, 10, 9, 0)
        assert {(l.kind, l.ref) for l in svc.links(s, tid)} == {("recording", "17"), ("call", "1700000001.7")}
        svc.update_ticket(s, tid, actor="sup", at=sh(2026, 10, 10, 8, 5), category="fees", department="billing")
        ev = [(e.field, e.from_value, e.to_value) for e in svc.events(s, tid) if e.action == "changed"]
        assert ev == [("category", "", "fees"), ("department", "", "billing")]
    assert "13912345678" not in caplog.text and "李四" not in caplog.text


def test_bad_input_names_the_field(db):
    with db.session() as s:
        with pytest.raises(service.ComplaintError, match="category: unknown 'food'"):
            _open(s, category="food")
        with pytest.raises(service.ComplaintError, match="channel"):
            _open(s, channel="fax")
        tid = _open(s).id
        with pytest.raises(service.ComplaintError, match="severity"):
            svc.update_ticket(s, tid, actor="x", at=sh(2026, 10, 9, 12, 0), severity="urgent")
        with pytest.raises(service.ComplaintError, match="reason"):
            svc.reopen(s, tid, actor="x", at=sh(2026, 10, 9, 12, 0), reason=" ")
        with pytest.raises(service.TicketNotFound, match="no complaint ticket TS-2026-999999"):
            svc.get_ticket(s, "TS-2026-999999")


def test_closing_without_revisit_needs_a_note(db):
    with db.session() as s:
        tid = _open(s, patient_phone="").id
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 10, 9, 11, 0))
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 9, 12, 0))
        fu = s.scalars(select(ComplaintFollowup).where(ComplaintFollowup.ticket_id == tid)).one()
        assert fu.status == "no_phone"
        with pytest.raises(lifecycle.IllegalTransition, match="needs a note"):
            svc.transition(s, tid, "closed", actor="sup", at=sh(2026, 10, 9, 13, 0))
        svc.transition(s, tid, "closed", actor="sup", at=sh(2026, 10, 9, 13, 0), note="no phone number")
        assert s.get(ComplaintTicket, tid).status == "closed"


def test_resolve_hands_the_revisit_to_the_dialer(db, monkeypatch):
    calls = []

    def schedule_followup(session, **kw):
        calls.append(kw)
        return 99

    monkeypatch.setattr(svc, "followups", support.FunctionFollowups(schedule_followup))
    with db.session() as s:
        tid = _open(s).id
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 10, 9, 11, 0))
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 9, 12, 0))
        fu = s.scalars(select(ComplaintFollowup).where(ComplaintFollowup.ticket_id == tid)).one()
        assert (fu.status, fu.contact_id) == ("scheduled", 99)
    assert calls == [{"campaign_kind": "complaint_followup", "phone": "13800138001", "name": "王小明",
                      "ref_type": "complaint", "ref_id": tid, "due_after": sh(2026, 10, 9, 12, 0),
                      "due_before": sh(2026, 10, 10, 12, 0)}]


def test_dialer_refusal_does_not_block_resolution(db, monkeypatch):
    def schedule_followup(session, **kw):
        raise ValueError("number 13800138001 is on the do-not-call list")

    monkeypatch.setattr(svc, "followups", support.FunctionFollowups(schedule_followup))
    with db.session() as s:
        tid = _open(s).id
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 10, 9, 11, 0))
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 9, 12, 0))
        fu = s.scalars(select(ComplaintFollowup).where(ComplaintFollowup.ticket_id == tid)).one()
        assert fu.status == "failed" and "do-not-call" in fu.error and "13800138001" not in fu.error
        assert s.get(ComplaintTicket, tid).status == "resolved"


def test_complex_progress_sets_answer_deadline(db):
    with db.session() as s:
        tid = _open(s, severity="complex", received_at=sh(2026, 9, 28, 9, 0)).id
        t = s.get(ComplaintTicket, tid)
        assert t.answer_due is None and utc(t.progress_due) == sh(2026, 10, 13, 9, 0)
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 9, 28, 10, 0))
        svc.record_progress(s, tid, actor="sup", at=sh(2026, 10, 9, 9, 0), note="waiting for the lab",
                            expected_resolution=dt.date(2026, 10, 20))
        svc.record_progress(s, tid, actor="sup", at=sh(2026, 10, 12, 9, 0), note="lab delayed",
                            expected_resolution=dt.date(2026, 10, 23))
        t = s.get(ComplaintTicket, tid)
        assert utc(t.answer_due) == sh(2026, 10, 23, 17, 30)
        answers = s.scalars(select(ComplaintDeadline).where(ComplaintDeadline.ticket_id == tid,
                                                            ComplaintDeadline.kind == "answer")
                            .order_by(ComplaintDeadline.id)).all()
        assert [a.active for a in answers] == [False, True]
        prog = s.scalars(select(ComplaintDeadline).where(ComplaintDeadline.ticket_id == tid,
                                                         ComplaintDeadline.kind == "progress")).one()
        assert utc(prog.met_at) == sh(2026, 10, 9, 9, 0)


def test_revisit_on_a_ticket_no_longer_resolved(db):
    with db.session() as s:
        tid = _open(s).id
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 10, 9, 11, 0))
        # strict (operators): a clear error; lenient (the dialer): recorded, nothing moves
        with pytest.raises(lifecycle.IllegalTransition, match="from 'investigating' to 'revisited'"):
            svc.record_revisit(s, tid, True, "", sh(2026, 10, 9, 12, 0), strict=True)
        t = svc.record_revisit(s, tid, True, "late report", sh(2026, 10, 9, 12, 0))
        assert t.status == "investigating" and t.revisited_at is None
        assert svc.events(s, tid)[-1].action == "revisit-ignored"


def test_do_not_call_and_reopened_rounds_reference(db, monkeypatch):
    seen = []

    def schedule_followup(session, **kw):
        seen.append(kw["ref_id"])
        return None if len(seen) == 1 else 7

    monkeypatch.setattr(svc, "followups", support.FunctionFollowups(schedule_followup))
    with db.session() as s:
        tid = _open(s).id
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 10, 9, 11, 0))
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 9, 12, 0))
        svc.record_revisit(s, tid, False, "no", sh(2026, 10, 9, 13, 0), actor="sup")
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 9, 14, 0))
        fus = s.scalars(select(ComplaintFollowup).where(ComplaintFollowup.ticket_id == tid)
                        .order_by(ComplaintFollowup.id)).all()
        assert [(f.round, f.status, f.contact_id) for f in fus] == [(0, "refused", None), (1, "scheduled", 7)]
        assert seen == [tid, f"{tid}#1"]
        assert svc.get_ticket(s, f"{tid}#1").id == tid


@pytest.mark.postgres
def test_with_the_real_dialer_api(db, monkeypatch):
    """Contract with dialer.api: resolving creates a complaint-follow-up contact; the
    dialer's completed outcome comes back through record_revisit and closes the ticket."""
    from dialer.models import Contact

    api = svc.followups  # the real DialerApi the product wires in
    with db.session() as s:
        tid = _open(s).id
        svc.transition(s, tid, "investigating", actor="sup", at=sh(2026, 10, 9, 11, 0))
        svc.transition(s, tid, "resolved", actor="sup", at=sh(2026, 10, 9, 12, 0))
        fu = s.scalars(select(ComplaintFollowup).where(ComplaintFollowup.ticket_id == tid)).one()
        assert fu.status == "scheduled"
        c = s.get(Contact, fu.contact_id)
        assert (c.reason, c.ref_type, c.ref_id) == ("complaint_followup", "complaint", str(tid))
    with db.session() as s:
        api.record_outcome(s, contact_id=fu.contact_id, outcome="completed", by="agent3", satisfied=True,
                           note="happy now", at=sh(2026, 10, 9, 18, 0))
    with db.session() as s:
        t = s.get(ComplaintTicket, tid)
        assert t.status == "closed" and t.satisfied is True
        assert utc(t.revisited_at) == sh(2026, 10, 9, 18, 0)
