"""IVR callers and a survey patient while the database is unavailable (injected time).

Over real FastAGI TCP (and, for the survey, real AMI through the simulated PBX): the
database refuses every write for a stretch of simulated time while callers go through
the hotline (a callback request, after-hours voice messages to a ticket and to a
callback, a consultation) and a patient answers the revisit survey.  Callers never
wait on the database; afterwards every ``ivr_sessions`` row, the callback contacts,
the ticket, the recordings and the survey answers are stored exactly once, and the
survey's dial attempt ends ``completed`` (was: session rows lost, survey lost and the
attempt ``hungup``, so the patient would be called again).  The first writes after the
outage commit and then report a failure (commit in doubt), so retries must not repeat.
"""
from __future__ import annotations

from dialer.pacing import StaticAgents

import asyncio
import concurrent.futures
import json
import sqlite3

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from ivr_flows.models import IvrSession
from tests import support

from tests.support.ivr import CLOSED, OPEN, call, recordings_config
from tests.support.flaky_db import FlakyDatabase
from tests.support.waiting import until

pytestmark = pytest.mark.slow


class DoubtfulDatabase(FlakyDatabase):
    """Down inside the windows; then the next ``doubtful`` writes commit and still raise
    (the connection died while the COMMIT was acknowledged)."""

    def __init__(self, db, clock, windows, doubtful: int = 3):
        super().__init__(db, clock, windows)
        self.doubtful, self.in_doubt = doubtful, 0

    def _doubt(self) -> OperationalError | None:
        """After the outage, for the next ``doubtful`` writes that committed: the error."""
        if self.doubtful and self.windows and self._clock.seconds() >= self.windows[-1][1]:
            self.doubtful -= 1
            self.in_doubt += 1
            return OperationalError("(injected) COMMIT", {}, sqlite3.OperationalError("disk I/O error"))
        return None

    async def run(self, fn, *args, **kw):
        self._check()
        result = await self._db.run(fn, *args, **kw)
        exc = self._doubt()
        if exc is not None:
            raise exc
        return result

    def submit(self, fn, *args, **kw):
        """The group commit's path: the same doubt, decided when the commit is done."""
        done = super().submit(fn, *args, **kw)
        out = concurrent.futures.Future()

        def relay(f):
            if f.exception() is not None:
                out.set_exception(f.exception())
                return
            exc = self._doubt()
            if exc is not None:
                out.set_exception(exc)
            else:
                out.set_result(f.result())
        done.add_done_callback(relay)
        return out


def count(db, model, *where) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


