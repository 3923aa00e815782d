"""Security review of what is exposed, as tests.

* every listening socket the service opens (FastAGI, web) binds to loopback by
  default, and the AMI client connects to loopback by default (config defaults);
  the shipped Asterisk manager.conf binds AMI to loopback and permits only it;
* web answers carry the security headers on every kind of answer (page, API, error,
  static, redirect);
* a whole-service scenario (simulated PBX over TCP: IVR calls with caller IDs, a
  callback request, a survey campaign dialling patients, web logins with a wrong and a
  right password, a patient lookup) logged at DEBUG: after the service's masking
  filter no full phone number, AMI secret or password appears in any log record;
* dependency pins in setup.cfg have sane lower and upper bounds.
"""
from __future__ import annotations

import asyncio
import configparser
import datetime as dt
import logging
import re
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from twisted.internet import reactor

from callcenter.config import SCHEMA, load_config
from callcenter.logs import MaskingFilter

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def test_listeners_default_to_loopback(config_env, monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("CALLCENTER_") and key.endswith("_HOST"):
            monkeypatch.delenv(key)
    cfg = load_config(None)
    assert cfg.ami.host in LOOPBACK       # the AMI client: Asterisk on the same host
    assert cfg.agi.host in LOOPBACK       # FastAGI server
    assert cfg.web.host in LOOPBACK       # web server
    hosts = {f"{sec}.{k}": key.default for sec, keys in SCHEMA.items() for k, key in keys.items()
             if k == "host" or k.endswith("_host")}
    assert hosts and all(v in LOOPBACK for v in hosts.values()), hosts
    secrets = {f"{sec}.{k}" for sec, keys in SCHEMA.items() for k, key in keys.items()
               if getattr(key, "secret", False)}
    assert {"ami.secret", "database.url"} <= secrets  # never printed by 'config show'
    conf = (ROOT / "docs/asterisk/manager.conf").read_text()
    assert re.search(r"^bindaddr\s*=\s*127\.0\.0\.1", conf, re.M)
    assert re.search(r"^deny\s*=\s*0\.0\.0\.0/0\.0\.0\.0", conf, re.M)
    assert re.search(r"^permit\s*=\s*127\.0\.0\.1/", conf, re.M)


async def test_components_bind_loopback_only(config, db):
    """Start the FastAGI and web components from the defaults (port 0) and look at the sockets."""
    from callcenter.app import build

    cfg = config.with_overrides({"agi": {"port": 0}, "web": {"port": 0}})
    assembly = build(cfg, db=db)  # the defaults as serve builds them; only the listeners started
    agi, web = assembly.agi, assembly.web
    await agi.start()
    await web.start()
    try:
        bound = [s.getsockname()[0] for s in agi._server.sockets]
        assert bound and all(h in LOOPBACK for h in bound), bound
        assert web.host in LOOPBACK
        # not reachable on another interface of this host
        other = _non_loopback_address()
        if other:
            for port in (agi.port, web.port):
                with socket.socket() as s:
                    s.settimeout(1)
                    assert s.connect_ex((other, port)) != 0, (other, port)
    finally:
        await web.stop()
        await agi.stop()


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            addr = s.getsockname()[0]
        return None if addr.startswith("127.") else addr
    except OSError:
        return None


async def test_security_headers_on_every_kind_of_answer(config, db):
    from tests.support.web import Client, FakeGateway, FakeQueueCalls, add_users, running_web

    add_users(db)
    async with running_web(config, db, queuecalls=FakeQueueCalls(), gateway=FakeGateway()) as web:
        c = Client(web.port)
        answers = {"login page": await c.get("/login"), "static": await c.get("/static/app.css"),
                   "anonymous api": await c.get("/api/wallboard"), "not found": await c.get("/nope"),
                   "redirect": await c.get("/wallboard")}
        await c.login("sup1")
        answers["api"] = await c.get("/api/wallboard")
        answers["page"] = await c.get("/wallboard")
        answers["bad request"] = await c.get("/api/reports/answer-times?from=x")
        answers["forbidden"] = await c.get("/api/users")
    for what, r in answers.items():
        h = r.headers
        assert "default-src 'none'" in h.get("content-security-policy", ""), what
        assert "frame-ancestors 'none'" in h["content-security-policy"], what
        assert h.get("x-frame-options") == "DENY", what
        assert h.get("x-content-type-options") == "nosniff", what
        assert h.get("referrer-policy") == "no-referrer", what
        if what != "static":
            assert "no-store" in h.get("cache-control", ""), what  # patient data never cached
        assert "server" not in h or "twisted" not in h["server"].lower(), (what, h.get("server"))


def test_dependency_pins_have_bounds():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    reqs = [r.strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip()]
    extras = [r.strip() for sec in cfg["options.extras_require"].values() for r in sec.splitlines() if r.strip()]
    problems = []
    for req in reqs + extras:
        name = re.split(r"[<>=!~\[ ;]", req, 1)[0]
        spec = req[len(name):]
        if name == "tzdata":
            continue  # timezone data: always take the newest
        if "==" in spec:
            continue  # exact pin (panoramisk 1.4: the gateway works around its known bugs)
        if ">=" not in spec:
            problems.append(f"{req}: no lower bound")
        if name in {r.split("[")[0].split(">")[0].split("<")[0].split("=")[0] for r in reqs} and "<" not in spec:
            problems.append(f"{req}: no upper bound (a major release may break the service)")
    assert not problems, problems


# -- masking: a whole-service scenario at DEBUG ------------------------------------------------
SECRET = "s3cr3t-AMI-" + "x7Q9" * 4
PASSWORD = "correct horse battery 9"
CALLERS = ["13800138001", "13900139002", "13700137003", "13600136004"]
PATIENTS = ["13500135005", "13400134006", "13300133007"]
OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _forms(national: str) -> list[str]:
    return [national, "+86" + national, "86" + national, f"{national[:3]} {national[3:7]} {national[7:]}"]


@pytest.mark.timeout(90)
async def test_no_full_number_or_secret_in_any_log_record(config, db, tmp_path, caplog):
    from sqlalchemy import select

    from callcenter.clock import ScaledClock
    from callcenter.app import build
    from callcenter.simulator import SimConfig, SimulatedPBX
    from callcenter.store.models import User
    from callcenter.web.passwords import hash_password
    from dialer.campaigns import contact_row, create_campaign, insert_contacts
    from dialer.models import Attempt
    from dialer.timeutil import to_dt

    from tests.support.web import Client

    caplog.set_level(logging.DEBUG)
    clock = ScaledClock(reactor, 60, start=OPEN)
    agi_port, web_port = _free_port(), _free_port()
    sim = SimConfig(secret=SECRET)
    pbx = SimulatedPBX(clock, seed=3, spool_dir=tmp_path / "spool", agi_port=agi_port, config=sim,
                       queue_log=tmp_path / "queue_log")
    await pbx.start()
    rec = str(tmp_path / "recordings")
    cfg = config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": pbx.ami_port, "username": "bridge", "secret": SECRET,
                "queue_log": str(tmp_path / "queue_log")},
        "agi": {"port": agi_port}, "web": {"port": web_port},
        "recordings": {"directory": rec, "spool_dir": rec},
        "dialer": {"channel_template": "Local/{number}@sim-patient", "dial_format": "national"}})

    def seed(s):
        s.add(User(username="sup9", display_name="Sup", role="supervisor", interface="", language="en",
                   password_hash=hash_password(PASSWORD, n=2**10), active=True))
        c = create_campaign(s, name="revisit", kind="revisit", mode="survey", state="running")
        insert_contacts(s, [contact_row(c.id, f"t{i}", phone=f"+86{n}", name=f"王{i}", reason="revisit",
                                        ref_type="treatment", ref_id=i, due_after=to_dt(OPEN - 60),
                                        due_before=None, patient_id=None, now=to_dt(OPEN - 60))
                            for i, n in enumerate(PATIENTS)])
    db.call(seed)
    for n in PATIENTS:
        pbx.set_patient(n, "answer", ring=2, survey_digits="1w4w5", hold=20, delay=1)
    service = build(cfg, clock=clock, db=db)
    await service.start()
    try:
        calls = [pbx.inbound_call(n, "张三", context="hotline", digits=d, digit_delay=2, patience=120)
                 for n, d in zip(CALLERS, ["1", "4", "3", "0"])]
        c = Client(web_port)
        await c.login("sup9", "wrong " + PASSWORD)
        assert (await c.login("sup9", PASSWORD)).status == 303
        await c.get(f"/api/patients?number={CALLERS[0]}")
        loop = asyncio.get_running_loop()
        end = loop.time() + 40

        def attempts_done():
            with db.session() as s:
                return [a.state for a in s.scalars(select(Attempt))]
        while not (all(call.done for call in calls) and len(attempts_done()) >= 3
                   and all(st == "ended" for st in attempts_done())):
            assert loop.time() < end, ([call.outcome for call in calls], attempts_done())
            await asyncio.sleep(0.05)
    finally:
        await service.stop()
        await pbx.stop()

    records = list(caplog.records)
    assert len(records) > 20  # the scenario really logged
    masking = MaskingFilter()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    banned = [SECRET, PASSWORD] + [f for n in CALLERS + PATIENTS for f in _forms(n)]
    written, raw = [], []
    for r in records:
        raw_text = r.getMessage()
        if any(b in raw_text for b in banned):
            raw.append(f"{r.name}: {raw_text[:160]}")
        masking.filter(r)  # what the service's log handler does (callcenter.logs.setup_logging)
        out = fmt.format(r)
        if any(b in out for b in banned):
            written.append(out[:200])
    assert not written, written[:5]
    assert not raw, raw[:5]  # masked at the source too, not only by the handler's filter
