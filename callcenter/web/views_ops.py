"""Operations endpoints: ``/healthz`` (liveness), ``/readyz`` (dependencies), ``/metrics``.

``/healthz`` and ``/readyz`` are public (load balancers, systemd watchdogs and
Kubernetes probes do not log in) and say nothing beyond ok / not ok per dependency.
``/metrics`` is Prometheus text for supervisors and admins: Prometheus scrapes it
with an API token (``callcenter token create --role supervisor``, sent as
``Authorization: Bearer``); it holds counts per queue/outcome, never patient data.
"""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST

from callcenter.metrics import ServiceMetrics

from .http import PUBLIC, SUPERVISORS, Req, Response, Route, as_json


def routes(metrics: ServiceMetrics) -> list[Route]:
    async def healthz(app, req: Req) -> Response:
        return as_json({"status": "ok"})

    async def readyz(app, req: Req) -> Response:
        deps = await metrics.ready()
        ok = all(deps.values())
        return as_json({"status": "ok" if ok else "not ready",
                        **{k: "ok" if v else "down" for k, v in deps.items()}}, 200 if ok else 503)

    async def metrics_text(app, req: Req) -> Response:
        return Response(200, await metrics.render(), CONTENT_TYPE_LATEST)

    ready_schema = {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok", "not ready"]},
                                                     "ami": {"type": "string", "enum": ["ok", "down"]},
                                                     "database": {"type": "string", "enum": ["ok", "down"]}}}
    return [
        Route("GET", "/healthz", PUBLIC, healthz, "api", "Liveness: the process answers (no data)",
              response={"type": "object", "properties": {"status": {"type": "string"}}}),
        Route("GET", "/readyz", PUBLIC, readyz, "api",
              "Readiness: AMI link up and database reachable (503 otherwise; ok/down per dependency only)",
              response=ready_schema),
        Route("GET", "/metrics", SUPERVISORS, metrics_text, "api",
              "Prometheus metrics (text format; an API token of a supervisor/admin); no patient data"),
    ]
