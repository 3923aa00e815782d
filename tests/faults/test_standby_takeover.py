"""Two ``callcenter serve`` instances on one PostgreSQL, two simulated Asterisk servers:
the active one is killed with SIGKILL mid-call and the standby takes both servers over.

Both instances read the same config (``[[ami]]`` north and south) and start together;
for each server one takes its advisory lock and the other says it is the standby (one
instance usually wins both), and its wallboard shows the other's calls (LISTEN/NOTIFY).
The instance consuming north is killed.  Callers keep arriving on
both servers; the active instance is SIGKILLed while calls wait and talk; PostgreSQL ends
its session, the standby takes each lock within ``standby_poll_seconds``, logs in and
recovers the gap from each server's queue_log from its checkpoint.  Then every queue
call of each simulator's queue_log is stored exactly once under its server.

Figures for docs/reliability.md::

    pytest tests/faults/test_standby_takeover.py -s        # FIGURES standby_takeover: {...}
    TAKEOVER_POLL=2 TAKEOVER_BUSY=20 pytest tests/faults/test_standby_takeover.py -s
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from callcenter.queuecalls.models import AmiOutage
from callcenter.simulator import SimConfig, SimulatedPBX

from tests.faults.test_serve_kill import free_port, until
from tests.support.harness import accounting
from tests.support.waiting import until as wait_for
from tests.support.web import Client, add_users

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
POLL = float(os.environ.get("TAKEOVER_POLL", "1"))   # [service] standby_poll_seconds
BUSY = float(os.environ.get("TAKEOVER_BUSY", "3"))   # seconds of traffic before the kill
AFTER = 1.5                                          # seconds of traffic after the takeover
SERVERS = ("north", "south")
AGENTS = {"consultation": ["1001", "1002", "1003"], "complaint": ["2001"]}


def _config(tmp_path: Path, pbxs: dict, agi_port: int, web_port: int) -> str:
    servers = "".join(f'[[ami]]\nname = "{n}"\nhost = "127.0.0.1"\nport = {p.ami_port}\nsecret = "bridge-secret"\n'
                      f'queue_log = "{p.queue_log.path}"\n\n' for n, p in pbxs.items())
    return (f'[service]\nstandby_poll_seconds = {POLL}\n\n{servers}'
            f'[agi]\nport = {agi_port}\n\n[web]\nport = {web_port}\n\n'
            '[dialer]\nenabled = false\n\n[recordings]\nenabled = false\n\n[complaints]\nenabled = false\n')


async def _spawn(env: dict, log: Path) -> asyncio.subprocess.Process:
    with open(log, "ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callcenter", "serve", cwd=str(ROOT), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=err)


async def _status(port: int, path: str) -> int | None:
    """The HTTP status of ``GET path`` (None: nothing listening yet)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    line = await reader.readline()
    writer.close()
    return int(line.split()[1]) if line.startswith(b"HTTP/") else None


async def _is(port: int, path: str, status: int) -> bool:
    return await _status(port, path) == status


