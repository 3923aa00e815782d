"""`callcenter demo` from the command line: a living hotline at once, the dashboard, a clean stop."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STATUS = re.compile(r"\[(\d\d:\d\d) simulated\] hotline: (\d+) calls? ended .*?, (\d+) waiting, (\d+) on a call "
                    r"· dialer: (\d+) calls?")


@pytest.mark.slow
def test_demo_shows_a_living_hotline_in_the_first_minute(tmp_path):
    """`callcenter demo` as `scripts/demo.sh` runs it (default time scale): the logins in
    one block after the start-up logs, callers every few seconds, the dialer calling,
    complaint tickets and campaigns seeded, and a readable summary on Ctrl-C."""
    web = free_port()
    data = tmp_path / "demo"
    # AGI port 0: FastAGI takes a free port and the simulated Asterisk must be told which
    # (it was told 0, and no caller ever reached the IVR)
    env = {**os.environ, "CALLCENTER_SERVICE_DATA_DIR": str(data),
           "CALLCENTER_WEB_PORT": str(web), "CALLCENTER_AGI_PORT": "0"}
    env.pop("CALLCENTER_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "callcenter", "demo", "--status-every", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    started = time.monotonic()
    try:
        out = _read_until(proc, "Ctrl-C to stop")
        out += _read_until(proc, "=" * 72)
        lines = out.splitlines()
        first_rule = lines.index("=" * 72)
        # the block comes after every component started, and nothing is logged inside it
        assert any("started web" in ln for ln in lines[:first_rule]), out
        block = lines[first_rule:]
        assert not [ln for ln in block if " INFO " in ln or " WARNING " in ln or " ERROR " in ln], out
        assert f"Open http://127.0.0.1:{web}/ and log in" in out and "20× time from 08:00" in out
        users = [ln.split()[0] for ln in block if ln.startswith("    ")]
        assert users[:3] == ["supervisor", "admin", "agent1001"] and len(users) == 7, block
        assert "3 complaint tickets" in out and "demo-no-shows, demo-revisits running" in out
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/login", timeout=10) as r:
            assert r.status == 200
        # a living hotline: callers arrive every few seconds and the dialer's window is open
        seen = None
        while seen is None or int(seen[1]) + int(seen[2]) + int(seen[3]) < 3 or int(seen[4]) < 1:
            assert time.monotonic() - started < 45, f"no traffic: {seen}"
            line = _read_until(proc, "simulated] hotline:")
            out += line
            seen = STATUS.search(line).groups() if STATUS.search(line) else None
            assert seen, line
        assert seen[0] < "08:30", seen  # within the first half hour of the simulated day
    finally:
        proc.send_signal(signal.SIGINT)
        rest = _drain(proc)
    assert proc.returncode == 0, rest[-2000:]
    assert "stopped ami" in rest
    # nothing alarming on a first look (e.g. every recording judged "cut short": the demo's
    # callers come over a simulated trunk, so their calls are recorded whole)
    assert " ERROR " not in out + rest and "Traceback" not in out + rest, (out + rest)[-3000:]
    summary = rest[rest.index("callcenter demo stopped after"):]
    assert "{" not in summary and "'planned'" not in rest, summary
    assert re.search(r"hotline: +\d+ calls? ended: \d+ answered, \d+ abandoned", summary), summary
    assert re.search(r"dialer: +\d+ calls? to patients", summary) and "complaints: 3 tickets open" in summary
    # what was seeded is in the demo's database
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{data / 'callcenter.sqlite'}")
    with engine.connect() as c:
        assert c.scalar(text("SELECT count(*) FROM complaint_tickets WHERE created_by = 'demo'")) == 3
        assert c.scalar(text("SELECT count(*) FROM campaigns WHERE state = 'running'")) >= 2
        assert c.scalar(text("SELECT count(*) FROM dial_attempts")) >= 1
    engine.dispose()


def _drain(proc, limit: float = 30) -> str:
    """Wait for ``proc`` to exit; return what it printed that was not read yet."""
    proc.wait(timeout=limit)
    if hasattr(proc, "_lines"):
        out = []
        while True:
            line = proc._lines.get(timeout=limit)
            if line is None:
                return "".join(out)
            out.append(line)
    return proc.stdout.read()


def _read_until(proc, needle: str, limit: float = 60) -> str:
    """Lines of ``proc``'s output up to the one containing ``needle``, within ``limit`` s
    (a reader thread, so a silent process cannot hang the test)."""
    import queue
    import threading

    if not hasattr(proc, "_lines"):
        proc._lines = queue.Queue()

        def pump():
            for line in proc.stdout:
                proc._lines.put(line)
            proc._lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
    seen = []
    deadline = time.monotonic() + limit
    while True:
        try:
            line = proc._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError(f"{needle!r} not seen in:\n{''.join(seen)[-3000:]}")
        seen.append(line)
        if needle in line:
            return "".join(seen)


@pytest.mark.slow
def test_serve_against_a_separate_pbx_and_sigterm(tmp_path):
    """`callcenter serve` (real-Asterisk mode) against the simulator in another process:
    logs in over AMI, serves, and shuts down cleanly on SIGTERM."""
    ami, web, agi = free_port(), free_port(), free_port()
    env = {**os.environ, "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "data"),
           "CALLCENTER_AMI_PORT": str(ami), "CALLCENTER_AMI_SECRET": "bridge-secret",
           "CALLCENTER_WEB_PORT": str(web), "CALLCENTER_AGI_PORT": str(agi)}
    env.pop("CALLCENTER_DATABASE_URL", None)
    up = subprocess.run([sys.executable, "-m", "callcenter", "db", "upgrade"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    pbx = subprocess.Popen([sys.executable, "-m", "callcenter", "simulator", "run", "--ami-port", str(ami),
                            "--agi-port", str(agi)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, text=True)
    try:
        _read_until(pbx, "simulated Asterisk: AMI on")
        svc = subprocess.Popen([sys.executable, "-m", "callcenter", "serve"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, text=True)
        try:
            out = _read_until(svc, "callcenter serving")
            if "AMI logged in" not in out:  # the gateway logs in in the background
                out += _read_until(svc, "AMI logged in")
            assert "bridge-secret" not in out
        finally:
            svc.send_signal(signal.SIGTERM)
            rest = _drain(svc)
        assert svc.returncode == 0, rest[-3000:]
        assert "stopped web" in rest and "stopped ami" in rest
        assert "Traceback" not in out + rest
    finally:
        pbx.send_signal(signal.SIGINT)
        _drain(pbx)
    assert pbx.returncode == 0


def test_serve_refuses_a_voice_message_directory_outside_the_recordings_directory(tmp_path):
    """Found on a real Asterisk: with ``[agi] recordings_dir`` outside ``[recordings]``,
    Asterisk recorded each message, the catalogue refused its path, and every message was
    lost after the caller spoke it. ``serve`` now refuses to start, naming both keys."""
    env = {**os.environ, "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "data"),
           "CALLCENTER_AGI_RECORDINGS_DIR": "/var/spool/asterisk/voicemail",
           "CALLCENTER_AGI_PORT": str(free_port()), "CALLCENTER_WEB_PORT": str(free_port())}
    env.pop("CALLCENTER_DATABASE_URL", None)
    up = subprocess.run([sys.executable, "-m", "callcenter", "db", "upgrade"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    svc = subprocess.run([sys.executable, "-m", "callcenter", "serve"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert svc.returncode == 2
    assert ("[agi] recordings_dir '/var/spool/asterisk/voicemail' is not under [recordings] spool_dir "
            f"'{tmp_path / 'data' / 'recordings'}'") in svc.stderr
    assert "callcenter serving" not in svc.stdout + svc.stderr


def test_the_demo_stretches_the_ami_links_timeouts_by_its_time_scale(config):
    """At 60× a 5 s Ping timeout on the demo's clock is 83 ms of wall time: a busy start-up
    was taken for a dead link ("QueueStatus failed ... within 10 s" 0.2 s after start)."""
    from callcenter.demo import demo_config, demo_sim

    a = demo_config(config, ami_port=5038, sim=demo_sim(), scale=60).ami
    assert (a.action_timeout, a.ping_timeout, a.ping_interval) == (
        config.ami.action_timeout * 60, config.ami.ping_timeout * 60, config.ami.ping_interval * 60)
    assert demo_config(config, ami_port=5038, sim=demo_sim()).ami.action_timeout == config.ami.action_timeout
