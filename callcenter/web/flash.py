"""One-time messages ("flash") tied to the login session.

A form that succeeds redirects (POST/redirect/GET) and the next page says what was
done.  The message is stored with the session as a catalogue key and its values,
translated when shown, and cleared by the first page that shows it: a reload no
longer shows it, and nobody can put words on the page with a link (what a
``?notice=`` text in the URL allowed).  Functions take the caller's DB session.
"""
from __future__ import annotations

import json
from typing import Any

from .i18n import MESSAGES, t
from .models import WebSession


def put(s, session_id: int, key: str, **values: Any) -> None:
    """Leave ``key`` (a message catalogue key) with ``values`` for the session's next page."""
    if key not in MESSAGES:
        raise KeyError(f"flash message {key!r} is not in the message catalogue")
    row = s.get(WebSession, session_id)
    if row is None:
        raise LookupError(f"no web session {session_id}")
    row.flash = json.dumps({"key": key, "values": {k: str(v) for k, v in values.items()}},
                           ensure_ascii=False)


def clear(s, session_id: int) -> None:
    row = s.get(WebSession, session_id)
    if row is not None:
        row.flash = None


def text(lang: str, stored: str) -> str:
    """The stored message in ``lang``."""
    data = json.loads(stored)
    return t(lang, data["key"], **data["values"])
