"""0950: numbers stored before "one form per datum" are rewritten to E.164, and survey
sessions get the dialled patient's number instead of the hospital's CallerID."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select

from callcenter.store import migrate
from dialer.campaigns import contact_row, insert_contacts
from dialer.models import Attempt, Campaign, Contact
from ivr_flows.models import IvrSession
from recordings.models import Recording

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)


def _session(uniqueid, number, flow="hotline"):
    return IvrSession(flow=flow, uniqueid=uniqueid, caller_number=number, started_at=NOW, path=[],
                      digits="", result="x", language="zh", detail={})


def _recording(path, uniqueid, number):
    return dict(path=path, kind="queue", uniqueid=uniqueid, caller_number=number, started_at=NOW,
                status="ready", format="wav", channel="", legal_hold=False, error="", created_at=NOW)


@pytest.mark.postgres
def test_old_numbers_become_e164_and_survey_sessions_the_patient(db):
    migrate.downgrade(db.engine, "0920_outbound_queue_calls")  # the revision before 0950
    try:
        with db.session() as s:  # rows of 0920's columns (later revisions add some): 0950 changes data only
            cid = s.scalar(insert(Campaign).values(name="s", kind="revisit", mode="survey", state="running",
                                                   queue="", settings={}, created_at=NOW)
                           .returning(Campaign.id))
            insert_contacts(s, [contact_row(cid, "k", phone="+8613900139002", name="", reason="revisit",
                                            ref_type="", ref_id="", due_after=NOW, due_before=None,
                                            patient_id=None, now=NOW)])
            kid = s.scalar(select(Contact.id))
            s.add(Attempt(contact_id=kid, campaign_id=cid, phone="+8613900139002", uniqueid="2.2",
                          started_at=NOW))
            s.add_all([_session("1.1", "13800138001"), _session("2.2", "02168888888", "revisit_survey"),
                       _session("3.3", "")])
            s.execute(insert(Recording), [_recording("a.wav", "1.1", "13800138001"),
                                          _recording("b.wav", "4.4", "1001"), _recording("c.wav", "5.5", None)])
            s.commit()
        migrate.upgrade(db.engine, phone_region="CN")
    finally:
        migrate.upgrade(db.engine)  # the session's database stays at head whatever happened
    with db.session() as s:
        ivr = {r.uniqueid: r.caller_number for r in s.scalars(select(IvrSession))}
        recs = {r.path: r.caller_number for r in s.scalars(select(Recording))}
    assert ivr == {"1.1": "+8613800138001", "2.2": "+8613900139002", "3.3": ""}
    assert recs == {"a.wav": "+8613800138001", "b.wav": "1001", "c.wav": None}
    assert len(migrate.heads()) == 1
