"""``callcenter demo``: the simulated PBX and the whole service in one process.

A newcomer sees the system working with one command: the simulator plays a
hospital day of hotline traffic (time-scaled, ×20 by default: a caller every few
seconds) through the real AMI and FastAGI sockets into the service, which answers IVR
calls, accounts answer times, records calls and serves the dashboard.  A few complaint
tickets and two running campaigns are seeded, and the dialer's calling window covers
the simulated day, so every page has something to show in the first minute.  Demo
users get fresh random passwords on every start, printed once as one block after the
start-up logs; a status line follows the day, and Ctrl-C prints what happened.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

from .config import Config

log = logging.getLogger("callcenter.demo")

AGENTS = {"consultation": ["1001", "1002", "1003"], "complaint": ["2001", "2002"]}
DEFAULT_SCALE = 20.0   # simulated seconds per real second: a caller every 3-4 s at the morning peak
STATUS_EVERY = 15.0    # real seconds between status lines
# Per-call INFO lines (IVR path, screen pop, recording start, agent reservation): with
# several calls a second they bury everything else; ``--verbose`` shows them.
CHATTY_LOGGERS = ("ivr_flows.server", "callcenter.web.live", "recordings.capture", "dialer.engine")


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


def demo_complaints(s, complaints, *, now: float) -> int:
    """Three complaint tickets a supervisor finds in the morning, so the deadline alerts
    move in the first minutes: an e-mail complaint from the previous working day's last
    half hour (its 1-hour acknowledgement comes due at 08:30), an online one that arrived
    at the opening (due 09:00), and a phone complaint from the previous working day being
    handled.  Once per data directory."""
    import datetime as dt

    from sqlalchemy import func, select

    from callcenter.complaints.models import ComplaintTicket

    if s.scalar(select(func.count()).select_from(ComplaintTicket).where(ComplaintTicket.created_by == "demo")):
        return 0
    cal = complaints.calendar
    day = cal.local(now).date() - dt.timedelta(days=1)
    while not cal.is_working_day(day):
        day -= dt.timedelta(days=1)
    yesterday_close = cal.closing(day).timestamp()
    tickets = [
        dict(category="fees", channel="email", received_at=yesterday_close - 30 * 60, department="收费处",
             summary="根管治疗收费与预约时告知的价格不一致", demand="核对费用并退还差额",
             patient_name="李娜", patient_phone="+8613900139002"),
        dict(category="attitude", channel="online", received_at=now, department="口腔科",
             summary="前台工作人员态度冷淡，询问种植牙费用时没有耐心解答", demand="希望得到道歉并说明费用",
             patient_name="王小明", patient_phone="+8613800138001"),
        dict(category="medical", channel="phone", received_at=cal.opening(day).timestamp() + 2 * 3600,
             department="口腔外科",
             summary="拔牙后第二天仍出血，复诊时等候时间过长", demand="安排医生尽快复查",
             patient_name="张三", patient_phone="+8613700137003"),
    ]
    for kw in tickets:
        complaints.open_ticket(s, actor="demo", severity="normal", **kw)
    return len(tickets)


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
    (``Queue(${QUEUE},c)``, then the post-call rating when the agent hangs up); its lines
    carry media all call long (``media="phones"``, the default), so calls are recorded whole."""
    from .simulator import SimConfig

    return SimConfig(hotline_queue_options="c", wrapuptime=5)  # as docs/asterisk/queues.conf


def demo_config(config: Config, *, ami_port: int, sim, scale: float = 1.0) -> Config:
    """The service's configuration against the demo's simulator (``callcenter doctor``
    passes on it: tests/doctor).

    The AMI link's timeouts run on the demo's clock, ``scale`` times faster than the wall,
    but they wait on the machine, not on simulated people: they are stretched by ``scale``
    so a busy start-up (5 s of Ping timeout are 83 ms of wall time at 60×) is not taken for
    a dead link."""
    data = Path(config.data_dir)
    recordings = str(data / "recordings")
    a = config.ami
    return config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": ami_port, "username": sim.username,
                "secret": sim.secret, "queue_log": str(data / "queue_log"),
                "action_timeout": a.action_timeout * scale, "ping_timeout": a.ping_timeout * scale,
                "ping_interval": a.ping_interval * scale},
        "recordings": {"directory": recordings, "spool_dir": recordings},
        # the simulated day starts at 08:00 (START_HOUR): the window covers it, every day
        # (a demo run on a Sunday or a public holiday still shows the dialer at work)
        "dialer": {"channel_template": "Local/{number}@sim-patient", "dial_format": "national",
                   "window_start": f"{START_HOUR:02d}:00", "window_end": "21:00", "skip_holidays": False},
    })


