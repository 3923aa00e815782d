"""API tokens: credentials for machine clients that have no browser session.

``callcenter tokens add NAME --role supervisor|admin`` prints the token once; only its
SHA-256 is kept (a copy of the database opens nothing).  A request to an API route with
``Authorization: Bearer <token>`` acts as that token with its role; it needs no CSRF token
(no cookie is involved, so a third-party page cannot make the browser send it).  Every
use is audited (actor ``token:NAME``), and so is every refused token.  Revoked tokens
stop working at once.
"""
from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select

from callcenter.errors import InvalidInput
from callcenter.store.models import audit

from .auth import CurrentUser, token_hash
from .models import ApiToken

TOKEN_ROLES = ("supervisor", "admin")
PREFIX = "cct_"


class TokenError(InvalidInput):
    """A token name or role that cannot be used."""


def _ts(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)


def valid_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise TokenError(f"token name {name!r}: 1-64 letters, digits, '-', '_', '.'")
    return name


def add(s, name: str, role: str, *, actor: str, now: float) -> str:
    """Create a token; returns it in clear (the only time it exists outside the client)."""
    name = valid_name(name)
    if role not in TOKEN_ROLES:
        raise TokenError(f"role must be one of {', '.join(TOKEN_ROLES)}")
    if s.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise TokenError(f"a token named {name!r} exists already (revoked tokens keep their name)")
    token = PREFIX + secrets.token_urlsafe(32)
    s.add(ApiToken(name=name, role=role, token_hash=token_hash(token), created_at=_ts(now), created_by=actor))
    audit(s, actor, "api_token_add", "api_token", name, role=role)
    return token


def revoke(s, name: str, *, actor: str, now: float) -> None:
    row = s.scalar(select(ApiToken).where(ApiToken.name == name))
    if row is None:
        raise TokenError(f"no token {name!r}")
    if row.revoked_at is None:
        row.revoked_at = _ts(now)
        audit(s, actor, "api_token_revoke", "api_token", name)


def listing(s) -> list[dict]:
    return [{"name": r.name, "role": r.role, "created_at": r.created_at, "created_by": r.created_by,
             "last_used_at": r.last_used_at, "revoked": r.revoked_at is not None}
            for r in s.scalars(select(ApiToken).order_by(ApiToken.name))]


def authenticate(s, token: str, now: float, *, method: str, path: str, remote: str) -> CurrentUser | None:
    """The token's identity for this request, or None; the use (or refusal) is audited."""
    row = None
    if token.startswith(PREFIX) and len(token) <= 100:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    where = f"{method} {path}"[:200]
    if row is None or row.revoked_at is not None:
        audit(s, f"token:{row.name}" if row is not None else "token:?", "api_token_refused", "route", where,
              remote=remote, reason="revoked" if row is not None else "unknown")
        return None
    row.last_used_at = _ts(now)
    audit(s, f"token:{row.name}", "api_token_use", "route", where, remote=remote, role=row.role)
    return CurrentUser(id=0, username=f"token:{row.name}", display_name=row.name, role=row.role, interface="",
                       language="en", session_id=0, csrf_token="", via_token=True)
