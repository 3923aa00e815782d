"""Prometheus metrics and the health checks behind ``/healthz``, ``/readyz`` and ``/metrics``.

One :class:`ServiceMetrics` per assembled product, on its own ``CollectorRegistry``
(never the process-global one: two products in one test process do not share
counters).  It is given its collaborators by the composition root and listens to
them: the AMI client (link state, reconnects, every event), the queue-call tracker
(finished calls by outcome; waiting calls read at scrape time) and the database
engine (write statement latency, from SQLAlchemy's cursor events).  Dialer attempts
by disposition, recording failures and AMI outages (recovered from ``queue_log`` or
a gap) are counted in the store at scrape time,
for rows started since this process did (so they behave as Prometheus counters:
monotonic, reset on restart).  Labels are queue names, outcomes and dispositions
only: no phone numbers, names or call ids.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import event, func, select, text

from .ports import AmiClient, LiveQueues, require_all
from .queuecalls.reducer import Finished

log = logging.getLogger(__name__)

WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """``clock``: the service's (wall-clock) time, for "since start"; ``timer``: a monotonic
    seconds counter for latencies (``time.perf_counter`` in the product)."""

    def __init__(self, *, ami: AmiClient, queuecalls: LiveQueues, db: Any, clock: Any,
                 timer: Callable[[], float], answer_target: float,
                 servers: Callable[[], dict[str, bool | None]]):
        require_all([(ami, AmiClient, "metrics ami"), (queuecalls, LiveQueues, "metrics queuecalls")])
        self.ami, self.queuecalls, self.db, self.clock, self.timer = ami, queuecalls, db, clock, timer
        self.answer_target = answer_target
        self.started_at = clock.seconds()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ami_up = Gauge("callcenter_ami_up", "1 while the AMI link is logged in", registry=r)
        self.ami_up.set_function(lambda: 1.0 if self.ami.connected else 0.0)
        self.ami_connects = Counter("callcenter_ami_connects", "AMI logins (the first one and every reconnect)",
                                    registry=r)
        self.ami_reconnects = Counter("callcenter_ami_reconnects", "AMI logins after a lost link", registry=r)
        self.ami_disconnects = Counter("callcenter_ami_disconnects", "AMI links lost", registry=r)
        self.ami_events = Counter("callcenter_ami_events", "AMI events received (rate() = events/s)", registry=r)
        self.queue_calls = Counter("callcenter_queue_calls", "Finished queue calls by outcome",
                                   ["queue", "outcome"], registry=r)
        self.queue_within_target = Counter(
            "callcenter_queue_calls_answered_within_target",
            "Queue calls answered within [hospital] answer_target_seconds", ["queue"], registry=r)
        self.db_write = Histogram("callcenter_db_write_seconds",
                                  "Execution time of INSERT/UPDATE/DELETE statements", buckets=WRITE_BUCKETS,
                                  registry=r)
        r.register(_LiveQueuesCollector(queuecalls))
        r.register(_ServersCollector(servers))  # Sites.link_states: consumed here / logged in
        self._store = _StoreCollector()
        r.register(self._store)
        self._connected_once = False
        ami.count_events(self._on_events)  # counted, not read: the gateway need not build them
        ami.on_connect(self._on_connect)
        ami.on_disconnect(self._on_disconnect)
        queuecalls.subscribe(self._on_fact)
        _watch_writes(db.engine, self.db_write, timer)

    # -- listeners ------------------------------------------------------------------------
    def _on_events(self, n: int) -> None:
        self.ami_events.inc(n)

    async def _on_connect(self) -> None:
        self.ami_connects.inc()
        if self._connected_once:
            self.ami_reconnects.inc()
        self._connected_once = True

    def _on_disconnect(self, t: float) -> None:
        self.ami_disconnects.inc()

    def _on_fact(self, fact: Any) -> None:
        if not isinstance(fact, Finished):
            return
        rec = fact.record
        self.queue_calls.labels(rec.queue, rec.outcome or "unknown").inc()
        if rec.within(self.answer_target):
            self.queue_within_target.labels(rec.queue).inc()

    # -- endpoints ------------------------------------------------------------------------
    async def render(self) -> bytes:
        """The exposition text; the store's counts are read first (off the loop)."""
        since = dt.datetime.fromtimestamp(self.started_at, dt.timezone.utc)
        self._store.counts = await self.db.run(_store_counts, since)
        return generate_latest(self.registry)

    async def ready(self) -> dict[str, bool]:
        """Each dependency: is it usable now?  (``/readyz``; no detail beyond that)."""
        try:
            await self.db.run(lambda s: s.execute(text("SELECT 1")))
            database = True
        except Exception:  # noqa: BLE001 - any failure means not ready; logged, not shown
            log.warning("readiness: database not reachable", exc_info=True)
            database = False
        return {"ami": bool(self.ami.connected), "database": database}