def demo_figures(s, *, since: float, answer_target: float, short_abandon: float) -> dict:
    """What the status line and the closing summary say: the hotline's calls since the demo
    started (the service's own definitions, ``queuecalls.stats``), the dialer's attempts and
    the complaint tickets still open."""
    import datetime as dt

    from sqlalchemy import func, select

    from callcenter.complaints.lifecycle import OPEN_STATES
    from callcenter.complaints.models import ComplaintTicket
    from callcenter.queuecalls.models import QueueCall
    from callcenter.queuecalls.stats import summarize
    from dialer.models import Attempt

    t0 = dt.datetime.fromtimestamp(since, dt.timezone.utc)
    calls = s.execute(select(QueueCall.outcome, QueueCall.wait_seconds, QueueCall.gap)
                      .where(QueueCall.direction == "inbound", QueueCall.entered_at >= t0)).mappings().all()
    summary = summarize(calls, answer_target, short_abandon)
    attempts = s.execute(select(func.count(), func.count(Attempt.connected_at))
                         .where(Attempt.started_at >= t0)).one()
    tickets = s.scalar(select(func.count()).select_from(ComplaintTicket)
                       .where(ComplaintTicket.status.in_(OPEN_STATES)))
    return {"calls": len(calls), "answered": summary["answered"], "abandoned": summary["abandoned"],
            "service_level": summary["service_level"], "dialled": attempts[0], "reached": attempts[1],
            "open_tickets": tickets}


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _pct(v) -> str:
    return "—" if v is None else f"{v * 100:.0f} %"


def status_line(f: dict, *, local_time: str, waiting: int, talking: int, target: float) -> str:
    return (f"[{local_time} simulated] hotline: {_n(f['calls'], 'call')} ended ({f['answered']} answered, "
            f"{f['abandoned']} abandoned, {_pct(f['service_level'])} within {target:g} s), "
            f"{waiting} waiting, {talking} on a call · dialer: {_n(f['dialled'], 'call')}, {f['reached']} reached "
            f"an agent · {f['open_tickets']} complaint tickets open")


def logins_block(*, url: str, logins: dict[str, str], scale: float, planned: int, patients: int,
                 tickets: int, campaigns: list[str], ami_port: int) -> str:
    """The one block a newcomer needs: where to look and how to log in."""
    roles = {"supervisor": "wallboard, complaints, campaigns, imports, reports", "admin": "everything, users"}
    rule = "=" * 72
    lines = [rule, f"callcenter demo is running: simulated Asterisk on 127.0.0.1:{ami_port}, "
             f"{scale:g}× time from {START_HOUR:02d}:00",
             f"  {planned} hotline calls planned today, {patients} sample patients, {tickets} complaint tickets, "
             f"campaigns {', '.join(campaigns)} running", "",
             f"  Open {url} and log in (new passwords on every start):"]
    for user, pw in logins.items():
        what = roles.get(user) or ("agent desk, queue " + ("consultation" if user[5:6] == "1" else "complaint"))
        lines.append(f"    {user:<12} {pw:<14} {what}")
    lines += ["", "  Ctrl-C to stop.", rule]
    return "\n".join(lines) + "\n"


def summary_text(f: dict, *, real_seconds: float, sim_from: str, sim_to: str, target: float,
                 data_dir: str) -> str:
    minutes, seconds = divmod(int(real_seconds), 60)
    return "\n".join([
        f"callcenter demo stopped after {minutes} min {seconds:02d} s (simulated {sim_from}–{sim_to}).",
        f"  hotline:    {_n(f['calls'], 'call')} ended: {f['answered']} answered, {f['abandoned']} abandoned; "
        f"{_pct(f['service_level'])} answered within {target:g} s",
        f"  dialer:     {_n(f['dialled'], 'call')} to patients, {f['reached']} reached an agent",
        f"  complaints: {_n(f['open_tickets'], 'ticket')} open",
        f"  data kept in {data_dir} (the next start continues with it)"]) + "\n"


