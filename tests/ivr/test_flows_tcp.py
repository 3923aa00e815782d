"""Complete calls through the shipped flows over real FastAGI TCP, sessions stored."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ivr_flows.models import IvrSession

from tests.support.ivr import CLOSED, HOLIDAY, agi_server, call


def sessions(db):
    with db.session() as s:
        return list(s.scalars(select(IvrSession).order_by(IvrSession.id)))


@pytest.mark.postgres
async def test_consultation_is_queued_and_linked(db):
    async with agi_server(db) as server:
        status, caller = await call(server, keys=[(1, "2"), (1, "1")])
    assert status == "SUCCESS"
    assert caller.variables["QUEUE"] == "consultation"
    assert caller.variables["QUEUE_PRIO"] == "0"
    assert caller.variables["IVR_LANGUAGE"] == "en"
    [row] = sessions(db)
    assert caller.variables["IVR_SESSION"] == str(row.id)
    assert row.result == "queued:consultation"
    assert row.path == ["language", "welcome", "opening_hours", "main", "consultation_load", "consultation"]
    assert row.digits == "2,1" and row.language == "en" and row.flow == "hotline"
    assert row.caller_number == "+8613800138002" and row.ended_at >= row.started_at
    assert "callcenter/en/hotline/main_menu" in caller.played


async def test_urgent_complaint_has_priority(db):
    async with agi_server(db) as server:
        _, caller = await call(server, keys=[(1, "1"), (1, "3"), (1, "9")])
    assert caller.variables["QUEUE"] == "complaint"
    assert caller.variables["QUEUE_PRIO"] == "10"
    assert sessions(db)[0].result == "queued:complaint"


async def test_invalid_then_timeouts_fall_back_to_operator(db):
    # "7" is not an option; then silence until the last retry -> default (operator)
    async with agi_server(db) as server:
        _, caller = await call(server, keys=[(0.5, "1"), (1, "7")])
    assert caller.variables.get("TRANSFER") == "operator"
    assert "QUEUE" not in caller.variables
    row = sessions(db)[0]
    assert row.result == "operator"
    assert row.path[-2:] == ["main", "operator"]
    assert "callcenter/zh/hotline/invalid" in caller.played
    assert "callcenter/zh/hotline/no_input" in caller.played


async def test_hangup_mid_menu_is_recorded(db):
    async with agi_server(db, scale=10) as server:  # hang-up timing is on the scaled clock
        status, caller = await call(server, keys=[(0.5, "1")], hangup_at=4.0)
    assert status == "HANGUP"
    assert "QUEUE" not in caller.variables
    row = sessions(db)[0]
    assert row.result == "hangup" and row.path[-1] == "main" and row.ended_at is not None


@pytest.mark.parametrize("at", [CLOSED, HOLIDAY])
async def test_after_hours_voice_message(db, at, tmp_path):
    async with agi_server(db, at=at, spool=tmp_path) as server:
        _, caller = await call(server, keys=[(0.5, "1"), (1, "1"), (4, "#")])
    [(path, fmt, seconds)] = caller.recorded
    assert path.startswith(server.recordings_dir + "/voicemail/") and path.endswith(
        "/voicemsg-1795346775.48.wav") and fmt == "wav"
    row = sessions(db)[0]
    assert row.result == "voicemail"
    assert row.path[:4] == ["language", "welcome", "opening_hours", "after_hours"]
    assert row.detail["voice_message"] == path


async def test_missing_prompt_file_carries_on(db):
    async with agi_server(db) as server:
        _, caller = await call(server, keys=[(0.5, "1"), (1, "1")],
                               missing={"callcenter/zh/hotline/welcome", "callcenter/zh/hotline/please_hold"})
    assert caller.variables["QUEUE"] == "consultation"
    row = sessions(db)[0]
    assert any("welcome missing" in w for w in row.detail["warnings"])


async def test_flows_and_holidays_are_ready_before_the_first_caller():
    """Start-up parses every flow and builds the year's holidays: nothing of it is left for
    the first sessions to do on the event loop (104-152 ms there before)."""
    from ivr_flows import engine

    engine._holidays.cache_clear()
    async with agi_server() as server:
        assert set(server._flows) >= {"hotline", "revisit_survey"}
        assert engine._holidays.cache_info().currsize == 1
        parsed = dict(server._flows)
        status, _ = await call(server, keys=[(1, "2"), (1, "1")])
        assert status is not None
        assert server._flows["hotline"] is parsed["hotline"]  # the first session reused it
