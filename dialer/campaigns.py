"""Campaigns and the contacts they generate.

* revisit: every treatment x every step of its type's plan (``plans.yaml``) -> one
  contact, due from the local day ``treated + day`` for ``window_days``.
* no_show: every appointment marked ``missed`` -> one contact, due within
  ``[dialer] no_show_hours`` of calling time after it was marked.  A missed appointment
  is one piece of work across campaigns: it gets no contact while another one for it is
  open (a partial unique index, ``ux_contacts_open_appointment``) or once a contact dealt
  with the patient (``HANDLED``); a new one goes to a single campaign (``materialize_all``).
* reminder: every booked appointment ahead -> one reminder call before it
  (:mod:`dialer.appointments`; one per appointment slot across reminder campaigns).
* notification: a voice message (``settings.message``) for a list of patients
  (:mod:`dialer.notifications`).
* complaint_followup / callback: created one by one through :mod:`dialer.api`.

Contacts carry a dedupe key (campaign + source row + step), inserted with
``ON CONFLICT DO NOTHING``, so materialising twice creates nothing new.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, cast, exists, func, select, update
from sqlalchemy.orm import Session

from . import compliance
from .appointments import materialize_reminders, reminder_counts
from callcenter.errors import InvalidInput
from callcenter.store.base import utcnow

from .models import Appointment, Attempt, Campaign, Contact, DoNotCall, Patient, Treatment
from .timeutil import as_utc, to_dt

KINDS = ("revisit", "no_show", "reminder", "notification", "complaint_followup", "callback")
# The IVR flow (``ivr_flows/<name>.yaml``) a survey-mode call of each kind runs: the dialer
# sets it as channel variable SURVEY_FLOW, the ``survey`` context's AGI request path.
SURVEY_FLOWS = {"reminder": "appointment_reminder", "notification": "voice_notification"}
DEFAULT_SURVEY_FLOW = "revisit_survey"
# Kinds that are IVR calls only: no agent, so survey mode.
IVR_ONLY = ("reminder", "notification")
# Contact outcomes that mean the patient was dealt with: the work on its source row is over.
HANDLED = ("reached", "completed", "rebooked", "declined", "opted_out")
ID_CHUNK = 5000
MODES = ("progressive", "survey", "predictive")
STATES = ("draft", "running", "paused")


class CampaignError(InvalidInput):
    """A campaign definition or command that cannot be carried out as given."""


@dataclass(frozen=True)
class Settings:
    """The parts of ``[dialer]`` config that campaign generation needs."""

    timezone: str = "Asia/Shanghai"
    no_show_hours: float = 4.0
    followup_hours: float = 24.0
    default_queue: str = "consultation"
    no_show_lookback_days: float = 2.0
    reminder_lead_hours: float = 24.0
    reminder_stop_minutes: float = 60.0

    @classmethod
    def from_config(cls, config) -> "Settings":
        d = config.dialer
        return cls(timezone=config.hospital.timezone, no_show_hours=d.no_show_hours,
                   followup_hours=d.followup_hours, default_queue=d.default_queue,
                   reminder_lead_hours=d.reminder_lead_hours, reminder_stop_minutes=d.reminder_stop_minutes)


def create_campaign(session: Session, *, name: str, kind: str, mode: str = "progressive",
                    queue: str = "", max_attempts: int | None = None, settings: dict | None = None,
                    state: str = "draft", server: str = "default") -> Campaign:
    """``server``: the Asterisk server ([[ami]] name) its calls are originated on (the
    caller checks it against the configuration: ``Config.ami_server``)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise CampaignError("campaign name must be 1-64 characters")
    if kind not in KINDS:
        raise CampaignError(f"unknown campaign kind {kind!r} (known: {', '.join(KINDS)})")
    if mode not in MODES:
        raise CampaignError(f"unknown dial mode {mode!r} (known: {', '.join(MODES)})")
    if max_attempts is not None and max_attempts < 1:
        raise CampaignError("max attempts must be >= 1")
    if kind in IVR_ONLY and mode != "survey":
        raise CampaignError(f"a {kind} campaign is an IVR call: mode must be survey, not {mode!r}")
    if kind == "notification":
        from ivr_flows.segments import load_notifications

        known = load_notifications()
        message = (settings or {}).get("message")
        if message not in known:
            raise CampaignError(f"a notification campaign needs a message: one of {', '.join(known)} "
                                f"(ivr_flows/spoken/notifications.yaml), not {message!r}")
    if session.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise CampaignError(f"a campaign named {name!r} exists already")
    c = Campaign(name=name, kind=kind, mode=mode, queue=queue, max_attempts=max_attempts,
                 settings=settings or {}, state=state, created_at=utcnow(), server=server)
    session.add(c)
    session.flush()
    return c


