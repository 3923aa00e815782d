"""``callcenter doctor``: passes on the demo's set-up, names each broken item (one test per check).

Asterisk-facing checks run against the simulator over TCP, which answers as Asterisk 22
does (Permission denied per action by the user's write classes, ShowDialPlan, QueueParams).
"""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, task

from callcenter.demo import demo_config, demo_sim
from callcenter.doctor import checks, run
from callcenter.doctor.ami_probe import AmiFacts
from callcenter.simulator import SimConfig, SimulatedPBX

EPOCH = 1795346592.0  # 2026-11-22 (a Sunday) 11:23 UTC


class Setup:
    def __init__(self, pbx: SimulatedPBX, clock: task.Clock, config):
        self.pbx, self.clock, self.config = pbx, clock, config

    async def doctor(self, **overrides) -> dict[str, checks.Result]:
        cfg = self.config.with_overrides(overrides) if overrides else self.config
        ticking = asyncio.ensure_future(self._tick())  # the simulator's 1 s login-failure delay
        try:
            results = await run(cfg, now=self.clock.seconds)
        finally:
            ticking.cancel()
        return {r.check: r for r in results}

    async def _tick(self):
        while True:
            await asyncio.sleep(0.02)
            self.clock.advance(0.25)


def _wait(coro):
    return pytest_twisted.blockon(defer.Deferred.fromFuture(asyncio.ensure_future(coro)))


@pytest.fixture
def setup(config):
    """The demo's set-up: its simulator and its configuration (callcenter.demo.demo_config)."""
    s = _wait(_start(config))
    yield s
    _wait(s.pbx.stop())


async def _start(config) -> Setup:
    data = Path(config.data_dir)
    (data / "recordings").mkdir(parents=True)
    clock = task.Clock()
    clock.advance(EPOCH)
    sim = demo_sim()
    pbx = SimulatedPBX(clock, spool_dir=data / "spool", agi_host=config.agi.host, agi_port=config.agi.port,
                       config=sim, queue_log=data / "queue_log")
    await pbx.start("127.0.0.1", 0)
    return Setup(pbx, clock, demo_config(config, ami_port=pbx.ami_port, sim=sim))


async def _broken_pbx(setup: Setup, **sim) -> Setup:
    await setup.pbx.stop()
    cfg = SimConfig(**sim)
    pbx = SimulatedPBX(setup.clock, config=cfg, agi_host=setup.config.agi.host, agi_port=setup.config.agi.port,
                       queue_log=setup.config.ami.queue_log)
    await pbx.start("127.0.0.1", 0)
    setup.pbx = pbx
    setup.config = setup.config.with_overrides({"ami": {"port": pbx.ami_port}})
    return setup


def _failed(results) -> list[str]:
    return [name for name, r in results.items() if r.status == "fail"]


async def test_doctor_passes_on_the_demo_setup(setup):
    results = await setup.doctor()
    assert _failed(results) == [], {n: results[n].detail for n in _failed(results)}
    assert results["ami permissions"].status == "ok"
    assert results["queues"].detail.startswith("consultation, complaint exist with servicelevel = 30")
    assert results["dialplan"].status == "ok"
    assert results["prompts"].status == "skip"  # the demo has no sounds directory


async def test_database_not_migrated(setup, tmp_path):
    from callcenter.store import Database

    Database(f"sqlite:///{tmp_path / 'empty.sqlite'}").close()
    (tmp_path / "empty.sqlite").touch()
    results = await setup.doctor(database={"url": f"sqlite:///{tmp_path / 'empty.sqlite'}"})
    r = results["database"]
    assert r.status == "fail" and "no schema" in r.detail and r.remedy == "run: callcenter db upgrade"


async def test_database_file_missing_is_not_created(setup, tmp_path):
    missing = tmp_path / "nope" / "cc.sqlite"
    results = await setup.doctor(database={"url": f"sqlite:///{missing}"})
    r = results["database"]
    assert r.status == "fail" and "does not exist" in r.detail and not missing.exists()


