"""Writing queue calls: idempotent, set-based, run on a worker thread (``db.run``).

A batch (one Asterisk server's) is merged by (server, uniqueid, queue, leg) in one
SELECT + bulk INSERT/UPDATE.
Merge rule: a measured row (``gap`` false) is never overwritten by a
reconstructed one (resync guess, ``queue_log``); otherwise the newer wins, and
an ``unknown`` outcome is always replaced, and a stored caller name or IVR session
is never blanked by a row that lacks them (queue_log has neither).  So replaying the
same trace, a resync after a reconnect, or a queue_log recovery never counts a call
twice.  The tracker's checkpoint is written in the same transaction as a batch
(:func:`write_batch`).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ivr_flows.models import IvrSession

from . import rollup_adds, rollups
from .models import AmiOutage, QueueCall, TrackerCheckpoint
from .reducer import QueueCallRecord



def _ts(v: float | None) -> dt.datetime | None:
    return None if v is None else dt.datetime.fromtimestamp(v, dt.timezone.utc)


def row_of(r: QueueCallRecord, answer_target: float, server: str) -> dict:
    return {
        "server": server, "uniqueid": r.uniqueid, "linkedid": r.linkedid or r.uniqueid, "queue": r.queue,
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
                answer_target: float, server: str) -> tuple[int, int]:
    """Upsert ``records`` of Asterisk ``server``, and recount the rollup slots they touched in
    the same transaction (:func:`.rollups.settle`; a batch of new calls only, on SQLite: the
    new calls counted and added, :mod:`.rollup_adds`); returns (inserted, updated)."""
    rows: dict[tuple, dict] = {}
    for r in records:
        row = row_of(r, answer_target, server)
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
                   QueueCall.outcome, QueueCall.ivr_session_id, QueueCall.direction, QueueCall.campaign_id,
                   QueueCall.attempt_id, QueueCall.caller_number,
                   QueueCall.caller_name).where(QueueCall.server == server,
                                                QueueCall.uniqueid.in_(uids[i:i + 500]))
        for rid, uid, queue, leg, gap, outcome, sid, *outbound in session.execute(q):
            existing[(uid, queue, leg)] = (rid, gap, outcome, sid, outbound)
    new, changed = [], []
    for key, row in rows.items():
        old = existing.get(key)
        if old is None:
            new.append(row)
            continue
        rid, old_gap, old_outcome, old_sid, (direction, campaign, attempt, number, name) = old
        if old_outcome != "unknown" and not old_gap and row["gap"]:
            continue  # keep the measured row
        if row["outcome"] == "unknown" and old_outcome != "unknown":
            continue
        if direction == "outbound" and row["attempt_id"] is None:
            # queue_log does not know the attempt: a recovered row keeps what was known live
            row = {**row, "direction": direction, "campaign_id": campaign, "attempt_id": attempt,
                   "caller_number": number, "caller_name": name}
        # a rebuilt row (queue_log has no caller name, no IVR link) keeps what was known
        changed.append({"id": rid, **row, "caller_name": row["caller_name"] or name or "",
                        "ivr_session_id": row["ivr_session_id"] or old_sid})
    if new and not changed and rollup_adds.begin(session):  # (SQLite) counted alone, added to the rollups
        conn = session.connection()  # Core statements: no ORM layer around each of the adds' ~20
        rollup_adds.add(conn, conn.execute(insert(QueueCall).returning(QueueCall.id), new).scalars())
        return len(new), 0
    if new:
        session.execute(insert(QueueCall), new)
    if changed:
        session.execute(update(QueueCall), changed)
    rollups.settle(session)
    return len(new), len(changed)


def write_batch(session: Session, records: Iterable[QueueCallRecord], answer_target: float,
                checkpoint: float | None, server: str) -> tuple[int, int]:
    """:func:`write_calls` and, in the same transaction, the server's checkpoint (when given)."""
    n = write_calls(session, records, answer_target, server)
    if checkpoint is not None:
        save_checkpoint(session, checkpoint, server)
    return n


def save_checkpoint(session: Session, t: float, server: str) -> None:
    """Move ``server``'s checkpoint to ``t`` (never backwards: a late batch must not rewind it)."""
    row = session.get(TrackerCheckpoint, server)
    if row is None:
        session.add(TrackerCheckpoint(server=server, heard_at=_ts(t)))
    elif _epoch(row.heard_at) < t:
        row.heard_at = _ts(t)


def load_checkpoint(session: Session, server: str) -> float | None:
    row = session.get(TrackerCheckpoint, server, populate_existing=True)
    return None if row is None else _epoch(row.heard_at)


def known_of(session: Session, uniqueids: list[str], server: str) -> dict[str, tuple[str, int | None]]:
    """What stored rows and ``ivr_sessions`` know of these calls: uniqueid -> (caller
    name, IVR session id), for rows rebuilt from queue_log (which has neither)."""
    out: dict[str, tuple[str, int | None]] = {}
    for i in range(0, len(uniqueids), 500):
        chunk = uniqueids[i:i + 500]
        for uid, name, sid in session.execute(
                select(QueueCall.uniqueid, QueueCall.caller_name, QueueCall.ivr_session_id)
                .where(QueueCall.server == server, QueueCall.uniqueid.in_(chunk))):
            old = out.get(uid, ("", None))
            out[uid] = (old[0] or name or "", old[1] or sid)
        for uid, sid in session.execute(
                select(IvrSession.uniqueid, func.max(IvrSession.id))
                .where(IvrSession.uniqueid.in_(chunk)).group_by(IvrSession.uniqueid)):
            old = out.get(uid, ("", None))
            out[uid] = (old[0], old[1] or sid)
    return out


def _epoch(v: dt.datetime | str) -> float:
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.timezone.utc)
    return v.timestamp()


def replaces(row: dict, old: dict) -> bool:
    """The merge rule: does ``row`` (outcome, gap) replace ``old`` for the same call?"""
    if old["outcome"] == "unknown":
        return True
    if row["outcome"] == "unknown":
        return False
    return not (row["gap"] and not old["gap"])


def record_outage(session: Session, start: float, end: float | None, recovered: bool,
                  recovered_calls: int = 0, note: str = "", server: str = "default") -> int:
    o = AmiOutage(server=server, start=_ts(start), end=_ts(end), recovered_from_queue_log=recovered,
                  recovered_calls=recovered_calls, note=note[:256])
    session.add(o)
    session.flush()
    return o.id


