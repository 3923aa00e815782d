"""Sessions, login rate limiting and CSRF tokens.

Sessions are rows in ``web_sessions`` keyed by the SHA-256 of a random token
kept in an HttpOnly cookie; each has a fixed expiry (``[web] session_hours``)
measured on the injected clock.  The CSRF token is per session and must come
back with every POST (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass

from sqlalchemy import delete, select

from callcenter.store.models import User, audit

from .models import WebSession
from .passwords import dummy_verify, verify_password

ROLES = ("agent", "supervisor", "admin")


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    display_name: str
    role: str
    interface: str
    language: str
    session_id: int
    csrf_token: str
    via_token: bool = False          # an API token (Authorization: Bearer), not a browser session
    flash: str = ""                  # the session's pending one-time message (callcenter/web/flash.py)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _ts(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)


def _aware(d: dt.datetime) -> dt.datetime:
    return d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


# --- functions run on the database thread (fn(session, ...)) -----------------------------

def check_credentials(s, username: str, password: str) -> User | None:
    user = s.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        dummy_verify(password)
        return None
    return user if verify_password(password, user.password_hash) else None


def login(s, username: str, password: str, now: float, hours: float, remote: str):
    """Verify and open a session; returns (token, user) or None."""
    user = check_credentials(s, username, password)
    if user is None:
        audit(s, username[:64] or "?", "login_failed", "user", username[:64], remote=remote)
        return None
    token = secrets.token_urlsafe(32)
    s.add(WebSession(token_hash=token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(24),
                     created_at=_ts(now), expires_at=_ts(now + hours * 3600), remote=remote[:64]))
    s.execute(delete(WebSession).where(WebSession.expires_at < _ts(now)))  # housekeeping
    audit(s, user.username, "login", "user", user.id, remote=remote)
    return token, user


def load(s, token: str, now: float) -> CurrentUser | None:
    row = s.execute(select(WebSession, User).join(User, User.id == WebSession.user_id)
                    .where(WebSession.token_hash == token_hash(token))).first()
    if row is None:
        return None
    sess, user = row
    if _aware(sess.expires_at) <= _ts(now) or not user.active:
        s.delete(sess)
        return None
    return CurrentUser(user.id, user.username, user.display_name or user.username, user.role,
                       user.interface, user.language, sess.id, sess.csrf_token, flash=sess.flash or "")


def audit_throttled(s, username: str, client: str, kinds: list[str]) -> None:
    audit(s, username[:64] or "?", "login_throttled", "user", username[:64], remote=client, keys=kinds)


def logout(s, session_id: int, username: str) -> None:
    s.execute(delete(WebSession).where(WebSession.id == session_id))
    audit(s, username, "logout", "user", username)


def set_language(s, user_id: int, lang: str) -> None:
    user = s.get(User, user_id)
    user.language = lang


@dataclass(frozen=True)
class ThrottleRule:
    """After ``free`` failures within ``window`` seconds, each further attempt waits
    ``2 ** (n - free)`` seconds (at most ``max_wait``) after the last failure."""
    free: int
    window: float
    max_wait: float

    def wait(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(2.0 ** (failures - self.free), self.max_wait)


# Per (user, client): a user mistyping at their desk is slowed, nobody else is.  Per user
# (all clients) and per client (all users, e.g. a NAT address): higher, for password
# sprays; still a slow-down, never a lock-out of the whole call centre.
PAIR = ThrottleRule(free=5, window=900, max_wait=300)
USER = ThrottleRule(free=20, window=900, max_wait=60)
CLIENT = ThrottleRule(free=50, window=900, max_wait=60)


class LoginThrottle:
    """Failed logins counted per (user, client), per user and per client, on the injected clock.

    :meth:`attempt` checks *and* counts in one step, before the password is verified
    (the event loop runs it without a pause), so concurrent wrong passwords cannot all
    pass the check: an attempt is counted as a failure until :meth:`succeeded` says
    otherwise."""

    def __init__(self, clock, *, pair: ThrottleRule = PAIR, user: ThrottleRule = USER,
                 client: ThrottleRule = CLIENT, max_keys: int = 20000):
        self.clock = clock
        self.rules = {"pair": pair, "user": user, "client": client}
        self.max_keys = max_keys
        self._failures: dict[tuple, deque] = {}

    def _keys(self, username: str, client: str) -> dict[str, tuple]:
        u = username.lower()
        return {"pair": ("pair", u, client), "user": ("user", u), "client": ("client", client)}

    def _recent(self, key: tuple, window: float, now: float) -> deque:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - window:
            q.popleft()
        if not q:
            self._failures.pop(key, None)
        return q

    def attempt(self, username: str, client: str) -> tuple[float, list[str]]:
        """(seconds to wait, []) when slowed down -- nothing counted then; else (0, the kinds
        of key that this attempt, should it fail, brings to their first slow-down)."""
        now = self.clock.seconds()
        keys = self._keys(username, client)
        wait = 0.0
        for kind, key in keys.items():
            rule = self.rules[kind]
            q = self._recent(key, rule.window, now)
            if q:
                wait = max(wait, q[-1] + rule.wait(len(q)) - now)
        if wait > 0:
            return wait, []
        reached = []
        for kind, key in keys.items():
            q = self._failures.setdefault(key, deque())
            q.append(now)
            if len(q) == self.rules[kind].free:
                reached.append(kind)
        while len(self._failures) > self.max_keys:  # bound memory under a spray of user names
            self._failures.pop(next(iter(self._failures)))
        return 0.0, reached

    def succeeded(self, username: str, client: str) -> None:
        """The attempt was right: it was no failure, and the pair starts afresh."""
        keys = self._keys(username, client)
        self._failures.pop(keys["pair"], None)
        for kind in ("user", "client"):
            q = self._failures.get(keys[kind])
            if q:
                q.pop()
                if not q:
                    self._failures.pop(keys[kind], None)
