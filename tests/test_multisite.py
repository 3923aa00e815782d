"""Two Asterisk servers through the composition root (``callcenter.app.build``): two
simulated PBXs on their own AMI ports, ``[[ami]]`` entries for both, one time-scaled clock.

The two simulators hand out the same Uniqueids (same start second, same sequence):
every queue call is still stored once, under its server; the live view and the
wallboard say which server a caller waits on; the dialer originates a campaign's
calls on the server it is assigned to, and only there.
"""
from __future__ import annotations

import collections
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from twisted.internet import reactor

from callcenter.app import build
from callcenter.clock import ScaledClock
from callcenter.config import ConfigError, load_config
from callcenter.queuecalls import rollups
from callcenter.queuecalls.models import QueueCall, QueueCallRollup, RollupDirty
from callcenter.simulator import SimConfig, SimulatedPBX
from callcenter.store import Database
from dialer.models import Campaign
from tests.support.harness import accounting
from tests.support.waiting import until
from tests.queuecalls import oracle_reports as old
from tests.queuecalls.test_report_queries import _same
from tests.support.web import Client, add_users

pytestmark = pytest.mark.slow

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # a Wednesday
SERVERS = ("north", "south")


async def _pbxs(clock, tmp_path, sim) -> dict[str, SimulatedPBX]:
    out = {}
    for name in SERVERS:
        pbx = SimulatedPBX(clock, seed=7, spool_dir=tmp_path / name, agi_port=1, config=sim,
                           queue_log=tmp_path / f"{name}.queue_log")
        await pbx.start(host="127.0.0.1", ami_port=0)
        out[name] = pbx
    return out


