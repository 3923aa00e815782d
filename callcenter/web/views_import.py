"""Imports of patients, treatments and appointments: the JSON API and the browser pages.

``POST /api/import/{patients|treatments|appointments}``: the hospital's information system
sends rows as JSON (same fields as the CSV files, docs/dialer.md).  All rows are validated
first: any bad row -> 422 with every problem ``{line, field, reason}`` (line = item number,
1-based) and nothing written; otherwise all rows are applied in one transaction (201, or
200 when nothing changed: re-sending the same rows is harmless).  Usually called with an
API token (``Authorization: Bearer``); audited like the CLI import.

``/imports`` (supervisors): a CSV file is uploaded, decoded like the CLI does
(``dialer.importer.decode_csv``: UTF-8 or GBK/GB18030), validated and *previewed* —
rows, every problem by line and field, what would be inserted/updated — without writing
anything; the file waits (``import_uploads``) until the user confirms, then is imported
in one transaction and audited.
"""
from __future__ import annotations

import csv
import json

from callcenter.store.models import audit
from callcenter.text import clean
from dialer.importer import COLUMNS

from .http import BadRequest, Req, Response, as_json
from .i18n import has_message, t
from .views_campaigns import _ctx

KINDS = ("patients", "treatments", "appointments")
MAX_BYTES = 20_000_000
MAX_ROWS = 100_000
MAX_UPLOAD = MAX_BYTES + 64 * 1024   # a multipart form: the file and the other fields


def _rows(request) -> list:
    ctype = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise BadRequest("body must be JSON (Content-Type: application/json): a list of rows")
    request.content.seek(0)
    raw = request.content.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise BadRequest(f"request body larger than {MAX_BYTES // 1_000_000} MB; send the rows in batches")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if isinstance(data, dict) and set(data) == {"rows"}:
        data = data["rows"]
    if not isinstance(data, list):
        raise BadRequest('body must be a JSON list of rows (or {"rows": [...]})')
    if len(data) > MAX_ROWS:
        raise BadRequest(f"at most {MAX_ROWS} rows per request; send the rows in batches")
    return data


def _import(s, kind: str, rows: list, *, actor: str, now: float, ctx, region: str, source: str = "",
            lines: list[int] | None = None, preview: bool = False) -> dict:
    from dialer.importer import import_rows

    source = (source or f"api:{actor}")[:128]
    plans = ctx.plans() if kind == "treatments" else None
    result = import_rows(s, kind, rows, source, lines=lines, region=region, plans=plans, rules=ctx.rules,
                         settings=ctx.settings, now=now, preview=preview)
    audit(s, actor, "import_preview" if preview else "import", kind, source, rows=result.rows,
          applied=result.applied, inserted=result.inserted, updated=result.updated, unchanged=result.unchanged,
          contacts_created=result.contacts_created, errors=len(result.errors))
    out = result.to_dict()
    out["problems"] = result.errors  # the RowErrors, with their codes (pages translate them)
    return out


async def import_api(app, req: Req) -> Response:
    kind = req.params["kind"]
    rows = _rows(req.raw)
    result = await app.db.run(_import, kind, rows, actor=req.user.username, now=app.clock.seconds(),
                              ctx=_ctx(app), region=app.config.hospital.region)
    result.pop("problems")
    if result["errors"]:
        n = len(result["errors"])
        return as_json({"error": f"{n} bad row(s); nothing imported", "status": 422, **result}, 422)
    changed = result["inserted"] or result["updated"]
    return as_json(result, 201 if changed else 200)


# --- pages ---------------------------------------------------------------------------------

PREVIEW_ROWS = 20      # rows shown from the top of the file
SHOWN_PROBLEMS = 500   # problems listed (all are counted)


def problem_text(lang: str, e) -> str:
    """A row problem in the user's language (``imp.err.<code>``; the reason's own words
    when the code has no message, e.g. a phone number's particular fault in English)."""
    return t(lang, "imp.err." + e.code, **{f"p{i}": v for i, v in enumerate(e.params)}) \
        if has_message("imp.err." + e.code) else e.reason