def get_campaign(session: Session, ref: str | int) -> Campaign:
    if isinstance(ref, int) or str(ref).isdigit():
        c = session.get(Campaign, int(ref))
        if c is not None:
            return c
    c = session.scalar(select(Campaign).where(Campaign.name == str(ref)))
    if c is None:
        raise CampaignError(f"no campaign {ref!r}")
    return c


def set_state(session: Session, ref: str | int, state: str) -> Campaign:
    if state not in STATES:
        raise CampaignError(f"unknown state {state!r}")
    c = get_campaign(session, ref)
    c.state = state
    return c


def auto_name(kind: str) -> str:
    """The name of the campaign :func:`ensure_campaign` creates for ``kind`` (``complaint-followup``)."""
    return kind.replace("_", "-")


# Kinds whose campaign is created on first use, so its name is known before it exists.
AUTO_CREATED = ("complaint_followup", "callback")


def ensure_campaign(session: Session, kind: str, settings: Settings) -> Campaign:
    """The campaign that API-created contacts of ``kind`` go to (created running on first use)."""
    c = session.scalar(select(Campaign).where(Campaign.kind == kind).order_by(Campaign.id).limit(1))
    if c is None:
        c = create_campaign(session, name=auto_name(kind), kind=kind, mode="progressive",
                            queue=settings.default_queue, state="running")
    return c


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.id)))


def insert_contacts(session: Session, rows: list[dict]) -> int:
    """Insert contacts, skipping those that exist (dedupe key) or whose missed appointment
    already has an open contact (``ux_contacts_open_appointment``); returns how many were new."""
    if not rows:
        return 0
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    table = Contact.__table__
    # Core executemany: SQLAlchemy batches it into multi-row INSERTs ("insertmanyvalues")
    # with one cached compilation; RETURNING yields only the rows actually inserted.
    # No conflict target: both unique indexes (dedupe key, open appointment) skip the row.
    stmt = dialect_insert(table).on_conflict_do_nothing().returning(table.c.id)
    return len(session.connection().execute(stmt, rows).all())


def close_appointment_work(session: Session, appointment_ids: list, when: dt.datetime,
                           keep_contact: int | None = None) -> int:
    """The patient's missed appointments were dealt with (rebooked / declined on another
    contact, or the hospital's record no longer says missed): their pending contacts in any
    campaign end ``superseded``.  Returns how many were closed."""
    refs = [str(i) for i in appointment_ids]
    total = 0
    for i in range(0, len(refs), 500):
        q = update(Contact).where(Contact.ref_type == "appointment", Contact.ref_id.in_(refs[i:i + 500]),
                                  Contact.state == "pending")
        if keep_contact is not None:
            q = q.where(Contact.id != keep_contact)
        res = session.execute(q.values(state="done", outcome="superseded", completed_at=when)
                              .execution_options(synchronize_session=False))
        total += res.rowcount or 0
    return total


def contact_row(campaign_id: int, key: str, *, phone: str, name: str, reason: str, ref_type: str,
                ref_id: str, due_after: dt.datetime, due_before: dt.datetime | None,
                patient_id: int | None, now: dt.datetime) -> dict:
    return dict(campaign_id=campaign_id, dedupe_key=f"{campaign_id}:{key}"[:160], phone=phone,
                name=name, reason=reason, ref_type=ref_type, ref_id=str(ref_id), due_after=due_after,
                due_before=due_before, next_attempt_at=due_after, state="pending", outcome="",
                attempts=0, last_disposition="", claimed_by="", claim_token="", patient_id=patient_id,
                created_at=now)


