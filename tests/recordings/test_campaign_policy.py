"""Recording policy for campaigns (issue 22.5): entries say whether they match a kind or a
name, are checked at start-up, and a recorded campaign call carries its queue and agent.

End to end: the real dialer places progressive calls of three campaigns through the
simulated PBX (AMI over TCP, MixMonitor writing WAVs); the recordings component decides
with ``kind:no_show=all`` / ``name:complaint-followup=all`` from the config."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.ami.fake import FakeAmi
from callcenter.clock import ScaledClock
from callcenter.config import ConfigError, load_config
from dialer.campaigns import contact_row, create_campaign, ensure_campaign, insert_contacts
from dialer.campaigns import Settings as DialerSettings
from dialer.models import Attempt
from dialer.timeutil import to_dt
from recordings import capture, catalog
from recordings.policy import Policy, parse_campaign_rules, parse_rule
from recordings.settings import Settings
from tests.support.waiting import until

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
SPOOL = "/var/spool/asterisk/recordings"
AGENT = "Local/1001@sim-agent/n"


@pytest.mark.parametrize("entry, says", [
    ("no_show=all", "must say what it matches: kind:<campaign kind>"),      # the old, silently dead form
    ("kind:noshow=all", "unknown campaign kind 'noshow' (known: revisit, no_show"),
    ("name:=all", "must say what it matches"),
    ("queue:consultation=all", "must say what it matches"),
    ("kind:revisit=often", "must be all, none or a sample"),
])
def test_config_refuses_entries_that_cannot_match(tmp_path, entry, says):
    path = tmp_path / "cc.toml"
    path.write_text(f'[recordings]\ncampaign_policy = ["kind:no_show=all", "{entry}"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "campaign_policy" in str(err.value) and repr(entry) in str(err.value) and says in str(err.value)


def test_name_entries_win_over_kind_entries():
    p = Policy(campaigns=parse_campaign_rules(["kind:revisit=10%", "name:implant-revisits=all",
                                               "kind:complaint_followup=all"]))
    assert str(p.campaign_rule("implant-revisits", "revisit")) == "all"
    assert str(p.campaign_rule("other-revisits", "revisit")) == "10%"
    assert str(p.campaign_rule("complaint-followup", "complaint_followup")) == "all"
    assert str(p.campaign_rule("no-shows", "no_show")) == "none"          # the default
    assert list(parse_campaign_rules([" kind: no_show = all", "name : no-shows=none"])) == [
        "kind:no_show", "name:no-shows"]
    with pytest.raises(ValueError, match="kind:no_show is given twice"):
        parse_campaign_rules(["kind:no_show=all", "kind: no_show=none"])
    with pytest.raises(ValueError, match="'no_show' must be kind:<kind> or name:<name>"):
        Policy(campaigns={"no_show": parse_rule("all")})


async def test_start_refuses_a_name_entry_for_a_campaign_nobody_has(db, tmp_path):
    db.call(lambda s: create_campaign(s, name="no-shows", kind="no_show"))
    settings = Settings(directory=tmp_path / "rec", spool_dir=Path(SPOOL), policy=Policy(
        campaigns=parse_campaign_rules(["name:no-shows=all", "name:complaint-followup=all", "name:noshows=all"])))
    comp = capture.RecordingsComponent(settings, db=db, clock=reactor, gateway=FakeAmi(reactor))
    with pytest.raises(ConfigError) as err:
        await comp.start()
    # complaint-followup does not exist yet but is known: the dialer creates it on first use
    assert "entry name:noshows: no campaign named 'noshows' (known: callback, complaint-followup, no-shows)" \
        in str(err.value)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_campaign_calls_recorded_by_kind_and_name_with_queue_and_agent_through_simulator(db, tmp_path):
    from callcenter.ami.gateway import AmiGateway
    from callcenter.queuecalls.tracker import QueueCallsTracker
    from callcenter.simulator import SimConfig, SimulatedPBX
    from dialer.compliance import Rules
    from dialer.engine import Dialer, DialSettings
    from dialer.pacing import QueueCallsAgents

    clock = ScaledClock(reactor, 10, start=OPEN)  # x30 on a loaded machine: the call ended before MixMonitor
    calls = {"13800138001": "no-shows", "13800138002": "complaint-followup", "13800138003": "revisits"}

    def seed(s):
        camps = {"no-shows": create_campaign(s, name="no-shows", kind="no_show", queue="consultation",
                                             state="running"),
                 "complaint-followup": ensure_campaign(s, "complaint_followup",
                                                       DialerSettings(default_queue="consultation")),
                 "revisits": create_campaign(s, name="revisits", kind="revisit", queue="consultation",
                                             state="running")}
        insert_contacts(s, [contact_row(camps[name].id, f"c{i}", phone=f"+86{num}", name="", reason=name,
                                        ref_type="test", ref_id=i, due_after=to_dt(OPEN - 60 + i),
                                        due_before=None, patient_id=None, now=to_dt(OPEN - 60))
                            for i, (num, name) in enumerate(calls.items())])
    db.call(seed)
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path / "pbx",
                       config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}))
    await pbx.start()
    pbx.set_agent("1001", answer_delay=1, talk_time=5)
    for num in calls:
        pbx.set_patient(num, "answer", ring=1, hold=90, delay=1)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock)
    tracker = QueueCallsTracker(db, clock, gateway=gw)
    settings = Settings(directory=tmp_path / "pbx" / "recordings", spool_dir=Path(SPOOL), finalize_delay=1.0,
                        policy=Policy(default_queue=parse_rule("none"), campaigns=parse_campaign_rules(
                            ["kind:no_show=all", "name:complaint-followup=all"])))
    rec = capture.RecordingsComponent(settings, db=db, clock=clock, gateway=gw)

    d = Dialer(db=db, clock=clock, gateway=gw, rules=Rules(), instance="rec", agents=QueueCallsAgents(tracker),
               dial=DialSettings(channel_template="Local/{number}@sim-patient", max_rate=10))

    def attempts():
        with db.session() as s:
            return [(a.phone[3:], a.state, a.disposition) for a in s.scalars(select(Attempt).order_by(Attempt.id))]

    def recordings():
        return db.call(lambda s: sorted((r.campaign, r.kind, r.queue, r.agent, r.agent_name, r.status)
                                        for r in catalog.query(s)))
    try:
        await tracker.start()
        await gw.start()
        await gw.wait_connected(10)
        await rec.start()
        await until(lambda: len(QueueCallsAgents(tracker).free_agents("consultation").free) == 1)
        await d.start()
        await until(lambda: len(attempts()) == 3 and all(a[1] == "ended" for a in attempts()))
        await d.idle()
        await until(lambda: all(r[-1] != "recording" for r in recordings()))
        await rec.idle()
    finally:
        await d.stop()
        await rec.stop()
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    assert sorted(a[2] for a in attempts()) == ["reached"] * 3
    assert recordings() == [
        ("complaint-followup", "complaint", "consultation", AGENT, "Agent 1001", "ready"),
        ("no-shows", "outbound", "consultation", AGENT, "Agent 1001", "ready"),
    ]  # revisits: no entry, default none
