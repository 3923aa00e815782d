"""Complaint reports: deadline compliance, handling times, reopen rate, satisfaction.

:func:`load` reads the tickets *received* in a period (and their deadlines and
revisits) in three queries; :func:`summarize` is pure and does the arithmetic,
so the figures are testable on a fixture dataset.

A deadline counts as *on time* when met by its due time, *late* when met
after it, *missed* when still unmet after it, and *pending* (not counted in
the compliance rate) when unmet and not yet due.  Replaced deadlines (a new
expected resolution date) are left out.  Compliance = on time / (on time +
late + missed).
"""
from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from typing import Any, Iterable

from sqlalchemy import select

from .models import CATEGORIES, ComplaintDeadline, ComplaintEvent, ComplaintTicket
from .workdays import to_datetime


def load(session, since: dt.datetime | None, until: dt.datetime | None
         ) -> tuple[list[dict], list[dict], list[dict]]:
    T, D, E = ComplaintTicket, ComplaintDeadline, ComplaintEvent
    where = []
    if since is not None:
        where.append(T.received_at >= to_datetime(since).astimezone(dt.timezone.utc))
    if until is not None:
        where.append(T.received_at < to_datetime(until).astimezone(dt.timezone.utc))
    cols = (T.id, T.number, T.category, T.department, T.severity, T.channel, T.status, T.received_at,
            T.acknowledged_at, T.answered_at, T.resolved_at, T.closed_at, T.reopen_count)
    tickets = [dict(r._mapping) for r in session.execute(select(*cols).where(*where))]
    ids = select(T.id).where(*where)
    deadlines = [dict(r._mapping) for r in session.execute(
        select(D.ticket_id, D.kind, D.round, D.due_at, D.met_at).where(D.active.is_(True), D.ticket_id.in_(ids)))]
    revisits = [{"ticket_id": r.ticket_id, "satisfied": r.to_value == "True", "at": r.at}
                for r in session.execute(select(E.ticket_id, E.to_value, E.at)
                                         .where(E.action == "revisit", E.ticket_id.in_(ids)))]
    scores = dict(session.execute(select(T.id, T.satisfaction).where(*where, T.satisfaction.is_not(None))).all())
    for r in revisits:
        r["score"] = scores.get(r["ticket_id"])
    return tickets, deadlines, revisits


def _hours(a, b) -> float | None:
    if a is None or b is None:
        return None
    return (to_datetime(b) - to_datetime(a)).total_seconds() / 3600.0


def _stats(values: Iterable[float | None]) -> dict:
    v = sorted(x for x in values if x is not None)
    if not v:
        return {"count": 0, "mean_hours": None, "median_hours": None, "p90_hours": None}
    p90 = v[min(len(v) - 1, max(0, int(round(0.9 * len(v) + 0.5)) - 1))]  # nearest rank
    return {"count": len(v), "mean_hours": round(statistics.fmean(v), 2),
            "median_hours": round(statistics.median(v), 2), "p90_hours": round(p90, 2)}


def _outcome(d: dict, now: dt.datetime) -> str:
    due = to_datetime(d["due_at"])
    if d["met_at"] is not None:
        return "on_time" if to_datetime(d["met_at"]) <= due else "late"
    return "missed" if due <= now else "pending"


def _compliance(groups: dict[str, Counter], tickets_per: Counter, key: str) -> list[dict]:
    rows = []
    for name in sorted(set(groups) | set(tickets_per)):
        c = groups.get(name, Counter())
        decided = c["on_time"] + c["late"] + c["missed"]
        rows.append({key: name, "tickets": tickets_per[name], "deadlines": decided + c["pending"],
                     "on_time": c["on_time"], "late": c["late"], "missed": c["missed"],
                     "pending": c["pending"],
                     "compliance": round(c["on_time"] / decided, 4) if decided else None})
    return rows


