"""Which addresses a tenant-controlled URL may reach: public ones only.

Shared by the check when a tenant saves a base URL or webhook (routing.credentials) and
by the outbound HTTP seam (aura.http), which re-resolves and pins the address at call
time so a name re-pointed later (DNS rebinding) still cannot reach an internal host.
"""

from __future__ import annotations

import ipaddress

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def refused_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is not a public address (None when it is)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 form that embeds an IPv4 address reaches that IPv4 address.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return refused_reason(embedded)
    for attr, label in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr):
            return label
    # Catches the rest of the special-purpose ranges (carrier-grade NAT 100.64/10, ...).
    if not ip.is_global:
        return "non-public"
    return None
