"""Bench: CPU per FastAGI session on the server's loop thread, ours against panoramisk.

The warm row of ``agi_sessions.py`` is a wall-clock p99, and on a shared machine that
tail is mostly time spent queued behind other processes: it follows CPU per session,
which the machine's load hardly changes.  This bench measures that CPU directly.

The bench's callers (``agi_sessions.SCENARIOS``) are recorded once against our server
(every session's command lines, uncounted); then interleaved rounds (the order
alternates) replay them over TCP against

* ``ours``: the project's FastAGI server, hotline flow, every session stored (SQLite);
* ``panoramisk``: panoramisk's ``fast_agi.Application`` sending the recorded lines.

Per phase: ``time.thread_time()`` of this process's loop thread (the server's; the
callers run in a child process, started and waiting before the clock starts) and
``time.process_time()`` (ours adds its database thread), from the callers' "go" until
every session ended and every write was stored.  Every command line each caller read
is checked equal to the recording of its scenario (the session's row id, the one line
that differs between sessions, as ``<id>``; ours must give each session its own):
both servers did the same AGI work.

With ``--together`` each round runs both servers at the same time, each in its own
process with its own callers: the load of the moment is the same for both, which keeps
the ratio steadier on a shared machine than one phase after the other.

    nice .venv/bin/python bench/agi_cpu.py --sessions 500 --rounds 5 [--together]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agi_sessions as base  # noqa: E402

KINDS = ("ours", "panoramisk")
SESSION_ID = re.compile(r'SET VARIABLE IVR_SESSION "([1-9][0-9]*)"')


def normal(commands: list[str]) -> tuple[list[str], list[str]]:
    """The lines with the session's row id (the one line that differs between two sessions
    of a scenario) replaced by ``<id>``, and the ids it held."""
    ids, out = [], []
    for line in commands:
        m = SESSION_ID.fullmatch(line)
        if m:
            ids.append(m.group(1))
            line = 'SET VARIABLE IVR_SESSION "<id>"'
        out.append(line)
    return out, ids


# -- the callers (child process) -------------------------------------------------------
async def clients(port: int, n: int, scale: float, spread: float, scripts_path: str | None) -> dict:
    """Every session's command lines: all of them (no ``scripts_path``: the recording), else
    how many sessions read exactly the lines of their scenario's recording."""
    from callcenter.simulator.agi_client import ScriptedCaller, run_agi

    scripts = None
    if scripts_path:
        scripts = {int(k): v for k, v in json.loads(Path(scripts_path).read_text()).items()}
    sys.stdin.readline()  # the server's clock starts now
    clock = base.LoopClock(scale, base.OPEN)
    rng = random.Random(7)
    weights = [w for w, _, _ in base.SCENARIOS]
    got: list[tuple[int, list[str]]] = []

    async def one(i: int):
        k = rng.choices(range(len(base.SCENARIOS)), weights)[0]
        _, keys, hangup_at = base.SCENARIOS[k]
        await asyncio.sleep(rng.random() * spread)
        caller = ScriptedCaller(clock, uniqueid=f"1795346775.{i}", name=f"Local/s@sim-caller-{i:08x};1",
                                keys=list(keys), hangup_at=hangup_at)
        commands: list[str] = []
        env = {"agi_callerid": f"1380013{i:04d}", "agi_calleridname": f"Caller {i}", "agi_context": "hotline",
               "agi_arg_1": str(k)}
        try:
            status = await run_agi(f"agi://127.0.0.1:{port}/hotline", env, caller, commands=commands)
        finally:
            caller.close()
        got.append((k, normal(commands)))
        return status

    statuses = await asyncio.gather(*(one(i) for i in range(n)))
    out: dict = {"statuses": {s: statuses.count(s) for s in set(statuses)}}
    if scripts is None:
        out["sessions"] = [(k, cmds) for k, (cmds, _) in got]
    else:
        out["equal"] = sum(1 for k, (cmds, _) in got if cmds == normal(scripts[k])[0])
        out["lines"] = sum(len(cmds) for _, (cmds, _) in got)
        ids = [i for _, (_, sids) in got for i in sids]
        out["distinct_session_ids"] = len(set(ids)) == len(ids)
    return out


