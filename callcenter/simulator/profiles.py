"""Shared pieces of the simulated PBX: profiles of the simulated people, the configuration,
constants of what Asterisk sends."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .channels import Channel
from .runner import ChannelHangup

Headers = list[tuple[str, str]]

PROMPT_SECONDS = {"hello-world": 1.42, "beep": 0.44}
CID_PRES = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
QUEUE_TIME_VARS = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")


class ChannelRedirect(ChannelHangup):
    """AMI Redirect: leave the current application, continue at context/exten/priority."""

    def __init__(self, context: str, exten: str, priority: int):
        super().__init__(0, "redirect")
        self.context, self.exten, self.priority = context, exten, priority


@dataclass
class AgentProfile:
    answer_delay: float = 3.0
    talk_time: float = 5.0
    talk_sd: float = 0.0  # >0: talk time ~ N(talk_time, talk_sd) from the seeded RNG
    wrapup: float = 0.0


@dataclass
class PatientProfile:
    outcome: str = "answer"  # answer|busy|noanswer|congestion|reject
    ring: float = 2.0
    delay: float = 3.0
    survey_digits: str = "4"
    hold: float = 20.0


@dataclass
class SimConfig:
    """Queues and members at start (the trace configuration by default)."""

    queues: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {
        "consultation": [("1001", "Agent 1001"), ("1002", "Agent 1002")],
        "complaint": [("2001", "Agent 2001"), ("2002", "Agent 2002")],
    })
    servicelevel: int = 30
    ring_timeout: int = 15
    retry: int = 1
    wrapuptime: int = 0  # every queue's queues.conf wrapuptime (Asterisk's default 0)
    agent_answer_delay: float = 3.0
    agent_talk_time: float = 5.0
    queue_log: str | Path | None = None
    username: str = "bridge"
    secret: str = "bridge-secret"
    read_perm: str = "all"   # manager.conf read/write classes of the AMI user
    write_perm: str = "all"
    run_user: str = ""  # asterisk.conf runuser (CoreSettings CoreRunUser)
    prompt_seconds: dict[str, float] = field(default_factory=lambda: dict(PROMPT_SECONDS))
    # Queue() options of the simulated [hotline]: "" as the recording harness's dialplan (the
    # traces: the caller is hung up with the agent); "c" as docs/asterisk/extensions.conf (the
    # caller continues to AGI satisfaction, the post-call rating, when the agent hangs up)
    hotline_queue_options: str = ""
    # What the people's lines carry (what MixMonitor records): "phones" send media all call
    # long (silence and their voices, like SIP phones); "local" are the trace harness's Local
    # channels, which carry only what is played.
    media: str = "phones"

    def __post_init__(self) -> None:
        if self.media not in ("phones", "local"):
            raise ValueError(f"SimConfig.media must be 'phones' or 'local', not {self.media!r}")


class SimCall:
    """Handle on one simulated inbound call (caller ``;1`` channel and outcome)."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.outcome: str | None = None  # answered|abandoned|timeout|redirected|ivr-hangup
        self.queue: str | None = None
        self.agent: str | None = None
        self.done = False

    @property
    def uniqueid(self) -> str:
        return self.channel.uniqueid


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"
