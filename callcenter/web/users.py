"""Web accounts: add, change, disable/enable, set a password — the one home for the
command line (``callcenter users``) and the admin's users page.

Each function takes the caller's DB session and the acting user's name, checks its
input (an :class:`~callcenter.errors.InvalidInput` naming the field), writes the
audit row in the same transaction, and ends the user's open web sessions when what
they may do changes (password, role, disabled).  An administrator cannot disable
or demote themselves, and the last active administrator cannot be removed: someone
must always be able to manage the accounts.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, select

from callcenter.errors import Conflict, DomainError, InvalidInput, NotFound
from callcenter.store.models import User, audit

from .auth import ROLES
from .models import WebSession
from .passwords import WeakPassword, check_strength, hash_password

LANGUAGES = ("zh", "en")
_USERNAME = re.compile(r"^[\w.@-]{1,64}$")
_INTERFACE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*/[^\s,;|]{1,120}$")


class AccountError(DomainError):
    """A refused account change; ``reason`` is a stable code the users page words in the
    reader's language (``users.err.<reason>``), ``field`` the input at fault."""

    def __init__(self, message: str, *, field: str, reason: str):
        super().__init__(message, field=field)
        self.reason = reason


class AccountInvalid(AccountError, InvalidInput):
    pass


class AccountConflict(AccountError, Conflict):
    pass


class AccountNotFound(AccountError, NotFound):
    pass


def _refuse(field: str, reason: str, message: str, cls: type[AccountError] = AccountInvalid) -> AccountError:
    return cls(message, field=field, reason=reason)


def check_username(name: str) -> str:
    """1-64 letters, digits, ``.``, ``_``, ``-`` or ``@`` (a name that is also a path segment)."""
    name = (name or "").strip()
    if not _USERNAME.match(name):
        raise _refuse("username", "username", "1-64 letters, digits, '.', '_', '-' or '@'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise _refuse("role", "role", f"must be one of {', '.join(ROLES)}")
    return role


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise _refuse("language", "language", f"must be one of {', '.join(LANGUAGES)}")
    return lang


def check_interface(interface: str) -> str:
    """An Asterisk queue-member interface (``PJSIP/1001``, ``Local/1001@agents/n``) or empty."""
    interface = (interface or "").strip()
    if interface and not _INTERFACE.match(interface):
        raise _refuse("interface", "interface", "an Asterisk interface such as PJSIP/1001 (or empty)")
    return interface


def check_name(name: str) -> str:
    name = (name or "").strip()
    if len(name) > 128:
        raise _refuse("name", "name", "at most 128 characters")
    return name


def check_password(password: str) -> str:
    try:
        check_strength(password or "")
    except WeakPassword as exc:
        raise _refuse("password", "password", str(exc)) from None
    return password


def _get(s, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise _refuse("username", "unknown", f"no user {username!r}", AccountNotFound)
    return user


def _end_sessions(s, user: User) -> None:
    s.execute(delete(WebSession).where(WebSession.user_id == user.id))


def _other_admins(s, user: User) -> int:
    return s.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.active.is_(True), User.id != user.id)) or 0


def add(s, *, actor: str, username: str, role: str, password: str, name: str = "", interface: str = "",
        language: str) -> User:
    """A new active user; ``language`` is their interface language (the hospital's by default)."""
    username, role = check_username(username), check_role(role)
    name, interface, language = check_name(name), check_interface(interface), check_language(language)
    check_password(password)
    if s.scalar(select(User).where(User.username == username)) is not None:
        raise _refuse("username", "exists", f"user {username!r} already exists", AccountConflict)
    user = User(username=username, display_name=name or username, role=role, interface=interface,
                language=language, password_hash=hash_password(password), active=True)
    s.add(user)
    s.flush()
    audit(s, actor, "user_add", "user", username, role=role, interface=interface, language=language)
    return user


def set_password(s, *, actor: str, username: str, password: str) -> User:
    """A new password; the user's open sessions end (they log in with the new one)."""
    check_password(password)
    user = _get(s, username)
    user.password_hash = hash_password(password)
    _end_sessions(s, user)
    audit(s, actor, "user_passwd", "user", user.username)
    return user


def set_active(s, *, actor: str, username: str, active: bool) -> User:
    """Disable (their sessions end at once) or enable a user."""
    user = _get(s, username)
    if not active:
        if user.username == actor:
            raise _refuse("username", "self_disable", "you cannot disable your own account", AccountConflict)
        if user.role == "admin" and user.active and not _other_admins(s, user):
            raise _refuse("username", "last_admin", "the last active administrator cannot be disabled",
                          AccountConflict)
        _end_sessions(s, user)
    if user.active != active:
        user.active = active
        audit(s, actor, "user_enable" if active else "user_disable", "user", user.username)
    return user


def update(s, *, actor: str, username: str, **changes: Any) -> dict[str, tuple]:
    """Change ``role``, ``interface``, ``language`` and/or ``name``; returns {field: (old, new)}
    for what changed (audited).  A role change ends the user's sessions."""
    checks = {"role": check_role, "interface": check_interface, "language": check_language, "name": check_name}
    unknown = set(changes) - set(checks)
    if unknown:
        raise _refuse(sorted(unknown)[0], "unchangeable", f"cannot change {', '.join(sorted(unknown))}")
    new = {k: checks[k](v) for k, v in changes.items()}
    user = _get(s, username)
    if "role" in new and new["role"] != user.role and user.role == "admin":
        if user.username == actor:
            raise _refuse("role", "self_demote", "you cannot take the administrator role from yourself",
                          AccountConflict)
        if user.active and not _other_admins(s, user):
            raise _refuse("role", "last_admin", "the last active administrator must stay an administrator",
                          AccountConflict)
    attrs = {"role": "role", "interface": "interface", "language": "language", "name": "display_name"}
    changed = {}
    for key, value in new.items():
        old = getattr(user, attrs[key])
        if key == "name":
            value = value or user.username
        if old != value:
            setattr(user, attrs[key], value)
            changed[key] = (old, value)
    if changed:
        if "role" in changed:
            _end_sessions(s, user)
        audit(s, actor, "user_update", "user", user.username,
              **{k: {"from": o, "to": n} for k, (o, n) in changed.items()})
    return changed


def listing(s) -> list[dict]:
    return [{"username": u.username, "name": u.display_name, "role": u.role, "interface": u.interface,
             "language": u.language, "active": u.active}
            for u in s.scalars(select(User).order_by(User.username))]