# -- the servers (this process) -------------------------------------------------------
async def idle(server) -> None:
    """Until our server has no session open and no write queued (its work is all counted)."""
    while server.server.active or (server.server.writes is not None and server.server.writes.pending):
        await asyncio.sleep(0.01)


async def phase(kind: str, args, scripts_path: str | None, scripts) -> dict:
    server = base.Ours(args.scale, args.sessions) if kind == "ours" else base.Panoramisk(scripts)
    port = await server.start()
    cmd = [sys.executable, __file__, "--client", "--port", str(port), "--sessions", str(args.sessions),
           "--scale", str(args.scale), "--spread", str(args.spread)]
    if scripts_path:
        cmd += ["--scripts", scripts_path]
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    await asyncio.sleep(1.0)  # the child imports before the clock starts (its start-up is not ours)
    t0, p0 = time.thread_time(), time.process_time()
    proc.stdin.write(b"go\n")
    out, _ = await proc.communicate()
    if kind == "ours":
        await idle(server)
    loop_s, process_s = time.thread_time() - t0, time.process_time() - p0
    got = json.loads(out.decode().strip().splitlines()[-1])
    got.update(await server.stop())
    got.update(loop_ms=round(loop_s * 1000 / args.sessions, 4), process_ms=round(process_s * 1000 / args.sessions, 4))
    return got


async def serve(kind: str, args) -> dict:
    """``--together``: one server in this process, its loop-thread CPU from "go" to "done"
    (stdin lines, read on a helper thread: not the loop's)."""
    scripts = {int(k): v for k, v in json.loads(Path(args.scripts).read_text()).items()}
    server = base.Ours(args.scale, args.sessions) if kind == "ours" else base.Panoramisk(scripts)
    port = await server.start()
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    t0, p0 = time.thread_time(), time.process_time()
    await loop.run_in_executor(None, sys.stdin.readline)
    if kind == "ours":
        await idle(server)
    loop_s, process_s = time.thread_time() - t0, time.process_time() - p0
    got = await server.stop()
    got.update(loop_ms=round(loop_s * 1000 / args.sessions, 4), process_ms=round(process_s * 1000 / args.sessions, 4))
    return got


async def together(args, scripts_path: str) -> dict:
    """Both servers at once, each in its own process with its own callers: both meet the
    same machine (the load of the moment), and each counts only its own loop thread."""
    common = ["--sessions", str(args.sessions), "--scale", str(args.scale), "--spread", str(args.spread),
              "--scripts", scripts_path]
    servers, callers, got = {}, {}, {}
    for kind in KINDS:
        servers[kind] = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", kind, *common, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for kind in KINDS:
        port = json.loads((await servers[kind].stdout.readline()).decode())["port"]
        callers[kind] = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", "--port", str(port), *common,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    await asyncio.sleep(1.5)  # the callers import before the clocks start
    for proc in (*servers.values(), *callers.values()):
        proc.stdin.write(b"go\n")
    outs = await asyncio.gather(*(callers[k].communicate() for k in KINDS))
    for kind, (out, _) in zip(KINDS, outs):
        got[kind] = json.loads(out.decode().strip().splitlines()[-1])
        servers[kind].stdin.write(b"done\n")
    for kind in KINDS:
        out, _ = await servers[kind].communicate()
        got[kind].update(json.loads(out.decode().strip().splitlines()[-1]))
    return got


