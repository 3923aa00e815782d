"""Report figures from queue calls: pure functions over plain rows.

A row is a mapping with the ``queue_calls`` columns (CONTRACTS): ``queue``,
``entered_at`` (aware datetime), ``wait_seconds``, ``outcome``, ``agent``,
``agent_name``, ``talk_seconds``, ``within_target``, ``caller_number``.
Definitions follow docs/architecture.md ("Vocabulary"): service level = answered within target ÷ offered,
where offered leaves out abandons shorter than the short-abandon threshold.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import defaultdict
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from callcenter import staffing
from callcenter.queuecalls import stats
from callcenter.logs import mask_number

Row = Mapping[str, Any]
BUCKETS = (0, 10, 20, 30, 45, 60, 90, 120, 180)


def _abandoned(r: Row) -> bool:
    return r.get("outcome") in ("abandoned", "timeout")


def _answered(r: Row) -> bool:
    return r.get("outcome") in ("answered", "transferred") or (
        r.get("answered_at") is not None and r.get("outcome") not in ("abandoned", "timeout"))


def _wait(r: Row) -> float:
    return float(r.get("wait_seconds") or 0.0)


def summarize(rows: Iterable[Row], target: float, short_abandon: float) -> dict[str, Any]:
    """The answer-time summary, with the one set of definitions (``queuecalls.stats``),
    so reports, the wallboard and ``callcenter report answer-times`` agree."""
    return stats.summarize(rows, target, short_abandon)


def _local(d: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.astimezone(tz)


def answer_time_distribution(rows: Iterable[Row], buckets: tuple = BUCKETS) -> list[dict]:
    """Answered and abandoned calls per wait-time bucket ``[lo, hi)``; the last is open."""
    out = []
    for i, lo in enumerate(buckets):
        hi = buckets[i + 1] if i + 1 < len(buckets) else None
        out.append({"from_seconds": lo, "to_seconds": hi,
                    "label": f"{lo}-{hi}s" if hi is not None else f"{lo}s+",
                    "answered": 0, "abandoned": 0})
    for r in rows:
        w = _wait(r)
        idx = max(i for i, lo in enumerate(buckets) if w >= lo) if w >= buckets[0] else 0
        if _answered(r):
            out[idx]["answered"] += 1
        elif _abandoned(r):
            out[idx]["abandoned"] += 1
    return out


def service_level_by(rows: Iterable[Row], key: str, tz: ZoneInfo, target: float,
                     short_abandon: float) -> list[dict]:
    """``key`` = "hour" (0-23, all days together) or "day" (local date)."""
    groups: dict[Any, list] = defaultdict(list)
    for r in rows:
        local = _local(r["entered_at"], tz)
        groups[local.hour if key == "hour" else local.date().isoformat()].append(r)
    out = []
    for k in sorted(groups):
        s = summarize(groups[k], target, short_abandon)
        out.append({key: k, **s})
    return out


def per_agent(rows: Iterable[Row], target: float) -> list[dict]:
    groups: dict[str, list] = defaultdict(list)
    names: dict[str, str] = {}
    for r in rows:
        if _answered(r) and r.get("agent"):
            groups[r["agent"]].append(r)
            names[r["agent"]] = r.get("agent_name") or names.get(r["agent"], "")
    out = []
    for agent in sorted(groups):
        calls = groups[agent]
        talk = [float(r.get("talk_seconds") or 0) for r in calls]
        out.append({
            "agent": agent, "name": names.get(agent, ""), "answered": len(calls),
            "talk_seconds_total": round(sum(talk), 1),
            "talk_seconds_avg": round(sum(talk) / len(talk), 1),
            "wait_seconds_avg": round(sum(_wait(r) for r in calls) / len(calls), 1),
            "answered_within_target": sum(1 for r in calls if _wait(r) <= target),
        })
    return out


def abandoned_calls(rows: Iterable[Row], tz: ZoneInfo) -> list[dict]:
    out = []
    for r in rows:
        if _abandoned(r):
            out.append({
                "entered_at": _local(r["entered_at"], tz).isoformat(timespec="seconds"),
                "queue": r.get("queue", ""), "caller": mask_number(r.get("caller_number") or ""),
                "wait_seconds": round(_wait(r), 1), "outcome": r.get("outcome"),
            })
    return sorted(out, key=lambda x: x["entered_at"])


def staffing_by_hour(rows: Iterable[Row], tz: ZoneInfo, *, days: int, target: float, goal: float,
                     wrap_seconds: float = 0.0) -> list[dict]:
    """Agents needed per hour of day from the average arrivals and handling time per hour."""
    rows = list(rows)
    by_hour: dict[int, list] = defaultdict(list)
    for r in rows:
        by_hour[_local(r["entered_at"], tz).hour].append(r)
    all_talk = [float(r.get("talk_seconds") or 0) for r in rows if _answered(r) and r.get("talk_seconds")]
    default_aht = (sum(all_talk) / len(all_talk)) if all_talk else 180.0
    out = []
    for hour in sorted(by_hour):
        calls = by_hour[hour]
        talk = [float(r.get("talk_seconds") or 0) for r in calls if _answered(r) and r.get("talk_seconds")]
        aht = (sum(talk) / len(talk) if talk else default_aht) + wrap_seconds
        per_hour = len(calls) / max(1, days)
        adv = staffing.agents_needed(math.ceil(per_hour), 3600.0, aht, target_seconds=target, goal=goal)
        out.append({"hour": hour, "calls_per_hour": round(per_hour, 2), "aht_seconds": round(aht, 1),
                    "traffic_erlangs": round(adv.traffic_erlangs, 2), "agents_needed": adv.agents,
                    "expected_service_level": round(adv.service_level, 3),
                    "expected_asa_seconds": round(adv.asa_seconds, 1)})
    return out


# --- output formats --------------------------------------------------------------------------

def to_csv(rows: list[dict], columns: list[str] | None = None) -> bytes:
    """UTF-8 with BOM (so spreadsheet programs read Chinese correctly), formula-safe cells."""
    if columns is None:
        columns = list(rows[0].keys()) if rows else []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        v = f"{v:.4g}" if abs(v) < 1 else f"{v:.1f}"
    s = str(v)
    if s and s[0] in "=+-@\t\r" and not _is_number(s):
        s = "'" + s  # no formula injection when opened in a spreadsheet
    return s


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def histogram_svg(dist: list[dict], *, target: float, title: str, answered_label: str,
                  abandoned_label: str, width: int = 640, height: int = 260) -> str:
    """A stacked bar chart as standalone SVG (no script, no inline style: CSP-friendly)."""
    from xml.sax.saxutils import escape

    left, bottom, top, right = 40, 40, 30, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((d["answered"] + d["abandoned"] for d in dist), default=0) or 1
    bar_w = plot_w / max(1, len(dist))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" class="chart">',
             f'<title>{escape(title)}</title>',
             f'<text x="{left}" y="18" font-size="14" fill="#222">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#555"/>',
             f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end" fill="#555">{peak}</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end" fill="#555">0</text>']
    for i, d in enumerate(dist):
        x = left + i * bar_w + 4
        w = bar_w - 8
        y = top + plot_h
        for key, colour in (("answered", "#2e7d32" if d["from_seconds"] < target else "#ef6c00"),
                            ("abandoned", "#c62828")):
            h = plot_h * d[key] / peak
            if h > 0:
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                             f'fill="{colour}" class="bar-{key}"><title>{escape(d["label"])}: '
                             f'{d[key]}</title></rect>')
        total = d["answered"] + d["abandoned"]
        if total:
            parts.append(f'<text x="{x + w / 2:.1f}" y="{y - 3:.1f}" font-size="11" text-anchor="middle" '
                         f'fill="#222">{total}</text>')
        parts.append(f'<text x="{x + w / 2:.1f}" y="{top + plot_h + 14}" font-size="11" '
                     f'text-anchor="middle" fill="#333">{escape(d["label"])}</text>')
    lx = left + plot_w - 220
    parts += [f'<rect x="{lx}" y="{height - 16}" width="10" height="10" fill="#2e7d32"/>',
              f'<text x="{lx + 14}" y="{height - 7}" font-size="11" fill="#333">{escape(answered_label)}</text>',
              f'<rect x="{lx + 110}" y="{height - 16}" width="10" height="10" fill="#c62828"/>',
              f'<text x="{lx + 124}" y="{height - 7}" font-size="11" fill="#333">{escape(abandoned_label)}</text>',
              "</svg>"]
    return "".join(parts)
