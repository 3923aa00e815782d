"""Revisit survey and callback requests over FastAGI TCP, through the IVR's ports."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from callcenter.ports import QueueLoadInfo
from ivr_flows.models import IvrSession

from tests.support.ivr import agi_server, call


class RecordingDialer(list):
    """The IVR's callbacks/surveys port, recording what the IVR asked (the real dialer's
    side of it is tested in tests/dialer and end to end in tests/test_assembly.py)."""

    def record_survey_result(self, session, *, attempt_id, answers, opted_out, **extra):
        self.append(("survey", attempt_id, answers, opted_out, extra))

    def request_callback(self, session, *, phone, name, reason, requested_at, ivr_session_id):
        self.append(("callback", phone, name, reason, ivr_session_id))
        return 77


@pytest.fixture
def dialer_api():
    return RecordingDialer()


def rows(db):
    with db.session() as s:
        return list(s.scalars(select(IvrSession).order_by(IvrSession.id)))


SURVEY_ENV = {"agi_context": "survey", "agi_callerid": "02100000000", "agi_calleridname": "City Hospital"}


async def test_survey_scores_reported(db, dialer_api):
    async with agi_server(db, dialer=dialer_api) as server:
        status, caller = await call(server, "revisit_survey", env=SURVEY_ENV,
                                    variables={"ATTEMPT_ID": "42"}, keys=[(1, "1"), (1, "4"), (1, "5")])
    at = dialer_api[0][4].pop("at")  # when the patient answered (a delayed write keeps it)
    assert dialer_api == [("survey", "42", {"recovery": "4", "satisfaction": "5"}, False,
                           {"completed": True, "ivr_session_id": rows(db)[0].id})]
    assert rows(db)[0].started_at.replace(tzinfo=None) <= at.replace(tzinfo=None) <= \
        rows(db)[0].ended_at.replace(tzinfo=None)
    row = rows(db)[0]
    assert row.result == "survey_done" and row.path[-2:] == ["report", "thanks"]
    assert status == "HANGUP"  # the flow hangs up after thanking


async def test_survey_opt_out_and_agent(db, dialer_api):
    async with agi_server(db, dialer=dialer_api) as server:
        await call(server, "revisit_survey", env=SURVEY_ENV, variables={"ATTEMPT_ID": "1"},
                   keys=[(1, "1"), (1, "9")])
        _, caller = await call(server, "revisit_survey", env=SURVEY_ENV, variables={"ATTEMPT_ID": "2"},
                               keys=[(1, "1"), (1, "3"), (1, "0")])
    assert dialer_api[0][:4] == ("survey", "1", {}, True)
    assert dialer_api[1][:4] == ("survey", "2", {"recovery": "3"}, False)
    assert caller.variables["QUEUE"] == "consultation" and caller.variables["QUEUE_PRIO"] == "5"
    assert [r.result for r in rows(db)] == ["optout", "queued:consultation"]


async def test_survey_hangup_reports_partial_answers(db, dialer_api):
    async with agi_server(db, scale=10, dialer=dialer_api) as server:
        await call(server, "revisit_survey", env=SURVEY_ENV, variables={"ATTEMPT_ID": "9"},
                   keys=[(0.5, "1"), (0.5, "2")], hangup_at=3.0)
    assert dialer_api[0][:4] == ("survey", "9", {"recovery": "2"}, False)
    assert dialer_api[0][4]["completed"] is False
    assert rows(db)[0].result == "hangup"


async def test_callback_request_links_session(db, dialer_api):
    async with agi_server(db, dialer=dialer_api) as server:
        status, caller = await call(server, keys=[(0.5, "1"), (0.5, "4")])
    row = rows(db)[0]
    assert dialer_api == [("callback", "+8613800138002", "王小明", "callback requested in the hotline IVR", row.id)]
    assert row.result == "callback" and row.detail["contact_id"] == 77
    assert "QUEUE" not in caller.variables


async def test_queue_load_offers_callback(db, dialer_api):
    loads = []

    class Loaded:
        def queue_load(self, queue):
            loads.append(queue)
            return QueueLoadInfo(longest_wait=600.0, agents_available=0)

    async with agi_server(db, queue_load=Loaded(), dialer=dialer_api) as server:
        _, caller = await call(server, keys=[(0.5, "1"), (0.5, "1"), (0.5, "1")])
    assert loads == ["consultation"]
    assert rows(db)[0].path[-4:] == ["consultation_load", "offer_callback", "callback", "goodbye"]
