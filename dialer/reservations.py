"""Agents reserved for progressive calls: taken out of inbound distribution first.

Progressive mode promises that no answered patient waits for nobody.  Counting free
agents when the patient is dialled is not enough: during the 10-20 s of ringing an
inbound caller takes the agent.  So before the Originate one free member is
*reserved*: a row in ``agent_reservations`` (unique interface, so two dialer
instances never take one agent) is committed, then the member is paused in all its
queues with ``QueuePause Reason: dialer:<attempt>``.  When the answered patient joins
the queue (with ``QUEUE_PRIO`` above inbound callers) the member is unpaused and
app_queue offers it to the patient first.  Whatever happens to the attempt (not
answered, patient hung up, connected, AMI drop, crash) the reservation is released:
the member unpaused if we paused it, the row deleted.  On start-up and after every
AMI login, this instance's rows left over are released, and so are members still
paused with a ``dialer:`` reason that no reservation row explains.
"""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .models import AgentReservation
from .timeutil import to_dt

REASON_PREFIX = "dialer:"


def reason_for(attempt_id: int) -> str:
    return f"{REASON_PREFIX}{attempt_id}"


def is_dialer_reason(reason: str) -> bool:
    return (reason or "").startswith(REASON_PREFIX)


def reserved_interfaces(session: Session) -> set[str]:
    """Every reserved interface, any instance (they are paused, or about to be)."""
    return set(session.scalars(select(AgentReservation.interface)))


def reserve(session: Session, candidates: list[str], *, queue: str, attempt_id: int, instance: str,
            now: float) -> str | None:
    """Reserve the first candidate nobody holds; None when all are taken."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    for iface in candidates:
        got = session.execute(
            dialect_insert(AgentReservation).values(interface=iface, queue=queue, attempt_id=attempt_id,
                                                    instance=instance, reserved_at=to_dt(now))
            .on_conflict_do_nothing(index_elements=["interface"]).returning(AgentReservation.id)).first()
        if got is not None:
            return iface
    return None


def release(session: Session, attempt_id: int) -> str | None:
    """Delete the attempt's reservation; returns its interface (None: it had none)."""
    row = session.scalar(select(AgentReservation).where(AgentReservation.attempt_id == attempt_id))
    if row is None:
        return None
    iface = row.interface
    session.delete(row)
    return iface


def held(session: Session) -> list[tuple[int, str]]:
    """(attempt, interface) of every reservation, any instance."""
    return [(r.attempt_id, r.interface) for r in session.scalars(select(AgentReservation))]


def of_instance(session: Session, instance: str) -> list[tuple[int, str]]:
    """(attempt, interface) reserved by one dialer instance."""
    return [(r.attempt_id, r.interface) for r in session.scalars(
        select(AgentReservation).where(AgentReservation.instance == instance).order_by(AgentReservation.id))]


def drop(session: Session, attempt_ids: list[int]) -> int:
    if not attempt_ids:
        return 0
    res = session.execute(delete(AgentReservation).where(AgentReservation.attempt_id.in_(attempt_ids)))
    return res.rowcount or 0


def stale(session: Session, before: float) -> list[tuple[int, str, str]]:
    """(attempt, interface, instance) reserved before ``before`` whose attempt is over
    (any instance: a dialer that died for good leaves its rows behind)."""
    from .models import Attempt

    q = (select(AgentReservation.attempt_id, AgentReservation.interface, AgentReservation.instance)
         .join(Attempt, Attempt.id == AgentReservation.attempt_id, isouter=True)
         .where(AgentReservation.reserved_at < to_dt(before))
         .where((Attempt.id.is_(None)) | Attempt.state.in_(("ended", "unknown"))))
    return [tuple(r) for r in session.execute(q)]
