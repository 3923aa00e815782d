"""The errors domain packages raise for a refusal the user can act on.

Each class has a stable ``code`` (what API clients match on; never the message, never
the class name) and the HTTP ``status`` it is answered with; the web maps them in one
place (:meth:`callcenter.web.server.WebApp.handle`).  ``field`` names the input at
fault when there is one.  :class:`InvalidInput` is also a ``ValueError`` and
:class:`NotFound` a ``LookupError``, so code written against those keeps working;
views catch :class:`DomainError` (or a subclass), never a bare ``ValueError``.
"""
from __future__ import annotations


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:  # for the CLI and logs: the field first
        return f"{self.field}: {self.message}" if self.field else self.message

    def to_dict(self) -> dict:
        out = {"error": str(self), "code": self.code, "status": self.status}
        if self.field:
            out["fields"] = {self.field: self.message}
        return out


class InvalidInput(DomainError, ValueError):
    """The request (or file, or line) is wrong; ``field`` says which part."""
    code, status = "invalid_input", 400

    def to_dict(self) -> dict:
        return {**super().to_dict(), "error": f"Invalid input: {self}"}


class NotFound(DomainError, LookupError):
    code, status = "not_found", 404


class Forbidden(DomainError, PermissionError):
    code, status = "forbidden", 403


class Conflict(DomainError):
    """Valid, but the current state refuses it (a closed ticket, a running campaign)."""
    code, status = "conflict", 409


class Unavailable(DomainError):
    """A collaborator (the database, Asterisk) does not answer now; try again later."""
    code, status = "unavailable", 503


CODES = {cls.code: cls.status for cls in (DomainError, InvalidInput, NotFound, Forbidden, Conflict, Unavailable)}
