"""Service-level figures (pure) and ``callcenter report answer-times`` on a real database."""
from __future__ import annotations

import csv
import io
import json

import pytest

from callcenter.cli import main
from callcenter.queuecalls import stats
from callcenter.queuecalls.reducer import QueueCallRecord
from callcenter.queuecalls.store import write_calls

T0 = 1_795_346_592.0  # 2026-11-22 11:23 UTC = 19:23 Asia/Shanghai


def rec(uid, outcome, wait, *, queue="consultation", agent="", t=T0, gap=False, talk=None):
    answered = outcome in ("answered", "transferred")
    return QueueCallRecord(
        uniqueid=uid, linkedid=uid, queue=queue, leg=1, caller_number="+8613800138001",
        caller_name="王小明", entered_at=t, answered_at=t + wait if answered else None,
        ended_at=t + (wait or 0) + (talk or 0), wait_seconds=wait, agent=agent,
        agent_name=agent.replace("Local/", "Agent "), talk_seconds=talk, outcome=outcome,
        position=1, ivr_session_id=None, gap=gap)


CALLS = [
    rec("1.1", "answered", 3.0, agent="Local/1001", talk=60),
    rec("1.2", "answered", 29.9, agent="Local/1001", talk=30),
    rec("1.3", "answered", 34.0, agent="Local/1002", talk=10),
    rec("1.4", "abandoned", 2.0),           # short abandon: not offered
    rec("1.5", "abandoned", 35.0),
    rec("1.6", "timeout", 10.0, queue="complaint", t=T0 + 3600),
    rec("1.7", "redirected", 3.0),
    rec("1.8", "unknown", None, gap=True),  # lost in an outage: counted as a gap only
]


def test_summary_definitions():
    s = stats.summarize(CALLS, 30, 5)
    assert s["offered"] == 6 and s["answered"] == 3 and s["abandoned"] == 2
    assert s["short_abandons"] == 1 and s["timeouts"] == 1 and s["redirected"] == 1
    assert s["answered_within_target"] == 2
    assert s["service_level"] == pytest.approx(2 / 6, abs=1e-4)      # docs/architecture.md
    assert s["sl_asterisk"] == pytest.approx(2 / 3, abs=1e-4)        # within ÷ answered
    # SL2: (answered within 2 + unanswered within: 2.0, 10.0, 3.0) ÷ (3 + 4)
    assert s["sl2"] == pytest.approx(5 / 7, abs=1e-4)
    assert s["asa_seconds"] == pytest.approx((3 + 29.9 + 34) / 3, abs=1e-3)
    assert s["max_wait_seconds"] == 35.0
    assert s["p90_wait_seconds"] == 35.0 and stats.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9
    assert s["abandon_rate"] == pytest.approx(1 / 6, abs=1e-4)
    assert s["gaps"] == 1
    assert stats.summarize([], 30, 5)["service_level"] is None


def test_target_is_configurable_and_inclusive():
    assert stats.summarize(CALLS, 34, 5)["answered_within_target"] == 3
    assert stats.summarize(CALLS, 30, 1)["short_abandons"] == 0


@pytest.mark.postgres
def test_breakdowns(db):
    from zoneinfo import ZoneInfo

    from callcenter.queuecalls.cli import load_figures

    db.call(write_calls, CALLS, 30.0, "default")
    g = db.call(load_figures, None, None, None, ZoneInfo("Asia/Shanghai"), 30.0, 5.0)
    assert [x["key"] for x in g["queue"]] == ["complaint", "consultation"]
    assert [(x["key"], x["answered"]) for x in g["agent"]] == [("Local/1001", 2), ("Local/1002", 1)]
    assert [x["key"] for x in g["hour"]] == ["19:00", "20:00"]
    assert [x["key"] for x in g["day"]] == ["2026-11-22"]
    assert g["summary"] == stats.summarize(CALLS, 30, 5)


@pytest.mark.postgres
def test_report_cli_json_csv_table(db, config, capsys):
    db.call(write_calls, CALLS, 30.0, "default")
    assert main(["report", "answer-times", "--format", "json", "--since", "2026-11-22"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("offered", "answered", "abandoned", "short_abandons", "timeouts",
                "answered_within_target", "service_level", "asa_seconds", "max_wait_seconds",
                "p90_wait_seconds"):
        assert key in out["summary"]
    assert out["summary"]["offered"] == 6 and out["summary"]["answered_within_target"] == 2
    assert len(out["calls"]) == 8
    first = out["calls"][0]
    assert first["caller_name"] == "王小明" and first["entered_at"].startswith("2026-11-22T19:23:12")
    assert {c["within_target"] for c in out["calls"] if c["outcome"] == "answered"} == {True, False}

    assert main(["report", "answer-times", "--format", "json", "--queue", "complaint"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["outcome"] for c in out["calls"]] == ["timeout"]

    assert main(["report", "answer-times", "--format", "json", "--until", "2026-11-21"]) == 0
    assert json.loads(capsys.readouterr().out)["calls"] == []

    assert main(["report", "answer-times", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 8 and rows[0]["queue"] and "wait_seconds" in rows[0]

    assert main(["report", "answer-times"]) == 0
    text = capsys.readouterr().out
    assert "service_level" in text and "33.3%" in text and "By agent" in text


def test_report_cli_bad_date(config, capsys):
    assert main(["report", "answer-times", "--since", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err


@pytest.mark.postgres
def test_write_is_idempotent_and_prefers_measured_rows(db):
    from sqlalchemy import select

    from callcenter.queuecalls.models import QueueCall

    measured = rec("9.1", "answered", 3.2, agent="Local/1001", talk=5)
    guess = rec("9.1", "answered", 3.0, agent="Local/1001", talk=6, gap=True)
    unknown = rec("9.2", "unknown", None, gap=True)
    assert db.call(write_calls, [measured, unknown], 30.0, "default") == (2, 0)
    assert db.call(write_calls, [guess, measured], 30.0, "default") == (0, 1)
    assert db.call(write_calls, [rec("9.2", "abandoned", 40.0, gap=True)], 30.0, "default") == (0, 1)
    with db.session() as s:
        rows = {r.uniqueid: r for r in s.scalars(select(QueueCall))}
    assert rows["9.1"].wait_seconds == 3.2 and not rows["9.1"].gap
    assert rows["9.2"].outcome == "abandoned"


def test_queue_log_recovery_keeps_a_dialer_call_outbound(db):
    """A row recovered from queue_log (no attempt known) replacing an 'unknown' live row keeps
    its direction, campaign, attempt and patient."""
    from callcenter.queuecalls.models import QueueCall
    from callcenter.queuecalls.reducer import QueueCallRecord
    from callcenter.queuecalls.store import write_calls

    live = QueueCallRecord("9.1", "9.1", "consultation", 1, "+8613900139003", "P", 100.0, None, None, None, "",
                           "", None, "unknown", 1, None, True, direction="outbound", campaign_id=3, attempt_id=42)
    recovered = QueueCallRecord("9.1", "9.1", "consultation", 1, "02100000000", "", 100.0, 101.0, 160.0, 1.0,
                                "Local/1001@sim-agent/n", "Agent", 59.0, "answered", 1, None, True,
                                source="queue_log")
    db.call(write_calls, [live], 30.0, "default")
    db.call(write_calls, [recovered], 30.0, "default")
    row = db.call(lambda s: s.query(QueueCall).one())
    assert (row.outcome, row.direction, row.attempt_id, row.campaign_id, row.caller_number) == (
        "answered", "outbound", 42, 3, "+8613900139003")
