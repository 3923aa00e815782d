"""The recordings search: query parameters -> catalogue filters (pure, no I/O).

Shared by the JSON list (``GET /recordings/``) and the search page, so both accept the
same parameters and refuse the same input with a message naming the parameter.  Days
are the hospital's local days; a caller number is compared in its stored (E.164) form.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.phones import canonical
from callcenter.web.http import BadRequest
from callcenter.web.params import MAX_OFFSET, date_arg, int_arg

_SAFE = re.compile(r"^[A-Za-z0-9._-]{0,128}$")
_INTERFACE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*/[^\s,;|]{1,120}$")
_TICKET = re.compile(r"^(?:[1-9][0-9]{0,11}|TS-[0-9]{4}-[0-9]{6})$", re.IGNORECASE)
KINDS = ("queue", "complaint", "voice_message", "outbound")
STATUSES = ("recording", "ready", "missing", "failed", "purged")


@dataclass
class Search:
    filters: dict[str, Any] = field(default_factory=dict)   # catalog.query keywords
    ticket: str = ""                 # a ticket number or id, resolved against the tickets
    limit: int = 100
    offset: int = 0
    day_from: dt.date | None = None
    day_to: dt.date | None = None


def _named(parse_arg, args: dict, name: str, *rest):
    """``parse_arg(args, name, ...)`` with its error naming ``name`` as the field."""
    try:
        return parse_arg(args, name, *rest)
    except BadRequest as exc:
        raise BadRequest(exc.message.removeprefix(f"{name}: "), field=name) from None


def parse(args: dict, *, tz: ZoneInfo, region: str) -> Search:
    """``args`` (query parameters) as a :class:`Search`, or :class:`BadRequest` naming the parameter."""
    out = Search()
    f = out.filters
    for key, allowed in (("kind", KINDS), ("status", STATUSES)):
        value = (args.get(key) or "").strip()
        if value:
            if value not in allowed:
                raise BadRequest(f"must be one of {', '.join(allowed)}", field=key)
            f[key] = value
    for key in ("queue", "uniqueid"):
        value = (args.get(key) or "").strip()
        if value:
            if not _SAFE.match(value):
                raise BadRequest("letters, digits, '.', '-', '_' only", field=key)
            f[key] = value
    agent = (args.get("agent") or "").strip()
    if agent:
        if not _INTERFACE.match(agent):
            raise BadRequest("the agent's phone (queue member interface), e.g. PJSIP/1001", field="agent")
        f["agent"] = agent
    number = (args.get("number") or "").strip()
    if number:
        stored = canonical(number, region)
        if len(number) > 32 or sum(c.isdigit() for c in stored) < 3:
            raise BadRequest("not a phone number", field="number")
        f["caller_number"] = stored
    ticket = (args.get("ticket") or args.get("ticket_id") or "").strip()
    if ticket:
        if not _TICKET.match(ticket):
            raise BadRequest("a complaint ticket number (TS-2026-000123) or id", field="ticket")
        out.ticket = ticket.upper()
    out.day_from, out.day_to = _named(date_arg, args, "from", None), _named(date_arg, args, "to", None)
    if out.day_from and out.day_to and out.day_from > out.day_to:
        raise BadRequest("after to", field="from")
    if out.day_from:
        f["started_from"] = dt.datetime.combine(out.day_from, dt.time(), tz)
    if out.day_to:
        f["started_before"] = dt.datetime.combine(out.day_to + dt.timedelta(days=1), dt.time(), tz)
    out.limit = _named(int_arg, args, "limit", 100, 1, 500)
    out.offset = _named(int_arg, args, "offset", 0, 0, MAX_OFFSET)  # beyond, the database's integer overflows
    return out
