"""Reports benchmark: answer-time figures over 1,000,000 stored queue calls, against SQL anchors.

Rows measured (each a ratio against its anchor in the same round; rounds interleaved):

1. ``callcenter report answer-times`` (table output: summary, per queue, agent, hour,
   day) in-process (``queuecalls.cli.load_figures``), against the **one-SQL-scan anchor**:
   the summary's counters in one aggregate SELECT over the period plus its p90 by SQL
   (PostgreSQL ``percentile_disc`` in the same SELECT; SQLite ``ORDER BY wait LIMIT 1
   OFFSET k``); and the same command as its own process (``cli_process``, ``cli_ratio``:
   start-up, imports and connection included) with its peak RSS (``cli_rss_mb``, its own
   ``VmHWM``).
2. ``/api/reports/service-level-hourly``: the real ``WebApp``'s handler on an asyncio loop
   (no HTTP: the figures and their JSON, as the server awaits them),
   against **one GROUP BY local hour** (counters only) in the same round, in alternating
   order; and the longest the event loop was kept waiting meanwhile (a 5 ms ticker on the
   loop), next to the same while the anchor runs on a thread (the shared machine's own lag).
3. ``/reports`` (all reports, the abandoned list paginated), its handler likewise: after the
   web made today's staffing plan at start (``plan_at_start``: what a service started a
   moment ago has done), the first view (``page``), another plan day (``page_again``) and a
   year ending 3 days earlier, whose plan is made for it (``page_new_plan``); each with the
   loop's longest wait (``_blocked_ms``) and the longest garbage collection meanwhile
   (``_gc_ms``, ``_gc2``: full collections).

The reports read the queue-call rollups (``queuecalls/rollups.py``), kept at write time; the
bench loads the calls in bulk, then rebuilds the rollups once (``callcenter report
rebuild-rollups``'s work; its time is printed as its own row, ``rebuild_s``), and times the
reports against anchors that scan the calls as before.

The 1M calls (365 days, 8 queues, 80 agents) are generated once into a cached SQLite file
under /tmp (not committed); ``--pg`` copies them into a throw-away PostgreSQL database.

    nice .venv/bin/python bench/reports_sql.py [--rows 1000000] [--rounds 3] [--pg-url postgresql://postgres@127.0.0.1/test]
    nice .venv/bin/python bench/reports_sql.py --page-only --breakdown   # row 3 alone, and each part's time
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from callcenter.queuecalls import cli as qcli  # noqa: E402
from callcenter.store import Database, migrate  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
START = dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)
QUEUES = [f"q{i}" for i in range(8)]
AGENTS = [f"PJSIP/{1000 + i}" for i in range(80)]
OUTCOMES = ["answered"] * 80 + ["transferred"] * 3 + ["abandoned"] * 10 + ["timeout"] * 3 + ["redirected"] * 2 \
    + ["unknown"] * 2
COLS = ("uniqueid, linkedid, queue, leg, caller_number, caller_name, entered_at, answered_at, ended_at, "
        "wait_seconds, agent, agent_name, talk_seconds, outcome, within_target, position, ivr_session_id, gap, source")
KNOWN = "('answered','transferred','abandoned','timeout','redirected')"


def _rows(n: int):
    rnd = random.Random(19)
    span = 365 * 86400
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    for i in range(n):
        t = START + dt.timedelta(seconds=rnd.random() * span)
        o = rnd.choice(OUTCOMES)
        w = None if rnd.random() < 0.01 else round(rnd.expovariate(1 / 25), 3)
        ans = o in ("answered", "transferred")
        ag = rnd.choice(AGENTS) if ans else ""
        a = (t + dt.timedelta(seconds=w or 0)).strftime(fmt) if ans else None
        yield (f"u{i}", f"u{i}", rnd.choice(QUEUES), 1, f"+86138{i:08d}", "", t.strftime(fmt), a, t.strftime(fmt),
               w, ag, ag[-4:], round(rnd.expovariate(1 / 180), 1) if ans else None, o,
               (w is not None and w <= 30) if ans else None, 1, None, o == "unknown" or rnd.random() < 0.005, "ami")


def rebuild(url: str) -> float:
    """Seconds to recount every rollup (one transaction)."""
    from callcenter.queuecalls import rollups

    db = Database(url)
    try:
        t = time.perf_counter()
        db.call(rollups.rebuild, rollups.Settings(30.0, 5.0))
        return time.perf_counter() - t
    finally:
        db.close()


def cached_sqlite(n: int) -> Path:
    """The calls in a SQLite file at this code's schema head (named by it, so a run of other code
    never migrates the file under another's feet).  Loaded with the triggers on; the bench's
    rebuild then clears their marks."""
    head = "_".join(sorted(migrate.heads()))
    path = Path(tempfile.gettempdir()) / f"cc_bench_reports_{n}_{head}.sqlite"
    if path.exists():
        return path
    tmp = path.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    db = Database(f"sqlite:///{tmp}")
    migrate.upgrade(db.engine)
    db.close()
    c = sqlite3.connect(tmp)
    c.executemany(f"INSERT INTO queue_calls ({COLS}) VALUES ({', '.join('?' * 19)})", _rows(n))
    c.commit()
    c.execute("ANALYZE")
    c.commit()
    c.close()
    tmp.rename(path)
    return path


def copy_to_pg(src: Path, admin_url: str) -> str:
    import psycopg

    name = f"cc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    migrate.upgrade(db.engine)
    db.close()
    lite = sqlite3.connect(src)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        # a bulk load: the rollups are rebuilt after it (timed), not marked call by call
        cur.execute("ALTER TABLE queue_calls DISABLE TRIGGER queue_calls_rollup")
        cur.execute("ALTER TABLE queue_calls DISABLE TRIGGER queue_calls_group")
        with cur.copy(f"COPY queue_calls ({COLS}) FROM STDIN") as cp:
            for r in lite.execute(f"SELECT {COLS} FROM queue_calls"):
                r = list(r)
                for k in (6, 7, 8):
                    if r[k] is not None:
                        r[k] = r[k] + "+00"
                r[14] = None if r[14] is None else bool(r[14])
                r[17] = bool(r[17])
                cp.write_row(r)
        cur.execute("ALTER TABLE queue_calls ENABLE TRIGGER queue_calls_rollup")
        cur.execute("ALTER TABLE queue_calls ENABLE TRIGGER queue_calls_group")
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE queue_calls")
    return url


def drop_pg(admin_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def anchor_scan(db: Database, since: dt.datetime, until: dt.datetime) -> tuple:
    """The summary's counters in one SELECT, and its p90 by SQL."""
    p = {"a": since.astimezone(dt.timezone.utc), "b": until.astimezone(dt.timezone.utc)}
    if db.dialect == "sqlite":
        p = {k: v.strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in p.items()}
    counters = f"""count(*), sum(case when outcome in ('answered','transferred') then 1 else 0 end),
      sum(case when outcome = 'abandoned' then 1 else 0 end),
      sum(case when outcome = 'abandoned' and wait_seconds < 5 then 1 else 0 end),
      sum(case when outcome = 'timeout' then 1 else 0 end), sum(case when outcome = 'redirected' then 1 else 0 end),
      sum(case when outcome in ('answered','transferred') and wait_seconds <= 30 then 1 else 0 end),
      sum(case when outcome in ('abandoned','timeout','redirected') and wait_seconds <= 30 then 1 else 0 end),
      sum(case when gap then 1 else 0 end),
      sum(case when outcome in ('answered','transferred') then coalesce(wait_seconds, 0) else 0 end),
      max(case when outcome in {KNOWN} then wait_seconds end),
      count(case when outcome in {KNOWN} then wait_seconds end)"""
    where = "entered_at >= :a and entered_at < :b"
    with db.session() as s:
        if db.dialect == "postgresql":
            return tuple(s.execute(text(
                f"select {counters}, percentile_disc(0.9) within group (order by wait_seconds) "
                f"filter (where outcome in {KNOWN} and wait_seconds is not null) from queue_calls where {where}"),
                p).one())
        row = tuple(s.execute(text(f"select {counters} from queue_calls where {where}"), p).one())
        k = max(1, (9 * row[-1] + 9) // 10)
        p90 = s.execute(text(f"select wait_seconds from queue_calls where {where} and outcome in {KNOWN} "
                             f"and wait_seconds is not null order by wait_seconds limit 1 offset :k"),
                        {**p, "k": k - 1}).scalar()
        return row + (p90,)


def anchor_hourly(db: Database, since: dt.datetime, until: dt.datetime) -> list:
    """One GROUP BY local hour with the service-level counters (no percentile)."""
    p = {"a": since.astimezone(dt.timezone.utc), "b": until.astimezone(dt.timezone.utc)}
    if db.dialect == "sqlite":
        p = {k: v.strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in p.items()}
        hour = "cast(substr(datetime(entered_at, '+28800 seconds'), 12, 2) as integer)"
    else:
        hour = "extract(hour from entered_at at time zone 'Asia/Shanghai')"
    sql = f"""select {hour} h, sum(case when outcome in ('answered','transferred') then 1 else 0 end),
      sum(case when outcome = 'abandoned' and wait_seconds < 5 then 1 else 0 end),
      sum(case when outcome in {KNOWN} then 1 else 0 end),
      sum(case when outcome in ('answered','transferred') and wait_seconds <= 30 then 1 else 0 end)
      from queue_calls where entered_at >= :a and entered_at < :b group by h"""
    with db.session() as s:
        return list(s.execute(text(sql), p))


def lag_probe(db: Database, since: dt.datetime, until: dt.datetime) -> int:
    """A count over the period's index: the database works, Python waits (GIL released)."""
    p = {"a": since.astimezone(dt.timezone.utc), "b": until.astimezone(dt.timezone.utc)}
    if db.dialect == "sqlite":
        p = {k: v.strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in p.items()}
    with db.session() as s:
        return s.execute(text("select count(*) from queue_calls where direction = 'inbound' "
                              "and entered_at >= :a and entered_at < :b"), p).scalar()


def timed(fn, *a):
    t = time.perf_counter()
    r = fn(*a)
    return time.perf_counter() - t, r


def cli_figures(db: Database, since, until):
    return db.call(qcli.load_figures, since, until, None, TZ, 30.0, 5.0)


def cli_peak_rss(url: str, since: str, until: str) -> tuple[float, float]:
    """(seconds, peak RSS MB) of ``callcenter report answer-times`` as its own process, started
    as the ``callcenter`` script starts it (its imports and its connection count).

    The peak is the process's own ``VmHWM`` (high-water mark of its address space since exec),
    read by the process as it ends.  Not ``getrusage``: Linux carries ``ru_maxrss`` across
    fork and exec, so a child of this bench (hundreds of MB after the web rounds) would report
    the bench's size at the fork, not its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCENTER_DATABASE_URL": url,
           "CALLCENTER_SERVICE_DATA_DIR": tempfile.mkdtemp()}
    env.pop("CALLCENTER_CONFIG", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: the modules' bytecode cached
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", (
        "import sys\nfrom callcenter.cli import main\n"
        f"sys.argv = ['callcenter', 'report', 'answer-times', '--since', {since!r}, '--until', {until!r}]\n"
        "rc = main()\n"
        "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
        "print('VmHWM', *hwm, file=sys.stderr)\nsys.exit(rc)")],
        env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"callcenter report answer-times failed: {p.stderr[-2000:]}")
    last = p.stderr.strip().splitlines()[-1].split()
    if last[0] != "VmHWM":
        raise RuntimeError(f"callcenter report answer-times printed no peak: {p.stderr[-2000:]}")
    return took, int(last[1]) / 1024


class _Clock:
    """A fixed now (the day after the period); timers on the running asyncio loop."""

    def __init__(self, t: float):
        self.t = t

    def seconds(self) -> float:
        return self.t

    def callLater(self, delay: float, fn, *a, **kw):
        return _Timer(asyncio.get_running_loop().call_later(delay, lambda: fn(*a, **kw)))


class _Timer:
    def __init__(self, handle):
        self.handle = handle

    def active(self) -> bool:
        return not self.handle.cancelled()

    def cancel(self) -> None:
        self.handle.cancel()


async def web_round(db: Database, start: dt.date, end: dt.date, since, until, flip: bool,
                    page_only: bool = False) -> dict:
    """The hourly API and the /reports page handlers on an asyncio loop, as the web app runs them;
    a 5 ms ticker on the loop records the longest it was kept waiting."""
    from twisted.internet import reactor

    from callcenter.config import load_config
    from callcenter.web import views_reports
    from callcenter.web.auth import CurrentUser
    from callcenter.web.http import Req
    from callcenter.web.server import WebApp
    from tests import support
    from tests.support.web import FakeAmi, FakeQueueCalls

    config = load_config(None, env={"CALLCENTER_DATABASE_URL": db.url})
    clock = _Clock(until.timestamp())
    app = WebApp(config, db, clock, ami=FakeAmi(clock), live=FakeQueueCalls(),
                 domain=support.domain(config, clock=clock), reactor=reactor)
    app.open()
    from callcenter import heap

    heap.freeze_long_lived()  # as the product's start-up does (app.Assembly.start)
    user = CurrentUser(1, "sup", "Sup", "supervisor", "", "en", 1, "csrf")
    q = {"from": start.isoformat(), "to": end.isoformat()}
    out: dict[str, float] = {}
    worst = [0.0]
    stop = asyncio.Event()
    # the interpreter's collections meanwhile (a full one stops every thread): the longest per step
    import gc

    collecting = {"at": 0.0, "gen": 0, "longest": 0.0, "gen2": 0}

    def on_gc(phase, info):
        if phase == "start":
            collecting["at"], collecting["gen"] = time.perf_counter(), info["generation"]
        else:
            collecting["longest"] = max(collecting["longest"], time.perf_counter() - collecting["at"])
            collecting["gen2"] += collecting["gen"] == 2

    gc.callbacks.append(on_gc)

    async def ticker():
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = loop.time()
            worst[0] = max(worst[0], now - last - 0.005)
            last = now

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()

    async def hourly():
        t = time.perf_counter()
        r = await views_reports.report_api(app, Req("GET", "/api/reports/service-level-hourly", None,
                                                    {"name": "service-level-hourly"}, q, {}, user, "en", "127.0.0.1"))
        assert r.status == 200, r.status
        out["hourly"] = time.perf_counter() - t

    async def anchor():
        # the anchor runs on a thread too, so the ticker's lateness meanwhile is the machine's own
        out["hourly_anchor"], _ = await loop.run_in_executor(None, timed, anchor_hourly, db, since, until)

    # the service started a moment ago: it makes today's staffing plan at start, off the loop
    # (staffing_plan_view.keep_plans); the steps below find it made, so neither the hourly API nor
    # its anchor shares the machine with that start-up work (it did, unevenly by their order)
    t = time.perf_counter()
    worst[0] = 0.0
    while app.plans.making or not len(app.plans):
        await asyncio.sleep(0.01)
    out["plan_at_start"] = time.perf_counter() - t
    out["plan_at_start_blocked_ms"] = worst[0] * 1000
    for step in () if page_only else ((hourly, anchor) if flip else (anchor, hourly)):
        worst[0] = 0.0
        await step()
        out[f"{step.__name__}_blocked_ms"] = worst[0] * 1000
    worst[0] = 0.0
    collecting.update(longest=0.0, gen2=0)
    t = time.perf_counter()
    page = await views_reports.reports_page(app, Req("GET", "/reports", None, {}, q, {}, user, "en", "127.0.0.1"))
    out["page"] = time.perf_counter() - t
    out["page_blocked_ms"] = worst[0] * 1000
    out["page_gc_ms"], out["page_gc2"] = collecting["longest"] * 1000, collecting["gen2"]
    out["page_kb"] = len(page.body) / 1024
    # a second view (another plan day): the staffing plan made for the first is shown again
    worst[0] = 0.0
    collecting.update(longest=0.0, gen2=0)
    t = time.perf_counter()
    again = await views_reports.reports_page(app, Req("GET", "/reports", None, {},
                                                      {**q, "plan_day": (end + dt.timedelta(days=3)).isoformat()},
                                                      {}, user, "en", "127.0.0.1"))
    out["page_again"] = time.perf_counter() - t
    out["page_again_blocked_ms"] = worst[0] * 1000
    out["page_again_gc_ms"], out["page_again_gc2"] = collecting["longest"] * 1000, collecting["gen2"]
    assert again.status == 200, again.status
    if page_only:
        # a year ending 3 days earlier: a staffing plan nobody made yet, made for this view
        worst[0] = 0.0
        collecting.update(longest=0.0, gen2=0)
        t = time.perf_counter()
        cold = await views_reports.reports_page(app, Req(
            "GET", "/reports", None, {}, {"from": (start - dt.timedelta(days=3)).isoformat(),
                                          "to": (end - dt.timedelta(days=3)).isoformat()}, {}, user, "en", "127.0.0.1"))
        out["page_new_plan"] = time.perf_counter() - t
        out["page_new_plan_blocked_ms"] = worst[0] * 1000
        out["page_new_plan_gc_ms"], out["page_new_plan_gc2"] = collecting["longest"] * 1000, collecting["gen2"]
        assert cold.status == 200, cold.status
    # the shared machine's own lag: the same ticker while a thread only waits on the database (no
    # GIL held) for a few seconds; the page's lateness above this is the page's
    worst[0] = 0.0
    t = time.perf_counter()
    while time.perf_counter() - t < min(3.0, out["page"]):
        await loop.run_in_executor(None, timed, lag_probe, db, since, until)
    out["machine_lag_ms"] = worst[0] * 1000
    stop.set()
    await tick
    await app.close()
    gc.callbacks.remove(on_gc)
    assert page.status == 200, page.status
    return out


def breakdown(db: Database, start: dt.date, end: dt.date, until: dt.datetime) -> dict[str, float]:
    """Each part of the /reports page alone, in this thread (seconds): where its time goes."""
    from callcenter import reporting
    from callcenter.complaints.workdays import WorkCalendar
    from callcenter.queuecalls import agent_queries as aq
    from callcenter.queuecalls import report_queries as rq
    from callcenter.queuecalls import satisfaction
    from callcenter.staffing_plan import BACKTEST_WEEKS, HISTORY_WEEKS, plan
    from callcenter.queuecalls.history import half_hours
    from callcenter.web import data
    from callcenter.web.views_reports import known_queues

    st = reporting.ReportSettings(tz=TZ, target=30.0, short_abandon=5.0, goal=0.8, window_days=30.0,
                                  wrapup=lambda q: 5.0)
    t0, t1 = reporting.bounds(start, end, TZ)
    now = until.astimezone(dt.timezone.utc)
    src = lambda: rq.period_calls(t0, t1)  # noqa: E731
    first = end + dt.timedelta(days=1)
    days = [first + dt.timedelta(days=i) for i in range(7)]
    out: dict[str, float] = {}

    def part(name, fn):
        out[name], r = timed(db.call, fn)
        return r

    # the anchor: the cheapest read of the period's calls (a count over the index), so each part
    # can be read as a multiple of it under whatever load the machine has
    part("anchor_count", lambda s: s.execute(text(
        "select count(*) from queue_calls where direction = 'inbound' and entered_at >= :a and entered_at < :b"),
        {"a": rq.utc(t0) if db.dialect != "sqlite" else t0.strftime("%Y-%m-%d %H:%M:%S.%f"),
         "b": rq.utc(t1) if db.dialect != "sqlite" else t1.strftime("%Y-%m-%d %H:%M:%S.%f")}).scalar())
    # the period-figure reports (answer-times, service-level-daily, staffing; intervals): to be rollups
    part("period_figures", lambda s: reporting.compute(s, ("answer-times", "service-level-daily", "staffing"),
                                                       start, end, settings=st, now=now))
    part("intervals", lambda s: reporting.compute(s, ("intervals",), start, end, settings=st, now=now))
    groups = part("call_groups", lambda s: aq.period_groups(s, t0, t1, target=30.0, short_abandon=5.0))
    part("agents_rest", lambda s: satisfaction.with_agent_columns(aq.agent_performance(
        s, t0, t1, now, target=30.0, wrapup=st.wrapup, groups=groups), groups))
    part("satisfaction", lambda s: satisfaction.queue_rows(groups))
    part("outcomes", lambda s: aq.outcome_counts(s, t0, t1))
    part("abandoned", lambda s: rq.abandoned_page(s, src(), offset=0, limit=100))
    part("campaigns", lambda s: data.campaign_progress(s, now.timestamp(), 30.0))
    part("complaints", lambda s: data.complaint_deadlines(s, now))
    part("known_queues+users", lambda s: (known_queues(s), data.agent_users(s)))
    hist = part("plan_history", lambda s: half_hours(
        s, dt.datetime.combine(first - dt.timedelta(weeks=HISTORY_WEEKS + BACKTEST_WEEKS), dt.time(), TZ),
        dt.datetime.combine(first, dt.time(), TZ), TZ, short_abandon=5.0))
    cal = WorkCalendar("CN", TZ)
    out["plan_forecast"], _ = timed(lambda: plan(hist, cal, end=first, days=days, target=30.0, goal=0.8))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg-url", default=None, help="also run once on PostgreSQL (admin URL)")
    ap.add_argument("--pg-rounds", type=int, default=1)
    ap.add_argument("--no-web", action="store_true")
    ap.add_argument("--page-only", action="store_true",
                    help="row 3 alone: the /reports page (no CLI, anchors or hourly API)")
    ap.add_argument("--breakdown", action="store_true", help="with --page-only: also time each part of the page")
    args = ap.parse_args()
    path = cached_sqlite(args.rows)
    start, end = dt.date(2025, 12, 1), dt.date(2026, 11, 30)
    since = dt.datetime.combine(start, dt.time(), TZ)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), TZ)
    targets = [("sqlite", f"sqlite:///{path}", args.rounds)] if args.rounds else []
    pg_url = None
    if args.pg_url:
        pg_url = copy_to_pg(path, args.pg_url)
        targets.append(("postgresql", pg_url, args.pg_rounds))
    try:
        for name, url, rounds in targets:
            res: dict[str, list[float]] = {"rebuild_s": [rebuild(url)]}
            db = Database(url)
            for r in range(rounds):
                if args.page_only:
                    w = asyncio.run(web_round(db, start, end, since, until, bool(r % 2), page_only=True))
                    if args.breakdown:
                        w.update(breakdown(db, start, end, until))
                    for k, v in w.items():
                        res.setdefault(k, []).append(v)
                    print(f"{name} round {r + 1}: " + ", ".join(f"{k}={v[-1]:.3f}" for k, v in res.items())
                          + f"  (load {open('/proc/loadavg').read().split()[0]})", flush=True)
                    continue
                order = [("anchor", anchor_scan), ("report", cli_figures)]
                if r % 2:
                    order.reverse()
                for label, fn in order:
                    took, _ = timed(fn, db, since, until)
                    res.setdefault(label, []).append(took)
                res.setdefault("ratio", []).append(res["report"][-1] / res["anchor"][-1])
                if not args.no_web:
                    w = asyncio.run(web_round(db, start, end, since, until, bool(r % 2)))
                    for k, v in w.items():
                        res.setdefault(k, []).append(v)
                    res.setdefault("hourly_ratio", []).append(w["hourly"] / w["hourly_anchor"])
                took, rss = cli_peak_rss(url, start.isoformat(), end.isoformat())
                res.setdefault("cli_process", []).append(took)
                res.setdefault("cli_ratio", []).append(took / res["anchor"][-1])
                res.setdefault("cli_rss_mb", []).append(rss)
                print(f"{name} round {r + 1}: " + ", ".join(f"{k}={v[-1]:.3f}" for k, v in res.items()), flush=True)
            print(f"\n{name}, {args.rows:,} calls, {rounds} round(s): median [min..max]")
            for k, v in res.items():
                print(f"  {k:16s} {statistics.median(v):8.3f}  [{min(v):.3f} .. {max(v):.3f}]")
            db.close()
    finally:
        if pg_url:
            drop_pg(args.pg_url, pg_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
