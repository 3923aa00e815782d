"""Simulated people for a whole day: callers arriving by hour of day, agents.

Arrivals are a Poisson process whose rate follows ``hourly_weights`` (a
hospital hotline peaks mid-morning); each caller picks a menu digit, has a
patience (exponential, seconds after the menu) after which an unanswered caller
hangs up, and stays on the line while talking to an agent.  All randomness
comes from one ``random.Random(seed)`` and all timing from the PBX clock, so the
same seed gives the same day.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# relative call volume per hour of day (0..23); zero outside opening hours
DEFAULT_WEIGHTS = {8: 1.3, 9: 1.6, 10: 1.5, 11: 1.2, 12: 0.7, 13: 0.9, 14: 1.1, 15: 1.0, 16: 0.8}


@dataclass
class DayProfile:
    calls: float = 500  # expected number of calls over the day
    hourly_weights: dict[int, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    start_hour: int | None = None  # the hour of day the clock's "now" stands for (default: first weighted hour)
    choice_weights: dict[str, float] = field(default_factory=lambda: {"1": 0.7, "2": 0.25, "": 0.05})
    # the key pressed in the post-call rating after the agent hangs up ("": none)
    rating_weights: dict[str, float] = field(default_factory=lambda: {"1": 0.6, "2": 0.2, "3": 0.1, "": 0.1})
    patience_mean: float = 120.0  # s an unanswered caller waits after the menu
    digit_delay: tuple[float, float] = (2.0, 6.0)
    context: str = "hotline-plain"
    agents: dict[str, int] = field(default_factory=dict)  # extra agents per queue, e.g. {"consultation": 4}
    talk_mean: float = 180.0
    talk_sd: float = 60.0
    answer_delay: float = 4.0
    names: tuple[str, ...] = ("Li Na", "王小明", "Wang Fang", "Zhang Min", "Liu Yang", "Chen Jie", "Zhao Lei")


@dataclass
class Arrival:
    offset: float
    number: str
    name: str
    digits: str
    digit_delay: float
    patience: float
    rating: str = ""


class Traffic:
    """A scheduled day: ``arrivals`` (planned), ``calls`` (SimCall, as they start)."""

    def __init__(self, pbx: Any, arrivals: list[Arrival], profile: DayProfile):
        self.pbx, self.arrivals, self.profile = pbx, arrivals, profile
        self.calls: list[Any] = []
        self._timers: list[Any] = []

    @property
    def duration(self) -> float:
        return max((a.offset for a in self.arrivals), default=0.0)

    @property
    def finished(self) -> bool:
        return len(self.calls) == len(self.arrivals) and all(c.done for c in self.calls)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {"planned": len(self.arrivals), "started": len(self.calls)}
        for c in self.calls:
            key = c.outcome or ("in progress" if not c.done else "ivr-hangup")
            out[key] = out.get(key, 0) + 1
        return out

    def cancel(self) -> None:
        for t in self._timers:
            self.pbx.timers.cancel(t)
        self._timers.clear()


def plan_day(profile: DayProfile, seed: int = 1) -> list[Arrival]:
    rng = random.Random(seed)
    hours = sorted(h for h, w in profile.hourly_weights.items() if w > 0)
    if not hours:
        return []
    start = profile.start_hour if profile.start_hour is not None else hours[0]
    total_w = sum(profile.hourly_weights[h] for h in hours)
    choices = list(profile.choice_weights)
    cw = [profile.choice_weights[c] for c in choices]
    ratings = list(profile.rating_weights)
    rw = [profile.rating_weights[r] for r in ratings]
    out: list[Arrival] = []
    for h in hours:
        if h < start:
            continue
        rate = profile.calls * profile.hourly_weights[h] / total_w / 3600.0  # calls per second
        t = 0.0
        while True:
            t += rng.expovariate(rate)
            if t >= 3600:
                break
            n = len(out)
            out.append(Arrival(
                offset=(h - start) * 3600 + t,
                number=f"138{rng.randrange(10 ** 8):08d}",
                name=profile.names[n % len(profile.names)],
                digits=rng.choices(choices, cw)[0],
                digit_delay=round(rng.uniform(*profile.digit_delay), 1),
                patience=round(rng.expovariate(1.0 / profile.patience_mean) + 5, 1),
            ))
    rating_rng = random.Random(seed + 0x5A7)  # its own stream: the arrivals stay those of the seed
    for a in out:
        a.rating = rating_rng.choices(ratings, rw)[0]
    return out


def run_traffic(pbx: Any, profile: DayProfile | None = None, seed: int = 1) -> Traffic:
    """Schedule a day of inbound calls on ``pbx`` (starting now on its clock)."""
    profile = profile or DayProfile()
    for queue, n in profile.agents.items():
        base = 1100 if queue == "consultation" else 2100 if queue == "complaint" else 3100
        for i in range(n):
            aid = str(base + i)
            pbx.add_agent(queue, aid, f"Agent {aid}", answer_delay=profile.answer_delay,
                          talk_time=profile.talk_mean, talk_sd=profile.talk_sd)
    traffic = Traffic(pbx, plan_day(profile, seed), profile)

    def start(a: Arrival) -> None:
        call = pbx.inbound_call(a.number, a.name, context=profile.context, digits=a.digits,
                                digit_delay=a.digit_delay, patience=a.patience, stay_when_connected=True,
                                rate=a.rating)
        traffic.calls.append(call)

    for a in traffic.arrivals:
        traffic._timers.append(pbx.timers.call_later(a.offset, start, a))
    return traffic
