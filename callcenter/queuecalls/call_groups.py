"""What the agents and satisfaction reports count per agent and queue: one definition for the
calls and for their rollups.

:func:`aggregates` is what :func:`agent_queries.call_groups` computes over a period's calls,
and what a :class:`~.models.QueueCallGroupRollup` row holds for one (server, queue, agent,
UTC day): :func:`group_counts` is that row's definition (rebuild, settle, and the parts of a
day at a period's ends), :func:`block_sums` a 16-day block's.  Every column but the agent's
name is a sum, so any union of rows adds up to the same figures as the calls; the name is
the greatest, as over the calls.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import BigInteger, and_, case, func, literal_column, select
from sqlalchemy.sql import ColumnElement

from . import satisfaction
from .models import QueueCall, QueueCallGroupRollup
from .report_queries import _n, web_answered

COLUMNS = ("answered", "talk_seconds", "within_target", "agent_name") + tuple(
    f"rating_{k}" for k in satisfaction.COUNTS)
SUMMED = tuple(k for k in COLUMNS if k != "agent_name")


def aggregates(c, target: float) -> dict[str, ColumnElement]:
    """The counts of one group of calls ``c``, by column name: the web's answered calls
    (:func:`report_queries.web_answered`), their talk, those within ``target`` (no wait: 0),
    the greatest agent name on them, and the rating counts over all of them."""
    answered = web_answered(c)
    out = {"answered": _n(answered),
           "talk_seconds": func.sum(case((answered, func.coalesce(c.talk_seconds, 0.0)), else_=0.0)),
           "within_target": _n(and_(answered, func.coalesce(c.wait_seconds, 0.0) <= target)),
           "agent_name": func.max(case((answered, c.agent_name)))}
    out.update({f"rating_{lab.name}": lab.element for lab in satisfaction.aggregates(c)})
    return out


def day_of(dialect: str, col: ColumnElement) -> ColumnElement:
    """The start (epoch seconds) of the UTC day of ``col`` (as the triggers mark it)."""
    from .rollups import DAY, slot_of  # rollups imports this module

    return slot_of(dialect, col, DAY)


def group_counts(dialect: str, target: float, *, where: Iterable[ColumnElement] = (), by_server: bool = True):
    """``SELECT [server,] queue, agent, day, <COLUMNS>`` over the inbound calls matching
    ``where``: the definition of a :class:`QueueCallGroupRollup` row."""
    c = QueueCall.__table__.c
    aggs = aggregates(c, target)
    day = day_of(dialect, c.entered_at)
    keys = ([c.server] if by_server else []) + [c.queue, c.agent]
    q = select(*keys, day.label("day"), *[aggs[k].label(k) for k in COLUMNS])
    return q.where(c.direction == "inbound", *where).group_by(*keys, day)


def block_sums(where: Iterable[ColumnElement] = (), join=None):
    """``SELECT server, queue, agent, block, <COLUMNS>`` adding up day rows per block of
    16 UTC days (:data:`rollups.BLOCK`): the definition of a ``QueueCallGroupRollupBlock`` row."""
    from .rollups import BLOCK  # rollups imports this module

    r = QueueCallGroupRollup.__table__.c
    n = literal_column(str(BLOCK), BigInteger)
    start = r.day - r.day % n
    q = select(r.server, r.queue, r.agent, start.label("block"),
               *[(func.max(r[k]) if k == "agent_name" else func.sum(r[k])).label(k) for k in COLUMNS])
    if join is not None:
        q = q.join_from(QueueCallGroupRollup.__table__, *join)
    return q.where(*where).group_by(r.server, r.queue, r.agent, start)
