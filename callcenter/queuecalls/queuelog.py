"""Recover queue calls from Asterisk's ``queue_log`` (PITFALLS 12, docs/asterisk-pitfalls.md: its only durable record).

AMI cannot replay what happened while the link was down; ``queue_log`` can.
Lines are ``epoch|callid|queue|agent|event|data…``; callid = caller Uniqueid,
agent = the member *name* (mapped back to the interface when we know it).
Times are whole seconds, so recovered rows are flagged ``gap`` and ``source =
queue_log``.  Pure: :func:`parse` and :func:`recover` take lines, not files.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
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


def read_tail(path: str | Path, since: float, *, max_bytes: int = 64 << 20) -> list[QLEvent]:
    """Events with epoch >= ``since`` − 1 day from the end of the file (blocking: run in a thread)."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size > max_bytes:
            fh.seek(size - max_bytes)
            fh.readline()  # skip a partial line
        text = fh.read().decode("utf-8", "replace")
    events = parse(text.splitlines(), str(path))
    return [e for e in events if e.t >= since - 86400]
