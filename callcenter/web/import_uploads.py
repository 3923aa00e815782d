"""CSV files uploaded for import, held between the preview and the user's confirmation.

The preview writes nothing; the file waits here (in memory, bound to the user who sent
it) until "Import" is pressed, then is taken once and imported in one transaction.  A
restart forgets the files: the user uploads again.  Each user has at most
``PER_USER`` files waiting, and each waits ``TTL`` seconds on the injected clock.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

TTL = 30 * 60.0
PER_USER = 3


@dataclass(frozen=True)
class Staged:
    username: str
    kind: str
    filename: str
    text: str
    encoding: str
    at: float


class ImportUploads:
    def __init__(self, clock):
        self.clock = clock
        self._files: dict[str, Staged] = {}

    def _expire(self) -> None:
        now = self.clock.seconds()
        for token in [k for k, v in self._files.items() if now - v.at > TTL]:
            del self._files[token]

    def put(self, username: str, kind: str, filename: str, text: str, encoding: str) -> str:
        """Hold the file; the token the confirm form sends back."""
        self._expire()
        mine = [k for k, v in self._files.items() if v.username == username]  # oldest first (insertion order)
        for token in mine[:max(0, len(mine) - PER_USER + 1)]:
            del self._files[token]
        token = secrets.token_urlsafe(18)
        self._files[token] = Staged(username, kind, filename, text, encoding, self.clock.seconds())
        return token

    def take(self, username: str, token: str) -> Staged | None:
        """The file for this user and token, once (None: unknown, expired or someone else's)."""
        self._expire()
        staged = self._files.get(token)
        if staged is None or staged.username != username:
            return None
        del self._files[token]
        return staged

    def give_back(self, token: str, staged: Staged) -> None:
        """The import failed before anything was written (e.g. the data changed since the
        preview): keep the file so the user sees the new problems and can try again."""
        self._files[token] = staged