def _watch_writes(engine: Any, histogram: Histogram, timer: Callable[[], float]) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            conn.info.setdefault("cc_write_t0", []).append(timer())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        starts = conn.info.get("cc_write_t0")
        if starts and statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            histogram.observe(timer() - starts.pop())


def _store_counts(s, since: dt.datetime) -> dict[str, Any]:
    from dialer.models import Attempt as DialAttempt
    from recordings.models import Recording

    dispositions = dict(s.execute(
        select(DialAttempt.disposition, func.count()).where(DialAttempt.started_at >= since,
                                                            DialAttempt.state == "ended")
        .group_by(DialAttempt.disposition)).all())
    from .queuecalls.models import AmiOutage

    failed = s.scalar(select(func.count()).select_from(Recording).where(Recording.started_at >= since,
                                                                        Recording.status == "failed"))
    outages = dict(s.execute(select(AmiOutage.recovered_from_queue_log, func.count())
                             .where(AmiOutage.start >= since).group_by(AmiOutage.recovered_from_queue_log)).all())
    return {"dispositions": dispositions, "recording_failures": int(failed or 0),
            "outages_recovered": int(outages.get(True, 0)), "outages_gap": int(outages.get(False, 0))}


class _StoreCollector:
    """Counts from the store, read by :meth:`ServiceMetrics.render` just before collecting."""

    def __init__(self):
        self.counts: dict[str, Any] = {"dispositions": {}, "recording_failures": 0, "outages_recovered": 0,
                                       "outages_gap": 0}

    def collect(self):
        d = CounterMetricFamily("callcenter_dialer_attempts", "Dialer attempts ended since start, by disposition",
                                labels=["disposition"])
        for disposition, n in sorted(self.counts["dispositions"].items()):
            d.add_metric([disposition or "none"], n)
        yield d
        yield CounterMetricFamily("callcenter_recording_failures",
                                  "Recordings started since start that failed (MixMonitor refused, file missing)",
                                  value=self.counts["recording_failures"])
        o = CounterMetricFamily("callcenter_ami_outages",
                                "AMI outages since start: calls in them recovered from queue_log, or a gap",
                                labels=["recovered"])
        o.add_metric(["queue_log"], self.counts["outages_recovered"])
        o.add_metric(["gap"], self.counts["outages_gap"])
        yield o

    def describe(self):
        return []


class _ServersCollector:
    """Per Asterisk server: consumed by this instance (its lease), and logged in.  Summed over
    the instances, ``callcenter_ami_server_consumed`` is 1 per server; 0 means nobody consumes it."""

    def __init__(self, states: Callable[[], dict[str, bool | None]]):
        self.states = states

    def collect(self):
        consumed = GaugeMetricFamily("callcenter_ami_server_consumed",
                                     "1 while this instance consumes the Asterisk server", labels=["server"])
        up = GaugeMetricFamily("callcenter_ami_server_up",
                               "1 while this instance is logged in to the Asterisk server it consumes",
                               labels=["server"])
        for server, state in self.states().items():
            consumed.add_metric([server], 0.0 if state is None else 1.0)
            up.add_metric([server], 1.0 if state else 0.0)
        yield consumed
        yield up

    def describe(self):
        return []


class _LiveQueuesCollector:
    """Waiting calls and the longest current wait per queue, from the tracker's live view."""

    def __init__(self, live: LiveQueues):
        self.live = live

    def collect(self):
        waiting = GaugeMetricFamily("callcenter_queue_waiting", "Calls waiting in the queue now", labels=["queue"])
        longest = GaugeMetricFamily("callcenter_queue_longest_wait_seconds",
                                    "How long the longest-waiting caller has waited", labels=["queue"])
        for queue, q in sorted(self.live.live().items()):
            waits = [w["wait"] for w in q["waiting"] if w.get("wait") is not None]
            waiting.add_metric([queue], len(q["waiting"]))
            longest.add_metric([queue], max(waits, default=0.0))
        yield waiting
        yield longest

    def describe(self):
        return []
