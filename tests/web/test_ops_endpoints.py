"""/healthz, /readyz and /metrics over real HTTP, on the product as callcenter.app.build
assembles it, against the simulated Asterisk over TCP."""
from __future__ import annotations

import re

import pytest
from twisted.internet import reactor

from callcenter.app import build
from callcenter.clock import ScaledClock
from callcenter.web import tokens

from tests.support.web import Client
from tests.support.waiting import until

pytestmark = pytest.mark.slow

OPEN = 1795572000.0  # 2026-11-25 10:00 Asia/Shanghai, a Wednesday


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample in Prometheus text (labels in any order)."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(m.group(3))
    return None


@pytest.mark.timeout(90)
async def test_health_readiness_and_metrics(config, db, tmp_path):
    from callcenter.simulator import SimConfig, SimulatedPBX

    clock = ScaledClock(reactor, 30, start=OPEN)
    sim = SimConfig()
    pbx = SimulatedPBX(clock, seed=3, spool_dir=tmp_path / "pbx", agi_port=1, config=sim)
    await pbx.start(host="127.0.0.1", ami_port=0)
    cfg = config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": pbx.ami_port, "username": sim.username, "secret": sim.secret,
                "reconnect_max_delay": 1.0},
        "agi": {"host": "127.0.0.1", "port": 0},
        "recordings": {"directory": str(tmp_path / "rec"), "spool_dir": str(tmp_path / "rec")},
        "dialer": {"enabled": False},
        "web": {"host": "127.0.0.1", "port": 0},
    })
    product = build(cfg, clock=clock, db=db)
    token = await db.run(tokens.add, "prometheus", "supervisor", actor="test", now=OPEN)
    try:
        await product.start()
        pbx.agi_port = product.agi.port
        await product.ami.wait_connected(10)
        anon = Client(product.web.port)
        bearer = {"Authorization": f"Bearer {token}"}

        r = await anon.get("/healthz")
        assert (r.status, r.json()) == (200, {"status": "ok"})
        r = await anon.get("/readyz")
        assert (r.status, r.json()) == (200, {"status": "ok", "ami": "ok", "database": "ok"})
        assert (await anon.get("/metrics")).status == 401  # not public

        for agent in ("1001", "1002"):  # nobody answers: the caller waits
            pbx.pause_member(f"Local/{agent}@sim-agent/n", True, "meal")
        call = pbx.inbound_call("13800138001", "王小明", digits="1w1", digit_delay=1, patience=3600)

        async def waiting():
            text = (await anon.get("/metrics", headers=bearer)).text
            return (sample(text, "callcenter_queue_waiting", queue="consultation") == 1.0
                    and sample(text, "callcenter_queue_longest_wait_seconds", queue="consultation") > 0)
        await until(waiting, "the caller shows as waiting in /metrics")
        pbx.pause_member("Local/1001@sim-agent/n", False, "")

        async def answered():
            text = (await anon.get("/metrics", headers=bearer)).text
            return sample(text, "callcenter_queue_calls_total", queue="consultation", outcome="answered") == 1.0
        await until(answered, "the answered call counted once it is over")
        r = await anon.get("/metrics", headers=bearer)
        assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=")
        text = r.text
        assert sample(text, "callcenter_ami_up") == 1.0
        from sqlalchemy import select

        from callcenter.queuecalls.models import QueueCall

        def stored_wait(s):
            return s.scalar(select(QueueCall.wait_seconds).where(QueueCall.queue == "consultation"))

        async def stored():  # the tracker writes in batches, after the fact the metric counts
            return await db.run(stored_wait) is not None
        await until(stored, "the finished call stored")
        wait = await db.run(stored_wait)
        within = sample(text, "callcenter_queue_calls_answered_within_target_total", queue="consultation")
        assert within == (1.0 if wait <= 30 else None), wait
        assert sample(text, "callcenter_ami_events_total") > 10
        assert sample(text, "callcenter_ami_reconnects_total") == 0.0
        assert sample(text, "callcenter_db_write_seconds_count") > 0
        assert sample(text, "callcenter_recording_failures_total") == 0.0
        assert "13800138001" not in text and "王小明" not in text and call.uniqueid not in text

        pbx.ami.disconnect_all()  # Asterisk restarts: not ready until the link is back

        async def not_ready():
            r = await anon.get("/readyz")
            return r.status == 503 and r.json() == {"status": "not ready", "ami": "down", "database": "ok"}
        await until(not_ready, "/readyz 503 with the AMI down")
        await product.ami.wait_connected(10)
        text = (await anon.get("/metrics", headers=bearer)).text
        assert sample(text, "callcenter_ami_reconnects_total") == 1.0
        assert sample(text, "callcenter_ami_disconnects_total") == 1.0
        # no [ami] queue_log here: the outage is a gap (what the queue_log-gap alert watches)
        async def outage_stored():
            t = (await anon.get("/metrics", headers=bearer)).text
            return sample(t, "callcenter_ami_outages_total", recovered="gap") == 1.0
        await until(outage_stored, "the outage counted as a gap")
        assert (await anon.get("/readyz")).status == 200
    finally:
        await product.stop()
        await pbx.stop()


@pytest.mark.postgres
async def test_dialer_dispositions_and_recording_failures_since_start(db):
    """Counted from the store for rows started since the process did (restart = counter reset)."""
    import datetime as dt

    from twisted.internet.task import Clock

    from callcenter.ami.fake import FakeAmi
    from callcenter.metrics import ServiceMetrics
    from recordings.models import Recording

    from tests.support.web import FakeQueueCalls
    from .test_campaigns import NOW, seed_campaign

    def seed(s):
        seed_campaign(s)  # attempts started at NOW - 1h55
        for i, (status, at) in enumerate([("failed", NOW), ("failed", NOW - dt.timedelta(days=1)),
                                          ("complete", NOW)]):
            s.add(Recording(path=f"/r/{i}.wav", kind="queue", uniqueid=f"u{i}", started_at=at, status=status))
    await db.run(seed)

    def metrics_from(start: dt.datetime) -> ServiceMetrics:
        clock = Clock()
        clock.advance(start.timestamp())
        return ServiceMetrics(ami=FakeAmi(clock), queuecalls=FakeQueueCalls(), db=db, clock=clock,
                              timer=lambda: 0.0, answer_target=30, servers=lambda: {"default": True})

    text = (await metrics_from(NOW - dt.timedelta(hours=3)).render()).decode()
    assert sample(text, "callcenter_dialer_attempts_total", disposition="busy") == 1.0
    assert sample(text, "callcenter_dialer_attempts_total", disposition="completed") == 1.0
    assert sample(text, "callcenter_recording_failures_total") == 1.0  # yesterday's is before the start
    text = (await metrics_from(NOW + dt.timedelta(minutes=1)).render()).decode()
    assert sample(text, "callcenter_dialer_attempts_total", disposition="busy") is None
    assert sample(text, "callcenter_recording_failures_total") == 0.0
