"""``callcenter users add|passwd|list``: web accounts.

Passwords come from an interactive prompt (asked twice, not echoed) or, for
scripts, from the first line of standard input with ``--password-stdin``;
never from the command line (it would show in ``ps`` and shell history).
Changing a password ends the user's open sessions.
"""
from __future__ import annotations

import getpass
import sys

from sqlalchemy import delete, select

from callcenter.cli import UserError

from .auth import ROLES
from .passwords import WeakPassword, check_strength, hash_password


def register(sub, common) -> None:
    users = sub.add_parser("users", parents=[common], help="web users (agents, supervisors, admins)")
    us = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    p = us.add_parser("add", parents=[common], help="create a user")
    p.add_argument("username")
    p.add_argument("--role", choices=ROLES, required=True)
    p.add_argument("--name", default="", help="display name")
    p.add_argument("--interface", default="", help="agent's queue member interface, e.g. PJSIP/1001")
    p.add_argument("--language", choices=("zh", "en"), default=None)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_add)
    p = us.add_parser("passwd", parents=[common], help="set a user's password (ends their sessions)")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_passwd)
    p = us.add_parser("list", parents=[common], help="list users")
    p.set_defaults(func=cmd_list)
    p = us.add_parser("disable", parents=[common], help="disable a user (ends their sessions)")
    p.add_argument("username")
    p.set_defaults(func=cmd_disable)

    tk = sub.add_parser("tokens", parents=[common], help="API tokens for machine clients (Authorization: Bearer)")
    ts = tk.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    p = ts.add_parser("add", parents=[common], help="create a token (printed once, stored hashed)")
    p.add_argument("name")
    p.add_argument("--role", choices=("supervisor", "admin"), required=True)
    p.set_defaults(func=cmd_token_add)
    p = ts.add_parser("list", parents=[common], help="list tokens (never the tokens themselves)")
    p.set_defaults(func=cmd_token_list)
    p = ts.add_parser("revoke", parents=[common], help="revoke a token (stops working at once)")
    p.add_argument("name")
    p.set_defaults(func=cmd_token_revoke)


def _read_password(args) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UserError("no terminal for the password prompt; use --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise UserError("the passwords do not match")
    try:
        check_strength(password)
    except WeakPassword as exc:
        raise UserError(str(exc)) from None
    return password


def _valid_username(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise UserError(f"user name {name!r}: 1-64 characters, no spaces")
    return name


def _open(config):
    from callcenter.commands import open_db

    return open_db(config)


def cmd_add(args, config) -> int:
    from callcenter.store.models import User, audit

    username = _valid_username(args.username)
    if args.role == "agent" and not args.interface:
        print("note: agent without --interface: no queue log-in or screen pop until one is set",
              file=sys.stderr)
    password = _read_password(args)
    with _open(config) as db:
        with db.session() as s:
            if s.scalar(select(User).where(User.username == username)) is not None:
                raise UserError(f"user {username!r} already exists (use: callcenter users passwd)")
            s.add(User(username=username, display_name=args.name or username, role=args.role,
                       interface=args.interface, language=args.language or config.hospital.language,
                       password_hash=hash_password(password), active=True))
            audit(s, "cli", "user_add", "user", username, role=args.role)
    print(f"user {username} ({args.role}) added")
    return 0


def _change_user(config, username: str, action: str, change) -> None:
    """Apply ``change(user)``, end the user's web sessions and audit, in one transaction."""
    from callcenter.store.models import User, audit

    from .models import WebSession

    with _open(config) as db:
        with db.session() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise UserError(f"no user {username!r}")
            change(user)
            s.execute(delete(WebSession).where(WebSession.user_id == user.id))
            audit(s, "cli", action, "user", user.username)


def cmd_passwd(args, config) -> int:
    password = _read_password(args)

    def change(user):
        user.password_hash = hash_password(password)

    _change_user(config, args.username, "user_passwd", change)
    print(f"password of {args.username} changed; their sessions were ended")
    return 0


def cmd_disable(args, config) -> int:
    def change(user):
        user.active = False

    _change_user(config, args.username, "user_disable", change)
    print(f"user {args.username} disabled")
    return 0


def cmd_list(args, config) -> int:
    from callcenter.store.models import User

    with _open(config) as db:
        with db.session() as s:
            users = list(s.scalars(select(User).order_by(User.username)))
            rows = [(u.username, u.role, u.interface or "-", u.language, "active" if u.active else "disabled",
                     u.display_name) for u in users]
    for r in rows:
        print("\t".join(r))
    return 0


def _token_call(config, fn, *args, **kw):
    import time

    from .tokens import TokenError

    with _open(config) as db:
        try:
            return db.call(fn, *args, now=time.time(), **kw)
        except TokenError as exc:
            raise UserError(str(exc)) from None


def cmd_token_add(args, config) -> int:
    from . import tokens

    token = _token_call(config, tokens.add, args.name, args.role, actor="cli")
    print(f"token {args.name} ({args.role}) created; it is shown only now:", file=sys.stderr)
    print(token)
    return 0


def cmd_token_revoke(args, config) -> int:
    from . import tokens

    _token_call(config, tokens.revoke, args.name, actor="cli")
    print(f"token {args.name} revoked")
    return 0


def cmd_token_list(args, config) -> int:
    from . import tokens

    with _open(config) as db:
        rows = db.call(tokens.listing)
    for r in rows:
        used = r["last_used_at"].isoformat(timespec="seconds") if r["last_used_at"] else "never used"
        print("\t".join((r["name"], r["role"], "revoked" if r["revoked"] else "active",
                         f"created {r['created_at'].isoformat(timespec='seconds')} by {r['created_by']}", used)))
    return 0
