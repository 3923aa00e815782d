"""Recover queue calls from Asterisk's ``queue_log`` (PITFALLS 12, docs/asterisk-pitfalls.md: its only durable record).

AMI cannot replay what happened while the link was down; ``queue_log`` can.
Lines are ``epoch|callid|queue|agent|event|data…``; callid = caller Uniqueid,
agent = the member *name* (mapped back to the interface when we know it).
Times are whole seconds, so recovered rows are flagged ``gap`` and ``source =
queue_log``.  Pure: :func:`parse` and :func:`recover` take lines, not files;
:func:`read_since` reads the file and its rotated predecessors (``logger rotate``)
and says whether they reach back far enough.
"""
from __future__ import annotations

import bz2
import gzip
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..phones import canonical
from .reducer import QueueCallRecord

log = logging.getLogger(__name__)


@dataclass(slots=True)
class QLEvent:
    t: float
    callid: str
    queue: str
    agent: str
    event: str
    data: list[str]


def parse(lines: Iterable[str], where: str = "queue_log") -> list[QLEvent]:
    """Parse lines; malformed ones are logged (file:line) and skipped, not fatal."""
    out: list[QLEvent] = []
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line:
            continue
        parts = line.split("|")
        if len(parts) < 5:
            log.warning("%s:%d: not a queue_log line (expected epoch|callid|queue|agent|event)", where, n)
            continue
        try:
            t = float(parts[0])
        except ValueError:
            log.warning("%s:%d: bad epoch %r", where, n, parts[0][:20])
            continue
        out.append(QLEvent(t, parts[1], parts[2], parts[3], parts[4], parts[5:]))
    return out


def _f(data: list[str], i: int) -> float | None:
    try:
        return float(data[i])
    except (IndexError, ValueError):
        return None


_FINAL = {"COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "ABANDON", "EXITWITHTIMEOUT",
          "EXITEMPTY", "EXITWITHKEY"}


def recover(events: Iterable[QLEvent], start: float, end: float, *,
            member_interfaces: dict[tuple[str, str], str] | None = None,
            region: str = "CN") -> list[QueueCallRecord]:
    """Finished queue calls that entered or ended within ``[start, end]``."""
    members = member_interfaces or {}
    open_: dict[tuple[str, str], dict] = {}
    legs: dict[tuple[str, str], int] = {}
    out: list[QueueCallRecord] = []
    for e in events:
        if e.callid in ("NONE", "MANAGER", ""):
            continue
        key = (e.callid, e.queue)
        if e.event == "ENTERQUEUE":
            legs[key] = legs.get(key, 0) + 1
            open_[key] = {"entered": e.t, "number": e.data[1] if len(e.data) > 1 else "",
                          "position": int(_f(e.data, 2) or 0) or None, "leg": legs[key]}
            continue
        c = open_.get(key)
        if c is None:
            continue
        if e.event == "CONNECT":
            hold = _f(e.data, 0)
            c["answered"] = e.t
            c["wait"] = hold if hold is not None else e.t - c["entered"]
            c["agent_name"] = e.agent
            continue
        if e.event not in _FINAL:
            continue
        del open_[key]
        ended = e.t
        if not (start <= c["entered"] <= end or start <= ended <= end):
            continue
        talk = None
        if e.event in ("COMPLETEAGENT", "COMPLETECALLER"):
            outcome, talk = "answered", _f(e.data, 1)
        elif e.event == "TRANSFER":
            outcome, talk = "transferred", _f(e.data, 3)
        elif e.event == "ABANDON":
            outcome, c["wait"] = "abandoned", _f(e.data, 2)
        elif e.event == "EXITWITHKEY":
            outcome, c["wait"] = "redirected", _f(e.data, 3)
        else:  # EXITWITHTIMEOUT, EXITEMPTY
            outcome, c["wait"] = "timeout", _f(e.data, 2)
        name = c.get("agent_name", "")
        agent = members.get((e.queue, name), name) if name else ""
        if c.get("wait") is None:
            c["wait"] = (c.get("answered") or ended) - c["entered"]
        out.append(QueueCallRecord(
            uniqueid=e.callid, linkedid=e.callid, queue=e.queue, leg=c["leg"],
            caller_number=canonical(c["number"], region), caller_name="",
            entered_at=c["entered"], answered_at=c.get("answered"), ended_at=ended,
            wait_seconds=c["wait"], agent=agent, agent_name=name, talk_seconds=talk,
            outcome=outcome, position=c["position"], ivr_session_id=None, gap=True,
            source="queue_log"))
    return out


@dataclass(slots=True)
class CrashBound:
    """What queue_log says of the calls an Asterisk restart cut off (no final event)."""

    died_at: float                               # the old Asterisk's last line before QUEUESTART
    connected: dict[str, tuple[float, str]]      # callid -> (CONNECT time, member name)


