"""Outbound campaigns: post-treatment revisits, no-show recovery, complaint follow-up.

Who to call and when (:mod:`dialer.campaigns`, :mod:`dialer.plans`), whether a call
is allowed now (:mod:`dialer.compliance`), how fast (:mod:`dialer.pacing`), the
durable work queue (:mod:`dialer.store`), the AMI-facing engine
(:mod:`dialer.engine`) and the entry points other packages call (:mod:`dialer.api`).
"""