def run_demo(config: Config, *, scale: float = DEFAULT_SCALE, seed: int = 1, duration: float = 0,
             calls: float = 400, verbose: bool = False, status_every: float = STATUS_EVERY) -> int:
    import sys
    import time

    from . import runtime
    from .store import Database, migrate

    data = Path(config.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    db = Database(config.database_url)
    migrate.upgrade(db.engine, phone_region=config.hospital.region,
                    rollup_settings=(config.hospital.answer_target_seconds, config.hospital.short_abandon_seconds))  # the demo owns its embedded database
    db.close()
    if not verbose:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)

    def say(text: str) -> None:  # one write, so log lines on the same terminal cannot split it
        sys.stdout.write(text)
        sys.stdout.flush()

    async def main(stop: asyncio.Event) -> int:
        import datetime as dt
        from zoneinfo import ZoneInfo

        from twisted.internet import reactor

        from .clock import ScaledClock
        from .app import build
        from .simulator import DayProfile, SimulatedPBX, run_traffic

        if not config.values["web"]["enabled"]:
            from .cli import UserError

            raise UserError("the demo is watched in the browser: [web] enabled must be true")
        clock = ScaledClock(reactor, scale, start=day_start(reactor.seconds(), config.hospital.timezone))
        started_sim, started_real = clock.seconds(), time.monotonic()
        zone = ZoneInfo(config.hospital.timezone)
        hhmm = lambda ts: dt.datetime.fromtimestamp(ts, zone).strftime("%H:%M")  # noqa: E731
        sim = demo_sim()
        pbx = SimulatedPBX(clock, seed=seed, spool_dir=data / "spool", agi_host=config.agi.host,
                           agi_port=config.agi.port, config=sim, queue_log=data / "queue_log")
        await pbx.start(host="127.0.0.1", ami_port=0)
        cfg = demo_config(config, ami_port=pbx.ami_port, sim=sim, scale=scale)
        hospital = cfg.hospital
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
        figures = None
        try:
            logins = await service.db.run(demo_users, language=hospital.language)
            from .simulator.people import plan_day

            arrivals = plan_day(profile, seed)
            n = await service.db.run(demo_patients, arrivals, now=clock.seconds(), tz=hospital.timezone,
                                     region=hospital.region, settings=service.domain.dialer_settings)
            from callcenter.phones import dial_string

            for i, number in enumerate(await service.db.run(demo_campaigns, now=clock.seconds())):
                pbx.set_patient(dial_string(number, "national"), "noanswer" if i % 5 == 4 else "answer",
                                ring=6 + i % 7, hold=240, delay=1)
            await service.db.run(demo_complaints, service.domain.complaints, now=clock.seconds())
            try:
                await service.start()
            except OSError as exc:  # a port taken: say which and how to choose others
                import errno

                from .cli import UserError

                if exc.errno != errno.EADDRINUSE:
                    raise
                raise UserError(f"cannot listen: {exc.strerror} (web port {cfg.web.port}, AGI port "
                                f"{cfg.agi.port}; is another demo or service running? choose others with "
                                "CALLCENTER_WEB_PORT / CALLCENTER_AGI_PORT)") from None
            pbx.agi_port = service.agi.port  # where FastAGI listens (`[agi] port = 0`: a free one)
            await service.ami.wait_connected(30)
            tickets = await service.db.run(lambda s: demo_figures(
                s, since=started_sim, answer_target=hospital.answer_target_seconds,
                short_abandon=hospital.short_abandon_seconds)["open_tickets"])
            say("\n" + logins_block(url=f"{service.web.url}/", logins=logins, scale=scale,
                                   planned=len(arrivals), patients=n, tickets=tickets, ami_port=pbx.ami_port,
                                   campaigns=["demo-no-shows", "demo-revisits"]))
            traffic = run_traffic(pbx, profile, seed=seed)

            async def figures_now() -> dict:
                return await service.db.run(demo_figures, since=started_sim,
                                            answer_target=hospital.answer_target_seconds,
                                            short_abandon=hospital.short_abandon_seconds)

            async def report() -> None:
                while True:
                    await asyncio.sleep(status_every)  # real seconds: the terminal's pace, not the day's
                    live = service.queuecalls.live()
                    waiting = sum(len(q["waiting"]) for q in live.values())
                    talking = sum(len(q["talking"]) for q in live.values())
                    say(status_line(await figures_now(), local_time=hhmm(clock.seconds()), waiting=waiting,
                                    talking=talking, target=hospital.answer_target_seconds) + "\n")

            reporter = asyncio.ensure_future(report())
            try:
                if duration > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), duration)
                    except asyncio.TimeoutError:
                        pass
                else:
                    await stop.wait()
            finally:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
            figures = await figures_now()
        finally:
            if traffic is not None:
                traffic.cancel()
            await service.stop()
            service.db.close()
            await pbx.stop()
        if figures is not None:
            say("\n" + summary_text(figures, real_seconds=time.monotonic() - started_real,
                                     sim_from=hhmm(started_sim), sim_to=hhmm(clock.seconds()),
                                     target=hospital.answer_target_seconds, data_dir=str(data)))
        return 0

    return runtime.run(main)