def two_server_config(config, pbxs, sim, tmp_path):
    return config.with_overrides({
        "agi": {"host": "127.0.0.1", "port": 0},
        "recordings": {"directory": str(tmp_path / "rec"), "spool_dir": str(tmp_path / "rec")},
        "dialer": {"channel_template": "Local/{number}@sim-patient", "dial_format": "national",
                   "keep_free_agents": 0, "callback_after_call_seconds": 0},
        "web": {"host": "127.0.0.1", "port": 0},
    }).with_servers([{"name": name, "host": "127.0.0.1", "port": pbx.ami_port, "username": sim.username,
                      "secret": sim.secret, "queue_log": str(pbx.queue_log.path)} for name, pbx in pbxs.items()])


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_two_asterisk_servers_each_stored_under_its_name_and_dialled_where_assigned(config, db, tmp_path):
    from dialer.campaigns import contact_row, create_campaign, insert_contacts
    from dialer.models import Attempt
    from dialer.timeutil import to_dt

    clock = ScaledClock(reactor, 20, start=OPEN)
    sim = SimConfig()
    pbxs = await _pbxs(clock, tmp_path, sim)

    def campaign(s):
        c = create_campaign(s, name="south-revisits", kind="revisit", mode="progressive", queue="consultation",
                            state="paused", server="south")  # running once the callers are in
        insert_contacts(s, [contact_row(c.id, f"t:{i}", phone=f"+86139001390{i:02d}", name="", reason="revisit",
                                        ref_type="t", ref_id=str(i), due_after=to_dt(OPEN - 60), due_before=None,
                                        patient_id=None, now=to_dt(OPEN - 60)) for i in range(2)])
        return c.id
    cid = await db.run(campaign)
    originated = {name: [] for name in SERVERS}
    for name, pbx in pbxs.items():
        pbx.listeners.append(lambda h, name=name: originated[name].append(h)
                             if ("Event", "OriginateResponse") in h else None)
    product = build(two_server_config(config, pbxs, sim, tmp_path), clock=clock, db=db)
    try:
        await product.start()
        assert sorted(product.sites.active) == list(SERVERS)
        for name, pbx in pbxs.items():
            pbx.agi_port = product.agi.port
            await product.site(name).ami.wait_connected(10)
        calls = []
        for n in range(4):  # the same callers at the same moments on both: the same Uniqueids
            for pbx in pbxs.values():
                calls.append(pbx.inbound_call(f"1380013800{n}", f"Caller {n}", context="hotline-plain",
                                              digits="1", digit_delay=1, patience=30 + 10 * n))
        # only now the campaign dials south: an Originate before the callers would have moved
        # south's Uniqueid sequence ahead of north's (seen on a loaded machine)
        await db.run(lambda s: s.execute(update(Campaign).where(Campaign.id == cid).values(state="running")))
        await until(lambda: any(q["waiting"] for q in product.sites.queues.live().values()),
                    "a caller waiting in the live view")
        waiting = [w for q in product.sites.queues.live().values() for w in q["waiting"]]
        assert {w["server"] for w in waiting} <= set(SERVERS) and waiting
        only_south = product.sites.queues.live(server="south")
        assert {e["server"] for q in only_south.values() for k in ("waiting", "talking", "members")
                for e in q[k]} == {"south"}
        board = await product.web.app.wallboard.snapshot()
        assert {s["server"] for s in board["servers"]} == set(SERVERS)

        async def put_through():  # a patient the campaign called answered, queued, and is stored
            def outbound(s):
                return s.scalars(select(QueueCall.server).where(QueueCall.direction == "outbound")).all()
            return originated["south"] and await db.run(outbound)
        await until(put_through, "a south campaign call answered, queued and stored", limit=30)

        def all_stored():  # every queue call of each server's queue_log, finished and stored
            return all(c.done for c in calls) and all(
                accounting(db, pbx.queue_log.path, server=name).exact for name, pbx in pbxs.items())
        await until(all_stored, "every queue call stored", limit=60)

        def kept(s):  # the live write path kept the rollups: nothing left marked, equal to a recount
            return (s.execute(select(func.count()).select_from(RollupDirty)).scalar_one(),
                    sorted(set(s.scalars(select(QueueCallRollup.server)))), rollups.differences(s))
        assert await db.run(kept) == (0, list(SERVERS), [])
        inbound = await db.run(lambda s: [dict(m) for m in s.execute(select(QueueCall.__table__).where(
            QueueCall.direction == "inbound")).mappings()])

        add_users(db)  # the supervisor's API: per server and in total
        web = Client(product.web.port)
        await web.login("sup1")
        day = dt.datetime.fromtimestamp(clock.seconds(), ZoneInfo("Asia/Shanghai")).date().isoformat()
        offered = {}
        for server in ("north", "south", ""):
            r = await web.get(f"/api/reports/answer-times?from={day}&to={day}&server={server}")
            assert r.status == 200, r.text
            offered[server] = r.json()["summary"]["offered"]
            _same(r.json()["summary"], old.summarize([c for c in inbound if server in ("", c["server"])], 30.0, 5.0))
        assert offered["north"] + offered["south"] == offered[""] > 0 and offered["north"] > 0
        assert (await web.get(f"/api/reports/answer-times?server=east")).status == 400
        r = await web.get("/api/wallboard?server=north")
        assert r.status == 200 and [x["server"] for x in r.json()["servers"]] == ["north"]
        assert (await web.get("/api/wallboard?server=east")).status == 400
        page = (await web.get("/wallboard")).text  # the page shows each server's live figures
        assert 'data-server="north"' in page and 'data-server="south"' in page
        page = (await web.get(f"/reports?from={day}&to={day}&server=south")).text  # and reports one
        assert '<option value="south" selected>' in page and 'id="active-filters"' in page
    finally:
        await product.stop()
        for pbx in pbxs.values():
            await pbx.stop()
    rows = await db.run(lambda s: s.scalars(select(QueueCall)).all())
    by_server = collections.Counter(r.server for r in rows if r.direction == "inbound")
    assert by_server == {"north": 4, "south": 4}
    uids = collections.defaultdict(set)
    for r in rows:
        uids[r.uniqueid].add(r.server)
    assert any(len(v) == 2 for v in uids.values()), "the simulators were meant to reuse Uniqueids"
    for name, pbx in pbxs.items():  # each server's rows against its own queue_log
        acc = accounting(db, pbx.queue_log.path, server=name)
        assert acc.exact, (name, acc.missing, acc.extra, acc.duplicated, acc.wrong_outcome)
    assert not originated["north"] and originated["south"]
    assert {r.server for r in rows if r.direction == "outbound"} == {"south"}
    assert await db.run(lambda s: {a.campaign_id for a in s.scalars(select(Attempt))}) == {cid}


