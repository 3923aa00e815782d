"""The complaint ticket page: only the steps its state allows, "handled by" from the users,
the history in plain words (zh/en, local time), confirmations as one-time messages of
the session (a ``?notice=`` in a link shows nothing)."""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from twisted.internet.task import Clock

from callcenter.complaints import history, lifecycle
from callcenter.complaints.forms import ACTIONS, offered_actions
from callcenter.web.i18n import MESSAGES, t

from tests import support
from tests.support.web import Client, add_users, running_web

svc = support.complaints()
SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=SH)


def _clock() -> Clock:
    c = Clock()
    c.advance(T0.timestamp())
    return c


def _buttons(page: str) -> list[str]:
    return re.findall(r'<button name="action" value="([a-z]+)"', page)


def test_offered_actions_follow_the_life_cycle():
    assert offered_actions("received") == ("acknowledge", "investigate", "progress")
    assert offered_actions("investigating") == ("answer", "resolve", "progress")
    assert offered_actions("resolved") == ("close", "reopen", "revisit")
    assert offered_actions("closed") == ("reopen",)
    for state in lifecycle.STATES:  # each offered step is one the service accepts from there
        for a in offered_actions(state):
            assert a in ACTIONS
            if ACTIONS[a]:
                assert ACTIONS[a] in lifecycle.TRANSITIONS[state]


def test_history_words_cover_every_event_the_service_writes():
    when = lambda iso: iso  # noqa: E731
    events = [{"action": "opened", "field": "status", "to": "received",
               "note": "channel=phone severity=urgent category=fees"},
              {"action": "moved", "field": "status", "from": "received", "to": "acknowledged"},
              {"action": "reopened", "field": "status", "from": "closed", "to": "investigating"},
              {"action": "escalated", "note": "urgent: passed to the department at once"},
              {"action": "linked", "field": "call", "to": "1795346754.44"},
              {"action": "progress", "field": "expected_resolution", "to": "2026-12-01"},
              {"action": "revisit", "field": "satisfied", "to": "True"},
              {"action": "revisit", "field": "satisfied", "to": "False"},
              {"action": "revisit-ignored", "field": "satisfied", "to": "True"},
              {"action": "changed", "field": "assigned_to", "from": "", "to": "sup1"},
              {"action": "changed", "field": "category", "from": "", "to": "fees"},
              {"action": "followup", "field": "followup", "to": "no_phone", "note": "revisit call due before 2026"}]
    zh = [history.describe(e, lambda k, **kw: t("zh", k, **kw), when, {"sup1": "张班长"}) for e in events]
    assert zh[0] == "登记工单（电话、紧急、费用类）" and history.note(events[0], lambda k, **kw: k) == ""
    assert zh[1] == "状态：已受理 → 已确认" and zh[2] == "重新处理：已结案 → 调查处理中"
    assert zh[6] == "回访：患者满意" and zh[7] == "回访：患者不满意"
    assert zh[9] == "处理人：— → 张班长" and zh[10] == "类别：— → 费用类" and zh[11] == "回访电话：患者无电话号码"
    assert not any(re.search(r"[a-z]{3,}", z) for z in zh), zh  # no codes or English in Chinese
    en = [history.describe(e, lambda k, **kw: t("en", k, **kw), when, {}) for e in events]
    assert en[1] == "Status: received → acknowledged" and en[5].endswith("expected resolution 2026-12-01")
    assert history.note(events[3], lambda k, **kw: t("zh", k, **kw)) == "紧急：已立即转交科室"
    assert history.note(events[11], lambda k, **kw: t("zh", k, **kw)) == ""
    assert all(k in MESSAGES for k in history.SYSTEM_NOTES.values())
    zh_note = lambda text: history.note({"action": "reopened", "note": text}, lambda k, **kw: t("zh", k, **kw))  # noqa: E731
    assert zh_note("patient not satisfied at the revisit: still rude") == "回访时患者不满意：still rude"
    assert zh_note("acknowledged by the agent on the call") == "坐席在通话中已确认受理"
    assert zh_note("called the ward") == "called the ward"  # what a person typed stays as typed


async def test_ticket_page_steps_handler_history_and_one_time_messages(config, db):
    add_users(db)
    tid = db.call(lambda s: svc.open_ticket(s, summary="waited an hour", category="attitude", channel="online",
                                            actor="agent1", patient_phone="13800138001",
                                            received_at=T0.astimezone(dt.timezone.utc)).id)
    async with running_web(config, db, clock=_clock()) as web:
        c = Client(web.port)
        await c.login("sup1")
        token = await c.csrf()
        page = (await c.get(f"/complaints/{tid}")).text
        assert _buttons(page) == ["acknowledge", "investigate", "progress"]     # as the life cycle allows
        assert 'id="cp-revisit"' not in page and 'id="do-close"' not in page
        # "handled by": the active users, by name
        handlers = re.findall(r'<option value="([^"]*)"', page.split('id="cp-handler"')[1].split("</select>")[0])
        assert handlers == ["", "admin1", "agent1", "sup1"]
        r = await c.post(f"/complaints/{tid}/edit", {"csrf_token": token, "assigned_to": "someone else"})
        assert r.status == 400 and "assigned_to: no active user" in r.text
        r = await c.post(f"/complaints/{tid}/edit", {"csrf_token": token, "assigned_to": "sup1"})
        assert r.status == 303 and r.location == f"/complaints/{tid}"
        page = (await c.get(r.location)).text
        assert '<p class="notice" id="flash" role="status">Saved.</p>' in page                  # once...
        assert 'id="flash"' not in (await c.get(r.location)).text                             # ...gone on reload
        assert re.search(r'<dd id="cp-assigned">Sup1</dd>', page)
        # a confirmation is the session's: another session, and a link with ?notice=, show none
        other = Client(web.port)
        await other.login("admin1")
        await c.post(f"/complaints/{tid}/transition", {"csrf_token": token, "action": "acknowledge"})
        forged = (await other.get(f"/complaints/{tid}?notice=Please+call+0900+to+confirm")).text
        assert 'id="flash"' not in forged and "Please call" not in forged and 'class="notice"' not in forged
        page = (await c.get(f"/complaints/{tid}")).text
        assert 'id="flash"' in page and _buttons(page) == ["investigate", "progress"]
        # resolve -> the revisit form and close/reopen only
        for step in ("investigate", "resolve"):
            assert (await c.post(f"/complaints/{tid}/transition", {"csrf_token": token, "action": step})).status == 303
        page = (await c.get(f"/complaints/{tid}")).text
        assert _buttons(page) == ["close", "reopen"] and 'id="cp-revisit"' in page
        # the history in plain words, local time
        rows = re.findall(r'<tr data-action="([a-z-]+)"><td>([^<]*)</td><td>([^<]*)</td>\n<td>([^<]*)</td>', page)
        assert ("moved", "2026-11-25 09:00:00", "Sup1", "Status: received → acknowledged") in rows
        assert ("changed", "2026-11-25 09:00:00", "Sup1", "Handled by: — → Sup1") in rows
        assert any(r[0] == "followup" and r[2] == "system" and r[3].startswith("Revisit call: ") for r in rows)
        await c.post("/language", {"csrf_token": token, "lang": "zh"})
        zh = (await c.get(f"/complaints/{tid}")).text
        assert "状态：已确认 → 调查处理中" in zh and "处理人：— → Sup1" in zh and "系统" in zh
        shown = re.sub(r"<[^>]+>", " ", zh.split('id="cp-events"')[1])
        assert not re.search(r"\b(moved|changed|followup|assigned_to|investigating|system)\b", shown), shown
