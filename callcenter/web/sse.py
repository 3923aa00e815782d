"""Server-sent events: open requests grouped by topic, a heartbeat, clean removal.

A topic is ``wallboard`` or ``agent:<username>``.  Writes go straight to the
transport on the reactor thread; a client that disconnected is dropped.  The heartbeat
is a ``ping`` event, not a comment: it keeps proxies from closing an idle stream *and*
lets the wallboard tell a silent, dead link from a quiet hotline (comments never reach
the page's script).
"""
from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

PING = b"event: ping\ndata: {}\n\n"


def format_event(event: str, data: Any, event_id: int | None = None) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


class Broker:
    def __init__(self, reactor, heartbeat: float = 15.0):
        self.reactor = reactor
        self.heartbeat = heartbeat
        self.clients: dict[str, set] = {}
        self._seq = 0
        self._beat = None

    def add(self, topic: str, request) -> None:
        self.clients.setdefault(topic, set()).add(request)
        request.notifyFinish().addBoth(lambda _: self.remove(topic, request))
        if self._beat is None and self.heartbeat:
            self._beat = self.reactor.callLater(self.heartbeat, self._heartbeat)

    def remove(self, topic: str, request) -> None:
        group = self.clients.get(topic)
        if group is not None:
            group.discard(request)
            if not group:
                del self.clients[topic]

    def count(self, topic: str) -> int:
        return len(self.clients.get(topic, ()))

    def write(self, request, chunk: bytes) -> None:
        try:
            request.write(chunk)
        except Exception:  # noqa: BLE001 - a dead client must not stop the others
            log.debug("SSE write failed", exc_info=True)

    def publish(self, topic: str, event: str, data: Any) -> int:
        group = self.clients.get(topic)
        if not group:
            return 0
        self._seq += 1
        chunk = format_event(event, data, self._seq)
        for request in list(group):
            self.write(request, chunk)
        return len(group)

    def _heartbeat(self) -> None:
        self._beat = None
        for group in list(self.clients.values()):
            for request in list(group):
                self.write(request, PING)
        if self.clients:
            self._beat = self.reactor.callLater(self.heartbeat, self._heartbeat)

    def close(self) -> None:
        if self._beat is not None and self._beat.active():
            self._beat.cancel()
        self._beat = None
        for topic, group in list(self.clients.items()):
            for request in list(group):
                try:
                    request.finish()
                except Exception:  # noqa: BLE001
                    pass
        self.clients.clear()
