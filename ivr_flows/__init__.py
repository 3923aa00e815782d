"""IVR flows (hotline menu, revisit survey) and the engine that runs them over FastAGI.

Public API: ``ivr_flows.flow.load_flow/check_file``, ``ivr_flows.engine.Engine`` (sans-IO),
``ivr_flows.server.AgiServer`` (component "agi"), ``ivr_flows.models.IvrSession``.
"""
