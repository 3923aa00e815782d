"""Who is on the other end: the client address and scheme, through trusted proxies only.

A call centre's agents usually reach the web through one reverse proxy (or one NAT
address), so the socket's peer says little.  ``X-Forwarded-For`` and
``X-Forwarded-Proto`` are believed only when the peer is one of ``[web]
trusted_proxies`` (addresses or networks); from anyone else they are ignored,
or any client could pick the address it is counted (and locked out) under.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def _network(text: str):
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"[web] trusted_proxies: {text!r} is not an IP address or network") from None


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple = ()

    @classmethod
    def parse(cls, items) -> "TrustedProxies":
        return cls(tuple(_network(i) for i in items if str(i).strip()))

    def __contains__(self, host: str) -> bool:
        if not self.networks or not host:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: the right-most ``X-Forwarded-For`` entry not itself a trusted
        proxy, when the peer is a trusted proxy; else the peer."""
        if peer not in self or not forwarded_for:
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if hop not in self:
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # garbage from the proxy's client: count it under the proxy
        return hops[0] if hops else peer

    def tls(self, peer: str, secure_transport: bool, forwarded_proto: str | None) -> bool:
        """Did the browser's request come over TLS (directly, or to a trusted proxy)?"""
        if secure_transport:
            return True
        return peer in self and (forwarded_proto or "").split(",")[0].strip().lower() == "https"
