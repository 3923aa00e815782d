"""Escalation: approaching/overdue alerts driven by an injected Clock, set-based marks."""
from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import pytest
from twisted.internet.task import Clock

from callcenter.complaints import escalation

from tests import support

svc = support.complaints()  # the service as the product builds it (default policy)

SH = ZoneInfo("Asia/Shanghai")


def sh(*a) -> dt.datetime:
    return dt.datetime(*a, tzinfo=SH)


def _clock_at(t: dt.datetime) -> Clock:
    c = Clock()
    c.advance(t.timestamp())
    return c


def _alerts_by(comp):
    return {(a["ticket"], a["deadline"]): a["state"] for a in comp.alerts()}


@pytest.mark.postgres
async def test_alerts_follow_the_clock(db, caplog):
    caplog.set_level(logging.WARNING, logger="callcenter.complaints.alerts")
    with db.session() as s:
        n_normal = svc.open_ticket(s, actor="a", category="fees", severity="normal", channel="phone",
                                   summary="charged twice", received_at=sh(2026, 10, 12, 9, 0),
                                   patient_phone="13800138001", patient_name="张三").number
        n_online = svc.open_ticket(s, actor="api", category="environment", severity="normal",
                                   channel="online", summary="no parking", received_at=sh(2026, 10, 12, 9, 0)).number
    clock = _clock_at(sh(2026, 10, 12, 9, 30))
    comp = escalation.ComplaintsComponent(db, clock, complaints=svc, interval=60)
    seen = []
    comp.subscribe(lambda new, current: seen.append([(a["ticket"], a["deadline"], a["state"]) for a in new]))
    await comp.start()
    try:
        assert comp.alerts() == []
        # online ack: due 10:00, warn at 80% = 09:48
        clock.advance(19 * 60)                     # 09:49
        await comp.idle()
        assert _alerts_by(comp) == {(n_online, "ack"): "approaching"}
        clock.advance(12 * 60)                     # 10:01
        await comp.idle()
        assert _alerts_by(comp) == {(n_online, "ack"): "overdue"}
        assert seen == [[(n_online, "ack", "approaching")], [(n_online, "ack", "overdue")]]
        # acknowledging clears it from the dashboard list at the next check
        with db.session() as s:
            svc.transition(s, n_online, "acknowledged", actor="sup", at=sh(2026, 10, 12, 10, 2))
        clock.advance(60)
        await comp.idle()
        assert _alerts_by(comp) == {}
        # start due Tue 09:00 (1 working day); warn at 80% of 9.5 h = 7.6 h -> Mon 16:36
        clock.advance((sh(2026, 10, 12, 16, 37) - sh(2026, 10, 12, 10, 3)).total_seconds())
        await comp.idle()
        assert _alerts_by(comp) == {(n_normal, "start"): "approaching", (n_online, "start"): "approaching"}
        # one long jump past several deadlines marks each once, overdue wins
        clock.advance(3 * 24 * 3600)
        await comp.idle()
        states = _alerts_by(comp)
        assert states[(n_normal, "start")] == "overdue" and states[(n_normal, "answer")] == "overdue"
        first = [a for a in comp.alerts() if a["ticket"] == n_normal and a["deadline"] == "start"][0]
        assert "13800138001" not in str(comp.alerts()) and "张三" not in str(comp.alerts())
        n_lines = caplog.text.count("complaint-alert")
        clock.advance(60)
        await comp.idle()
        assert caplog.text.count("complaint-alert") == n_lines          # not repeated
        assert [a for a in comp.alerts() if a["deadline_id"] == first["deadline_id"]][0]["alerted_at"] \
            == first["alerted_at"]
    finally:
        await comp.stop()
    assert f"complaint-alert ticket={n_online} deadline=ack state=approaching" in caplog.text
    assert f"complaint-alert ticket={n_online} deadline=ack state=overdue" in caplog.text
    assert "13800138001" not in caplog.text and "张三" not in caplog.text
    assert not clock.getDelayedCalls()


@pytest.mark.postgres
async def test_urgent_is_escalated_at_once(db, caplog):
    caplog.set_level(logging.WARNING, logger="callcenter.complaints.alerts")
    t0 = sh(2026, 10, 3, 2, 0)   # national holiday, night
    with db.session() as s:
        n = svc.open_ticket(s, actor="a", category="medical", severity="urgent", channel="phone",
                            summary="bleeding after extraction", received_at=t0).number
    assert f"complaint-alert ticket={n} deadline=start state=escalated" in caplog.text
    clock = _clock_at(t0 + dt.timedelta(seconds=5))
    comp = escalation.ComplaintsComponent(db, clock, complaints=svc, interval=60)
    await comp.start()
    try:
        assert _alerts_by(comp) == {(n, "start"): "approaching"}
        clock.advance(3600)
        await comp.idle()
        assert _alerts_by(comp) == {(n, "start"): "overdue"}
        with db.session() as s:
            svc.transition(s, n, "investigating", actor="doctor", at=clock.seconds())
        clock.advance(60)
        await comp.idle()
        assert _alerts_by(comp) == {}
    finally:
        await comp.stop()


def test_closed_tickets_raise_nothing(db):
    with db.session() as s:
        tid = svc.open_ticket(s, actor="a", category="fees", channel="phone", summary="x",
                              received_at=sh(2026, 10, 12, 9, 0)).id
        svc.transition(s, tid, "investigating", actor="a", at=sh(2026, 10, 12, 9, 5))
        svc.transition(s, tid, "resolved", actor="a", at=sh(2026, 10, 12, 9, 10))
        svc.transition(s, tid, "closed", actor="a", at=sh(2026, 10, 12, 9, 15), note="no phone")
    with db.session() as s:
        new, current = escalation.check(s, sh(2026, 10, 20, 9, 0), svc)
    assert new == [] and current == []


def test_assembly_builds_escalation_from_config(config):
    from callcenter.app import build

    a = build(config, clock=Clock())
    assert a.escalation.name == "complaints" and a.escalation.interval == 60.0
    assert a.escalation.complaints is a.domain.complaints
    a.db.close()
    off = build(config.with_overrides({"complaints": {"enabled": False}}), clock=Clock())
    assert off.escalation is None and "complaints" not in [p.name for p in off.parts]
    off.db.close()


def test_alert_line_survives_log_masking():
    """The production log filter masks phone-like digit runs; the alert line (ticket number,
    ISO due time) must reach other systems intact, while a phone number still gets masked."""
    from callcenter.logs import MaskingFilter

    line = "complaint-alert ticket=TS-2026-000123 deadline=answer state=overdue due=2026-10-12T07:00:00+00:00"
    rec = logging.LogRecord("callcenter.complaints.alerts", logging.WARNING, __file__, 1, line, (), None)
    MaskingFilter().filter(rec)
    assert rec.getMessage() == line
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "ticket TS-2026-000123 caller %s", ("13800138001",), None)
    MaskingFilter().filter(rec)
    assert rec.getMessage() == "ticket TS-2026-000123 caller *******8001"
