"""``callcenter report <name>``: one ``report`` command that several packages add to.

A package's ``cli.register(sub, common)`` calls :func:`add_report`; the first
call creates the ``report`` parser, later ones reuse it, so the order of
``COMMAND_MODULES`` does not matter.  Every report gets the same options
(``--since``, ``--until`` as dates or ISO times in the hospital's timezone,
``--format table|csv|json``) and can print with :func:`emit`.

    p = add_report(sub, common, "answer-times", help="...", func=cmd)
    def cmd(args, config):
        since, until = period(args, config)
        emit(rows, args.format, columns=[...])
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from typing import Any, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo


def report_subparsers(sub, common) -> Any:
    """The ``report`` command's sub-parsers (created on first use in this parser tree)."""
    parser = sub.choices.get("report")
    if parser is None:
        parser = sub.add_parser("report", parents=[common], help="reports (complaints, answer times, ...)")
        parser._report_sub = parser.add_subparsers(dest="report", metavar="REPORT", required=True)
    return parser._report_sub


def add_report(sub, common, name: str, *, help: str, func: Callable[[argparse.Namespace, Any], int],
               formats: Sequence[str] = ("table", "csv", "json")) -> argparse.ArgumentParser:
    """Add ``callcenter report <name>`` with the common options; returns its parser."""
    p = report_subparsers(sub, common).add_parser(name, parents=[common], help=help)
    p.add_argument("--since", metavar="DATE", help="from this date/time (inclusive; hospital timezone)")
    p.add_argument("--until", metavar="DATE", help="until this date/time (exclusive; a date means its end)")
    p.add_argument("--format", choices=list(formats), default="table")
    p.set_defaults(func=func)
    return p


def parse_when(text: str | None, tz: ZoneInfo, *, end: bool = False) -> dt.datetime | None:
    """``2026-10-01`` (start of that day; with ``end`` the start of the next day) or an ISO time."""
    if not text:
        return None
    from callcenter.cli import UserError

    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if end:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(), tzinfo=tz)
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"not a date or ISO time: {text!r} (e.g. 2026-10-01 or 2026-10-01T08:00)") from None
    return t if t.tzinfo else t.replace(tzinfo=tz)


def period(args, config) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``(since, until)`` as aware datetimes (None: open-ended)."""
    tz = ZoneInfo(config.hospital.timezone)
    since = parse_when(getattr(args, "since", None), tz)
    until = parse_when(getattr(args, "until", None), tz, end=True)
    if since and until and until <= since:
        from callcenter.cli import UserError

        raise UserError("--until must be after --since")
    return since, until


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def emit(rows: Sequence[dict], fmt: str, *, columns: Sequence[str] | None = None, title: str = "",
         out=None, json_value: Any = None) -> None:
    """Print ``rows`` as an aligned table, CSV (header + rows) or JSON (``json_value`` if given)."""
    out = out or sys.stdout
    columns = list(columns or (rows[0].keys() if rows else []))
    if fmt == "json":
        json.dump(rows if json_value is None else json_value, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
    elif fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in columns])
    else:
        if title:
            out.write(f"{title}\n")
        table = [[str(c) for c in columns]] + [[_cell(r.get(c)) for c in columns] for r in rows]
        widths = [max(_width(row[i]) for row in table) for i in range(len(columns))]
        for n, row in enumerate(table):
            out.write("  ".join(_pad(v, widths[i]) for i, v in enumerate(row)).rstrip() + "\n")
            if n == 0:
                out.write("  ".join("-" * w for w in widths) + "\n")


def _width(s: str) -> int:
    """Display width: CJK characters take two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


def iter_sections(sections: Iterable[tuple[str, Sequence[dict], Sequence[str]]], fmt: str, out=None) -> None:
    """Several tables one after another (table format only)."""
    out = out or sys.stdout
    for i, (title, rows, cols) in enumerate(sections):
        if i:
            out.write("\n")
        emit(rows, fmt, columns=cols, title=title, out=out)
