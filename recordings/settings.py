"""The ``[recordings]`` configuration section, resolved into one object.

Keys are declared in ``callcenter.config.SCHEMA`` (validated there); this module
turns them into paths, a :class:`~recordings.policy.Policy` and retention rules.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from callcenter.phones import DEFAULT_REGION

from . import layout
from .policy import Policy, parse_campaign_rules, parse_rule, parse_rules

KINDS = ("queue", "complaint", "voice_message", "outbound")


@dataclass(frozen=True)
class Settings:
    directory: Path
    spool_dir: Path
    format: str = "wav"
    policy: Policy = field(default_factory=Policy)
    retention_days: dict[str, int] = field(default_factory=lambda: {
        "queue": 180, "complaint": 1095, "voice_message": 365, "outbound": 180})
    complaint_queues: tuple[str, ...] = ("complaint",)
    campaign_variable: str = "CAMPAIGN"
    campaign_id_variable: str = "CAMPAIGN_ID"  # what the dialer sets (its campaigns.id)
    mixmonitor_options: str = "b"
    allowed_roles: tuple[str, ...] = ("supervisor", "admin")
    finalize_delay: float = 2.0
    finalize_attempts: int = 5
    timezone: str = "Asia/Shanghai"
    phone_region: str = DEFAULT_REGION  # [hospital] region: caller numbers are stored in E.164
    enabled: bool = True
    journal: Path | None = None  # capture's local journal; None: <directory>.journal beside it

    @property
    def journal_path(self) -> Path:
        """Where capture notes what it did before the database knows (a local disk)."""
        return self.journal or self.directory.with_name(self.directory.name + ".journal")

    @property
    def roots(self) -> list[Path]:
        """Prefixes an absolute file name from Asterisk or the IVR may start with."""
        return [self.spool_dir, self.directory]

    def asterisk_path(self, rel: str) -> str:
        """The file name to put in the MixMonitor action (Asterisk's view of the directory)."""
        return f"{str(self.spool_dir).rstrip('/')}/{rel}"

    def purge_after(self, kind: str, started_at: dt.datetime) -> dt.datetime | None:
        """Retention end for a recording of ``kind``; None = keep until an operator decides (0 days)."""
        days = self.retention_days.get(kind, 0)
        return started_at + dt.timedelta(days=days) if days > 0 else None

    def kind_for_queue(self, queue: str) -> str:
        return "complaint" if queue in self.complaint_queues else "queue"

    def voice_message_dir(self, configured: str) -> str:
        """Where the IVR has Asterisk record voice messages: ``configured`` (``[agi]
        recordings_dir``), default ``spool_dir``.

        The catalogue takes only files under ``spool_dir`` or ``directory``
        (:func:`~recordings.layout.to_relative`), so a directory elsewhere would lose
        every message after the caller spoke it: refused here, at start-up, with both
        keys named, instead of at the first caller.
        """
        if not configured:
            return str(self.spool_dir)
        if not PurePosixPath(configured).is_absolute() or layout.root_of(configured, self.roots) is None:
            raise VoiceMessageDirError(
                f"[agi] recordings_dir {configured!r} is not under [recordings] spool_dir {str(self.spool_dir)!r}"
                f" (or directory {str(self.directory)!r}): voice messages recorded there could not be catalogued;"
                " set it to a directory under spool_dir, or leave it empty for spool_dir itself")
        return configured.rstrip("/")


class VoiceMessageDirError(ValueError):
    """``[agi] recordings_dir`` lies outside the recordings directories."""


def from_config(config) -> Settings:
    r = config.values["recordings"]
    directory = Path(r["directory"]).expanduser() if r["directory"] else config.data_dir / "recordings"
    if not directory.is_absolute() and config.source:
        directory = Path(config.source).resolve().parent / directory
    directory = directory.resolve() if directory.exists() else directory.absolute()
    # Asterisk needs absolute names (a relative RECORD FILE name lands in its sounds directory)
    spool = Path(r["spool_dir"]) if r["spool_dir"] else directory
    return Settings(
        directory=directory,
        spool_dir=spool,
        format=r["format"],
        policy=Policy(
            queues=parse_rules(r["queue_policy"]),
            campaigns=parse_campaign_rules(r["campaign_policy"]),
            default_queue=parse_rule(r["default_queue_policy"]),
            default_campaign=parse_rule(r["default_campaign_policy"]),
        ),
        retention_days={
            "queue": r["retention_queue_days"],
            "complaint": r["retention_complaint_days"],
            "voice_message": r["retention_voice_message_days"],
            "outbound": r["retention_outbound_days"],
        },
        complaint_queues=tuple(r["complaint_queues"]),
        campaign_variable=r["campaign_variable"],
        mixmonitor_options=r["mixmonitor_options"],
        allowed_roles=tuple(r["allowed_roles"]),
        finalize_delay=r["finalize_delay"],
        finalize_attempts=r["finalize_attempts"],
        timezone=config.values["hospital"]["timezone"],
        phone_region=config.values["hospital"]["region"],
        enabled=r["enabled"],
        journal=Path(r["journal"]).expanduser().absolute() if r["journal"] else None,
    )
