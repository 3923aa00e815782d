"""Handlers: patients' appointment answers for the hospital's booking system, cancelled slots
for re-use (JSON and CSV), and the patient list of a voice notification campaign.

The answers are the ones stored on the appointments (:mod:`dialer.appointments`) from
reminder calls and the hotline IVR.  Every read is audited (patient data).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

from callcenter.store.models import audit

from .http import BadRequest, Req, Response, as_json
from .params import moment_arg

MAX_PATIENTS = 100_000


def _since(req: Req) -> dt.datetime | None:
    return moment_arg(req.args, "since")


def _answers(s, *, since, actor: str, what: str) -> list[dict]:
    from dialer.appointments import answers

    rows = answers(s, since=since)
    audit(s, actor, "view", "appointment_answers", what, rows=len(rows), since=since.isoformat() if since else "")
    return rows


async def answers_api(app, req: Req) -> Response:
    rows = await app.db.run(_answers, since=_since(req), actor=req.user.username, what="api")
    return as_json({"answers": rows, "count": len(rows)})


async def answers_csv(app, req: Req) -> Response:
    from dialer.appointments import EXPORT_COLUMNS

    rows = await app.db.run(_answers, since=_since(req), actor=req.user.username, what="csv")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(200, ("\ufeff" + out.getvalue()).encode("utf-8"), "text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="appointment_answers.csv"'})


async def cancelled_slots_api(app, req: Req) -> Response:
    from dialer.appointments import cancelled_slots

    now = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)

    def work(s):
        rows = cancelled_slots(s, now=now)
        audit(s, req.user.username, "view", "appointment_answers", "cancelled_slots", rows=len(rows))
        return rows
    rows = await app.db.run(work)
    return as_json({"slots": rows, "count": len(rows)})


async def notification_patients_api(app, req: Req) -> Response:
    """Body: a JSON list of the hospital's patient ids (or ``{"patient_ids": [...]}``)."""
    from dialer.campaigns import CampaignError, get_campaign
    from dialer.notifications import add_patients

    from .views_campaigns import _ctx

    request = req.raw
    if (request.getHeader("content-type") or "").split(";")[0].strip().lower() != "application/json":
        raise BadRequest("body must be JSON (Content-Type: application/json): a list of patient ids")
    request.content.seek(0)
    try:
        data = json.loads(request.content.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if isinstance(data, dict) and set(data) == {"patient_ids"}:
        data = data["patient_ids"]
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise BadRequest('body must be a JSON list of patient ids (strings), or {"patient_ids": [...]}')
    if len(data) > MAX_PATIENTS:
        raise BadRequest(f"at most {MAX_PATIENTS} patients per request")
    rules = _ctx(app).rules

    def work(s):
        try:
            c = get_campaign(s, req.params["id"])
        except CampaignError:
            return None
        added = add_patients(s, c, data, now=app.clock.seconds(), rules=rules)
        audit(s, req.user.username, "add_patients", "campaign", c.id, **added.to_dict())
        return added.to_dict()
    try:
        result = await app.db.run(work)
    except CampaignError as exc:
        return as_json({"error": str(exc), "status": 422}, 422)
    if result is None:
        return as_json({"error": f"no campaign {req.params['id'][:40]!r}", "status": 404}, 404)
    return as_json(result, 201 if result["created"] else 200)
