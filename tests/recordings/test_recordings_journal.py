"""The capture journal: facts on disk before the database, replayed after a restart."""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from twisted.internet.task import Clock

from callcenter.ami.codec import Message
from callcenter.ami.tracefile import traces_dir
from recordings import capture, catalog
from recordings.journal import Journal, JournalError, unsettled
from recordings.settings import Settings

from rec_fakes import FakeGateway

SPOOL = "/var/spool/asterisk/recordings"
PART1 = traces_dir() / "06-mixmonitor-part1.wav"
T = 1795346800.0


class DownDatabase:
    """Every database call fails (a database that never came back before the stop)."""

    def __init__(self, db):
        self._db = db

    def __getattr__(self, name):
        return getattr(self._db, name)

    async def run(self, fn, *args, **kw):
        raise OperationalError("(injected)", {}, sqlite3.OperationalError("database is locked"))

    def submit(self, fn, *args, **kw):  # the group commit's path
        failed = concurrent.futures.Future()
        failed.set_exception(OperationalError("(injected)", {}, sqlite3.OperationalError("database is locked")))
        return failed


def connect(uid: str) -> Message:
    return Message.of(("Event", "AgentConnect"), ("Channel", f"PJSIP/x-{uid}"), ("Uniqueid", uid),
                      ("Queue", "consultation"), ("Interface", "Local/1001@agents"), ("MemberName", "A"),
                      ("CallerIDNum", "13800138001"))


def test_fold_torn_line_and_bad_line(tmp_path):
    j = Journal(tmp_path / "j")
    assert j.open() == []
    j.append({"op": "start", "uid": "1.1", "rel": "a/1.1.wav"})
    j.append({"op": "start", "uid": "1.2", "rel": "a/1.2.wav"})
    j.append({"op": "ended", "uid": "1.2", "t": 5})
    j.append({"op": "settled", "uid": "1.1"})
    j.close()
    with open(tmp_path / "j", "a") as fh:
        fh.write('{"op": "ended", "ui')  # a crash in the middle of an append
    owed = unsettled(Journal(tmp_path / "j").read())
    assert list(owed) == ["1.2"] and owed["1.2"].ended == 5.0
    j = Journal(tmp_path / "j")
    j.open()
    assert j.compact() == 1 and [e["op"] for e in j.read()] == ["start", "ended"]
    j.close()
    (tmp_path / "k").write_text('{"op": "start", "uid": "1"}\nnot json\n{"op": "settled", "uid": "1"}\n')
    with pytest.raises(JournalError, match=r"k:2: not a recordings journal fact"):
        Journal(tmp_path / "k").read()


@pytest.mark.postgres
async def test_recording_started_while_the_database_is_down_is_catalogued_after_a_restart(db, tmp_path):
    s = Settings(directory=tmp_path / "rec", spool_dir=Path(SPOOL), finalize_delay=1.0)
    gw = FakeGateway(spool=SPOOL, directory=s.directory, wav_source=PART1)
    clock = Clock()
    clock.advance(T)
    first = capture.RecordingsComponent(s, db=DownDatabase(db), clock=clock, gateway=gw)
    await first.start()
    gw.emit(connect("1.1"), T)
    while not any(a["Action"] == "MixMonitor" for a in gw.sent):  # although no row could be written
        await asyncio.sleep(0.005)
    assert [a["File"] for a in gw.sent if a["Action"] == "MixMonitor"] == [
        f"{SPOOL}/2026/11/22/consultation/1.1.wav"]
    gw.emit(Message.of(("Event", "Hangup"), ("Channel", "PJSIP/x-1.1"), ("Uniqueid", "1.1")), T + 10)
    await first.stop()  # the database never came back: the journal keeps the facts
    assert db.call(lambda ses: catalog.query(ses)) == []
    assert [e["op"] for e in Journal(s.journal_path).read()] == ["start", "ended"]

    second = capture.RecordingsComponent(s, db=db, clock=clock, gateway=FakeGateway(spool=SPOOL))
    await second.start()
    await second.idle()
    [rec] = db.call(lambda ses: [r.as_dict() for r in catalog.query(ses)])
    assert (rec["uniqueid"], rec["status"], rec["size"]) == ("1.1", "ready", PART1.stat().st_size)
    assert catalog.as_utc(dt.datetime.fromisoformat(rec["ended_at"])).timestamp() == T + 10  # the hang-up
    await second.stop()
    assert Journal(s.journal_path).read() == []


async def test_with_a_gap_facts_of_a_burst_wait_for_one_flush_and_a_lone_fact_goes_at_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from recordings.journal_writes import JournalWrites

    io = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    j = Journal(tmp_path / "j")
    j.open()
    began = []

    def run_io(fn, *a):
        began.append(loop.time())
        return loop.run_in_executor(io, fn, *a)
    writes = JournalWrites(j, run_io, gap=0.2)
    first = writes.append({"op": "start", "uid": "0.0", "rel": "a/0.0.wav"})
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(began) == 1                                      # after a quiet spell: at once
    await first
    burst = []
    for i in range(5):                                          # one fact every 10 ms
        burst.append(writes.append({"op": "start", "uid": f"1.{i}", "rel": f"a/1.{i}.wav"}))
        await asyncio.sleep(0.01)
    await asyncio.gather(*burst)
    assert writes.flushes == 2 and began[1] - began[0] >= 0.2   # the gap, then the five together
    assert [f["uid"] for f in j.read()] == ["0.0"] + [f"1.{i}" for i in range(5)]
    await writes.drained()
    j.close()
    io.shutdown()


async def test_facts_appended_together_share_a_flush_and_each_waits_for_its_own(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from recordings.journal_writes import JournalWrites

    io = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    j = Journal(tmp_path / "j")
    writes = JournalWrites(j, lambda fn, *a: loop.run_in_executor(io, fn, *a))
    refused = writes.append({"op": "start", "uid": "0.0", "rel": "a/0.0.wav"})
    with pytest.raises(RuntimeError, match="is not open"):  # each caller gets its fact's outcome
        await refused
    j.open()
    facts = [{"op": "start", "uid": f"1.{i}", "rel": f"a/1.{i}.wav"} for i in range(50)]
    await asyncio.gather(*(writes.append(f) for f in facts))
    assert j.read() == facts  # all on disk, in the order appended, when the callers go on
    assert writes.facts == 50 and writes.flushes < 5  # not one fsync each
    await writes.drained()
    j.close()
    io.shutdown()
