"""The dialer's durable work queue: claim due contacts, record outcomes, reconcile.

Every function takes a SQLAlchemy session (run it through ``Database.run`` from
the event loop) and works set-based.  Claiming on PostgreSQL is one statement whose pick
is ``SELECT ... FOR UPDATE SKIP LOCKED``, so several dialer instances never take the same
contact; SQLite has one writer at a time, so the same pick without the locking clause
is already atomic.  The claim also writes
the attempt rows and pushes ``next_attempt_at`` out by the longest retry delay,
so an attempt whose outcome is lost in a crash can never be redialled early.
"""
from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

from sqlalchemy import Integer, bindparam, case, exists, func, insert, literal, literal_column, or_, select, update
from sqlalchemy.orm import Session, aliased

from callcenter.store.locks import get_for_update

from . import compliance
from .models import Attempt, Campaign, Contact, DoNotCall, Patient
from .timeutil import to_dt, to_ts
from .tracker import Abandoned, CauseSeen, Connected, Ended, Originated


@dataclass(frozen=True)
class Claimed:
    attempt_id: int
    contact_id: int
    campaign_id: int
    phone: str
    name: str = ""
    language: str = ""  # the patient's (import), for an IVR call: PATIENT_LANGUAGE


def _probe(q):
    """``EXISTS (q LIMIT 1 OFFSET 0)``: the ``OFFSET`` keeps PostgreSQL from turning the check into an
    anti-join, so it stays a per-candidate index probe while the planner walks the due index
    in order and stops at the ``LIMIT``.  As an anti-join its row estimate (1 row, whatever
    the statistics) made it read and sort every due contact of the campaign (80 ms at 10k)."""
    return exists(q.limit(1).offset(0))


# Literals, not bound parameters: the partial indexes ``ix_contacts_dialing_phone`` and
# ``ix_contacts_pending_deadline`` are usable only where the statement itself says the state, and a
# prepared statement's generic plan (psycopg prepares a statement run 5 times) knows no values.
PENDING = literal_column("'pending'")
DIALING = literal_column("'dialing'")
_TS = Contact.next_attempt_at.type


def due_query(*, lock: bool, phone_gap: bool, exclude_phones: bool):
    """(id, phone) of the next due contacts of campaign ``:in_campaign`` at ``:now``, at most
    ``:limit``: pending, due and not past their deadline (a reminder is never placed after it),
    not on the do-not-call list, phone not in one of our calls nor in ``:exclude_phones`` (on a
    call Asterisk reports, :mod:`.callstate`), and (``phone_gap``) not called for another reason
    since ``:since``.  Built from bound parameters, so each shape is built once."""
    now = bindparam("now", type_=_TS)
    busy = aliased(Contact)
    q = (
        select(Contact.id, Contact.phone)
        .where(Contact.campaign_id == bindparam("in_campaign", type_=Integer))
        .where(Contact.state == PENDING, Contact.next_attempt_at <= now)
        .where(or_(Contact.due_before.is_(None), Contact.due_before > now))
        .where(~_probe(select(DoNotCall.id).where(DoNotCall.phone == Contact.phone)))
        .where(~_probe(select(busy.id).where(busy.phone == Contact.phone, busy.state == DIALING)))
        .order_by(Contact.next_attempt_at)
        .limit(bindparam("limit", type_=Integer))
    )
    if phone_gap:
        q = q.where(~_probe(select(Attempt.id).where(Attempt.phone == Contact.phone,
                                                     Attempt.started_at > bindparam("since", type_=_TS),
                                                     Attempt.contact_id != Contact.id)))
    if exclude_phones:
        q = q.where(Contact.phone.notin_(bindparam("exclude_phones", expanding=True)))
    if lock:
        q = q.with_for_update(skip_locked=True, of=Contact)
    return q


def one_per_number(due):
    """The lowest contact id of each number among ``due``: one statement sees the table as it
    was before it ran, so two due contacts for the same number would be taken together; the
    others stay pending, untouched (locked until the claim commits, then due again)."""
    d = due.subquery("due")
    return select(func.min(d.c.id)).group_by(d.c.phone)