@pytest.mark.postgres_only
@pytest.mark.timeout(90)
async def test_sigkill_of_the_active_instance_the_standby_takes_over_and_loses_no_queue_call(db, db_url, tmp_path):
    t0 = time.monotonic()
    clock = ScaledClock(reactor, 1.0)  # the wall clock, like serve's reactor
    pbxs: dict[str, SimulatedPBX] = {}
    for i, name in enumerate(SERVERS):
        pbx = SimulatedPBX(clock, seed=71 + i, config=SimConfig(queues={}), queue_log=tmp_path / f"{name}.queue_log")
        for queue, ids in AGENTS.items():
            for j, agent in enumerate(ids):
                pbx.add_agent(queue, agent, f"Agent {agent}", answer_delay=0.5 + j % 2, talk_time=2 + j, talk_sd=0.5)
        await pbx.start()
        pbxs[name] = pbx
    webs = [free_port(), free_port()]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    envs = []
    for k in range(2):
        path = tmp_path / f"instance{k}.toml"
        path.write_text(_config(tmp_path, pbxs, free_port(), webs[k]))
        env = {key: v for key, v in os.environ.items() if not key.startswith("CALLCENTER_")}
        envs.append({**env, "PYTHONPATH": str(ROOT), "CALLCENTER_CONFIG": str(path), "CALLCENTER_DATABASE_URL": db_url,
                     "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / f"data{k}"),
                     "CALLCENTER_SERVICE_LOG_LEVEL": "INFO"})
    calls = []
    stop_traffic = asyncio.Event()

    async def traffic() -> None:
        n = 0
        while not stop_traffic.is_set():
            n += 1
            for pbx in pbxs.values():
                calls.append(pbx.inbound_call(f"1380013{n % 10000:04d}", f"Caller {n}", context="hotline-plain",
                                              digits="1" if n % 3 else "2", digit_delay=0.3, patience=1.5 + n % 4))
            await asyncio.sleep(0.4)

    def sessions(pbx) -> int:
        return sum(1 for s in pbx.ami.sessions if s.authenticated)

    def logged(k: int, text: str) -> int:
        return logs[k].read_text(errors="replace").count(text) if logs[k].exists() else 0

    procs: list[asyncio.subprocess.Process] = []
    feeder = None
    moved: list[str] = []
    takeover: dict[str, float] = {}
    phases: dict[str, float] = {}
    try:
        procs = [await _spawn(envs[k], logs[k]) for k in range(2)]  # both at once: either may win
        await until(lambda: all(sessions(p) == 1 for p in pbxs.values()), 40,
                    "nobody logged in to both: " + logs[0].read_text(errors="replace")[-2000:])
        feeder = asyncio.ensure_future(traffic())
        busy_until = time.monotonic() + BUSY

        def holders() -> dict[str, list[int]]:
            return {name: [k for k in range(2) if logged(k, f"active consumer of Asterisk server {name}")]
                    for name in SERVERS}

        def standing() -> bool:  # each server: one active instance, the other its standby
            return all(len(ks) == 1 and logged(1 - ks[0], f"standby for Asterisk server {name}")
                       for name, ks in holders().items())
        await until(standing, 40, f"no active/standby pair: {holders()} " + logs[1].read_text(errors="replace")[-2000:])
        assert all(sessions(p) == 1 for p in pbxs.values())  # a standby does not consume
        for port in webs:  # web and API on every instance
            await wait_for(lambda: _is(port, "/healthz", 200), "every instance serving the web", limit=20)
            assert await _status(port, "/readyz") == 200  # nothing of its own is down
        phases["standby_ready_s"] = round(time.monotonic() - t0, 1)
        victim = holders()["north"][0]
        survivor = 1 - victim
        moved = [name for name, ks in holders().items() if ks == [victim]]
        add_users(db)  # the standby's wallboard shows the active one's calls (LISTEN/NOTIFY)
        web = Client(webs[survivor])
        await web.login("sup1")

        async def standby_board_live() -> bool:
            board = (await web.get("/api/wallboard")).json()
            return any(s["waiting"] + s["talking"] for s in board["servers"] if s["server"] in moved)
        await wait_for(standby_board_live, "the active instance's calls on the standby's wallboard", limit=10)
        await asyncio.sleep(max(0.0, busy_until - time.monotonic()))
        live_at_kill = sum(1 for c in calls if not c.done)
        os.kill(procs[victim].pid, signal.SIGKILL)
        killed_at = time.monotonic()
        await procs[victim].wait()
        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        while len(takeover) < len(moved):
            for name in moved:
                if name not in takeover and sessions(pbxs[name]) == 1 and logged(
                        survivor, f"active consumer of Asterisk server {name}"):
                    takeover[name] = round(time.monotonic() - killed_at, 2)
            assert loop.time() < end, f"no takeover: {takeover} " + logs[survivor].read_text(errors="replace")[-2000:]
            await asyncio.sleep(0.02)
        await asyncio.sleep(AFTER)
        stop_traffic.set()
        await feeder
        phases["traffic_stopped_s"] = round(time.monotonic() - t0, 1)
        await until(lambda: all(c.done for c in calls), 30, "calls did not finish")
        await asyncio.sleep(1.5)                         # the last Hangup reaches B; SIGTERM flushes
    finally:
        stop_traffic.set()
        if feeder is not None and not feeder.done():
            feeder.cancel()
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(p.wait(), 20)
                except asyncio.TimeoutError:
                    p.kill()
                    await p.wait()
        for pbx in pbxs.values():
            await pbx.stop()
    accounts = {name: accounting(db, pbx.queue_log.path, server=name) for name, pbx in pbxs.items()}
    with db.session() as s:
        outages = {name: [(o.recovered_calls, o.recovered_from_queue_log, o.note)
                          for o in s.scalars(select(AmiOutage).where(AmiOutage.server == name))] for name in SERVERS}
    figures = {"poll_s": POLL, "busy_s": BUSY, "live_at_kill": live_at_kill, "taken_over": moved,
               "takeover_s": takeover,
               **{name: {"queue_calls_in_queue_log": a.expected, "stored": a.stored, "missing": len(a.missing),
                         "duplicated": len(a.duplicated), "wrong_outcome": len(a.wrong_outcome),
                         "flagged_gap": a.reconstructed, "recovered_from_queue_log": a.recovered_from_queue_log}
                  for name, a in accounts.items()},
               "outages": outages, "phases": phases, "wall_seconds": round(time.monotonic() - t0, 1)}
    print("\nFIGURES standby_takeover: " + json.dumps(figures))
    assert live_at_kill > 0
    assert moved and all(t < 10 for t in takeover.values()), takeover
    for name, acc in accounts.items():
        assert acc.expected >= 8, (name, acc.expected)
        assert acc.exact, (name, acc.missing[:5], acc.duplicated[:5], acc.wrong_outcome[:5])
        if name in moved:  # the takeover: one gap, recovered from that server's queue_log
            (outage,) = outages[name]
            assert outage[1], outage
        else:  # its consumer lived on
            assert outages[name] == []
