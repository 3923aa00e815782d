"""app_queue's state: queues, members, waiting entries, statistics, queue_log.

Numbers follow Asterisk 22: hold/talk averages are the running average
``(3*old + new) / 4`` in whole seconds, service-level counters per queue,
``QueueMember``/``QueueMemberStatus`` field names and order as recorded.
"""
from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass(eq=False)
class Member:
    interface: str
    name: str
    membership: str = "static"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    paused: bool = False
    reason: str = ""
    busy: bool = False  # in a call or ringing (ringinuse = no)
    in_call: bool = False
    wrapuptime: int = 0  # the member's own wrap-up seconds (Wrapuptime; 0 = the queue's)
    wrapup_until: float = 0.0  # LastCall + Wrapuptime: not rung before (app_queue's whole seconds)

    @property
    def status(self) -> int:
        return 2 if self.busy else 1

    @property
    def agent_id(self) -> str:
        # Local/<id>@sim-agent/n
        return self.interface.split("/", 1)[1].split("@", 1)[0]

    def event_fields(self, queue: str) -> list[tuple[str, str]]:
        """As in ``QueueMemberStatus``/``QueueMemberAdded`` events (traces 01, 10)."""
        return self._fields(queue, ("MemberName", "Interface"), ringinuse=True)

    def list_fields(self, queue: str) -> list[tuple[str, str]]:
        """As in the ``QueueMember`` items of ``QueueStatus`` (trace 08): other names, no Ringinuse."""
        return self._fields(queue, ("Name", "Location"), ringinuse=False)

    def _fields(self, queue: str, names: tuple[str, str], *, ringinuse: bool) -> list[tuple[str, str]]:
        fields = [
            ("Queue", queue),
            (names[0], self.name),
            (names[1], self.interface),
            ("StateInterface", self.interface),
            ("Membership", self.membership),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "1" if self.in_call else "0"),
            ("Status", str(self.status)),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.reason),
        ]
        if ringinuse:
            fields.append(("Ringinuse", "0"))
        fields.append(("Wrapuptime", str(self.wrapuptime)))
        return fields


@dataclass(eq=False)
class Entry:
    caller: Any  # Channel
    queue: "Queue"
    joined: float
    original_position: int
    priority: int = 0
    deadline: float | None = None
    ringing: Any = None  # the member being rung


@dataclass(eq=False)
class Queue:
    name: str
    strategy: str = "rrmemory"
    servicelevel: int = 30
    timeout: int = 15
    retry: int = 1
    wrapuptime: int = 0  # queues.conf wrapuptime: a member's own Wrapuptime wins (get_wrapuptime)
    members: list[Member] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    holdtime: int = 0
    talktime: int = 0
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0
    rr_next: int = 0

    def member(self, interface: str) -> Member | None:
        for m in self.members:
            if m.interface.lower() == interface.lower():
                return m
        return None

    def wrapup_of(self, member: Member) -> int:
        """app_queue ``get_wrapuptime``: the member's own, else the queue's."""
        return member.wrapuptime or self.wrapuptime

    def conf_lines(self) -> list[tuple[str, str]]:
        """This queue's section of queues.conf as GetConfig lists it."""
        lines = [("strategy", self.strategy), ("servicelevel", str(self.servicelevel)),
                 ("timeout", str(self.timeout)), ("retry", str(self.retry)), ("wrapuptime", str(self.wrapuptime)),
                 ("joinempty", "yes"), ("leavewhenempty", "no"), ("ringinuse", "no")]
        return lines + [("member", f"{m.interface},{m.penalty},{m.name}") for m in self.members
                        if m.membership == "static"]

    def position(self, entry: Entry) -> int:
        return self.entries.index(entry) + 1

    def pick_member(self, now: float = 0.0) -> Member | None:
        """rrmemory: the next available member after the one used last."""
        n = len(self.members)
        for i in range(n):
            idx = (self.rr_next + i) % n
            m = self.members[idx]
            if not m.paused and not m.busy and m.wrapup_until <= now:
                self.rr_next = idx + 1
                return m
        return None

    def record_connect(self, holdtime: int) -> None:
        self.holdtime = (self.holdtime * 3 + holdtime) // 4 if self.holdtime else holdtime
        if holdtime <= self.servicelevel:
            self.completed_in_sl += 1

    def record_complete(self, talktime: int) -> None:
        self.completed += 1
        self.talktime = (self.talktime * 3 + talktime) // 4 if self.talktime else talktime

    def record_abandon(self, holdtime: int) -> None:
        self.abandoned += 1
        if holdtime <= self.servicelevel:
            self.abandoned_in_sl += 1

    @property
    def sl_perf(self) -> str:
        return f"{(100.0 * self.completed_in_sl / self.completed) if self.completed else 0.0:.1f}"

    @property
    def sl_perf2(self) -> str:
        total = self.completed + self.abandoned
        within = self.completed_in_sl + self.abandoned_in_sl
        return f"{(100.0 * within / total) if total else 0.0:.1f}"

    def params_fields(self) -> list[tuple[str, str]]:
        return [
            ("Queue", self.name), ("Max", "0"), ("Strategy", self.strategy),
            ("Calls", str(len(self.entries))), ("Holdtime", str(self.holdtime)),
            ("TalkTime", str(self.talktime)), ("Completed", str(self.completed)),
            ("Abandoned", str(self.abandoned)), ("ServiceLevel", str(self.servicelevel)),
            ("ServicelevelPerf", self.sl_perf), ("ServicelevelPerf2", self.sl_perf2), ("Weight", "0"),
        ]

    def queue_vars(self) -> list[tuple[str, str]]:
        """The QUEUE* channel variables (setqueuevar=yes)."""
        return [
            ("QUEUENAME", self.name), ("QUEUEMAX", "0"), ("QUEUESTRATEGY", self.strategy),
            ("QUEUECALLS", str(len(self.entries))), ("QUEUEHOLDTIME", str(self.holdtime)),
            ("QUEUETALKTIME", str(self.talktime)), ("QUEUECOMPLETED", str(self.completed)),
            ("QUEUEABANDONED", str(self.abandoned)), ("QUEUESRVLEVEL", str(self.servicelevel)),
            ("QUEUESRVLEVELPERF", self.sl_perf),
        ]