OUTAGE = 300.0  # simulated seconds the database is down (3 s real at x100)
CALLS = {  # name -> (hospital time, caller number, uniqueid, keys)
    "callback": (OPEN, "13800138011", "1795400001.1", [(0.3, "1"), (0.3, "4")]),
    "consultation": (OPEN, "13800138012", "1795400002.2", [(0.3, "1"), (0.3, "1")]),
    "vm_complaint": (CLOSED, "13800138013", "1795400003.3", [(0.3, "1"), (0.3, "1"), (3.0, "#")]),
    "vm_callback": (CLOSED, "13800138014", "1795400004.4", [(0.3, "1"), (0.3, "2"), (3.0, "#")]),
}


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_hotline_callers_during_a_database_outage(db, tmp_path):
    from callcenter.complaints.models import ComplaintLink, ComplaintTicket
    from dialer.models import Contact
    from recordings.models import Recording

    servers: dict[float, tuple] = {}
    for at in (OPEN, CLOSED):  # one server per hospital time (open hours, after hours)
        clock = ScaledClock(reactor, 100.0, start=at)
        flaky = DoubtfulDatabase(db, clock, [(at, at + OUTAGE)])
        server = support.agi_server(clock=clock, db=flaky, config=recordings_config(tmp_path),
                                    recordings_dir=str(tmp_path))
        await server.start()
        servers[at] = (server, flaky)
    results, ended_at = {}, {}
    try:
        async def one(name):
            at, number, uid, keys = CALLS[name]
            server = servers[at][0]
            status, caller = await call(server, number=number, name="王小明", uniqueid=uid, keys=list(keys))
            ended_at[name] = server.clock.seconds() - at
            results[name] = (status, dict(caller.variables))

        await asyncio.gather(*(one(n) for n in CALLS))
        # every caller finished while the database was still down, none waited on it
        assert all(t < OUTAGE for t in ended_at.values()), ended_at
        assert count(db, IvrSession) == 0 and count(db, ComplaintTicket) == 0
        assert results["consultation"][1].get("QUEUE") == "consultation"  # the flow went on
        assert "IVR_SESSION" not in results["consultation"][1]  # the one thing an outage costs
        for server, _ in servers.values():
            assert server.writes.down and server.writes.pending > 0
        for server, _ in servers.values():
            await asyncio.wait_for(server.writes.drained(), 20)
    finally:
        for server, _ in servers.values():
            await server.stop()
    flakies = [f for _, f in servers.values()]
    assert sum(f.failures for f in flakies) > 0 and sum(f.in_doubt for f in flakies) == 6

    with db.session() as s:
        rows = {r.uniqueid: r for r in s.scalars(select(IvrSession))}
        contacts = list(s.scalars(select(Contact)))
        tickets = list(s.scalars(select(ComplaintTicket)))
        recordings = list(s.scalars(select(Recording)))
        links = {(ln.ticket_id, ln.kind): ln.ref for ln in s.scalars(select(ComplaintLink))}
    assert count(db, IvrSession) == len(CALLS) == len(rows)  # one row per call, none doubled
    by_name = {name: rows[uid] for name, (_, _, uid, _) in CALLS.items()}
    assert {n: r.result for n, r in by_name.items()} == {
        "callback": "callback", "consultation": "queued:consultation", "vm_complaint": "voicemail",
        "vm_callback": "voicemail"}
    assert all(r.ended_at is not None and r.path for r in rows.values())
    # the callback contacts: one each, linked to their IVR session, ids kept in the session row
    assert sorted(c.phone for c in contacts) == ["+8613800138011", "+8613800138014"]
    for name in ("callback", "vm_callback"):
        contact = next(c for c in contacts if c.phone.endswith(CALLS[name][1]))
        assert contact.ref_type == "ivr_session" and contact.ref_id == str(by_name[name].id)
        assert by_name[name].detail["contact_id"] == contact.id
    # the voice message to a complaint: one ticket, linked to its recording and its IVR session
    assert len(tickets) == 1 and len(recordings) == 2
    t = tickets[0]
    assert by_name["vm_complaint"].detail["ticket_id"] == t.id
    assert links[(t.id, "ivr_session")] == str(by_name["vm_complaint"].id)
    assert links[(t.id, "recording")] == str(by_name["vm_complaint"].detail["recording_id"])
    print("\nFIGURES ivr_db_outage: " + json.dumps({
        "outage_seconds": OUTAGE, "calls": len(CALLS), "failed_writes": sum(f.failures for f in flakies),
        "commits_in_doubt": sum(f.in_doubt for f in flakies),
        "peak_queued_writes": max(srv.writes.peak_pending for srv, _ in servers.values()),
        "caller_seconds": {k: round(v, 1) for k, v in ended_at.items()},
        "sessions": len(rows), "contacts": len(contacts), "tickets": len(tickets),
        "recordings": len(recordings)}))


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_survey_answered_during_a_database_outage_completes_the_attempt(db, tmp_path):
    from callcenter.ami.gateway import AmiGateway
    from callcenter.simulator import SimulatedPBX
    from dialer.campaigns import contact_row, create_campaign, insert_contacts
    from dialer.compliance import Rules
    from dialer.engine import Dialer, DialSettings
    from dialer.models import Attempt, Contact
    from dialer.timeutil import to_dt

    clock = ScaledClock(reactor, 60.0, start=OPEN)

    def seed(s):
        c = create_campaign(s, name="revisit-survey", kind="revisit", mode="survey", state="running",
                            max_attempts=3)
        insert_contacts(s, [contact_row(c.id, "t1", phone="+8613800138021", name="P1", reason="revisit",
                                        ref_type="treatment", ref_id=1, due_after=to_dt(OPEN - 60),
                                        due_before=None, patient_id=None, now=to_dt(OPEN - 60))])
    db.call(seed)
    flaky = DoubtfulDatabase(db, clock, [], doubtful=2)
    server = support.agi_server(clock=clock, db=flaky)
    await server.start()
    pbx = SimulatedPBX(clock, seed=5, spool_dir=tmp_path, agi_port=server.port)
    await pbx.start()
    pbx.set_patient("13800138021", "answer", ring=4, survey_digits="1w4w5", hold=30, delay=1)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    dialer = Dialer(agents=StaticAgents(), db=flaky, clock=clock, gateway=gw, rules=Rules(), instance="outage",
                    dial=DialSettings(channel_template="Local/{number}@sim-patient", originate_timeout=20,
                                      max_rate=20, caller_id='"City Hospital" <02100000000>'))

    def attempts():
        with db.session() as s:
            return [(a.state, a.disposition, a.survey) for a in s.scalars(select(Attempt))]
    survey_seen = []
    try:
        await gw.start()
        await gw.wait_connected(10)
        await dialer.start()
        await until(lambda: attempts())  # the attempt is written; the Originate goes out
        down_from = clock.seconds()
        flaky.windows = [(down_from, down_from + 90)]  # down before the patient answers
        await until(lambda: server.sessions_total >= 1 and server.active == 0)  # survey done, call over
        survey_seen.append(clock.seconds() - down_from)
        assert flaky.down() and [(a[0], a[2]) for a in attempts()] == [("dialing", None)]  # nothing stored yet
        await until(lambda: attempts() and attempts()[0][0] == "ended" and server.writes.pending == 0)
        await dialer.idle()
    finally:
        await dialer.stop()
        await gw.stop()
        await pbx.stop()
        await server.stop()
    assert flaky.failures > 0 and flaky.in_doubt == 2
    assert survey_seen[0] < 90  # the patient went through the survey inside the outage
    assert attempts() == [("ended", "completed", {"recovery": "4", "satisfaction": "5"})]
    with db.session() as s:
        contact = s.scalar(select(Contact))
        rows = list(s.scalars(select(IvrSession)))
        n_attempts = s.scalar(select(func.count()).select_from(Attempt))
    assert (contact.state, contact.outcome) == ("done", "completed")  # never called again
    assert n_attempts == 1
    assert len(rows) == 1 and rows[0].result == "survey_done" and "survey" in rows[0].detail["done"]
    print("\nFIGURES ivr_survey_db_outage: " + json.dumps({
        "failed_writes": flaky.failures, "commits_in_doubt": flaky.in_doubt,
        "survey_done_after_outage_start_s": round(survey_seen[0], 1), "attempt": attempts()[0][:2],
        "contact": [contact.state, contact.outcome]}))


@pytest.mark.timeout(30)
async def test_shutdown_during_an_outage_logs_what_was_not_stored_masked(db, caplog):
    import logging

    clock = ScaledClock(reactor, 100.0, start=OPEN)
    flaky = FlakyDatabase(db, clock, [(OPEN, OPEN + 10**6)])
    server = support.agi_server(clock=clock, db=flaky, shutdown_write_timeout=2)
    await server.start()
    try:
        _, number, uid, keys = CALLS["callback"]
        await call(server, number=number, uniqueid=uid, keys=list(keys))
        assert server.writes.pending == 3  # session, callback request, session end
    finally:
        with caplog.at_level(logging.INFO):
            await server.stop()
    lost = [r.getMessage() for r in caplog.records if "not stored at shutdown" in r.getMessage()]
    assert len(lost) == 1 and "3 database write(s)" in lost[0] and "callback request" in lost[0]
    assert number not in caplog.text and number[-4:] in lost[0]  # masked, still recognisable
    assert count(db, IvrSession) == 0
