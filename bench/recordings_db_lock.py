"""Bench: queue calls answered while the SQLite file is really locked; are they all recorded?

A thread holds ``BEGIN EXCLUSIVE`` on the service's SQLite file for ``--lock`` real
seconds (every catalogue write blocks on the 30 s busy timeout, then fails with
"database is locked") while the simulated Asterisk (real AMI TCP, real time) answers a
caller every ``--lock/--calls`` seconds.  Reports answered calls, MixMonitor starts and
their delay after ``AgentConnect``, and the catalogue once the lock is gone.

    .venv/bin/python bench/recordings_db_lock.py --lock 90 --calls 10
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def run(args) -> dict:
    from twisted.internet import reactor

    from callcenter import simulator
    from callcenter.ami.gateway import AmiGateway
    from callcenter.clock import ScaledClock
    from callcenter.store import Database, migrate
    from recordings import capture, catalog, maintenance
    from recordings.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="rec-lock-"))
    db = Database(f"sqlite:///{tmp / 'cc.sqlite'}")
    migrate.upgrade(db.engine)
    clock = ScaledClock(reactor, 1.0)
    pbx = simulator.SimulatedPBX(clock, seed=4, spool_dir=tmp / "pbx")
    await pbx.start(host="127.0.0.1", ami_port=0)
    pbx.globals["AGENT_SAY"] = "hello-world"
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock, ping_interval=60)
    await gw.start()
    await gw.wait_connected(10)
    s = Settings(directory=tmp / "pbx" / "recordings", spool_dir=Path("/var/spool/asterisk/recordings"),
                 finalize_delay=1.0)
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    connects, monitors, finalized = {}, {}, {}
    gw.subscribe(lambda m, t: connects.setdefault(m["Uniqueid"], time.monotonic()) if m.event == "AgentConnect"
                 else monitors.setdefault(m["Uniqueid"], time.monotonic()) if m.event == "MixMonitorStart" else None,
                 ("AgentConnect", "MixMonitorStart"))
    comp.subscribe(lambda what, rid, uid, st: finalized.setdefault(uid, st) if what == "finalized" else None)
    await comp.start()

    locked = threading.Event()

    def hold():
        con = sqlite3.connect(tmp / "cc.sqlite", timeout=1)
        con.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(args.lock)
        con.rollback()
        con.close()
    t = threading.Thread(target=hold, daemon=True)
    t.start()
    locked.wait()
    lock_start = time.monotonic()
    calls = []
    for i in range(args.calls):
        calls.append(pbx.inbound_call(f"1360013{i:04d}", "Chen Jie", context="hotline-plain", digits="1",
                                      digit_delay=1, patience=60))
        await asyncio.sleep(args.lock / args.calls)
    while not all(c.done for c in calls) or t.is_alive():
        await asyncio.sleep(0.1)
    end = time.monotonic() + 120
    while not {c.uniqueid for c in calls} <= set(finalized) and time.monotonic() < end:
        await asyncio.sleep(0.1)
    await comp.stop()
    await gw.stop()
    await pbx.stop()
    rows = db.call(lambda ses: {r.uniqueid: r.status for r in catalog.query(ses, limit=1000)})
    delays = [monitors[u] - connects[u] for u in connects if u in monitors]
    in_lock = sum(1 for u, ts in connects.items() if lock_start <= ts < lock_start + args.lock)
    report = maintenance.verify(db, s, now=catalog.as_utc(clock.seconds()))
    db.close()
    return {"lock_seconds": args.lock, "calls": len(calls), "answered": len(connects),
            "answered_inside_lock": in_lock, "mixmonitor_started": len(monitors),
            "max_mixmonitor_delay_ms": round(1000 * max(delays), 1) if delays else None,
            "ready": sum(1 for v in rows.values() if v == "ready"), "rows": len(rows),
            "verify_problems": len(report.problems)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lock", type=float, default=90.0, help="real seconds the SQLite file stays locked")
    p.add_argument("--calls", type=int, default=10)
    args = p.parse_args()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    from twisted.internet import asyncioreactor

    asyncioreactor.install(loop)
    from twisted.internet import defer, reactor

    out = {}

    async def go():
        try:
            out.update(await run(args))
        finally:
            reactor.stop()
    reactor.callWhenRunning(lambda: defer.Deferred.fromFuture(asyncio.ensure_future(go())))
    reactor.run()
    print("RECORDINGS_DB_LOCK " + json.dumps(out))
    return 0 if out and out["ready"] == out["answered"] == out["mixmonitor_started"] else 1


if __name__ == "__main__":
    sys.exit(main())
