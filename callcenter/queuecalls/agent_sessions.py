"""Storing agents' login and pause stretches (``agent_sessions``), on the database thread.

Writes are idempotent, so a retried batch never stores a stretch twice: opening a
stretch that is already open (same agent, kind and reason) or was stored with the same
start does nothing, and closing touches only open rows.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from .agent_log import Closed, Edge, Opened
from .models import AgentSession


def _ts(v: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(v, dt.timezone.utc)


def write_edges(session: Session, edges: Iterable[Edge]) -> int:
    """Apply ``edges`` in order; returns how many rows were opened or closed."""
    n = 0
    for e in edges:
        open_rows = (AgentSession.interface == e.interface, AgentSession.kind == e.kind,
                     AgentSession.ended_at.is_(None))
        if isinstance(e, Opened):
            same = session.scalars(select(AgentSession.id).where(
                AgentSession.interface == e.interface, AgentSession.kind == e.kind,
                or_(AgentSession.started_at == _ts(e.at),
                    and_(AgentSession.ended_at.is_(None), AgentSession.reason == e.reason[:64])))).first()
            if same is None:
                session.add(AgentSession(interface=e.interface[:128], agent_name=e.name[:128], kind=e.kind,
                                         reason=e.reason[:64], started_at=_ts(e.at)))
                session.flush()
                n += 1
        elif isinstance(e, Closed):
            n += session.execute(update(AgentSession).where(*open_rows, AgentSession.started_at <= _ts(e.at))
                                 .values(ended_at=_ts(e.at))).rowcount
        else:
            raise TypeError(f"not an agent-session edge: {e!r}")
    return n


def close_open(session: Session, at: float) -> int:
    """Close the stretches a previous run left open, at ``at`` (when it last heard from
    Asterisk): the time nobody listened is not counted as logged in or paused."""
    t = _ts(at)
    n = session.execute(update(AgentSession).where(AgentSession.ended_at.is_(None), AgentSession.started_at <= t)
                        .values(ended_at=t)).rowcount
    n += session.execute(update(AgentSession).where(AgentSession.ended_at.is_(None))
                         .values(ended_at=AgentSession.started_at)).rowcount
    return n
