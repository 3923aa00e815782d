"""Bench: N concurrent IVR sessions over FastAGI; the server's added latency per AGI round trip.

The FastAGI server (with its SQLite store, sessions recorded) runs in this process; the
simulated Asterisk side (``run_agi`` + scripted callers, time-scaled) runs in a child
process so the two do not share one CPU's event loop.  Latency = time from a reply
being read to the next command being written (engine, effects, DB round trips included).

    .venv/bin/python bench/agi_sessions.py --sessions 500 --scale 20
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


class LoopClock:
    """IReactorTime-like clock on the asyncio loop, ``scale`` simulated seconds per real second."""

    class _Call:
        def __init__(self, handle):
            self.handle, self.done = handle, False

        def active(self):
            return not self.done and not self.handle.cancelled()

        def cancel(self):
            self.handle.cancel()

    def __init__(self, scale: float, start: float):
        self.loop = asyncio.get_running_loop()
        self.scale, self.t0, self.start = scale, self.loop.time(), start

    def seconds(self) -> float:
        return self.start + (self.loop.time() - self.t0) * self.scale

    def callLater(self, delay, fn, *a, **kw):
        call = None

        def run():
            call.done = True
            fn(*a, **kw)
        call = self._Call(self.loop.call_later(max(0.0, delay) / self.scale, run))
        return call


SCENARIOS = [  # (weight, keys, hangup_at)
    (5, [(0.5, "1"), (0.5, "1")], None),                # consultation
    (2, [(0.5, "2"), (0.5, "3"), (0.5, "9")], None),    # urgent complaint, English
    (1, [(0.5, "1"), (0.5, "2"), (0.5, "2"), (1.0, "1"), (0.2, "2"), (0.2, "3"), (0.2, "4"),
         (0.2, "5"), (0.2, "6"), (0.2, "7"), (0.2, "4"), (0.2, "#")], None),  # missed appt + patient id
    (1, [(0.5, "1"), (0.5, "7")], None),                # invalid, then timeouts -> operator
    (1, [(0.5, "1")], 3.0),                             # hangs up in the main menu
]


async def clients(port: int, n: int, scale: float) -> dict:
    from callcenter.simulator.agi_client import ScriptedCaller, run_agi

    clock = LoopClock(scale, OPEN)
    rng = random.Random(7)
    weights = [w for w, _, _ in SCENARIOS]

    async def one(i: int):
        _, keys, hangup_at = rng.choices(SCENARIOS, weights)[0]
        await asyncio.sleep(rng.random() * 0.2)
        caller = ScriptedCaller(clock, uniqueid=f"1795346775.{i}", name=f"Local/s@sim-caller-{i:08x};1",
                                keys=list(keys), hangup_at=hangup_at)
        env = {"agi_callerid": f"1380013{i:04d}", "agi_calleridname": f"Caller {i}", "agi_context": "hotline"}
        try:
            return await run_agi(f"agi://127.0.0.1:{port}/hotline", env, caller)
        finally:
            caller.close()

    t0 = time.perf_counter()
    statuses = await asyncio.gather(*(one(i) for i in range(n)))
    return {"statuses": {s: statuses.count(s) for s in set(statuses)}, "wall_seconds": time.perf_counter() - t0}


async def server_main(args) -> int:
    from callcenter.config import load_config
    from callcenter.domain import build_domain
    from callcenter.store import Database, migrate
    from ivr_flows.server import AgiServer, IvrPorts

    class NoQueues:  # the bench calls do not reach a queue-load branch
        def queue_load(self, queue):
            return None

    tmp = Path(tempfile.mkdtemp(prefix="agi-bench-"))
    db = Database(f"sqlite:///{tmp / 'bench.sqlite'}")
    migrate.upgrade(db.engine)
    latency: list[float] = []
    clock = LoopClock(args.scale, OPEN)
    d = build_domain(load_config(None), clock=clock)
    ports = IvrPorts(queue_load=NoQueues(), voice_messages=d.catalog, tickets=d.complaints,
                     callbacks=d.dialer, surveys=d.dialer, appointments=d.dialer)
    server = AgiServer("127.0.0.1", 0, clock=clock, db=db, latency=latency, ports=ports,
                       recordings_dir=str(tmp / "rec"))
    await server.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", "--port", str(server.port), "--sessions", str(args.sessions),
        "--scale", str(args.scale), stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    await server.stop()
    client = json.loads(out.decode().strip().splitlines()[-1])
    from sqlalchemy import func, select

    from ivr_flows.models import IvrSession
    with db.session() as s:
        stored = s.scalar(select(func.count()).select_from(IvrSession).where(IvrSession.ended_at.is_not(None)))
        results = dict(s.execute(select(IvrSession.result, func.count()).group_by(IvrSession.result)).all())
    db.close()
    lat = sorted(latency)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    report = {
        "sessions": args.sessions, "scale": args.scale, "client_statuses": client["statuses"],
        "wall_seconds": round(client["wall_seconds"], 2), "sessions_stored": stored, "results": results,
        "round_trips": len(lat), "latency_ms": {"p50": round(q(0.50), 3), "p90": round(q(0.90), 3),
                                                "p99": round(q(0.99), 3), "max": round(lat[-1] * 1000, 3),
                                                "mean": round(statistics.fmean(lat) * 1000, 3)},
        "target_p99_ms": 5.0,
    }
    print(json.dumps(report, indent=2))
    return 0 if stored == args.sessions and q(0.99) <= 5.0 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=500)
    p.add_argument("--scale", type=float, default=20.0, help="simulated seconds per real second")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(clients(args.port, args.sessions, args.scale))))
        return 0
    return asyncio.run(server_main(args))


if __name__ == "__main__":
    sys.exit(main())
