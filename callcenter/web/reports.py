"""Report output formats: CSV and XLSX for spreadsheets, and the answer-time chart as SVG.

The figures themselves are counted by the database (:mod:`callcenter.reporting`); the
CSV and XLSX of a report are written from the same :class:`~callcenter.report_tables.Table`
as the page, so they have its columns and headings in the reader's language.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from callcenter.report_tables import Table

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table_csv(table: Table) -> bytes:
    """The table as on screen: headings, then each cell's text (UTF-8 with BOM, formula-safe)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([_safe(h) for h in table.headings])
    for row in table.rows:
        w.writerow(["" if c.value is None else _safe(c.text) for c in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _safe(s: str) -> str:
    if s and s[0] in "=+-@\t\r" and not _is_number(s.rstrip("%")):
        return "'" + s  # no formula injection when opened in a spreadsheet
    return s


def tables_xlsx(tables: Sequence[tuple[str, Table]]) -> bytes:
    """One sheet per ``(title, table)``: headings bold and frozen, numbers as numbers with
    the page's format (percent, ``[h]:mm:ss``, local date-times), text never a formula."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for title, table in tables:
        ws = wb.create_sheet(_sheet_title(title, used))
        bold = Font(bold=True)
        widths = [len(h) for h in table.headings]
        for j, h in enumerate(table.headings, 1):
            c = ws.cell(row=1, column=j, value=h)
            c.data_type = "s"
            c.font = bold
        for i, row in enumerate(table.rows, 2):
            for j, cl in enumerate(row, 1):
                c = ws.cell(row=i, column=j, value=cl.value)
                if isinstance(cl.value, str):
                    c.data_type = "s"  # "=..." stays text, never a formula
                elif cl.fmt:
                    c.number_format = cl.fmt
                widths[j - 1] = max(widths[j - 1], len(cl.text))
        for j, w in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(j)].width = min(60, 2 + w * 1.3)
        ws.freeze_panes = "A2"
    if not tables:
        wb.create_sheet("-")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _sheet_title(title: str, used: set[str]) -> str:
    base = "".join(ch for ch in title if ch not in "[]:*?/\\")[:28] or "report"
    name, n = base, 2
    while name in used:
        name, n = f"{base[:25]} {n}", n + 1
    used.add(name)
    return name


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