class QueueLog:
    """Asterisk's queue_log: ``epoch|callid|queue|agent|event|data...`` lines, flushed per line."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._fh: TextIO | None = None
        self.lines: list[str] = []

    def write(self, t: float, callid: str, queue: str, agent: str, event: str, *data: Any) -> None:
        line = "|".join([str(int(t)), callid, queue, agent, event, *[str(d) for d in data]])
        self.lines.append(line)
        if len(self.lines) > 10000:
            del self.lines[:5000]
        if self.path is not None:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def rotate(self, strategy: str = "sequential", *, compress: bool = False,
               now: float | None = None) -> Path | None:
        """``logger rotate`` (main/logger.c ``rotate_file``): the file is renamed and a new
        one is started at the next line.  ``sequential`` (Asterisk's default): the first
        free ``queue_log.N`` (the oldest keeps ``.0``); ``rotate``: ``.N`` -> ``.N+1`` and
        the file becomes ``.0`` (a ``.gz`` suffix follows its file); ``timestamp``:
        ``queue_log.<epoch>``.  ``compress`` is ``exec_after_rotate=gzip ${filename}``
        (gzip keeps the file's mtime).  Returns the archived file's path."""
        self.close()
        if self.path is None or not self.path.exists():
            return None
        p = self.path
        suffixes = ("", ".gz", ".bz2", ".Z")

        def taken(n: int) -> str | None:
            return next((sfx for sfx in suffixes if Path(f"{p}.{n}{sfx}").exists()), None)

        if strategy == "sequential":
            n = 0
            while Path(f"{p}.{n}").exists():
                n += 1
            new = Path(f"{p}.{n}")
        elif strategy == "rotate":
            n = 0
            while taken(n) is not None:
                n += 1
            for y in range(n, 0, -1):
                sfx = taken(y - 1)
                os.rename(f"{p}.{y - 1}{sfx}", f"{p}.{y}{sfx}")
            new = Path(f"{p}.0")
        elif strategy == "timestamp":
            new = Path(f"{p}.{int(now if now is not None else os.path.getmtime(p))}")
        else:
            raise ValueError(f"unknown rotatestrategy {strategy!r} (sequential, rotate, timestamp)")
        os.rename(p, new)
        gz = Path(f"{new}.gz")
        if compress and not gz.exists():  # gzip does not overwrite (sequential reuses .0 then)
            st = os.stat(new)
            with open(new, "rb") as src, gzip.open(gz, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.utime(gz, (st.st_atime, st.st_mtime))
            os.unlink(new)
            new = gz
        return new
