"""Address checks that keep the downloader away from internal networks (SSRF).

A URL's host is resolved here, every address it resolves to is checked, and the caller connects to the
checked address itself, so a DNS answer that changes between check and connect (rebinding) cannot slip in.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The host resolves to an address the crawler must never contact, or cannot be resolved.

    `kind` names the refused address's class (`loopback`, `private`, ...), None when there was no address.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


def refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why `address` may not be contacted, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if allow_loopback else "loopback"
    checks = (
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, failed in checks if failed), None)


def resolve_public(host: str, port: int, *, allow_loopback: bool) -> tuple[str, ...]:
    """Resolve `host` and return its addresses, in the resolver's order; refuse if ANY of them is internal.

    Refusing on any (not all) internal answer stops a host that mixes a public and a private record.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise AddressRefused(f"cannot resolve {host!r}: {error}") from error
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise AddressRefused(f"{host!r} has no address")
    for address in addresses:
        reason = refusal(address, allow_loopback=allow_loopback)
        if reason:
            raise AddressRefused(f"{host!r} resolves to {reason} address {address}", reason)
    return tuple(dict.fromkeys(str(address) for address in addresses))