def _take(pg: bool, phone_gap: bool, exclude_phones: bool):
    """The claim's ``UPDATE`` of the chosen contacts, returning what the attempt rows need."""
    chosen = one_per_number(due_query(lock=pg, phone_gap=phone_gap, exclude_phones=exclude_phones))
    c = Contact.__table__
    # PostgreSQL: ``id = ANY(ARRAY(...))`` runs the pick once and updates by primary key; as
    # ``IN (...)`` the planner may hash-join it against a scan of every contact
    return (update(c)
            .where(c.c.id == func.any(func.array(chosen.scalar_subquery())) if pg else c.c.id.in_(chosen))
            .values(state="dialing", claim_token=bindparam("token"), claimed_by=bindparam("by_instance"),
                    attempts=c.c.attempts + 1, next_attempt_at=bindparam("guard_until", type_=_TS))
            .returning(c.c.id, c.c.campaign_id, c.c.phone, c.c.name, c.c.patient_id))


# the attempt row's columns the claim sets (besides contact, campaign and phone)
_ATTEMPT = dict(instance=bindparam("by_instance"), state=literal("dialing"), disposition=literal(""),
                abandoned=literal(False), started_at=bindparam("now", type_=_TS), channel=literal(""),
                uniqueid=literal(""), agent=literal(""), agent_interface=literal(""))


@functools.cache
def claim_statement(pg: bool, phone_gap: bool, exclude_phones: bool):
    """The claim, once per shape, run with :func:`claim_params`.

    PostgreSQL: one statement (pick ``FOR UPDATE SKIP LOCKED``, update, attempt rows, the
    patients' language), rows (attempt id, contact id, campaign id, phone, name, language).
    SQLite: the ``UPDATE`` alone; :func:`claim` writes the attempt rows after it."""
    taken = _take(pg, phone_gap, exclude_phones)
    if not pg:
        return taken
    a, p = Attempt.__table__, Patient.__table__
    taken = taken.cte("taken")
    made = (insert(a).from_select(["contact_id", "campaign_id", "phone", *_ATTEMPT],
                                  select(taken.c.id, taken.c.campaign_id, taken.c.phone, *_ATTEMPT.values())
                                  .order_by(taken.c.id))
            .returning(a.c.id, a.c.contact_id, a.c.campaign_id, a.c.phone).cte("made"))
    return (select(made.c.id, made.c.contact_id, made.c.campaign_id, made.c.phone, taken.c.name, p.c.language)
            .select_from(made.join(taken, taken.c.id == made.c.contact_id).outerjoin(p, p.c.id == taken.c.patient_id))
            .order_by(made.c.id))


def claim_params(*, campaign_id: int, limit: int, now: float, instance: str, guard_seconds: float,
                 phone_gap: float = 0.0, exclude_phones: frozenset[str] | set[str] = frozenset()) -> dict:
    params = dict(in_campaign=campaign_id, limit=limit, now=to_dt(now), by_instance=instance,
                  token=uuid.uuid4().hex, guard_until=to_dt(now + guard_seconds))
    if phone_gap > 0:
        params["since"] = to_dt(now - phone_gap)
    if exclude_phones:
        params["exclude_phones"] = sorted(exclude_phones)
    return params


def claim(session: Session, *, campaign_id: int, limit: int, now: float, instance: str,
          guard_seconds: float, phone_gap: float = 0.0,
          exclude_phones: frozenset[str] | set[str] = frozenset()) -> list[Claimed]:
    """Take up to ``limit`` due contacts of one campaign and write their attempt rows.

    PostgreSQL: one statement, one round trip and a short text: 50 attempt rows as a
    multi-row ``INSERT`` were 650 parameters that psycopg parsed again on every claim, and
    building the statements again each time took as long.  SQLite: the same steps as
    separate statements in the one transaction (a single writer, no round trips)."""
    if limit <= 0:
        return []
    pg = session.bind.dialect.name == "postgresql"
    stmt = claim_statement(pg, phone_gap > 0, bool(exclude_phones))
    params = claim_params(campaign_id=campaign_id, limit=limit, now=now, instance=instance,
                          guard_seconds=guard_seconds, phone_gap=phone_gap, exclude_phones=exclude_phones)
    conn = session.connection()   # Core statements: no ORM work per row
    if pg:
        return [Claimed(aid, cid, camp, phone, name=name or "", language=lang or "")
                for aid, cid, camp, phone, name, lang in conn.execute(stmt, params).all()]
    got = sorted(conn.execute(stmt, params).all())
    if not got:
        return []
    a, p = Attempt.__table__, Patient.__table__
    pids = {r.patient_id for r in got if r.patient_id is not None}
    lang = dict(conn.execute(select(p.c.id, p.c.language).where(p.c.id.in_(pids))).all()) if pids else {}
    who = {r.id: r for r in got}
    fixed = dict(instance=instance, state="dialing", disposition="", abandoned=False, started_at=to_dt(now),
                 channel="", uniqueid="", agent="", agent_interface="")
    made = conn.execute(
        insert(a).returning(a.c.id, a.c.contact_id, a.c.campaign_id, a.c.phone, sort_by_parameter_order=True),
        [dict(contact_id=r.id, campaign_id=r.campaign_id, phone=r.phone, **fixed) for r in got]).all()
    return [Claimed(aid, cid, camp, phone, name=who[cid].name or "", language=lang.get(who[cid].patient_id) or "")
            for aid, cid, camp, phone in made]


