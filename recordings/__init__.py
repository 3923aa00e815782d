"""Call recordings: capture (MixMonitor over AMI), catalogue, retention, controlled access.

Modules: ``policy`` (which calls to record, pure), ``layout`` (file paths, pure),
``wav`` (header parsing and hashing, blocking), ``settings`` (the ``[recordings]``
config section), ``models`` (tables), ``catalog`` (catalogue operations on a
session), ``capture`` (the sans-IO tracker and the "recordings" component),
``maintenance`` (verify/purge), ``web`` (twisted.web resource), ``cli``.
"""
