"""Soak: a busy hotline run time-scaled for a bounded time; memory and latency must stay flat.

    .venv/bin/python bench/soak.py tcp   [--seconds 600] [--scale 60] [--agents 50] [--peak-rate 0.8]
    .venv/bin/python bench/soak.py store [--calls 1000000] [--days 30]

``tcp`` — the whole inbound path over real TCP, two processes:
  * a child process runs the simulated PBX (``SimulatedPBX``) with 50 agents (35
    consultation, 15 complaint; talk 180±60 s) and Poisson callers whose rate follows the
    hospital's hourly profile (peak ``--peak-rate`` calls/s, patience ~4 min: about 200
    calls in the system at the peak), on a ``ScaledClock`` shared through wall time;
  * this process runs the service side: ``AmiGateway`` -> ``QueueCallsTracker`` ->
    SQLite, and the web component, whose ``/api/wallboard`` is polled over HTTP as a
    logged-in supervisor all the time.
  Every ``--window`` real seconds it prints: simulated time, calls in the system,
  events/s, queue calls stored, RSS of both processes, event->stored latency (the event
  that finished a call until its row is committed, real ms, p50/p99) and the wallboard's
  response time (p50/p99).  The run ends after ``--seconds`` (bounded): at scale 60 ten
  minutes are a 10-hour hospital day including its peak.

``store`` — 1,000,000 queue calls (default) spread over ``--days`` simulated days at the
  reducer + store level (no TCP: that path cannot carry a month in a bounded run): the
  recorded call's queue events (join, ring, leave, connect, complete, hangups) with new
  Uniqueids, 50 calls in flight, through ``reducer.reduce``; finished calls written by
  ``queuecalls.store.write_calls`` in batches of 500 to a SQLite file that grows to
  the whole month.  Every 50,000 calls: RSS, batch write time (p50/p99) and the
  wallboard's work for the last complete day (``web.data.queue_calls`` + ``summarize``
  over ~33,000 rows: what the dashboard does per request at the end of a busy day).

Both end with a JSON summary line (``SOAK {...}``) used in docs/reliability.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TZ = ZoneInfo("Asia/Shanghai")
# Monday 2026-11-23 08:00 in Shanghai: the day's traffic starts at once
START = dt.datetime(2026, 11, 23, 8, 0, tzinfo=TZ).timestamp()
WEIGHTS = {8: 1.3, 9: 1.6, 10: 1.5, 11: 1.2, 12: 0.7, 13: 0.9, 14: 1.1, 15: 1.0, 16: 0.8, 17: 0.3}


def rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.1f}"


# ============================================================================ tcp: the PBX child
def sim_child(args) -> int:
    from callcenter import runtime

    async def run(stop) -> int:
        from twisted.internet import reactor

        from callcenter.clock import ScaledClock
        from callcenter.simulator import SimConfig, SimulatedPBX

        clock = ScaledClock(reactor, args.scale)
        clock._real0, clock._sim0 = args.real0, args.sim0
        pbx = SimulatedPBX(clock, seed=args.seed, config=SimConfig(queues={}))
        await pbx.start()
        n_cons = round(args.agents * 0.7)
        for i in range(args.agents):
            q = "consultation" if i < n_cons else "complaint"
            pbx.add_agent(q, str(1100 + i), f"Agent {1100 + i}", answer_delay=4, talk_time=180, talk_sd=60)
        print(pbx.ami_port, flush=True)
        rng = random.Random(args.seed)
        peak = max(WEIGHTS.values())
        state = {"n": 0}

        def rate(t: float) -> float:
            hour = dt.datetime.fromtimestamp(t, TZ).hour
            return args.peak_rate * WEIGHTS.get(hour, 0.0) / peak

        def arrive() -> None:  # thinning: candidate events at the peak rate, kept with rate(t)/peak
            now = clock.seconds()
            if rng.random() < rate(now) / args.peak_rate:
                state["n"] += 1
                pbx.inbound_call(f"138{rng.randrange(10**8):08d}", rng.choice(["Li Na", "王小明", "Chen Jie"]),
                                 context="hotline-plain", digits=rng.choices(["1", "2", ""], [0.7, 0.25, 0.05])[0],
                                 digit_delay=round(rng.uniform(2, 6), 1),
                                 patience=round(rng.expovariate(1 / 240) + 10, 1), stay_when_connected=True)
                if len(pbx.calls) > 2000:  # the simulator's own list of handles, not the service's memory
                    pbx.calls[:] = [c for c in pbx.calls if not c.done]
            pbx.timers.call_later(rng.expovariate(args.peak_rate), arrive)

        pbx.timers.call_later(0.1, arrive)
        await stop.wait()
        await pbx.stop()
        return 0

    return runtime.run(run)


# ============================================================================ tcp: the service side
def tcp(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    os.environ["CALLCENTER_SERVICE_DATA_DIR"] = str(tmp / "data")
    os.environ["CALLCENTER_DATABASE_URL"] = f"sqlite:///{tmp / 'soak.sqlite'}"
    from callcenter import runtime
    from callcenter.config import load_config
    from callcenter.store import Database, migrate
    from callcenter.store.models import User
    from callcenter.web.passwords import hash_password

    config = load_config(None)
    db = Database(config.database_url)
    migrate.upgrade(db.engine)
    with db.session() as s:
        s.add(User(username="soak", display_name="Soak", role="supervisor", interface="", language="en",
                   password_hash=hash_password("soak-password-1", n=2**10), active=True))

    async def main(stop) -> int:
        from twisted.internet import reactor

        from callcenter.ami.gateway import AmiGateway
        from callcenter.clock import ScaledClock
        from callcenter.app import build
        from callcenter.queuecalls.reducer import Finished
        from tests.support.web import Client

        clock = ScaledClock(reactor, args.scale, start=START)
        child = subprocess.Popen(
            [sys.executable, __file__, "sim-child", "--real0", repr(clock._real0), "--sim0", repr(clock._sim0),
             "--scale", str(args.scale), "--agents", str(args.agents), "--peak-rate", str(args.peak_rate),
             "--seed", str(args.seed)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        port = int(await asyncio.to_thread(child.stdout.readline))
        # timeouts are on the simulated clock: 5 s at x60 would be 83 ms of real time, which a
        # loaded 2-core box misses; keep them ~5 s real
        gw = AmiGateway("127.0.0.1", port, "bridge", "bridge-secret", clock=clock, ping_interval=10 * args.scale,
                        ping_timeout=5 * args.scale, action_timeout=10 * args.scale)
        assembly = build(config.with_overrides({"web": {"host": "127.0.0.1", "port": 0}}), clock=clock, db=db, ami=gw)
        tracker, web = assembly.queuecalls, assembly.web  # this bench runs the AMI -> tracker -> web path only
        finished_at: dict[str, float] = {}
        store_lat: list[float] = []

        def on_fact(fact):
            finished_at[fact.record.uniqueid] = time.perf_counter()
        tracker.subscribe(on_fact, Finished)
        orig_write = tracker._write_some

        async def timed_write():
            batch = [r.uniqueid for r in tracker.buffer[: tracker.batch_size]]
            await orig_write()
            now = time.perf_counter()
            for uid in batch:
                t = finished_at.pop(uid, None)
                if t is not None:
                    store_lat.append(now - t)
        tracker._write_some = timed_write
        await tracker.start()
        await gw.start()
        await gw.wait_connected(10)
        await web.start()
        client = Client(web.port)
        assert (await client.login("soak", "soak-password-1")).status == 303
        board_lat: list[float] = []
        board_err = [0]
        running = [True]

        async def poll():
            while running[0]:
                t0 = time.perf_counter()
                r = await client.get("/api/wallboard")
                board_lat.append(time.perf_counter() - t0)
                if r.status != 200:
                    board_err[0] += 1
                await asyncio.sleep(0.2)
        poller = asyncio.ensure_future(poll())
        rows = []
        t_start = time.monotonic()
        last_ev, last_t = gw.events_received, time.monotonic()
        print(f"{'real s':>6} {'sim time':>16} {'in sys':>6} {'ev/s':>7} {'stored':>8} {'rss MB':>7} "
              f"{'pbx MB':>7} {'store p50/p99 ms':>17} {'board p50/p99 ms':>17}", flush=True)
        try:
            while time.monotonic() - t_start < args.seconds and not stop.is_set():
                await asyncio.sleep(args.window)
                now = time.monotonic()
                live = tracker.live()
                in_sys = sum(len(q["waiting"]) + len(q["talking"]) for q in live.values())
                evs = (gw.events_received - last_ev) / (now - last_t)
                last_ev, last_t = gw.events_received, now
                row = {"real_s": round(now - t_start), "sim": dt.datetime.fromtimestamp(clock.seconds(), TZ)
                       .strftime("%a %H:%M"), "in_system": in_sys, "events_per_s": round(evs),
                       "stored": tracker.written, "rss_mb": round(rss_mb(), 1), "pbx_rss_mb": round(rss_mb(child.pid), 1),
                       "store_p50_ms": pct(store_lat, 50), "store_p99_ms": pct(store_lat, 99),
                       "board_p50_ms": pct(board_lat, 50), "board_p99_ms": pct(board_lat, 99),
                       "board_requests": len(board_lat), "buffered": len(tracker.buffer),
                       "live_state": len(tracker.state.calls), "remembered": len(tracker.state.finished)}
                rows.append(row)
                print(f"{row['real_s']:>6} {row['sim']:>16} {in_sys:>6} {row['events_per_s']:>7} "
                      f"{row['stored']:>8} {row['rss_mb']:>7} {row['pbx_rss_mb']:>7} "
                      f"{ms(row['store_p50_ms']):>8}/{ms(row['store_p99_ms']):<8} "
                      f"{ms(row['board_p50_ms']):>8}/{ms(row['board_p99_ms']):<8}", flush=True)
                store_lat.clear()
                board_lat.clear()
        finally:
            running[0] = False
            await poller
            await web.stop()
            await gw.stop()
            await tracker.stop()
            child.terminate()
            child.wait(10)
        half = rows[len(rows) // 2:] or rows
        summary = {
            "mode": "tcp", "seconds": args.seconds, "scale": args.scale, "agents": args.agents,
            "peak_rate": args.peak_rate, "sim_hours": round(args.seconds * args.scale / 3600, 1),
            "queue_calls_stored": tracker.written, "max_in_system": max(r["in_system"] for r in rows),
            "max_events_per_s": max(r["events_per_s"] for r in rows),
            "rss_first_mb": rows[0]["rss_mb"], "rss_mid_mb": half[0]["rss_mb"], "rss_last_mb": rows[-1]["rss_mb"],
            "rss_growth_second_half_mb": round(rows[-1]["rss_mb"] - half[0]["rss_mb"], 1),
            "store_p99_ms_worst_window": max((r["store_p99_ms"] or 0) for r in rows) * 1000,
            "store_p50_ms_median_window": statistics.median(r["store_p50_ms"] or 0 for r in rows) * 1000,
            "board_p99_ms_worst_window": max((r["board_p99_ms"] or 0) for r in rows) * 1000,
            "board_p50_ms_median_window": statistics.median(r["board_p50_ms"] or 0 for r in rows) * 1000,
            "board_errors": board_err[0], "gateway_connects": gw.connects,
            "tracker_live_state_end": len(tracker.state.calls),
        }
        print("SOAK " + json.dumps(summary), flush=True)
        return 0

    try:
        return runtime.run(main)
    finally:
        db.close()


# ============================================================================ store: a month of calls
def store_month(args) -> int:
    from ami_ingest import UID, UID_INDEX, template

    from callcenter.ami.codec import Message, Parser
    from callcenter.queuecalls import stats, store
    from callcenter.queuecalls.reducer import Finished, TrackerState, reduce
    from callcenter.store import Database, migrate
    from callcenter.web import data
    from callcenter.web.live import day_bounds

    tmp = Path(tempfile.mkdtemp(prefix="soak-store-"))
    db = Database(f"sqlite:///{tmp / 'month.sqlite'}")
    migrate.upgrade(db.engine)
    keep = {"QueueCallerJoin", "AgentCalled", "QueueCallerLeave", "AgentConnect", "AgentComplete",
            "Hangup", "HangupRequest", "SoftHangupRequest"}
    tpl = []
    for raw in template():
        m = Parser().feed(raw)[0]
        if m.event in keep:
            tpl.append([(k, v.encode()) for k, v in m.headers])
    per_call, in_flight = len(tpl), 50
    step = args.days * 86400 / (args.calls / in_flight * per_call)  # spreads the calls over the month
    st = TrackerState()
    buffer, write_lat, rows = [], [], []
    t = START
    t0 = time.perf_counter()
    print(f"{'calls':>9} {'sim day':>10} {'rss MB':>7} {'write p50/p99 ms':>17} {'board query ms':>14} "
          f"{'rows/day':>10} {'live':>5}", flush=True)

    def flush():
        w0 = time.perf_counter()
        db.call(store.write_calls, buffer, 30.0, "default")
        write_lat.append(time.perf_counter() - w0)
        buffer.clear()

    i = 0
    while i < args.calls:
        n = min(in_flight, args.calls - i)
        batch = [[Message([(k, UID.sub(lambda m, j=j: b"1800000000.%d" % (4 * j + UID_INDEX[m.group(1)]), v)
                                    .decode()) for k, v in hs]) for hs in tpl] for j in range(i, i + n)]
        for k in range(per_call):
            t += step
            for evs in batch:
                _, facts = reduce(st, evs[k], t)
                buffer.extend(f.record for f in facts if isinstance(f, Finished))
            if len(buffer) >= 500:
                flush()
        i += n
        if i % args.every < in_flight or i >= args.calls:
            if buffer:
                flush()
            start, _ = day_bounds(t, TZ)  # the last complete day: the wallboard at its busiest
            start, end = start - dt.timedelta(days=1), start
            q0 = time.perf_counter()
            today = db.call(data.queue_calls, start, end)
            stats.summarize(today, 30.0, 5.0)
            board = time.perf_counter() - q0
            row = {"calls": i, "sim_day": dt.datetime.fromtimestamp(t, TZ).strftime("%m-%d %H:%M"),
                   "rss_mb": round(rss_mb(), 1), "write_p50_ms": pct(write_lat, 50), "write_p99_ms": pct(write_lat, 99),
                   "board_query_ms": board, "rows_today": len(today), "live": len(st.calls)}
            rows.append(row)
            print(f"{i:>9} {row['sim_day']:>10} {row['rss_mb']:>7} {ms(row['write_p50_ms']):>8}/"
                  f"{ms(row['write_p99_ms']):<8} {board * 1000:>14.1f} {len(today):>10} {len(st.calls):>5}",
                  flush=True)
            write_lat.clear()
    stored = db.call(lambda s: s.execute(__import__("sqlalchemy").text("select count(*) from queue_calls")).scalar())
    first = rows[min(1, len(rows) - 1)]
    summary = {"mode": "store", "calls": args.calls, "days": args.days, "stored_rows": stored,
               "seconds": round(time.perf_counter() - t0), "rss_after_first_window_mb": first["rss_mb"],
               "rss_end_mb": rows[-1]["rss_mb"], "rss_growth_mb": round(rows[-1]["rss_mb"] - first["rss_mb"], 1),
               "write_p99_ms_first": round((first["write_p99_ms"] or 0) * 1000, 1),
               "write_p99_ms_last": round((rows[-1]["write_p99_ms"] or 0) * 1000, 1),
               "board_query_ms_first": round(first["board_query_ms"] * 1000, 1),
               "board_query_ms_last": round(rows[-1]["board_query_ms"] * 1000, 1),
               "board_query_ms_max": round(max(r["board_query_ms"] for r in rows) * 1000, 1),
               "db_mb": round((tmp / "month.sqlite").stat().st_size / 2**20)}
    print("SOAK " + json.dumps(summary), flush=True)
    db.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("tcp")
    p.add_argument("--seconds", type=float, default=600, help="real seconds to run (bounded)")
    p.add_argument("--window", type=float, default=30, help="real seconds per report line")
    p.add_argument("--scale", type=float, default=60)
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--peak-rate", type=float, default=0.8, help="calls per simulated second at the peak hour")
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("sim-child")
    for a, ty in (("--real0", float), ("--sim0", float), ("--scale", float), ("--agents", int),
                  ("--peak-rate", float), ("--seed", int)):
        p.add_argument(a, type=ty, required=True)
    p = sub.add_parser("store")
    p.add_argument("--calls", type=int, default=1_000_000)
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--every", type=int, default=50_000)
    args = ap.parse_args()
    return {"tcp": tcp, "sim-child": sim_child, "store": store_month}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