def crash_bound(events: Iterable[QLEvent], start: float, end: float) -> CrashBound | None:
    """If Asterisk started again within ``[start, end]`` (a ``QUEUESTART`` line), the calls
    it cut off ended after the old one's last line before it; None when it did not."""
    last = None
    connected: dict[str, tuple[float, str]] = {}
    for e in events:
        if e.event == "QUEUESTART":
            if start <= e.t <= end and last is not None:
                return CrashBound(max(last, start), connected)
            continue
        last = e.t  # any line (a pause, a member added) says the old Asterisk was alive
        if e.event == "CONNECT":
            connected[e.callid] = (e.t, e.agent)
    return None


@dataclass(slots=True)
class Span:
    """What :func:`read_since` found: the events, and whether they cover the whole span."""

    events: list[QLEvent]
    complete: bool
    note: str = ""               # why not complete (or the files read)
    files: list[str] = field(default_factory=list)


_OPENERS = {"": open, ".gz": gzip.open, ".bz2": bz2.open}


def archives(path: str | Path) -> list[Path]:
    """``path`` and its rotated predecessors as main/logger.c names them: ``queue_log.N``
    (sequential, rotate) or ``queue_log.<epoch>`` (timestamp), optionally compressed
    by ``exec_after_rotate`` (``.gz``, ``.bz2``, ``.Z``)."""
    path = Path(path)
    rx = re.compile(re.escape(path.name) + r"\.(\d+)(\.gz|\.bz2|\.Z)?$")
    out = [path] if path.exists() else []
    if path.parent.is_dir():
        out += sorted(p for p in path.parent.iterdir() if rx.match(p.name))
    return out


def _suffix(p: Path) -> str:
    return next((sfx for sfx in (".gz", ".bz2", ".Z") if p.name.endswith(sfx)), "")


def _first(p: Path) -> QLEvent | None:
    with _OPENERS[_suffix(p)](p, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            ev = parse([line], str(p))
            if ev:
                return ev[0]
    return None


def _read(p: Path, max_bytes: int) -> tuple[str, bool]:
    """The file's text (the last ``max_bytes`` of a plain file); True when cut."""
    if _suffix(p):
        with _OPENERS[_suffix(p)](p, "rb") as fh:
            return fh.read().decode("utf-8", "replace"), False
    size = p.stat().st_size
    with p.open("rb") as fh:
        cut = size > max_bytes
        if cut:
            fh.seek(size - max_bytes)
            fh.readline()  # skip a partial line
        return fh.read().decode("utf-8", "replace"), cut


def read_since(path: str | Path, since: float, *, lookback: float = 86400,
               max_bytes: int = 64 << 20) -> Span:
    """Events with epoch >= ``since`` − ``lookback`` from ``path`` and its rotated
    predecessors, oldest first (blocking: run in a thread).

    ``complete`` is False when the files cannot prove they hold everything from
    ``since`` on: no file starts at or before ``since`` (the older ones were removed;
    unless the oldest begins with ``QUEUESTART``: Asterisk's first start), a
    numbered predecessor is missing or unreadable (``.Z``), or a file had to be cut.
    Only the first line of the older archives is read to order them."""
    files = archives(path)
    if not files:
        raise FileNotFoundError(str(path))
    problems: list[str] = []
    dated: list[tuple[float, Path, str]] = []
    for p in files:
        if _suffix(p) == ".Z":
            problems.append(f"{p.name} is compress(1)ed (not readable here)")
            continue
        e = _first(p)
        # an empty file is the new current one, after a rotation
        dated.append((float("inf"), p, "") if e is None else (e.t, p, e.event))
    dated.sort(key=lambda d: (d[0], d[1] != Path(path)))
    born = bool(dated) and dated[0][2] == "QUEUESTART"  # Asterisk's first start: nothing before
    nums = sorted(int(m.group(1)) for p in files  # numbered archives, not `timestamp` (epoch) ones
                  if (m := re.search(r"\.(\d+)(?:\.gz|\.bz2|\.Z)?$", p.name)) and int(m.group(1)) < 10**8)
    missing = sorted(set(range(nums[0], nums[-1] + 1)) - set(nums)) if nums else []
    if missing:
        problems.append(f"{Path(path).name}.{missing[0]} is missing")
    first = 0
    for i, (t, _, _) in enumerate(dated):
        if t <= since - lookback:
            first = i
    if not dated or (dated[0][0] > since and not born):
        start = "nothing" if not dated or dated[0][0] == float("inf") else f"epoch {dated[0][0]:.0f}"
        problems.append(f"the oldest queue_log line is at {start}, after the span's start "
                        f"(epoch {since:.0f}): older files were removed")
    events: list[QLEvent] = []
    read: list[str] = []
    for _, p, _ in dated[first:]:
        text, cut = _read(p, max_bytes)
        evs = parse(text.splitlines(), str(p))
        if cut and (not evs or evs[0].t > since):
            problems.append(f"{p.name} is over {max_bytes >> 20} MB; its start was not read")
        events += [e for e in evs if e.t >= since - lookback]
        read.append(p.name)
    return Span(events, not problems, "; ".join(problems), read)

