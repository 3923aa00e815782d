"""AMI ingest benchmark: TCP bytes -> stored queue calls, vs raw panoramisk parsing.

    .venv/bin/python bench/ami_ingest.py [--calls 2000] [--memory-calls 1000000] [--cores 1] [--rounds 3]
                                         [--without recordings,dialer,web]

1. **End to end** (one core: the process is pinned with ``sched_setaffinity``,
   database and file threads included): what ``callcenter serve`` runs — ``app.build``
   from a config file (AMI gateway, queue-call tracker, agent sessions, recordings, dialer,
   metrics, web with the screen pop, FastAGI) on a migrated SQLite file — fed by a server
   process (on another core when there is one: Asterisk's CPU is not the service's) that
   answers every action as a quiet Asterisk does (``FullyBooted`` after the login, GetConfig
   queues.conf, empty lists; MixMonitor writes the file) and streams N copies of the
   recorded call in ``01-inbound-answered.ami`` (~173 AMI events each, Uniqueids rewritten
   per call).  Events/s = events received / time from the service's login (resync done)
   until the last queue call is committed; how many recordings were catalogued and
   finalised by then is printed too (their work after the window is not measured).
   ``--without``: the same with those features off (``enabled = false``), for a breakdown.
2. **Raw parse** of the same bytes: panoramisk 1.4's ``AMIProtocol.data_received``
   (64 KiB reads) and our ``codec.Parser`` for comparison (every message built).
3. **Memory** over ``--memory-calls`` simulated calls at the *reducer* level (no
   TCP, no database: those would take hours for 10^6 calls), 50 calls in flight,
   each call the 17 queue-relevant events of the recording (join, ringing, leave,
   connect, complete, hangups, a few VarSet/Newexten): RSS before/after.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.ami.codec import Message, Parser  # noqa: E402
from callcenter.ami.tracefile import read_ami, traces_dir  # noqa: E402

UID = re.compile(rb"17953465(92\.[01]|95\.[23])\b")
UID_INDEX = {b"92.0": 0, b"92.1": 1, b"95.2": 2, b"95.3": 3}


def template() -> list[bytes]:
    """The recorded call's event messages (responses left out: nothing waits for them)."""
    tr = read_ami(traces_dir() / "01-inbound-answered.ami")
    return [e.raw for e in tr.received if e.message is not None and e.message.event
            and e.message.event not in ("FullyBooted", "SuccessfulAuth", "OriginateResponse")]


def make_stream(calls: int) -> tuple[bytes, int]:
    msgs = template()
    one = b"".join(msgs)
    parts = []
    for i in range(calls):
        parts.append(UID.sub(lambda m: b"1800000000.%d" % (4 * i + UID_INDEX[m.group(1)]), one))
    return b"".join(parts), calls * len(msgs)


# -- server process -----------------------------------------------------------------------------

GETCONFIG = [("Response", "Success"), ("Category-000000", "general"), ("Category-000001", "consultation"),
             ("Line-000001-000000", "wrapuptime=5")]


def _chunks(payload: bytes, size: int = 65536) -> list[bytes]:
    """``payload`` in pieces of about ``size`` bytes, each ending at a message end (the
    server answers actions between pieces, never inside a message)."""
    out, pos = [], 0
    while pos < len(payload):
        end = payload.find(b"\r\n\r\n", pos + size)
        end = len(payload) if end < 0 else end + 4
        out.append(payload[pos:end])
        pos = end
    return out


