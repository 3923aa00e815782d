"""Erlang C staffing: how many agents answer a share of calls within a target.

Pure functions.  Traffic ``a`` (Erlangs) = arrival rate × average handling
time.  With ``n`` agents (n > a), the probability a call waits is Erlang C;
the share answered within ``t`` seconds is ``1 - C·exp(-(n-a)·t/aht)`` and the
average speed of answer ``C·aht/(n-a)``.  Computed with the stable Erlang B
recursion so hundreds of agents do not overflow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def erlang_b(n: int, a: float) -> float:
    """Blocking probability with ``n`` servers and ``a`` Erlangs (recursive form)."""
    if n < 0 or a < 0:
        raise ValueError("n and a must be >= 0")
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """Probability that a call has to wait; 1.0 when the agents cannot keep up (n <= a)."""
    if a <= 0:
        return 0.0
    if n <= a:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1 - b))


def service_level(n: int, a: float, aht: float, target: float) -> float:
    """Share of calls answered within ``target`` seconds."""
    if a <= 0:
        return 1.0
    if n <= a:
        return 0.0
    return max(0.0, 1.0 - erlang_c(n, a) * math.exp(-(n - a) * target / aht))


def asa(n: int, a: float, aht: float) -> float:
    """Average speed of answer in seconds (inf when n <= a)."""
    if a <= 0:
        return 0.0
    if n <= a:
        return math.inf
    return erlang_c(n, a) * aht / (n - a)


@dataclass(frozen=True)
class Advice:
    calls: int              # arrivals in the interval
    interval_seconds: float
    aht_seconds: float
    traffic_erlangs: float
    agents: int             # agents needed (0 when no traffic)
    service_level: float    # expected with that many agents
    asa_seconds: float


def agents_needed(calls: int, interval_seconds: float, aht_seconds: float, *,
                  target_seconds: float = 30.0, goal: float = 0.8, max_agents: int = 1000) -> Advice:
    """The smallest number of agents whose expected service level reaches ``goal``."""
    if interval_seconds <= 0 or aht_seconds < 0 or calls < 0:
        raise ValueError("interval must be > 0, calls and handling time >= 0")
    if not 0 < goal < 1:
        raise ValueError("goal must be between 0 and 1")
    a = calls * aht_seconds / interval_seconds
    if a == 0:
        return Advice(calls, interval_seconds, aht_seconds, 0.0, 0, 1.0, 0.0)
    n = max(1, math.floor(a) + 1)
    while n <= max_agents:
        sl = service_level(n, a, aht_seconds, target_seconds)
        if sl >= goal:
            return Advice(calls, interval_seconds, aht_seconds, a, n, sl, asa(n, a, aht_seconds))
        n += 1
    raise ValueError(f"more than {max_agents} agents needed ({a:.1f} Erlangs)")