def materialize(session: Session, campaign: Campaign, *, now: float, plans=None,
                settings: Settings = Settings(), rules=None,
                treatment_ids: list[int] | None = None,
                appointment_ids: list[int] | None = None) -> int:
    """Create the contacts ``campaign`` is owed (all, or for the given source rows)."""
    ids = treatment_ids if campaign.kind == "revisit" else appointment_ids
    if ids is not None and len(ids) > ID_CHUNK:  # keep IN lists far below bind-parameter limits
        return sum(materialize(session, campaign, now=now, plans=plans, settings=settings, rules=rules,
                               treatment_ids=ids[i:i + ID_CHUNK], appointment_ids=ids[i:i + ID_CHUNK])
                   for i in range(0, len(ids), ID_CHUNK))
    if campaign.kind == "revisit":
        if plans is None:
            from .plans import load_plans

            plans = load_plans()
        return _materialize_revisit(session, campaign, now, plans, settings, treatment_ids)
    if campaign.kind == "no_show":
        return _materialize_no_show(session, campaign, now, settings, rules, appointment_ids)
    if campaign.kind == "reminder":
        if rules is None:
            raise CampaignError("reminder campaigns need the calling rules (the window decides when a reminder is due)")
        return materialize_reminders(session, campaign, now=now, settings=settings, rules=rules,
                                     appointment_ids=appointment_ids)
    return 0


def _dnc_phones(session, phones) -> set[str]:
    phones = list(set(phones))
    out: set[str] = set()
    for i in range(0, len(phones), 500):
        out.update(session.scalars(select(DoNotCall.phone).where(DoNotCall.phone.in_(phones[i:i + 500]))))
    return out


def _materialize_revisit(session, campaign, now, plans, settings, treatment_ids) -> int:
    zone = ZoneInfo(settings.timezone)
    types = (campaign.settings or {}).get("treatment_types") or list(plans)
    now_dt = to_dt(now)
    q = (select(Treatment.id, Treatment.treatment_type, Treatment.treated_at, Treatment.patient_id,
                Patient.phone, Patient.name)
         .join(Patient, Patient.id == Treatment.patient_id)
         .where(Treatment.treatment_type.in_(types)).order_by(Treatment.id))
    if treatment_ids is not None:
        if not treatment_ids:
            return 0
        q = q.where(Treatment.id.in_(treatment_ids))
    created = 0
    batch: list[dict] = []
    rows = session.execute(q.execution_options(yield_per=2000))
    for part in rows.partitions(2000):
        dnc = _dnc_phones(session, [r.phone for r in part])
        for r in part:
            if r.phone in dnc:
                continue
            plan = plans.get(r.treatment_type)
            if plan is None:
                continue
            local_day = as_utc(r.treated_at).astimezone(zone).date()
            for step in plan.steps:
                start = dt.datetime.combine(local_day + dt.timedelta(days=step.day), dt.time(0), zone)
                end = start + dt.timedelta(days=step.window_days)
                if end.timestamp() <= now:
                    continue
                batch.append(contact_row(
                    campaign.id, f"treatment:{r.id}:{step.name}", phone=r.phone, name=r.name,
                    reason=f"revisit:{r.treatment_type}:{step.name}", ref_type="treatment", ref_id=r.id,
                    due_after=start.astimezone(dt.timezone.utc), due_before=end.astimezone(dt.timezone.utc),
                    patient_id=r.patient_id, now=now_dt))
        if len(batch) >= 2000:
            created += insert_contacts(session, batch)
            batch = []
    return created + insert_contacts(session, batch)


def _materialize_no_show(session, campaign, now, settings, rules, appointment_ids) -> int:
    now_dt = to_dt(now)
    other = and_(Contact.ref_type == "appointment", Contact.ref_id == cast(Appointment.id, String))
    q = (select(Appointment.id, Appointment.patient_id, Appointment.scheduled_at, Patient.phone, Patient.name)
         .join(Patient, Patient.id == Appointment.patient_id)
         .where(Appointment.status == "missed")
         # one piece of work: not while another campaign has it open, never once handled
         .where(~exists().where(other, Contact.state.in_(("pending", "dialing")) | Contact.outcome.in_(HANDLED))))
    if appointment_ids is not None:
        if not appointment_ids:
            return 0
        q = q.where(Appointment.id.in_(appointment_ids))
    else:
        q = q.where(Appointment.scheduled_at >= to_dt(now - settings.no_show_lookback_days * 86400))
    rows = session.execute(q).all()
    dnc = _dnc_phones(session, [r.phone for r in rows])
    opens = compliance.next_window_open(rules, now) if rules is not None else now
    due_before = to_dt(opens + settings.no_show_hours * 3600)
    batch = [contact_row(campaign.id, f"appointment:{r.id}", phone=r.phone, name=r.name, reason="no_show",
                         ref_type="appointment", ref_id=r.id, due_after=now_dt, due_before=due_before,
                         patient_id=r.patient_id, now=now_dt)
             for r in rows if r.phone not in dnc]
    return insert_contacts(session, batch)