def _answer(conn: socket.socket, action: Message) -> None:
    """What a quiet Asterisk answers (``ami.replay.default_response``; GetConfig: queues.conf's
    wrapuptime), ``FullyBooted`` after the login; MixMonitor also writes the recording's file
    (the service's finalisation reads it, as it would Asterisk's)."""
    from callcenter.ami.codec import encode
    from callcenter.ami.replay import default_response, with_action_id

    name = (action.get("Action") or "").lower()
    if name == "getconfig":
        msgs = [GETCONFIG]
    elif name == "login":
        msgs = [[("Response", "Success"), ("Message", "Authentication accepted")]]
    else:
        msgs = default_response(action)
    out = b"".join(encode(h) for h in with_action_id(msgs, action.get("ActionID")))
    if name == "login":
        out += encode([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted")])
    if name == "mixmonitor" and action.get("File"):
        import wave

        path = Path(action["File"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
            w.writeframes(b"\0\0" * 800)
    conn.sendall(out)


def _serve(path: str, port_q, go) -> None:
    """One client: answer its actions; once ``go`` is set (the service has logged in and
    resynced) stream the payload, still answering actions between its pieces."""
    import select

    others = sorted(set(range(os.cpu_count() or 1)) - os.sched_getaffinity(0))
    if others:  # Asterisk is not on the service's core: the sender's CPU is not the service's
        os.sched_setaffinity(0, {others[0]})
    chunks = _chunks(Path(path).read_bytes())
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port_q.put(srv.getsockname()[1])
    conn, _ = srv.accept()
    conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
    parser = Parser()
    sent = 0
    while True:
        streaming = go.is_set() and sent < len(chunks)
        readable, _, _ = select.select([conn], [], [], 0 if streaming else 0.01)
        if readable:
            data = conn.recv(65536)
            if not data:
                return
            for action in parser.feed(data):
                _answer(conn, action)
        if streaming:
            conn.sendall(chunks[sent])
            sent += 1


def end_to_end(path: str, calls: int, events: int, without: tuple[str, ...] = ()) -> dict:
    """The shipped assembly (``app.build`` from a config file, as ``callcenter serve``: AMI
    gateway, queue-call tracker, agent sessions, recordings, dialer, metrics, web, FastAGI)
    on a migrated SQLite file, against the streaming server."""
    from callcenter import runtime
    from callcenter.app import build
    from callcenter.config import load_config
    from callcenter.store import Database, migrate

    ctx = mp.get_context("fork")
    port_q, go = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(path, port_q, go), daemon=True)
    proc.start()
    port = port_q.get(timeout=10)
    tmp = Path(tempfile.mkdtemp(prefix="ami-bench-"))
    conf = tmp / "callcenter.toml"
    sections: dict[str, dict] = {
        "service": {"data_dir": str(tmp / "data"), "log_level": "WARNING"},
        "database": {"url": f"sqlite:///{tmp / 'bench.sqlite'}"},
        "ami": {"host": "127.0.0.1", "port": port, "username": "bench", "secret": "x"},
        "agi": {"port": 0}, "web": {"host": "127.0.0.1", "port": 0}}
    for part in without:  # a breakdown: the same run with a feature off
        sections.setdefault(part, {})["enabled"] = False
    conf.write_text("".join(f"[{sec}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
                            for sec, keys in sections.items()))
    config = load_config(str(conf))
    with Database(config.database_url) as db:
        migrate.upgrade(db.engine)
    result: dict = {}

    async def main(stop) -> int:
        assembly = build(config)
        gw, tracker = assembly.sites.active["default"].ami, assembly.sites.active["default"].queuecalls
        await assembly.start()
        try:
            await gw.wait_connected(30)
            t0 = time.perf_counter()
            cpu0, loop0 = time.process_time(), time.thread_time()
            go.set()
            while tracker.written < calls:
                await asyncio.sleep(0.002)
            result["seconds"] = time.perf_counter() - t0
            result["cpu_seconds"] = time.process_time() - cpu0
            result["loop_cpu_seconds"] = time.thread_time() - loop0  # the event loop's thread only
            result["events"] = gw.events_received
            result["stored"] = tracker.written
            if config.recordings.enabled:  # how much of the recordings' work the window holds
                from sqlalchemy import text

                result["recordings"] = assembly.db.call(lambda s: tuple(s.execute(text(
                    "select count(*), count(*) filter (where status != 'recording') from recordings")).one()))
        finally:
            await assembly.stop()
            assembly.db.close()
        return 0

    runtime.run(main)
    proc.terminate()
    with Database(config.database_url).engine.connect() as c:
        from sqlalchemy import text

        result["rows"] = c.execute(text("select count(*) from queue_calls")).scalar()
    result["events_per_s"] = result["events"] / result["seconds"]
    return result


def raw_parse(payload: bytes) -> dict:
    from panoramisk.ami_protocol import AMIProtocol

    class Factory:
        n = 0

        def dispatch(self, msg):
            self.n += 1

    p = AMIProtocol()
    p.connection_made(None)
    f = Factory()
    p.factory, p.encoding = f, "utf8"
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(payload), 65536):
        p.data_received(payload[i:i + 65536])
    pano = f.n / (time.perf_counter() - t0)
    pano_cpu = f.n / (time.process_time() - c0)
    ours = Parser()
    n = 0
    t0 = time.perf_counter()
    for i in range(0, len(payload), 65536):
        n += len(ours.feed(payload[i:i + 65536]))
    return {"panoramisk_msgs_per_s": pano, "panoramisk_msgs_per_cpu_s": pano_cpu,
            "codec_msgs_per_s": n / (time.perf_counter() - t0),
            "messages": n}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(calls: int, in_flight: int = 50) -> dict:
    from callcenter.queuecalls.reducer import Finished, TrackerState, reduce

    keep = {"QueueCallerJoin", "AgentCalled", "QueueCallerLeave", "AgentConnect", "AgentComplete",
            "Hangup", "HangupRequest", "SoftHangupRequest"}
    tpl = []
    for raw in template():
        m = Parser().feed(raw)[0]
        if m.event in keep or (m.event in ("VarSet", "Newexten") and len(tpl) % 3 == 0):
            tpl.append([(k, v.encode()) for k, v in m.headers])
    per_call = len(tpl)
    st = TrackerState()
    finished = 0
    t = 1_800_000_000.0

    def call_events(i: int):
        out = []
        for hs in tpl:
            out.append(Message([(k, UID.sub(lambda m: b"1800000000.%d" % (4 * i + UID_INDEX[m.group(1)]), v).decode())
                                for k, v in hs]))
        return out

    base = None
    t0 = time.perf_counter()
    i = 0
    while i < calls:
        batch = [call_events(j) for j in range(i, min(calls, i + in_flight))]
        for k in range(per_call):
            t += 0.25
            for evs in batch:
                _, facts = reduce(st, evs[k], t)
                finished += sum(1 for f in facts if isinstance(f, Finished))
        i += len(batch)
        if base is None and i >= 20_000:
            base = rss_mb()
    return {"calls": calls, "events": calls * per_call, "finished": finished,
            "rss_after_warmup_mb": base, "rss_end_mb": rss_mb(),
            "growth_mb": rss_mb() - (base or rss_mb()), "live_calls_left": len(st.calls),
            "remembered_uids": len(st.finished), "seconds": time.perf_counter() - t0}


def _e2e_child(q, *args) -> None:
    q.put(end_to_end(*args))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="calls in the end-to-end stream")
    ap.add_argument("--memory-calls", type=int, default=1_000_000)
    ap.add_argument("--cores", type=int, default=1, help="pin to this many cores (0: no pinning)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--without", default="", help="features off in the end-to-end run (comma-separated "
                    "config sections: recordings, dialer, web)")
    args = ap.parse_args()
    without = tuple(p for p in args.without.split(",") if p)
    payload, events = make_stream(args.calls)
    with tempfile.NamedTemporaryFile(suffix=".ami", delete=False) as fh:
        fh.write(payload)
    print(f"stream: {args.calls} calls, {events} events, {len(payload) / 2**20:.1f} MiB")
    if args.cores:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    ratios, cpu_ratios, raws, e2es = [], [], [], []
    for r in range(args.rounds):  # interleaved: the anchor (panoramisk's parse) first, then last
        steps = ["raw", "e2e"] if r % 2 == 0 else ["e2e", "raw"]
        for step in steps:
            if step == "raw":
                raw = raw_parse(payload)
            else:  # the reactor runs once per process: each round in a fresh one
                ctx = mp.get_context("spawn")
                q = ctx.Queue()
                child = ctx.Process(target=_e2e_child, args=(q, fh.name, args.calls, events, without))
                child.start()
                e2e = q.get()
                child.join()
        ratios.append(e2e["events_per_s"] / raw["panoramisk_msgs_per_s"])
        cpu_ratios.append(e2e["events"] / e2e["cpu_seconds"] / raw["panoramisk_msgs_per_cpu_s"])
        raws.append(raw)
        e2es.append(e2e)
        print(f"round {r + 1}: raw parse, panoramisk 1.4: {raw['panoramisk_msgs_per_s']:,.0f} msg/s; "
              f"our codec: {raw['codec_msgs_per_s']:,.0f} msg/s; end to end "
              f"(TCP -> the service{' without ' + ', '.join(without) if without else ''} -> SQLite, "
              f"{args.cores or 'all'} core(s)): "
              f"{e2e['events']:,} events, {e2e['stored']} queue calls stored ({e2e['rows']} rows) in "
              f"{e2e['seconds']:.2f} s = {e2e['events_per_s']:,.0f} events/s "
              + (f"(recordings by then: {e2e['recordings'][0]} catalogued, {e2e['recordings'][1]} finalised) "
                 if "recordings" in e2e else "") +
              f"({ratios[-1]:.2f}x raw panoramisk parse; CPU {e2e['cpu_seconds']:.2f} s, of it "
              f"{e2e['loop_cpu_seconds']:.2f} s on the loop: "
              f"{cpu_ratios[-1]:.2f}x per CPU second)", flush=True)
    os.unlink(fh.name)
    ratio = sorted(ratios)[len(ratios) // 2]
    print(f"end to end / panoramisk raw parse over {args.rounds} rounds: median {ratio:.2f}x "
          f"[{min(ratios):.2f} .. {max(ratios):.2f}]; per CPU second (the machine is shared): median "
          f"{sorted(cpu_ratios)[len(cpu_ratios) // 2]:.2f}x [{min(cpu_ratios):.2f} .. {max(cpu_ratios):.2f}]")
    ok = all(e["events_per_s"] >= 20_000 and e["rows"] == args.calls for e in e2es) and ratio >= 1.2
    if args.memory_calls:
        mem = memory(args.memory_calls)
        print(f"memory (reducer level, {mem['calls']:,} calls / {mem['events']:,} events in "
              f"{mem['seconds']:.0f} s): RSS {mem['rss_after_warmup_mb']:.1f} MB after 20,000 calls -> "
              f"{mem['rss_end_mb']:.1f} MB at the end, growth {mem['growth_mb']:+.1f} MB; "
              f"{mem['finished']:,} finished, {mem['live_calls_left']} live left, "
              f"{mem['remembered_uids']} finished uids remembered")
        ok = ok and mem["growth_mb"] < 50 and mem["finished"] == mem["calls"]
    print("targets (>= 20,000 events/s, >= 1.2x raw parse, < 50 MB growth):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
