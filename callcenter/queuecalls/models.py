"""Tables: ``queue_calls`` (one row per caller's stay in one queue) and ``ami_outages``.

A row is keyed by the Asterisk server, the caller channel's Uniqueid, the queue and the
leg (the n-th time that channel joined that queue; two servers may reuse a Uniqueid), so a replay, a resync or a ``queue_log``
recovery of the same call updates the row instead of counting it twice.
Times are UTC; ``wait_seconds``/``talk_seconds`` keep the bridge's sub-second
measure (whole seconds when reconstructed, then ``gap`` is true).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..store.base import Base


ABANDONED = "outcome IN ('abandoned', 'timeout')"  # the abandoned list's calls (report_queries.web_abandoned)


class QueueCall(Base):
    __tablename__ = "queue_calls"
    __table_args__ = (
        UniqueConstraint("server", "uniqueid", "queue", "leg", name="uq_queue_calls_key"),
        Index("ix_queue_calls_queue_entered", "queue", "entered_at"),
        # the reports' covering index (migration 0999b_report_indexes): what they read of a call
        Index("ix_queue_calls_report", "direction", "entered_at", "queue", "agent", "outcome", "answered_at",
              "wait_seconds", "talk_seconds", "gap", "rating_outcome", "rating_level", "server", "agent_name"),
        Index("ix_queue_calls_agents", "direction", "agent", "entered_at", "queue", "outcome", "answered_at",
              "wait_seconds", "talk_seconds", "rating_outcome", "rating_level", "server", "agent_name"),
        Index("ix_queue_calls_abandoned", "direction", "entered_at",
              sqlite_where=text(ABANDONED), postgresql_where=text(ABANDONED)),
        Index("ix_queue_calls_agent_entered", "agent", "entered_at"),  # agent-filtered reports (0999)
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server: Mapped[str] = mapped_column(String(32), server_default="default")  # [[ami]] name
    uniqueid: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    queue: Mapped[str] = mapped_column(String(64))
    leg: Mapped[int] = mapped_column(Integer, default=1)
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    caller_name: Mapped[str] = mapped_column(String(128), default="")
    entered_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    answered_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    agent: Mapped[str] = mapped_column(String(128), default="", index=True)
    agent_name: Mapped[str] = mapped_column(String(128), default="")
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    # answered | abandoned | timeout | transferred | redirected | unknown (gap, outcome lost)
    outcome: Mapped[str] = mapped_column(String(16))
    within_target: Mapped[bool | None] = mapped_column(Boolean)
    position: Mapped[int | None] = mapped_column(Integer)
    ivr_session_id: Mapped[int | None] = mapped_column(Integer)
    gap: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="ami")  # ami | queue_log
    # inbound | outbound (a dialer call: the answered patient queued for an agent); the
    # inbound figures (report, wallboard, service level, Erlang C) count inbound only
    direction: Mapped[str] = mapped_column(String(8), default="inbound", server_default="inbound")
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    attempt_id: Mapped[int | None] = mapped_column(Integer)
    # the post-call rating (queuecalls/ratings.py): rated | no_input | invalid | hangup; "" = none
    # offered (not answered, or the caller hung up first); the agent rated is ``agent``
    # server-side defaults only: an insert names no rating column (rows written before the rating)
    rating_outcome: Mapped[str] = mapped_column(String(12), server_default="")
    rating_score: Mapped[int | None] = mapped_column(Integer)  # the key pressed (rated only)
    rating_level: Mapped[str] = mapped_column(String(12), server_default="")  # satisfied|neutral|unsatisfied
    rated_at: Mapped[dt.datetime | None]
    rating_session_id: Mapped[int | None] = mapped_column(Integer)  # the ivr_sessions row that asked


class _RollupCounters:
    """A group of inbound queue calls, counted: ``counts`` every counter the reports add up
    (``rollups.LAYOUT``: 28 big-endian int32 then 3 float64, packed so a report reads a
    year as a few hundred thousand short rows, not millions of values), ``waits`` the waits
    of its known-outcome calls, sorted, big-endian float64 (the exact nearest-rank p90 of any
    union of groups)."""

    counts: Mapped[bytes] = mapped_column(LargeBinary)
    waits: Mapped[bytes] = mapped_column(LargeBinary)


class QueueCallRollup(_RollupCounters, Base):
    """The inbound queue calls of one server and queue that entered in one 15-minute UTC
    slot (``slot``: its start, epoch seconds), counted: what the period reports read
    instead of the calls (:mod:`.rollups`).  Every real time zone's offset is whole
    quarter hours, so a local hour, half hour or day is a set of whole slots."""

    __tablename__ = "queue_call_rollups"

    server: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class QueueCallRollupDay(Base):
    """The :class:`QueueCallRollup` rows of one server, queue and UTC day packed into one
    (``day``: its start): ``slots`` their slot starts (big-endian int64), ``counts`` their
    counters and ``nwaits`` their numbers of waits (int32), ``waits`` theirs, each run
    together in the same order.  What a report reads for a period's whole UTC days: a
    year of 8 queues is 2,920 rows.  Rebuilt from the slot rows whenever one of them changes."""

    __tablename__ = "queue_call_rollup_days"

    server: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    slots: Mapped[bytes] = mapped_column(LargeBinary)
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    nwaits: Mapped[bytes] = mapped_column(LargeBinary)
    waits: Mapped[bytes] = mapped_column(LargeBinary)


class QueueCallAgentRollup(_RollupCounters, Base):
    """The answered inbound calls one agent took in one queue on one UTC day (``day``: its
    start, epoch seconds): the answer-times report's "By agent" (:mod:`.rollups`)."""

    __tablename__ = "queue_call_agent_rollups"

    server: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class QueueCallAgentRollupBlock(Base):
    """The answered calls of one server, queue and agent in one block of 16 UTC days
    (``block``: its start, epoch seconds a multiple of 16 days) counted as one: ``counts`` one
    record (the sum of its :class:`QueueCallAgentRollup` days; migration 0999g), ``waits`` the
    block's, sorted.  A report reads these for the blocks inside its period (a year: about
    15,000 rows for 80 agents in 8 queues), the day rows for the rest."""

    __tablename__ = "queue_call_agent_rollup_blocks"

    server: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(128), primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    waits: Mapped[bytes] = mapped_column(LargeBinary)


