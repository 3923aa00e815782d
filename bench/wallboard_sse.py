"""Bench: AMI event -> wallboard SSE client latency at 500 (or N) clients, against the 100 ms
coalescing floor and one client, in the same run (interleaved rounds).

The service (``callcenter.app.build`` with the AMI client replaced by ``FakeAmi``, only the
queue-call tracker and the web started, SQLite) runs in a child process.  An event is a
``QueueCallerJoin`` handed to the gateway's subscribers, as the real gateway does after
parsing: the tracker reduces it, the wallboard feed coalesces (100 ms), builds the
document and pushes the ``patch``; the clients (another process, raw sockets, a
timestamp taken in ``data_received``) find the caller's number in the patch.  Latency =
receive time - injection time (``time.monotonic``, one clock for both processes on Linux).
Each round runs the 1-client anchor, then the N-client phase, ``--events`` events each,
``--gap`` s apart (each its own push).

    .venv/bin/python bench/wallboard_sse.py --clients 500 --rounds 3
    .venv/bin/python bench/wallboard_sse.py --clients 1000 --rounds 3

All clients are one user, so the service runs with the connection and stream caps
(``[web] max_connections``, ``max_streams``, ``max_streams_per_user``) raised.

Prints one ``RESULT`` JSON line per phase and a ``SUMMARY`` line: p50/p99/max per phase,
bytes per push per client, the server's time to write one push to every client, and
p99(N)/floor.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-1"


# -- the service (child process) ----------------------------------------------------------
def serve(data_dir: str) -> None:
    from callcenter import runtime
    from callcenter.ami.fake import FakeAmi, message
    from callcenter.app import build
    from callcenter.config import load_config
    from callcenter.logs import setup_logging
    from callcenter.store import Database, migrate
    from callcenter.store.models import User
    from callcenter.web.passwords import hash_password

    setup_logging("WARNING")
    env = dict(os.environ, CALLCENTER_SERVICE_DATA_DIR=data_dir, CALLCENTER_WEB_PORT="0",
               CALLCENTER_DATABASE_URL=f"sqlite:///{data_dir}/cc.sqlite",
               CALLCENTER_WEB_MAX_CONNECTIONS="4000", CALLCENTER_WEB_MAX_CONNECTIONS_PER_CLIENT="4000",
               CALLCENTER_WEB_MAX_STREAMS="3900", CALLCENTER_WEB_MAX_STREAMS_PER_USER="3900",  # one user here
               CALLCENTER_DIALER_ENABLED="false", CALLCENTER_COMPLAINTS_ENABLED="false")
    config = load_config(None, env=env)
    db = Database(config.database_url)
    migrate.upgrade(db.engine)
    with db.session() as s:
        s.add(User(username="wall", display_name="Wall", role="supervisor", interface="", language="en",
                   password_hash=hash_password(PASSWORD, n=2**10), active=True))

    async def main(stop):
        from twisted.internet import reactor  # the one runtime.run installed

        ami = FakeAmi(reactor)
        assembly = build(config, db=db, ami=ami)
        tracker, web = assembly.queuecalls, assembly.web
        broker, spent = web.app.broker, []
        publish = broker.publish

        def timed(*a):  # the server's own share: one push written to every client
            t = time.perf_counter()
            n = publish(*a)
            if n > 1:
                spent.append(time.perf_counter() - t)
            return n
        broker.publish = timed
        await tracker.start()
        await web.start()
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue = asyncio.Queue()
        threading.Thread(target=lambda: [loop.call_soon_threadsafe(commands.put_nowait, line)
                                         for line in sys.stdin], daemon=True).start()
        print(f"READY {web.port}", flush=True)
        seq = 0
        while True:
            line = (await commands.get()).split()
            if line[0] == "STOP":
                break
            if line[0] == "FIRE":   # FIRE <events> <gap>: joins, then hang-ups (not timed)
                n, gap = int(line[1]), float(line[2])
                uids = []
                for _ in range(n):
                    seq += 1
                    uid = f"b.{seq}"
                    uids.append(uid)
                    t0 = time.monotonic()
                    ami.emit(message(Event="QueueCallerJoin", Channel=f"PJSIP/trunk-{seq:08x}", Uniqueid=uid,
                                     Linkedid=uid, Queue="consultation", CallerIDNum=f"1380{seq:07d}",
                                     CallerIDName="", Position="1", Count="1"))
                    print(f"SENT {seq % 10000} {t0:.6f}", flush=True)
                    await asyncio.sleep(gap)
                for uid in uids:
                    ami.emit(message(Event="Hangup", Channel="x", Uniqueid=uid, Linkedid=uid, Cause="16"))
                await asyncio.sleep(gap)
                print(f"DONE {max(spent, default=0) * 1000:.1f} "
                      f"{sorted(spent)[len(spent) // 2] * 1000 if spent else 0:.1f}", flush=True)
                spent.clear()
        await web.stop()
        await tracker.stop()
    runtime.run(main)


# -- the clients ----------------------------------------------------------------------------
class SseClient(asyncio.Protocol):
    def __init__(self, request: bytes):
        self.request, self.chunks, self.ready = request, [], asyncio.get_running_loop().create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes):
        self.chunks.append((time.monotonic(), data))
        if not self.ready.done() and b"event: wallboard" in b"".join(c for _, c in self.chunks):
            self.ready.set_result(True)

    def connection_lost(self, exc):
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("stream closed"))

    def patches(self) -> list[tuple[float, bytes]]:
        """(time the event's last byte arrived, its data) per ``patch`` event."""
        out, buf, at = [], b"", 0.0
        for t, data in self.chunks:
            buf += data
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                at = t
                if b"event: patch" in event:
                    out.append((at, event.split(b"data: ", 1)[1]))
        return out


async def login(port: int) -> str:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /login HTTP/1.0\r\nHost: x\r\n\r\n")
    page = (await asyncio.wait_for(r.read(), 20)).decode()
    w.close()
    token = re.search(r'name="login_token" value="([^"]+)"', page).group(1)
    login_cookie = re.search(r"Set-Cookie: (cc_login=[^;]+)", page).group(1)
    body = f"username=wall&password={PASSWORD.replace('-', '%2D')}&login_token={token}".encode()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"POST /login HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + f"Cookie: {login_cookie}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    reply = (await asyncio.wait_for(r.read(), 20)).decode()
    w.close()
    return re.search(r"Set-Cookie: (cc_session=[^;]+)", reply).group(1)


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]


