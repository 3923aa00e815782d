"""``callcenter demo``: the simulated PBX and the whole service in one process.

A newcomer sees the system working with one command: the simulator plays a
hospital day of hotline traffic (time-scaled with ``--scale``) through the real
AMI and FastAGI sockets into the service, which answers IVR calls, accounts
answer times, records calls and serves the dashboard.  Demo users get fresh
random passwords on every start, printed once.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

from .config import Config

log = logging.getLogger("callcenter.demo")

AGENTS = {"consultation": ["1001", "1002", "1003"], "complaint": ["2001", "2002"]}


def _interface(agent_id: str) -> str:
    return f"Local/{agent_id}@sim-agent/n"


def demo_users(s, *, language: str) -> dict[str, str]:
    """Create or reset the demo logins; return {username: password}."""
    from sqlalchemy import select

    from callcenter.store.models import User, audit
    from callcenter.web.passwords import hash_password

    wanted = [("supervisor", "supervisor", "", "Demo supervisor"),
              ("admin", "admin", "", "Demo admin")]
    wanted += [(f"agent{a}", "agent", _interface(a), f"Agent {a}")
               for agents in AGENTS.values() for a in agents]
    out = {}
    for username, role, interface, name in wanted:
        password = secrets.token_urlsafe(9)
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, role=role, interface=interface, display_name=name,
                        language=language, active=True, password_hash="")
            s.add(user)
        user.password_hash = hash_password(password)
        user.active = True
        audit(s, "demo", "user_reset", "user", username)
        out[username] = password
    return out


def demo_patients(s, arrivals, *, now: float, tz: str, region: str, settings) -> int:
    """Patients (the day's callers) with a recent treatment, so screen pops have context."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from dialer.importer import import_rows

    seen: dict[str, str] = {}
    for a in arrivals:
        seen.setdefault(a.number, a.name)
    zone = ZoneInfo(tz)
    day = dt.datetime.fromtimestamp(now, zone)
    types = ["cleaning", "filling", "root_canal", "extraction", "implant", "orthodontics"]
    patients, treatments = [], []
    for i, (number, name) in enumerate(sorted(seen.items())):
        pid = f"P{i + 1:05d}"
        patients.append({"patient_id": pid, "name": name, "phone": number})
        when = day - dt.timedelta(days=1 + i % 30)
        treatments.append({"treatment_id": f"T{i + 1:05d}", "patient_id": pid,
                           "type": types[i % len(types)],
                           "treated_at": when.strftime("%Y-%m-%d %H:%M")})
    r1 = import_rows(s, "patients", patients, "demo", region=region, settings=settings)
    r2 = import_rows(s, "treatments", treatments, "demo", region=region, settings=settings)
    if r1.errors or r2.errors:
        raise RuntimeError(f"demo data rejected: {(r1.errors + r2.errors)[:3]}")
    return len(patients)


def demo_campaigns(s, *, now: float, per_campaign: int = 25) -> list[str]:
    """Two progressive campaigns on the consultation queue (no-shows, revisits) beside the
    hotline traffic, so the wallboard shows outbound figures apart from the inbound ones.
    Returns the patients' E.164 numbers (the simulator answers them)."""
    from sqlalchemy import select

    from dialer.campaigns import contact_row, create_campaign, insert_contacts
    from dialer.models import Campaign, Patient
    from dialer.timeutil import to_dt

    numbers = [p.phone for p in s.scalars(select(Patient).order_by(Patient.id).limit(2 * per_campaign))]
    for i, (name, kind) in enumerate((("demo-no-shows", "no_show"), ("demo-revisits", "revisit"))):
        if s.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
            continue
        c = create_campaign(s, name=name, kind=kind, mode="progressive", queue="consultation", state="running")
        insert_contacts(s, [contact_row(c.id, f"demo:{n}", phone=n, name="", reason=kind, ref_type="demo",
                                        ref_id=str(j), due_after=to_dt(now), due_before=None, patient_id=None,
                                        now=to_dt(now))
                            for j, n in enumerate(numbers[i * per_campaign:(i + 1) * per_campaign])])
    return numbers


START_HOUR = 8
# Callers' keys through the hotline flow: language (1 zh, 2 en), then the main menu
# (1 consultation, 3 complaint: 1 complaint / 9 urgent, 4 callback, 0 operator); "111":
# consultation, and yes to the callback the IVR offers when the queue's wait is long.
HOTLINE_CHOICES = {"11": 0.45, "111": 0.1, "21": 0.1, "131": 0.15, "139": 0.03, "14": 0.05, "10": 0.04, "": 0.08}


def day_start(now: float, tz: str) -> float:
    """Today's opening (08:00, hospital time): the demo's simulated day starts there."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    local = dt.datetime.fromtimestamp(now, ZoneInfo(tz))
    return local.replace(hour=START_HOUR, minute=0, second=0, microsecond=0).timestamp()


def demo_sim():
    """The demo's simulated Asterisk: the hotline of docs/asterisk/extensions.conf
    (``Queue(${QUEUE},c)``, then the post-call rating when the agent hangs up)."""
    from .simulator import SimConfig

    return SimConfig(hotline_queue_options="c")


def demo_config(config: Config, *, ami_port: int, sim) -> Config:
    """The service's configuration against the demo's simulator (``callcenter doctor``
    passes on it: tests/doctor)."""
    data = Path(config.data_dir)
    recordings = str(data / "recordings")
    return config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": ami_port, "username": sim.username,
                "secret": sim.secret, "queue_log": str(data / "queue_log")},
        "recordings": {"directory": recordings, "spool_dir": recordings},
        "dialer": {"channel_template": "Local/{number}@sim-patient", "dial_format": "national"},
    })


def run_demo(config: Config, *, scale: float = 1.0, seed: int = 1, duration: float = 0,
             calls: float = 400) -> int:
    from . import runtime
    from .store import Database, migrate

    data = Path(config.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    db = Database(config.database_url)
    migrate.upgrade(db.engine, phone_region=config.hospital.region)  # the demo owns its embedded database
    db.close()

    async def main(stop: asyncio.Event) -> int:
        from twisted.internet import reactor

        from .clock import ScaledClock
        from .app import build
        from .simulator import DayProfile, SimulatedPBX, run_traffic

        clock = ScaledClock(reactor, scale, start=day_start(reactor.seconds(), config.hospital.timezone))
        sim = demo_sim()
        pbx = SimulatedPBX(clock, seed=seed, spool_dir=data / "spool", agi_host=config.agi.host,
                           agi_port=config.agi.port, config=sim, queue_log=data / "queue_log")
        await pbx.start(host="127.0.0.1", ami_port=0)
        cfg = demo_config(config, ami_port=pbx.ami_port, sim=sim)
        existing = {a for agents in AGENTS.values() for a in agents}
        for queue, agents in AGENTS.items():
            for a in agents:
                if a not in ("1001", "1002", "2001", "2002"):
                    pbx.add_agent(queue, a, f"Agent {a}", answer_delay=4, talk_time=150, talk_sd=60)
        for a in existing:
            pbx.set_agent(a, answer_delay=4, talk_time=150)
        profile = DayProfile(calls=calls, context="hotline", talk_mean=150, start_hour=START_HOUR,
                             choice_weights=HOTLINE_CHOICES)
        service = build(cfg, clock=clock)
        traffic = None
        try:
            logins = await service.db.run(demo_users, language=cfg.hospital.language)
            from .simulator.people import plan_day

            n = await service.db.run(demo_patients, plan_day(profile, seed), now=clock.seconds(),
                                     tz=cfg.hospital.timezone, region=cfg.hospital.region,
                                     settings=service.domain.dialer_settings)
            from callcenter.phones import dial_string

            for i, number in enumerate(await service.db.run(demo_campaigns, now=clock.seconds())):
                pbx.set_patient(dial_string(number, "national"), "noanswer" if i % 5 == 4 else "answer",
                                ring=6 + i % 7, hold=240, delay=1)
            await service.start()
            traffic = run_traffic(pbx, profile, seed=seed)
            print(f"\ncallcenter demo: simulated Asterisk on 127.0.0.1:{pbx.ami_port} (x{scale:g} time), "
                  f"{len(traffic.arrivals)} calls planned, {n} sample patients", flush=True)
            print(f"dashboard: http://{cfg.web.host}:{cfg.web.port}/", flush=True)
            print("logins (new passwords every start):", flush=True)
            for user, pw in logins.items():
                print(f"  {user:<14} {pw}", flush=True)
            print("Ctrl-C to stop.", flush=True)
            if duration > 0:
                try:
                    await asyncio.wait_for(stop.wait(), duration)
                except asyncio.TimeoutError:
                    pass
            else:
                await stop.wait()
        finally:
            if traffic is not None:
                traffic.cancel()
            await service.stop()
            service.db.close()
            await pbx.stop()
        if traffic is not None:
            print(traffic.summary(), flush=True)
        return 0

    return runtime.run(main)