def recording(sessions: list) -> tuple[dict[int, list[str]], list]:
    """Each scenario's command lines (ids as ``<id>``): those most of its sessions read;
    and the sessions that read others (a loaded machine can delay a prompt past a
    scripted key press), as (scenario, first differing line)."""
    by: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for k, cmds in sessions:
        by[k][tuple(cmds)] += 1
    scripts = {k: list(c.most_common(1)[0][0]) for k, c in by.items()}
    other = []
    for k, cmds in sessions:
        if cmds != scripts[k]:
            i = next((i for i, (a, b) in enumerate(zip(cmds, scripts[k])) if a != b), min(len(cmds), len(scripts[k])))
            other.append((k, cmds[i] if i < len(cmds) else "(ended)", scripts[k][i] if i < len(scripts[k]) else "(ended)"))
    return scripts, other


async def server_main(args) -> int:
    rec = await phase("ours", args, None, None)
    scripts, other = recording(rec["sessions"])
    one_id = {k: [line.replace("<id>", str(1000 + k)) for line in v] for k, v in scripts.items()}
    print(json.dumps({"recorded": len(rec["sessions"]), "other_than_their_scenario": len(other),
                      "first_differences": other[:5]}), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="agi-cpu-")) / "scripts.json"
    tmp.write_text(json.dumps(one_id))  # panoramisk sends a row id as ours does
    rows = []
    for r in range(args.rounds):
        if args.together:
            order = ("together",)
            got = await together(args, str(tmp))
        else:
            order = KINDS if r % 2 == 0 else KINDS[::-1]
            got = {kind: await phase(kind, args, str(tmp), one_id) for kind in order}
        ok = (all(got[k]["equal"] == args.sessions for k in KINDS) and got["ours"]["distinct_session_ids"]
              and got["ours"]["sessions_stored"] == args.sessions)
        row = {"round": r + 1, "order": list(order),
               "loop_ms_per_session": {k: got[k]["loop_ms"] for k in KINDS},
               "process_ms_per_session": {k: got[k]["process_ms"] for k in KINDS},
               "ratio_loop": round(got["ours"]["loop_ms"] / got["panoramisk"]["loop_ms"], 3),
               "every_line_equal": ok, "sessions_equal": {k: got[k]["equal"] for k in KINDS},
               "stored": got["ours"]["sessions_stored"],
               "lines": got["ours"]["lines"], "load": Path("/proc/loadavg").read_text().split()[:3]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    ratios = [x["ratio_loop"] for x in rows]
    summary = {"sessions": args.sessions, "rounds": args.rounds, "spread_s": args.spread, "together": args.together,
               "loop_ms_per_session": {k: {"min": min(x["loop_ms_per_session"][k] for x in rows),
                                           "median": statistics.median(x["loop_ms_per_session"][k] for x in rows),
                                           "max": max(x["loop_ms_per_session"][k] for x in rows)} for k in KINDS},
               "ratio_loop": {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)},
               "every_line_equal": all(x["every_line_equal"] for x in rows)}
    print(json.dumps(summary, indent=2))
    return 0 if summary["every_line_equal"] else 1  # the ratios stand; the rows say how many differed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=500)
    p.add_argument("--rounds", type=int, default=5)
    # x5, not agi_sessions' x20: a key pressed 0.5 simulated s into a prompt is then 100 ms of
    # real slack, so a loaded machine rarely turns a session onto another path (other lines)
    p.add_argument("--scale", type=float, default=5.0, help="simulated seconds per real second")
    p.add_argument("--spread", type=float, default=5.0, help="sessions start over this many s")
    p.add_argument("--together", action="store_true",
                   help="run both servers at once (own processes, own callers) instead of one after the other")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--scripts", default=None, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        print(json.dumps(asyncio.run(serve(args.serve, args))))
        return 0
    if args.client:
        print(json.dumps(asyncio.run(clients(args.port, args.sessions, args.scale, args.spread, args.scripts))))
        return 0
    return asyncio.run(server_main(args))


if __name__ == "__main__":
    sys.exit(main())