async def phase(proc, port: int, cookie: str, clients: int, events: int, gap: float) -> dict:
    loop = asyncio.get_running_loop()
    request = (f"GET /events/wallboard HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n"
               f"Cookie: {cookie}\r\n\r\n").encode()
    conns = []
    for _ in range(clients):
        _, proto = await loop.create_connection(lambda: SseClient(request), "127.0.0.1", port)
        conns.append(proto)
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in conns)), 60)
    proc.stdin.write(f"FIRE {events} {gap}\n".encode())
    proc.stdin.flush()
    sent: dict[int, float] = {}
    while True:
        line = (await loop.run_in_executor(None, proc.stdout.readline)).decode().split()
        if line[0] == "SENT":
            sent[int(line[1])] = float(line[2])
        elif line[0] == "DONE":
            write_max_ms, write_p50_ms = float(line[1]), float(line[2])
            break
    await asyncio.sleep(0.2)
    for c in conns:
        c.transport.close()
    lat, sizes, missing = [], [], 0
    for c in conns:
        seen = set()
        for at, data in c.patches():
            sizes.append(len(data))
            doc = json.loads(data)
            for caller in doc["set"].get("callers", []):
                n = int(caller["caller"][-4:])
                if n in sent and n not in seen:
                    seen.add(n)
                    lat.append(at - sent[n])
        missing += len(set(sent) - seen)
    return {"clients": clients, "events": len(sent), "samples": len(lat), "missing": missing,
            "p50_ms": round(pct(lat, 50) * 1000, 1), "p99_ms": round(pct(lat, 99) * 1000, 1),
            "max_ms": round(max(lat) * 1000, 1), "bytes_per_push": round(sum(sizes) / max(1, len(sizes))),
            "server_write_p50_ms": write_p50_ms, "server_write_max_ms": write_max_ms}


async def run(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([sys.executable, __file__, "--serve", tmp], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, cwd=str(ROOT))
        try:
            ready = proc.stdout.readline().decode().split()
            assert ready and ready[0] == "READY", ready
            port = int(ready[1])
            cookie = await login(port)
            results = {"1": [], str(args.clients): []}
            for r in range(args.rounds):
                for n in (1, args.clients):
                    res = await phase(proc, port, cookie, n, args.events, args.gap)
                    res["round"] = r + 1
                    results[str(n)].append(res)
                    print("RESULT", json.dumps(res), flush=True)
            many = results[str(args.clients)]
            print("SUMMARY", json.dumps({
                "floor_ms": 100.0,
                "p99_1_client_ms": [x["p99_ms"] for x in results["1"]],
                f"p99_{args.clients}_clients_ms": [x["p99_ms"] for x in many],
                "p99_over_floor": [round(x["p99_ms"] / 100.0, 2) for x in many],
                "bytes_per_push": [x["bytes_per_push"] for x in many],
                "server_write_p50_ms": [x["server_write_p50_ms"] for x in many],
                "missing": sum(x["missing"] for x in many)}), flush=True)
        finally:
            if proc.poll() is None:
                proc.stdin.write(b"STOP\n")
                proc.stdin.flush()
                proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=30)
    ap.add_argument("--gap", type=float, default=0.3, help="s between events (> the 100 ms coalescing)")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
