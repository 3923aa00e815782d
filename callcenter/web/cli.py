"""``callcenter users add|passwd|list|disable|enable``: web accounts (the same code as the
admin's users page: :mod:`callcenter.web.users`).

Passwords come from an interactive prompt (asked twice, not echoed) or, for
scripts, from the first line of standard input with ``--password-stdin``;
never from the command line (it would show in ``ps`` and shell history).
Changing a password ends the user's open sessions.
"""
from __future__ import annotations

import getpass
import sys

from sqlalchemy import select

from callcenter.cli import UserError

from .auth import ROLES
from .passwords import WeakPassword, check_strength


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
    p = us.add_parser("enable", parents=[common], help="enable a disabled user")
    p.add_argument("username")
    p.set_defaults(func=cmd_enable)

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


def _open(config):
    from callcenter.commands import open_db

    return open_db(config)


def _account(config, fn, **kw):
    """Run one of :mod:`.users` (the same code as the admin's users page) as actor ``cli``."""
    from callcenter.errors import DomainError

    with _open(config) as db:
        try:
            with db.session() as s:
                return fn(s, actor="cli", **kw)
        except DomainError as exc:
            raise UserError(str(exc)) from None


def cmd_add(args, config) -> int:
    from . import users

    if args.role == "agent" and not args.interface:
        print("note: agent without --interface: no queue log-in or screen pop until one is set",
              file=sys.stderr)
    from callcenter.errors import DomainError

    try:
        username = users.check_username(args.username)  # before asking for the password
    except DomainError as exc:
        raise UserError(f"user name {args.username!r}: {exc.message}") from None
    password = _read_password(args)
    _account(config, users.add, username=args.username, role=args.role, password=password, name=args.name,
             interface=args.interface, language=args.language or config.hospital.language)
    print(f"user {username} ({args.role}) added")
    return 0


def cmd_passwd(args, config) -> int:
    from . import users

    password = _read_password(args)
    _account(config, users.set_password, username=args.username, password=password)
    print(f"password of {args.username} changed; their sessions were ended")
    return 0


def cmd_disable(args, config) -> int:
    from . import users

    _account(config, users.set_active, username=args.username, active=False)
    print(f"user {args.username} disabled")
    return 0


def cmd_enable(args, config) -> int:
    from . import users

    _account(config, users.set_active, username=args.username, active=True)
    print(f"user {args.username} enabled")
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
