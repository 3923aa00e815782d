"""A voice message with nothing in it is not acted on (Asterisk 22.10.1, the real rig).

A caller who hangs up at the beep (or presses # at once) leaves a good WAV with no audio:
RECORD FILE answers ``200 result=-1 (hangup) endpos=0`` and the file is a 44-byte header.
The catalogue calls it ``ready``; that used to open a complaint ticket (1-hour
acknowledgement) or a callback request for nothing.  Now a message under the voicemail
node's ``min_seconds`` (default 1 s) of audio, by the file's own duration, opens neither:
result ``voicemail_failed`` with the reason, the row stays catalogued, and a caller still
on the line hears the apology, which offers a callback.

Calls run through the shipped ``hotline`` flow and the product's FastAGI server with its
real ports (catalogue, complaints, dialer) over TCP; the callers are on phones (their
channel carries audio, :class:`~callcenter.simulator.agi_client.ScriptedCaller`).
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ivr_flows.flow import FLOWS_DIR
from ivr_flows.models import IvrSession

from tests.support.ivr import CLOSED, agi_server, call

COMPLAINT, CALLBACK = [(0.3, "1"), (0.3, "1")], [(0.3, "1"), (0.3, "2")]  # language, then after hours
NOTHING = "no message: 0.0 s of audio (under 1 s: nothing said, or hung up at the beep)"


def stored(db):
    """(sessions, recordings, tickets, contacts) as stored."""
    from callcenter.complaints.models import ComplaintTicket
    from dialer.models import Contact
    from recordings.models import Recording

    with db.session() as s:
        return tuple(list(s.scalars(select(m).order_by(m.id)))
                     for m in (IvrSession, Recording, ComplaintTicket, Contact))


async def one_call(db, keys, **kw):
    # a slow clock (1 ms of real time = 20 ms of the call): the seconds recorded are near the keys'
    async with agi_server(db, at=CLOSED, scale=20, **kw) as server:
        status, caller = await call(server, keys=keys)
        await server.writes.drained()
    return (status, caller, *stored(db))


@pytest.mark.parametrize("menu", [COMPLAINT, CALLBACK], ids=["complaint", "callback"])
async def test_caller_who_hangs_up_at_the_beep_makes_no_ticket_and_no_callback(db, menu):
    status, caller, [row], [rec], tickets, contacts = await one_call(db, [*menu, (0.0, "hangup")])
    assert status == "HANGUP"
    assert row.path[-1] in ("message_complaint", "message_callback")
    assert row.result == "voicemail_failed" and row.detail["voice_message_error"] == NOTHING
    assert tickets == [] and contacts == [] and "ticket_id" not in row.detail
    # the file is what Asterisk left (a header, maybe a frame or two), catalogued as it is
    assert (rec.status, rec.ticket_id) == ("ready", None) and rec.duration < 0.1
    assert (rec.size - 44) / 16000 == pytest.approx(rec.duration, abs=0.001) and rec.purge_after is not None
    assert row.detail["recording_id"] == rec.id


async def test_caller_who_presses_hash_after_half_a_second_makes_no_ticket(db):
    status, caller, [row], [rec], tickets, contacts = await one_call(db, [*COMPLAINT, (0.5, "#"), (0.0, "hangup")])
    why = row.detail["voice_message_error"]
    assert row.result == "voicemail_failed" and why.startswith("no message: 0.") and "under 1 s" in why
    assert 0.2 < rec.duration < 1.0 and rec.status == "ready"  # ~0.5 s less the key's tone
    assert tickets == [] and contacts == []


async def test_caller_who_speaks_three_seconds_gets_the_ticket(db):
    status, caller, [row], [rec], [ticket], contacts = await one_call(db, [*COMPLAINT, (3.0, "#")])
    assert row.result == "voicemail" and row.path[-2:] == ["message_complaint", "goodbye_message"]
    assert row.detail["ticket_id"] == ticket.id and ticket.channel == "voicemail" and contacts == []
    assert (rec.status, rec.ticket_id) == ("ready", ticket.id) and 2.5 <= rec.duration <= 3.2
    assert "voice_message_error" not in row.detail


async def test_caller_still_there_after_an_empty_message_hears_the_apology_and_asks_for_a_callback(db):
    status, caller, [row], [rec], tickets, [contact] = await one_call(
        db, [*COMPLAINT, (0.2, "#"), (0.5, "1")])  # # at once, then "1" in the apology
    assert "callcenter/zh/hotline/message_failed" in caller.played
    assert row.path[-4:] == ["message_complaint", "message_failed", "callback", "goodbye"]
    assert row.result == "callback" and row.detail["voice_message_error"].startswith("no message: 0.0 s")
    assert tickets == [] and (contact.phone, contact.ref_id) == ("+8613800138002", str(row.id))


async def test_min_seconds_of_the_flow_file_is_honoured(db, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    text = (FLOWS_DIR / "hotline.yaml").read_text(encoding="utf-8")
    node = "  message_complaint:\n    type: voicemail\n    prompt: leave_message\n    max_seconds: 120\n"
    assert text.count(node + "    min_seconds: 1 ") == 1
    (flows / "hotline.yaml").write_text(text.replace(node + "    min_seconds: 1 ", node + "    min_seconds: 5 "),
                                        encoding="utf-8")
    status, caller, [row], [rec], tickets, contacts = await one_call(db, [*COMPLAINT, (3.0, "#")], flows_dir=flows)
    assert row.result == "voicemail_failed" and tickets == [] and contacts == []
    assert row.detail["voice_message_error"].startswith("no message: 2.") and "(under 5 s:" in row.detail[
        "voice_message_error"]
