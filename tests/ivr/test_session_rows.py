"""The ``ivr_sessions`` row's own statements (ivr_flows/session_rows.py) on both backends,
on a bare Connection (as the group commit runs them) and on a Session's."""
from __future__ import annotations

import datetime as dt

import pytest

from ivr_flows import session_rows
from ivr_flows.models import IvrSession

T0 = dt.datetime(2026, 11, 25, 2, 0, 0, 250000, tzinfo=dt.timezone.utc)


@pytest.mark.postgres
def test_insert_find_and_complete_the_row(db):
    with db.engine.begin() as conn:
        sid = session_rows.insert_row(conn, flow="hotline", uniqueid="1795346775.48", caller_number="+8613800138002",
                                      started_at=T0, language="zh")
    with db.session() as s:  # a retried insert finds the committed row by what it inserted
        assert session_rows.find_row(s.connection(), flow="hotline", uniqueid="1795346775.48", caller_number="+8613800138002",
                                     started=T0.timestamp()) == sid
        assert session_rows.find_row(s.connection(), flow="hotline", uniqueid="1795346775.48", caller_number="+8613800138002",
                                     started=T0.timestamp() + 1) is None
        s.get(IvrSession, sid).detail = {"done": ["callback"], "contact_id": 7}  # what a hook writes
    end = T0 + dt.timedelta(seconds=40)
    with db.engine.begin() as conn:
        assert session_rows.complete_row(conn, sid, ended_at=end, path=["language", "main"], digits="1,1",
                                         result="queued:consultation", language="en",
                                         caller_number="+8613800138002", detail={"warnings": ["x"]})
        assert not session_rows.complete_row(conn, sid + 1, ended_at=end, path=[], digits="", result="",
                                             language="", caller_number="", detail={})
    with db.session() as s:
        row = s.get(IvrSession, sid)
        assert (row.path, row.digits, row.result, row.language) == (["language", "main"], "1,1",
                                                                    "queued:consultation", "en")
        assert row.detail == {"done": ["callback"], "contact_id": 7, "warnings": ["x"]}  # merged
        assert row.ended_at.replace(tzinfo=None) == end.replace(tzinfo=None)


@pytest.mark.postgres
def test_complete_without_merge_writes_the_detail_as_given(db):
    with db.session() as s:
        sid = session_rows.insert_row(s.connection(), flow="hotline", uniqueid="u", caller_number="", started_at=T0,
                                      language="zh")
    with db.engine.begin() as conn:
        assert session_rows.complete_row(conn, sid, ended_at=T0, path=["a"], digits="", result="hangup",
                                         language="zh", caller_number="", detail={"k": 1}, merge=False)
        assert not session_rows.complete_row(conn, sid + 1, ended_at=T0, path=[], digits="", result="",
                                             language="", caller_number="", detail={}, merge=False)
    with db.session() as s:
        row = s.get(IvrSession, sid)
        assert row.detail == {"k": 1} and row.result == "hangup" and row.ended_at is not None