def summarize(tickets: list[dict], deadlines: list[dict], revisits: list[dict],
              now: dt.datetime | float) -> dict[str, Any]:
    now = to_datetime(now)
    by_id = {t["id"]: t for t in tickets}
    by_cat: dict[str, Counter] = defaultdict(Counter)
    by_dep: dict[str, Counter] = defaultdict(Counter)
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for d in deadlines:
        t = by_id.get(d["ticket_id"])
        if t is None:
            continue
        o = _outcome(d, now)
        by_cat[t["category"] or "(unclassified)"][o] += 1
        by_dep[t["department"] or "(none)"][o] += 1
        by_kind[d["kind"]][o] += 1
    cat_n = Counter(t["category"] or "(unclassified)" for t in tickets)
    dep_n = Counter(t["department"] or "(none)" for t in tickets)
    kind_n = Counter(k for _, k in {(d["ticket_id"], d["kind"]) for d in deadlines if d["ticket_id"] in by_id})
    answered = [min(x for x in (t["answered_at"], t["resolved_at"]) if x is not None)
                if (t["answered_at"] or t["resolved_at"]) else None for t in tickets]
    resolved = [t for t in tickets if t["resolved_at"] is not None]
    reopened = [t for t in tickets if t["reopen_count"]]
    satisfied = [r for r in revisits if r["satisfied"]]
    scores = [r["score"] for r in revisits if r.get("score") is not None]
    overall = Counter()
    for c in by_kind.values():
        overall.update(c)
    decided = overall["on_time"] + overall["late"] + overall["missed"]
    return {
        "tickets": len(tickets),
        "by_status": dict(sorted(Counter(t["status"] for t in tickets).items())),
        "by_severity": dict(sorted(Counter(t["severity"] for t in tickets).items())),
        "compliance": round(overall["on_time"] / decided, 4) if decided else None,
        "compliance_by_category": sorted(
            _compliance(by_cat, cat_n, "category"),
            key=lambda r: (CATEGORIES + ("(unclassified)",)).index(r["category"])
            if r["category"] in CATEGORIES + ("(unclassified)",) else 99),
        "compliance_by_department": _compliance(by_dep, dep_n, "department"),
        "compliance_by_deadline": _compliance(by_kind, kind_n, "deadline"),
        "times": [
            {"measure": "acknowledge", **_stats(_hours(t["received_at"], t["acknowledged_at"]) for t in tickets)},
            {"measure": "answer", **_stats(_hours(t["received_at"], a) for t, a in zip(tickets, answered))},
            {"measure": "close", **_stats(_hours(t["received_at"], t["closed_at"]) for t in tickets)},
        ],
        "reopen": {"resolved": len(resolved), "reopened": len(reopened),
                   "reopen_rate": round(len(reopened) / len(resolved), 4) if resolved else None},
        "satisfaction": {"revisits": len(revisits), "satisfied": len(satisfied),
                         "rate": round(len(satisfied) / len(revisits), 4) if revisits else None,
                         "mean_score": round(statistics.fmean(scores), 2) if scores else None},
    }


def report(session, since, until, now) -> dict[str, Any]:
    out = summarize(*load(session, since, until), now=now)
    out["period"] = {"since": since.isoformat() if since else None,
                     "until": until.isoformat() if until else None}
    return out


def flat_rows(rep: dict[str, Any]) -> list[dict]:
    """Long format for CSV: section, key, metric, value."""
    rows = [{"section": "summary", "key": "", "metric": "tickets", "value": rep["tickets"]},
            {"section": "summary", "key": "", "metric": "compliance", "value": rep["compliance"]}]
    for sec in ("by_status", "by_severity"):
        rows += [{"section": sec, "key": k, "metric": "tickets", "value": v} for k, v in rep[sec].items()]
    for sec, key in (("compliance_by_category", "category"), ("compliance_by_department", "department"),
                     ("compliance_by_deadline", "deadline")):
        for r in rep[sec]:
            rows += [{"section": sec, "key": r[key], "metric": m, "value": v}
                     for m, v in r.items() if m != key]
    for r in rep["times"]:
        rows += [{"section": "times", "key": r["measure"], "metric": m, "value": v}
                 for m, v in r.items() if m != "measure"]
    for sec in ("reopen", "satisfaction"):
        rows += [{"section": sec, "key": "", "metric": m, "value": v} for m, v in rep[sec].items()]
    return rows
