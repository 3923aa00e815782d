"""Test harness: a small AMI client over real TCP, a clock driver, and the trace comparator.

The PBX runs on ``twisted.internet.task.Clock``; :meth:`Harness.advance_to` steps the
clock timer by timer and, after each step, waits until every byte the server wrote has
reached the client, so each received message is stamped with the exact simulated time.
"""
from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from twisted.internet import task

from callcenter.ami.codec import Message, Parser, encode
from callcenter.ami.tracefile import AmiTrace, read_ami, traces_dir
from callcenter.simulator import SimConfig, SimulatedPBX


@dataclass
class Received:
    t: float
    msg: Message


class Harness:
    def __init__(self, pbx: SimulatedPBX, clock: task.Clock):
        self.pbx, self.clock = pbx, clock
        self.received: list[Received] = []
        self.nbytes = 0
        self.closed = False
        self.t0 = clock.seconds()

    @classmethod
    async def create(cls, tmp_path, epoch: float = 1795346592.0, seed: int = 1, config: SimConfig | None = None):
        clock = task.Clock()
        clock.advance(epoch)
        # the recording machine's spool had recordings/ (made by trace 06's MixMonitor), so the
        # RECORD FILE of trace 07c found its directory
        (tmp_path / "spool" / "recordings").mkdir(parents=True, exist_ok=True)
        pbx = SimulatedPBX(clock, seed=seed, spool_dir=tmp_path / "spool", config=config,
                           queue_log=tmp_path / "queue_log")
        await pbx.start("127.0.0.1", 0)
        return cls(pbx, clock)

    async def connect(self) -> None:
        self.t0 = self.clock.seconds()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.pbx.ami_port)
        self.parser = Parser(expect_banner=True)
        self._task = asyncio.ensure_future(self._read())
        await self.settle()

    async def _read(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                self.closed = True
                return
            self.nbytes += len(data)
            for m in self.parser.feed(data):
                self.received.append(Received(self.clock.seconds() - self.t0, m))

    def server_bytes(self) -> int:
        return self.pbx.ami.total_bytes if self.pbx.ami else 0

    quiet = 0.0  # >0: also wait until nothing moved for this long (FastAGI round trips)

    async def settle(self) -> None:
        for _ in range(20):
            await self._settle_bytes()
            if not self.quiet:
                return
            before = (self.nbytes, len(self.clock.getDelayedCalls()))
            await asyncio.sleep(self.quiet)
            await self._settle_bytes()
            if (self.nbytes, len(self.clock.getDelayedCalls())) == before:
                return

    async def _settle_bytes(self) -> None:
        for _ in range(2000):
            await asyncio.sleep(0)
            if self.nbytes >= self.server_bytes() and (self.parser.banner is not None or not self.pbx.ami.sessions):
                # one more turn so a close is noticed
                await asyncio.sleep(0)
                return
            await asyncio.sleep(0.001)
        raise AssertionError("AMI bytes never arrived")

    async def send(self, headers) -> None:
        before = self.server_bytes()
        self.writer.write(encode(list(headers)))
        await self.writer.drain()
        # let the server read and answer (a wrong-secret Login answers only 1 s later)
        for _ in range(200):
            await asyncio.sleep(0.001)
            if self.server_bytes() > before or self.closed:
                break
        await self.settle()

    async def advance_to(self, t_rel: float) -> None:
        """Run the simulation until ``t0 + t_rel``, timer by timer."""
        end = self.t0 + t_rel
        while True:
            calls = [c for c in self.clock.getDelayedCalls() if c.active()]
            nxt = min((c.getTime() for c in calls), default=None)
            if nxt is None or nxt > end + 1e-9:
                break
            self.clock.advance(max(0.0, nxt - self.clock.seconds()))
            await self.settle()
        if end > self.clock.seconds():
            self.clock.advance(end - self.clock.seconds())
        await self.settle()

    async def close(self) -> None:
        if hasattr(self, "writer"):
            self.writer.close()
            self._task.cancel()
        await self.pbx.stop()

    def messages(self) -> list[Message]:
        return [r.msg for r in self.received]


async def replay(h: Harness, trace: AmiTrace, setup=None, schedule=()) -> None:
    """Send the trace's actions at their recorded times (relative to connect)."""
    # continue the trace's channel and Uniqueid counters, so actions naming channels match
    for e in trace.received:
        m = e.message
        if m is not None and m.event == "Newchannel":
            mm = CHAN.match(m["Channel"])
            if mm:
                h.pbx._local_seq = int(mm.group(2), 16)
                h.pbx._uid_seq = int(m["Uniqueid"].split(".")[1])
            break
    # rrmemory's position carries over between recordings: start where the trace starts
    seen: set[str] = set()
    for e in trace.received:
        m = e.message
        if m is not None and m.event == "AgentCalled" and m["Queue"] not in seen:
            seen.add(m["Queue"])
            q = h.pbx.queues.get(m["Queue"])
            if q is not None:
                ifaces = [x.interface for x in q.members]
                if m["Interface"] in ifaces:
                    q.rr_next = ifaces.index(m["Interface"])
    if setup:
        setup(h.pbx)
    await h.connect()
    for t, fn in schedule:
        h.clock.callLater(t, fn, h.pbx)
    end = max((e.t for e in trace.entries), default=0.0)
    for e in trace.entries:
        if e.kind != "sent":
            continue
        await h.advance_to(e.t)
        await h.send(e.message.headers)
    await h.advance_to(end + 0.5)


# ----------------------------------------------------------------------------- comparison
UID = re.compile(r"^\d{9,11}\.\d+$")
CHAN = re.compile(r"^(Local/[^@;]+@[a-z-]+)-([0-9a-f]{8})(;[12])$")
SIGNIFICANT = re.compile(r"^(Queue(CallerJoin|CallerLeave|CallerAbandon|MemberStatus)|Agent\w+|Dial(Begin|End)|Hangup|"
                         r"OriginateResponse|Bridge(Create|Enter|Leave|Destroy)|MixMonitor\w+|AGIExec(Start|End))$")
KEYS = ("DialStatus", "Cause", "Reason", "Queue", "Interface", "Position", "Count", "Response", "Status",
        "OriginalPosition", "BridgeNumChannels", "Command", "ResultCode", "Result")
VOLATILE = {"SessionID", "EventTV", "SessionTV", "LocalAddress", "RemoteAddress", "Timestamp", "LoginTime",
            "LastCall", "LastPause", "Uptime", "LastReload", "BridgeUniqueid", "BridgeId", "CommandId"}


def shape(v: str) -> str:
    if v == "":
        return "empty"
    if UID.match(v):
        return "uid"
    if re.fullmatch(r"-?\d+", v):
        return "int"
    if re.fullmatch(r"-?\d+\.\d", v):
        return "dec1"
    if re.fullmatch(r"\d\d:\d\d:\d\d", v):
        return "hms"
    if CHAN.match(v):
        return "chan"
    return "text"


class Aliaser:
    def __init__(self):
        self.map: dict[str, str] = {}
        self.n = defaultdict(int)

    def alias(self, kind: str, v: str) -> str:
        key = (kind, v)
        if key not in self.map:
            self.map[key] = f"{kind}{self.n[kind]}"
            self.n[kind] += 1
        return self.map[key]

    def norm(self, k: str, v: str) -> str:
        if UID.match(v):
            return self.alias("U", v)
        m = CHAN.match(v)
        if m:
            return f"{m.group(1)}-{self.alias('C', m.group(1) + m.group(2))}{m.group(3)}"
        if k in VOLATILE:
            return f"<{shape(v)}>"
        return v


def events_of(msgs: list[Message]) -> list[Message]:
    return [m for m in msgs if m.event]


def significant(stream: list[tuple[float, Message]], ignore: frozenset = frozenset()) -> list[list[str]]:
    """Bursts (events within 20 ms) of significant events, each burst a sorted list of keys."""
    al = Aliaser()
    # alias in order of first appearance over the whole stream, so both sides number alike
    for _, m in stream:
        for k, v in m.headers:
            al.norm(k, v)
    bursts: list[list[str]] = []
    last_t = None
    for t, m in stream:
        ev = m.event
        if not ev or not SIGNIFICANT.match(ev):
            continue
        key = ev + " " + " ".join(
            f"{k}={al.norm(k, m[k])}" for k in ("Channel", "DestChannel") + KEYS if m.get(k) is not None and k not in ignore)
        if last_t is None or t - last_t > 0.02:
            bursts.append([])
        bursts[-1].append(key)
        last_t = t
    return [sorted(b) for b in bursts]


def header_sets(msgs: list[Message]) -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for m in msgs:
        name = m.event or ("Response:" + (m.get("Response") or ""))
        out[name].add(tuple(m.keys()))
    return out


def shapes(msgs: list[Message]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in msgs:
        name = m.event or "Response"
        for k, v in m.headers:
            out[(name, k)].add(shape(v))
    return out


def all_trace_header_sets() -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for p in sorted(traces_dir().glob("*.ami")):
        for k, v in header_sets([e.message for e in read_ami(p).received if e.message]).items():
            out[k] |= v
    return out


def compare(trace: AmiTrace, received: list[Received], *, require_types: bool = True,
            sequence: bool = True, ignore_keys: tuple[str, ...] = ()) -> list[str]:
    """Differences between a recorded trace and the simulator's stream (empty = same)."""
    problems: list[str] = []
    tmsgs = [e.message for e in trace.received if e.message]
    smsgs = [r.msg for r in received]
    t_sets, s_sets = header_sets(tmsgs), header_sets(smsgs)
    everywhere = all_trace_header_sets()
    for name, sset in s_sets.items():
        allowed = t_sets.get(name) or everywhere.get(name)
        if not allowed:
            problems.append(f"simulator sent {name}, which no trace has")
            continue
        for keys in sset:
            if keys not in allowed:
                best = min(allowed, key=lambda a: len(set(a) ^ set(keys)))
                problems.append(f"{name}: header names/order differ: sim {list(keys)} vs trace {list(best)}")
    if require_types:
        for name in t_sets:
            if name not in s_sets and (name.startswith("Response") or SIGNIFICANT.match(name)
                                       or name in ("Newchannel", "Newexten", "VarSet", "Newstate", "LocalBridge")):
                problems.append(f"trace has {name}, simulator sent none")
    t_shapes, s_shapes = shapes(tmsgs), shapes(smsgs)
    for key, ss in s_shapes.items():
        ts = t_shapes.get(key)
        if ts and len(ts) == 1 and ss != ts and "text" not in ts and "empty" not in ts:
            problems.append(f"{key[0]} {key[1]}: value format {sorted(ss)} vs trace {sorted(ts)}")
    if sequence:
        ig = frozenset(ignore_keys)
        tb = significant([(e.t, e.message) for e in trace.received if e.message], ig)
        sb = significant([(r.t, r.msg) for r in received], ig)
        tflat = [x for b in tb for x in b]
        sflat = [x for b in sb for x in b]
        if tb != sb:
            import difflib

            diff = list(difflib.unified_diff(
                [" | ".join(b) for b in tb], [" | ".join(b) for b in sb], "trace", "simulator", lineterm="", n=1))
            if sorted(tflat) == sorted(sflat):
                diff.insert(0, "(same significant events, different grouping/order)")
            problems.append("significant event sequence differs:\n" + "\n".join(diff))
    return problems


def agi_close_time(path) -> float | None:
    """When the recorded FastAGI server closed the connection (``# t=S closing connection``)."""
    m = re.search(rb"^# t=([0-9.]+) closing connection", Path(path).read_bytes(), re.M)
    return float(m.group(1)) if m else None


class ScriptedAgiServer:
    """A FastAGI server that plays the server side of a recorded ``.agi`` transcript."""

    def __init__(self, entries, clock=None, close_at: float | None = None):
        """With ``clock`` (the PBX's task.Clock) commands keep their recorded spacing in PBX time,
        and the connection is closed at ``close_at`` (the transcript's ``closing connection``)."""
        self.commands = [(e.t, e.raw) for e in entries if e.direction == ">>>"]
        self.t_env = next((e.t for e in entries if e.direction == "<<<"), 0.0)
        self.clock = clock
        self.close_at = close_at
        self.env: dict[str, str] = {}
        self.replies: list[str] = []
        self.done = asyncio.Event()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer) -> None:
        try:
            while True:
                line = (await reader.readline()).decode()
                if not line.strip():
                    break
                k, _, v = line.rstrip("\n").partition(": ")
                self.env[k] = v
            start = self.clock.seconds() - self.t_env if self.clock else 0.0
            for t, cmd in self.commands:
                await self._until(start + t)
                writer.write(cmd)
                await writer.drain()
                while True:
                    reply = (await reader.readline()).decode()
                    if not reply:
                        return
                    self.replies.append(reply)
                    if reply[:4] in ("200 ", "510 ", "511 ") or reply.startswith("520 "):
                        break
            if self.close_at is not None:
                await self._until(start + self.close_at)
        finally:
            writer.close()
            self.done.set()

    async def _until(self, when: float) -> None:
        """Wait for PBX time ``when`` (no-op without a clock or when it has passed)."""
        if self.clock is None or when <= self.clock.seconds() + 0.01:
            return
        fut = asyncio.get_running_loop().create_future()
        dc = self.clock.callLater(when - self.clock.seconds(), lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            if dc.active():
                dc.cancel()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()
