"""Each queue's ``wrapuptime``, read from Asterisk (AMI ``GetConfig queues.conf``).

Asterisk 22 reports a member's own ``Wrapuptime`` (``QueueMember``/``QueueMemberStatus``)
but not the queue's: ``QueueParams`` has no such field (apps/app_queue.c
``manager_queues_status``).  So the tracker asks for the file app_queue reads, as
Asterisk's manager parses it: ``Category-NNNNNN: consultation`` then one
``Line-NNNNNN-MMMMMM: wrapuptime=5`` per setting (templates already expanded).  A queue
without ``wrapuptime`` has app_queue's default, 0.  A refusal (``Permission denied``:
the AMI user lacks ``write = system`` or ``config``; ``Config file not found``) is a
:class:`QueueConfigError` naming the action and Asterisk's reason — never a silent 0.

Caveat (as in Asterisk): GetConfig reads the file on disk; an edit not yet loaded with
``queue reload`` is read as if it were.
"""
from __future__ import annotations

import re
from typing import Any

from callcenter.ami.codec import Message
from callcenter.errors import Unavailable

ACTION = {"Action": "GetConfig", "Filename": "queues.conf"}
_CATEGORY = re.compile(r"Category-(\d{6})$")
_LINE = re.compile(r"Line-(\d{6})-(\d{6})$")


class QueueConfigError(Unavailable):
    """Asterisk did not give queues.conf: the wrap-up time of its queues is unknown."""


def wrapup_by_queue(response: Any) -> dict[str, float]:
    """A GetConfig answer (one message) -> {queue: wrapuptime seconds}; ``[general]`` is
    not a queue.  app_queue's ``atoi``: a value that is not a number counts as 0, a
    negative one too; the last ``wrapuptime`` line of a category wins."""
    if not isinstance(response, Message):
        raise QueueConfigError(f"GetConfig queues.conf: unexpected answer {type(response).__name__}")
    names: dict[str, str] = {}
    lines: list[tuple[str, str, str]] = []
    for key, value in response.headers:
        if m := _CATEGORY.match(key):
            names[m.group(1)] = value.strip()
        elif m := _LINE.match(key):
            lines.append((m.group(1), m.group(2), value))
    out = {name: 0.0 for n, name in names.items() if name != "general"}
    for cat, _, text in sorted(lines):
        name = names.get(cat)
        key, _, val = text.partition("=")
        if name is None or name == "general" or key.strip().lower() != "wrapuptime":
            continue
        num = re.match(r"\s*(-?\d+)", val)
        out[name] = float(max(0, int(num.group(1)))) if num else 0.0
    return out


async def read_wrapup(ami: Any) -> dict[str, float]:
    """Ask Asterisk; :class:`QueueConfigError` naming the action and the reason when refused."""
    from callcenter.ami.gateway import AmiError, AmiNotConnected

    try:
        resp = await ami.action(dict(ACTION))
    except AmiNotConnected:
        raise
    except AmiError as exc:
        raise QueueConfigError(
            f"Asterisk refused AMI GetConfig queues.conf ({exc}): the queues' wrapuptime is unknown "
            "(manager.conf: the AMI user needs write = system or config)") from None
    return wrapup_by_queue(resp)
