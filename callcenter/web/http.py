"""Request/response types shared by the route table and the handlers."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from callcenter.errors import InvalidInput

from .auth import CurrentUser

PUBLIC = None                        # a route anyone may open (login form, static files)
ANY = frozenset({"agent", "supervisor", "admin"})
SUPERVISORS = frozenset({"supervisor", "admin"})
AGENTS = frozenset({"agent"})
ADMINS = frozenset({"admin"})


DEFAULT_BODY = 256 * 1024           # a form or a JSON object: far more than any field needs
NO_ROUTE_BODY = 16 * 1024            # unknown path, or a method that takes no body


class BadRequest(InvalidInput):
    """Invalid input found by the web layer; the message names the field and is shown to the user."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str                        # "/api/reports/{name}"; {x} matches one path segment
    roles: frozenset | None
    handler: Callable[..., Any]      # async fn(app, req) -> Response
    kind: str                        # page | api | sse | form | static | stream
    summary: str
    query: tuple = ()                # ((name, type, description), ...) for OpenAPI
    body: tuple = ()                 # ((name, type, description, required), ...) for POSTs
    enums: dict = field(default_factory=dict)   # path parameter -> allowed values
    response: dict | None = None     # JSON schema of the answer (api routes)
    csrf: bool = True                # POST routes check the session's CSRF token (not for API tokens)
    raw_body: bool = False           # the handler reads the request body itself (e.g. a JSON list)
    max_body: int = 0                # bytes of request body accepted (0: DEFAULT_BODY); more -> 413
    statuses: dict = field(default_factory=dict)  # route-specific answers for OpenAPI: {201: "created"}
    audit_as: str = ""               # object type whose refused requests (401/403) are audited

    @property
    def segments(self) -> list[str]:
        return [p for p in self.path.split("/") if p]

    def match(self, parts: list[str]) -> dict[str, str] | None:
        segs = self.segments
        if len(segs) != len(parts):
            return None
        params: dict[str, str] = {}
        for seg, part in zip(segs, parts):
            if seg.startswith("{") and "}" in seg:
                name, _, suffix = seg[1:].partition("}")
                if suffix and not part.endswith(suffix):
                    return None
                value = part[: len(part) - len(suffix)] if suffix else part
                if not value or (name in self.enums and value not in self.enums[name]):
                    return None
                params[name] = value
            elif seg != part:
                return None
        return params


@dataclass
class Req:
    """What a handler sees."""
    method: str
    path: str
    route: Route
    params: dict[str, str]
    args: dict[str, str]             # query string (last value wins)
    form: dict[str, str]             # urlencoded form or JSON object body
    user: CurrentUser | None
    lang: str
    remote: str
    raw: Any = None                  # the twisted request (SSE only)
    cookies: dict[str, str] = field(default_factory=dict)
    flash: str = ""                  # the session's one-time message, shown by this page (flash.py)
    files: dict[str, "Upload"] = field(default_factory=dict)   # multipart/form-data file fields
    stream_slot: Any = None          # an event stream's place (stream_caps.Slot), taken before its handler

    def arg(self, name: str, default: str = "") -> str:
        return self.args.get(name, default)


@dataclass(frozen=True)
class Upload:
    """A file sent with a multipart/form-data form: its name as the browser gave it, its bytes."""
    filename: str
    data: bytes


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)


def html(text: str, status: int = 200) -> Response:
    return Response(status, text.encode("utf-8"))


def as_json(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8"),
                    "application/json; charset=utf-8")


def redirect(location: str, status: int = 303) -> Response:
    return Response(status, b"", headers={"Location": location})


def wants_html(accept: str | None) -> bool:
    """A browser opening a page (its first preferred type is HTML), not an API client."""
    return (accept or "").split(",", 1)[0].split(";", 1)[0].strip().lower() == "text/html"


STREAMED = object()  # a "stream" handler's answer: it wrote (and finishes) the response itself


@dataclass
class SSE:
    """Keep the request open and send events of ``topic`` (``agent:<username>`` or ``wallboard``)."""
    topic: str
    initial: list[tuple[str, Any]] = field(default_factory=list)
