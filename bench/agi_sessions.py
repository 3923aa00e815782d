"""Bench: the delay a caller hears per FastAGI round trip, our IVR server against two anchors.

Three servers answer the same callers, in interleaved rounds (the order rotates):

* ``ours``: the project's FastAGI server running the hotline flow, with its SQLite store
  (every session recorded, as in production);
* ``panoramisk``: panoramisk's own ``fast_agi.Application`` replaying, per session, the
  command lines our server sent for the same scripted caller (recorded in a first,
  uncounted round), so both do the same AGI work without our engine and store;
* ``asyncio``: a bare ``asyncio.start_server`` doing the same replay.

Each server starts as the service does: start-up's objects frozen out of the garbage
collector's view (``callcenter/heap.py``, ``Assembly.start``), and thawed at its stop.

The callers (``run_agi`` + ``ScriptedCaller``, time-scaled) run in a child process so the
two sides do not share one event loop.  The caller-side delay is the time from a reply
written to the next command line read.  Two phases per round:

* ``warm``: the sessions start spread over ``--spread`` real seconds, on a server that has
  already served a warm-up round: p99 of ours against ``--ratio`` x panoramisk's p99;
* ``burst``: a freshly started server (new database) gets all sessions within 0.2 s: our
  server-side p99 (reply read -> next command written, DB waits included) against
  ``--burst-p99-ms``.

    .venv/bin/python bench/agi_sessions.py --sessions 500 --rounds 3
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

from callcenter import heap  # noqa: E402

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
SERVERS = ("ours", "panoramisk", "asyncio")


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


def quantiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    q = lambda p: v[min(len(v) - 1, int(p * len(v)))] * 1000  # noqa: E731
    return {"n": len(v), "p50": round(q(0.5), 3), "p90": round(q(0.9), 3), "p99": round(q(0.99), 3),
            "max": round(v[-1] * 1000, 3), "mean": round(statistics.fmean(v) * 1000, 3)}


# -- the callers (child process) -------------------------------------------------------
async def clients(port: int, n: int, scale: float, spread: float, record: bool) -> dict:
    from callcenter.simulator.agi_client import ScriptedCaller, run_agi

    clock = LoopClock(scale, OPEN)
    rng = random.Random(7)
    weights = [w for w, _, _ in SCENARIOS]
    delays: list[float] = []
    scripts: dict[int, list[str]] = {}

    async def one(i: int):
        k = rng.choices(range(len(SCENARIOS)), weights)[0]
        _, keys, hangup_at = SCENARIOS[k]
        start = rng.random() * spread
        await asyncio.sleep(start)
        caller = ScriptedCaller(clock, uniqueid=f"1795346775.{i}", name=f"Local/s@sim-caller-{i:08x};1",
                                keys=list(keys), hangup_at=hangup_at)
        commands: list[str] | None = None
        if record and k not in scripts:
            commands = scripts[k] = []
        env = {"agi_callerid": f"1380013{i:04d}", "agi_calleridname": f"Caller {i}", "agi_context": "hotline",
               "agi_arg_1": str(k)}
        try:
            return await run_agi(f"agi://127.0.0.1:{port}/hotline", env, caller, delays=delays,
                                 commands=commands)
        finally:
            caller.close()

    t0 = time.perf_counter()
    statuses = await asyncio.gather(*(one(i) for i in range(n)))
    return {"statuses": {s: statuses.count(s) for s in set(statuses)}, "wall_seconds": time.perf_counter() - t0,
            "delay": quantiles(delays), "scripts": scripts}


# -- the servers (this process) -------------------------------------------------------
class Ours:
    def __init__(self, scale: float, sessions: int):
        self.scale, self.sessions = scale, sessions
        self.latency: list[float] = []

    async def start(self) -> int:
        from callcenter.config import load_config
        from callcenter.domain import build_domain
        from callcenter.store import Database, migrate
        from ivr_flows.server import AgiServer, IvrPorts

        class NoQueues:  # the bench calls do not reach a queue-load branch
            def queue_load(self, queue):
                return None

        self.tmp = Path(tempfile.mkdtemp(prefix="agi-bench-"))
        self.db = Database(f"sqlite:///{self.tmp / 'bench.sqlite'}")
        migrate.upgrade(self.db.engine)
        clock = LoopClock(self.scale, OPEN)
        d = build_domain(load_config(None), clock=clock)
        ports = IvrPorts(queue_load=NoQueues(), voice_messages=d.catalog, tickets=d.complaints,
                         callbacks=d.dialer, surveys=d.dialer, ratings=d.ratings,
                         appointments=d.dialer)
        # every caller of the burst at once: above [agi] max_sessions (256) the rest would be refused
        self.server = AgiServer("127.0.0.1", 0, clock=clock, db=self.db, latency=self.latency, ports=ports,
                                recordings_dir=str(self.tmp / "rec"), max_sessions=self.sessions + 16)
        await self.server.start()
        heap.freeze_long_lived()  # as the service's start-up ends (callcenter.app.Assembly.start)
        return self.server.port

    async def stop(self) -> dict:
        from sqlalchemy import func, select

        from ivr_flows.models import IvrSession

        await self.server.stop()
        heap.thaw()
        with self.db.session() as s:
            stored = s.scalar(select(func.count()).select_from(IvrSession).where(IvrSession.ended_at.is_not(None)))
        self.db.close()
        return {"sessions_stored": stored, "server_side": quantiles(self.latency)}


class Replay:
    """An anchor: per session, the recorded command lines of its scenario, one after another."""

    def __init__(self, scripts: dict[int, list[str]]):
        self.scripts = scripts

    def script(self, headers: dict) -> list[str]:
        return self.scripts[int(headers.get("agi_arg_1", "0"))]


class Panoramisk(Replay):
    async def start(self) -> int:
        from panoramisk import fast_agi

        app = fast_agi.Application()

        async def hotline(request):
            for line in self.script(request.headers):
                await request.send_command(line)
        app.add_route("hotline", hotline)
        self.srv = await asyncio.start_server(app.handler, "127.0.0.1", 0)
        heap.freeze_long_lived()  # the same process heap as ours gets
        return self.srv.sockets[0].getsockname()[1]

    async def stop(self) -> dict:
        self.srv.close()
        await self.srv.wait_closed()
        heap.thaw()
        return {}


class BareAsyncio(Replay):
    async def start(self) -> int:
        async def handle(reader, writer):
            headers = {}
            while True:
                line = (await reader.readline()).decode()
                if line in ("\n", ""):
                    break
                k, _, v = line.rstrip("\n").partition(": ")
                headers[k] = v
            try:
                for cmd in self.script(headers):
                    writer.write((cmd + "\n").encode())
                    await writer.drain()
                    if not await reader.readline():
                        break
            finally:
                writer.close()
        self.srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        heap.freeze_long_lived()
        return self.srv.sockets[0].getsockname()[1]

    async def stop(self) -> dict:
        self.srv.close()
        await self.srv.wait_closed()
        heap.thaw()
        return {}


async def run_clients(port: int, args, *, spread: float, record: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--client", "--port", str(port), "--sessions", str(args.sessions),
           "--scale", str(args.scale), "--spread", str(spread)] + (["--record"] if record else [])
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    return json.loads(out.decode().strip().splitlines()[-1])


async def one_phase(kind: str, args, scripts, *, spread: float, record: bool = False) -> dict:
    server = Ours(args.scale, args.sessions) if kind == "ours" else (Panoramisk if kind == "panoramisk" else BareAsyncio)(scripts)
    port = await server.start()
    got = await run_clients(port, args, spread=spread, record=record)
    got.update(await server.stop())
    return got


async def server_main(args) -> int:
    warmup = await one_phase("ours", args, None, spread=args.spread, record=True)
    scripts = {int(k): v for k, v in warmup["scripts"].items()}
    rounds = []
    for r in range(args.rounds):
        order = SERVERS[r % 3:] + SERVERS[:r % 3]
        warm = {}
        for kind in order:
            got = await one_phase(kind, args, scripts, spread=args.spread)
            got.pop("scripts", None)
            warm[kind] = got
        burst = await one_phase("ours", args, scripts, spread=0.2)
        burst.pop("scripts", None)
        ratio = warm["ours"]["delay"]["p99"] / warm["panoramisk"]["delay"]["p99"]
        rounds.append({"order": order, "warm": warm, "burst_ours": burst, "ratio_p99_ours_vs_panoramisk": round(ratio, 2)})
        print(json.dumps({"round": r + 1, "order": order,
                          "p99_ms": {k: warm[k]["delay"]["p99"] for k in SERVERS}, "ratio": round(ratio, 2),
                          "burst_server_side": burst["server_side"],
                          "stored": [warm["ours"]["sessions_stored"], burst["sessions_stored"]]}), flush=True)
    ratios = [x["ratio_p99_ours_vs_panoramisk"] for x in rounds]
    burst_p99 = [x["burst_ours"]["server_side"]["p99"] for x in rounds]
    stored_ok = all(x["warm"]["ours"]["sessions_stored"] == args.sessions
                    and x["burst_ours"]["sessions_stored"] == args.sessions for x in rounds)
    summary = {"sessions": args.sessions, "rounds": args.rounds, "spread_s": args.spread, "scale": args.scale,
               "ratio_p99_ours_vs_panoramisk": {"min": min(ratios), "median": statistics.median(ratios),
                                                "max": max(ratios)},
               "burst_server_side_p99_ms": {"min": min(burst_p99), "max": max(burst_p99)},
               "every_session_stored": stored_ok,
               "targets": {"ratio": args.ratio, "burst_p99_ms": args.burst_p99_ms}}
    print(json.dumps(summary, indent=2))
    met = stored_ok and statistics.median(ratios) <= args.ratio and max(burst_p99) <= args.burst_p99_ms
    return 0 if met else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scale", type=float, default=20.0, help="simulated seconds per real second")
    p.add_argument("--spread", type=float, default=5.0, help="warm phase: sessions start over this many s")
    p.add_argument("--ratio", type=float, default=1.5, help="target: our p99 <= this x panoramisk's")
    p.add_argument("--burst-p99-ms", type=float, default=20.0)
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--record", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(clients(args.port, args.sessions, args.scale, args.spread, args.record))))
        return 0
    return asyncio.run(server_main(args))


if __name__ == "__main__":
    sys.exit(main())