def materialize_all(session: Session, *, now: float, plans, settings: Settings, rules,
                    treatment_ids=None, appointment_ids=None, reminder_ids=None) -> int:
    """After an import: give the revisit campaigns their new contacts, each newly missed
    appointment to one no-show campaign and each new or moved booked one to one reminder
    campaign (running before draft before paused, then oldest)."""
    total = 0
    order = case((Campaign.state == "running", 0), (Campaign.state == "draft", 1), else_=2)
    for c in session.scalars(select(Campaign).where(Campaign.kind.in_(("revisit", "no_show", "reminder")))
                             .order_by(order, Campaign.id)):
        # a campaign later in the order finds the appointments taken (open contact / slot key)
        ids = reminder_ids if c.kind == "reminder" else appointment_ids if c.kind == "no_show" else None
        total += materialize(session, c, now=now, plans=plans, settings=settings, rules=rules,
                             treatment_ids=treatment_ids if c.kind == "revisit" else None, appointment_ids=ids)
    return total


def status(session: Session, campaign: Campaign, *, now: float, abandon_days: float = 30.0) -> dict:
    """Counts an operator needs to judge a campaign (one pass over its contacts and attempts)."""
    now_dt = to_dt(now)

    def n(cond):
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    c = session.execute(select(
        func.count(),
        n((Contact.state == "pending") & (Contact.next_attempt_at <= now_dt)),
        n(Contact.state == "pending"),
        n(Contact.state == "dialing"),
        n(Contact.attempts > 0),
        n(Contact.outcome.in_(("completed", "reached", "rebooked", "declined"))),
        n(Contact.outcome == "rebooked"),
        n(Contact.outcome == "declined"),
        n(Contact.outcome == "opted_out"),
        n(Contact.outcome == "unreachable"),
        n(Contact.outcome == "expired"),
        func.coalesce(func.sum(Contact.attempts), 0),
    ).where(Contact.campaign_id == campaign.id)).one()
    since = to_dt(now - abandon_days * 86400)
    a = session.execute(select(
        func.count(),
        n(Attempt.answered_at.is_not(None)),
        n(Attempt.answered_at.is_not(None) & (Attempt.started_at >= since)),
        n(Attempt.abandoned & (Attempt.started_at >= since)),
        # "reached" means what it means on an attempt: an agent took the call (abandoned
        # and hung-up answers are "answered" attempts, not reached contacts)
        func.count(func.distinct(case((Attempt.connected_at.is_not(None), Attempt.contact_id)))),
    ).where(Attempt.campaign_id == campaign.id)).one()
    disp = dict(session.execute(select(Attempt.disposition, func.count())
                                .where(Attempt.campaign_id == campaign.id)
                                .group_by(Attempt.disposition)).all())
    scores: dict[str, list[float]] = {}
    overall: list[float] = []
    for survey, score in session.execute(select(Attempt.survey, Attempt.score).where(
            Attempt.campaign_id == campaign.id, Attempt.survey.is_not(None))):
        if score is not None:
            overall.append(score)
        for k, v in (survey or {}).items():
            if campaign.kind == "reminder":  # {"answer": "confirm"}: counted below, not a score
                continue
            try:
                scores.setdefault(k, []).append(float(v))
            except (TypeError, ValueError):
                pass
    dialled = int(c[4])
    answered_30, abandoned_30 = int(a[2]), int(a[3])
    return {
        "campaign": campaign.name, "kind": campaign.kind, "mode": campaign.mode, "state": campaign.state,
        "contacts": int(c[0]), "due": int(c[1]), "pending": int(c[2]), "in_call": int(c[3]),
        "dialled": dialled, "reached": int(a[4]), "completed": int(c[5]), "rebooked": int(c[6]),
        "declined": int(c[7]), "opted_out": int(c[8]), "unreachable": int(c[9]), "expired": int(c[10]),
        "attempts": int(a[0]), "answered": int(a[1]),
        "attempts_per_contact": round(int(c[11]) / dialled, 2) if dialled else 0.0,
        "abandon_rate": round(abandoned_30 / answered_30, 4) if answered_30 else 0.0,
        "dispositions": {k or "in_progress": int(v) for k, v in disp.items()},
        "survey_responses": len(overall),
        "survey_score_avg": round(sum(overall) / len(overall), 2) if overall else None,
        "survey_question_avg": {k: round(sum(v) / len(v), 2) for k, v in sorted(scores.items())},
        **({"answers": reminder_counts(session, campaign.id)} if campaign.kind == "reminder" else {}),
    }
