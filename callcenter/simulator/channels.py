"""Channels of the simulated PBX and their AMI snapshots.

A channel snapshot is the block of headers Asterisk puts in every channel
event (``Channel`` … ``Linkedid``), optionally prefixed (``Dest``, ``LocalOne``).
Field names and order are those of the recorded Asterisk 22 traces.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
UNKNOWN = "<unknown>"

CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
}


@dataclass(eq=False)
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    priority: int = 1
    state: int = 0
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    cl_num: str = UNKNOWN
    cl_name: str = UNKNOWN
    created: float = 0.0
    variables: dict[str, str] = field(default_factory=dict)
    app: str = ""
    appdata: str = ""
    peer: "Channel | None" = None  # the other half of a Local pair
    bridge: Any = None
    hung_up: bool = False
    proc: Any = None  # the generator runner executing this channel's dialplan
    role: str = ""  # caller | caller2 | agent | agent2 | patient | patient2
    data: dict[str, Any] = field(default_factory=dict)  # simulation bookkeeping

    @property
    def state_desc(self) -> str:
        return STATE_DESC.get(self.state, str(self.state))

    def snapshot(self, prefix: str = "") -> list[tuple[str, str]]:
        p = prefix
        return [
            (f"{p}Channel", self.name),
            (f"{p}ChannelState", str(self.state)),
            (f"{p}ChannelStateDesc", self.state_desc),
            (f"{p}CallerIDNum", self.cid_num),
            (f"{p}CallerIDName", self.cid_name),
            (f"{p}ConnectedLineNum", self.cl_num),
            (f"{p}ConnectedLineName", self.cl_name),
            (f"{p}Language", "en"),
            (f"{p}AccountCode", ""),
            (f"{p}Context", self.context),
            (f"{p}Exten", self.exten),
            (f"{p}Priority", str(self.priority)),
            (f"{p}Uniqueid", self.uniqueid),
            (f"{p}Linkedid", self.linkedid),
        ]


def parse_callerid(value: str | None) -> tuple[str, str]:
    """``"Name" <num>`` / ``Name <num>`` / ``num`` -> (num, name); missing parts are ``<unknown>``."""
    if not value:
        return UNKNOWN, UNKNOWN
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, num = value[:-1].rpartition("<")
        name = name.strip().strip('"').strip()
        return (num.strip() or UNKNOWN), (name or UNKNOWN)
    return value, UNKNOWN
