"""General voice notifications (语音通知): a one-off campaign that plays its message to a list
of patients ("press 1 to confirm you heard it"), under the same rules as every campaign.

The campaign is ``kind="notification"``, ``mode="survey"`` with ``settings.message`` one of
``ivr_flows/spoken/notifications.yaml`` (checked when it is created); :func:`add_patients`
gives it one contact per listed patient (by the hospital's patient id), callable from now
for ``settings.days`` (default 3) days.  Windows, holidays, do-not-call, the phone gap and the
attempts are the claim's and the retry rules' as for any campaign; a patient who pressed 1
is ``completed`` (``record_survey_result``), 9 puts the number on the do-not-call list.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import compliance
from .campaigns import CampaignError, contact_row, insert_contacts
from .models import Campaign, DoNotCall, Patient
from .timeutil import to_dt

DEFAULT_DAYS = 3.0


@dataclass
class Added:
    created: int = 0
    already: int = 0             # listed before (re-running the same list adds nothing)
    do_not_call: int = 0
    unknown: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"created": self.created, "already": self.already, "do_not_call": self.do_not_call,
                "unknown": self.unknown}


def add_patients(session: Session, campaign: Campaign, patient_ids: list[str], *, now: float,
                 rules: compliance.Rules) -> Added:
    """One contact per patient of the list; an unknown patient id refuses the whole list
    (:class:`CampaignError` naming them) and nothing is written."""
    if campaign.kind != "notification":
        raise CampaignError(f"campaign {campaign.name!r} is a {campaign.kind} campaign, not a notification")
    wanted = list(dict.fromkeys(str(p).strip() for p in patient_ids if str(p).strip()))
    if not wanted:
        raise CampaignError("no patient ids given")
    found: dict[str, tuple[int, str, str]] = {}
    for i in range(0, len(wanted), 500):
        for pid, ext, phone, name in session.execute(select(Patient.id, Patient.external_id, Patient.phone,
                                                            Patient.name)
                                                     .where(Patient.external_id.in_(wanted[i:i + 500]))):
            found[ext] = (pid, phone, name)
    out = Added(unknown=[p for p in wanted if p not in found])
    if out.unknown:
        raise CampaignError(f"unknown patient id(s) {', '.join(out.unknown[:20])} (import patients first); "
                            "nothing added")
    phones = sorted({v[1] for v in found.values()})
    dnc: set[str] = set()
    for i in range(0, len(phones), 500):
        dnc.update(session.scalars(select(DoNotCall.phone).where(DoNotCall.phone.in_(phones[i:i + 500]))))
    start = compliance.next_window_open(rules, now)
    until = start + float((campaign.settings or {}).get("days") or DEFAULT_DAYS) * 86400.0
    rows = []
    for ext in wanted:
        pid, phone, name = found[ext]
        if phone in dnc:
            out.do_not_call += 1
            continue
        rows.append(contact_row(campaign.id, f"patient:{pid}", phone=phone, name=name, reason="notification",
                                ref_type="patient", ref_id=pid, due_after=to_dt(start), due_before=to_dt(until),
                                patient_id=pid, now=to_dt(now)))
    out.created = insert_contacts(session, rows)
    out.already = len(rows) - out.created
    return out
