"""Which calls to record: per queue and per campaign, all / none / a sample.

Pure.  A rule is ``all``, ``none`` or a percentage (``20%``, ``sample:20``,
``sample 20%``).  Sampling is deterministic: the same Uniqueid always gets the
same answer (a hash, not a random draw), so a restart or a replayed trace
decides exactly as the live run did, and an auditor can recompute it.

Campaign entries say what they match — ``kind:no_show=all`` (every campaign of a
dialer kind) or ``name:complaint-followup=all`` (one campaign); a name entry wins
over a kind entry.  A bare ``no_show=all`` is refused: it used to be read as a
campaign name and silently matched nothing.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^(?:sample[:\s]*)?(\d+(?:\.\d+)?)\s*%?$")


@dataclass(frozen=True)
class Rule:
    """Record a share of calls: 100 = all, 0 = none."""

    percent: float

    def __str__(self) -> str:
        if self.percent >= 100:
            return "all"
        if self.percent <= 0:
            return "none"
        return f"{self.percent:g}%"


ALL = Rule(100.0)
NONE = Rule(0.0)


def parse_rule(text: str) -> Rule:
    """``all`` | ``none`` | ``N%`` | ``sample:N`` → :class:`Rule`; ValueError names the problem."""
    t = str(text).strip().lower()
    if t in ("all", "yes", "on"):
        return ALL
    if t in ("none", "no", "off"):
        return NONE
    if t.startswith("sample") or t[:1].isdigit():
        m = _SAMPLE.match(t)
        if m:
            pct = float(m.group(1))
            if 0 <= pct <= 100:
                return Rule(pct)
            raise ValueError(f"sample rate {text!r} must be between 0% and 100%")
    raise ValueError(f"recording rule {text!r} must be all, none or a sample like 20%")


def parse_rules(entries: list[str]) -> dict[str, Rule]:
    """``["consultation=all", "complaint=50%"]`` → {name: Rule}; errors name the entry."""
    out: dict[str, Rule] = {}
    for entry in entries:
        name, sep, rule = str(entry).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"entry {entry!r} must look like name=all|none|N%")
        if name in out:
            raise ValueError(f"entry {entry!r}: {name!r} is given twice")
        try:
            out[name] = parse_rule(rule)
        except ValueError as exc:
            raise ValueError(f"entry {entry!r}: {exc}") from None
    return out


def campaign_kinds() -> tuple[str, ...]:
    from dialer.campaigns import KINDS

    return KINDS


def parse_campaign_rules(entries: list[str]) -> dict[str, Rule]:
    """``["kind:no_show=all", "name:complaint-followup=50%"]`` → {selector: Rule}; a bare
    name, an unknown prefix or an unknown kind is a ValueError naming the entry."""
    rules = parse_rules(entries)
    kinds = campaign_kinds()
    out: dict[str, Rule] = {}
    for entry, (selector, rule) in zip(entries, rules.items()):
        how, sep, what = selector.partition(":")
        how, what = how.strip(), what.strip()
        if not sep or how not in ("kind", "name") or not what:
            raise ValueError(f"entry {entry!r} must say what it matches: kind:<campaign kind>=... "
                             f"(kinds: {', '.join(kinds)}) or name:<campaign name>=...")
        if how == "kind" and what not in kinds:
            raise ValueError(f"entry {entry!r}: unknown campaign kind {what!r} (known: {', '.join(kinds)})")
        if f"{how}:{what}" in out:
            raise ValueError(f"entry {entry!r}: {how}:{what} is given twice")
        out[f"{how}:{what}"] = rule
    return out


def campaign_rules_problem(entries: list[str]) -> str | None:
    try:
        parse_campaign_rules(entries)
    except ValueError as exc:
        return str(exc)
    return None


def rule_problem(text: str) -> str | None:
    """Config check: None when valid, else the reason."""
    try:
        parse_rule(text)
    except ValueError as exc:
        return str(exc)
    return None


def rules_problem(entries: list[str]) -> str | None:
    try:
        parse_rules(entries)
    except ValueError as exc:
        return str(exc)
    return None


def sample_bucket(uniqueid: str) -> float:
    """A stable number in [0, 100) derived from the Uniqueid (sha256, first 8 bytes)."""
    h = hashlib.sha256(uniqueid.encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2**64 * 100.0


def selected(rule: Rule, uniqueid: str) -> bool:
    if rule.percent >= 100:
        return True
    if rule.percent <= 0:
        return False
    return sample_bucket(uniqueid) < rule.percent


@dataclass(frozen=True)
class Policy:
    """Rules for queues and campaigns, with a default for names not listed.

    ``campaigns`` is keyed by selector, ``kind:<kind>`` or ``name:<name>``."""

    queues: dict[str, Rule] = field(default_factory=dict)
    campaigns: dict[str, Rule] = field(default_factory=dict)
    default_queue: Rule = ALL
    default_campaign: Rule = NONE

    def __post_init__(self) -> None:
        for selector in self.campaigns:
            if not selector.startswith(("kind:", "name:")):
                raise ValueError(f"campaign policy key {selector!r} must be kind:<kind> or name:<name>")

    @property
    def campaign_names(self) -> list[str]:
        """The campaign names the policy mentions (checked against the dialer at start-up)."""
        return [s[5:] for s in self.campaigns if s.startswith("name:")]

    def queue_rule(self, queue: str) -> Rule:
        return self.queues.get(queue, self.default_queue)

    def campaign_rule(self, name: str | None, kind: str | None) -> Rule:
        for selector in (f"name:{name}" if name else None, f"kind:{kind}" if kind else None):
            if selector in self.campaigns:
                return self.campaigns[selector]
        return self.default_campaign

    def record_queue_call(self, queue: str, uniqueid: str) -> bool:
        return selected(self.queue_rule(queue), uniqueid)

    def record_campaign_call(self, name: str | None, kind: str | None, uniqueid: str) -> bool:
        return selected(self.campaign_rule(name, kind), uniqueid)