def release_unsent(session: Session, attempt_id: int, now: float, retry_in: float) -> None:
    """The Originate was never sent (no AMI connection): undo the attempt's count."""
    a = session.get(Attempt, attempt_id)
    if a is None or a.state != "dialing":
        return
    a.state, a.disposition, a.ended_at = "ended", "not_sent", to_dt(now)
    c = session.get(Contact, a.contact_id)
    if c.state == "dialing":
        c.state, c.attempts = "pending", max(0, c.attempts - 1)
        c.next_attempt_at = to_dt(now + retry_in)


def _finish_contact(session, c: Contact, disposition: str, now: float, rules) -> None:
    """Apply compliance.after_attempt to a contact that is in a call."""
    if c.state != "dialing":
        return  # already finished (survey result, agent outcome, opt-out)
    campaign = session.get(Campaign, c.campaign_id)
    nxt = compliance.after_attempt(rules, disposition, c.attempts, now,
                                   max_attempts=campaign.max_attempts if campaign else None,
                                   due_before=to_ts(c.due_before))
    c.last_disposition = disposition
    if nxt.retry_at is None:
        c.state, c.completed_at = "done", to_dt(now)
        c.outcome = c.outcome or nxt.outcome
    else:
        c.state, c.next_attempt_at = "pending", to_dt(nxt.retry_at)


def apply_fact(session: Session, fact, rules, short_call: float = 5.0) -> str | None:
    """Record one tracker fact; returns the attempt's final disposition when it ended."""
    # locked: a survey answer written at the same moment (both retried after a database
    # outage) must not be overwritten by a disposition computed from the row before it
    a = get_for_update(session, Attempt, fact.attempt_id)
    if a is None:
        return None
    now = fact.t
    c = session.get(Contact, a.contact_id)
    if isinstance(fact, CauseSeen):
        if a.hangup_cause is None:
            a.hangup_cause = fact.cause
        return None
    if isinstance(fact, Originated):
        a.reason_code = fact.reason
        if fact.disposition == "answered":
            a.state, a.answered_at = "answered", to_dt(now)
            a.channel, a.uniqueid = fact.channel[:128], fact.uniqueid
            return None
        if a.state not in ("dialing", "unknown"):
            return None
        a.state, a.disposition, a.ended_at = "ended", fact.disposition, to_dt(now)
        if fact.cause is not None and a.hangup_cause is None:
            a.hangup_cause = fact.cause
        _finish_contact(session, c, fact.disposition, now, rules)
        return fact.disposition
    if isinstance(fact, Connected):
        a.connected_at, a.agent, a.agent_interface = to_dt(now), fact.agent[:128], fact.interface[:128]
        if c.state == "dialing" and not c.outcome:
            c.outcome = "reached"
        return None
    if isinstance(fact, Abandoned):
        a.abandoned = True
        return None
    if isinstance(fact, Ended):
        a.state, a.ended_at = "ended", to_dt(now)
        if fact.cause is not None:
            a.hangup_cause = fact.cause
        if a.disposition in ("completed", "opted_out"):
            disp = a.disposition
        elif a.connected_at is not None:
            disp = "reached"
        elif a.abandoned:
            disp = "abandoned"
        else:
            # Answered, no survey answer and no agent: the patient hung up on us.
            disp = "hungup"
        a.disposition = disp
        _finish_contact(session, c, disp, now, rules)
        return disp
    return None


