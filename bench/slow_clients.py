"""Bench: 1,100 slow anonymous HTTP clients, then 1,100 stalled FastAGI sessions, against a
service process whose open-files limit is 1,024 (soft and hard, so it cannot raise it).

Slow HTTP clients come from 22 loopback addresses (50 each, under the per-client cap), so
the total cap is what holds.  The service (web + FastAGI, SQLite, default limits from the config) runs in a child
process started under ``resource.setrlimit(RLIMIT_NOFILE, (1024, 1024))``; the attackers
and the probes run here.  While each attack runs, a hotline caller (raw FastAGI: env,
ANSWER, the menu's first media command) and ``GET /login`` are tried every 2 s.

    .venv/bin/python bench/slow_clients.py --clients 1100

Prints one ``RESULT`` JSON line per phase: probes answered, when the attackers were cut,
how many were refused at accept, and the size of the service's log.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = (b"agi_network: yes\nagi_network_script: hotline\nagi_request: agi://127.0.0.1/hotline\n"
       b"agi_channel: PJSIP/trunk-00000001\nagi_uniqueid: %s\nagi_callerid: 13800138002\n"
       b"agi_calleridname: unknown\nagi_context: hotline\nagi_extension: s\nagi_priority: 1\n\n")


# -- the service (child process) ----------------------------------------------------------
def serve(data_dir: str) -> None:
    from callcenter import runtime
    from callcenter.app import build
    from callcenter.config import load_config
    from callcenter.logs import setup_logging
    from callcenter.store import Database, migrate

    setup_logging("INFO")
    env = dict(os.environ, CALLCENTER_SERVICE_DATA_DIR=data_dir, CALLCENTER_WEB_PORT="0",
               CALLCENTER_AGI_PORT="0", CALLCENTER_DATABASE_URL=f"sqlite:///{data_dir}/cc.sqlite")
    config = load_config(None, env=env)
    db = Database(config.database_url)
    migrate.upgrade(db.engine)

    async def main(stop):
        assembly = build(config, db=db)   # as serve builds it; only the two listeners are started
        web, agi = assembly.web, assembly.agi
        await agi.start()
        await web.start()
        print(f"READY {web.port} {agi.port} {resource.getrlimit(resource.RLIMIT_NOFILE)[0]} "
              f"{web.limits.max_connections} {agi.max_sessions}", flush=True)
        await stop.wait()
        await web.stop()
        await agi.stop()
    runtime.run(main)


# -- probes and attackers -----------------------------------------------------------------
async def probe_login(port: int) -> bool:
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
        w.write(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        line = await asyncio.wait_for(r.readline(), 3)
        w.close()
        return line.startswith(b"HTTP/1.1 200")
    except (OSError, asyncio.TimeoutError):
        return False


async def probe_caller(port: int, n: int) -> bool:
    """A hotline call: does the menu's first media command arrive?"""
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
        w.write(ENV % f"9{n}.1".encode())
        while True:
            line = await asyncio.wait_for(r.readline(), 5)
            if not line:
                return False
            if line.startswith((b"GET DATA", b"STREAM FILE")):
                w.close()
                return True
            w.write(b"200 result=0\n")
    except (OSError, asyncio.TimeoutError):
        return False


