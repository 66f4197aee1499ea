"""Which network addresses an image download may reach, and the DNS answers it checks.

A crawler fed by search results fetches URLs that strangers wrote, so it must not
become a way into the machine's own network (SSRF). Two rules:

* Public addresses only, unless ``SYNSET_ALLOW_PRIVATE_NETWORKS=1`` opens private
  and loopback ranges for an intranet image server.
* Link-local addresses and cloud metadata services are refused even then: no image
  server lives at 169.254.169.254, and a crawler that can reach it can leak the
  machine's cloud credentials. IPv4 addresses wrapped in IPv6 (``::ffff:a.b.c.d``,
  NAT64 ``64:ff9b::/96``, 6to4, Teredo, the old ``::a.b.c.d``) are judged by the
  IPv4 address inside, since that is where the packets end up.

The answer checked here is the one connected to: :func:`resolve_checked` returns
the addresses, and :mod:`synset_builder.crawl.connections` opens sockets to those
addresses only, so a DNS server that answers differently the second time (DNS
rebinding) gains nothing. Nothing is cached between downloads.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses it resolves to now; tests hand in their own.
Resolver = Callable[[str, int], list[str]]

# Refused whatever the settings say. Link-local as a whole (metadata services of
# AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean live at 169.254.169.254), the
# metadata addresses outside it, and ranges that are no host at all.
NEVER = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches local services on Linux
        "169.254.0.0/16",  # IPv4 link-local, cloud metadata
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure WireServer
        "192.0.0.192/32",  # Oracle Cloud metadata (legacy)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",  # unspecified
        "fe80::/10",  # IPv6 link-local
        "fec0::/10",  # IPv6 site-local (deprecated, still routed by some stacks)
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")


class AddressRefused(Exception):
    """A host resolved to an address the guard does not allow; ``str()`` says which."""


def _inner(ip: IPAddress) -> IPAddress | None:
    """The IPv4 address an IPv6 address carries (and delivers to), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64 or (ip in _COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _never(ip: IPAddress) -> bool:
    return (
        any(ip in net for net in NEVER if net.version == ip.version)
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
    )


def address_allowed(address: str, *, allow_private: bool = False) -> bool:
    """May a download connect to ``address`` (an IP literal, maybe with ``%zone``)?"""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    inner = _inner(ip)
    if _never(ip) or (inner is not None and _never(inner)):
        return False
    return allow_private or (inner or ip).is_global


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` now, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve_checked(
    resolve: Resolver, host: str, port: int, *, allow_private: bool
) -> tuple[str, ...]:
    """Resolve ``host`` once; its addresses if every one is allowed, else AddressRefused.

    One bad address refuses the whole answer: a host that resolves partly to a
    metadata service is hostile, and picking the good half would only move the
    attack to the next lookup. ``OSError`` (no such name) passes through.
    """
    found: dict[str, None] = {}
    for address in resolve(host, port):
        normal = _checked_address(address, allow_private)
        if normal is None:
            raise AddressRefused(f"{host[:100]} resolves to {address}, which is not allowed")
        found[normal] = None
    if not found:
        raise OSError(f"{host[:100]} has no address")
    return tuple(found)


@functools.lru_cache(maxsize=4096)
def _checked_address(address: str, allow_private: bool) -> str | None:
    """``address`` in normal form if allowed, else None.

    Remembered because the verdict on an address literal never changes and a crawl
    meets the same few thousand addresses again and again; the DNS answer itself is
    never remembered (every hop is resolved again).
    """
    if not address_allowed(address, allow_private=allow_private):
        return None
    return str(ipaddress.ip_address(address.split("%", 1)[0]))
