"""The dialer process killed with SIGKILL mid-campaign and restarted.

A real subprocess (``tests/faults/dialer_proc.py``: gateway + dialer + FastAGI survey)
dials a survey campaign through the simulated PBX in this process, over TCP, on a
shared time-scaled clock.  It is SIGKILLed while calls ring and surveys run, and a new
process with the same instance name takes over.  The PBX's own record of every
Originate (ATTEMPT_ID variable) is compared with the attempt rows: each attempt reached
the PBX at most once, nothing dialled without an attempt row, an attempt cut off between
its commit and its Originate is reconciled (unknown) rather than lost or redialled early,
no phone dialled again within the shortest retry delay, nobody called again after a
completed survey.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from callcenter.simulator import SimulatedPBX
from dialer.campaigns import contact_row, create_campaign, insert_contacts
from dialer.models import Attempt, Contact
from dialer.timeutil import to_dt, to_ts

from .dialer_proc import MIN_RETRY

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
SCALE = 120.0
BEHAVIOUR = ["answer", "busy", "answer", "noanswer"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def spawn(db_url, pbx, agi_port, clock, log: Path, instance="box"):
    with open(log, "ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.faults.dialer_proc", db_url, str(pbx.ami_port), str(agi_port),
            repr(clock._real0), repr(clock._sim0), str(SCALE), instance, cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE, stderr=err)
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready", (line, log.read_text(errors="replace")[-2000:])
    return proc


@pytest.mark.timeout(90)
async def test_sigkill_mid_campaign_never_dials_twice(db, db_url, tmp_path):
    t_start = time.monotonic()
    phones = [f"1380013{8100 + i:04d}" for i in range(24)]

    def seed(s):
        c = create_campaign(s, name="revisit-survey", kind="revisit", mode="survey", state="running",
                            max_attempts=3)
        insert_contacts(s, [contact_row(c.id, f"t{i}", phone=f"+86{num}", name=f"P{i}", reason="revisit",
                                        ref_type="treatment", ref_id=i, due_after=to_dt(OPEN - 60),
                                        due_before=None, patient_id=None, now=to_dt(OPEN - 60))
                            for i, num in enumerate(phones)])
    db.call(seed)
    clock = ScaledClock(reactor, SCALE, start=OPEN)
    agi_port = free_port()
    pbx = SimulatedPBX(clock, seed=5, spool_dir=tmp_path, agi_port=agi_port)
    for i, num in enumerate(phones):
        pbx.set_patient(num, BEHAVIOUR[i % 4], ring=3, survey_digits="1w4w5", hold=40, delay=2)
    dialled: list[tuple[float, str, str]] = []  # (sim time, national number, ATTEMPT_ID): the PBX's record
    orig = pbx.originate

    def recording_originate(channel, **kw):
        number = channel.split("/", 1)[1].split("@", 1)[0]
        dialled.append((clock.seconds(), number, (kw.get("variables") or {}).get("ATTEMPT_ID", "")))
        return orig(channel, **kw)
    pbx.originate = recording_originate
    await pbx.start()

    def attempts():
        with db.session() as s:
            return list(s.scalars(select(Attempt).order_by(Attempt.id)))

    def contacts():
        with db.session() as s:
            return list(s.scalars(select(Contact)))

    procs = []
    try:
        procs.append(await spawn(db_url, pbx, agi_port, clock, tmp_path / "dialer.log"))
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while not (len(dialled) >= 10 and any(ch.data.get("agi") or ch.app == "AGI"
                                              for ch in pbx.channels.values())):
            assert loop.time() < end, "campaign did not get going"
            await asyncio.sleep(0.01)
        live_at_kill = sum(1 for a in attempts() if a.state in ("dialing", "answered"))
        os.kill(procs[0].pid, signal.SIGKILL)
        await procs[0].wait()
        killed_at = clock.seconds()
        dialled_at_kill = len(dialled)
        procs.append(await spawn(db_url, pbx, agi_port, clock, tmp_path / "dialer.log"))
        end = loop.time() + 45
        while True:
            cs = contacts()
            if all(c.state == "done" for c in cs) and not pbx.channels:
                break
            assert loop.time() < end, collections.Counter((c.state, c.outcome) for c in cs)
            await asyncio.sleep(0.05)
    finally:
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(p.wait(), 10)
                except asyncio.TimeoutError:
                    p.kill()
                    await p.wait()
        await pbx.stop()

    rows = attempts()
    by_id = {str(a.id): a for a in rows}
    sent_ids = collections.Counter(aid for _, _, aid in dialled)
    per_phone: dict[str, list[float]] = collections.defaultdict(list)
    for t, num, _ in dialled:
        per_phone[num].append(t)
    gaps = [b - a for ts in per_phone.values() for a, b in zip(ts, ts[1:])]
    sent_at = {aid: t for t, _, aid in dialled}
    completed_then_called = [
        a.phone for a in rows if a.disposition == "completed"
        and any(t > sent_at[str(a.id)] for t in per_phone[a.phone[3:]])]
    figures = {
        "contacts": len(phones), "attempts": len(rows), "originates_at_pbx": len(dialled),
        "in_flight_at_kill": live_at_kill, "dialled_before_kill": dialled_at_kill,
        "claimed_not_sent": sum(1 for a in rows if str(a.id) not in sent_ids and a.disposition != "not_sent"),
        "dispositions": dict(collections.Counter(a.disposition or a.state for a in rows)),
        "min_gap_same_phone_s": round(min(gaps), 1) if gaps else None,
        "wall_seconds": round(time.monotonic() - t_start, 1)}
    print("\nFIGURES sigkill: " + json.dumps(figures))
    assert live_at_kill > 0  # the kill really caught calls in flight
    assert all(aid in by_id for aid in sent_ids), "an Originate without an attempt row"
    assert all(n == 1 for n in sent_ids.values()), "an attempt dialled twice"
    # an attempt row is committed before its Originate: a kill in between leaves a row for a
    # call that never reached the PBX; it must be reconciled (unknown), never claim an outcome
    unsent = [a for a in rows if str(a.id) not in sent_ids and a.disposition != "not_sent"]
    assert all(a.state == "unknown" or a.disposition == "unknown" for a in unsent), \
        [(a.id, a.state, a.disposition) for a in unsent]
    # one claim round commits its attempts together, then sends their Originates one by one:
    # the kill cuts off at most the rest of that one round (all claimed at the same moment)
    assert len({(a.instance, a.started_at) for a in unsent}) <= 1, \
        ("unsent attempts of more than the one claim round the kill can cut off",
         [(a.id, a.instance, a.started_at) for a in unsent])
    assert all(g >= MIN_RETRY - 5 for g in gaps), sorted(gaps)[:5]
    assert not completed_then_called
    assert all(a.state in ("ended", "unknown") for a in rows)
    assert any(a.disposition == "unknown" or a.state == "unknown" for a in rows)  # reconciled, not redialled
    assert to_ts(max(a.started_at for a in rows)) > killed_at  # the new process carried on
