"""aura.netguard: only public addresses pass, however an internal one is spelled."""

from __future__ import annotations

import ipaddress

import pytest

from aura.netguard import refused_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "private"),  # reserved, and listed as private by ipaddress
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (127.0.0.1 inside IPv6)"),
        ("::ffff:a9fe:a9fe", "link-local (169.254.169.254 inside IPv6)"),
        ("64:ff9b::127.0.0.1", "loopback (127.0.0.1 inside IPv6)"),
        ("64:ff9b::a9fe:a9fe", "link-local (169.254.169.254 inside IPv6)"),
        ("64:ff9b::10.0.0.1", "private (10.0.0.1 inside IPv6)"),
        ("2002:7f00:1::", "loopback (127.0.0.1 inside IPv6)"),
        ("2002:a00:1::1", "private (10.0.0.1 inside IPv6)"),
        ("2002:e000:1::", "multicast (224.0.0.1 inside IPv6)"),
        ("::127.0.0.1", "IPv4-compatible IPv6"),
        ("::8.8.8.8", "IPv4-compatible IPv6"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("2001::a9fe:a9fe", "Teredo"),
        ("64:ff9b:1::a9fe:a9fe", "local-use NAT64"),
    ],
)
def test_internal_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    assert refused_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:93.184.216.34",
        "64:ff9b::808:808",  # NAT64 of a public address (DNS64 networks)
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert refused_reason(ipaddress.ip_address(address)) is None
