"""A missed appointment is one piece of work across no-show campaigns (issue 22.3).

One open contact per appointment whichever campaign holds it (a partial unique index,
on SQLite and PostgreSQL), none once a contact dealt with the patient; a second no-show
campaign does not copy handled appointments, and a newly imported one lands in one
campaign.  End to end through the simulated PBX: nobody is dialled twice."""
from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from callcenter.store import migrate
from dialer.campaigns import Settings, contact_row, create_campaign, insert_contacts, materialize
from dialer.compliance import Rules
from dialer.importer import import_rows
from dialer.models import Attempt, Campaign, Contact
from dialer.timeutil import to_dt
from tests import support
from tests.support.waiting import until

api = support.domain().dialer  # the dialer API as serve wires it

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
SETTINGS = Settings()
PATIENTS = [{"patient_id": f"H{i}", "name": f"Patient {i}", "phone": f"1380013800{i}"} for i in (1, 2, 3)]


def missed(i: int) -> dict:
    return {"appointment_id": f"A{i}", "patient_id": f"H{i}", "scheduled_at": "2026-11-25 08:30",
            "status": "missed", "department": "dental"}


def _row(campaign_id, ref_id, now):
    return contact_row(campaign_id, f"appointment:{ref_id}", phone="+8613800138001", name="", reason="no_show",
                       ref_type="appointment", ref_id=ref_id, due_after=to_dt(now), due_before=None,
                       patient_id=None, now=to_dt(now))


@pytest.mark.postgres
def test_the_database_refuses_a_second_open_contact_for_an_appointment(db):
    def setup(s):
        a = create_campaign(s, name="ns-a", kind="no_show")
        b = create_campaign(s, name="ns-b", kind="no_show")
        assert insert_contacts(s, [_row(a.id, 7, OPEN)]) == 1
        assert insert_contacts(s, [_row(b.id, 7, OPEN)]) == 0   # skipped, not an error
        return a.id, b.id
    a_id, b_id = db.call(setup)
    with pytest.raises(IntegrityError):   # the rule holds for any writer, not only insert_contacts
        with db.session() as s:
            s.add(Contact(**{**_row(b_id, 7, OPEN), "created_at": to_dt(OPEN)}))
            s.flush()

    def close_and_retry(s):
        c = s.scalar(select(Contact).where(Contact.campaign_id == a_id))
        c.state, c.outcome = "done", "expired"   # gave up without reaching the patient
        s.flush()
        return insert_contacts(s, [_row(b_id, 7, OPEN)])
    assert db.call(close_and_retry) == 1          # another campaign may try again


@pytest.mark.postgres
def test_migration_closes_existing_duplicates_before_the_index(db):
    """Databases written by the old code hold duplicates: the migration keeps the contact
    in a call (else the oldest), closes the rest as superseded, and closes every open one
    whose appointment was already dealt with; nothing is deleted."""
    migrate.downgrade(db.engine, "0900_merge_packages")
    try:
        with db.engine.begin() as conn:
            for i, name in enumerate(("n1", "n2", "n3"), 1):
                conn.execute(text("INSERT INTO campaigns (id, name, kind, mode, state, queue, settings, created_at) "
                                  "VALUES (:i, :n, 'no_show', 'progressive', 'running', '', '{}', :t)"),
                             {"i": i, "n": name, "t": to_dt(OPEN)})
            rows = [  # (id, campaign, appointment, state, outcome)
                (1, 1, "10", "pending", ""), (2, 2, "10", "pending", ""), (3, 3, "10", "pending", ""),
                (4, 1, "11", "pending", ""), (5, 2, "11", "dialing", ""),
                (6, 1, "12", "done", "rebooked"), (7, 2, "12", "pending", ""),
                (8, 1, "13", "done", "expired"), (9, 2, "13", "pending", "")]
            for cid, camp, ref, state, outcome in rows:
                conn.execute(text(
                    "INSERT INTO contacts (id, campaign_id, dedupe_key, phone, name, reason, ref_type, ref_id, "
                    "due_after, next_attempt_at, state, outcome, attempts, last_disposition, claimed_by, "
                    "claim_token, created_at) VALUES (:id, :camp, :key, '+8613800138001', '', 'no_show', "
                    "'appointment', :ref, :t, :t, :state, :outcome, 0, '', '', '', :t)"),
                    {"id": cid, "camp": camp, "key": f"{camp}:appointment:{ref}", "ref": ref, "state": state,
                     "outcome": outcome, "t": to_dt(OPEN)})
    finally:
        migrate.upgrade(db.engine)
    with db.session() as s:
        got = {c.id: (c.state, c.outcome) for c in s.scalars(select(Contact))}
    assert got == {1: ("pending", ""), 2: ("done", "superseded"), 3: ("done", "superseded"),
                   4: ("done", "superseded"), 5: ("dialing", ""),
                   6: ("done", "rebooked"), 7: ("done", "superseded"),
                   8: ("done", "expired"), 9: ("pending", "")}