def test_ami_entries_are_checked_naming_the_file_and_entry(tmp_path):
    path = tmp_path / "callcenter.toml"

    def load(text: str):
        path.write_text(text)
        return load_config(path, env={})

    two = load('[[ami]]\nname = "north"\nport = 5038\n[[ami]]\nname = "south"\nhost = "10.1.0.2"\n')
    assert [(s.name, s.host) for s in two.ami_servers] == [("north", "127.0.0.1"), ("south", "10.1.0.2")]
    assert two.ami.name == "north" and two.ami_server("south").host == "10.1.0.2"
    secret = load('[[ami]]\nname = "north"\nsecret = "s3cret"\n').masked()["ami"]  # `config show`
    assert [(e["name"], e["secret"]) for e in secret] == [("north", "***")]
    assert [s.name for s in load('[ami]\nport = 5038\n').ami_servers] == ["default"]
    for text, error in [
        ('[[ami]]\nname = "a"\n[[ami]]\nname = "a"\n', r"entry 2: name 'a' is already used by entry 1"),
        ('[[ami]]\nport = 5038\n', r"entry 1: name is required"),
        ('[[ami]]\nname = "a"\nsecrett = "x"\n', r"entry 1: unknown key secrett"),
        ('[[ami]]\nname = "a"\nport = 99999\n', r"entry 1: \[ami\] port = 99999: must be a TCP port"),
        ('[[ami]]\nname = "North Campus"\n', r"entry 1: \[ami\] name = 'North Campus': must be 1-32 of"),
    ]:
        with pytest.raises(ConfigError, match=str(path).replace(".", r"\.") + ": .*" + error):
            load(text)
    path.write_text('[[ami]]\nname = "a"\n')
    with pytest.raises(ConfigError, match=r"environment CALLCENTER_AMI_PORT: .*\[\[ami\]\] entries"):
        load_config(path, env={"CALLCENTER_AMI_PORT": "1"})
    with pytest.raises(ConfigError, match=r"no AMI server named 'b' \(known: a\)"):
        load_config(path, env={}).ami_server("b")


@pytest.mark.postgres_only
@pytest.mark.timeout(60)
async def test_a_standby_wallboard_shows_the_active_instances_live_queues(config, db, tmp_path):
    """Two instances in one process on one PostgreSQL (as two hosts would run them): the
    standby's live queues and wallboard come from the active one over LISTEN/NOTIFY."""
    clock = ScaledClock(reactor, 20, start=OPEN)
    sim = SimConfig()
    pbx = SimulatedPBX(clock, seed=9, spool_dir=tmp_path / "pbx", agi_port=1, config=sim,
                       queue_log=tmp_path / "queue_log")
    await pbx.start(host="127.0.0.1", ami_port=0)
    cfg = two_server_config(config, {"north": pbx}, sim, tmp_path).with_overrides({"dialer": {"enabled": False}})
    active = build(cfg, clock=clock, db=db)
    standby = build(cfg, clock=clock, db=Database(db.url))
    try:
        await active.start()
        await standby.start()
        assert list(active.sites.active) == ["north"] and not standby.sites.active
        for agent in ("1001", "1002"):  # nobody answers: the caller waits
            pbx.pause_member(f"Local/{agent}@sim-agent/n", True, "meal")
        pbx.inbound_call("13800138009", "Caller", context="hotline-plain", digits="1", digit_delay=1, patience=600)

        async def standby_sees_the_caller():
            board = await standby.web.app.wallboard.snapshot()
            return board["servers"][0]["waiting"] == 1 and board["totals"]["waiting"] == 1
        await until(standby_sees_the_caller, "the caller on the standby's wallboard", limit=20)
        (waiting,) = [w for q in standby.sites.queues.live().values() for w in q["waiting"]]
        assert waiting["server"] == "north" and waiting["caller_number_masked"] != "13800138009"
        here, there = (await active.metrics.render()).decode(), (await standby.metrics.render()).decode()
        assert 'callcenter_ami_server_consumed{server="north"} 1.0' in here
        assert 'callcenter_ami_server_consumed{server="north"} 0.0' in there  # summed: 1 consumer
        assert 'callcenter_queue_waiting{queue="consultation"} 1.0' in here
        assert "callcenter_queue_waiting{" not in there  # a standby's metrics count only its own
        consultation = standby.sites.queues.live()["consultation"]["members"]
        assert {(m["state"], m["reason"], m["server"]) for m in consultation} == {("paused", "meal", "north")}
    finally:
        await standby.stop()
        await active.stop()
        standby.db.close()
        await pbx.stop()