class RollupSettings(Base):
    """What the rollups were counted with (one row): the answer target and the short-abandon
    limit are part of their counters' meaning, so a report with other settings is refused."""

    __tablename__ = "queue_call_rollup_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    answer_target_seconds: Mapped[float] = mapped_column(Float)
    short_abandon_seconds: Mapped[float] = mapped_column(Float)


GROUP_COUNTS = ("offered", "rated", "satisfied", "neutral", "unsatisfied", "no_input", "invalid", "hangup")


class _GroupCounters:
    """What the agents and satisfaction reports add up per agent and queue
    (:mod:`.call_groups`): answered calls (the web's answered), their talk time, those
    answered within the target, the agent's name on them (the greatest, NULL: none), and the
    post-call rating counts over every call (``rating_<count>``, :data:`satisfaction.COUNTS`)."""

    answered: Mapped[int] = mapped_column(Integer)
    talk_seconds: Mapped[float] = mapped_column(Float)
    within_target: Mapped[int] = mapped_column(Integer)
    agent_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    rating_offered: Mapped[int] = mapped_column(Integer)
    rating_rated: Mapped[int] = mapped_column(Integer)
    rating_satisfied: Mapped[int] = mapped_column(Integer)
    rating_neutral: Mapped[int] = mapped_column(Integer)
    rating_unsatisfied: Mapped[int] = mapped_column(Integer)
    rating_no_input: Mapped[int] = mapped_column(Integer)
    rating_invalid: Mapped[int] = mapped_column(Integer)
    rating_hangup: Mapped[int] = mapped_column(Integer)


class QueueCallGroupRollup(_GroupCounters, Base):
    """The inbound calls of one server, queue and agent ("": no agent) on one UTC day
    (``day``: its start, epoch seconds), any outcome, counted for the agents and
    satisfaction reports (:mod:`.call_groups`)."""

    __tablename__ = "queue_call_group_rollups"

    server: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class QueueCallGroupRollupBlock(_GroupCounters, Base):
    """The :class:`QueueCallGroupRollup` rows of one server, queue and agent in one block of
    16 UTC days, added up (``agent_name`` the greatest): a year of 80 agents in 8 queues is
    about 15,000 rows, not 230,000."""

    __tablename__ = "queue_call_group_rollup_blocks"

    server: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(128), primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class RollupDirty(Base):
    """Rollup rows whose calls changed and that are not recounted yet: written by triggers on
    ``queue_calls`` (migration 0999), so no write can skip them; recounted and removed in the
    writer's own transaction (:func:`.rollups.settle`).  ``kind`` "q": a
    :class:`QueueCallRollup` (``agent`` empty, ``slot`` its slot); "a": a
    :class:`QueueCallAgentRollup` (``slot`` its day); "g": a :class:`QueueCallGroupRollup`
    (``slot`` its day; migration 0999e, which also marks rating and agent-name changes)."""

    __tablename__ = "queue_call_rollup_dirty"

    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    server: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(128), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class AmiOutage(Base):
    """A period without AMI: calls in it come from queue_log or are a known gap."""

    __tablename__ = "ami_outages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server: Mapped[str] = mapped_column(String(32), server_default="default")
    start: Mapped[dt.datetime] = mapped_column(index=True)
    end: Mapped[dt.datetime | None]
    recovered_from_queue_log: Mapped[bool] = mapped_column(Boolean, default=False)
    recovered_calls: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(String(256), default="")


class TrackerCheckpoint(Base):
    """Up to when every queue call of one Asterisk server is stored: the moment its tracker
    last heard from it with nothing left unwritten.  Written with each batch (and every few
    seconds on a quiet line); every start (or takeover) recovers from here (queue_log) or
    stores the gap."""

    __tablename__ = "queuecall_server_checkpoints"

    server: Mapped[str] = mapped_column(String(32), primary_key=True)  # [[ami]] name
    heard_at: Mapped[dt.datetime]


class LiveSnapshot(Base):
    """One Asterisk server's live queues (``QueueCallsTracker.live()`` as JSON) as the
    instance consuming it last published them: what the other instances' wallboards show
    (``callcenter/live_relay.py``)."""

    __tablename__ = "live_snapshots"

    server: Mapped[str] = mapped_column(String(32), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime]


class AgentSession(Base):
    """One stretch of an agent's (queue member's) time: logged in to at least one queue
    (``kind`` "login"), or paused in every queue they are in ("pause", with the reason).
    Opened and closed from the tracker's member facts (:mod:`.agent_log`); ``ended_at`` is
    NULL while it lasts.  The agent-performance report adds these up per period."""

    __tablename__ = "agent_sessions"
    __table_args__ = (
        Index("ix_agent_sessions_interface_started", "interface", "started_at"),
        Index("ix_agent_sessions_open", "ended_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interface: Mapped[str] = mapped_column(String(128))
    agent_name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(8))            # login | pause
    reason: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[dt.datetime] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