def reconcile(session: Session, *, now: float, instance: str | None, stale_dialing: float,
              stale_answered: float, rules) -> int:
    """Close attempts whose outcome was lost (crash, restart, lost connection).

    Nothing is re-originated: the attempt becomes ``unknown`` (it counts), and its
    contact returns to ``pending`` no earlier than the guard set at claim time
    (the longest retry delay), or is finished when its attempts are used up.
    ``instance`` given: all of this instance's open attempts (it just restarted);
    otherwise only attempts older than the stale limits (any instance).
    """
    now_dt = to_dt(now)
    cond_stale = ((Attempt.state == "dialing") & (Attempt.started_at < to_dt(now - stale_dialing))) | (
        (Attempt.state == "answered") & (Attempt.started_at < to_dt(now - stale_answered)))
    cond = cond_stale
    if instance is not None:
        cond = cond_stale | (Attempt.state.in_(("dialing", "answered")) & (Attempt.instance == instance))
    lost = select(Attempt.contact_id).where(cond).scalar_subquery()
    limit = func.coalesce(
        select(Campaign.max_attempts).where(Campaign.id == Contact.campaign_id).scalar_subquery(),
        rules.max_attempts)
    guard = to_dt(now + rules.longest_retry)
    session.execute(
        update(Contact).where(Contact.id.in_(lost), Contact.state == "dialing").values(
            state=case((Contact.attempts >= limit, "done"), else_="pending"),
            outcome=case((Contact.attempts >= limit, "unreachable"), else_=Contact.outcome),
            completed_at=case((Contact.attempts >= limit, now_dt), else_=None),
            last_disposition="unknown",
            next_attempt_at=case((Contact.next_attempt_at < guard, guard), else_=Contact.next_attempt_at),
        ).execution_options(synchronize_session=False))
    res = session.execute(update(Attempt).where(cond).values(
        state="unknown", ended_at=now_dt,
        disposition=case((Attempt.disposition == "", "unknown"), else_=Attempt.disposition),
    ).execution_options(synchronize_session=False))
    return res.rowcount or 0


def expire(session: Session, now: float) -> int:
    """Pending contacts past their deadline are finished: unreachable (tried) or expired."""
    now_dt = to_dt(now)
    res = session.execute(
        update(Contact).where(Contact.state == PENDING, Contact.due_before.is_not(None),  # ix_contacts_pending_deadline
                              Contact.due_before < now_dt)
        .values(state="done", completed_at=now_dt,
                outcome=case((Contact.attempts > 0, "unreachable"), else_="expired"))
        .execution_options(synchronize_session=False))
    return res.rowcount or 0


def abandon_counts(session: Session, campaign_id: int, since: float, limit: float = 2.0) -> tuple[int, int]:
    """(answered, abandoned) attempts of a campaign since ``since``, for predictive pacing;
    abandoned = not connected to an agent within ``limit`` s (:mod:`.outbound`)."""
    from .outbound import abandon_counts as regulatory

    return regulatory(session, campaign_id, since, limit)


def unconnected_on_queue(session: Session, queue: str, default_queue: str, mode: str = "predictive") -> int:
    """Calls of ``mode`` campaigns on ``queue`` (any campaign, any instance) still ringing or
    answered without an agent: each will want an agent of that queue."""
    q = (select(func.count()).select_from(Attempt).join(Campaign, Campaign.id == Attempt.campaign_id)
         .where(Campaign.mode == mode, Attempt.state.in_(("dialing", "answered")),
                Attempt.connected_at.is_(None), Attempt.abandoned.is_(False)))
    if queue == default_queue:
        q = q.where(Campaign.queue.in_((queue, "")))
    else:
        q = q.where(Campaign.queue == queue)
    return int(session.scalar(q) or 0)


def attempt_by_call(session: Session, ids: list[str]) -> int | None:
    """The attempt whose patient channel had one of these Uniqueids/Linkedids (the screen
    pop's fallback when the ``VarSet ATTEMPT_ID`` was not seen, e.g. the web restarted)."""
    ids = [i for i in ids if i]
    if not ids:
        return None
    return session.scalar(select(Attempt.id).where(Attempt.uniqueid.in_(ids)).order_by(Attempt.id.desc()).limit(1))


def unknown_servers(session: Session, servers: list[str]) -> list[tuple[str, str]]:
    """(campaign, server) of the running campaigns assigned to a server not configured."""
    return [(n, srv) for n, srv in session.execute(
        select(Campaign.name, Campaign.server).where(Campaign.state == "running", Campaign.server.not_in(servers)))]


def running_campaigns(session: Session, server: str = "default") -> list[dict]:
    """The running campaigns assigned to Asterisk ``server`` (the dialer of that server's site)."""
    rows = session.execute(select(Campaign).where(Campaign.state == "running", Campaign.server == server)
                           .order_by(Campaign.id)).scalars()
    return [dict(id=c.id, name=c.name, kind=c.kind, mode=c.mode, queue=c.queue,
                 max_attempts=c.max_attempts, settings=dict(c.settings or {})) for c in rows]
