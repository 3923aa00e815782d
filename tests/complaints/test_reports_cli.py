"""Report figures on a fixture dataset, and the operator CLI end to end."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest

from callcenter.cli import main
from callcenter.complaints import reports

from tests import support

svc = support.complaints()  # the service as the product builds it (default policy)

SH = ZoneInfo("Asia/Shanghai")


def sh(*a) -> dt.datetime:
    return dt.datetime(*a, tzinfo=SH)


def build_dataset(s) -> None:
    """Three tickets in the week of Mon 2026-10-12 (see the expected figures below)."""
    t1 = svc.open_ticket(s, actor="a", category="fees", department="billing", severity="normal",
                         channel="phone", summary="charged twice", received_at=sh(2026, 10, 12, 9, 0),
                         patient_phone="13800000001").id
    svc.transition(s, t1, "investigating", actor="b", at=sh(2026, 10, 12, 10, 0))
    svc.transition(s, t1, "answered", actor="b", at=sh(2026, 10, 14, 9, 0))
    svc.transition(s, t1, "resolved", actor="b", at=sh(2026, 10, 14, 10, 0))
    svc.record_revisit(s, t1, True, "ok", sh(2026, 10, 14, 15, 0), score=4)

    t2 = svc.open_ticket(s, actor="api", category="attitude", department="front desk", severity="normal",
                         channel="online", summary="rude", received_at=sh(2026, 10, 12, 9, 0),
                         patient_phone="13800000002").id
    svc.transition(s, t2, "acknowledged", actor="b", at=sh(2026, 10, 12, 11, 0))      # ack due 10:00: late
    svc.transition(s, t2, "investigating", actor="b", at=sh(2026, 10, 13, 10, 0))     # start due 09:00: late
    svc.transition(s, t2, "resolved", actor="b", at=sh(2026, 10, 16, 9, 0))           # answer due Thu: late
    svc.record_revisit(s, t2, False, "not fixed", sh(2026, 10, 16, 12, 0))            # reopens

    t3 = svc.open_ticket(s, actor="a", category="medical", department="dental", severity="urgent",
                         channel="phone", summary="pain", received_at=sh(2026, 10, 13, 14, 0)).id
    svc.transition(s, t3, "investigating", actor="doc", at=sh(2026, 10, 13, 14, 30))


NOW = sh(2026, 10, 19, 12, 0)


@pytest.mark.postgres
def test_report_figures(db):
    with db.session() as s:
        build_dataset(s)
    with db.session() as s:
        rep = reports.report(s, None, None, NOW)
    assert rep["tickets"] == 3
    assert rep["by_status"] == {"closed": 1, "investigating": 2}
    assert rep["compliance"] == round(5 / 9, 4)
    cat = {r["category"]: r for r in rep["compliance_by_category"]}
    assert [r["category"] for r in rep["compliance_by_category"]] == ["medical", "attitude", "fees"]
    assert (cat["fees"]["on_time"], cat["fees"]["compliance"]) == (3, 1.0)
    assert (cat["attitude"]["on_time"], cat["attitude"]["late"], cat["attitude"]["pending"],
            cat["attitude"]["compliance"]) == (1, 3, 1, 0.25)
    assert (cat["medical"]["on_time"], cat["medical"]["missed"], cat["medical"]["compliance"]) == (1, 1, 0.5)
    dep = {r["department"]: r["compliance"] for r in rep["compliance_by_department"]}
    assert dep == {"billing": 1.0, "dental": 0.5, "front desk": 0.25}
    kinds = {r["deadline"]: (r["on_time"], r["late"], r["missed"], r["pending"]) for r in rep["compliance_by_deadline"]}
    assert kinds == {"ack": (0, 1, 0, 0), "start": (2, 1, 0, 0), "answer": (1, 1, 1, 1), "revisit": (2, 0, 0, 0)}
    times = {r["measure"]: r for r in rep["times"]}
    assert times["acknowledge"] == {"measure": "acknowledge", "count": 3, "mean_hours": 0.67,
                                    "median_hours": 0.0, "p90_hours": 2.0}
    assert (times["answer"]["count"], times["answer"]["mean_hours"]) == (2, 72.0)
    assert (times["close"]["count"], times["close"]["median_hours"]) == (1, 54.0)
    assert rep["reopen"] == {"resolved": 2, "reopened": 1, "reopen_rate": 0.5}
    assert rep["satisfaction"] == {"revisits": 2, "satisfied": 1, "rate": 0.5, "mean_score": 4.0}
    # the period filters on the time received
    with db.session() as s:
        only = reports.report(s, sh(2026, 10, 13), sh(2026, 10, 14), NOW)
    assert only["tickets"] == 1 and [r["category"] for r in only["compliance_by_category"]] == ["medical"]


def test_cli_open_move_show_list_report(config, capsys):
    def run(*argv):
        capsys.readouterr()
        rc = main(list(argv))
        out = capsys.readouterr()
        return rc, out.out, out.err

    rc, out, _ = run("complaints", "open", "--category", "fees", "--summary", "charged twice",
                     "--department", "billing", "--phone", "13800138001", "--name", "王小明",
                     "--tag", "refund", "--at", "2026-10-12T09:00", "--actor", "agent7")
    assert rc == 0 and out.strip() == "TS-2026-000001 acknowledged"
    rc, out, err = run("complaints", "move", "TS-2026-000001", "closed", "--at", "2026-10-12T10:00")
    assert rc == 2 and "from 'acknowledged' to 'closed'" in err
    rc, out, _ = run("complaints", "move", "ts-2026-000001", "investigating", "--at", "2026-10-12T10:00",
                     "--actor", "sup1")
    assert rc == 0 and out.strip() == "TS-2026-000001 investigating"
    rc, out, _ = run("complaints", "list")
    assert "TS-2026-000001" in out and "13800138001" not in out and "*******8001" in out
    assert "王小明" not in out
    rc, out, _ = run("complaints", "show", "TS-2026-000001", "--format", "json")
    shown = json.loads(out)
    assert shown["ticket"]["status"] == "investigating" and shown["ticket"]["tags"] == ["refund"]
    assert [e["actor"] for e in shown["events"] if e["field"] == "status"] == ["agent7", "agent7", "sup1"]
    assert {d["deadline"]: d["met"] for d in shown["deadlines"]}["start"] == "2026-10-12 10:00"
    rc, out, _ = run("complaints", "show", "TS-2026-000001")
    assert "history" in out and "investigating" in out
    rc, out, err = run("complaints", "show", "TS-2026-000042")
    assert rc == 2 and "no complaint ticket TS-2026-000042" in err

    rc, out, _ = run("report", "complaints", "--format", "json", "--since", "2026-10-01", "--until", "2026-10-31")
    rep = json.loads(out)
    assert rep["tickets"] == 1 and rep["period"]["since"].startswith("2026-10-01T00:00:00+08:00")
    rc, out, _ = run("report", "complaints", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"section": "summary", "key": "", "metric": "tickets", "value": "1"} in rows
    rc, out, _ = run("report", "complaints")
    assert rc == 0 and "deadline compliance by category" in out and "fees" in out
    rc, out, err = run("report", "complaints", "--since", "yesterday")
    assert rc == 2 and "not a date" in err