async def slow_http(port: int, t0: float, out: dict, n: int) -> None:
    source = f"127.0.{1 + n // 50}.{1 + n % 50}"  # 50 per address: a distributed attack, under the per-client cap
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    except OSError:
        out["connect_failed"] += 1
        return
    try:
        w.write(b"GET /login HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while True:  # one byte a second: the idle timer never fires, only the header deadline
            try:
                chunk = await asyncio.wait_for(r.read(4096), 1.0)
                if chunk.startswith(b"HTTP/1.1 408"):
                    out["got_408"] += 1
                elif chunk.startswith(b"HTTP/1.1 503"):
                    out["got_503"] += 1
                if not chunk:
                    break
            except asyncio.TimeoutError:
                w.write(b"a")
        out["cut_at"].append(time.monotonic() - t0)
    except OSError:
        out["cut_at"].append(time.monotonic() - t0)
    finally:
        w.close()


async def stalled_agi(port: int, t0: float, out: dict, n: int) -> None:
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        out["connect_failed"] += 1
        return
    try:
        while await r.read(4096):  # sends nothing: no environment, no replies
            pass
        out["cut_at"].append(time.monotonic() - t0)
    except OSError:
        out["cut_at"].append(time.monotonic() - t0)
    finally:
        w.close()


async def stalled_after_env(port: int, t0: float, out: dict, n: int) -> None:
    """A "PBX" that sends the environment, reads ANSWER and never replies."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        out["connect_failed"] += 1
        return
    try:
        w.write(ENV % f"8{n}.1".encode())
        while await r.read(4096):
            pass
        out["cut_at"].append(time.monotonic() - t0)
    except OSError:
        out["cut_at"].append(time.monotonic() - t0)
    finally:
        w.close()


async def phase(name: str, attacker, port: int, web: int, agi: int, clients: int, log_path: Path,
                seconds: float) -> dict:
    out = {"connect_failed": 0, "got_408": 0, "got_503": 0, "cut_at": []}
    log_before = log_path.stat().st_size
    t0 = time.monotonic()
    tasks = []
    for i in range(clients):
        tasks.append(asyncio.ensure_future(attacker(port, t0, out, i)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    probes = {"login_ok": 0, "login_tries": 0, "caller_ok": 0, "caller_tries": 0}
    n = 0
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(2)
        n += 1
        probes["login_tries"] += 1
        probes["caller_tries"] += 1
        ok_login, ok_caller = await asyncio.gather(probe_login(web), probe_caller(agi, n))
        probes["login_ok"] += ok_login
        probes["caller_ok"] += ok_caller
    await asyncio.wait(tasks, timeout=5)
    still = sum(1 for t in tasks if not t.done())
    for t in tasks:
        t.cancel()
    cut = sorted(out["cut_at"])
    return {"phase": name, "clients": clients, **probes,
            "cut_within_s": round(cut[-1], 1) if cut else None,
            "cut_immediately": sum(1 for c in cut if c < 1.0),
            "connect_failed": out["connect_failed"], "got_408": out["got_408"], "got_503": out["got_503"],
            "still_open_after": still, "log_bytes": log_path.stat().st_size - log_before}


async def attack(args, web: int, agi: int, log_path: Path) -> None:
    print("RESULT", json.dumps(await phase("slow_http", slow_http, web, web, agi, args.clients, log_path,
                                           args.seconds)), flush=True)
    await asyncio.sleep(2)
    print("RESULT", json.dumps(await phase("stalled_fastagi", stalled_agi, agi, web, agi, args.clients,
                                           log_path, args.seconds)), flush=True)
    if args.after_env:
        await asyncio.sleep(12)
        print("RESULT", json.dumps(await phase("stalled_after_env", stalled_after_env, agi, web, agi,
                                               args.clients, log_path, args.seconds)), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1100)
    ap.add_argument("--seconds", type=float, default=40.0, help="length of each attack phase")
    ap.add_argument("--after-env", action="store_true",
                    help="a third phase: sessions that send the environment and then never answer")
    ap.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attackers need ~2,300
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "service.log"
        with open(log_path, "wb") as logf:
            child = subprocess.Popen(
                [sys.executable, __file__, "--serve", tmp], stdout=subprocess.PIPE, stderr=logf,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)),
                env=dict(os.environ, PYTHONPATH=str(ROOT)))
            try:
                ready = child.stdout.readline().decode().split()
                if not ready or ready[0] != "READY":
                    raise SystemExit(f"service did not start; see {log_path}: {log_path.read_text()[-2000:]}")
                web, agi, nofile, web_cap, agi_cap = map(int, ready[1:])
                print(f"service: open-files limit {nofile}, web cap {web_cap}, FastAGI cap {agi_cap}",
                      flush=True)
                asyncio.run(attack(args, web, agi, log_path))
            finally:
                child.terminate()
                child.wait(10)


if __name__ == "__main__":
    main()
