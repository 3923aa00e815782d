"""Inbound hotline traffic with two progressive campaigns on one queue, through the simulator.

    .venv/bin/python bench/blended.py [--minutes 60] [--scale 20] [--agents 4] [--rate 0.8]
                                      [--contacts 40] [--seed 1] [--no-dialer] [--keep-free N]

The simulated PBX (real AMI TCP) carries Poisson inbound callers (``--rate`` per minute,
IVR digit 1 -> ``consultation``, patience ~3 min, talk 2-4 min) to ``--agents`` agents
(answer after 1 s, wrap-up 10 s) while two progressive campaigns (``no-shows`` and
``revisits``, ``--contacts`` patients each, ring 4-12 s, 80 % answer) dial into the same
queue through the real ``Dialer`` (agent reservation) and ``QueueCallsTracker``.  At the
end it prints the inbound figures (``queuecalls.stats.summarize`` over the inbound
queue calls: what the answer-time report and the wallboard show), the outbound figures
per campaign (``dialer.outbound``: answered, connected, time to connect, abandoned =
no agent within 2 s), the agent time held by reservations, and whether every
reservation was released.  ``--no-dialer`` runs the same inbound traffic alone (the
baseline for the inbound service level).  One JSON line ``BLENDED {...}`` at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TZ = ZoneInfo("Asia/Shanghai")
START = dt.datetime(2026, 11, 24, 10, 0, tzinfo=TZ).timestamp()  # a Tuesday, inside the window


async def run(args) -> dict:
    from sqlalchemy import select
    from twisted.internet import reactor

    from callcenter.ami.gateway import AmiGateway
    from callcenter.clock import ScaledClock
    from callcenter.queuecalls import stats
    from callcenter.queuecalls import report_queries as rq
    from callcenter.queuecalls.cli import CALL_FIELDS
    from callcenter.queuecalls.models import QueueCall
    from callcenter.queuecalls.tracker import QueueCallsTracker
    from callcenter.simulator import SimConfig, SimulatedPBX
    from callcenter.store import Database, migrate
    from dialer import outbound
    from dialer.campaigns import contact_row, create_campaign, insert_contacts
    from dialer.compliance import Rules
    from dialer.engine import Dialer, DialSettings
    from dialer.models import AgentReservation, Attempt
    from dialer.pacing import QueueCallsAgents
    from dialer.timeutil import to_dt

    rnd = random.Random(args.seed)             # patients
    arrivals = random.Random(args.seed + 1000)  # inbound callers: the same with and without the dialer
    tmp = tempfile.mkdtemp(prefix="blended-")
    db = Database(f"sqlite:///{tmp}/blended.db")
    migrate.upgrade(db.engine)
    clock = ScaledClock(reactor, args.scale, start=START)
    agents = [(str(1001 + i), f"Agent {1001 + i}") for i in range(args.agents)]
    pbx = SimulatedPBX(clock, seed=args.seed, spool_dir=tmp, config=SimConfig(queues={"consultation": agents}))
    await pbx.start()
    for a, _ in agents:
        pbx.set_agent(a, answer_delay=1.0, talk_time=180, talk_sd=40, wrapup=10)
    patients = {}
    if not args.no_dialer:
        def seed(s):
            for name, kind, prefix in (("no-shows", "no_show", "1380013"), ("revisits", "revisit", "1390013")):
                c = create_campaign(s, name=name, kind=kind, mode="progressive", queue="consultation",
                                    state="running")
                rows = []
                for i in range(args.contacts):
                    n = f"{prefix}{i:04d}"
                    patients[n] = c.id
                    rows.append(contact_row(c.id, f"{name}{i}", phone=f"+86{n}", name=f"P{i}", reason=kind,
                                            ref_type="t", ref_id=str(i), due_after=to_dt(START - 60),
                                            due_before=None, patient_id=None, now=to_dt(START - 60)))
                insert_contacts(s, rows)
        db.call(seed)
        for n in patients:
            pbx.set_patient(n, "answer" if rnd.random() < 0.8 else "noanswer", ring=rnd.uniform(4, 12),
                            hold=600, delay=1)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    tracker = QueueCallsTracker(db, clock, gateway=gw)

    d = Dialer(db=db, clock=clock, gateway=gw, rules=Rules(), instance="bench", agents=QueueCallsAgents(tracker),
               dial=DialSettings(channel_template="Local/{number}@sim-patient", max_rate=2, connect_timeout=30,
                                 originate_timeout=20, keep_free_agents=args.keep_free))
    reserved_time = [0.0]
    await tracker.start()
    await gw.start()
    await gw.wait_connected(10)
    while len(QueueCallsAgents(tracker).free_agents("consultation").free) < args.agents:
        await asyncio.sleep(0.01)
    if not args.no_dialer:
        await d.start()
    end = START + args.minutes * 60
    nxt = START
    i = 0
    held_since: dict[int, float] = {}
    while clock.seconds() < end:
        now = clock.seconds()
        while nxt <= now:
            pbx.inbound_call(f"1370{i:07d}", f"Caller {i}", context="hotline-plain", digits="1",
                             digit_delay=0.5, hold=arrivals.uniform(120, 240) + 60)
            i += 1
            nxt += arrivals.expovariate(args.rate / 60.0)
        for aid in list(d.reserved):
            held_since.setdefault(aid, now)
        for aid in [a for a in held_since if a not in d.reserved]:
            reserved_time[0] += now - held_since.pop(aid)
        await asyncio.sleep(0.02)
    if not args.no_dialer:   # no new calls; the calls in progress run to their end
        from dialer.models import Campaign

        def pause(s):
            for c in s.scalars(select(Campaign)):
                c.state = "paused"
        db.call(pause)
    drain_end = clock.seconds() + 20 * 60
    while clock.seconds() < drain_end and not (all(c.done for c in pbx.calls) and not d.reserved
                                               and not d.tracker.live):
        await asyncio.sleep(0.05)
    for aid, at in held_since.items():
        reserved_time[0] += clock.seconds() - at
    if not args.no_dialer:
        await d.idle()
        await d.stop()
    await asyncio.sleep(0.5)
    await tracker.flush()
    await gw.stop()
    await tracker.stop()
    paused_left = [m.interface for m in pbx.queues["consultation"].members if m.paused]
    await pbx.stop()
    with db.session() as s:
        inbound = [dict(r._mapping) for r in rq.iter_calls(s, rq.period_calls(None, None), CALL_FIELDS)]
        outbound_calls = [r for r in s.scalars(select(QueueCall).where(QueueCall.direction == "outbound"))]
        figs = outbound.campaign_figures(s, now=clock.seconds())
        attempts = list(s.scalars(select(Attempt)))
        left = len(list(s.scalars(select(AgentReservation))))
    summary = stats.summarize(inbound, 30.0, 5.0)
    db.close()
    return {
        "minutes": args.minutes, "scale": args.scale, "agents": args.agents, "rate_per_min": args.rate,
        "dialer": not args.no_dialer, "keep_free_agents": args.keep_free, "inbound_calls": len(inbound),
        "inbound": {k: summary[k] for k in ("offered", "answered", "abandoned", "service_level", "asa_seconds",
                                            "p90_wait_seconds", "abandon_rate")},
        "dialer_calls_in_inbound": sum(1 for r in inbound if r["caller_number"][3:] in patients),
        "outbound_queue_calls": len(outbound_calls),
        "attempts": len(attempts),
        "outbound": {f["campaign"]: f["total"] for f in figs},
        "reserved_agent_seconds": round(reserved_time[0], 1),
        "reservations_left": left, "members_left_paused": paused_left,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--scale", type=float, default=20)
    p.add_argument("--agents", type=int, default=4)
    p.add_argument("--rate", type=float, default=0.8, help="inbound callers per minute")
    p.add_argument("--contacts", type=int, default=40, help="patients per campaign")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-dialer", action="store_true")
    p.add_argument("--keep-free", type=int, default=0, help="[dialer] keep_free_agents")
    args = p.parse_args()
    from callcenter import runtime

    out: dict = {}

    async def body(stop) -> int:
        out.update(await run(args))
        return 0

    runtime.run(body)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    print("BLENDED " + json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