def _page(app, req: Req, status: int = 200, **ctx) -> Response:
    base = {"kinds": KINDS, "kind": req.form.get("kind", "patients") if req.form else "patients",
            "columns": COLUMNS, "error": "", "preview": None, "done": None, "max_mb": MAX_BYTES // 1_000_000}
    return app.render(req, "import.html", status, **{**base, **ctx})


async def import_page(app, req: Req) -> Response:
    kind = req.arg("kind")
    return _page(app, req, kind=kind if kind in KINDS else "patients")


def _kind(req: Req) -> str:
    kind = req.form.get("kind") or ""
    if kind not in KINDS:
        raise BadRequest(f"kind: must be one of {', '.join(KINDS)}")
    return kind


def _preview_view(lang: str, kind: str, rows: list[dict], lines: list[int], result: dict) -> dict:
    """What the preview table shows: the file's columns, the first rows and every row with
    a problem (marked by field), the problems in the user's language."""
    header = list(rows[0]["__header__"]) if rows and "__header__" in rows[0] else []
    problems = result["problems"]
    bad_fields: dict[int, set] = {}
    for e in problems:
        bad_fields.setdefault(e.line, set()).add(e.field)
    shown = []
    for row, line in zip(rows[1:], lines[1:]):
        if len(shown) >= PREVIEW_ROWS and line not in bad_fields:
            continue
        if len(shown) >= PREVIEW_ROWS + SHOWN_PROBLEMS:
            break
        shown.append({"line": line, "cells": [("" if row.get(c) is None else str(row.get(c))) for c in header],
                      "bad": sorted(bad_fields.get(line, ())), "ok": line not in bad_fields})
    return {"header": header, "rows": shown,
            "problems": [{"line": e.line, "field": e.field, "message": problem_text(lang, e)}
                         for e in problems[:SHOWN_PROBLEMS]],
            "problem_count": len(problems), "bad_rows": len(bad_fields), "total": result["rows"],
            "inserted": result["inserted"], "updated": result["updated"], "unchanged": result["unchanged"]}


async def preview_form(app, req: Req) -> Response:
    """Decode, validate and show the file; hold it for the confirmation when it is clean."""
    from dialer.importer import CsvEncodingError, decode_csv, parse_csv

    kind = _kind(req)
    upload = req.files.get("file")
    if upload is None or not upload.data.strip():
        return _page(app, req, 400, kind=kind, error=t(req.lang, "imp.no_file"))
    name = clean(upload.filename.replace("\\", "/").rsplit("/", 1)[-1]).strip()[:100] or "upload.csv"  # for audit and page

    def read():  # decoding and splitting up to 20 MB: off the loop
        text, encoding = decode_csv(upload.data, name)
        return (text, encoding, *parse_csv(text))

    try:
        text, encoding, rows, lines = await app.db.run_blocking(read)
    except CsvEncodingError as exc:
        return _page(app, req, 422, kind=kind, error=t(req.lang, "imp.enc." + exc.reason, file=name))
    except csv.Error as exc:
        return _page(app, req, 422, kind=kind, error=t(req.lang, "imp.not_csv", file=name, detail=str(exc)))
    if len(rows) <= 1:
        return _page(app, req, 422, kind=kind, error=t(req.lang, "imp.empty", file=name))
    if len(rows) - 1 > MAX_ROWS:
        return _page(app, req, 413, kind=kind, error=t(req.lang, "imp.too_many", n=MAX_ROWS))
    result = await app.db.run(_import, kind, list(rows), lines=list(lines), actor=req.user.username,
                              now=app.clock.seconds(), ctx=_ctx(app), region=app.config.hospital.region,
                              source=f"web:{req.user.username}:{name}", preview=True)
    view = _preview_view(req.lang, kind, rows, lines, result)
    view.update(filename=name, encoding=encoding, token="")
    if not result["problems"]:
        view["token"] = app.import_uploads.put(req.user.username, kind, name, text, encoding)
    return _page(app, req, 200 if view["token"] else 422, kind=kind, preview=view)


async def confirm_form(app, req: Req) -> Response:
    """Import the held file in one transaction (all or nothing), audited."""
    from dialer.importer import parse_csv

    staged = app.import_uploads.take(req.user.username, req.form.get("token") or "")
    if staged is None:
        return _page(app, req, 409, error=t(req.lang, "imp.expired"))
    rows, lines = await app.db.run_blocking(parse_csv, staged.text)
    result = await app.db.run(_import, staged.kind, list(rows), lines=list(lines), actor=req.user.username,
                              now=app.clock.seconds(), ctx=_ctx(app), region=app.config.hospital.region,
                              source=f"web:{req.user.username}:{staged.filename}")
    if result["problems"]:  # the data changed since the preview: show why, nothing was written
        view = _preview_view(req.lang, staged.kind, rows, lines, result)
        view.update(filename=staged.filename, encoding=staged.encoding, token="")
        return _page(app, req, 422, kind=staged.kind, preview=view)
    done = {k: result[k] for k in ("rows", "inserted", "updated", "unchanged", "contacts_created",
                                   "contacts_closed")}
    return _page(app, req, 200, kind=staged.kind, done={**done, "filename": staged.filename})
