"""Outbound figures per campaign, apart from the hotline's inbound figures.

Definitions (``docs/dialer.md``):

* *answered* = the patient answered (``OriginateResponse`` Success) in a campaign that
  connects patients to agents (progressive, predictive; a survey call has no agent);
* *connected* = an agent took the patient (``AgentConnect``);
* *time to connect* = connected − answered (mean and p90 over connected calls);
* **abandoned** (the dialer regulations' definition) = answered and not connected to an
  agent within ``connect_limit`` (2) seconds — a patient who waited 3 s and then got an
  agent counts, as does one who hung up after 1.5 s with nobody there;
* *abandon rate* = abandoned ÷ answered, over the campaign's whole life and over the
  last ``window_days`` (30).
"""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.queuecalls.stats import percentile

from .models import Attempt, Campaign
from .timeutil import to_dt, to_ts

AGENT_MODES = ("progressive", "predictive")


def connect_delay(answered: float | None, connected: float | None) -> float | None:
    if answered is None or connected is None:
        return None
    return max(0.0, connected - answered)


def is_abandoned(answered: float | None, connected: float | None, limit: float = 2.0) -> bool:
    """The regulatory abandon: answered, and no agent within ``limit`` seconds."""
    if answered is None:
        return False
    delay = connect_delay(answered, connected)
    return delay is None or delay > limit


def figures(calls: Iterable[tuple[float | None, float | None]], limit: float = 2.0) -> dict[str, Any]:
    """``calls`` = (answered_at, connected_at) epoch pairs of one campaign's attempts."""
    answered = connected = abandoned = 0
    delays: list[float] = []
    for ans, conn in calls:
        if ans is None:
            continue
        answered += 1
        d = connect_delay(ans, conn)
        if d is not None:
            connected += 1
            delays.append(d)
        if is_abandoned(ans, conn, limit):
            abandoned += 1
    delays.sort()
    return {"answered": answered, "connected": connected, "abandoned": abandoned,
            "abandon_rate": round(abandoned / answered, 4) if answered else None,
            "connect_seconds_mean": round(sum(delays) / len(delays), 3) if delays else None,
            "connect_seconds_p90": round(percentile(delays, 90), 3) if delays else None,
            "connect_limit_seconds": limit}


def _pairs(session: Session, campaign_id: int, since: float | None) -> list[tuple[float | None, float | None]]:
    q = select(Attempt.answered_at, Attempt.connected_at).where(
        Attempt.campaign_id == campaign_id, Attempt.answered_at.is_not(None))
    if since is not None:
        q = q.where(Attempt.answered_at >= to_dt(since))
    return [(to_ts(a), to_ts(c)) for a, c in session.execute(q)]


def abandon_counts(session: Session, campaign_id: int, since: float, limit: float = 2.0) -> tuple[int, int]:
    """(answered, abandoned) since ``since`` under the regulatory definition (predictive pacing)."""
    f = figures(_pairs(session, campaign_id, since), limit)
    return f["answered"], f["abandoned"]


def campaign_figures(session: Session, *, now: float, day_start: float | None = None,
                     window_days: float = 30.0, limit: float = 2.0) -> list[dict[str, Any]]:
    """One row per agent-connecting campaign: today's figures (from ``day_start``), the last
    ``window_days`` and the campaign's whole life."""
    out = []
    for c in session.scalars(select(Campaign).where(Campaign.mode.in_(AGENT_MODES)).order_by(Campaign.id)):
        life = _pairs(session, c.id, None)
        row = {"campaign_id": c.id, "campaign": c.name, "kind": c.kind, "mode": c.mode, "queue": c.queue,
               "state": c.state, "total": figures(life, limit),
               "window": figures(((a, k) for a, k in life if a is not None and a >= now - window_days * 86400),
                                 limit), "window_days": window_days}
        if day_start is not None:
            row["today"] = figures(((a, k) for a, k in life if a is not None and a >= day_start), limit)
        out.append(row)
    return out

