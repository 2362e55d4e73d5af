"""Which addresses a tenant-controlled URL may reach: public ones only.

Shared by the checks when a tenant saves a base URL or a budget webhook
(``routing.catalog.services.base_url_check``) and by the outbound HTTP seams (aura.http, the
webhook sender), which re-resolve and pin the address at call time so a name re-pointed
later (DNS rebinding) still cannot reach an internal host.

IPv6 forms that carry an IPv4 address reach that address, so they are judged by it:
IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d`` and 6to4 ``2002:AABB:CCDD::``.
The deprecated IPv4-compatible ``::a.b.c.d``, Teredo ``2001::/32`` (which embeds a relay
and a client address) and local-use NAT64 ``64:ff9b:1::/48`` (operator-defined layout)
are refused whatever they carry: no public service is reached through them.
"""

from __future__ import annotations

import ipaddress

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REFUSED_V6 = (
    (ipaddress.ip_network("::/96"), "IPv4-compatible IPv6"),
    (ipaddress.ip_network("2001::/32"), "Teredo"),
    (ipaddress.ip_network("64:ff9b:1::/48"), "local-use NAT64"),
)
_FLAGS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
)


def refused_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is not a public address (None when it is)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_unspecified or ip.is_loopback:  # "::" and "::1" sit inside ::/96
            return "unspecified" if ip.is_unspecified else "loopback"
        for net, label in _REFUSED_V6:
            if ip in net:
                return label
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refused_reason(embedded)
            return None if reason is None else f"{reason} ({embedded} inside IPv6)"
    for attr, label in _FLAGS:
        if getattr(ip, attr):
            return label
    # Catches the rest of the special-purpose ranges (carrier-grade NAT 100.64/10, ...).
    if not ip.is_global:
        return "non-public"
    return None
