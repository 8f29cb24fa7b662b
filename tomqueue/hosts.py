"""Host names and IP addresses, with the standard library only: what the CLI needs before
(or without) the dashboard extra, and what the lease check compares."""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address(text: str) -> Address | None:
    """``text`` as an IP address (an IPv4-mapped IPv6 one as its IPv4), None if it is none."""
    try:
        value = ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None
    if isinstance(value, ipaddress.IPv6Address) and value.ipv4_mapped is not None:
        return value.ipv4_mapped
    return value


def is_loopback(host: str | None) -> bool:
    """Is ``host`` this machine only (a loopback address, or ``localhost``)?"""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
