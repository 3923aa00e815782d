"""Campaigns on the web: the campaigns report uses the dialer's own figures, campaign pages
and JSON API, API tokens, the import endpoint.  Real HTTP over TCP; real attempt rows."""
from __future__ import annotations

import datetime as dt

from twisted.internet.task import Clock

from dialer.campaigns import contact_row, create_campaign, insert_contacts, status
from dialer.models import Attempt, Campaign, Contact

from .helpers import Client, FakeQueueCalls, add_users, running_web

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)  # 11:00 in Shanghai


def utc_clock() -> Clock:
    c = Clock()
    c.advance(NOW.timestamp())
    return c


def seed_campaign(s, name="no-shows", kind="no_show"):
    """Five contacts with real attempt rows as the dialer writes them (dispositions per
    docs: there is no final disposition 'answered'; answered = answered_at set)."""
    c = create_campaign(s, name=name, kind=kind, mode="progressive", queue="consultation", state="running")
    before = NOW - dt.timedelta(hours=2)
    insert_contacts(s, [contact_row(c.id, f"a{i}", phone=f"+861380013800{i}", name=f"P{i}", reason=kind,
                                    ref_type="appointment", ref_id=i, due_after=before, due_before=None,
                                    patient_id=None, now=before) for i in range(1, 6)])
    cs = {x.phone[-1]: x for x in s.query(Contact).filter(Contact.campaign_id == c.id)}
    t = before + dt.timedelta(minutes=5)

    def attempt(contact, disposition, answered=False, abandoned=False):
        s.add(Attempt(contact_id=contact.id, campaign_id=c.id, phone=contact.phone, state="ended",
                      disposition=disposition, started_at=t, answered_at=t if answered else None,
                      ended_at=t, abandoned=abandoned))
        contact.attempts += 1
    attempt(cs["1"], "busy")
    attempt(cs["1"], "reached", answered=True)
    cs["1"].state, cs["1"].outcome = "done", "rebooked"
    attempt(cs["2"], "completed", answered=True)
    cs["2"].state, cs["2"].outcome = "done", "completed"
    attempt(cs["3"], "abandoned", answered=True, abandoned=True)
    cs["3"].next_attempt_at = NOW + dt.timedelta(hours=1)
    attempt(cs["5"], "opted_out", answered=True)
    cs["5"].state, cs["5"].outcome = "done", "opted_out"
    s.flush()
    return c.id


async def test_campaigns_report_counts_what_the_dialer_writes(config, db):
    add_users(db)
    db.call(seed_campaign)
    with db.session() as s:
        expected = status(s, s.query(Campaign).one(), now=NOW.timestamp(),
                          abandon_days=config.dialer.predictive_window_days)
    async with running_web(config, db, clock=utc_clock(), queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        r = await c.get("/api/reports/campaigns?to=2026-11-25")
        assert r.status == 200, r.text
        row, = r.json()["rows"]
        # the figures `callcenter campaign status` prints, not a disposition nobody writes
        assert (row["attempts"], row["answered"], row["reached"], row["completed"], row["rebooked"],
                row["opted_out"], row["due"], row["pending"], row["dialled"]) == (5, 4, 4, 2, 1, 1, 1, 2, 4)
        assert row["abandon_rate"] == 0.25 and row["progress"] == 0.6
        assert {k: v for k, v in row.items() if k != "progress"} == {
            k: expected[k] for k in row if k != "progress"}
        csv = (await c.get("/reports/campaigns.csv")).body.decode("utf-8-sig").splitlines()
        assert csv[0].startswith("campaign,kind,mode,state,contacts,due") and csv[1].startswith("no-shows,no_show")
