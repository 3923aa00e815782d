"""The supervisor's reports, computed in one database transaction (web and command line).

``compute(session, names, start, end, settings=..., now=...)`` returns each report's
machine-readable result ``{"rows": [...], ...}`` (rates as fractions, times as UTC);
:mod:`callcenter.report_tables` turns a result into what a person reads (headings in
their language, percentages, local times) for the page, CSV and XLSX alike.  The web
runs this with ``db.run`` (a worker thread), never on the event loop.

Filters: ``queue`` (a queue name) and ``agent`` (an interface, ``PJSIP/1001``) narrow
the queue-call reports, agent performance and outcomes.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable
from zoneinfo import ZoneInfo

from callcenter.queuecalls import agent_queries as aq
from callcenter.queuecalls import report_queries as rq
from callcenter.queuecalls import satisfaction

# the reports of the page, in its order; "service-level-hourly" stays for the API
REPORTS = ("answer-times", "intervals", "service-level-daily", "agents", "satisfaction", "outcomes", "abandoned",
           "campaigns", "complaints", "staffing", "staffing-plan", "service-level-hourly")
PAGE_REPORTS = tuple(n for n in REPORTS if n != "service-level-hourly")
QUEUE_REPORTS = ("answer-times", "service-level-hourly", "service-level-daily", "agents", "satisfaction", "abandoned",
                 "staffing")
FILTERED = ("answer-times", "intervals", "service-level-hourly", "service-level-daily", "agents", "satisfaction",
            "outcomes", "abandoned", "staffing")
NEEDS = {"answer-times": {"whole"}, "service-level-hourly": {"hour"}, "service-level-daily": {"day"},
         "staffing": {"whole", "hour"}}  # the period_figures parts each report shows


@dataclass(frozen=True)
class ReportSettings:
    """What the reports need of the configuration."""

    tz: ZoneInfo
    target: float
    short_abandon: float
    goal: float
    window_days: float
    wrapup: Callable[[str], float]

    @classmethod
    def from_config(cls, config, *, wrapup: Callable[[str], float]) -> "ReportSettings":
        """``wrapup(queue)``: the queue's wrap-up seconds (queues.conf ``wrapuptime``, which
        the running service reads from Asterisk: :meth:`QueueCallsTracker.wrapup_of`)."""
        h = config.hospital
        return cls(tz=ZoneInfo(h.timezone), target=float(h.answer_target_seconds),
                   short_abandon=float(h.short_abandon_seconds), goal=float(config.web.staffing_goal),
                   window_days=float(config.dialer.predictive_window_days), wrapup=wrapup)


def bounds(start: dt.date, end: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The local days ``start`` .. ``end`` (inclusive) as a UTC ``[t0, t1)``."""
    t0 = dt.datetime.combine(start, dt.time(), tz).astimezone(dt.timezone.utc)
    t1 = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.timezone.utc)
    return t0, t1


def queue_reports(s, names: tuple[str, ...], t0: dt.datetime, t1: dt.datetime, *, tz: ZoneInfo, target: float,
                  short: float, days: int, goal: float, page: int, per_page: int | None,
                  queue: str | None = None, agent: str | None = None,
                  server: str | None = None) -> dict[str, dict]:
    """The queue-call reports in ``names`` (one transaction, on the database thread), of one
    Asterisk ``server`` or of all."""
    out: dict[str, dict] = {}
    src = rq.period_calls(t0, t1, queue, agent, server)
    groups = _once(lambda: aq.period_groups(s, t0, t1, target=target, short_abandon=short, queue=queue,
                                            agent=agent, server=server))
    parts = set()
    for name in names:
        parts |= NEEDS.get(name, set())
    f = None
    if parts:  # one scan for all of them; only the groups these reports show
        f = rq.period_figures(s, t0, t1, tz, target=target, short_abandon=short, parts=sorted(parts),
                              queue=queue, agent=agent, server=server,
                              extras=bool({"answer-times", "staffing"} & set(names)))
    for name in names:
        r: dict = {}
        if name == "answer-times":
            r["rows"], r["summary"] = rq.distribution(f.whole), f.whole.summary(target, short)
        elif name == "service-level-hourly":
            r["rows"] = rq.sorted_groups(f.by_hour, target, short, "hour")
            r["rows"].sort(key=lambda x: x["hour"])
        elif name == "service-level-daily":
            r["rows"] = rq.sorted_groups(f.by_day, target, short, "day")
        elif name == "agents":  # with the post-call satisfaction columns
            r["rows"] = satisfaction.with_agent_columns(rq.agent_rows(s, src, target), groups())
        elif name == "satisfaction":
            r["rows"] = satisfaction.queue_rows(groups())
        elif name == "abandoned":  # read from the partial index of the abandoned calls only
            ab = rq.period_calls(t0, t1, queue, agent, server, index="ix_queue_calls_abandoned")
            if per_page is None:
                total, rows = rq.abandoned_page(s, ab, offset=0, limit=None)
            else:
                total, rows = rq.abandoned_page(s, ab, offset=(page - 1) * per_page, limit=per_page)
            r["rows"] = rq.abandoned_rows(rows, tz)
            r["total"], r["page"], r["per_page"] = total, page, per_page
        elif name == "staffing":
            r["rows"] = rq.staffing_rows(f, days=days, target=target, goal=goal)
            r["goal"], r["target"] = goal, target
        out[name] = r
    return out


