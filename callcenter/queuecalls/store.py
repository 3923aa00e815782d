"""Writing queue calls: idempotent, set-based, run on a worker thread (``db.run``).

A batch is merged by (uniqueid, queue, leg) in one SELECT + bulk INSERT/UPDATE.
Merge rule: a measured row (``gap`` false) is never overwritten by a
reconstructed one (resync guess, ``queue_log``); otherwise the newer wins, and
an ``unknown`` outcome is always replaced.  So replaying the same trace, a
resync after a reconnect, or a queue_log recovery never counts a call twice.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from .models import AmiOutage, QueueCall
from .reducer import QueueCallRecord


def _ts(v: float | None) -> dt.datetime | None:
    return None if v is None else dt.datetime.fromtimestamp(v, dt.timezone.utc)


def row_of(r: QueueCallRecord, answer_target: float) -> dict:
    return {
        "uniqueid": r.uniqueid, "linkedid": r.linkedid or r.uniqueid, "queue": r.queue,
        "leg": r.leg, "caller_number": (r.caller_number or "")[:32],
        "caller_name": (r.caller_name or "")[:128], "entered_at": _ts(r.entered_at),
        "answered_at": _ts(r.answered_at), "ended_at": _ts(r.ended_at),
        "wait_seconds": r.wait_seconds, "agent": r.agent or "", "agent_name": r.agent_name or "",
        "talk_seconds": r.talk_seconds, "outcome": r.outcome,
        "within_target": r.within(answer_target), "position": r.position,
        "ivr_session_id": r.ivr_session_id, "gap": bool(r.gap), "source": r.source,
        "direction": r.direction, "campaign_id": r.campaign_id, "attempt_id": r.attempt_id,
    }


def write_calls(session: Session, records: Iterable[QueueCallRecord],
                answer_target: float) -> tuple[int, int]:
    """Upsert ``records``; returns (inserted, updated)."""
    rows: dict[tuple, dict] = {}
    for r in records:
        row = row_of(r, answer_target)
        key = (row["uniqueid"], row["queue"], row["leg"])
        old = rows.get(key)
        if old is None or replaces(row, old):
            rows[key] = row
    if not rows:
        return 0, 0
    uids = sorted({k[0] for k in rows})
    existing: dict[tuple, tuple] = {}
    for i in range(0, len(uids), 500):
        q = select(QueueCall.id, QueueCall.uniqueid, QueueCall.queue, QueueCall.leg, QueueCall.gap,
                   QueueCall.outcome, QueueCall.direction, QueueCall.campaign_id, QueueCall.attempt_id,
                   QueueCall.caller_number, QueueCall.caller_name).where(QueueCall.uniqueid.in_(uids[i:i + 500]))
        for rid, uid, queue, leg, gap, outcome, *outbound in session.execute(q):
            existing[(uid, queue, leg)] = (rid, gap, outcome, outbound)
    new, changed = [], []
    for key, row in rows.items():
        old = existing.get(key)
        if old is None:
            new.append(row)
            continue
        rid, old_gap, old_outcome, (direction, campaign, attempt, number, name) = old
        if old_outcome != "unknown" and not old_gap and row["gap"]:
            continue  # keep the measured row
        if row["outcome"] == "unknown" and old_outcome != "unknown":
            continue
        if direction == "outbound" and row["attempt_id"] is None:
            # queue_log does not know the attempt: a recovered row keeps what was known live
            row = {**row, "direction": direction, "campaign_id": campaign, "attempt_id": attempt,
                   "caller_number": number, "caller_name": name}
        changed.append({"id": rid, **row})
    if new:
        session.execute(insert(QueueCall), new)
    if changed:
        session.execute(update(QueueCall), changed)
    return len(new), len(changed)


def replaces(row: dict, old: dict) -> bool:
    """The merge rule: does ``row`` (outcome, gap) replace ``old`` for the same call?"""
    if old["outcome"] == "unknown":
        return True
    if row["outcome"] == "unknown":
        return False
    return not (row["gap"] and not old["gap"])


def record_outage(session: Session, start: float, end: float | None, recovered: bool,
                  recovered_calls: int = 0, note: str = "") -> int:
    o = AmiOutage(start=_ts(start), end=_ts(end), recovered_from_queue_log=recovered,
                  recovered_calls=recovered_calls, note=note[:256])
    session.add(o)
    session.flush()
    return o.id


def last_seen(session: Session) -> float | None:
    """Epoch of the newest stored queue-call moment (start of a restart outage)."""
    v = session.execute(select(func.max(func.coalesce(QueueCall.ended_at, QueueCall.entered_at)))).scalar()
    if v is None:
        return None
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.timezone.utc)
    return v.timestamp()
