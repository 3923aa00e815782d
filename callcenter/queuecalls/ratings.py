"""Post-call satisfaction ratings, stored on the queue call they rate.

When the agent hangs up, ``Queue(${QUEUE},c)`` lets the caller continue in the dialplan to
the rating flow (``ivr_flows/satisfaction.yaml``, node type ``rating``).  Its answer lands
here: on the caller channel's answered queue call in that queue (key: the caller's
Uniqueid = the call's Linkedid, and the queue; the latest leg), whose ``agent`` is the
agent who answered.  What the caller did is stored as it happened, never guessed:
``rated`` (key + level on the flow's scale), ``no_input``, ``invalid`` (only keys off the
scale), ``hangup`` (gone before rating).  A caller who hangs up while still talking to
the agent never reaches the flow: nothing is stored (``rating_outcome`` stays empty).

An unsatisfied rating of a call in one of the ``flag_queues`` (``[complaints]
rating_flag_queues``; the complaint queue) reopens or flags the tickets linked to that
call, in the same transaction (:meth:`Complaints.flag_unsatisfied_call`).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sqlalchemy import select

from callcenter.errors import InvalidInput
from callcenter.ports import UnsatisfiedCalls, require

from .models import QueueCall

log = logging.getLogger(__name__)

LEVELS = ("satisfied", "neutral", "unsatisfied")
OUTCOMES = ("rated", "no_input", "invalid", "hangup")
ANSWERED = ("answered", "transferred")


@dataclass(frozen=True)
class Rated:
    """A rating just stored on its queue call (keyed like ``queue_calls``): what the wallboard's
    figures for today follow (:meth:`CallRatings.watch`)."""

    uniqueid: str
    queue: str
    leg: int
    entered_at: float | None
    direction: str
    outcome: str
    level: str


class QueueCallNotStored(LookupError):
    """No answered queue call for this channel and queue is stored (yet): the tracker writes
    finished calls in batches, a moment after ``AgentComplete``; try again shortly."""


class RatingMismatch(InvalidInput):
    """The channel says another agent answered than the stored queue call: not that call."""


def _utc(at: dt.datetime | float) -> dt.datetime:
    if isinstance(at, (int, float)):
        return dt.datetime.fromtimestamp(float(at), dt.timezone.utc)
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)


def check(outcome: str, score: int | None, level: str) -> None:
    """A rating as the flow may report it (pure)."""
    if outcome not in OUTCOMES:
        raise InvalidInput(f"must be one of {', '.join(OUTCOMES)}, not {outcome!r}", field="rating outcome")
    if outcome == "rated":
        if level not in LEVELS:
            raise InvalidInput(f"must be one of {', '.join(LEVELS)}, not {level!r}", field="rating level")
        if score is None or not 0 <= int(score) <= 9:
            raise InvalidInput(f"must be the key pressed (0-9), not {score!r}", field="rating score")
    elif score is not None or level:
        raise InvalidInput(f"a {outcome} rating has no score or level", field="rating score")


def rated_call(session, uniqueid: str, queue: str) -> QueueCall | None:
    """The answered queue call of ``uniqueid`` (caller channel or Linkedid) in ``queue``, latest leg."""
    q = (select(QueueCall).where(QueueCall.queue == queue, QueueCall.outcome.in_(ANSWERED),
                                 (QueueCall.uniqueid == uniqueid) | (QueueCall.linkedid == uniqueid))
         .order_by(QueueCall.leg.desc(), QueueCall.id.desc()))
    return session.scalars(q).first()


class CallRatings:
    """The ``Ratings`` port (:mod:`callcenter.ports`) the IVR's rating node writes through."""

    def __init__(self, *, complaints: UnsatisfiedCalls, flag_queues: Iterable[str] = ("complaint",)):
        self.complaints = require(complaints, UnsatisfiedCalls, "ratings complaints")
        self.flag_queues = frozenset(flag_queues)
        self._watchers: list[Callable[[Rated], Any]] = []

    def watch(self, callback: Callable[[Rated], Any]) -> None:
        """``callback(Rated)`` on the event loop for every rating stored from now on."""
        self._watchers.append(callback)

    def unwatch(self, callback: Callable[[Rated], Any]) -> None:
        if callback in self._watchers:
            self._watchers.remove(callback)

    def rated(self, fact: Rated) -> None:
        """Tell the watchers (the IVR calls this on the loop once the rating is committed)."""
        for cb in list(self._watchers):
            try:
                cb(fact)
            except Exception:  # noqa: BLE001 - a watcher's bug must not fail the caller's flow
                log.exception("rating watcher %r failed", cb)

    def record_rating(self, session, *, uniqueid: str, queue: str, agent: str, outcome: str,
                      score: int | None, level: str, at: dt.datetime | float,
                      ivr_session_id: int | None) -> dict[str, Any]:
        """Store the rating on its queue call; raises :class:`QueueCallNotStored` when the call
        is not stored yet.  A call already rated keeps its first rating (a retried write of the
        same session returns what it stored)."""
        check(outcome, score, level)
        if not uniqueid or not queue:
            raise InvalidInput("the rated call needs the caller's uniqueid and its queue", field="rating call")
        call = rated_call(session, uniqueid, queue)
        if call is None:
            raise QueueCallNotStored(f"no answered queue call of {uniqueid[:32]!r} in {queue!r} stored yet")
        if agent and call.agent and agent != call.agent:
            raise RatingMismatch(f"queue call {call.id} was answered by {call.agent!r}, the channel says "
                                 f"{agent!r}", field="rating agent")
        out = {"queue_call_id": call.id, "agent": call.agent, "tickets": []}
        if call.rating_outcome:
            if call.rating_session_id != ivr_session_id:
                log.warning("queue call %s already rated (%s); a second rating (%s) is not stored",
                            call.id, call.rating_outcome, outcome)
            return {**out, "already": True}
        call.rating_outcome, call.rating_score, call.rating_level = outcome, score, level
        call.rated_at, call.rating_session_id = _utc(at), ivr_session_id
        entered = call.entered_at
        if entered is not None and entered.tzinfo is None:
            entered = entered.replace(tzinfo=dt.timezone.utc)  # SQLite drops the offset
        out["fact"] = Rated(uniqueid=call.uniqueid, queue=call.queue, leg=call.leg,
                            entered_at=entered.timestamp() if entered is not None else None,
                            direction=call.direction, outcome=outcome, level=level)
        if outcome == "rated" and level == "unsatisfied" and call.queue in self.flag_queues:
            out["tickets"] = self.complaints.flag_unsatisfied_call(
                session, call_refs=[call.uniqueid, call.linkedid], at=_utc(at),
                note=f"queue call {call.id} ({call.queue}), agent {call.agent_name or call.agent}, key {score}")
        session.flush()
        return out