def intervals(s, t0: dt.datetime, t1: dt.datetime, st: ReportSettings, *, queue: str | None,
              agent: str | None, server: str | None = None) -> list[dict]:
    """Per local half hour of the day: the summary figures and the handling time."""
    groups = rq.by_half_hour(s, t0, t1, st.tz, target=st.target, short_abandon=st.short_abandon,
                             queue=queue, agent=agent, server=server)
    rows = []
    for slot in sorted(groups):
        g = groups[slot]
        talk = g.talk_sum / g.talk_n if g.talk_n else None
        wrap = st.wrapup(queue) if queue else st.wrapup("")
        rows.append({"slot": slot, **g.summary(st.target, st.short_abandon),
                     "aht_seconds": None if talk is None else round(talk + wrap, 1)})
    return rows


def outcomes(s, t0: dt.datetime, t1: dt.datetime, *, queue: str | None, agent: str | None) -> list[dict]:
    counts = aq.outcome_counts(s, t0, t1, queue=queue, agent=agent)
    total = sum(counts.values())
    return [{"outcome": k, "calls": n, "share": round(n / total, 4)}
            for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def compute(s, names: tuple[str, ...], start: dt.date, end: dt.date, *, settings: ReportSettings,
            now: dt.datetime, queue: str | None = None, agent: str | None = None, page: int = 1,
            per_page: int | None = 100, server: str | None = None) -> dict[str, dict]:
    """The reports in ``names`` except ``staffing-plan`` (its own forecast), on the database thread."""
    from callcenter.web import data

    st = settings
    t0, t1 = bounds(start, end, st.tz)
    out: dict[str, dict] = {}
    # the agents report and the satisfaction report are summed from the same groups: one read
    groups = _once(lambda: aq.period_groups(s, t0, t1, target=st.target, short_abandon=st.short_abandon,
                                            queue=queue, agent=agent, server=server))
    qn = tuple(n for n in names if n in QUEUE_REPORTS and n not in ("agents", "satisfaction"))
    if qn:
        out.update(queue_reports(s, qn, t0, t1, tz=st.tz, target=st.target, short=st.short_abandon,
                                 days=(end - start).days + 1, goal=st.goal, page=page, per_page=per_page,
                                 queue=queue, agent=agent, server=server))
    for name in names:
        if name == "intervals":
            out[name] = {"rows": intervals(s, t0, t1, st, queue=queue, agent=agent, server=server)}
        elif name == "agents":  # with the post-call satisfaction columns
            rows = aq.agent_performance(s, t0, t1, now, target=st.target, wrapup=st.wrapup,
                                        queue=queue, agent=agent, server=server, groups=groups())
            out[name] = {"rows": satisfaction.with_agent_columns(rows, groups())}
        elif name == "satisfaction":
            out[name] = {"rows": satisfaction.queue_rows(groups())}
        elif name == "outcomes":
            out[name] = {"rows": outcomes(s, t0, t1, queue=queue, agent=agent)}
        elif name == "campaigns":
            out[name] = {"rows": data.campaign_progress(s, now.timestamp(), st.window_days)}
        elif name == "complaints":
            out[name] = {"rows": data.complaint_deadlines(s, now)}
    return out


def _once(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn()`` on the first call, its result after (figures several reports share, read only if one asks)."""
    memo: list = []

    def get():
        if not memo:
            memo.append(fn())
        return memo[0]
    return get


def wrap(name: str, start: dt.date, end: dt.date, r: dict[str, Any], *, queue: str | None = None,
         agent: str | None = None) -> dict[str, Any]:
    """The envelope every report has: name, period, filters, availability, raw columns."""
    out = {"report": name, "from": start.isoformat(), "to": end.isoformat(), "available": True, **r}
    if name in FILTERED:
        out["queue"], out["agent"] = queue or None, agent or None
    if out["rows"] is None:
        out.update(available=False, rows=[], columns=[])
    else:
        out.setdefault("columns", list(out["rows"][0].keys()) if out["rows"] else [])
    return out
