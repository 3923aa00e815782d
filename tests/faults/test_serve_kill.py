"""``callcenter serve`` killed with SIGKILL on a busy line and restarted a little later.

The simulated PBX runs in this process on the wall clock (``serve`` uses the real
reactor time); ``python -m callcenter serve`` is a real subprocess talking AMI and
FastAGI to it over TCP.  Callers keep arriving (plain queue callers, and IVR callers
who sit in the first menu), the process is killed while calls wait and talk and IVR
sessions are mid-menu, and a new one starts ``GAP`` seconds later.  Then every queue
call in the simulator's queue_log is stored exactly once (the ones cut off flagged as
gaps), the restart is an ``ami_outages`` row recovered from queue_log, and no IVR
session is left open.

Figures for docs/reliability.md (real time, a 20 s gap)::

    SERVE_KILL_GAP=20 SERVE_KILL_BUSY=30 pytest tests/faults/test_serve_kill.py -s -k sqlite
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from callcenter.queuecalls.models import AmiOutage
from callcenter.simulator import SimConfig, SimulatedPBX
from ivr_flows.models import IvrSession

from tests.support.harness import accounting

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
GAP = float(os.environ.get("SERVE_KILL_GAP", "5"))     # seconds between the kill and the restart
BUSY = float(os.environ.get("SERVE_KILL_BUSY", "6"))   # seconds of traffic before the kill
AGENTS = {"consultation": ["1001", "1002", "1003", "1004"], "complaint": ["2001", "2002"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def spawn(env: dict, log: Path) -> asyncio.subprocess.Process:
    with open(log, "ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callcenter", "serve", cwd=str(ROOT), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=err)


async def until(cond, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, what
        await asyncio.sleep(0.05)


@pytest.mark.timeout(60 + 3 * (GAP + BUSY))
async def test_sigkill_of_serve_on_a_busy_line_loses_no_queue_call(db, db_url, tmp_path):
    t0 = time.monotonic()
    clock = ScaledClock(reactor, 1.0)  # the wall clock, like serve's reactor
    qlog = tmp_path / "queue_log"
    agi_port = free_port()
    pbx = SimulatedPBX(clock, seed=61, config=SimConfig(queues={}), queue_log=qlog, agi_port=agi_port)
    for queue, ids in AGENTS.items():
        for i, agent in enumerate(ids):
            pbx.add_agent(queue, agent, f"Agent {agent}", answer_delay=1 + i % 2, talk_time=4 + i, talk_sd=1)
    await pbx.start()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCENTER_DATABASE_URL": db_url,
           "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "data"), "CALLCENTER_SERVICE_LOG_LEVEL": "INFO",
           "CALLCENTER_AMI_PORT": str(pbx.ami_port), "CALLCENTER_AMI_SECRET": "bridge-secret",
           "CALLCENTER_AMI_QUEUE_LOG": str(qlog), "CALLCENTER_AGI_PORT": str(agi_port),
           "CALLCENTER_WEB_ENABLED": "false", "CALLCENTER_DIALER_ENABLED": "false",
           "CALLCENTER_RECORDINGS_ENABLED": "false", "CALLCENTER_COMPLAINTS_ENABLED": "false"}
    env.pop("CALLCENTER_CONFIG", None)
    log = tmp_path / "serve.log"
    calls, ivr_calls = [], []
    stop_traffic, killed = asyncio.Event(), asyncio.Event()

    async def traffic() -> None:
        n = 0
        while not stop_traffic.is_set():
            n += 1
            number = f"1380013{n % 10000:04d}"
            if n % 4 == 0 and not killed.is_set():  # an IVR caller slow in the first menu
                ivr_calls.append(pbx.inbound_call(number, f"Caller {n}", context="hotline", digits="1",
                                                  digit_delay=GAP + 4, patience=30))
            else:
                calls.append(pbx.inbound_call(number, f"Caller {n}", context="hotline-plain",
                                              digits="1" if n % 3 else "2", digit_delay=0.5,
                                              patience=4 + n % 6))
            await asyncio.sleep(0.45)

    def logged_in() -> bool:
        return any(s.authenticated for s in pbx.ami.sessions)

    procs = []
    feeder = None
    try:
        procs.append(await spawn(env, log))
        await until(logged_in, 30, "serve did not log in: " + log.read_text(errors="replace")[-2000:])
        feeder = asyncio.ensure_future(traffic())
        await asyncio.sleep(BUSY)
        live_at_kill = sum(1 for c in calls if not c.done)
        ivr_at_kill = sum(1 for c in ivr_calls if not c.done)
        killed.set()
        os.kill(procs[0].pid, signal.SIGKILL)
        await procs[0].wait()
        await until(lambda: not logged_in(), 5, "the AMI session outlived the process")
        await asyncio.sleep(GAP)                         # callers keep coming while nobody listens
        procs.append(await spawn(env, log))
        await until(logged_in, 30, "serve did not come back: " + log.read_text(errors="replace")[-2000:])
        await asyncio.sleep(3)
        stop_traffic.set()
        await feeder
        await until(lambda: all(c.done for c in calls + ivr_calls), 60, "calls did not finish")
        # the last Hangups reach serve and its batches are written (a fixed 1.5 s was too short on a
        # loaded machine: a call still live in serve at SIGTERM is left to the next start, not stored);
        # bounded: a call really lost stays missing and fails the accounting below
        for _ in range(80):
            if accounting(db, qlog).exact:
                break
            await asyncio.sleep(0.25)
    finally:
        stop_traffic.set()
        if feeder is not None and not feeder.done():
            feeder.cancel()
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(p.wait(), 20)
                except asyncio.TimeoutError:
                    p.kill()
                    await p.wait()
        await pbx.stop()
    acc = accounting(db, qlog)
    with db.session() as s:
        outages = list(s.scalars(select(AmiOutage)))
        ivr = list(s.scalars(select(IvrSession)))
    figures = {"gap_s": GAP, "busy_s": BUSY, "queue_calls_in_queue_log": acc.expected, "stored": acc.stored,
               "missing": len(acc.missing), "duplicated": len(acc.duplicated),
               "wrong_outcome": len(acc.wrong_outcome), "flagged_gap": acc.reconstructed,
               "live_at_kill": live_at_kill, "ivr_mid_menu_at_kill": ivr_at_kill,
               "outages": [(round(o.recovered_calls), o.recovered_from_queue_log, o.note) for o in outages],
               "recovered_from_queue_log": acc.recovered_from_queue_log,
               "ivr_sessions": len(ivr), "ivr_interrupted": sum(1 for r in ivr if r.result == "interrupted"),
               "ivr_open": sum(1 for r in ivr if r.ended_at is None),
               "wall_seconds": round(time.monotonic() - t0, 1)}
    print("\nFIGURES serve_sigkill: " + json.dumps(figures))
    assert live_at_kill > 0 and ivr_at_kill > 0  # the kill caught calls waiting/talking and in the menu
    assert acc.expected >= 15
    assert acc.exact, (acc.missing[:5], acc.duplicated[:5], acc.wrong_outcome[:5])
    assert len(outages) == 1 and outages[0].recovered_from_queue_log, figures["outages"]
    assert acc.recovered_from_queue_log > 0
    assert not [r.id for r in ivr if r.ended_at is None]
    assert figures["ivr_interrupted"] >= 1
