"""A report as a person reads it: the columns shown, their headings in the reader's
language, and every cell both as a value and as text — pure.

The page, the CSV and the XLSX file are all made from one :class:`Table`, so they have
the same columns and headings.  A cell keeps its value for a spreadsheet (numbers as
numbers, rates as fractions shown as percentages, durations as days shown ``[h]:mm:ss``,
times as the hospital's local time without a zone) and its text for the page and CSV
("85.0%", "1:02:03", "2026-12-02 08:30").  Codes (outcomes, states, categories) are
translated; the JSON API keeps the raw rows (:mod:`callcenter.reporting`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable
from zoneinfo import ZoneInfo

from callcenter.web.i18n import MESSAGES, column, t

# kinds: text int num (one decimal) pct (fraction) dur (seconds) time (UTC datetime/ISO)
# slot (half hour 0-47) hour (0-23) code:<message prefix> ext (queue interface) bool
Spec = tuple[str, str]

SUMMARY = (("offered", "int"), ("answered", "int"), ("abandoned", "int"), ("answered_within_target", "int"),
           ("service_level", "pct"), ("asa_seconds", "num"), ("abandon_rate", "pct"),
           ("max_wait_seconds", "num"), ("p90_wait_seconds", "num"))
COLUMNS: dict[str, tuple[Spec, ...]] = {
    "answer-times": (("label", "text"), ("answered", "int"), ("abandoned", "int")),
    "intervals": (("slot", "slot"), *SUMMARY[:6], ("aht_seconds", "num"), *SUMMARY[6:]),
    "service-level-hourly": (("hour", "hour"), *SUMMARY),
    "service-level-daily": (("day", "text"), *SUMMARY),
    "agents": (("name", "text"), ("agent", "ext"), ("answered", "int"), ("answered_within_target", "int"),
               ("talk_seconds_total", "dur"), ("aht_seconds", "num"), ("login_seconds", "dur"),
               ("pause_seconds", "dur"), ("occupancy", "pct"), ("outcomes", "int")),
    "outcomes": (("outcome", "code:outcome"), ("calls", "int"), ("share", "pct")),
    "abandoned": (("entered_at", "time"), ("queue", "text"), ("caller", "text"), ("wait_seconds", "num"),
                  ("outcome", "code:rep.v")),
    "campaigns": (("campaign", "text"), ("kind", "code:camp.kind"), ("state", "code:camp.state"),
                  ("contacts", "int"), ("pending", "int"), ("dialled", "int"), ("reached", "int"),
                  ("completed", "int"), ("attempts", "int"), ("abandon_rate", "pct"),
                  ("survey_score_avg", "num"), ("progress", "pct")),
    "complaints": (("ticket", "text"), ("category", "code:cat"), ("severity", "code:cp.sev"),
                   ("status", "code:cp.state"), ("deadline", "code:cp.dl"), ("due_at", "time"),
                   ("hours_left", "num"), ("level", "code:cp.dls")),
    "staffing": (("hour", "hour"), ("calls_per_hour", "num"), ("aht_seconds", "num"),
                 ("traffic_erlangs", "num"), ("agents_needed", "int"), ("expected_service_level", "pct"),
                 ("expected_asa_seconds", "num")),
    "staffing-plan": (("queue", "text"), ("day", "text"), ("time", "hhmm"), ("forecast_calls", "num"),
                      ("aht_seconds", "num"), ("agents_needed", "int"), ("expected_service_level", "pct")),
    # the page's compact plan (staffing_plan.day_totals / past_totals); the downloads have every half hour
    "staffing-plan-days": (("day", "text"), ("forecast_calls", "num"), ("agents_peak", "int"),
                           ("peak_time", "hhmm"), ("agent_hours", "num")),
    "staffing-plan-past": (("day", "text"), ("queue", "text"), ("actual_calls", "int"),
                           ("forecast_calls", "num"), ("agents_needed_forecast", "int"),
                           ("agents_needed_actual", "int"), ("agents_seen_answering", "int")),
    # the post-call satisfaction report (per queue; "*" is all queues)
    "satisfaction": (("queue", "text"), ("ratings_offered", "int"), ("rated", "int"), ("satisfied", "int"),
                     ("neutral", "int"), ("unsatisfied", "int"), ("no_rating", "int"), ("invalid_rating", "int"),
                     ("hung_up_before_rating", "int"), ("satisfaction_rate", "pct"), ("response_rate", "pct")),
}
# columns a report shows when its rows carry them (another feature adds them to the rows)
OPTIONAL: dict[str, tuple[Spec, ...]] = {
    "agents": (("rated", "int"), ("satisfaction_rate", "pct"), ("unsatisfied", "int")),
}
PAUSE_PREFIX = "pause:"
TEXT_KINDS = ("text", "ext", "code", "time", "slot", "hour", "hhmm", "bool")  # agents: one column per pause reason, after pause_seconds


@dataclass(frozen=True)
class Cell:
    value: Any              # for a spreadsheet: int, float, datetime, str or None
    text: str               # for the page and CSV
    fmt: str = ""           # XLSX number format


@dataclass
class Table:
    name: str
    keys: list[str]
    headings: list[str]
    kinds: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)   # per row: "" or "over" (overdue)

    @property
    def textual(self) -> list[bool]:
        """Per column: words (left-aligned), not a figure (right-aligned on the page)."""
        return [k.split(":")[0] in TEXT_KINDS for k in self.kinds]


def interval_label(slot: int) -> str:
    """Half hour ``slot`` (0-47) as ``08:00–08:30``."""
    a = slot * 30
    b = a + 30
    return f"{a // 60:02d}:{a % 60:02d}–{b // 60 % 24:02d}:{b % 60:02d}"


def hour_label(hour: int) -> str:
    return f"{hour:02d}:00–{(hour + 1) % 24:02d}:00"


def extension(interface: str) -> str:
    """``Local/1001@sim-agent/n`` / ``PJSIP/1001`` -> ``1001`` (what supervisors call the agent)."""
    tail = interface.split("/", 1)[1] if "/" in interface else interface
    return tail.split("@", 1)[0].split("/", 1)[0] or interface


def pause_reason_label(lang: str, reason: str) -> str:
    key = f"agent.reason.{reason}"
    if key in MESSAGES:
        return t(lang, key)
    return reason or t(lang, "rep.reason_none")


def code_label(lang: str, prefix: str, value: Any) -> str:
    """A stored code in words: ``outcome`` ``dialer_completed`` -> "Completed" etc."""
    if value is None or value == "":
        return ""
    v = str(value)
    if prefix == "outcome" and v.startswith("dialer_"):
        key = f"dial.outcome.{v[7:]}"
    else:
        key = f"{prefix}.{v}"
    return t(lang, key) if key in MESSAGES else v


def _dur_text(secs: float) -> str:
    s = int(round(secs))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _local(v: Any, tz: ZoneInfo) -> dt.datetime | None:
    if v is None or v == "":
        return None
    d = dt.datetime.fromisoformat(v) if isinstance(v, str) else v
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.astimezone(tz).replace(tzinfo=None, microsecond=0)


def cell(kind: str, v: Any, lang: str, tz: ZoneInfo) -> Cell:
    if kind.startswith("code:"):
        return Cell(code_label(lang, kind[5:], v) or None, code_label(lang, kind[5:], v))
    if v is None or v == "":
        return Cell(None, "—" if kind not in ("text", "ext") else "")
    if kind == "int":
        return Cell(int(v), str(int(v)), "0")
    if kind == "num":
        return Cell(round(float(v), 1), f"{float(v):.1f}", "0.0")
    if kind == "pct":
        return Cell(float(v), f"{float(v) * 100:.1f}%", "0.0%")
    if kind == "dur":
        return Cell(float(v) / 86400.0, _dur_text(float(v)), "[h]:mm:ss")
    if kind == "time":
        d = _local(v, tz)
        return Cell(d, d.strftime("%Y-%m-%d %H:%M:%S") if d else "", "yyyy-mm-dd hh:mm:ss")
    if kind == "slot":
        return Cell(interval_label(int(v)), interval_label(int(v)))
    if kind == "hour":
        return Cell(hour_label(int(v)), hour_label(int(v)))
    if kind == "hhmm":
        h, m = (int(x) for x in str(v).split(":")[:2])
        return Cell(interval_label(h * 2 + m // 30), interval_label(h * 2 + m // 30))
    if kind == "ext":
        return Cell(extension(str(v)), extension(str(v)))
    if kind == "bool":
        return Cell(t(lang, "yes" if v else "no"), t(lang, "yes" if v else "no"))
    return Cell(str(v), str(v))


def table(name: str, result: dict, lang: str, tz: ZoneInfo,
          keep: Callable[[dict], bool] = lambda row: True) -> Table:
    """``result`` (a report from :func:`callcenter.reporting.compute`) as shown to ``lang``."""
    specs = list(COLUMNS[name])
    rows = [r for r in result.get("rows") or [] if keep(r)]
    specs += [sp for sp in OPTIONAL.get(name, ()) if any(sp[0] in r for r in rows)]
    reasons: list[str] = []
    if name == "agents":
        reasons = sorted({k for r in rows for k in r.get("pause_by_reason", {})})
        at = [k for k, _ in specs].index("pause_seconds") + 1
        specs[at:at] = [(PAUSE_PREFIX + x, "dur") for x in reasons]
    headings = []
    for key, _ in specs:
        if key.startswith(PAUSE_PREFIX):
            headings.append(t(lang, "rep.paused_for", reason=pause_reason_label(lang, key[len(PAUSE_PREFIX):])))
        else:
            headings.append(column(lang, key))
    out = Table(name, [k for k, _ in specs], headings, [k for _, k in specs])
    for r in rows:
        cells = []
        for key, kind in specs:
            if key.startswith(PAUSE_PREFIX):
                v = r.get("pause_by_reason", {}).get(key[len(PAUSE_PREFIX):], 0.0 if r.get("login_seconds") is not None else None)
            else:
                v = r.get(key)
            cells.append(cell(kind, v, lang, tz))
        out.rows.append(cells)
        out.classes.append("over" if r.get("overdue") else "")
    return out


def plan_day_table(queues: list[str], rows: list[dict], lang: str, tz: ZoneInfo) -> Table:
    """One plan day (:func:`callcenter.staffing_plan.day_grid`): a row per half hour, the agents
    each queue needs, then all queues."""
    out = Table("staffing-plan-day", ["time", *queues, "agents_needed"],
                [column(lang, "time"), *queues, t(lang, "rep.plan_all_queues")],
                ["hhmm"] + ["int"] * (len(queues) + 1))
    for r in rows:
        out.rows.append([cell(kind, r.get(key), lang, tz) for key, kind in zip(out.keys, out.kinds)])
        out.classes.append("")
    return out
