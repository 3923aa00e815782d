"""One-time messages ("flash") tied to the login session.

A form that succeeds redirects (POST/redirect/GET) and the next page says what was
done.  The message is stored with the session as a catalogue key and its values,
translated when shown, and cleared by the first page that shows it: a reload no
longer shows it, and nobody can put words on the page with a link (what a
``?notice=`` text in the URL allowed).  Functions take the caller's DB session.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from .i18n import MESSAGES, t
from .models import WebSession


def put(s, session_id: int, key: str, *, then: Sequence[tuple[str, dict[str, Any]]] = (), **values: Any) -> None:
    """Leave ``key`` (a message catalogue key) with ``values`` for the session's next page;
    ``then``: further ``(key, values)`` sentences shown after it ("Saved. Ticket 12 opened.")."""
    parts = [(key, values), *then]
    for k, _ in parts:
        if k not in MESSAGES:
            raise KeyError(f"flash message {k!r} is not in the message catalogue")
    row = s.get(WebSession, session_id)
    if row is None:
        raise LookupError(f"no web session {session_id}")
    row.flash = json.dumps({"parts": [{"key": k, "values": {n: str(v) for n, v in vs.items()}} for k, vs in parts]},
                           ensure_ascii=False)


def clear(s, session_id: int) -> None:
    row = s.get(WebSession, session_id)
    if row is not None:
        row.flash = None


def text(lang: str, stored: str) -> str:
    """The stored message in ``lang`` (a one-part ``{"key", "values"}`` is what versions
    before the ``parts`` list stored: a session's pending message survives the upgrade)."""
    data = json.loads(stored)
    parts = data["parts"] if "parts" in data else [data]
    return " ".join(t(lang, p["key"], **p["values"]) for p in parts)
