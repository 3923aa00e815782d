"""``POST /api/import/{patients|treatments|appointments}``: the hospital's information system
sends rows as JSON (same fields as the CSV files, docs/dialer.md).

All rows are validated first: any bad row -> 422 with every problem ``{line, field, reason}``
(line = item number, 1-based) and nothing written; otherwise all rows are applied in one
transaction (201, or 200 when nothing changed: re-sending the same rows is harmless).
Usually called with an API token (``Authorization: Bearer``); audited like the CLI import.
"""
from __future__ import annotations

import json

from callcenter.store.models import audit

from .http import BadRequest, Req, Response, as_json

KINDS = ("patients", "treatments", "appointments")
MAX_BYTES = 20_000_000
MAX_ROWS = 100_000


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


def _import(s, kind: str, rows: list, *, actor: str, now: float, ctx, region: str) -> dict:
    from dialer.importer import import_rows

    plans = ctx.plans() if kind == "treatments" else None
    result = import_rows(s, kind, rows, f"api:{actor}"[:128], region=region, plans=plans, rules=ctx.rules,
                         settings=ctx.settings, now=now)
    audit(s, actor, "import", kind, f"api:{actor}", rows=result.rows, applied=result.applied,
          inserted=result.inserted, updated=result.updated, unchanged=result.unchanged,
          contacts_created=result.contacts_created, errors=len(result.errors))
    return result.to_dict()


async def import_api(app, req: Req) -> Response:
    from .views_campaigns import _ctx

    kind = req.params["kind"]
    rows = _rows(req.raw)
    result = await app.db.run(_import, kind, rows, actor=req.user.username, now=app.clock.seconds(),
                              ctx=_ctx(app), region=app.config.hospital.region)
    if result["errors"]:
        n = len(result["errors"])
        return as_json({"error": f"{n} bad row(s); nothing imported", "status": 422, **result}, 422)
    changed = result["inserted"] or result["updated"]
    return as_json(result, 201 if changed else 200)
