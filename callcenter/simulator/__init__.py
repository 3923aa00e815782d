"""A protocol-faithful Asterisk simulator (AMI server + PBX model + simulated people).

Asterisk cannot be installed here, so tests and ``callcenter demo`` talk real AMI
(TCP) and FastAGI to this simulator, whose event shapes are checked against the
recorded traces in ``tests/fixtures/asterisk-traces`` (tests/simulator/test_traces.py).

API (everything timed on the injected clock: ``twisted.internet.task.Clock`` in unit
tests, ``callcenter.clock.ScaledClock(reactor, 60)`` for a day in minutes)::

    from callcenter.simulator import SimulatedPBX, SimConfig
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp, agi_host="127.0.0.1", agi_port=4573,
                       config=SimConfig(), queue_log=tmp / "queue_log")
    await pbx.start(host="127.0.0.1", ami_port=0)     # pbx.ami_port = bound port
    #   AMI login: bridge / bridge-secret (SimConfig.username/secret)
    #   queues "consultation" (1001, 1002) and "complaint" (2001, 2002) like the traces;
    #   SimConfig(queues={}) for none.
    pbx.add_agent("consultation", "1003", "Agent 1003", answer_delay=3, talk_time=5)
    #   member "Local/1003@sim-agent/n"; behaviour can be changed like the trace harness
    #   did: AMI `Setvar AGENT_DELAY_1003=40` (global), or pbx.set_agent("1003", talk_time=8)
    call = pbx.inbound_call("13800138001", "Li Na", context="hotline-plain",  # or "hotline" (AGI),
                            digits="1", digit_delay=3, patience=60)            # "hotline-timeout"
    #   -> SimCall: .channel (;1), .uniqueid, .outcome (answered|abandoned|timeout|redirected), .done
    pbx.set_patient("13900000001", outcome="answer"|"busy"|"noanswer"|"congestion"|"reject",
                    ring=2, survey_digits="4", hold=20)
    #   the dialer originates "Local/<number>@sim-patient" (or Local/busy@sim-patient ...)
    #   into context "survey" (AGI revisit_survey) or an Application.
    pbx.set_agent("1001", answer_delay=2, talk_time=120, talk_sd=30, wrapup=20)
    pbx.pause_member("Local/1001@sim-agent/n", True, "lunch")   # == AMI QueuePause (same events)
    pbx.remove_member("consultation", "Local/1001@sim-agent/n") # == AMI QueueRemove (logs out)
    pbx.ami.disconnect_all(shutdown_event=False)      # drop AMI connections (reconnect tests)
    pbx.listeners.append(fn)                          # fn(headers) for every event, in-process
    await pbx.stop()                                  # closes AMI (Shutdown event), cancels timers
    await pbx.start(ami_port=port, boot_seconds=20)   # a restarted Asterisk still booting: logins
    #   accepted, module actions (QueueStatus, QueueAdd, MixMonitor…) "Invalid/unknown command",
    #   FullyBooted to every session after 20 s (real 22.10.1: ~0.3 s before FullyBooted
    #   app_queue already answers; the simulator refuses until FullyBooted: stricter)
    pbx.logger_rotate("sequential" | "rotate" | "timestamp", compress=False)  # `logger rotate`

Traffic for a day (Poisson arrivals per hour of day, menu choices, patience)::

    from callcenter.simulator import DayProfile, run_traffic
    traffic = run_traffic(pbx, DayProfile(calls=500, agents={"consultation": 5}), seed=1)
    traffic.arrivals / traffic.calls / traffic.finished / traffic.summary() / traffic.cancel()
    #   callers of run_traffic stay on the line while talking (hang up only if unanswered)

AMI login ``Events:`` accepts on/off or classes (``call,agent``) like manager.conf; the AGI
channel offers optional ``agi_exec_start(cmd) -> id`` / ``agi_exec_end(id, cmd, reply)``
hooks that emit AGIExecStart/AGIExecEnd (run_agi does not call them yet).
CLI: ``callcenter simulator run --ami-port 5038 --scale 60 --calls 500``.

FastAGI: ``hotline`` runs ``AGI(agi://<agi_host>:<agi_port>/hotline)`` and ``survey`` runs
``.../revisit_survey`` through ``callcenter.simulator.agi_client.run_agi`` (the FastAGI
client); to plug a scripted server instead set ``pbx.agi_handler = async fn(url, env, channel)``.
After AGI: QUEUE set -> Queue(${QUEUE}) prio ${QUEUE_PRIO}; elif TRANSFER -> operator; else Hangup.
``hotline-plain`` needs no AGI (Playback, Read 1 digit: 2 -> complaint, else consultation).

MixMonitor writes real 8 kHz 16-bit mono WAVs the way Asterisk does (header sizes 0 and
32 KiB blocks while the call is up, sizes patched at hang-up; :mod:`.mixmonitor`): with
``SimConfig(media="phones")`` (default) the whole monitored time, silence and the people's
deterministic voices (:mod:`.voices`); ``media="local"`` only what is played, like the
trace harness's Local channels.  Paths under ``/var/spool/asterisk`` are mapped below
``spool_dir``.  queue_log lines (``epoch|callid|queue|agent|event|data``)
go to ``queue_log`` (optional) and ``pbx.queue_log.lines``.
"""
from .pbx import SimCall, SimConfig, SimulatedPBX

__all__ = ["SimulatedPBX", "SimConfig", "SimCall", "DayProfile", "run_traffic"]


def __getattr__(name):  # lazy: people.py is optional for the core
    if name in ("DayProfile", "run_traffic"):
        from . import people

        return getattr(people, name)
    raise AttributeError(name)