async def test_database_unreachable(setup):
    results = await setup.doctor(database={"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    r = results["database"]
    assert r.status == "fail" and "cannot reach" in r.detail and "[database] url" in r.remedy


async def test_ami_wrong_secret(setup):
    results = await setup.doctor(ami={"secret": "wrong"})
    r = results["ami login"]
    assert r.status == "fail" and "Authentication failed" in r.detail and "manager.conf" in r.remedy
    assert results["queues"].status == "skip"


async def test_ami_nothing_listening(setup):
    await setup.pbx.stop()
    results = await setup.doctor()
    assert results["ami login"].status == "fail" and "cannot connect" in results["ami login"].detail


async def test_ami_user_without_agent_and_originate_classes(setup):
    await _broken_pbx(setup, write_perm="system,call,reporting")
    results = await setup.doctor()
    r = results["ami permissions"]
    assert r.status == "fail"
    assert "QueuePause, QueueAdd, QueueRemove, Originate" in r.detail
    assert r.remedy.startswith("add agent,originate to write= of [bridge]")


async def test_ami_user_without_dialplan_read(setup):
    await _broken_pbx(setup, read_perm="system,call,agent")
    results = await setup.doctor()
    r = results["ami events"]
    assert r.status == "fail" and "no dialplan events" in r.detail


async def test_queue_missing_and_servicelevel_wrong(setup):
    await _broken_pbx(setup, queues={"consultation": [("1001", "Agent 1001")]}, servicelevel=20)
    results = await setup.doctor()
    r = results["queues"]
    assert r.status == "fail"
    assert "queue 'consultation' has servicelevel 20, [hospital] answer_target_seconds is 30" in r.detail
    assert "queue 'complaint' does not exist" in r.detail
    assert "set servicelevel = 30 in [consultation]" in r.remedy


async def test_dialplan_agi_url_points_elsewhere(setup):
    results = await setup.doctor(agi={"port": 4999})
    r = results["dialplan"]
    assert r.status == "fail"
    assert "context 'hotline' runs AGI(agi://127.0.0.1:4573/hotline), not this service" in r.detail
    assert "AGI(agi://127.0.0.1:4999/hotline)" in r.remedy


def test_dialplan_remedies_name_the_context_each_flow_belongs_in():
    """The dialer's flows are reached through [survey]'s ${SURVEY_FLOW}, the rating after Queue():
    the remedy says so (once for all the dialer's flows), not "the inbound context" for each."""
    facts = AmiFacts(address="127.0.0.1:5038", commands=set(), dialplan=[
        {"Context": "hotline", "Application": "AGI", "AppData": "agi://127.0.0.1:4573/hotline"}])
    r = checks.check_dialplan(facts, agi_host="127.0.0.1", agi_port=4573,
                       flows=["hotline", "satisfaction", "revisit_survey", "appointment_reminder"],
                       contexts=[], dialer_flows=["revisit_survey", "appointment_reminder"])
    assert r.status == "fail"
    assert "no context runs AGI(agi://127.0.0.1:4573/revisit_survey)" in r.detail
    assert "no context runs AGI(agi://127.0.0.1:4573/appointment_reminder)" in r.detail
    assert r.remedy.count("${SURVEY_FLOW}") == 1 and "[survey]" in r.remedy
    assert "[hotline], label rating" in r.remedy
    assert "appointment_reminder) to the inbound context" not in r.remedy


async def test_dialplan_context_missing(setup):
    results = await setup.doctor(dialer={"agent_context": "outbound-agents"})
    r = results["dialplan"]
    assert r.status == "fail" and "context 'outbound-agents' does not exist" in r.detail


async def test_dialplan_refused_without_reporting(setup):
    await _broken_pbx(setup, write_perm="system,call,agent,originate")
    results = await setup.doctor()
    assert results["dialplan"].status == "fail"
    assert results["dialplan"].detail == "ShowDialPlan refused: Permission denied"


async def test_prompts_missing(setup, tmp_path):
    sounds = tmp_path / "sounds"
    results = await setup.doctor(agi={"sounds_dir": str(sounds)})
    assert results["prompts"].status == "fail" and "does not exist" in results["prompts"].detail
    from callcenter.doctor import _flows

    flows = _flows(setup.config)
    for f in flows:
        for pid, spec in f.prompts.items():
            for lang in f.languages:
                if "file" not in spec and spec.get(lang):
                    p = sounds / (f.prompt_file(pid, lang) + ".wav")
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_bytes(b"")
    results = await setup.doctor(agi={"sounds_dir": str(sounds)})
    assert results["prompts"].status == "ok", results["prompts"].detail
    victim = sounds / (flows[0].prompt_file(next(p for p, s in flows[0].prompts.items() if "file" not in s),
                                            flows[0].languages[-1]) + ".wav")
    victim.unlink()
    results = await setup.doctor(agi={"sounds_dir": str(sounds)})
    r = results["prompts"]
    assert r.status == "fail" and str(victim.relative_to(sounds))[:-4] in r.detail
    assert r.remedy.startswith(f"callcenter prompts build --out {sounds / 'callcenter'}")


async def test_recordings_directory_not_writable_by_asterisk(setup):
    """Asterisk runs as ``nobody`` (CoreSettings CoreRunUser); the directory is root's, mode 755."""
    await _broken_pbx(setup, run_user="nobody")
    d = setup.config.values["recordings"]["directory"]
    os.chown(d, os.geteuid(), os.getegid())
    os.chmod(d, 0o755)
    results = await setup.doctor()
    r = results["recordings directory"]
    assert r.status == "fail" and "not writable by user 'nobody'" in r.detail and r.remedy.startswith("chown nobody")
    os.chmod(d, 0o757)
    assert (await setup.doctor())["recordings directory"].status == "ok"


async def test_recordings_directory_missing(setup, tmp_path):
    results = await setup.doctor(recordings={"directory": str(tmp_path / "nope"), "spool_dir": str(tmp_path / "nope")})
    r = results["recordings directory"]
    assert r.status == "fail" and "does not exist" in r.detail and r.remedy.startswith("mkdir -p")


async def test_voice_message_directory_missing(setup):
    vm = Path(setup.config.values["recordings"]["directory"]) / "vm"
    results = await setup.doctor(agi={"recordings_dir": str(vm)})
    r = results["voice-message directory"]
    assert r.status == "fail" and "does not exist" in r.detail and str(vm) in r.detail


async def test_voice_message_directory_outside_the_recordings_directory(setup, tmp_path):
    """Asterisk would record there, but the catalogue takes no file from outside the
    recordings directories: every message would be lost after the caller spoke it."""
    (tmp_path / "vm").mkdir()
    results = await setup.doctor(agi={"recordings_dir": str(tmp_path / "vm")})
    r = results["voice-message directory"]
    assert r.status == "fail"
    assert f"[agi] recordings_dir {str(tmp_path / 'vm')!r} is not under [recordings] spool_dir" in r.detail


async def test_queue_log_unreadable(setup, tmp_path):
    results = await setup.doctor(ami={"queue_log": str(tmp_path / "missing_queue_log")})
    r = results["queue_log"]
    assert r.status == "fail" and "not readable" in r.detail


async def test_timezone_unknown(setup):
    results = await setup.doctor(hospital={"timezone": "Mars/Olympus"})
    assert results["timezone"].status == "fail" and "Mars/Olympus" in results["timezone"].detail


def test_clock_skew_is_named():
    from callcenter.doctor.ami_probe import AmiFacts

    facts = AmiFacts("x:1", commands=set(), ping_timestamp=1000.0, ping_local=1007.5)
    r = checks.check_clock(facts)
    assert r.status == "fail" and "+7.5 s" in r.detail and "NTP" in r.remedy
    assert checks.check_clock(AmiFacts("x:1", ping_timestamp=1000.0, ping_local=1000.4)).status == "ok"


def test_cli_json_and_exit_code(config_env, tmp_path):
    """The real command: nothing listens on the AMI port -> exit 1, the JSON names the failed check."""
    import subprocess
    import sys

    env = {**os.environ, **config_env, "CALLCENTER_AMI_PORT": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.run([sys.executable, "-m", "callcenter", "doctor", "--json"], env=env, capture_output=True,
                       text=True, timeout=60)
    out = json.loads(p.stdout)
    assert p.returncode == 1 and out["ok"] is False, p.stderr
    statuses = {c["check"]: c["status"] for c in out["checks"]}
    assert statuses["ami login"] == "fail" and statuses["database"] == "ok"
    p = subprocess.run([sys.executable, "-m", "callcenter", "doctor"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1 and "FAIL ami login: cannot connect to 127.0.0.1:1" in p.stdout
    assert "     fix: check [ami] host/port" in p.stdout


def test_agi_url_matching():
    """Our flows must be reached at [agi] host:port; a service on 0.0.0.0 accepts any host."""
    from callcenter.doctor.checks import _ours

    assert _ours("agi://127.0.0.1:4573/hotline", "127.0.0.1", 4573)
    assert _ours("agi://127.0.0.1/hotline", "127.0.0.1", 4573)  # Asterisk's default FastAGI port
    assert not _ours("agi://127.0.0.1:4574/hotline", "127.0.0.1", 4573)
    assert not _ours("agi://10.0.0.9:4573/hotline", "127.0.0.1", 4573)
    assert _ours("agi://10.0.0.9:4573/hotline", "0.0.0.0", 4573)
    assert not _ours("/usr/share/asterisk/agi-bin/x.agi", "0.0.0.0", 4573)


async def test_each_asterisk_server_is_checked_and_named(setup):
    """[[ami]] entries: the AMI and queue_log checks run per server, each line naming it."""
    north = dict(setup.config.values["ami"], name="north")
    south = dict(north, name="south", port=1, queue_log=str(Path(north["queue_log"]).with_name("south.queue_log")))
    setup.config = setup.config.with_servers([north, south])
    results = await setup.doctor()
    assert results["ami login [north]"].status == "ok" and results["queues [north]"].status == "ok"
    assert results["ami login [south]"].status == "fail" and "127.0.0.1:1" in results["ami login [south]"].detail
    assert results["queue_log [north]"].status == "ok" and results["queue_log [south]"].status == "fail"
    assert "ami login" not in results and "database" in results
