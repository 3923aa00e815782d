"""A running campaign outside the calling window says when calling starts, from the
dialer's own compliance rules and the injected clock (zh and en), and names its values
(kinds, modes, states, treatment types, dispositions) in the user's language."""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import select
from twisted.internet.task import Clock

from callcenter.store.models import User
from callcenter.web.campaigns import calling_window
from dialer.campaigns import contact_row, create_campaign, insert_contacts
from dialer.compliance import Rules
from dialer.models import Attempt, Contact

from tests.support.web import Client, add_users, running_web

SH = ZoneInfo("Asia/Shanghai")


def at(*args) -> Clock:
    c = Clock()
    c.advance(dt.datetime(*args, tzinfo=SH).timestamp())
    return c


def test_calling_window_opening_and_closing_in_local_time():
    rules = Rules(call_days=frozenset({"mon", "tue", "wed", "thu", "fri"}))
    wed = dt.datetime(2026, 11, 25, 7, 30, tzinfo=SH).timestamp()
    assert calling_window(rules, wed) == {"open": False, "opens": "09:00", "opens_at": wed + 5400}
    assert calling_window(rules, wed + 4 * 3600) == {"open": True, "closes": "20:00"}
    fri_night = dt.datetime(2026, 11, 27, 20, 0, tzinfo=SH).timestamp()   # half-open: 20:00 is outside
    assert calling_window(rules, fri_night)["opens"] == "11-30 09:00"       # Monday
    oct1 = dt.datetime(2026, 9, 30, 21, 0, tzinfo=SH).timestamp()           # National Day, then days off
    assert calling_window(rules, oct1)["opens"] == "10-08 09:00"


def seed(s):
    c = create_campaign(s, name="revisits", kind="revisit", mode="progressive", queue="consultation",
                        state="running", settings={"treatment_types": ["root_canal", "implant"]})
    create_campaign(s, name="paused-one", kind="no_show", mode="survey", state="paused")
    t = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.timezone.utc)
    insert_contacts(s, [contact_row(c.id, "k1", phone="+8613800138001", name="", reason="revisit", ref_type="t",
                                    ref_id="1", due_after=t, due_before=None, patient_id=None, now=t)])
    contact = s.scalar(select(Contact).where(Contact.campaign_id == c.id))
    s.add(Attempt(contact_id=contact.id, campaign_id=c.id, phone=contact.phone, state="ended",
                  disposition="no_answer", started_at=t, ended_at=t, abandoned=False))
    contact.attempts = 1
    s.flush()
    return c.id


async def test_running_campaign_waits_for_the_window_in_both_languages(config, db):
    add_users(db)
    cid = db.call(seed)
    async with running_web(config, db, clock=at(2026, 11, 25, 7, 30)) as web:
        c = Client(web.port)
        await c.login("sup1")
        page = (await c.get("/campaigns")).text
        row = page.split('data-campaign="revisits"')[1].split("</tr>")[0]
        assert "waiting for the calling window (09:00)" in row
        paused = page.split('data-campaign="paused-one"')[1].split("</tr>")[0]
        assert "waiting for the calling window" not in paused            # only a running campaign waits
        detail = (await c.get(f"/campaigns/{cid}")).text
        assert "waiting for the calling window (09:00)" in detail.split('id="camp-state"')[1].split("</dd>")[0]
        assert "Root canal, Implant" in detail and "no answer" in detail
        api = (await c.get("/api/campaigns")).json()
        assert api["calling_window"]["open"] is False and api["calling_window"]["opens"] == "09:00"
        with db.session() as s:
            s.scalar(select(User).where(User.username == "sup1")).language = "zh"
        zh = (await c.get(f"/campaigns/{cid}")).text
        main = re.sub(r"<[^>]+>", "|", zh.split("<main>")[1])   # what the user reads, not attributes
        for words in ("等待外呼时段（09:00）", "诊后随访", "渐进式", "进行中", "根管治疗, 种植牙", "无人接听"):
            assert words in main, words
        for raw in ("root_canal", "no_answer", "|running|", "|progressive|", "Root canal"):
            assert raw not in main, raw
        zh_list = (await c.get("/campaigns")).text.split("<main>")[1]
        assert "等待外呼时段（09:00）" in zh_list and "爽约召回" in zh_list and "已暂停" in zh_list
    async with running_web(config, db, clock=at(2026, 11, 25, 11, 0)) as web:
        c = Client(web.port)
        await c.login("sup1")
        page = (await c.get("/campaigns")).text
        assert "等待外呼时段" not in page and "当前可外呼，至 20:00" in page
