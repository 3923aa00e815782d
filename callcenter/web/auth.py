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
                       user.interface, user.language, sess.id, sess.csrf_token)


def logout(s, session_id: int, username: str) -> None:
    s.execute(delete(WebSession).where(WebSession.id == session_id))
    audit(s, username, "logout", "user", username)


def set_language(s, user_id: int, lang: str) -> None:
    user = s.get(User, user_id)
    user.language = lang


class LoginLimiter:
    """Failed logins per key (user name, remote address) in a sliding window.

    After ``max_failures`` within ``window`` seconds the key is locked until the
    oldest failure leaves the window.  Time comes from the injected clock.
    """

    def __init__(self, clock, *, max_failures: int = 5, window: float = 300.0):
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque] = {}

    def _prune(self, key: str) -> deque:
        q = self._failures.get(key)
        if q is None:
            return deque()
        now = self.clock.seconds()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            self._failures.pop(key, None)
        return q

    def retry_after(self, *keys: str) -> float:
        """Seconds until a locked key opens again; 0 when none is locked."""
        wait = 0.0
        now = self.clock.seconds()
        for key in keys:
            q = self._prune(key)
            if len(q) >= self.max_failures:
                wait = max(wait, q[0] + self.window - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self.clock.seconds()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > 10000:  # bound memory under a spray of user names
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