def test_rebooking_closes_the_appointment_everywhere(db):
    def work(s):
        a = create_campaign(s, name="ns-a", kind="no_show")
        b = create_campaign(s, name="ns-b", kind="no_show")
        insert_contacts(s, [_row(a.id, 7, OPEN)])
        first = s.scalar(select(Contact))
        first.state, first.outcome = "done", "unreachable"
        s.flush()
        insert_contacts(s, [_row(b.id, 7, OPEN)])   # the second campaign tries again
        # meanwhile the patient calls back about the first call and the agent rebooks
        api.record_outcome(s, contact_id=first.id, outcome="rebooked", by="agent1", at=to_dt(OPEN))
        return {c.campaign_id: (c.state, c.outcome) for c in s.scalars(select(Contact))}, a.id, b.id
    got, a_id, b_id = db.call(work)
    assert got == {a_id: ("done", "rebooked"), b_id: ("done", "superseded")}


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_second_no_show_campaign_never_redials_handled_appointments_through_simulator(db, tmp_path):
    """Campaign A reaches two patients (one rebooked by the agent).  A second no-show campaign
    created afterwards gets none of them, a newly imported missed appointment lands in one
    campaign only, and the dialer (no per-number gap to hide repeats) calls each patient once."""
    from callcenter.ami.gateway import AmiGateway
    from callcenter.queuecalls.tracker import QueueCallsTracker
    from callcenter.simulator import SimConfig, SimulatedPBX
    from dialer.engine import Dialer, DialSettings
    from dialer.pacing import QueueCallsAgents

    clock = ScaledClock(reactor, 30, start=OPEN)
    rules = Rules()

    def seed(s):
        create_campaign(s, name="no-shows", kind="no_show", mode="progressive", queue="consultation",
                        state="running")
        assert import_rows(s, "patients", PATIENTS, "test", region="CN", settings=SETTINGS).applied
        r = import_rows(s, "appointments", [missed(1), missed(2)], "test", region="CN", settings=SETTINGS,
                        rules=rules, now=OPEN)
        assert r.applied and r.contacts_created == 2
    db.call(seed)
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path,
                       config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}))
    await pbx.start()
    pbx.set_agent("1001", answer_delay=1, talk_time=10)
    for p in PATIENTS:
        pbx.set_patient(p["phone"], "answer", ring=2, hold=60, delay=1)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    tracker = QueueCallsTracker(db, clock, gateway=gw)

    d = Dialer(db=db, clock=clock, gateway=gw, rules=rules, instance="ns", agents=QueueCallsAgents(tracker),
               dial=DialSettings(channel_template="Local/{number}@sim-patient", max_rate=10, phone_gap_minutes=0))

    def contacts():
        with db.session() as s:
            return [(s.get(Campaign, c.campaign_id).name, c.ref_id, c.state, c.outcome)
                    for c in s.scalars(select(Contact).order_by(Contact.id))]

    def attempts():
        with db.session() as s:
            return [(a.phone, a.state) for a in s.scalars(select(Attempt).order_by(Attempt.id))]

    def all_done():
        return all(c[2] == "done" for c in contacts()) and all(a[1] == "ended" for a in attempts())

    try:
        await tracker.start()
        await gw.start()
        await gw.wait_connected(10)
        await until(lambda: len(QueueCallsAgents(tracker).free_agents("consultation").free) == 1)
        await d.start()
        await until(lambda: len(attempts()) == 2 and all_done())
        await d.idle()

        def rebook_and_add_campaign(s):
            first = s.scalar(select(Contact).order_by(Contact.id))
            api.record_outcome(s, contact_id=first.id, outcome="rebooked", by="agent1", at=to_dt(clock.seconds()))
            b = create_campaign(s, name="no-shows-2", kind="no_show", mode="progressive", queue="consultation",
                                state="running")
            return materialize(s, b, now=clock.seconds(), settings=SETTINGS, rules=rules)
        assert db.call(rebook_and_add_campaign) == 0      # nothing handled is copied
        r = db.call(lambda s: import_rows(s, "appointments", [missed(3)], "test", region="CN",
                                          settings=SETTINGS, rules=rules, now=clock.seconds()))
        assert r.contacts_created == 1                    # one campaign, not every one
        await until(lambda: len(attempts()) >= 3 and all_done())
        await asyncio.sleep(0.5)   # ~15 s of campaign time: a repeat dial would start here
        await d.idle()
    finally:
        await d.stop()
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    assert [a[0] for a in attempts()] == ["+8613800138001", "+8613800138002", "+8613800138003"]
    got = contacts()
    assert [(c[0], c[3]) for c in got] == [("no-shows", "rebooked"), ("no-shows", "reached"),
                                           ("no-shows", "reached")]


def test_appointment_no_longer_missed_at_the_hospital_closes_its_call(db):
    """The hospital's next import says the appointment was rebooked (booked again) or
    attended: the pending no-show call is moot, in whichever campaign it is."""
    def work(s):
        create_campaign(s, name="ns-a", kind="no_show", state="running")
        import_rows(s, "patients", PATIENTS, "test", region="CN", settings=SETTINGS)
        first = import_rows(s, "appointments", [missed(1), missed(2)], "test", region="CN", settings=SETTINGS,
                            now=OPEN)
        again = import_rows(s, "appointments", [{**missed(1), "status": "booked"}, missed(2)], "test",
                            region="CN", settings=SETTINGS, now=OPEN + 60)
        return first.contacts_created, again.contacts_closed, sorted(
            (c.ref_id, c.state, c.outcome) for c in s.scalars(select(Contact)))
    created, closed, contacts = db.call(work)
    assert (created, closed) == (2, 1)
    with db.session() as s:
        ids = sorted(s.scalars(select(Contact.ref_id)))
    assert contacts == [(ids[0], "done", "superseded"), (ids[1], "pending", "")]
