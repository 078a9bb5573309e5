"""Where a request comes from: the client address the throttles and the audit log use,
and the loopback checks of the developer quick-login.

Without trusted proxies the client is the socket peer and ``X-Forwarded-For`` is ignored
(anyone can send it). When the peer is a configured trusted proxy, the client is the
last hop of ``X-Forwarded-For`` that is not itself a trusted proxy: each proxy appends
the address it saw, so hops to the left of that are the client's own claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> list[Network]:
    """``["10.0.0.1", "192.168.0.0/16"]`` as networks; ValueError names a bad entry."""
    nets = []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"GATEWAY_TRUSTED_PROXIES: {entry!r} is not an address or "
                             "network") from None
    return nets


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(text: str, proxies: Sequence[Network]) -> bool:
    ip = _ip(text)
    return ip is not None and any(ip in net for net in proxies)


def trusted_peer(peer: str | None, proxies: Sequence[Network]) -> bool:
    """The socket peer is one of the trusted reverse proxies."""
    return peer is not None and bool(proxies) and _trusted(peer, proxies)


def client_address(peer: str | None, forwarded_for: str | None,
                   proxies: Sequence[Network]) -> str | None:
    if peer is None or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return str(_ip(hop)) if _ip(hop) is not None else peer
    return hops[0] if hops else peer


def is_loopback(host: str | None) -> bool:
    ip = _ip(host or "")
    return ip is not None and ip.is_loopback


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without the port (IPv6 keeps its brackets)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.split(":", 1)[0].rstrip(".")


def is_loopback_host(host_header: str | None) -> bool:
    """A ``Host`` header naming this machine: localhost, 127.x.x.x or [::1] (any port)."""
    name = host_name(host_header or "")
    return name == "localhost" or is_loopback(name.strip("[]"))
